#include "storage/file_pool.hpp"

#include <limits>

#include "storage/disk_io.hpp"

namespace shoal {

void file_pool::join(disk_io* d) {
  std::lock_guard lk(mu_);
  members_.insert(d);
}

void file_pool::leave(disk_io* d) {
  std::lock_guard lk(mu_);
  members_.erase(d);
}

void file_pool::enforce() {
  if (limit_ == 0 || open_ <= limit_) return;
  std::lock_guard lk(mu_);
  while (open_ > limit_) {
    disk_io* victim = nullptr;
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
    for (auto* d : members_) {
      if (auto u = d->oldest_use(); u && *u < oldest) {
        oldest = *u;
        victim = d;
      }
    }
    if (!victim || !victim->evict_oldest()) break;
    ++evictions_;
  }
}

}  // namespace shoal
