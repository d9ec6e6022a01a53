// The session's bound on open file descriptors across all torrents. Each disk_io keeps a
// small cache of its own files (at most max_open_files) and counts them here; when the
// session-wide count is over the bound, the disk_io holding the least recently used
// descriptor closes it (after an fdatasync if it was written), whichever torrent it is.
// Uses are stamped from one clock so ages compare across torrents.
//
// Locking: a disk_io never takes the pool's mutex while holding its own; the pool takes a
// member's mutex only while holding its own (pool, then disk_io), so they cannot deadlock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>

namespace shoal {

class disk_io;

class file_pool {
 public:
  // 0: no bound beyond each disk_io's own cache.
  explicit file_pool(std::size_t limit) : limit_(limit) {}
  file_pool(const file_pool&) = delete;
  file_pool& operator=(const file_pool&) = delete;

  [[nodiscard]] std::uint64_t stamp() { return ++clock_; }
  [[nodiscard]] std::size_t open_count() const { return open_; }
  [[nodiscard]] std::size_t limit() const { return limit_; }
  [[nodiscard]] std::uint64_t evictions() const { return evictions_; }

  // --- for disk_io ---
  void join(disk_io* d);
  void leave(disk_io* d);
  void count_open() { ++open_; }
  void count_closed(std::size_t n = 1) { open_ -= n; }
  // Over the bound: closes the least recently used descriptors of any member until it is
  // not. Called with no disk_io mutex held.
  void enforce();

 private:
  std::size_t limit_;
  std::mutex mu_;
  std::set<disk_io*> members_;
  std::atomic<std::size_t> open_{0};
  std::atomic<std::uint64_t> clock_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace shoal
