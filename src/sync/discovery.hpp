// Finding the other devices of a running folder: LAN multicast (lan_discovery: a hash of
// the share id, the session's port and the device id) and the mainline DHT (this device
// announced under the folder's DHT id, derived from the share id, and the devices found
// there looked up again every dht_interval) and trackers (the same 20-byte id announced as
// an info-hash, again at the interval the tracker asks for). Each device found is dialled through
// engine::add_peer, which bounds and deduplicates the addresses; the peer still proves it
// holds the folder's key in the handshake. `local` turns the LAN half off; the DHT half
// runs when the session has a DHT node (with --local, only one made from given bootstrap
// nodes). Used by `shoal sync run` and by the daemon, one per folder.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "net/stream.hpp"

namespace shoal {
class session;
}

namespace shoal::sync {

class engine;
class folder;

struct discovery_options {
  bool local = false;  // no LAN multicast; trackers only at loopback and private addresses
  // Trackers (http://, https://, udp:// announce URLs) the folder's DHT id is announced to;
  // the devices they list are dialled. At most max_trackers.
  std::vector<std::string> trackers;
  static constexpr std::size_t max_trackers = 16;
  std::chrono::seconds dht_interval{300};
  // A device found (how: "LAN", "DHT" or "tracker"); every address is handed to the engine.
  std::function<void(const net::endpoint& ep, const std::string& device, const char* how)> on_found;
  // Why a half could not start (the rest runs without it).
  std::function<void(const std::string&)> warn;
};

class discovery {
 public:
  // `ses`, `f` and `eng` outlive the discovery's stop(); everything runs on ses.io()'s thread.
  discovery(session& ses, folder& f, engine& eng, discovery_options o = {});
  ~discovery();
  discovery(const discovery&) = delete;
  discovery& operator=(const discovery&) = delete;

  // Starts the LAN half (unless local), the DHT half (if the session has a DHT node) and a
  // loop per tracker.
  void start();
  // Stops both; nothing is handed to the engine afterwards (network thread).
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

}  // namespace shoal::sync
