// A small HTTP/1.1 server (Beast) for the daemon's APIs and web UI. Every bound is one a
// client cannot push past: connections at once, header and body sizes, time to send a
// request, and requests per connection. Handlers run on the server's thread and answer
// synchronously; server-sent event streams are kept open by the handler's streamer.
// With a TLS context set, the same port speaks HTTPS too: each connection's first bytes
// say which (a TLS ClientHello or an HTTP request line), and the handler is told.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>

namespace shoal::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

struct http_limits {
  std::size_t max_clients = 64;            // connections at once; more are closed at accept
  std::size_t max_header = 16 * 1024;      // request line and headers
  std::size_t max_body = 32u << 20;        // a base64 .torrent of 24 MiB fits
  std::chrono::seconds read_timeout{30};   // to send one whole request
  std::chrono::seconds idle_timeout{120};  // between requests on a kept-alive connection
  std::size_t max_requests_per_connection = 10000;
};

struct http_stats {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;     // answers of 400 and above
  std::uint64_t refused = 0;    // connections closed at accept (max_clients)
  std::uint64_t malformed = 0;  // requests that did not parse or broke a limit
};

// A handler may take a request over as a long-lived stream (server-sent events): it
// returns a streamer instead of a response; the server writes what the streamer yields
// until it returns an empty optional or the client goes away.
// Sized (media): the head carries a Content-Length, the streamer's bytes go out raw (no
// chunk framing) up to that length, and the connection serves the next request if the
// client allows it; a body that ends short closes the connection. Not sized (events):
// chunked, and the connection closes afterwards. Either way a client that stops reading
// is dropped after read_timeout. A HEAD request gets the head alone.
struct stream_reply {
  response head;  // sent first (status, headers); its body is ignored
  // Called repeatedly; waits (on the server's executor) for the next chunk, nullopt: end.
  std::function<asio::awaitable<std::optional<std::string>>()> next;
  bool sized = false;
  // Sized only, optional: called when the client closes its end while next() waits (its
  // data may never come); it must make that next() return soon (nullopt).
  std::function<void()> abort;
};

struct reply {
  response resp;
  std::optional<stream_reply> stream;
};

class http_server {
 public:
  // tls: the request came over HTTPS.
  using handler = std::function<reply(const request&, const tcp::endpoint& peer, bool tls)>;
  http_server(asio::io_context& io, handler h, http_limits limits = {});
  ~http_server();
  std::error_code listen(const tcp::endpoint& at);
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Connections that open with a TLS handshake are served over it (none: they are closed).
  void set_tls(std::shared_ptr<asio::ssl::context> ctx) { tls_ = std::move(ctx); }
  // Stops accepting and closes every connection.
  void stop();
  [[nodiscard]] const http_stats& stats() const { return stats_; }
  [[nodiscard]] std::size_t clients() const { return open_.size(); }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<beast::tcp_stream> s, tcp::endpoint peer);
  template <class Stream>
  asio::awaitable<void> serve_requests(Stream& st, beast::tcp_stream& base, beast::flat_buffer& buf,
                                       const tcp::endpoint& peer, bool tls);
  // A sized stream's head and body; true if the connection may serve another request.
  template <class Stream>
  asio::awaitable<bool> write_sized(Stream& st, beast::tcp_stream& base, const request& req, stream_reply& rep);

  asio::io_context& io_;
  handler handler_;
  http_limits limits_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  http_stats stats_;
  std::set<beast::tcp_stream*> open_;  // live connections' streams, closed by stop()
  std::shared_ptr<asio::ssl::context> tls_;
  bool stopped_ = false;
};

// Helpers for handlers.
[[nodiscard]] response make_response(const request& req, http::status st, std::string body,
                                     std::string_view content_type = "text/plain; charset=utf-8");

}  // namespace shoal::daemon
