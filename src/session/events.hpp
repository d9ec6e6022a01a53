// Typed events a session reports (added, metadata received, state changed, piece finished,
// ...), kept in a bounded queue that any thread may wait on: the daemon, the stream server,
// the CLI and tests read them instead of registering callbacks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "core/hash.hpp"

namespace shoal {

enum class event_kind : std::uint8_t {
  added,
  metadata_received,
  state_changed,
  piece_finished,  // `index`: the piece; off unless the mask asks for it (one per piece)
  file_completed,  // `index`: the file (as metainfo lists them, pad files included)
  torrent_finished,
  error,          // `message`: what failed; the torrent's status says the kind
  tracker_reply,  // `message`: the tracker's URL (no query) and what it said
  peer_banned,    // `message`: the peer and why
  storage_moved,  // `message`: the new folder
  removed,
  goal_reached,  // a seeding goal paused the torrent; `message` names it
  file_renamed,  // `message`: the file's or folder's new path; `index`: the first file renamed
};
[[nodiscard]] const char* event_kind_name(event_kind k);

constexpr std::uint32_t event_bit(event_kind k) {
  return 1u << static_cast<unsigned>(k);
}
// Every kind but piece_finished, which a stream reader turns on when it needs it.
constexpr std::uint32_t default_event_mask = ~event_bit(event_kind::piece_finished);

struct session_event {
  event_kind kind = event_kind::added;
  std::uint32_t torrent = 0;  // torrent_id
  sha1_digest info_hash{};
  std::uint8_t state = 0;  // torrent_state after the change (state_changed)
  std::uint8_t prev_state = 0;
  std::uint32_t index = 0;
  std::string message;
  std::uint64_t sequence = 0;  // 1, 2, 3 ... in the order they happened
};

// Bounded: when full, new events are dropped and counted (the reader is too slow; what
// it needs is still in every torrent's status).
class event_queue {
 public:
  explicit event_queue(std::size_t capacity = 100000) : capacity_(capacity) {}

  void push(session_event e) {
    {
      std::lock_guard lock(mu_);
      e.sequence = ++sequence_;
      if (q_.size() >= capacity_) {
        ++dropped_;
        return;
      }
      q_.push_back(std::move(e));
    }
    cv_.notify_all();
  }
  // Takes everything queued; waits up to `wait` for the first one.
  std::vector<session_event> pop(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    std::unique_lock lock(mu_);
    if (q_.empty() && wait.count() > 0) cv_.wait_for(lock, wait, [this] { return !q_.empty(); });
    std::vector<session_event> out(std::make_move_iterator(q_.begin()), std::make_move_iterator(q_.end()));
    q_.clear();
    return out;
  }
  [[nodiscard]] std::uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }
  void set_capacity(std::size_t n) {
    std::lock_guard lock(mu_);
    capacity_ = n;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<session_event> q_;
  std::size_t capacity_;
  std::uint64_t dropped_ = 0;
  std::uint64_t sequence_ = 0;
};

}  // namespace shoal
