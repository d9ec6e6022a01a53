// The daemon's settings: defaults, STATE/settings.json (Transmission's key names where it
// has one), and the password hash. No I/O but the file itself; fuzzed through parse_config.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/error.hpp"

namespace shoal::daemon {

namespace fs = std::filesystem;

// A followed RSS/Atom feed: its items whose titles pass the filter are added (a .torrent
// link is fetched, a magnet added as it is) once each; the ids taken are remembered in
// STATE/feeds.json across restarts.
struct feed_config {
  std::string url;
  std::string include, exclude;  // case-insensitive patterns on titles; empty include: all
  fs::path download_dir;         // empty: the daemon's
  std::vector<std::string> labels;
  std::uint32_t interval = 900;  // seconds between polls (at least 10)
};

// What the daemon keeps in STATE/settings.json (Transmission's names where it has one).
struct daemon_config {
  fs::path state_dir;     // settings.json, torrents/, resume/
  fs::path download_dir;  // default save folder of added torrents
  fs::path config_file;   // where settings are read and saved (default STATE/settings.json)
  std::string rpc_bind = "127.0.0.1";
  std::uint16_t rpc_port = 9091;
  std::uint16_t peer_port = 51413;  // 0: any free port
  bool local = false;               // --local / SHOAL_LOCAL=1: no public bootstrap, no mapping, no multicast
  bool dht = true;
  bool lsd = true;
  bool port_mapping = true;
  // -v: the engine's log lines (peers, trackers, checks), each naming its torrent, on
  // stderr; not saved in settings.json.
  bool verbose = false;
  bool pex = true;
  std::vector<std::string> dht_bootstrap;
  std::string encryption = "preferred";
  // Remote access: a user name and a password hash (libsodium crypto_pwhash_str). With no
  // password only loopback clients are served and need no login.
  std::string rpc_username;
  std::string rpc_password_hash;
  // HTTPS on the RPC port (sniffed per connection, so local tools keep plain HTTP): the
  // user's certificate and key, or a pair made on first start in STATE/tls/. While on,
  // remote clients are refused over plain HTTP, so a password never crosses in clear.
  bool rpc_tls_enabled = true;
  fs::path rpc_tls_cert;
  fs::path rpc_tls_key;
  // Host names a browser may call us by besides localhost, 127.0.0.1 and [::1] (DNS
  // rebinding: a page on another name is refused with 421).
  std::vector<std::string> host_whitelist;
  // Folders torrents may be saved in (besides download_dir); paths outside are refused.
  std::vector<fs::path> allowed_dirs;
  std::uint64_t speed_limit_down = 0;  // bytes/s when enabled
  std::uint64_t speed_limit_up = 0;
  bool speed_limit_down_enabled = false;
  bool speed_limit_up_enabled = false;
  std::uint64_t alt_speed_down = 50000;  // "turtle" mode
  std::uint64_t alt_speed_up = 50000;
  bool alt_speed_enabled = false;
  std::uint32_t download_queue_size = 5;
  bool download_queue_enabled = true;
  std::uint32_t seed_queue_size = 10;
  bool seed_queue_enabled = false;
  double seed_ratio_limit = 2.0;
  bool seed_ratio_limited = false;
  std::uint32_t idle_seeding_limit = 30;  // minutes
  bool idle_seeding_limit_enabled = false;
  bool start_added_torrents = true;
  // Downloads in progress live here and move to their folder once complete.
  fs::path incomplete_dir;
  bool incomplete_dir_enabled = false;
  // .torrent files dropped here are added, then renamed NAME.added (NAME.invalid if they
  // do not parse).
  fs::path watch_dir;
  bool watch_dir_enabled = false;
  // A program run when a torrent completes: argv[0] only, no shell; the torrent's facts
  // in TR_* environment variables, as Transmission sets them.
  std::string script_torrent_done_filename;
  bool script_torrent_done_enabled = false;
  // Turtle schedule: alt speeds switch on at `begin` and off at `end` (minutes after local
  // midnight; end < begin spans midnight) on the days of the mask (Sunday 1, Monday 2, ...
  // Saturday 64).
  bool alt_speed_time_enabled = false;
  std::uint32_t alt_speed_time_begin = 540;
  std::uint32_t alt_speed_time_end = 1020;
  std::uint32_t alt_speed_time_day = 127;
  std::vector<feed_config> feeds;  // settings.json only ("feeds"), not over RPC
  std::uint32_t peer_limit_per_torrent = 50;
  std::uint32_t peer_limit_global = 200;
};

// Reads STATE/settings.json over the defaults (a missing file: the defaults); an error for
// a file that is not JSON or has a field of the wrong type.
// The bytes of a small file of the state folder (settings, stats, feeds, categories, a
// .torrent), or "" when it is missing or cannot be read.
[[nodiscard]] std::string read_whole_file(const fs::path& file);
[[nodiscard]] result<daemon_config> load_config(const fs::path& file, daemon_config defaults);
[[nodiscard]] boost::json::object config_json(const daemon_config& c);
std::error_code save_config(const fs::path& file, const daemon_config& c);

// Whether the turtle schedule puts `minute` (after midnight) of `weekday` (0 Sunday) inside
// its window.
[[nodiscard]] bool in_turtle_window(const daemon_config& c, int weekday, std::uint32_t minute);

// The same from text (a settings file's contents).
[[nodiscard]] result<daemon_config> parse_config(std::string_view text, daemon_config defaults);

// A password hash for settings.json (libsodium crypto_pwhash_str, interactive limits).
[[nodiscard]] std::string hash_password(std::string_view password);

}  // namespace shoal::daemon
