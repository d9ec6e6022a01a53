// The daemon's synced folders: each runs a sync::engine and a sync::discovery on the
// daemon's session, all behind one sync::hub (one sync magic on the peer port). The list
// of folders (their paths, the peers to dial and the trackers) persists in STATE/sync.json; each folder's
// keys stay in DIR/.shoal/folder.key, never in the daemon's files, logs or answers other
// than keys(). Per folder it keeps what a user looks at: the recent events (bounded), the
// conflict copies present (bounded), and, asked for, the engine's state and peers and the
// index's counts.
//
// Everything here runs on the session's network thread (the engine requires it): the
// daemon reaches it through session::call.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "net/stream.hpp"
#include "sync/engine.hpp"

namespace shoal {
class session;
}
namespace shoal::sync {
class hub;
}

namespace shoal::daemon {

namespace fs = std::filesystem;

struct sync_event_view {
  std::int64_t time = 0;  // seconds since the epoch
  std::string kind, path, device, detail;
};

struct sync_folder_view {
  std::uint32_t id = 0;
  std::string path;
  std::string share;   // the share id in hex (a hash of the read-only key: no secret)
  std::string access;  // "read-write", "read-only"; "" if the folder could not be opened
  std::string device;  // this device's id in the folder
  std::string state;   // "scanning", "syncing", "idle", "error"
  std::string error;
  std::uint64_t files = 0, dirs = 0, bytes = 0;
  std::size_t queued = 0;
  std::vector<std::string> dial;      // the peers given to dial (HOST:PORT)
  std::vector<std::string> trackers;  // announce URLs the folder is announced to
  std::vector<sync::engine_peer> peers;
  std::vector<sync_event_view> events;  // oldest first
  std::vector<std::string> conflicts;   // paths relative to the folder
};

struct sync_keys_view {
  std::string read_write;  // "" on a read-only device
  std::string read_only;
};

class sync_folders {
 public:
  struct options {
    fs::path state_file;  // STATE/sync.json
    bool local = false;   // no LAN discovery
  };
  sync_folders(session& ses, options o);
  ~sync_folders();
  sync_folders(const sync_folders&) = delete;
  sync_folders& operator=(const sync_folders&) = delete;

  // Registers the sync magic, then opens and runs each folder of the state file (one that
  // cannot be opened is listed with its error). Errors: the magic is taken.
  [[nodiscard]] result<bool> start();
  // Stops every folder (before the session stops); `done` runs (posted) once every engine's
  // coroutines have ended: then this may be destroyed while the session runs on.
  void stop(std::function<void()> done = {});

  // Adds and runs DIR (absolute; the caller checked it is allowed): with `key` empty, the
  // folder DIR already is (DIR/.shoal/folder.key), or else a new folder with a new
  // read-write key (as `sync init`); with a key, a copy of that folder (as `sync join`).
  // `peers` are IP:PORT to dial, `trackers` http://, https:// or udp:// announce URLs the
  // folder's DHT id is announced to (sync::discovery). Errors name what is wrong, never the key.
  [[nodiscard]] result<sync_folder_view> add(const fs::path& dir, const std::string& key,
                                             const std::vector<std::string>& peers,
                                             const std::vector<std::string>& trackers = {});
  // Stops syncing the folder and forgets it; its files and DIR/.shoal/ stay.
  [[nodiscard]] result<bool> remove(std::uint32_t id);
  [[nodiscard]] std::vector<sync_folder_view> list() const;
  [[nodiscard]] result<sync_keys_view> keys(std::uint32_t id) const;

  static constexpr std::size_t max_folders = 64;
  static constexpr std::size_t max_events = 100;     // per folder, the oldest go first
  static constexpr std::size_t max_conflicts = 100;  // per folder, listed
  static constexpr std::size_t max_dial = 16;        // peers given per folder

  struct entry;

 private:
  result<std::shared_ptr<entry>> open(const fs::path& dir, const std::string& key,
                                      const std::vector<net::endpoint>& peers,
                                      const std::vector<std::string>& trackers);
  void save() const;
  [[nodiscard]] sync_folder_view view(const entry& e) const;

  session& ses_;
  options opt_;
  std::unique_ptr<sync::hub> hub_;
  std::map<std::uint32_t, std::shared_ptr<entry>> folders_;
  std::uint32_t next_id_ = 1;
};

}  // namespace shoal::daemon
