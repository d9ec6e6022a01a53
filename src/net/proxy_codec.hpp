// Proxy protocols as bytes (pure): proxy URLs, SOCKS5 (RFC 1928) greetings, username and
// password authentication (RFC 1929), CONNECT and UDP ASSOCIATE requests and replies, the
// SOCKS5 UDP request header, and HTTP CONNECT requests and reply heads. No sockets, no
// clocks: net/proxy.hpp does the I/O, fuzz_proxy drives the parsers.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace shoal::net {

struct proxy_settings {
  enum kind { none, socks5, http };
  kind type = none;
  std::string host;
  std::uint16_t port = 0;
  std::string user, password;  // empty user: no authentication
  // Connecting to the proxy and the whole negotiation must finish within this.
  std::chrono::milliseconds timeout{20000};
  [[nodiscard]] bool enabled() const { return type != none; }
};

// `socks5://[user:pass@]host:port`, `socks5h://...` (the same: target names are always
// resolved by the proxy) or `http://[user:pass@]host:port`. User and password are
// percent-decoded. An empty string gives `none`.
[[nodiscard]] result<proxy_settings> parse_proxy_url(std::string_view url);
// The URL again, with the password left out: for logs.
[[nodiscard]] std::string describe(const proxy_settings& p);

// Every way a proxy can refuse or misbehave. Values 1..8 are SOCKS5 reply codes.
enum class proxy_errc {
  ok = 0,
  general_failure = 1,
  not_allowed_by_ruleset = 2,
  network_unreachable = 3,
  host_unreachable = 4,
  connection_refused = 5,
  ttl_expired = 6,
  command_not_supported = 7,
  address_type_not_supported = 8,
  unknown_reply_code = 100,  // a SOCKS5 reply code RFC 1928 does not define
  bad_version,               // not a SOCKS5 reply (version byte is not 5)
  no_acceptable_method,      // the proxy accepts none of the methods we offered (0xFF)
  unexpected_method,         // the proxy chose a method we did not offer
  auth_failed,               // RFC 1929 status not 0: wrong user name or password
  bad_auth_version,          // RFC 1929 reply version is not 1
  malformed_reply,           // reserved byte, address type or length wrong
  credentials_too_long,      // user name or password over 255 bytes
  host_name_too_long,        // a target name over 255 bytes
  http_refused,              // HTTP CONNECT answered with a status outside 2xx
  bad_http_reply,            // the CONNECT reply is not HTTP
  http_reply_too_large,      // the CONNECT reply head passes max_http_head
  fragmented_datagram,       // a SOCKS5 UDP datagram with FRAG != 0 (not supported)
  timed_out,                 // the proxy did not answer within proxy_settings::timeout
};
const boost::system::error_category& proxy_category() noexcept;
inline boost::system::error_code make_error_code(proxy_errc e) noexcept {
  return {static_cast<int>(e), proxy_category()};
}

template <class T>
using proxy_result = boost::system::result<T, boost::system::error_code>;

inline constexpr std::size_t max_http_head = 8192;  // bytes of an HTTP CONNECT reply head

// A SOCKS5 address: an IP address, or a domain name for the proxy to resolve.
struct socks5_address {
  boost::asio::ip::address ip;
  std::string domain;  // non-empty: ATYP 3, `ip` unused
  std::uint16_t port = 0;
  friend bool operator==(const socks5_address&, const socks5_address&) = default;
};
// An IP literal becomes an address, anything else a domain name.
[[nodiscard]] socks5_address socks5_target(std::string_view host, std::uint16_t port);

inline constexpr std::uint8_t socks5_method_none = 0x00;
inline constexpr std::uint8_t socks5_method_password = 0x02;
inline constexpr std::uint8_t socks5_cmd_connect = 0x01;
inline constexpr std::uint8_t socks5_cmd_udp_associate = 0x03;

// The method selection message: "no authentication", plus username/password when we have
// credentials.
[[nodiscard]] std::string socks5_greeting(bool with_password);
// The server's 2-byte method choice -> the method, checked against what we offered.
[[nodiscard]] proxy_result<std::uint8_t> parse_socks5_method(std::string_view reply, bool with_password);
// RFC 1929 username/password request.
[[nodiscard]] proxy_result<std::string> socks5_auth_request(std::string_view user, std::string_view password);
// RFC 1929's 2-byte reply: success or auth_failed.
[[nodiscard]] boost::system::error_code parse_socks5_auth_reply(std::string_view reply);
// A CONNECT (or UDP ASSOCIATE) request for `to`.
[[nodiscard]] proxy_result<std::string> socks5_request(std::uint8_t command, const socks5_address& to);
// A reply's total length from its first 5 bytes (the 5th is the domain length when
// ATYP is 3); errors for a wrong version or address type. Needs at least 5 bytes.
[[nodiscard]] proxy_result<std::size_t> socks5_reply_length(std::string_view head);
// A whole reply -> the bound address (BND.ADDR, BND.PORT), or the reply code as an error.
[[nodiscard]] proxy_result<socks5_address> parse_socks5_reply(std::string_view reply);

// The SOCKS5 UDP request header (RFC 1928 section 7) put before / taken off a datagram.
[[nodiscard]] proxy_result<std::string> socks5_udp_wrap(const socks5_address& to, std::string_view payload);
struct socks5_datagram {
  socks5_address from;
  std::string_view payload;  // a view into the unwrapped buffer
};
[[nodiscard]] proxy_result<socks5_datagram> socks5_udp_unwrap(std::string_view datagram);

// "CONNECT host:port HTTP/1.1" with Host and, with credentials, Proxy-Authorization: Basic.
[[nodiscard]] std::string http_connect_request(std::string_view host, std::uint16_t port, std::string_view user,
                                               std::string_view password);
// Where the reply head ends (just past the empty line), once it is complete.
[[nodiscard]] std::optional<std::size_t> http_head_end(std::string_view bytes);
struct http_connect_reply {
  unsigned status = 0;
  std::string reason;
};
// A complete reply head (status line and headers) parsed by Beast. A 2xx status is a
// value; any other status is returned as a value too, so the caller can say which.
[[nodiscard]] proxy_result<http_connect_reply> parse_http_connect_reply(std::string_view head);

}  // namespace shoal::net

template <>
struct boost::system::is_error_code_enum<shoal::net::proxy_errc> : std::true_type {};
