// One torrent in a session: its files, pieces, peers, choker and trackers. Everything
// here runs on the session's network thread; disk and hash work goes to the pools and
// comes back as posted completions.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bitfield.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "session/lazy.hpp"
#include "session/metadata_copy.hpp"
#include "session/piece_picker.hpp"
#include "session/rate_limiter.hpp"
#include "storage/disk_io.hpp"
#include "storage/file_storage.hpp"
#include "storage/resume.hpp"
#include "tracker/announce.hpp"
#include "wire/message.hpp"
#include "wire/pex.hpp"

namespace shoal {

class session;
class peer_connection;
class web_seed;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

using torrent_id = std::uint32_t;  // from 1, stable for the session's life; 0: none

// Seeding goals (ratio uploaded/size, seconds seeding, seconds without upload): the session
// pauses a seeding torrent once any of the set ones is reached.
struct seed_goals {
  std::optional<double> ratio;
  std::optional<std::chrono::seconds> seeding_time;
  std::optional<std::chrono::seconds> idle_time;
};

struct torrent_params {
  metainfo info;
  // A magnet link instead of `info`: the torrent starts in fetching_metadata and gets the
  // info dictionary from peers (BEP 9), which the DHT, the link's trackers, x.pe and `peers` give.
  std::optional<magnet_link> magnet;
  // Where a magnet's verified metadata is kept as a .torrent (read back on the next start);
  // empty: not kept.
  std::filesystem::path metadata_file;
  std::filesystem::path save_path = ".";
  std::filesystem::path resume_file;  // empty: no resume data
  std::vector<tcp::endpoint> peers;   // connect to these directly
  bool force_check = false;           // hash everything on start, ignoring resume data
  bool skip_check = false;            // trust the data on disk is complete (seeding)
  // Never download: the pieces missing once the data is checked are not wanted, so the
  // torrent seeds what it has (`shoal seed` of partial data).
  bool seed_only = false;
  bool sequential = false;
  std::vector<std::uint8_t> file_priorities;  // per file; empty: all 1; 0 = skip
  // BEP 19 web seeds used while downloading; nullopt: the torrent's url-list.
  std::optional<std::vector<std::string>> web_seeds;
  bool paused = false;                  // added paused: nothing runs until resume()
  std::vector<std::string> labels;      // opaque to the engine, kept in the resume data
  std::uint64_t max_download_rate = 0;  // bytes/s for this torrent, 0: unlimited
  std::uint64_t max_upload_rate = 0;
  seed_goals goals;
  // Resume data holds the settings above as they were last set at runtime (paused,
  // priorities, limits, goals, labels, sequential, save path): with this set they replace
  // the params (a daemon's restart); without it the params win (a CLI run's flags).
  bool settings_from_resume = true;
  // A magnet link's metadata: give up (error, kind metadata) when nobody sent it within
  // this long; 0: keep asking (a daemon).
  std::chrono::seconds metadata_timeout{0};
};

// The state a user sees. queued: waiting for a download/seed slot or for its turn to check.
enum class torrent_state { queued, checking, fetching_metadata, downloading, seeding, paused, error, stopped };
[[nodiscard]] std::string_view state_name(torrent_state s);
// What went wrong, for a program to read: local I/O (disk), metadata (a bad or unobtainable
// info dictionary) put the torrent in the error state; tracker errors do not stop it.
enum class error_kind { none, local_io, tracker, metadata };
[[nodiscard]] std::string_view error_kind_name(error_kind k);

struct torrent_status {
  torrent_id id = 0;
  sha1_digest info_hash{};  // the wire hash: v1, or the truncated v2 hash for v2-only torrents
  std::string name;
  torrent_state state = torrent_state::checking;
  error_kind error_type = error_kind::none;
  std::string error;
  std::uint64_t total_size = 0;    // bytes of the torrent's files (pad files not counted)
  std::uint64_t total_wanted = 0;  // bytes of wanted pieces (pad files not counted)
  std::uint64_t have_wanted = 0;   // bytes of those verified (pad files not counted)
  std::uint32_t pieces_have = 0;
  std::uint32_t num_pieces = 0;
  double download_rate = 0;
  double upload_rate = 0;
  std::uint64_t downloaded = 0;  // payload bytes received this session
  std::uint64_t uploaded = 0;
  std::uint64_t total_downloaded = 0;  // all time (resume data included)
  std::uint64_t total_uploaded = 0;
  std::uint64_t wasted = 0;  // duplicate or failed bytes
  std::uint32_t peers = 0;
  std::uint32_t seeds = 0;
  std::uint32_t web_seeds = 0;            // web seeds in use (not dropped for bad data)
  std::uint64_t web_seed_downloaded = 0;  // payload bytes from web seeds, this session
  std::uint32_t hash_failures = 0;
  std::uint32_t banned = 0;
  double check_progress = 0;
  std::string tracker_message;
  std::uint32_t queue_position = 0;
  bool sequential = false;
  std::uint64_t max_download_rate = 0, max_upload_rate = 0;
  seed_goals goals;
  std::vector<std::string> labels;
  std::vector<std::string> trackers;  // every tier's URLs, in order
  std::string save_path;
  std::int64_t added_time = 0;      // unix seconds
  std::int64_t completed_time = 0;  // 0: not yet
  std::int64_t seeding_seconds = 0;
  std::int64_t active_seconds = 0;
};

// What the announces to one tracker URL gave, for clients that show trackers one by one
// (Transmission's trackerStats, qBittorrent's torrents/trackers). Times are Unix seconds.
struct tracker_state {
  std::string url;
  int tier = 0;
  std::int64_t last_announce = 0;  // the last answer or failure; 0: never asked
  bool last_ok = false;
  std::string last_result;  // "Success", or why it failed
  std::uint32_t last_peers = 0;
  std::int64_t seeders = -1, leechers = -1;  // as the tracker last said; -1: not said
  std::int64_t next_announce = 0;            // when it is asked next; 0: not planned
  // Scrapes (the session's, batched per tracker).
  std::int64_t downloaded = -1;  // completed downloads, as the last scrape said; -1: not said
  std::int64_t last_scrape = 0;  // when the last scrape answered or failed; 0: never
  std::int64_t next_scrape = 0;  // when it is scraped next
  bool scrape_ok = false;
  std::string scrape_result;  // "" or why the last scrape failed
};

// The .torrent bytes for verified metadata: the info dictionary as received, plus trackers.
[[nodiscard]] std::string torrent_from_metadata(const std::string& info, const std::vector<std::string>& trackers);

class torrent : public std::enable_shared_from_this<torrent> {
 public:
  torrent(session& s, torrent_params p, torrent_id id);
  ~torrent();

  // Loads resume data (on the disk pool) or starts fetching metadata; the session then
  // moves it through its queue (check, then download or seed) with activate().
  void start();
  // Stops peers, flushes data, saves resume data; calls done when finished (every caller's
  // done, however often it is called). Final: the session is going away or removing it.
  void stop(std::function<void()> done);

  // --- runtime control (network thread; the handle posts here) ---
  void pause();
  void resume();
  void force_recheck();
  void reannounce();
  // Per file (pad files included, as metainfo lists them); 0 skips a file. Wanted files
  // added after completion send the torrent back to downloading.
  void set_file_priorities(std::vector<std::uint8_t> prio);
  void set_sequential(bool on);
  void set_limits(std::uint64_t down, std::uint64_t up);
  void set_goals(const seed_goals& g);
  void set_labels(std::vector<std::string> labels);
  // The name status() gives (qBittorrent's torrents/rename); "" returns to the metainfo's.
  // Files are not touched: rename_path does that.
  void set_display_name(std::string name);
  // Another add of the same info-hash: its trackers, web seeds and peers join ours.
  void merge(const torrent_params& p);
  // Moves the files to another folder (across file systems too: copied, synced, then the
  // originals removed; the resume data names the new folder only once the copy is complete).
  // With move_data false the files are not touched: the torrent looks for its data in
  // `to` instead (Transmission's set-location without move) and checks it there.
  void move_storage(std::filesystem::path to, bool move_data = true);
  // Renames a file or a folder of the torrent (paths as file_name() gives them, the
  // torrent's own folder included; `to` a whole new path, clean and relative) on disk and
  // in the resume data, at any time but during a move. `done(error, why)` on the network
  // thread. Web seeds are still asked for the metainfo's names.
  void rename_path(std::string from, std::string to, std::function<void(std::error_code, std::string)> done);
  // File f's path beneath the save folder: the metainfo's, or the name it was given.
  [[nodiscard]] std::string file_name(std::uint32_t f) const;
  // Removes the torrent's resume data and kept metadata, and with `data` its files (after
  // stop()); on the disk pool, `done` posted back.
  void delete_files(bool data, std::function<void(std::error_code)> done);

  // With `lists` false, labels, trackers, save_path and tracker_message are left empty
  // (a caller listing thousands of torrents that needs none of them copies none).
  [[nodiscard]] torrent_status status(bool lists = true) const;
  // A line for the session's log, tagged with the torrent's name (or its info-hash while
  // a magnet has none), so a log of many torrents says which one each line is about.
  void log(const std::string& line) const;
  [[nodiscard]] torrent_id id() const { return id_; }
  [[nodiscard]] bool has_metadata() const { return fs_ != nullptr; }
  [[nodiscard]] const metainfo& info() const { return info_; }
  [[nodiscard]] const sha1_digest& wire_hash() const { return wire_hash_; }
  // Hybrid torrents: the v2 info-hash truncated to 20 bytes, the second swarm's key.
  [[nodiscard]] const std::optional<sha1_digest>& v2_wire_hash() const { return v2_wire_hash_; }
  [[nodiscard]] torrent_state state() const { return state_; }
  [[nodiscard]] bool finished() const { return state_ == torrent_state::seeding; }
  // Stopping, stopped or failed: no more peers wanted.
  [[nodiscard]] bool ended() const {
    return stopping_ || state_ == torrent_state::stopped || state_ == torrent_state::error;
  }
  [[nodiscard]] bool is_complete() const { return picker_ && picker_->have_bits().all(); }
  // Per file as set (empty: every file wanted at the default priority, 1).
  [[nodiscard]] const std::vector<std::uint8_t>& file_priorities() const { return file_prio_; }
  void add_peer(const tcp::endpoint& ep);
  // Every tracker in tier order (the order announces try them), with what it last said.
  [[nodiscard]] std::vector<tracker_state> tracker_states() const;
  // Scrapes, which the session batches per tracker: this torrent's tracker URLs whose
  // counts are `every` old or more (now: Unix seconds); they count as asked from now on.
  std::vector<std::string> scrape_due(std::int64_t now, std::chrono::seconds every);
  // A scrape's answer for this torrent (nullopt with `error` set when it failed).
  void on_scrape(const std::string& url, const std::optional<tracker::scrape_entry>& e, const std::string& error,
                 std::int64_t now);
  [[nodiscard]] std::uint64_t total_downloaded() const { return prior_downloaded_ + downloaded_; }
  [[nodiscard]] std::uint64_t total_uploaded() const { return prior_uploaded_ + uploaded_; }

  // --- for the session's queue and tick ---
  // Ready for a slot: data known (resume data or a finished check), not paused, no error.
  [[nodiscard]] bool wants_slot() const {
    return state_ == torrent_state::queued && loaded_ && !needs_check_ && !winding_down_ && !stopping_ && !moving_;
  }
  [[nodiscard]] bool wants_check() const {
    return state_ == torrent_state::queued && loaded_ && needs_check_ && !winding_down_ && !stopping_ && !moving_;
  }
  [[nodiscard]] bool active() const { return active_; }
  // True if it would seed (every wanted piece verified) once active.
  [[nodiscard]] bool would_seed() const { return picker_ && picker_->wanted_complete(); }
  // Its place in the session's queue now (0 first).
  [[nodiscard]] std::uint32_t queue_position() const { return queue_position_; }
  void set_queue_position(std::uint32_t q) { queue_position_ = q; }
  // What the queue is sorted by: the place the resume data gave (or the one the user gave
  // since, or the place it was added at). Not renumbered while torrents load one by one,
  // so a torrent that loaded early cannot lose its place to one that loads later.
  [[nodiscard]] std::uint32_t queue_key() const { return queue_key_; }
  void set_queue_key(std::uint32_t k) { queue_key_ = k; }
  // Writes the resume data now (a user moved it in the queue), once it has been read.
  void save_settings();
  void activate();
  void begin_check();
  // Back to the queue (a slot was taken away): peers closed, trackers told, resume saved.
  void deactivate();
  // Once a second while active: connections, choker, flushes, seeding goals.
  void tick();
  [[nodiscard]] std::uint64_t run_generation() const { return run_gen_; }
  [[nodiscard]] rate_limiter& download_limit() { return down_limit_; }
  [[nodiscard]] rate_limiter& upload_limit() { return up_limit_; }

  // --- for peer_connection ---
  [[nodiscard]] session& sess() { return session_; }
  [[nodiscard]] piece_picker& picker() { return *picker_; }
  [[nodiscard]] const file_storage& files() const { return *fs_; }
  [[nodiscard]] std::uint32_t num_pieces() const { return fs_->num_pieces(); }
  [[nodiscard]] bool accepting_peers() const {
    return (active_ && (state_ == torrent_state::downloading || state_ == torrent_state::seeding)) || metadata_phase();
  }
  // A magnet without its metadata, fetching it: peers are dialled and accepted, and their
  // connections ask only for the info dictionary (torrent_magnet.cpp).
  [[nodiscard]] bool metadata_phase() const { return !fs_ && state_ == torrent_state::fetching_metadata && !stopping_; }
  // The swarm has no v1 info-hash (a v2-only torrent or magnet link).
  [[nodiscard]] bool v2_only() const {
    return fs_ ? !info_.has_v1() : (magnet_ && !magnet_->info_hash_v1 && magnet_->info_hash_v2);
  }
  [[nodiscard]] const std::shared_ptr<shoal::metadata_budget>& md_budget() const { return md_budget_; }
  // A peer's whole copy of the info dictionary: false if it does not match the link's
  // hashes; otherwise the torrent takes it (and closes its metadata-only connections).
  bool take_metadata(const metadata_copy& copy);
  // Why a peer gave no metadata: the last reason is in the error if nobody gives it.
  void metadata_peer_failed(const tcp::endpoint& ep, const std::string& why);
  bool attach(const std::shared_ptr<peer_connection>& p);
  void detach(peer_connection* p);
  void on_block(peer_connection* from, std::uint32_t piece, std::uint32_t begin, std::string_view data);
  // A block from a web seed; `from` is the seed's id().
  void on_web_block(const tcp::endpoint& from, std::uint32_t piece, std::uint32_t begin, std::string_view data);
  void on_peer_interest_changed(peer_connection* p);
  void on_have(peer_connection* p, std::uint32_t piece);
  // BEP 11: contacts learned from a peer, and the contacts we tell others (our live peers).
  void on_pex(peer_connection* from, const wire::pex_message& m);
  [[nodiscard]] std::vector<std::pair<tcp::endpoint, std::uint8_t>> pex_contacts(const peer_connection* except) const;
  // The largest piece a peer may request from: the piece, or for v2-only torrents the
  // piece length (a file's last piece padded with zeros, as libtorrent sees it).
  [[nodiscard]] std::uint64_t served_piece_size(std::uint32_t piece) const;
  void async_read_block(std::uint32_t piece, std::uint32_t begin, std::uint32_t length,
                        std::function<void(std::error_code, std::string)> done);
  [[nodiscard]] bool disk_backlogged() const { return disk_queue_bytes_ > max_disk_queue_; }
  void ban(peer_connection* p, const std::string& why);
  // A peer closed for a protocol error (no ban): dialled again only after the back-off.
  void penalize(const tcp::endpoint& ep);
  [[nodiscard]] bool is_banned(const tcp::endpoint& ep) const;
  [[nodiscard]] std::vector<std::shared_ptr<peer_connection>> peers() const { return peers_; }
  void count_wasted(std::uint64_t n) { wasted_ += n; }
  // BEP 52: blocks are requested only once every piece can be verified (v2-only torrents
  // from a magnet link first fetch their piece layers from peers).
  [[nodiscard]] bool hashes_ready() const { return missing_layers_->empty() || info_.has_v1(); }
  [[nodiscard]] bool fetching_layers() const { return !missing_layers_->empty(); }
  // A v2-speaking peer is ready (bitfield known): ask it for the piece layers still missing.
  void request_hashes(peer_connection* p);
  // Answers a peer's hash request: the hashes, or nullopt for a hash reject.
  [[nodiscard]] std::optional<std::vector<sha256_digest>> serve_hashes(const wire::hash_request& r);
  // Base layer 0 (16 KiB leaf hashes): read and hash the pieces on the disk pool, then
  // `done` gets the hashes (or nullopt: reject) on the network thread.
  void serve_leaf_hashes(const wire::hash_request& r,
                         std::function<void(std::optional<std::vector<sha256_digest>>)> done);
  void on_hashes(peer_connection* p, const wire::hashes_message& m);
  void on_hash_reject(peer_connection* p, const wire::hash_request& r);
  // --- streaming (torrent_stream.cpp): readers of a file whose read positions steer the
  // picker (the piece under each reader, the file's first and last pieces, then a
  // readahead window sized from the rate it is read at); reads wait for their piece.
  static constexpr std::size_t max_stream_readers = 64;
  static constexpr std::size_t max_stream_waits = 256;  // reads waiting, all readers together
  static constexpr std::uint64_t stream_min_window = 4u << 20;
  static constexpr std::uint64_t stream_max_window = 64u << 20;
  // A reader of file f: its id, or 0 (no metadata, no such file or a pad file, too many
  // readers). A file at priority 0 becomes wanted (1).
  std::uint64_t open_reader(std::uint32_t f);
  void close_reader(std::uint64_t id);
  // Up to `max` bytes of the reader's file at `offset` (no further than the end of the piece
  // there), once that piece is verified; `done(error, bytes)` on the network thread, with
  // no bytes at or past the end. The read moves the reader: a jump out of its window is a
  // seek, and requests for pieces not time-critical are cancelled (as when a reader opens).
  void stream_read(std::uint64_t id, std::uint64_t offset, std::size_t max,
                   std::function<void(std::error_code, std::string)> done);
  // File f's verified byte ranges [begin, end), in order.
  [[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> have_ranges(std::uint32_t f) const;
  [[nodiscard]] std::size_t stream_readers() const { return readers_.view().size(); }
  void count_upload(std::uint64_t n) {
    upload_meter_.add(n);
    uploaded_ += n;
    last_upload_ = std::chrono::steady_clock::now();
  }

 private:
  struct piece_buffer {
    // Not zero-filled (a 1 GiB download would memset 1 GiB for nothing) unless the torrent
    // has pad files, whose never-requested blocks must read as zeros.
    std::unique_ptr<char[]> bytes;
    std::size_t size = 0;
    [[nodiscard]] std::string_view data() const { return {bytes.get(), size}; }
    std::vector<peer_connection*> senders;  // per block, for smart ban
    std::vector<tcp::endpoint> sender_eps;
  };
  void check_next();
  void on_checked(std::uint32_t piece, bool ok, std::uint64_t gen);
  void enter_running();
  void on_check_done();
  void hash_and_write(std::uint32_t piece);
  void on_piece_hashed(std::uint32_t piece, bool ok, std::shared_ptr<piece_buffer> buf);
  void on_piece_written(std::uint32_t piece, std::error_code ec, std::size_t bytes);
  void maybe_finished();
  // Streaming (torrent_stream.cpp).
  struct stream_reader {
    std::uint32_t file = 0;
    std::uint64_t pos = 0;  // where its last read began, from the torrent's start
    double rate = 0;        // bytes/s the reader consumes (moving average)
    std::chrono::steady_clock::time_point since{};
    std::uint64_t bytes = 0;  // read since `since`
    std::uint64_t moved = 0;  // when it opened or last sought (next_reader_'s count): newest first
  };
  struct stream_wait {
    std::uint64_t reader;
    std::uint32_t piece;
    std::uint32_t begin;
    std::uint32_t length;
    std::function<void(std::error_code, std::string)> done;
  };
  [[nodiscard]] std::uint64_t stream_window(const stream_reader& r) const;
  // The critical pieces from the readers' places, to the picker; with `seek` (a new reader,
  // a jump), requests for pieces that are not critical get cancelled.
  void update_critical(bool seek = false);
  // A piece became readable: the reads waiting for it go to the disk.
  void stream_piece_ready(std::uint32_t piece);
  void fail_stream_waits(std::error_code ec);
  lazy<std::map<std::uint64_t, stream_reader>> readers_;
  lazy<std::vector<stream_wait>> stream_waits_;
  std::uint64_t next_reader_ = 1;
  void fail(const std::string& why, error_kind kind = error_kind::local_io);
  void schedule_flush();
  void do_flush(std::function<void()> then);
  void save_resume();
  void connect_more();
  void run_choker();
  [[nodiscard]] std::uint32_t upload_slots() const;
  // `layer`: the piece's hash in its file's piece layer (layer_hash, on the network thread).
  [[nodiscard]] bool verify_piece(std::uint32_t piece, std::string_view data,
                                  const std::optional<sha256_digest>& layer) const;
  [[nodiscard]] std::optional<sha256_digest> layer_hash(std::uint32_t piece) const;
  void apply_file_priorities();
  static asio::awaitable<void> announce_loop(std::shared_ptr<torrent> self, std::uint64_t gen);
  asio::awaitable<void> announce_body(std::uint64_t gen);
  asio::awaitable<bool> announce_once(int ev, bool stopping);
  void receive_block(peer_connection* from, const tcp::endpoint& from_ep, std::uint32_t piece, std::uint32_t begin,
                     std::string_view data);
  // Web seeds (BEP 19), in web_seed.cpp.
  void start_web_seeds();
  void stop_web_seeds();
  // A piece with a block from this sender failed: true if it is a web seed (counted there).
  bool blame_web_seed(const tcp::endpoint& ep, std::uint32_t piece);

  // Lifecycle (torrent.cpp).
  void set_state(torrent_state s);
  void init_storage();  // once the metainfo is known: files, disk, picker
  void on_resume_loaded(std::optional<resume_data> r, std::vector<std::uint32_t> changed_files);
  void enter_queue();  // queued (or paused), then the session decides
  // Peers closed, web seeds and announces stopped, data flushed and resume saved; `then`
  // once the resume write is queued. `say_stopped`: tell the tracker we left.
  void wind_down(std::function<void()> then);
  void recount_wanted();
  // Bytes of real files in piece p (its size less BEP 47 pad bytes): what the wanted and
  // have counts add up, so sizes shown never count pad files.
  [[nodiscard]] std::uint64_t payload_size(std::uint32_t piece) const;
  void mark_have(std::uint32_t piece);
  void post_event(int kind, std::string message = {}, std::uint32_t index = 0);
  void check_goals();
  // Polls every 10 ms while `busy`, then runs `then` (waits for work in flight to end).
  void when_idle(std::function<bool()> busy, std::function<void()> then);
  std::uint32_t goodbyes_ = 0;  // "stopped" announces in flight
  // Magnet links (torrent_magnet.cpp): fetch the info dictionary, then become a torrent.
  void start_metadata_fetch();
  static asio::awaitable<void> metadata_loop(std::shared_ptr<torrent> self, std::uint64_t gen);
  // A magnet's xs= URLs, one after the other, until one serves the .torrent the link names.
  static constexpr std::chrono::seconds exact_source_delay{3};
  static asio::awaitable<void> exact_source_fetch(std::shared_ptr<torrent> self, std::uint64_t gen,
                                                  std::vector<std::string> urls, bool at_once);
  void on_metadata(std::string info_bytes);
  // Once a second while fetching: dial peers, give up at the deadline.
  void metadata_tick();
  // The connections that only fetched metadata are closed; their peers stay candidates,
  // dialled again at once (`redial`) when the torrent runs.
  void close_metadata_peers(const std::string& why, bool redial);
  std::shared_ptr<shoal::metadata_budget> md_budget_;
  bool md_xs_pending_ = false;  // an xs= URL is still to be asked
  std::string md_last_error_;
  std::chrono::steady_clock::time_point md_started_{};
  bool md_finders_done_ = false;  // the DHT and trackers will find no more peers
  // Moving and deleting files (torrent_move.cpp).
  void move_files(std::filesystem::path to, bool move_data);

  session& session_;
  torrent_id id_;
  metainfo info_;
  std::unique_ptr<magnet_link> magnet_;  // a pointer: most torrents have none (8 bytes, not 192)
  std::filesystem::path metadata_file_;
  std::chrono::seconds metadata_timeout_{0};
  bool moving_ = false;
  std::vector<tcp::endpoint> given_peers_;
  std::filesystem::path save_path_;
  std::unique_ptr<file_storage> fs_;
  std::unique_ptr<disk_io> disk_;
  lazy<std::map<std::uint32_t, std::string>> renamed_;  // file -> its path now, where renamed
  // A disk_io for `root` that knows the renamed files.
  [[nodiscard]] std::unique_ptr<disk_io> make_disk(const std::filesystem::path& root) const;
  std::filesystem::path resume_file_;
  std::vector<std::uint8_t> file_prio_;
  bool force_check_, skip_check_, sequential_;
  bool seed_only_ = false, seed_only_running_ = false;
  bool settings_from_resume_;
  sha1_digest wire_hash_{};
  std::optional<sha1_digest> v2_wire_hash_;
  torrent_state state_ = torrent_state::stopped;  // until start()
  error_kind error_kind_ = error_kind::none;
  std::string error_;
  bool user_paused_ = false;
  bool needs_check_ = false;
  bool loaded_ = false;           // resume data read (or none): the queue may take it
  bool save_after_load_ = false;  // a save was asked for before loaded_
  // Settings the user changed before loaded_ (each kept over the resume data's).
  enum : std::uint16_t {
    early_paused = 1,
    early_name = 2,
    early_priorities = 4,
    early_sequential = 8,
    early_limits = 16,
    early_goals = 32,
    early_labels = 64,
    early_queue = 128,
  };
  std::uint16_t early_ = 0;
  void changed_early(std::uint16_t bit) {
    if (!loaded_) early_ |= bit;
  }
  bool active_ = false;
  std::uint64_t run_gen_ = 0;              // bumped whenever the torrent stops running: old loops end
  std::vector<std::uint32_t> check_list_;  // pieces to hash (all, or those of changed files)
  std::uint32_t queue_position_ = 0;
  std::uint32_t queue_key_ = 0;
  std::vector<std::string> labels_;
  std::string display_name_;  // "": the metainfo's (or the magnet's) name
  seed_goals goals_;
  rate_limiter down_limit_, up_limit_;
  std::int64_t added_time_ = 0, completed_time_ = 0;
  std::int64_t seeding_seconds_ = 0, active_seconds_ = 0;
  std::chrono::steady_clock::time_point last_upload_;
  std::uint64_t total_size_ = 0, total_wanted_ = 0, have_wanted_ = 0;
  bool has_pads_ = false;  // BEP 47 pad files: pieces' payload is less than their size
  std::vector<std::function<void()>> stop_waiters_;
  std::unique_ptr<piece_picker> picker_;
  bitfield flushed_;                      // verified and flushed: what resume data lists
  std::vector<std::uint32_t> unflushed_;  // verified and written, waiting for fdatasync
  std::uint64_t unflushed_bytes_ = 0;
  lazy<std::unordered_map<std::uint32_t, std::shared_ptr<piece_buffer>>> buffers_;
  std::vector<std::shared_ptr<peer_connection>> peers_;
  lazy<std::set<tcp::endpoint>> candidates_;
  tcp::endpoint scan_from_;  // connect_more goes on after this candidate
  lazy<std::set<tcp::endpoint>> pinned_;
  struct failure {
    std::chrono::steady_clock::time_point when;
    std::uint32_t count = 0;
  };
  lazy<std::map<tcp::endpoint, failure>> failed_;  // retried after 2 s, doubling up to a minute
  lazy<std::set<tcp::endpoint>> connecting_;
  lazy<std::set<tcp::endpoint>> banned_;
  lazy<std::set<asio::ip::address>> banned_ips_;
  // Smart ban: for a piece that failed with several senders, each block's hash and sender.
  struct suspect_block {
    tcp::endpoint sender;
    std::uint32_t block;
    sha1_digest hash;
  };
  lazy<std::unordered_map<std::uint32_t, std::vector<suspect_block>>> suspects_;
  // BEP 52 piece layers still to fetch (v2 magnets), by file root: the layer being filled
  // in chunks of up to 512 hashes, each verified against the root on arrival.
  struct layer_fetch {
    std::uint32_t file = 0;
    std::uint32_t pieces = 0;  // nodes of the layer that are real pieces
    unsigned depth = 0;        // levels from the piece layer to the root
    std::uint32_t chunk = 0;   // hashes per request
    std::vector<sha256_digest> hashes;
    std::vector<bool> done;
    std::vector<peer_connection*> asked;  // per chunk: whom, while outstanding
    std::vector<std::chrono::steady_clock::time_point> asked_at;
  };
  lazy<std::map<sha256_digest, layer_fetch>> missing_layers_;
  // Trees above the piece layers, built when a peer first asks for a file's hashes.
  lazy<std::map<sha256_digest, std::vector<std::vector<sha256_digest>>>> layer_trees_;
  // v2 pieces that failed with several senders: each block's SHA-256, checked against the
  // leaf hashes a peer sends back, so the corrupt block is pinned to its sender at once.
  struct leaf_check {
    std::vector<tcp::endpoint> senders;
    std::vector<sha256_digest> blocks;
    wire::hash_request req;
    sha256_digest expect{};  // the piece's node (or the file root) the leaves must reach
    peer_connection* asked = nullptr;
    std::chrono::steady_clock::time_point asked_at{};
    std::set<tcp::endpoint> tried;  // asked before (silent or rejected): others first
  };
  lazy<std::map<std::uint32_t, leaf_check>> leaf_checks_;
  [[nodiscard]] std::optional<std::uint32_t> file_with_root(const sha256_digest& root) const;
  mutable std::vector<std::pair<sha256_digest, std::uint32_t>> roots_;  // file_with_root's index
  void start_leaf_check(std::uint32_t piece, const piece_buffer& buf);
  void on_leaf_hashes(peer_connection* p, std::uint32_t piece, const wire::hashes_message& m);
  void ban_endpoint(const tcp::endpoint& ep, const std::string& why);
  void setup_layer_fetch();
  void layer_complete(const sha256_digest& root);
  [[nodiscard]] const file_entry* file_at(std::uint64_t offset) const;
  [[nodiscard]] unsigned piece_layer_base() const;
  [[nodiscard]] const std::vector<std::vector<sha256_digest>>* layer_tree(const sha256_digest& root);
  std::uint64_t disk_queue_bytes_ = 0;
  std::uint64_t max_disk_queue_;
  std::uint32_t check_next_ = 0, check_inflight_ = 0, check_done_ = 0;
  std::uint32_t renames_inflight_ = 0;  // a move waits for them
  std::uint64_t check_gen_ = 0;
  std::uint64_t fetch_gen_ = 0;  // bumped to abandon a metadata fetch
  std::uint32_t winding_down_ = 0;
  bool tracker_failed_ = false;                  // the last announce got no answer
  std::vector<std::uint32_t> file_pieces_left_;  // per file: wanted pieces not yet verified
  bool stopping_ = false;
  bool has_pad_files_ = false;
  bool finished_fired_ = false;
  bool flush_running_ = false;
  mutable rate_meter download_meter_, upload_meter_;
  std::uint64_t downloaded_ = 0, uploaded_ = 0, wasted_ = 0, prior_downloaded_ = 0, prior_uploaded_ = 0;
  std::uint32_t hash_failures_ = 0;
  std::uint32_t tick_count_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  peer_connection* optimistic_ = nullptr;
  std::string tracker_message_;
  std::vector<std::vector<std::string>> tiers_;          // BEP 12: shuffled once, the one that answers moves first
  std::map<std::string, tracker_state> tracker_states_;  // by URL: what each last answered
  std::int64_t next_scrape_ = 0;                         // Unix seconds: none of them due before
  asio::steady_timer announce_timer_;
  bool announced_started_ = false;
  bool completed_pending_ = false;
  std::uint32_t tracker_key_ = 0;
  std::chrono::seconds next_announce_{1800};
  std::chrono::steady_clock::time_point min_next_announce_{};  // the tracker's `min interval` after its last answer
  std::string last_tracker_;                                   // the tracker that answered last: the one told we stop
  std::vector<std::string> web_seed_urls_;
  std::vector<std::shared_ptr<web_seed>> web_seeds_;

 public:
  [[nodiscard]] std::uint64_t bytes_left() const { return total_wanted_ - have_wanted_; }
};

}  // namespace shoal
