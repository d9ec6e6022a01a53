#include "tracker/server.hpp"

#include <sodium/core.h>
#include <sodium/randombytes.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <unordered_set>

namespace shoal::tracker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

namespace {

// A named completion token: GCC 12 mishandles temporaries inside co_await expressions.
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t max_header_bytes = 8192;  // request line and headers of one HTTP request
constexpr std::size_t udp_drain_batch = 256;    // datagrams handled per wake-up before others get a turn
constexpr std::size_t max_datagram = 2048;      // larger ones are truncated (no BEP 15 request is that long)

}  // namespace

struct server::impl {
  impl(asio::io_context& io_, server_options o)
      : io(io_),
        opt(std::move(o)),
        svc(opt.service, make_secret(), make_seed()),
        acceptor(io_),
        sock(io_),
        sweep(io_),
        idle(io_),
        started(std::chrono::steady_clock::now()) {}

  static connection_secret make_secret() {
    connection_secret s;
    randombytes_buf(s.data(), s.size());
    return s;
  }
  static std::uint64_t make_seed() {
    std::uint64_t v = 0;
    randombytes_buf(&v, sizeof v);
    return v;
  }

  std::uint64_t now() const {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count());
  }

  result<std::uint16_t> listen();
  asio::awaitable<void> accept_loop();
  struct connection {
    tcp::socket sock;
    std::chrono::steady_clock::time_point last;  // last request read or reply written
  };
  asio::awaitable<void> http_session(tcp::socket s, tcp::endpoint remote);
  asio::awaitable<void> udp_loop();
  asio::awaitable<void> sweep_loop();
  asio::awaitable<void> idle_loop();
  void handle_datagrams();

  asio::io_context& io;
  server_options opt;
  service svc;
  tcp::acceptor acceptor;
  udp::socket sock;
  asio::steady_timer sweep;
  asio::steady_timer idle;
  std::chrono::steady_clock::time_point started;
  std::unordered_set<connection*> conns;  // open HTTP connections: idle_loop and stop() close them
  bool stopping = false;
  std::array<char, max_datagram> in{};
  std::string out;
};

result<std::uint16_t> server::impl::listen() {
  boost::system::error_code ec;
  asio::ip::address addr;
  const bool any = opt.bind.empty();
  if (any) {
    addr = asio::ip::address_v6::any();
  } else {
    addr = asio::ip::make_address(opt.bind, ec);
    if (ec) return error{errc::invalid_argument, "--bind '" + opt.bind + "': not an IP address", no_offset};
  }
  auto open_both = [&](const asio::ip::address& a, std::uint16_t port) -> boost::system::error_code {
    boost::system::error_code e;
    acceptor.close(e);
    sock.close(e);
    const tcp::endpoint tep(a, port);
    acceptor.open(tep.protocol(), e);
    if (e) return e;
    if (a.is_v6()) acceptor.set_option(asio::ip::v6_only(false), e);
    acceptor.set_option(asio::socket_base::reuse_address(true), e);
    acceptor.bind(tep, e);
    if (e) return e;
    acceptor.listen(asio::socket_base::max_listen_connections, e);
    if (e) return e;
    const udp::endpoint uep(a, acceptor.local_endpoint().port());
    sock.open(uep.protocol(), e);
    if (e) return e;
    if (a.is_v6()) sock.set_option(asio::ip::v6_only(false), e);
    sock.bind(uep, e);
    if (e) return e;
    // Bursts of announces queue in the kernel rather than being dropped.
    sock.set_option(asio::socket_base::receive_buffer_size(4 << 20), e);
    sock.non_blocking(true, e);
    return {};
  };
  for (int attempt = 0; attempt < 20; ++attempt) {
    ec = open_both(addr, opt.port);
    if (ec && any && attempt == 0 && addr.is_v6()) {
      // No IPv6 on this machine: IPv4 only.
      addr = asio::ip::address_v4::any();
      ec = open_both(addr, opt.port);
    }
    // With port 0, the TCP port the kernel chose may be taken for UDP: try another.
    if (!ec || opt.port != 0) break;
  }
  if (ec) {
    return error{errc::io,
                 "cannot listen on " + addr.to_string() + " port " + std::to_string(opt.port) + ": " + ec.message(),
                 no_offset};
  }
  return acceptor.local_endpoint().port();
}

asio::awaitable<void> server::impl::accept_loop() {
  while (!stopping) {
    tcp::endpoint remote;  // filled by accept: no getpeername per connection
    auto [ec, s] = co_await acceptor.async_accept(remote, as_tuple_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) co_return;
      // Out of descriptors and the like: wait a moment rather than spin.
      asio::steady_timer pause(io);
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
      continue;
    }
    if (conns.size() >= opt.max_connections) {
      boost::system::error_code ignore;
      s.close(ignore);
      continue;
    }
    asio::co_spawn(io, http_session(std::move(s), remote), asio::detached);
  }
}

// Timeouts come from idle_loop, one timer for every connection, rather than a timer per
// read and write: re-arming one costs a timerfd_settime syscall whenever it becomes the
// earliest, which was two of the twelve syscalls of a one-announce connection.
asio::awaitable<void> server::impl::http_session(tcp::socket s, tcp::endpoint remote) {
  connection c{std::move(s), std::chrono::steady_clock::now()};
  conns.insert(&c);
  struct unregister {
    impl* self;
    connection* c;
    ~unregister() { self->conns.erase(c); }
  } guard{this, &c};
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  while (!stopping) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(max_header_bytes);
    auto [rec, rn] = co_await http::async_read(c.sock, buf, parser, as_tuple_awaitable);
    if (rec) {
      if (rec == http::error::end_of_stream || rec == asio::error::eof || rec == asio::error::connection_reset ||
          rec == asio::error::operation_aborted || rec == asio::error::bad_descriptor || stopping) {
        break;
      }
      // Malformed request, header too long, a body: say so once and close.
      res = {};
      res.result(http::status::bad_request);
      res.version(11);
      res.set(http::field::content_type, "text/plain");
      res.keep_alive(false);
      res.body() = encode_http_failure("malformed HTTP request: " + rec.message());
      res.prepare_payload();
      c.last = std::chrono::steady_clock::now();
      co_await http::async_write(c.sock, res, as_tuple_awaitable);
      // Unread input is likely here: closing at once would send a reset that can reach the
      // client before it reads the reply. A FIN first lets the reply through.
      boost::system::error_code ignore;
      c.sock.shutdown(tcp::socket::shutdown_send, ignore);
      break;
    }
    c.last = std::chrono::steady_clock::now();
    const auto& req = parser.get();
    res = {};
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "shoal");
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::content_type, "text/plain");
      res.keep_alive(false);
      res.body() = "only GET\n";
    } else {
      const std::string_view target(req.target().data(), req.target().size());
      auto reply = svc.handle_http(target, remote.address(), now());
      res.result(static_cast<http::status>(reply.status));
      res.set(http::field::content_type, beast::string_view(reply.content_type.data(), reply.content_type.size()));
      res.body() = std::move(reply.body);
      if (reply.status == 414) res.keep_alive(false);
    }
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    auto [wec, wn] = co_await http::async_write(c.sock, res, as_tuple_awaitable);
    c.last = std::chrono::steady_clock::now();
    if (wec || !res.keep_alive()) break;
  }
  // Closing sends the FIN (no separate shutdown call on the normal path).
  boost::system::error_code ec;
  c.sock.close(ec);
}

void server::impl::handle_datagrams() {
  for (std::size_t i = 0; i < udp_drain_batch; ++i) {
    udp::endpoint from;
    boost::system::error_code ec;
    const std::size_t n = sock.receive_from(asio::buffer(in), from, 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return;
    if (ec) continue;  // e.g. ICMP errors reported on the socket
    if (!svc.handle_udp(std::string_view(in.data(), n), from.address(), from.port(), now(), out)) continue;
    sock.send_to(asio::buffer(out), from, 0, ec);  // a full send buffer drops the reply, as UDP may
  }
}

asio::awaitable<void> server::impl::udp_loop() {
  while (!stopping) {
    auto [ec] = co_await sock.async_wait(udp::socket::wait_read, as_tuple_awaitable);
    if (ec) co_return;
    handle_datagrams();
  }
}

asio::awaitable<void> server::impl::idle_loop() {
  while (!stopping) {
    idle.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await idle.async_wait(as_tuple_awaitable);
    if (ec || stopping) co_return;
    // A connection that made no progress (no complete request read, no reply written)
    // for idle_timeout is closed: idle keep-alive, slow senders, clients that do not read.
    const auto limit = std::chrono::steady_clock::now() - opt.idle_timeout;
    for (auto* c : conns) {
      if (c->last < limit) {
        boost::system::error_code ignore;
        c->sock.close(ignore);  // its coroutine ends with operation_aborted
      }
    }
  }
}

asio::awaitable<void> server::impl::sweep_loop() {
  const auto period = std::chrono::seconds(std::clamp<std::uint32_t>(svc.peer_timeout() / 4, 1, 60));
  while (!stopping) {
    sweep.expires_after(period);
    auto [ec] = co_await sweep.async_wait(as_tuple_awaitable);
    if (ec || stopping) co_return;
    svc.expire(now());
  }
}

server::server(asio::io_context& io, server_options opt) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  p_ = std::make_unique<impl>(io, std::move(opt));
}

server::~server() = default;

result<std::uint16_t> server::listen() {
  return p_->listen();
}

void server::start() {
  asio::co_spawn(p_->io, p_->accept_loop(), asio::detached);
  asio::co_spawn(p_->io, p_->udp_loop(), asio::detached);
  asio::co_spawn(p_->io, p_->sweep_loop(), asio::detached);
  asio::co_spawn(p_->io, p_->idle_loop(), asio::detached);
}

void server::stop() {
  p_->stopping = true;
  boost::system::error_code ec;
  p_->acceptor.close(ec);
  p_->sock.close(ec);
  p_->sweep.cancel();
  p_->idle.cancel();
  for (auto* c : p_->conns)
    c->sock.close(ec);
}

std::uint16_t server::port() const {
  boost::system::error_code ec;
  return p_->acceptor.local_endpoint(ec).port();
}

std::string server::address() const {
  boost::system::error_code ec;
  return p_->acceptor.local_endpoint(ec).address().to_string();
}

const service& server::svc() const {
  return p_->svc;
}

}  // namespace shoal::tracker
