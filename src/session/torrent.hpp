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
#include "core/metainfo.hpp"
#include "session/piece_picker.hpp"
#include "session/rate_limiter.hpp"
#include "storage/disk_io.hpp"
#include "storage/file_storage.hpp"
#include "wire/message.hpp"
#include "wire/pex.hpp"

namespace shoal {

class session;
class peer_connection;
class web_seed;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct torrent_params {
  metainfo info;
  std::filesystem::path save_path = ".";
  std::filesystem::path resume_file;  // empty: no resume data
  std::vector<tcp::endpoint> peers;   // connect to these directly
  bool force_check = false;           // hash everything on start, ignoring resume data
  bool skip_check = false;            // trust the data on disk is complete (seeding)
  bool sequential = false;
  std::vector<std::uint8_t> file_priorities;  // per file; empty: all 1; 0 = skip
  // BEP 19 web seeds used while downloading; nullopt: the torrent's url-list.
  std::optional<std::vector<std::string>> web_seeds;
};

enum class torrent_state { checking, downloading, seeding, stopped, error };
[[nodiscard]] std::string_view state_name(torrent_state s);

struct torrent_status {
  torrent_state state = torrent_state::checking;
  std::string error;
  std::uint64_t total_wanted = 0;  // bytes of wanted pieces
  std::uint64_t have_wanted = 0;   // bytes verified
  std::uint32_t pieces_have = 0;
  std::uint32_t num_pieces = 0;
  double download_rate = 0;
  double upload_rate = 0;
  std::uint64_t downloaded = 0;  // payload bytes received this session
  std::uint64_t uploaded = 0;
  std::uint64_t wasted = 0;  // duplicate or failed bytes
  std::uint32_t peers = 0;
  std::uint32_t seeds = 0;
  std::uint32_t web_seeds = 0;            // web seeds in use (not dropped for bad data)
  std::uint64_t web_seed_downloaded = 0;  // payload bytes from web seeds, this session
  std::uint32_t hash_failures = 0;
  std::uint32_t banned = 0;
  double check_progress = 0;
  std::string tracker_message;
};

class torrent : public std::enable_shared_from_this<torrent> {
 public:
  torrent(session& s, torrent_params p);
  ~torrent();

  void start();
  // Stops peers, flushes data, saves resume data; calls done when finished.
  void stop(std::function<void()> done);

  [[nodiscard]] torrent_status status();
  [[nodiscard]] const metainfo& info() const { return info_; }
  [[nodiscard]] const sha1_digest& wire_hash() const { return wire_hash_; }
  // Hybrid torrents: the v2 info-hash truncated to 20 bytes, the second swarm's key.
  [[nodiscard]] const std::optional<sha1_digest>& v2_wire_hash() const { return v2_wire_hash_; }
  [[nodiscard]] bool finished() const { return state_ == torrent_state::seeding; }
  // Stopping, stopped or failed: no more peers wanted.
  [[nodiscard]] bool ended() const {
    return stopping_ || state_ == torrent_state::stopped || state_ == torrent_state::error;
  }
  [[nodiscard]] bool is_complete() const { return picker_ && picker_->have_bits().all(); }
  void add_peer(const tcp::endpoint& ep);
  // Fired once when every wanted piece is verified and flushed.
  std::function<void()> on_finished;
  // Fired when the torrent enters the error state.
  std::function<void(const std::string&)> on_error;

  // --- for peer_connection ---
  [[nodiscard]] session& sess() { return session_; }
  [[nodiscard]] piece_picker& picker() { return *picker_; }
  [[nodiscard]] const file_storage& files() const { return fs_; }
  [[nodiscard]] std::uint32_t num_pieces() const { return fs_.num_pieces(); }
  [[nodiscard]] bool accepting_peers() const {
    return state_ == torrent_state::downloading || state_ == torrent_state::seeding;
  }
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
  [[nodiscard]] bool hashes_ready() const { return missing_layers_.empty() || info_.has_v1(); }
  [[nodiscard]] bool fetching_layers() const { return !missing_layers_.empty(); }
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
  void count_upload(std::uint64_t n) {
    upload_meter_.add(n);
    uploaded_ += n;
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
  void start_checking();
  void check_next();
  void on_checked(std::uint32_t piece, bool ok);
  void enter_running();
  void hash_and_write(std::uint32_t piece);
  void on_piece_hashed(std::uint32_t piece, bool ok, std::shared_ptr<piece_buffer> buf);
  void on_piece_written(std::uint32_t piece, std::error_code ec, std::size_t bytes);
  void maybe_finished();
  void fail(const std::string& why);
  void schedule_flush();
  void do_flush(std::function<void()> then);
  void save_resume();
  void connect_more();
  void run_choker();
  [[nodiscard]] std::uint32_t upload_slots() const;
  [[nodiscard]] bool verify_piece(std::uint32_t piece, std::string_view data) const;
  void apply_file_priorities();
  static asio::awaitable<void> announce_loop(std::shared_ptr<torrent> self);
  asio::awaitable<void> announce_body();
  asio::awaitable<bool> announce_once(int ev, bool stopping);
  void receive_block(peer_connection* from, const tcp::endpoint& from_ep, std::uint32_t piece, std::uint32_t begin,
                     std::string_view data);
  // Web seeds (BEP 19), in web_seed.cpp.
  void start_web_seeds();
  void stop_web_seeds();
  // A piece with a block from this sender failed: true if it is a web seed (counted there).
  bool blame_web_seed(const tcp::endpoint& ep, std::uint32_t piece);

  session& session_;
  metainfo info_;
  file_storage fs_;
  disk_io disk_;
  std::filesystem::path resume_file_;
  std::vector<std::uint8_t> file_prio_;
  bool force_check_, skip_check_, sequential_;
  sha1_digest wire_hash_{};
  std::optional<sha1_digest> v2_wire_hash_;
  torrent_state state_ = torrent_state::checking;
  std::string error_;
  std::unique_ptr<piece_picker> picker_;
  bitfield flushed_;                      // verified and flushed: what resume data lists
  std::vector<std::uint32_t> unflushed_;  // verified and written, waiting for fdatasync
  std::uint64_t unflushed_bytes_ = 0;
  std::unordered_map<std::uint32_t, std::shared_ptr<piece_buffer>> buffers_;
  std::vector<std::shared_ptr<peer_connection>> peers_;
  std::set<tcp::endpoint> candidates_;
  std::set<tcp::endpoint> pinned_;
  struct failure {
    std::chrono::steady_clock::time_point when;
    std::uint32_t count = 0;
  };
  std::map<tcp::endpoint, failure> failed_;  // retried after 2 s, doubling up to a minute
  std::set<tcp::endpoint> connecting_;
  std::set<tcp::endpoint> banned_;
  std::set<asio::ip::address> banned_ips_;
  // Smart ban: for a piece that failed with several senders, each block's hash and sender.
  struct suspect_block {
    tcp::endpoint sender;
    std::uint32_t block;
    sha1_digest hash;
  };
  std::unordered_map<std::uint32_t, std::vector<suspect_block>> suspects_;
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
  std::map<sha256_digest, layer_fetch> missing_layers_;
  // Trees above the piece layers, built when a peer first asks for a file's hashes.
  std::map<sha256_digest, std::vector<std::vector<sha256_digest>>> layer_trees_;
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
  std::map<std::uint32_t, leaf_check> leaf_checks_;
  [[nodiscard]] std::optional<std::uint32_t> file_with_root(const sha256_digest& root) const;
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
  bool stopping_ = false;
  bool has_pad_files_ = false;
  bool finished_fired_ = false;
  bool flush_running_ = false;
  rate_meter download_meter_, upload_meter_;
  std::uint64_t downloaded_ = 0, uploaded_ = 0, wasted_ = 0, prior_downloaded_ = 0, prior_uploaded_ = 0;
  std::uint32_t hash_failures_ = 0;
  asio::steady_timer tick_;
  std::uint32_t tick_count_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  peer_connection* optimistic_ = nullptr;
  std::string tracker_message_;
  std::vector<std::vector<std::string>> tiers_;  // BEP 12: shuffled once, the one that answers moves first
  asio::steady_timer announce_timer_;
  bool announced_started_ = false;
  bool completed_pending_ = false;
  std::uint32_t tracker_key_ = 0;
  std::chrono::seconds next_announce_{1800};
  std::string last_tracker_;  // the tracker that answered last: the one told we stop
  std::vector<std::string> web_seed_urls_;
  std::vector<std::shared_ptr<web_seed>> web_seeds_;

 public:
  void set_tracker_message(std::string m) { tracker_message_ = std::move(m); }
  [[nodiscard]] std::uint64_t bytes_left() const;
  [[nodiscard]] std::uint64_t total_downloaded() const { return prior_downloaded_ + downloaded_; }
  [[nodiscard]] std::uint64_t total_uploaded() const { return prior_uploaded_ + uploaded_; }
};

}  // namespace shoal
