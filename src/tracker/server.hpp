// The tracker server's I/O on one io_context thread: an HTTP/1.1 server (Beast, keep-alive)
// for /announce, /scrape and /stats, and a UDP socket for BEP 15, both on the same port
// number. The protocol work is done by `service`; this file only moves bytes, enforces
// the per-connection limits and runs the expiry timer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "tracker/service.hpp"

namespace shoal::tracker {

struct server_options {
  std::string bind;  // address to listen on; empty: "::" (dual-stack), or 0.0.0.0 without IPv6
  std::uint16_t port = 6969;
  std::size_t max_connections = 2048;     // HTTP connections open at once; more are closed at once
  std::chrono::seconds idle_timeout{15};  // a connection with no complete request for this long is closed
  service_options service;
};

class server {
 public:
  server(boost::asio::io_context& io, server_options opt);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds TCP and UDP to one port number (with port 0, one that is free for both).
  [[nodiscard]] result<std::uint16_t> listen();
  // Starts accepting, reading datagrams and expiring peers.
  void start();
  // Closes every socket and the timer; io_context::run returns once the coroutines end.
  void stop();

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::string address() const;
  [[nodiscard]] const service& svc() const;

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace shoal::tracker
