// A running synced folder: the network half of `shoal sync run`.
//
// On the session's network thread (one io_context, no locks): incoming connections that
// name this folder's share id (routed by a sync::hub, which holds the session's sync magic)
// and dialled --peer addresses become
// secure_channels; each side asks the other for its index records since the last one it
// saw (index::peer_sequence), verifies each record's folder signature, and queues what is
// newer than its own. One puller applies the queue: files are assembled in .shoal/tmp/
// from local blocks first (the old version, any file with the same block: renames, moves
// and copies move no data) and then from peers that have the version, several at once,
// each block's SHA-256 checked, then fsync'd and renamed into place. Concurrent changes
// keep both versions (a .sync-conflict- copy); deletes and replaced versions go to
// .shoal/archive/. An inotify watcher (1 s debounce) and a full scan every 60 s find local
// changes; after a scan the peers are told there is more to ask for.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/stream.hpp"
#include "sync/folder.hpp"

namespace shoal {
class session;
}

namespace shoal::sync {

class hub;

// Something a user sees: "sync", "delete", "conflict", "refused", "peer", "peer-lost",
// "rejected" (a forged or malformed record), "scan".
struct engine_event {
  std::string kind;
  std::string path;
  std::string device;
  std::string detail;
};

struct engine_options {
  std::vector<net::endpoint> peers;  // dialled, and redialled while the connection is down
  std::chrono::milliseconds debounce{1000};
  std::chrono::seconds full_scan{60};
  std::chrono::milliseconds redial{3000};
  std::function<void(const engine_event&)> on_event;
  std::function<void(const std::string&)> log;  // diagnostics (never key material)
  // The hub that routes this folder's connections (it outlives the engine); none: the engine
  // makes one of its own, which takes the session's sync magic (one folder per session).
  hub* via = nullptr;
};

// A connected peer device.
struct engine_peer {
  std::string device;
  std::string address;  // HOST:PORT
  bool can_write = false;
};

// What the engine is doing now: "scanning" (a local change seen, its scan due), "syncing"
// (versions from peers waiting or being applied), "idle", or "stopped".
struct engine_status {
  std::string state;
  std::vector<engine_peer> peers;
  std::size_t queued = 0;  // versions waiting to be applied
};

class engine {
 public:
  // `ses` and `f` outlive the engine; everything runs on ses.io()'s thread.
  engine(session& ses, folder& f, engine_options o);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Registers the folder with the hub, starts the watcher, the first scan and the dialling.
  // Errors: the folder is run by another process or is in the hub already, the magic cannot
  // be registered (an own hub), inotify cannot start.
  [[nodiscard]] result<bool> start();
  // Closes every connection and stops every loop (network thread). `done` runs (posted)
  // once every coroutine of the engine has ended: then the engine and its folder may go.
  void stop(std::function<void()> done = {});
  [[nodiscard]] engine_status status() const;
  // Dials ep too (a device discovery found), redialled while the connection is down, unless
  // it is dialled already or max_dialled addresses are (network thread).
  void add_peer(const net::endpoint& ep);
  static constexpr std::size_t max_dialled = 256;

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

}  // namespace shoal::sync
