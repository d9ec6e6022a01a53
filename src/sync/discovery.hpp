// Finding the other devices of a running folder: LAN multicast (lan_discovery: a hash of
// the share id, the session's port and the device id) and the mainline DHT (this device
// announced under the folder's DHT id, derived from the share id, and the devices found
// there looked up again every dht_interval). Each device found is dialled through
// engine::add_peer, which bounds and deduplicates the addresses; the peer still proves it
// holds the folder's key in the handshake. `local` turns the LAN half off; the DHT half
// runs when the session has a DHT node (with --local, only one made from given bootstrap
// nodes). Used by `shoal sync run` and by the daemon, one per folder.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "net/stream.hpp"

namespace shoal {
class session;
}

namespace shoal::sync {

class engine;
class folder;

struct discovery_options {
  bool local = false;  // no LAN multicast
  std::chrono::seconds dht_interval{300};
  // A device found (how: "LAN" or "DHT"); every address is handed to the engine anyway.
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

  // Starts the LAN half (unless local) and the DHT half (if the session has a DHT node).
  void start();
  // Stops both; nothing is handed to the engine afterwards (network thread).
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

}  // namespace shoal::sync
