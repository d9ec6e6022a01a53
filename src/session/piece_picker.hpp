// Chooses which blocks to request: partial pieces first (so pieces complete and can be
// shared), then rarest first with a random tie-break (random while we have almost
// nothing), or in order when sequential. Time-critical pieces (a stream reader's) go
// before all of these. In end game, blocks already requested from another peer may be
// requested again; the caller cancels the spare copies on arrival.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "core/bitfield.hpp"

namespace shoal {

struct block_ref {
  std::uint32_t piece;
  std::uint32_t begin;
  std::uint32_t length;
  bool operator==(const block_ref&) const = default;
};

class piece_picker {
 public:
  static constexpr std::uint32_t block_size = 16 * 1024;
  // Below this many pieces, new pieces are picked at random rather than rarest first.
  static constexpr std::uint32_t random_first_pieces = 4;

  piece_picker(std::uint32_t num_pieces, std::function<std::uint32_t(std::uint32_t)> piece_size,
               std::uint64_t seed = std::random_device{}());

  [[nodiscard]] std::uint32_t num_pieces() const { return n_; }
  [[nodiscard]] bool have(std::uint32_t p) const { return have_.get(p); }
  [[nodiscard]] const bitfield& have_bits() const { return have_; }
  void set_have(std::uint32_t p);
  void clear_have(std::uint32_t p);

  // 0 means "don't download"; higher is picked earlier. Default 1.
  void set_priority(std::uint32_t p, std::uint8_t prio);
  [[nodiscard]] std::uint8_t priority(std::uint32_t p) const { return prio_[p]; }
  void set_sequential(bool on) {
    sequential_ = on;
    dirty_ = true;
  }
  // Time-critical pieces, most urgent first (a stream reader's piece, then its readahead):
  // picked before every partial piece, started even past the partial-piece bound, and the
  // first `critical_duplicates` of them are asked of a second peer while the first has
  // not answered. Pieces had or not wanted are skipped. At most max_critical are kept.
  static constexpr std::size_t max_critical = 1024;
  static constexpr std::size_t critical_duplicates = 2;
  void set_critical(std::vector<std::uint32_t> pieces);
  [[nodiscard]] const std::vector<std::uint32_t>& critical() const { return critical_; }
  [[nodiscard]] bool is_critical(std::uint32_t p) const { return p < critical_bits_.size() && critical_bits_.get(p); }
  // The most urgent critical piece nobody has started (a web seed takes it whole).
  [[nodiscard]] std::optional<std::uint32_t> critical_untouched() const;
  // Blocks that lie wholly in pad files are never requested: they start out received.
  void set_pad_block_test(std::function<bool(std::uint32_t piece, std::uint32_t block)> f) {
    pad_block_ = std::move(f);
  }

  // Availability. A peer that arrives complete is counted once as a seed, not per
  // piece; the caller remembers which way it was counted and removes it the same way.
  void add_peer(const bitfield& has, bool as_seed);
  void remove_peer(const bitfield& has, bool as_seed);
  void add_have(std::uint32_t p);
  [[nodiscard]] std::uint32_t availability(std::uint32_t p) const { return avail_[p] + seeds_; }

  // Wanted pieces we lack that the peer has.
  [[nodiscard]] bool interesting(const bitfield& peer_has, bool peer_is_seed) const;
  // The same, resumed where the last answer for this peer was found: no piece before
  // `next` is one the peer has and we want, as long as the peer gained no piece there
  // (the caller lowers `next` when it does: seen()) and no piece became wanted again
  // (a priority raised, a piece that failed a recheck: the generation tells). Answering
  // on every piece we finish then costs O(pieces) a peer over a whole download, not each time.
  struct interest_cursor {
    std::uint32_t next = 0;
    std::uint64_t gen = ~std::uint64_t{0};
    void seen(std::uint32_t p) { next = std::min(next, p); }
  };
  [[nodiscard]] bool interesting(const bitfield& peer_has, bool peer_is_seed, interest_cursor& c) const;
  [[nodiscard]] bool wanted_complete() const { return wanted_missing_ == 0; }
  [[nodiscard]] std::uint64_t wanted_pieces() const { return wanted_; }
  [[nodiscard]] std::uint64_t wanted_missing() const { return wanted_missing_; }

  // In end game a peer duplicates others' requests only while its own queue is shorter
  // than this: with deep queues, duplicating everything would waste most of the tail.
  static constexpr std::uint32_t end_game_queue = 4;

  // Appends up to `count` blocks to request from a peer. `mine` says whether this peer
  // already has a block requested (to avoid asking it twice in end game); `queued` is how
  // many requests the peer has outstanding.
  void pick(const bitfield& peer_has, bool peer_is_seed, std::uint32_t count,
            const std::function<bool(const block_ref&)>& mine, std::vector<block_ref>& out, std::uint32_t queued = 0);
  [[nodiscard]] bool in_end_game() const { return end_game_; }
  // A wanted piece we lack that nobody has started: a web seed may take it whole.
  [[nodiscard]] bool untouched(std::uint32_t p) const { return wanted(p) && partial_.count(p) == 0; }
  // Starts an untouched piece and appends its blocks (not pad blocks) to `out`, for the
  // caller to mark requested; false if the piece is not untouched.
  bool take_piece(std::uint32_t p, std::vector<block_ref>& out);

  void mark_requested(const block_ref& b);
  // A request ended without data (choke, reject, timeout, disconnect).
  void abort_request(const block_ref& b);
  // Data arrived. Returns false if the block was not wanted (duplicate or unknown).
  bool mark_received(const block_ref& b);
  [[nodiscard]] bool piece_received(std::uint32_t p) const;
  // Hash results.
  void piece_passed(std::uint32_t p);
  void piece_failed(std::uint32_t p);
  [[nodiscard]] std::size_t partial_count() const { return partial_.size(); }
  // At most this many pieces started and not yet verified (each holds a piece-sized
  // buffer): new pieces wait while that many are in progress. At least 1.
  void set_max_partial(std::size_t n) { max_partial_ = std::max<std::size_t>(1, n); }
  [[nodiscard]] std::size_t max_partial() const { return max_partial_; }

 private:
  struct partial {
    std::vector<std::uint8_t> state;     // 0 free, 1 requested, 2 received
    std::vector<std::uint8_t> requests;  // outstanding requests per block
    std::uint32_t received = 0;
    std::uint32_t free = 0;
  };
  [[nodiscard]] std::uint32_t blocks_in(std::uint32_t p) const {
    return (piece_size_(p) + block_size - 1) / block_size;
  }
  partial& start(std::uint32_t p);
  void rebuild_order();
  [[nodiscard]] bool wanted(std::uint32_t p) const { return prio_[p] > 0 && !have_.get(p); }
  block_ref block_of(std::uint32_t p, std::uint32_t i) const;

  std::uint32_t n_;
  std::function<std::uint32_t(std::uint32_t)> piece_size_;
  std::function<bool(std::uint32_t, std::uint32_t)> pad_block_;
  bitfield have_;
  std::vector<std::uint8_t> prio_;
  std::vector<std::uint32_t> avail_;
  std::uint32_t seeds_ = 0;
  std::unordered_map<std::uint32_t, partial> partial_;
  std::vector<std::uint32_t> partial_order_;  // oldest first
  std::vector<std::uint32_t> order_;          // candidate order for new pieces
  std::size_t order_start_ = 0;               // entries before this are had or started
  std::vector<std::uint32_t> rank_;           // random tie-break per piece
  std::vector<std::uint32_t> critical_;       // most urgent first
  bitfield critical_bits_;                    // the same as a set; sized on first use
  bool dirty_ = true;
  bool sequential_ = false;
  bool end_game_ = false;
  std::size_t max_partial_ = SIZE_MAX;
  std::uint64_t wanted_ = 0;
  std::uint64_t wanted_missing_ = 0;
  std::uint64_t wanted_gen_ = 0;  // counts the times a piece became wanted again
};

}  // namespace shoal
