#include "daemon/http_server.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/ssl.hpp>

namespace shoal::daemon {

namespace {
// A named completion token: GCC 12 mishandles temporaries inside co_await expressions.
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}  // namespace

response make_response(const request& req, http::status st, std::string body, std::string_view content_type) {
  response r{st, req.version()};
  r.set(http::field::server, "shoal");
  r.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  r.keep_alive(req.keep_alive());
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

http_server::http_server(asio::io_context& io, handler h, http_limits limits)
    : io_(io), handler_(std::move(h)), limits_(limits), acceptor_(io) {}

http_server::~http_server() {
  stop();
}

std::error_code http_server::listen(const tcp::endpoint& at) {
  boost::system::error_code ec;
  acceptor_.open(at.protocol(), ec);
  if (ec) return ec;
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (at.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
  acceptor_.bind(at, ec);
  if (ec) return ec;
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

void http_server::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto* s : open_)
    s->socket().close(ec);
}

asio::awaitable<void> http_server::accept_loop() {
  while (!stopped_) {
    tcp::endpoint peer;
    auto [ec, sock] = co_await acceptor_.async_accept(peer, as_tuple_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopped_) co_return;
      asio::steady_timer pause(io_);  // out of descriptors: wait rather than spin
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
      continue;
    }
    if (open_.size() >= limits_.max_clients) {
      ++stats_.refused;
      boost::system::error_code ignore;
      sock.close(ignore);
      continue;
    }
    auto s = std::make_shared<beast::tcp_stream>(std::move(sock));
    open_.insert(s.get());
    asio::co_spawn(io_, serve(s, peer), asio::detached);
  }
}

asio::awaitable<void> http_server::serve(std::shared_ptr<beast::tcp_stream> s, tcp::endpoint peer) {
  struct unregister {
    http_server* self;
    beast::tcp_stream* s;
    ~unregister() {
      if (!self->stopped_) self->open_.erase(s);
    }
  } guard{this, s.get()};
  beast::flat_buffer buf;
  if (tls_) {
    // The first bytes tell a TLS ClientHello from an HTTP request line; what was read
    // stays in buf for the handshake or the parser.
    s->expires_after(limits_.read_timeout);
    auto [dec, is_tls] = co_await beast::async_detect_ssl(*s, buf, as_tuple_awaitable);
    if (dec || stopped_) {
      boost::system::error_code ignore;
      s->socket().close(ignore);
      co_return;
    }
    if (is_tls) {
      beast::ssl_stream<beast::tcp_stream> ss(std::move(*s), *tls_);
      open_.erase(s.get());
      guard.s = &ss.next_layer();
      open_.insert(guard.s);
      ss.next_layer().expires_after(limits_.read_timeout);
      auto [hec, used] = co_await ss.async_handshake(asio::ssl::stream_base::server, buf.data(), as_tuple_awaitable);
      if (!hec && !stopped_) {
        buf.consume(used);
        co_await serve_requests(ss, ss.next_layer(), buf, peer, true);
      }
      boost::system::error_code ignore;
      ss.next_layer().socket().close(ignore);
      co_return;
    }
  }
  co_await serve_requests(*s, *s, buf, peer, false);
  boost::system::error_code ec;
  s->socket().shutdown(tcp::socket::shutdown_send, ec);
  s->socket().close(ec);
}

template <class Stream>
asio::awaitable<void> http_server::serve_requests(Stream& st, beast::tcp_stream& base, beast::flat_buffer& buf,
                                                  const tcp::endpoint& peer, bool tls) {
  for (std::size_t n = 0; n < limits_.max_requests_per_connection && !stopped_; ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header));
    parser.body_limit(limits_.max_body);
    // The first byte of a request may be awaited for the idle time, the whole of it for
    // the read time once it started (a client that trickles bytes is cut off).
    base.expires_after(n == 0 ? limits_.read_timeout : limits_.idle_timeout);
    auto [hec, hn] = co_await http::async_read_header(st, buf, parser, as_tuple_awaitable);
    if (!hec) {
      base.expires_after(limits_.read_timeout);
      auto [bec, bn] = co_await http::async_read(st, buf, parser, as_tuple_awaitable);
      hec = bec;
    }
    if (hec) {
      if (hec == http::error::end_of_stream || hec == asio::error::eof || hec == asio::error::connection_reset ||
          hec == asio::error::operation_aborted || hec == beast::error::timeout ||
          hec == asio::ssl::error::stream_truncated || stopped_) {
        break;
      }
      ++stats_.malformed;
      ++stats_.errors;
      const bool too_big = hec == http::error::body_limit || hec == http::error::header_limit;
      response r{too_big ? http::status::payload_too_large : http::status::bad_request, 11};
      r.set(http::field::server, "shoal");
      r.set(http::field::content_type, "text/plain; charset=utf-8");
      r.keep_alive(false);
      r.body() = "malformed HTTP request: " + hec.message() + "\n";
      r.prepare_payload();
      base.expires_after(limits_.read_timeout);
      co_await http::async_write(st, r, as_tuple_awaitable);
      break;
    }
    request req = parser.release();
    ++stats_.requests;
    reply rep = handler_(req, peer, tls);
    if (rep.stream && rep.stream->sized) {
      if (rep.stream->head.result_int() >= 400) ++stats_.errors;
      if (!co_await write_sized(st, base, req, *rep.stream)) break;
      continue;
    }
    if (rep.stream) {
      // A long-lived stream: headers, then chunks as they come, until either side ends.
      auto& head = rep.stream->head;
      head.version(11);
      head.keep_alive(false);
      head.erase(http::field::content_length);
      head.chunked(true);
      http::response_serializer<http::string_body> sr(head);
      base.expires_never();
      auto [wec, wn] = co_await http::async_write_header(st, sr, as_tuple_awaitable);
      while (!wec && !stopped_) {
        auto chunk = co_await rep.stream->next();
        if (!chunk) break;
        base.expires_after(limits_.read_timeout);  // a client that stops reading is dropped
        auto [cec, cn] = co_await asio::async_write(st, http::make_chunk(asio::buffer(*chunk)), as_tuple_awaitable);
        wec = cec;
        base.expires_never();
      }
      if (!wec) co_await asio::async_write(st, http::make_chunk_last(), as_tuple_awaitable);
      break;
    }
    auto& r = rep.resp;
    if (r.result_int() >= 400) ++stats_.errors;
    if (req.method() == http::verb::head) r.body().clear();
    base.expires_after(limits_.read_timeout);
    auto [wec, wn] = co_await http::async_write(st, r, as_tuple_awaitable);
    if (wec || !r.keep_alive()) break;
  }
}

template <class Stream>
asio::awaitable<bool> http_server::write_sized(Stream& st, beast::tcp_stream& base, const request& req,
                                               stream_reply& rep) {
  auto& head = rep.head;
  // The length the handler set; a head without one is a body of none.
  std::uint64_t left = 0;
  if (auto cl = head.find(http::field::content_length); cl != head.end()) {
    try {
      left = std::stoull(std::string(cl->value()));
    } catch (const std::exception&) {
      left = 0;
    }
  }
  const bool keep = req.keep_alive() && head.keep_alive();
  head.version(req.version());
  head.chunked(false);
  head.keep_alive(keep);
  head.content_length(left);
  http::response_serializer<http::string_body> sr(head);
  base.expires_after(limits_.read_timeout);
  auto [wec, wn] = co_await http::async_write_header(st, sr, as_tuple_awaitable);
  if (wec || stopped_) co_return false;
  if (req.method() == http::verb::head) co_return keep;
  while (left > 0 && !stopped_) {
    base.expires_never();  // the data may take its time to arrive
    // Meanwhile the socket is watched: a client that closed its end (EOF or reset) aborts
    // the wait, so a player that seeks away does not keep a body waiting for data.
    auto watching = std::make_shared<bool>(true);
    if (rep.abort) {
      auto& sock = base.socket();
      sock.async_wait(tcp::socket::wait_read, [watching, &sock, abort = rep.abort](boost::system::error_code ec) {
        if (ec || !*watching) return;
        char c = 0;
        boost::system::error_code pec;
        const auto n = sock.receive(asio::buffer(&c, 1), tcp::socket::message_peek, pec);
        if (pec || n == 0) abort();  // else a pipelined request: it waits its turn
      });
    }
    auto bytes = co_await rep.next();
    if (rep.abort && *watching) {
      *watching = false;
      boost::system::error_code cec;
      base.socket().cancel(cec);
    }
    if (!bytes || bytes->empty() || stopped_) co_return false;  // short: the client sees the connection close
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, bytes->size()));
    base.expires_after(limits_.read_timeout);  // a client that stops reading is dropped
    auto [cec, cn] = co_await asio::async_write(st, asio::buffer(bytes->data(), n), as_tuple_awaitable);
    if (cec) co_return false;
    left -= n;
  }
  co_return keep && !stopped_;
}

}  // namespace shoal::daemon
