// uTP (BEP 29) on Asio: one UDP socket per address family, shared by every uTP connection
// of a session and, through set_fallback/send_to, by the DHT and UDP tracker clients.
// Connections are utp::connection state machines; this file adds sockets, time and the
// net::stream face that peer connections talk through.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>

#include "net/stream.hpp"
#include "net/utp_connection.hpp"

namespace shoal::net {

namespace detail {
struct utp_core;
struct utp_conn;
}  // namespace detail

struct utp_settings {
  utp::connection_config conn;      // max_datagram is lowered by 20 for IPv6 peers
  std::size_t max_half_open = 256;  // accepted SYNs not yet confirmed by the remote
  std::size_t max_connections = 4096;
  int socket_buffer = 4 << 20;  // SO_RCVBUF / SO_SNDBUF asked for (the kernel may cap it)
  std::chrono::milliseconds tick{20};
  std::size_t max_batch = 256;  // datagrams read per wake-up
  // Linux UDP segmentation offload for trains of same-size datagrams (falls back to plain
  // sendmmsg when the kernel refuses it).
  bool gso = true;
  bool gro = true;  // receive offload (many datagrams per message)
};

struct utp_manager_stats {
  std::uint64_t datagrams_in = 0, datagrams_out = 0, utp_in = 0, fallback_in = 0, send_drops = 0, resets_sent = 0,
                syns_refused = 0, connections_accepted = 0;
};

class utp_socket_manager {
 public:
  using udp = asio::ip::udp;
  using accept_fn = std::function<void(std::unique_ptr<stream>)>;
  using fallback_fn = std::function<void(std::span<const char>, const udp::endpoint&)>;

  explicit utp_socket_manager(asio::io_context& io, utp_settings s = {});
  ~utp_socket_manager();
  utp_socket_manager(const utp_socket_manager&) = delete;
  utp_socket_manager& operator=(const utp_socket_manager&) = delete;

  // Binds the socket of ep's family (once per family; port 0 picks one) and starts reading.
  error_code listen(const udp::endpoint& ep);
  // Incoming connections, once the remote has proven it receives our packets.
  void set_accept_handler(accept_fn fn);
  // Datagrams that are not uTP (KRPC dictionaries, UDP tracker replies, anything else).
  void set_fallback(fallback_fn fn);
  // Sends a datagram on the socket of `to`'s family (for the DHT and UDP trackers).
  void send_to(std::span<const char> datagram, const udp::endpoint& to);
  // Opens a uTP connection; fails with timed_out, connection_refused or address_family_not_supported.
  asio::awaitable<std::pair<error_code, std::unique_ptr<stream>>> connect(
      endpoint remote, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Resets every connection and closes the sockets.
  void close();

  [[nodiscard]] udp::endpoint local_endpoint(bool v6 = false) const;
  [[nodiscard]] std::size_t connection_count() const;
  [[nodiscard]] const utp_manager_stats& stats() const;

 private:
  std::shared_ptr<detail::utp_core> core_;
};

// A uTP connection as a byte stream. Made by utp_socket_manager (connect and accept).
class utp_stream final : public stream {
 public:
  explicit utp_stream(std::shared_ptr<detail::utp_conn> c);
  ~utp_stream() override;
  asio::awaitable<io_result> read_some(asio::mutable_buffer buf) override;
  // Completes once every byte is in the send buffer (bounded: back-pressure).
  asio::awaitable<io_result> write(asio::const_buffer buf) override;
  // Graceful: queued bytes still go out, then FIN; pending reads and writes end at once.
  void close() override;
  [[nodiscard]] endpoint remote_endpoint() const override;
  [[nodiscard]] endpoint local_endpoint() const override;
  [[nodiscard]] const char* transport() const override { return "utp"; }
  // The state machine, for tests and statistics.
  [[nodiscard]] const utp::connection& connection() const;

 private:
  std::shared_ptr<detail::utp_conn> c_;
  bool closed_ = false;
};

}  // namespace shoal::net
