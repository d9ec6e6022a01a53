// `shoal daemon`: a session that lives as long as the process, its torrents kept in a state
// folder across restarts (and kill -9), driven over HTTP by Transmission RPC clients and
// the web UI. The HTTP side runs on the caller's io_context (one thread); the session on
// a thread of its own, reached through session::call.
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "daemon/config.hpp"
#include "daemon/feed.hpp"
#include "daemon/http_server.hpp"
#include "daemon/rpc_codec.hpp"
#include "session/session.hpp"

namespace shoal::stream {
class http_service;
}

namespace shoal::daemon {

namespace fs = std::filesystem;
class sync_folders;

struct add_request {
  std::string metainfo;               // .torrent bytes, or
  std::string magnet;                 // a magnet link
  std::optional<fs::path> save_path;  // default: the download folder
  std::optional<bool> paused;         // default: !start_added_torrents
  std::vector<std::string> labels;
  std::vector<std::uint8_t> file_priorities;  // per file; empty: all normal
};
struct add_outcome {
  torrent_id id = 0;
  std::string hash;  // hex wire hash
  std::string name;
  bool duplicate = false;
};

// A feed as one poll sees it: its URL, and the ways its items are taken, first match wins
// (settings.json's filter, then each enabled rss/* rule that names the feed).
struct feed_taker {
  std::string include, exclude;  // feed_filter's patterns
  fs::path save_path;            // empty: the daemon's
  std::vector<std::string> labels;
  std::optional<bool> paused;
  std::string rule;  // the rss/* rule's name; "" for settings.json's filter
};
struct feed_job {
  std::string url;
  std::uint32_t interval = 900;
  std::vector<feed_taker> takers;
};
// What a poll brought back: the items taken, or why it failed; the feed's title and its
// first 50 items (rss/items' articles).
struct feed_fetch {
  std::vector<feed_pending> got;
  std::string error;
  feed_head head;
  std::vector<feed_item> items;
};
// A followed feed as the last poll left it (rss/items).
struct feed_view {
  feed_head head;
  std::vector<feed_item> articles;
  std::vector<bool> read;  // per article: taken, or marked read (rss/markAsRead)
  std::string error;       // the last poll's, "" if it worked
  bool loading = false;    // a poll is under way
  bool polled = false;     // a poll has worked since the start
};

// True for loopback addresses, IPv4-mapped ones included.
[[nodiscard]] bool is_loopback(const asio::ip::address& a);
// Why the daemon will not fetch `url` for a client (only http(s); nothing at this daemon's
// own RPC port, which would call its API with the daemon's rights), or nullopt.
[[nodiscard]] std::optional<std::string> url_refused(const std::string& url, std::uint16_t rpc_port);

class daemon {
 public:
  daemon(asio::io_context& http_io, daemon_config c);
  ~daemon();
  // Starts the session (peer port), loads the state folder's torrents, listens for RPC.
  // The error says what to change (a port in use, a folder not writable).
  [[nodiscard]] result<bool> start();
  // Graceful: stops accepting RPC, stops the torrents (announces stopped, saves resume).
  void shutdown();

  [[nodiscard]] session& ses() { return *ses_; }
  [[nodiscard]] std::uint16_t rpc_port() const { return http_ ? http_->port() : 0; }
  [[nodiscard]] daemon_config config() const {
    std::lock_guard l(mu_);
    return cfg_;
  }
  // Applies and saves new settings (limits, queues, goals, folders).
  void set_config(const daemon_config& c);
  // Called (on the HTTP thread) when a client asked the daemon to stop (session-close).
  std::function<void()> on_close;
  [[nodiscard]] const std::string& session_id() const { return session_id_; }
  [[nodiscard]] std::chrono::steady_clock::time_point started() const { return started_; }

  result<add_outcome> add(add_request r);
  // GET of a .torrent by http(s) URL for torrent-add; refuses other schemes and URLs that
  // point back at this daemon.
  result<std::string> fetch_torrent_url(const std::string& url);
  // Forgets the torrent (and its state files); with delete_data its downloaded files too.
  void remove(torrent_id id, bool delete_data);
  // True if `p` (absolute) is the download folder, an allowed folder, or inside one.
  [[nodiscard]] bool path_allowed(const fs::path& p) const;
  // The HTTP entry point: security checks, then the API or a web UI file.
  reply handle_http(const request& req, const tcp::endpoint& peer, bool tls = false);
  [[nodiscard]] const http_stats* http() const { return http_ ? &http_->stats() : nullptr; }
  // Totals across restarts (session-stats' cumulative-stats).
  struct totals {
    std::uint64_t uploaded = 0, downloaded = 0, files_added = 0, seconds_active = 0, session_count = 0;
  };
  [[nodiscard]] totals cumulative() const;
  // Logins (Basic for the RPC, auth/login for the qBittorrent API), behind one guard: after
  // three failures an address waits 1 s, 2 s, 4 s ... up to an hour.
  [[nodiscard]] bool check_password(std::string_view user, std::string_view pass) const;
  bool login_blocked(const asio::ip::address& a, std::chrono::seconds& wait);
  void login_failed(const asio::ip::address& a);
  void login_ok(const asio::ip::address& a);
  [[nodiscard]] bool has_password() const { return !config().rpc_password_hash.empty(); }
  [[nodiscard]] const fs::path& state_dir() const { return cfg_.state_dir; }

  // Feeds and rules of qBittorrent's rss/* API (qbittorrent_rss.cpp), kept in
  // STATE/rss.json beside settings.json's feeds; the HTTP thread's (daemon_feeds.cpp).
  [[nodiscard]] const rss_state& rss() const { return rss_; }
  // Saves `s` to STATE/rss.json, then takes it; the feeds named in `poll` (and new ones)
  // are polled at the next tick.
  std::error_code set_rss(rss_state s, const std::vector<std::string>& poll = {});
  void poll_soon(const std::string& url);  // "" every feed
  // rss/markAsRead: the article (every article of the last poll when `id` is "") is
  // remembered as taken, so no rule adds it; saved in STATE/feeds.json.
  void mark_read(const std::string& url, const std::string& id);
  [[nodiscard]] feed_view feed_status(const std::string& url) const;

  // Synced folders (sync_folders.hpp), kept in STATE/sync.json; reach them on the
  // session's thread (ses().call).
  [[nodiscard]] sync_folders& sync() { return *sync_; }

 private:
  fs::path torrents_dir() const { return cfg_.state_dir / "torrents"; }
  fs::path resume_dir() const { return cfg_.state_dir / "resume"; }
  void load_torrents();
  void apply_limits();
  torrent_params params_for(const std::string& key, const fs::path& save, bool paused) const;
  // Security, in Transmission's order; a response when the request is refused.
  std::optional<response> refuse(const request& req, const tcp::endpoint& peer, bool tls);
  [[nodiscard]] bool host_allowed(std::string_view host) const;
  reply serve_file(const request& req);
  // GET /events: server-sent events, one "torrents" event a second with the web UI's list
  // fields (the same JSON as torrent-get), until the client goes away.
  struct event_stream;
  asio::awaitable<std::optional<std::string>> next_event(std::shared_ptr<event_stream> s);
  // Prometheus text format: rates, totals, peers, torrents by state, DHT nodes, API use.
  [[nodiscard]] std::string metrics();

  // --- the HTTP thread's housekeeping ---
  // Session events, taken as they come (set_event_notify posts here): completions run the
  // done program and the move out of the incomplete folder.
  void drain_events();
  void on_finished(torrent_id id);
  void run_done_program(const torrent_status& st);
  // Once a second: the watch folder (every 2 s), the turtle schedule, moves still owed to
  // complete torrents, finished programs reaped.
  void tick();
  void scan_watch_dir();
  void check_turtle();
  void rewrite_add_file(const std::string& key, const std::function<void(boost::json::object&)>& edit);
  // Feeds (daemon_feeds.cpp): each polled on the session's thread (fetch, parse, filter,
  // fetch the .torrent files), the results added here; the ids taken saved in
  // STATE/feeds.json, the rss/* feeds and rules in STATE/rss.json.
  void load_feed_state();
  [[nodiscard]] std::vector<feed_job> feed_jobs() const;
  void poll_feeds();
  void on_feed_result(const feed_job& job, feed_fetch r);
  void save_feed_state();

  asio::io_context& http_io_;
  mutable std::mutex mu_;
  daemon_config cfg_;
  asio::io_context session_io_;
  std::unique_ptr<session> ses_;
  std::unique_ptr<http_server> http_;
  fs::path tls_cert_;            // the certificate HTTPS uses (named in refusals)
  std::string tls_fingerprint_;  // its SHA-256, for users to compare
  std::string session_id_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::uint64_t next_order_ = 1;
  totals prior_{};
  std::uint64_t files_added_ = 0;
  std::optional<asio::steady_timer> tick_timer_;
  std::uint64_t ticks_ = 0;
  std::atomic<bool> events_posted_{false};
  // Torrents saved in the incomplete folder: where each goes once complete.
  std::map<torrent_id, fs::path> final_dirs_;
  std::set<torrent_id> moving_;           // a move to the final folder is under way
  std::set<torrent_id> program_pending_;  // the done program waits for that move
  std::optional<bool> turtle_window_;     // the schedule's last verdict
  std::map<fs::path, std::pair<std::uintmax_t, std::filesystem::file_time_type>> watch_seen_;
  std::uint64_t events_seen_ = 0, programs_run_ = 0, program_failures_ = 0;
  bool stopped_ = false;
  std::map<std::string, std::set<std::string>> feed_seen_;  // feed URL -> ids taken
  std::map<std::string, std::chrono::steady_clock::time_point> feed_next_;
  std::set<std::string> feed_busy_;
  std::map<std::string, std::string> feed_errors_;  // the last poll's error per feed
  std::map<std::string, feed_view> feed_views_;     // the last good poll per feed
  rss_state rss_;
  // Brute-force guard: failed logins per address.
  struct failures {
    std::uint32_t count = 0;
    std::chrono::steady_clock::time_point until{};
  };
  std::map<asio::ip::address, failures> failed_;
  class transmission_rpc* rpc_ = nullptr;
  std::unique_ptr<class transmission_rpc> rpc_owner_;
  std::unique_ptr<class qbittorrent_api> qb_;
  std::unique_ptr<stream::http_service> stream_;  // /stream/: files while they download
  std::unique_ptr<sync_folders> sync_;
};

}  // namespace shoal::daemon
