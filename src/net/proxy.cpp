#include "net/proxy.hpp"

#include <memory>

namespace shoal::net {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Closes the socket if the exchange outlives its deadline. The flag outlives the
// coroutine: a timer handler already queued when the exchange ends must not touch a
// socket that may be gone by then.
class deadline {
 public:
  deadline(tcp::socket& sock, std::chrono::milliseconds after) : timer_(sock.get_executor()) {
    timer_.expires_after(after);
    timer_.async_wait([&sock, st = state_](error_code ec) {
      if (ec || st->done) return;
      st->fired = true;
      error_code ignore;
      sock.close(ignore);
    });
  }
  ~deadline() {
    state_->done = true;
    timer_.cancel();
  }
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;
  [[nodiscard]] bool fired() const { return state_->fired; }

 private:
  struct state {
    bool done = false, fired = false;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
  asio::steady_timer timer_;
};

// Reads exactly n more bytes onto the end of buf.
asio::awaitable<error_code> read_more(tcp::socket& sock, std::string& buf, std::size_t n) {
  const std::size_t at = buf.size();
  buf.resize(at + n);
  auto [ec, got] = co_await asio::async_read(sock, asio::buffer(buf.data() + at, n), tuple_awaitable);
  buf.resize(at + got);
  co_return ec;
}

asio::awaitable<error_code> write_all(tcp::socket& sock, const std::string& data) {
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(data), tuple_awaitable);
  co_return ec;
}

asio::awaitable<error_code> connect_to_proxy(tcp::socket& sock, const proxy_settings& p, std::string& why) {
  tcp::resolver resolver(sock.get_executor());
  const std::string port = std::to_string(p.port);
  auto [rec, eps] = co_await resolver.async_resolve(p.host, port, tuple_awaitable);
  if (rec) {
    why = "cannot resolve the proxy's host " + p.host + ": " + rec.message();
    co_return rec;
  }
  auto [cec, ep] = co_await asio::async_connect(sock, eps, tuple_awaitable);
  if (cec) {
    why = "cannot connect to the proxy: " + cec.message();
    co_return cec;
  }
  error_code ignore;
  sock.set_option(tcp::no_delay(true), ignore);
  co_return error_code{};
}

// Method selection and, when the proxy wants it, username/password authentication.
asio::awaitable<error_code> socks5_login(tcp::socket& sock, const proxy_settings& p, std::string& why) {
  const bool with_password = !p.user.empty();
  const std::string greeting = socks5_greeting(with_password);
  if (auto ec = co_await write_all(sock, greeting)) {
    why = "sending the SOCKS5 greeting: " + ec.message();
    co_return ec;
  }
  std::string in;
  if (auto ec = co_await read_more(sock, in, 2)) {
    why = "reading the SOCKS5 method choice: " + ec.message();
    co_return ec;
  }
  auto method = parse_socks5_method(in, with_password);
  if (!method) {
    why = method.error().message();
    co_return method.error();
  }
  if (*method != socks5_method_password) co_return error_code{};
  auto req = socks5_auth_request(p.user, p.password);
  if (!req) {
    why = req.error().message();
    co_return req.error();
  }
  const std::string auth = *req;
  if (auto ec = co_await write_all(sock, auth)) {
    why = "sending the SOCKS5 credentials: " + ec.message();
    co_return ec;
  }
  in.clear();
  if (auto ec = co_await read_more(sock, in, 2)) {
    // Some servers close the connection instead of answering a wrong password.
    why = "reading the SOCKS5 authentication reply: " + ec.message() + " (wrong user name or password?)";
    co_return ec;
  }
  if (auto ec = parse_socks5_auth_reply(in)) {
    why = ec.message();
    co_return ec;
  }
  co_return error_code{};
}

// One request (CONNECT or UDP ASSOCIATE) and its reply; `bound` gets BND.ADDR/BND.PORT.
asio::awaitable<error_code> socks5_command(tcp::socket& sock, std::uint8_t cmd, const socks5_address& to,
                                           socks5_address& bound, std::string& why) {
  auto req = socks5_request(cmd, to);
  if (!req) {
    why = req.error().message();
    co_return req.error();
  }
  const std::string out = *req;
  if (auto ec = co_await write_all(sock, out)) {
    why = "sending the SOCKS5 request: " + ec.message();
    co_return ec;
  }
  std::string in;
  if (auto ec = co_await read_more(sock, in, 5)) {
    why = "reading the SOCKS5 reply: " + ec.message();
    co_return ec;
  }
  // A refusal may come with a short or zeroed address: the code matters more.
  if (static_cast<std::uint8_t>(in[0]) == 5 && in[1] != 0) {
    const auto rep = static_cast<std::uint8_t>(in[1]);
    const error_code ec =
        rep <= 8 ? make_error_code(static_cast<proxy_errc>(rep)) : make_error_code(proxy_errc::unknown_reply_code);
    why = ec.message() + " (reply code " + std::to_string(rep) + ")";
    co_return ec;
  }
  auto n = socks5_reply_length(in);
  if (!n) {
    why = n.error().message();
    co_return n.error();
  }
  if (auto ec = co_await read_more(sock, in, *n - in.size())) {
    why = "reading the SOCKS5 reply: " + ec.message();
    co_return ec;
  }
  auto r = parse_socks5_reply(in);
  if (!r) {
    why = r.error().message();
    co_return r.error();
  }
  bound = *r;
  co_return error_code{};
}

asio::awaitable<error_code> http_tunnel(tcp::socket& sock, const proxy_settings& p, const std::string& host,
                                        std::uint16_t port, std::string& why) {
  const std::string req = http_connect_request(host, port, p.user, p.password);
  if (auto ec = co_await write_all(sock, req)) {
    why = "sending CONNECT: " + ec.message();
    co_return ec;
  }
  // Byte by byte up to the empty line: anything after it is the target's, and the
  // socket must hand it over untouched. A reply head is a few hundred bytes.
  std::string head;
  char c = 0;
  while (true) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(&c, 1), tuple_awaitable);
    if (ec) {
      why = "reading the reply to CONNECT: " + ec.message();
      co_return ec;
    }
    head.push_back(c);
    if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) break;
    if (head.size() > max_http_head) {
      why = make_error_code(proxy_errc::http_reply_too_large).message();
      co_return proxy_errc::http_reply_too_large;
    }
  }
  auto r = parse_http_connect_reply(head);
  if (!r) {
    why = r.error().message();
    co_return r.error();
  }
  if (r->status < 200 || r->status > 299) {
    why = "HTTP proxy refused CONNECT to " + host + ":" + std::to_string(port) + ": HTTP " + std::to_string(r->status) +
          " " + r->reason;
    co_return proxy_errc::http_refused;
  }
  co_return error_code{};
}

asio::awaitable<error_code> tunnel(tcp::socket& sock, const proxy_settings& p, const std::string& host,
                                   std::uint16_t port, std::string& why) {
  if (auto ec = co_await connect_to_proxy(sock, p, why)) co_return ec;
  if (p.type == proxy_settings::http) co_return co_await http_tunnel(sock, p, host, port, why);
  if (auto ec = co_await socks5_login(sock, p, why)) co_return ec;
  socks5_address bound;
  const socks5_address to = socks5_target(host, port);
  co_return co_await socks5_command(sock, socks5_cmd_connect, to, bound, why);
}

std::string seconds(std::chrono::milliseconds t) {
  const auto ms = t.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

asio::awaitable<error_code> connect_through(tcp::socket& sock, const proxy_settings& p, std::string target_host,
                                            std::uint16_t target_port, std::string* why) {
  std::string detail;
  error_code ec;
  if (!p.enabled()) {
    ec = asio::error::invalid_argument;
    detail = "no proxy configured";
  } else {
    deadline limit(sock, p.timeout);
    ec = co_await tunnel(sock, p, target_host, target_port, detail);
    if (limit.fired()) {
      ec = proxy_errc::timed_out;
      detail = "no answer within " + seconds(p.timeout);
    }
  }
  if (ec) {
    error_code ignore;
    sock.close(ignore);
    if (why) *why = "proxy " + describe(p) + ": " + detail;
  }
  co_return ec;
}

asio::awaitable<error_code> connect_tcp(tcp::socket& sock, const proxy_settings& p, tcp::endpoint ep,
                                        std::string* why) {
  if (p.enabled()) {
    co_return co_await connect_through(sock, p, ep.address().to_string(), ep.port(), why);
  }
  auto [ec] = co_await sock.async_connect(ep, tuple_awaitable);
  if (ec && why) *why = ec.message();
  co_return ec;
}

asio::awaitable<error_code> socks5_udp_associate(socks5_udp_association& assoc, const proxy_settings& p,
                                                 udp::endpoint local, std::string* why) {
  std::string detail;
  error_code ec;
  if (p.type != proxy_settings::socks5) {
    ec = asio::error::invalid_argument;
    detail = "UDP needs a SOCKS5 proxy";
  } else {
    deadline limit(assoc.control, p.timeout);
    ec = co_await connect_to_proxy(assoc.control, p, detail);
    if (!ec) ec = co_await socks5_login(assoc.control, p, detail);
    socks5_address bound;
    if (!ec) {
      socks5_address from;
      from.ip = local.address();
      from.port = local.port();
      ec = co_await socks5_command(assoc.control, socks5_cmd_udp_associate, from, bound, detail);
    }
    if (limit.fired()) {
      ec = proxy_errc::timed_out;
      detail = "no answer within " + seconds(p.timeout);
    }
    if (!ec) {
      if (!bound.domain.empty()) {
        // A relay named by a host name: resolve it like the proxy's own.
        udp::resolver resolver(assoc.control.get_executor());
        const std::string port = std::to_string(bound.port);
        auto [rec, eps] = co_await resolver.async_resolve(bound.domain, port, tuple_awaitable);
        if (rec || eps.empty()) {
          ec = rec ? rec : make_error_code(asio::error::host_not_found);
          detail = "cannot resolve the UDP relay " + bound.domain + ": " + ec.message();
        } else {
          assoc.relay = eps.begin()->endpoint();
        }
      } else {
        error_code pec;
        auto proxy_ep = assoc.control.remote_endpoint(pec);
        auto addr = bound.ip.is_unspecified() && !pec ? proxy_ep.address() : bound.ip;
        assoc.relay = udp::endpoint(addr, bound.port);
      }
    }
  }
  if (ec) {
    error_code ignore;
    assoc.control.close(ignore);
    if (why) *why = "proxy " + describe(p) + ": UDP ASSOCIATE: " + detail;
  }
  co_return ec;
}

}  // namespace shoal::net
