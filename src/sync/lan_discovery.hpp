// LAN discovery for sync folders: each running folder sends a small UDP multicast datagram
// every interval (and at start) to 239.192.76.79:21131, and listens there for other
// devices' datagrams. A datagram names the folder by a 20-byte hash of its share id (never
// a key: knowing it lets one find devices, not read the folder), the sender's sync port and
// its device id. A device heard for the same folder is handed to on_found (at most once per
// min_gap per device and address), which dials it; the peer still has to prove it holds the
// folder's key in the secure channel's handshake.
//
//   datagram: "SHL1" | folder (20 bytes) | port (2 bytes, big-endian) | n (1 byte) | device (n bytes)
//
// The table of devices heard is bounded (max_entries, the least recently heard goes first).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "net/stream.hpp"
#include "sync/keys.hpp"

namespace shoal::sync {

inline constexpr std::uint16_t lan_port = 21131;
inline constexpr std::string_view lan_group = "239.192.76.79";
inline constexpr std::size_t max_lan_device_bytes = 64;

struct lan_announcement {
  sha1_digest folder{};
  std::uint16_t port = 0;
  std::string device;
};

// The folder's name in announcements: SHA-1 of "shoal-sync-lan" and its share id.
[[nodiscard]] sha1_digest lan_id_of(const share_id& share);
[[nodiscard]] std::string encode_announcement(const lan_announcement& a);
// nullopt for anything that is not exactly a datagram of the form above (port 0, an empty
// or too long device id, bytes past the end).
[[nodiscard]] std::optional<lan_announcement> decode_announcement(std::string_view datagram);

// Who was heard: a device at an address is reported again only after min_gap.
class lan_table {
 public:
  using clock = std::chrono::steady_clock;
  explicit lan_table(std::size_t max_entries = 256, std::chrono::seconds min_gap = std::chrono::seconds(10));
  // True if (device, ep) is new or was last reported min_gap ago or more.
  bool heard(const std::string& device, const net::endpoint& ep, clock::time_point now);
  [[nodiscard]] std::size_t size() const { return last_.size(); }

 private:
  std::size_t max_;
  std::chrono::seconds gap_;
  std::map<std::string, clock::time_point> last_;  // "device address:port"
};

struct lan_options {
  std::string group = std::string(lan_group);
  std::uint16_t port = lan_port;
  std::string interface = "0.0.0.0";  // the interface's address to send and join on
  std::chrono::milliseconds interval{30000};
  std::chrono::seconds min_gap{10};
};

class lan_discovery {
 public:
  using found_fn = std::function<void(const net::endpoint& ep, const std::string& device)>;
  // Announces `self` (this device's id and sync port) for `folder` on io's thread.
  lan_discovery(boost::asio::io_context& io, lan_announcement self, found_fn on_found, lan_options o = {});
  ~lan_discovery();
  lan_discovery(const lan_discovery&) = delete;
  lan_discovery& operator=(const lan_discovery&) = delete;

  // Binds the group's port (shared with other processes), joins the group, starts the
  // announcing and listening loops. Errors: errc::io (the socket, the group).
  [[nodiscard]] result<bool> start();
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

}  // namespace shoal::sync
