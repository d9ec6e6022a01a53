#include "tracker/client.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <functional>
#include <random>

#include "dht/krpc.hpp"
#include "net/proxy.hpp"
#include "tracker/cache.hpp"
#include "tracker/http_connect.hpp"

namespace shoal::tracker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

namespace {

// A host's addresses: from the session's cache while fresh, else looked up (and kept).
// Returns why it failed, or nullopt.
asio::awaitable<std::optional<std::string>> resolve(asio::io_context& io, const std::string& host,
                                                    const std::string& port, const client_options& opt,
                                                    std::vector<asio::ip::address>& out) {
  out.clear();
  if (opt.cache) {
    if (auto a = opt.cache->addresses(host)) {
      out = std::move(*a);
      co_return std::nullopt;
    }
  }
  tcp::resolver resolver(io);
  auto [ec, res] = co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return "cannot resolve " + host + ": " + ec.message();
  for (const auto& e : res) {
    if (std::find(out.begin(), out.end(), e.endpoint().address()) == out.end()) out.push_back(e.endpoint().address());
  }
  if (out.empty()) co_return "cannot resolve " + host + ": no address";
  if (opt.cache) opt.cache->remember_addresses(host, out);
  co_return std::nullopt;
}

// Every error line names the URL without its query: an announce URL carries our peer_id
// and key, and private trackers' passkeys.
error fail(const std::string& url, const std::string& why) {
  return error{errc::io, redact_url(url) + ": " + why, no_offset};
}

template <class Stream>
asio::awaitable<result<std::string>> http_exchange(Stream& stream, const url_parts& p, const std::string& url,
                                                   std::size_t limit, const client_options& opt) {
  http::request<http::empty_body> req{http::verb::get, p.target, 11};
  req.set(http::field::host, p.host);
  req.set(http::field::user_agent, opt.user_agent);
  req.set(http::field::connection, "close");
  auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
  if (wec) co_return fail(url, wec.message());
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(limit);
  auto [rec, rn] = co_await http::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
  if (rec == http::error::body_limit) co_return fail(url, "reply larger than " + std::to_string(limit) + " bytes");
  if (rec) co_return fail(url, rec.message());
  auto res = parser.release();
  if (res.result() != http::status::ok) {
    co_return fail(url, "HTTP " + std::to_string(res.result_int()) + " " + std::string(res.reason()));
  }
  co_return std::move(res.body());
}

asio::awaitable<result<std::string>> fetch(asio::io_context& io, const std::string& url, std::size_t limit,
                                           const client_options& opt) {
  auto p = split_url(url);
  if (!p || (p->scheme != "http" && p->scheme != "https")) co_return fail(url, "not an http(s) URL");
  auto connect = [&](beast::tcp_stream& s) { return connect_http(io, s, *p, opt); };
  if (p->scheme == "http") {
    beast::tcp_stream stream(io);
    stream.expires_after(opt.http_timeout);
    if (auto err = co_await connect(stream)) co_return fail(url, *err);
    stream.expires_after(opt.http_timeout);
    auto r = co_await http_exchange(stream, *p, url, limit, opt);
    beast::error_code ignore;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignore);
    co_return r;
  }
  // One context per session (reading the CA store is the costly part), else one per call.
  std::unique_ptr<asio::ssl::context> own;
  if (!opt.cache) {
    own = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    own->set_default_verify_paths();
    own->set_verify_mode(asio::ssl::verify_peer);
  }
  asio::ssl::context& ctx = opt.cache ? opt.cache->tls() : *own;
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), p->host.c_str())) co_return fail(url, "cannot set TLS SNI");
  stream.set_verify_callback(asio::ssl::host_name_verification(p->host));
  beast::get_lowest_layer(stream).expires_after(opt.http_timeout);
  if (auto err = co_await connect(beast::get_lowest_layer(stream))) co_return fail(url, *err);
  beast::get_lowest_layer(stream).expires_after(opt.http_timeout);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
  if (hec) co_return fail(url, "TLS: " + hec.message());
  co_return co_await http_exchange(stream, *p, url, limit, opt);
}

// One BEP 15 request after the connect (announce or scrape): `make` builds it from the
// connection id and transaction id, `read` checks the reply.
template <class T>
asio::awaitable<result<T>> udp_request(asio::io_context& io, const std::string& url, const client_options& opt,
                                       std::function<std::string(std::uint64_t, std::uint32_t)> make,
                                       std::function<result<T>(std::string_view, std::uint32_t, bool)> read,
                                       std::string what) {
  // An HTTP proxy carries no datagrams; sending around it would reveal our address.
  if (opt.proxy.type == net::proxy_settings::http) {
    co_return fail(url, "skipped: UDP trackers are not used through an HTTP proxy (" + net::describe(opt.proxy) +
                            "); a SOCKS5 proxy relays them");
  }
  auto p = split_url(url);
  if (!p) co_return fail(url, "not a valid URL");
  if (opt.local && dht::local_host_addresses(p->host).empty()) co_return fail(url, skipped_under_local(p->host));
  // Through a SOCKS5 proxy the datagrams go to its UDP relay, each wrapped with the
  // tracker's address (a name stays a name: the proxy resolves it), while the TCP control
  // connection of the association stays open.
  const bool via_socks = opt.proxy.type == net::proxy_settings::socks5;
  net::socks5_udp_association assoc(io.get_executor());
  net::socks5_address socks_target;
  udp::endpoint target;  // where datagrams are sent: the tracker, or the proxy's relay
  if (via_socks) {
    std::uint16_t port = 0;
    try {
      port = static_cast<std::uint16_t>(std::stoul(p->port));
    } catch (const std::exception&) {
      co_return fail(url, "bad port");
    }
    std::string why;
    // Our sending address is not known before the socket exists: 0.0.0.0:0 (RFC 1928 allows it).
    const udp::endpoint unknown;
    if (co_await net::socks5_udp_associate(assoc, opt.proxy, unknown, &why)) co_return fail(url, why);
    target = assoc.relay;
    socks_target = net::socks5_target(p->host, port);
  } else if (opt.local) {
    // No resolver under --local: the host is a literal (or localhost) we checked above.
    std::uint16_t port = 0;
    try {
      port = static_cast<std::uint16_t>(std::stoul(p->port));
    } catch (const std::exception&) {
      co_return fail(url, "bad port");
    }
    target = udp::endpoint(dht::local_host_addresses(p->host).front(), port);
  } else {
    std::uint16_t port = 0;
    try {
      port = static_cast<std::uint16_t>(std::stoul(p->port));
    } catch (const std::exception&) {
      co_return fail(url, "bad port");
    }
    std::vector<asio::ip::address> addrs;
    if (auto why = co_await resolve(io, p->host, p->port, opt, addrs)) co_return fail(url, *why);
    target = udp::endpoint(addrs.front(), port);
  }
  udp::socket sock(io);
  {
    boost::system::error_code oec;
    sock.open(target.protocol(), oec);  // out of descriptors: an error, not an exception
    if (oec) co_return fail(url, "cannot open a UDP socket: " + oec.message());
  }
  if (!opt.bind_address.empty() && !via_socks) {
    boost::system::error_code bec;
    const auto local = asio::ip::make_address(opt.bind_address, bec);
    if (!bec) sock.bind(udp::endpoint(local, 0), bec);
    if (bec) co_return fail(url, "cannot send from " + opt.bind_address + ": " + bec.message());
  }
  std::mt19937 rng(std::random_device{}());
  std::array<char, 65536> in{};
  // The family the tracker answered from decides how compact peers are read (BEP 15).
  bool tracker_v6 = !via_socks && target.address().is_v6();

  // One request/reply exchange with BEP 15 timeouts; returns the reply bytes.
  auto exchange = [&](const std::string& pkt, unsigned attempts) -> asio::awaitable<std::optional<std::string>> {
    std::string out = pkt;
    if (via_socks) {
      auto wrapped = net::socks5_udp_wrap(socks_target, pkt);
      if (!wrapped) co_return std::nullopt;
      out = *wrapped;
    }
    for (unsigned attempt = 0; attempt < attempts; ++attempt) {
      co_await sock.async_send_to(asio::buffer(out), target, asio::as_tuple(asio::use_awaitable));
      asio::steady_timer timer(io);
      timer.expires_after(opt.udp_base_timeout * (1u << attempt));
      udp::endpoint from;
      auto which = co_await (sock.async_receive_from(asio::buffer(in), from, asio::as_tuple(asio::use_awaitable)) ||
                             timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (which.index() == 0) {
        auto [rec, n] = std::get<0>(which);
        if (rec || from != target) continue;
        if (!via_socks) co_return std::string(in.data(), n);
        auto d = net::socks5_udp_unwrap(std::string_view(in.data(), n));
        if (!d) continue;
        if (d->from.domain.empty()) tracker_v6 = d->from.ip.is_v6() && !d->from.ip.to_v6().is_v4_mapped();
        co_return std::string(d->payload);
      }
    }
    co_return std::nullopt;
  };

  // A connection id from an announce of the last 50 s (any torrent's) saves the connect
  // round trip (BEP 15). A tracker that no longer takes it gets one quick try, then the
  // whole exchange runs from the connect.
  const std::string id_key = std::string(via_socks ? "socks5 " : "") + p->host + " " + p->port + " " + opt.bind_address;
  const std::optional<std::uint64_t> cached = opt.cache ? opt.cache->connection_id(id_key) : std::nullopt;
  for (int round = cached ? 0 : 1; round < 2; ++round) {
    std::uint64_t connection = 0;
    if (round == 0) {
      connection = *cached;
    } else {
      const std::uint32_t t1 = rng();
      const std::string connect_pkt = udp_connect_request(t1);  // named: no temporaries around co_await
      auto r1 = co_await exchange(connect_pkt, opt.udp_attempts);
      if (!r1)
        co_return fail(
            url, via_socks ? "no answer from the UDP tracker through the proxy" : "no answer from the UDP tracker");
      auto conn = udp_connect_reply(*r1, t1);
      if (!conn) co_return fail(url, conn.err().message());
      connection = *conn;
      if (opt.cache) opt.cache->remember_connection_id(id_key, connection);
    }
    const std::uint32_t t2 = rng();
    const std::string request_pkt = make(connection, t2);
    auto r2 = co_await exchange(request_pkt, round == 0 ? 1u : opt.udp_attempts);
    std::optional<result<T>> res;
    if (r2) res = read(*r2, t2, tracker_v6);
    if (round == 0 && (!res || !*res)) {
      opt.cache->forget_connection_id(id_key);
      continue;
    }
    if (!r2) co_return fail(url, "no answer to the UDP " + what);
    if (!*res) co_return fail(url, res->err().message());
    co_return std::move(*res);
  }
  co_return fail(url, "no answer to the UDP " + what);
}

}  // namespace

std::string skipped_under_local(const std::string& host) {
  return "skipped under --local: " + host +
         " is not a loopback or private address literal or localhost (nothing sent, no name looked up)";
}

std::optional<url_parts> split_url(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || !u->has_authority() || u->host().empty()) return std::nullopt;
  url_parts p;
  p.scheme = std::string(u->scheme());
  p.host = std::string(u->encoded_host_address());
  if (p.host.size() > 2 && p.host.front() == '[') p.host = p.host.substr(1, p.host.size() - 2);
  p.port = u->has_port() ? std::string(u->port()) : (p.scheme == "https" ? "443" : "80");
  p.target = std::string(u->encoded_path());
  if (p.target.empty()) p.target = "/";
  if (u->has_query()) p.target += "?" + std::string(u->encoded_query());
  return p;
}

asio::awaitable<std::optional<std::string>> connect_http(asio::io_context& io, beast::tcp_stream& s, const url_parts& p,
                                                         const client_options& opt) {
  std::uint16_t port_number = 0;
  try {
    port_number = static_cast<std::uint16_t>(std::stoul(p.port));
  } catch (const std::exception&) {
    co_return "bad port";
  }
  // --local holds through a proxy too: the proxy would dial the host for us.
  std::vector<tcp::endpoint> eps;
  if (opt.local) {
    for (const auto& addr : dht::local_host_addresses(p.host))
      eps.emplace_back(addr, port_number);
    if (eps.empty()) co_return skipped_under_local(p.host);
  }
  // Through a proxy, the proxy resolves the name (no DNS query of ours leaks it).
  if (opt.proxy.enabled()) {
    std::string why;
    auto pec = co_await net::connect_through(s.socket(), opt.proxy, p.host, port_number, &why);
    if (pec) co_return why;
    co_return std::nullopt;
  }
  if (!opt.local) {
    std::vector<asio::ip::address> addrs;
    if (auto why = co_await resolve(io, p.host, p.port, opt, addrs)) co_return why;
    for (const auto& a : addrs)
      eps.emplace_back(a, port_number);
  }
  if (opt.bind_address.empty()) {
    auto [cec, cep] = co_await s.async_connect(eps, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return cec.message();
    co_return std::nullopt;
  }
  // Bound to one address: only the host's addresses of that family, each tried from it.
  boost::system::error_code bec;
  const auto local = asio::ip::make_address(opt.bind_address, bec);
  if (bec) co_return "--bind " + opt.bind_address + " is not an address";
  std::string last = "no address of the bound family";
  for (const auto& e : eps) {
    if (e.address().is_v6() != local.is_v6()) continue;
    boost::system::error_code oec;
    if (s.socket().is_open()) s.socket().close(oec);
    s.socket().open(e.protocol(), oec);
    if (!oec) s.socket().bind(tcp::endpoint(local, 0), oec);
    if (oec) co_return "cannot bind to " + opt.bind_address + ": " + oec.message();
    auto [cec] = co_await s.async_connect(e, asio::as_tuple(asio::use_awaitable));
    if (!cec) co_return std::nullopt;
    last = cec.message();
  }
  co_return last;
}

asio::awaitable<result<announce_response>> announce(asio::io_context& io, const std::string& url,
                                                    const announce_request& req, const client_options& opt) {
  if (url.rfind("udp://", 0) == 0) {
    std::function<std::string(std::uint64_t, std::uint32_t)> make = [req](std::uint64_t c, std::uint32_t t) {
      return udp_announce_request(c, t, req);
    };
    std::function<result<announce_response>(std::string_view, std::uint32_t, bool)> read =
        [](std::string_view pkt, std::uint32_t t, bool v6) { return udp_announce_reply(pkt, t, v6); };
    const std::string what = "announce";
    co_return co_await udp_request<announce_response>(io, url, opt, make, read, what);
  }
  const std::string full = announce_url(url, req);
  auto body = co_await fetch(io, full, max_reply_size, opt);
  if (!body) co_return body.err();
  auto r = parse_announce_reply(*body);
  if (!r) co_return error{r.err().code, redact_url(url) + ": " + r.err().message(), no_offset};
  co_return r;
}

asio::awaitable<result<std::vector<std::optional<scrape_entry>>>> scrape(asio::io_context& io, const std::string& url,
                                                                         const std::vector<sha1_digest>& hashes,
                                                                         const client_options& opt) {
  using answer = std::vector<std::optional<scrape_entry>>;
  if (hashes.empty() || hashes.size() > max_udp_scrape) co_return fail(url, "scrape of 1 to 74 torrents at a time");
  if (url.rfind("udp://", 0) == 0) {
    // Named, not temporaries: GCC 12 destroys temporaries around co_await wrongly.
    std::function<std::string(std::uint64_t, std::uint32_t)> make = [hashes](std::uint64_t c, std::uint32_t t) {
      return udp_scrape_request(c, t, hashes);
    };
    std::function<result<std::vector<scrape_entry>>(std::string_view, std::uint32_t, bool)> read =
        [n = hashes.size()](std::string_view pkt, std::uint32_t t, bool) { return udp_scrape_reply(pkt, t, n); };
    const std::string what = "scrape";
    auto r = co_await udp_request<std::vector<scrape_entry>>(io, url, opt, make, read, what);
    if (!r) co_return r.err();
    answer out(r->begin(), r->end());
    co_return out;
  }
  auto target = scrape_url(url, hashes);
  if (!target) co_return fail(url, "this tracker has no scrape address (its path does not end in /announce)");
  if (target->size() > max_scrape_url) co_return fail(url, "too many torrents for one scrape URL");
  auto body = co_await fetch(io, *target, max_reply_size, opt);
  if (!body) co_return body.err();
  auto r = parse_scrape_replies(*body, hashes);
  if (!r) co_return error{r.err().code, redact_url(url) + ": " + r.err().message(), no_offset};
  co_return r;
}

asio::awaitable<result<std::string>> http_get(asio::io_context& io, const std::string& url, std::size_t limit,
                                              const client_options& opt) {
  co_return co_await fetch(io, url, limit, opt);
}

}  // namespace shoal::tracker
