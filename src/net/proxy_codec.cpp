#include "net/proxy_codec.hpp"

#include <openssl/evp.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/url/parse.hpp>
#include <vector>

namespace shoal::net {

namespace {

using boost::system::error_code;

class proxy_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "proxy"; }
  std::string message(int ev) const override {
    switch (static_cast<proxy_errc>(ev)) {
      case proxy_errc::ok:
        return "success";
      case proxy_errc::general_failure:
        return "SOCKS5 proxy: general server failure";
      case proxy_errc::not_allowed_by_ruleset:
        return "SOCKS5 proxy: connection not allowed by its rules";
      case proxy_errc::network_unreachable:
        return "SOCKS5 proxy: network unreachable";
      case proxy_errc::host_unreachable:
        return "SOCKS5 proxy: host unreachable";
      case proxy_errc::connection_refused:
        return "SOCKS5 proxy: connection refused by the target";
      case proxy_errc::ttl_expired:
        return "SOCKS5 proxy: TTL expired";
      case proxy_errc::command_not_supported:
        return "SOCKS5 proxy: command not supported";
      case proxy_errc::address_type_not_supported:
        return "SOCKS5 proxy: address type not supported";
      case proxy_errc::unknown_reply_code:
        return "SOCKS5 proxy: unknown reply code";
      case proxy_errc::bad_version:
        return "not a SOCKS5 proxy (wrong version in its reply)";
      case proxy_errc::no_acceptable_method:
        return "SOCKS5 proxy accepts none of our authentication methods (does it need a user name and password?)";
      case proxy_errc::unexpected_method:
        return "SOCKS5 proxy chose an authentication method we did not offer";
      case proxy_errc::auth_failed:
        return "SOCKS5 proxy: authentication failed (wrong user name or password)";
      case proxy_errc::bad_auth_version:
        return "SOCKS5 proxy: malformed authentication reply";
      case proxy_errc::malformed_reply:
        return "SOCKS5 proxy: malformed reply";
      case proxy_errc::credentials_too_long:
        return "proxy user name or password longer than 255 bytes";
      case proxy_errc::host_name_too_long:
        return "host name longer than 255 bytes";
      case proxy_errc::http_refused:
        return "HTTP proxy refused the CONNECT request";
      case proxy_errc::bad_http_reply:
        return "HTTP proxy: malformed reply to CONNECT";
      case proxy_errc::http_reply_too_large:
        return "HTTP proxy: reply head too large";
      case proxy_errc::fragmented_datagram:
        return "SOCKS5 proxy: fragmented UDP datagram (not supported)";
      case proxy_errc::timed_out:
        return "proxy did not answer in time";
    }
    return "proxy error " + std::to_string(ev);
  }
};

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint8_t byte(std::string_view s, std::size_t i) {
  return static_cast<std::uint8_t>(s[i]);
}

// ATYP, address and port as SOCKS5 writes them.
proxy_result<std::string> encode_address(const socks5_address& a) {
  std::string out;
  if (!a.domain.empty()) {
    if (a.domain.size() > 255) return error_code(proxy_errc::host_name_too_long);
    out.push_back(3);
    out.push_back(static_cast<char>(a.domain.size()));
    out += a.domain;
  } else if (a.ip.is_v6()) {
    out.push_back(4);
    const auto b = a.ip.to_v6().to_bytes();
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  } else {
    out.push_back(1);
    const auto b = a.ip.to_v4().to_bytes();
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  put16(out, a.port);
  return out;
}

// Length of ATYP + address + port starting at `s[0]` (the ATYP byte); needs s[1] for names.
proxy_result<std::size_t> address_length(std::string_view s) {
  if (s.empty()) return error_code(proxy_errc::malformed_reply);
  switch (byte(s, 0)) {
    case 1:
      return std::size_t{1 + 4 + 2};
    case 4:
      return std::size_t{1 + 16 + 2};
    case 3:
      if (s.size() < 2) return error_code(proxy_errc::malformed_reply);
      return std::size_t{1 + 1 + 2} + byte(s, 1);
    default:
      return error_code(proxy_errc::malformed_reply);
  }
}

// Decodes ATYP + address + port from s (exactly address_length bytes available).
socks5_address decode_address(std::string_view s) {
  socks5_address a;
  std::size_t at = 1;
  if (byte(s, 0) == 1) {
    boost::asio::ip::address_v4::bytes_type b;
    for (auto& x : b)
      x = byte(s, at++);
    a.ip = boost::asio::ip::address_v4(b);
  } else if (byte(s, 0) == 4) {
    boost::asio::ip::address_v6::bytes_type b;
    for (auto& x : b)
      x = byte(s, at++);
    a.ip = boost::asio::ip::address_v6(b);
  } else {
    const std::size_t n = byte(s, 1);
    a.domain = std::string(s.substr(2, n));
    at = 2 + n;
  }
  a.port = static_cast<std::uint16_t>(byte(s, at) << 8 | byte(s, at + 1));
  return a;
}

std::string base64(std::string_view in) {
  std::vector<unsigned char> out(4 * ((in.size() + 2) / 3) + 1);
  const int n =
      EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

error bad_url(std::string_view url, const std::string& why) {
  return error{errc::invalid_argument, "proxy '" + std::string(url) + "': " + why, no_offset};
}

}  // namespace

const boost::system::error_category& proxy_category() noexcept {
  static const proxy_category_impl cat;
  return cat;
}

result<proxy_settings> parse_proxy_url(std::string_view url) {
  proxy_settings p;
  if (url.empty()) return p;
  auto u = boost::urls::parse_uri(url);
  if (!u || url.find("://") == std::string_view::npos) {
    return bad_url(url, "not a proxy URL (expected socks5://[user:pass@]host:port or http://host:port)");
  }
  const std::string scheme(u->scheme());
  if (scheme == "socks5" || scheme == "socks5h") {
    p.type = proxy_settings::socks5;
  } else if (scheme == "http") {
    p.type = proxy_settings::http;
  } else {
    return bad_url(url, "unsupported scheme '" + scheme + "' (use socks5:// or http://)");
  }
  if (!u->has_authority() || u->encoded_host().empty()) return bad_url(url, "no host");
  if (u->host_type() == boost::urls::host_type::ipv6) {
    p.host = u->host_ipv6_address().to_string();
  } else if (u->host_type() == boost::urls::host_type::ipv4) {
    p.host = u->host_ipv4_address().to_string();
  } else {
    p.host = std::string(u->host());
  }
  if (!u->has_port() || u->port().empty()) return bad_url(url, "no port (e.g. " + scheme + "://127.0.0.1:1080)");
  // Boost.URL's port_number() wraps numbers over 65535: check the digits.
  const std::string digits(u->port());
  const unsigned long port = digits.size() <= 5 ? std::stoul(digits) : 0;
  if (port == 0 || port > 65535) return bad_url(url, "port '" + digits + "' is not between 1 and 65535");
  p.port = static_cast<std::uint16_t>(port);
  if (!u->encoded_path().empty() && u->encoded_path() != "/") return bad_url(url, "a proxy URL has no path");
  if (u->has_query() || u->has_fragment()) return bad_url(url, "a proxy URL has no query or fragment");
  if (u->has_userinfo()) {
    p.user = std::string(u->user());
    p.password = std::string(u->password());
    if (p.user.empty()) return bad_url(url, "empty user name");
    if (p.user.size() > 255 || p.password.size() > 255) {
      return bad_url(url, "user name and password are limited to 255 bytes each");
    }
  }
  return p;
}

std::string describe(const proxy_settings& p) {
  if (p.type == proxy_settings::none) return "no proxy";
  std::string s = p.type == proxy_settings::socks5 ? "socks5://" : "http://";
  if (!p.user.empty()) s += p.user + ":***@";
  s += p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host;
  return s + ":" + std::to_string(p.port);
}

socks5_address socks5_target(std::string_view host, std::uint16_t port) {
  socks5_address a;
  a.port = port;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(h, ec);
  if (ec) {
    a.domain = std::string(host);
  } else {
    a.ip = ip.is_v6() && ip.to_v6().is_v4_mapped()
               ? boost::asio::ip::address(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6()))
               : ip;
  }
  return a;
}

std::string socks5_greeting(bool with_password) {
  if (with_password) return std::string("\x05\x02\x00\x02", 4);
  return std::string("\x05\x01\x00", 3);
}

proxy_result<std::uint8_t> parse_socks5_method(std::string_view reply, bool with_password) {
  if (reply.size() != 2) return error_code(proxy_errc::malformed_reply);
  if (byte(reply, 0) != 5) return error_code(proxy_errc::bad_version);
  const std::uint8_t m = byte(reply, 1);
  if (m == 0xff) return error_code(proxy_errc::no_acceptable_method);
  if (m == socks5_method_none || (m == socks5_method_password && with_password)) return m;
  return error_code(proxy_errc::unexpected_method);
}

proxy_result<std::string> socks5_auth_request(std::string_view user, std::string_view password) {
  if (user.size() > 255 || password.size() > 255) return error_code(proxy_errc::credentials_too_long);
  std::string out;
  out.push_back(1);
  out.push_back(static_cast<char>(user.size()));
  out += user;
  out.push_back(static_cast<char>(password.size()));
  out += password;
  return out;
}

error_code parse_socks5_auth_reply(std::string_view reply) {
  if (reply.size() != 2 || byte(reply, 0) != 1) return proxy_errc::bad_auth_version;
  if (byte(reply, 1) != 0) return proxy_errc::auth_failed;
  return {};
}

proxy_result<std::string> socks5_request(std::uint8_t command, const socks5_address& to) {
  auto addr = encode_address(to);
  if (!addr) return addr.error();
  std::string out{static_cast<char>(5), static_cast<char>(command), static_cast<char>(0)};
  return out + *addr;
}

proxy_result<std::size_t> socks5_reply_length(std::string_view head) {
  if (head.size() < 5) return error_code(proxy_errc::malformed_reply);
  if (byte(head, 0) != 5) return error_code(proxy_errc::bad_version);
  auto n = address_length(head.substr(3));
  if (!n) return n.error();
  return 3 + *n;
}

proxy_result<socks5_address> parse_socks5_reply(std::string_view reply) {
  auto n = socks5_reply_length(reply);
  if (!n) return n.error();
  if (reply.size() != *n) return error_code(proxy_errc::malformed_reply);
  const std::uint8_t rep = byte(reply, 1);
  if (rep != 0) {
    if (rep <= 8) return error_code(static_cast<proxy_errc>(rep));
    return error_code(proxy_errc::unknown_reply_code);
  }
  if (byte(reply, 2) != 0) return error_code(proxy_errc::malformed_reply);
  return decode_address(reply.substr(3));
}

proxy_result<std::string> socks5_udp_wrap(const socks5_address& to, std::string_view payload) {
  auto addr = encode_address(to);
  if (!addr) return addr.error();
  std::string out(3, '\0');  // RSV RSV FRAG
  out += *addr;
  out += payload;
  return out;
}

proxy_result<socks5_datagram> socks5_udp_unwrap(std::string_view d) {
  if (d.size() < 4 || byte(d, 0) != 0 || byte(d, 1) != 0) return error_code(proxy_errc::malformed_reply);
  if (byte(d, 2) != 0) return error_code(proxy_errc::fragmented_datagram);
  auto n = address_length(d.substr(3));
  if (!n) return n.error();
  if (d.size() < 3 + *n) return error_code(proxy_errc::malformed_reply);
  socks5_datagram out;
  out.from = decode_address(d.substr(3, *n));
  out.payload = d.substr(3 + *n);
  return out;
}

std::string http_connect_request(std::string_view host, std::uint16_t port, std::string_view user,
                                 std::string_view password) {
  std::string h(host);
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  const std::string authority = h + ":" + std::to_string(port);
  std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!user.empty()) {
    out += "Proxy-Authorization: Basic " + base64(std::string(user) + ":" + std::string(password)) + "\r\n";
  }
  return out + "\r\n";
}

std::optional<std::size_t> http_head_end(std::string_view bytes) {
  auto at = bytes.find("\r\n\r\n");
  if (at == std::string_view::npos) return std::nullopt;
  return at + 4;
}

proxy_result<http_connect_reply> parse_http_connect_reply(std::string_view head) {
  namespace http = boost::beast::http;
  if (head.size() > max_http_head) return error_code(proxy_errc::http_reply_too_large);
  http::response_parser<http::empty_body> parser;
  // A reply to CONNECT: whatever follows the head belongs to the tunnel (or is an error
  // page we do not read).
  parser.skip(true);
  parser.header_limit(static_cast<std::uint32_t>(max_http_head));
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && used < head.size() && !parser.is_header_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(head.data() + used, head.size() - used), ec);
    if (n == 0) break;
    used += n;
  }
  if (ec || !parser.is_header_done()) return error_code(proxy_errc::bad_http_reply);
  const auto& msg = parser.get();
  // Beast takes any three digits; 000-099 is no HTTP status.
  if (msg.result_int() < 100) return error_code(proxy_errc::bad_http_reply);
  http_connect_reply r;
  r.status = msg.result_int();
  r.reason = std::string(msg.reason().substr(0, 120));
  return r;
}

}  // namespace shoal::net
