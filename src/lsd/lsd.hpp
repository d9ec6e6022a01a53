// Local Service Discovery (BEP 14): torrents announced on the LAN by multicast, so peers on
// one network find each other with no tracker and no DHT. The codec is pure; `service`
// does the I/O on the session's io_context.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal::lsd {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;

inline constexpr std::uint16_t lsd_port = 6771;
inline constexpr const char* group_v4 = "239.192.152.143";
inline constexpr std::size_t max_hashes_per_announce = 16;  // stays under 1400 bytes
inline constexpr std::size_t max_announce_size = 1400;

struct announce {
  std::uint16_t port = 0;
  std::vector<sha1_digest> info_hashes;
  std::string cookie;
};

[[nodiscard]] std::string format_announce(const announce& a);
// Parses a BT-SEARCH datagram; extra headers are ignored, header names are case-blind.
[[nodiscard]] result<announce> parse_announce(std::string_view datagram);

// True when this process runs in a network namespace other than the system's (tests
// build such networks; LSD under --local is on only there).
[[nodiscard]] bool in_network_namespace();

struct service_settings {
  std::uint16_t peer_port = 0;  // our TCP listen port, announced
  std::chrono::seconds interval{300};
  std::function<void(const sha1_digest&, const tcp::endpoint&)> on_peer;
  std::function<void(const std::string&)> log;
};

class service : public std::enable_shared_from_this<service> {
 public:
  service(asio::io_context& io, service_settings s);
  // Joins the multicast group; an error (no multicast route, port taken) leaves LSD off.
  std::error_code start();
  void stop();
  // Announces these torrents now (at most once a minute each) and every interval after.
  void add(const sha1_digest& h);
  void remove(const sha1_digest& h);
  [[nodiscard]] bool running() const { return sock_.is_open(); }

 private:
  asio::awaitable<void> receive_loop(std::shared_ptr<service> self);
  asio::awaitable<void> announce_loop(std::shared_ptr<service> self);
  void send_due(bool all);

  asio::io_context& io_;
  service_settings s_;
  udp::socket sock_;
  udp::endpoint group_;
  std::string cookie_;
  std::map<sha1_digest, std::chrono::steady_clock::time_point> torrents_;                 // hash -> last announced
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, int>> sources_;  // rate limit
  asio::steady_timer timer_;
};

}  // namespace shoal::lsd
