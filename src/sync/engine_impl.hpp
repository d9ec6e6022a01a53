// The inside of sync::engine, shared by engine.cpp (connections, index exchange, blocks)
// and engine_apply.cpp (applying records to the disk, conflicts, scans, the watcher).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/engine.hpp"
#include "sync/hub.hpp"
#include "sync/messages.hpp"
#include "sync/secure_channel.hpp"

namespace shoal::sync {

struct pending_block {
  explicit pending_block(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::optional<msg_block> reply;
};

struct conn {
  secure_channel::ptr ch;
  std::string id;  // the peer's device id
  std::string remote;
  bool dialled = false;
  bool closed = false;
  std::deque<std::string> outq;
  std::size_t out_bytes = 0;  // queued in outq
  bool writing = false;
  std::unique_ptr<asio::steady_timer> drained;  // cancelled when outq falls under the low mark
  std::uint64_t index_generation = 0;           // the index request being answered
  bool requesting = false;                      // an index request is out
  bool want_more = false;                       // and a `have` came while it was
  std::map<std::uint64_t, std::shared_ptr<pending_block>> pending;
};

// A version of a path that is newer than (or concurrent with) ours, waiting to be applied.
struct need {
  record rec;
  std::uint64_t generation = 0;
  std::set<std::string> sources;                            // devices that offered it
  std::vector<std::pair<std::string, std::uint64_t>> owed;  // (device, its sequence) settled by applying it
  std::vector<record> later;                                // concurrent versions, looked at afterwards
  std::chrono::steady_clock::time_point not_before{};
  int failures = 0;
};

// Per peer device: the highest of its sequence numbers seen, and those still queued; what
// is stored as index::peer_sequence is the last one before every queued one, so a restart
// asks again for what was not applied yet.
struct device_progress {
  bool loaded = false;
  std::uint64_t seen_max = 0;
  std::uint64_t saved = UINT64_MAX;
  std::multiset<std::uint64_t> open;
};

struct block_loc {
  std::filesystem::path file;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};

struct fetch_job {
  explicit fetch_job(asio::io_context& io) : done(io) {}
  int fd = -1;
  record r;
  std::vector<std::uint64_t> missing;
  std::size_t next = 0;
  std::size_t running = 0;
  bool failed = false;
  std::string why;
  std::uint64_t fetched_bytes = 0;
  std::vector<std::shared_ptr<conn>> peers;
  asio::steady_timer done;
};

enum class outcome { done, retry, rescan };

struct engine::impl : std::enable_shared_from_this<engine::impl> {
  impl(session& s, folder& f, engine_options o);

  session& ses;
  folder& f;
  engine_options opt;
  asio::io_context& io;
  bool stopped = false;
  std::unique_ptr<hub> own_hub;  // when opt.via is none
  hub::registration in_hub;
  std::size_t running = 0;           // coroutines spawned and not ended
  std::function<void()> when_ended;  // stop()'s `done`

  static constexpr std::chrono::seconds handshake_limit{10};
  static constexpr std::chrono::seconds request_limit{30};

  std::vector<std::shared_ptr<conn>> conns;
  std::map<std::string, need> needs;  // by path_key
  std::set<std::string> in_flight;    // keys being applied now
  std::chrono::steady_clock::time_point next_retry = std::chrono::steady_clock::time_point::max();
  static constexpr std::size_t max_applies = 8;
  std::map<std::string, device_progress> progress;
  std::set<std::string> refused;  // hex SHA-256 of canonical records not applied on purpose
  asio::steady_timer puller_wake;
  asio::steady_timer scan_wake;
  asio::steady_timer announce_timer;
  bool announce_posted = false;
  std::chrono::steady_clock::time_point last_announce{};
  std::set<asio::steady_timer*> dial_timers;
  std::set<net::endpoint> dialled;  // addresses with a dial_loop (at most max_dialled)
  std::uint64_t next_request = 1;

  bool scan_requested = false;
  std::chrono::steady_clock::time_point scan_due{};
  std::chrono::steady_clock::time_point scan_first{};

  std::uint64_t map_seq = UINT64_MAX;
  // Block hash (its first 8 bytes) -> (record sequence, block index): small entries (about
  // 50 bytes a block) for a folder of millions of files; a candidate is checked against
  // its record, then the bytes read are checked against the full hash.
  struct block_ref {
    std::uint64_t seq = 0;
    std::uint32_t block = 0;
  };
  std::unordered_multimap<std::uint64_t, block_ref> block_map;
  static constexpr std::size_t max_block_map = 16'000'000;  // entries, then a rebuild
  std::optional<record> ref_cache;                          // the record last looked up
  std::unordered_map<std::string, block_loc> moved_blocks;  // blocks moved to the archive or a conflict copy
  std::uint64_t bytes_reused = 0;
  std::uint64_t bytes_fetched = 0;

  int ino = -1;
  int lock_fd = -1;  // DIR/.shoal/run.lock, held while the engine runs
  std::unique_ptr<asio::posix::stream_descriptor> ino_sd;
  std::map<int, std::string> watches;  // inotify wd -> relative directory

  result<bool> start();
  void stop();
  void clean_tmp();
  void log(const std::string& line) const;
  void emit(std::string kind, std::string path, std::string device, std::string detail) const;
  void spawn(asio::awaitable<void> a, const char* what);
  // Runs job on the session's disk pool and resumes on the network thread once it ran.
  // What job touches must be owned by it (the coroutine may be gone if the session ends).
  asio::awaitable<void> on_disk_pool(std::function<void()> job);
  static std::string rec_text(const net::endpoint& ep);

  // engine.cpp
  hello_fields my_hello() const;
  asio::awaitable<void> accept(std::unique_ptr<net::stream> s, std::string first);
  asio::awaitable<void> dial_loop(net::endpoint ep);
  asio::awaitable<void> run_conn(secure_channel::ptr ch, bool dialled);
  bool connected(const std::string& device) const;
  void close_conn(const std::shared_ptr<conn>& c, const std::string& why);
  void send(const std::shared_ptr<conn>& c, const message& m);
  asio::awaitable<void> writer(std::shared_ptr<conn> c);
  void request_index(const std::shared_ptr<conn>& c);
  void announce();
  void announce_now();
  void handle(const std::shared_ptr<conn>& c, message m);
  asio::awaitable<void> send_index(std::shared_ptr<conn> c, std::uint64_t since, std::uint64_t generation);
  // An index answer waits while more than this is queued for the peer (a large folder's
  // index is not held in memory whole).
  static constexpr std::size_t out_high_mark = 8 * 1024 * 1024;
  void take_batch(const std::shared_ptr<conn>& c, const msg_index& ix);
  void save_progress(const std::string& device);
  void consider(record r, const std::string& device, std::uint64_t seq);
  void finish_need(const std::string& key);
  void refresh_block_map();
  // Places of a block in files of the index (at most `limit`), newest first.
  std::vector<block_loc> find_block(std::string_view hash, std::size_t limit);
  void remember_blocks(const record& r, const std::filesystem::path& where);
  static bool read_verified(const block_loc& loc, std::string_view hash, std::string& out);
  void serve(const std::shared_ptr<conn>& c, const msg_block_request& rq);
  asio::awaitable<result<std::string>> request_chunk(std::shared_ptr<conn> c, msg_block_request rq);
  asio::awaitable<void> fetch_worker(std::shared_ptr<fetch_job> j, std::size_t w);
  asio::awaitable<result<std::filesystem::path>> assemble(const record& r, const need& n);

  // engine_apply.cpp
  asio::awaitable<void> pull_loop();
  std::optional<std::string> next_need();
  asio::awaitable<void> apply_one(std::string key);
  asio::awaitable<outcome> apply(const need& n);
  asio::awaitable<outcome> take(const record& r, const std::optional<record>& local, const need& n);
  asio::awaitable<outcome> conflict(const record& r, const record& local, const need& n);
  asio::awaitable<outcome> place(const record& r, const std::string& dest, const need& n);
  void put(record r);
  void request_scan(bool now);
  asio::awaitable<void> scan_loop();
  void do_scan(bool report = true);
  result<bool> start_watch();
  void watch_tree(const std::string& rel);
  bool take_events(const char* data, std::size_t n);
  asio::awaitable<void> watch_loop();
  [[nodiscard]] std::string source_of(const need& n) const;
};

}  // namespace shoal::sync
