// A token bucket for global upload/download limits. Callers take what they used and
// wait for the returned delay before using more; 0 rate means unlimited.
//
// The bucket starts empty and holds a tenth of a second's worth (at least 16 KiB, one
// block): over any 5 s the bytes taken stay within 2% of the rate (6% at 160 KiB/s and
// below), and no burst is bigger than the bucket. Callers keep each use within burst(): a
// use far beyond it is paid for by waiting afterwards, which averages out but is a burst
// while it lasts.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace shoal {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::uint64_t min_burst = 16 * 1024;
  explicit rate_limiter(std::uint64_t bytes_per_second = 0) { set_rate(bytes_per_second); }

  void set_rate(std::uint64_t bps) {
    rate_ = bps;
    burst_ = static_cast<double>(std::max<std::uint64_t>(bps / 10, min_burst));
    tokens_ = 0;
    last_ = clock::now();
  }
  [[nodiscard]] std::uint64_t rate() const { return rate_; }

  // Takes n bytes; returns how long to wait before the next use (zero if within budget).
  std::chrono::nanoseconds consume(std::uint64_t n) {
    if (rate_ == 0) return std::chrono::nanoseconds(0);
    refill();
    tokens_ -= static_cast<double>(n);
    if (tokens_ >= 0) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(static_cast<std::int64_t>(-tokens_ * 1e9 / static_cast<double>(rate_)));
  }

  // The most one use should take: the bucket's size (UINT64_MAX: no limit).
  [[nodiscard]] std::uint64_t burst() const { return rate_ == 0 ? UINT64_MAX : static_cast<std::uint64_t>(burst_); }

 private:
  void refill() {
    const auto now = clock::now();
    const double secs = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + secs * static_cast<double>(rate_));
  }
  std::uint64_t rate_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  clock::time_point last_;
};

// Bytes per second over the last few seconds (one-second buckets).
class rate_meter {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr int window = 5;

  void add(std::uint64_t n) {
    const auto now = clock::now();
    advance(now);
    buckets_[static_cast<std::size_t>(sec_ % window)] += n;
    total_ += n;
    last_add_ = now;
  }
  [[nodiscard]] double rate() {
    // Nothing counted for a whole window (most torrents of a big session, most of the
    // time): 0, without walking the buckets.
    if (total_ == 0) return 0;
    const auto now = clock::now();
    if (now - last_add_ > std::chrono::seconds(window + 1)) return 0;
    advance(now);
    std::uint64_t sum = 0;
    for (auto b : buckets_)
      sum += b;
    const double since_start = std::chrono::duration<double>(now - born_).count();
    const double frac = since_start - std::floor(since_start);
    const double span = std::min(static_cast<double>(window - 1) + frac, std::max(since_start, 0.25));
    return static_cast<double>(sum) / span;
  }
  [[nodiscard]] std::uint64_t total() const { return total_; }

 private:
  void advance(clock::time_point now) {
    const auto now_sec = std::chrono::duration_cast<std::chrono::seconds>(now - born_).count();
    while (sec_ < now_sec) {
      ++sec_;
      buckets_[static_cast<std::size_t>(sec_ % window)] = 0;
      if (now_sec - sec_ > window) sec_ = now_sec - window;
    }
  }
  std::array<std::uint64_t, window> buckets_{};
  std::int64_t sec_ = 0;
  std::uint64_t total_ = 0;
  clock::time_point born_ = clock::now();
  clock::time_point last_add_{};
};

}  // namespace shoal
