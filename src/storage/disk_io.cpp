#include "storage/disk_io.hpp"

#include "storage/safe_path.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace shoal {

namespace fs = std::filesystem;

disk_io::disk_io(const file_storage& fs, fs::path save_path, std::shared_ptr<file_pool> pool)
    : fs_(fs), root_(std::move(save_path)), pool_(std::move(pool)) {
  if (pool_) pool_->join(this);
}

disk_io::~disk_io() {
  // First out of the pool (which may be evicting from us this instant: leave waits).
  if (pool_) {
    pool_->leave(this);
    pool_->count_closed(open_.size());
  }
}

std::optional<std::uint64_t> disk_io::oldest_use() {
  std::lock_guard lk(mu_);
  std::optional<std::uint64_t> best;
  for (const auto& [f, h] : open_) {
    if (!best || h.last_use < *best) best = h.last_use;
  }
  return best;
}

bool disk_io::evict_oldest() {
  std::lock_guard lk(mu_);
  if (open_.empty()) return false;
  close_oldest_locked();
  return true;
}

disk_io::fd_holder::~fd_holder() {
  ::close(fd);
}

fs::path disk_io::file_path(std::uint32_t f) const {
  return root_ / rel_path(f);
}

std::string disk_io::rel_path(std::uint32_t f) const {
  std::lock_guard lk(names_mu_);
  if (auto it = renamed_.find(f); it != renamed_.end()) return it->second;
  return fs_.files()[f].path;
}

void disk_io::set_renamed(const std::map<std::uint32_t, std::string>& renamed) {
  std::lock_guard lk(names_mu_);
  renamed_.clear();
  for (const auto& [f, p] : renamed)
    if (f < fs_.files().size() && p != fs_.files()[f].path) renamed_[f] = p;
}

std::error_code disk_io::rename(const std::string& from, const std::string& to,
                                const std::map<std::uint32_t, std::string>& names) {
  // mu_ keeps every open of a file of this torrent out until the new names are in: a
  // write in between would otherwise create the file again under its old name.
  std::lock_guard lk(mu_);
  std::error_code ec;
  safe::fd root = safe::open_root(root_, false, ec);
  if (root) {
    const fs::path src(from), dst(to);
    auto parent_of = [&](const fs::path& p, bool create) -> safe::fd {
      const auto parent = p.parent_path();
      if (parent.empty()) return safe::fd(::dup(root.get()));
      if (create) return safe::make_dirs_beneath(root.get(), parent, ec);
      return safe::open_beneath(root.get(), parent, O_PATH | O_DIRECTORY, 0, false, ec);
    };
    safe::fd src_dir = parent_of(src, false);
    struct stat st {};
    const bool there = src_dir && ::fstatat(src_dir.get(), src.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    ec.clear();
    if (there) {
      if (S_ISLNK(st.st_mode)) return safe::symlink_in_path();
      safe::fd dst_dir = parent_of(dst, true);
      if (!dst_dir) return ec;
      if (::renameat2(src_dir.get(), src.filename().c_str(), dst_dir.get(), dst.filename().c_str(), RENAME_NOREPLACE) !=
          0) {
        return {errno, std::generic_category()};
      }
    }
  }
  // No folder or nothing downloaded yet: only the names change.
  std::lock_guard names_lk(names_mu_);
  for (const auto& [f, p] : names) {
    if (f >= fs_.files().size()) continue;
    if (p == fs_.files()[f].path) {
      renamed_.erase(f);
    } else {
      renamed_[f] = p;
    }
  }
  return {};
}

void disk_io::close_oldest_locked() {
  auto oldest = std::min_element(open_.begin(), open_.end(),
                                 [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; });
  if (std::find(dirty_.begin(), dirty_.end(), oldest->first) != dirty_.end()) {
    if (::fdatasync(oldest->second.file->fd) != 0 && !sync_error_) {
      sync_error_ = std::error_code(errno, std::generic_category());
    }
    dirty_.erase(std::find(dirty_.begin(), dirty_.end(), oldest->first));
  }
  open_.erase(oldest);
  if (pool_) pool_->count_closed();
}

void disk_io::evict_locked() {
  while (open_.size() >= max_open_files)
    close_oldest_locked();
}

std::shared_ptr<disk_io::fd_holder> disk_io::open_file(std::uint32_t f, bool write, std::error_code& ec) {
  // Caller holds mu_.
  auto it = open_.find(f);
  if (it != open_.end() && (it->second.writable || !write)) {
    it->second.last_use = next_stamp();
    return it->second.file;
  }
  if (it != open_.end()) {
    open_.erase(it);
    if (pool_) pool_->count_closed();
  }
  evict_locked();
  // Every component beneath the save folder is opened without following symlinks: a
  // folder replaced by a link to elsewhere must not receive the torrent's data.
  const auto rel = rel_path(f);
  safe::fd root = safe::open_root(root_, write, ec);
  if (!root) return nullptr;
  safe::fd opened;
  if (write) {
    opened = safe::open_beneath(root.get(), rel, O_RDWR | O_CREAT, 0644, true, ec);
    if (opened) {
      // Sparse at full size: space is used only where data lands.
      struct stat st {};
      if (::fstat(opened.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) < fs_.files()[f].size) {
        if (::ftruncate(opened.get(), static_cast<off_t>(fs_.files()[f].size)) != 0) {
          ec = std::error_code(errno, std::generic_category());
          return nullptr;
        }
      }
    }
  } else {
    opened = safe::open_beneath(root.get(), rel, O_RDWR, 0, false, ec);
    if (!opened && (ec == std::errc::permission_denied || ec == std::errc::read_only_file_system)) {
      ec.clear();
      opened = safe::open_beneath(root.get(), rel, O_RDONLY, 0, false, ec);
    }
  }
  if (!opened) return nullptr;
  ec.clear();
  const int fd = opened.release();
  auto holder = std::make_shared<fd_holder>(fd);
  open_[f] = handle{holder, write, next_stamp()};
  if (pool_) pool_->count_open();
  return holder;
}

std::error_code disk_io::read(std::uint32_t piece, std::uint64_t begin, std::uint64_t length, char* out,
                              bool allow_missing) {
  std::vector<file_slice> slices;
  fs_.map(piece, begin, length, slices);
  std::memset(out, 0, length);  // pad and gap ranges are zeros
  for (const auto& s : slices) {
    std::error_code ec;
    std::shared_ptr<fd_holder> file;
    {
      std::lock_guard lk(mu_);
      file = open_file(s.file, false, ec);
    }
    if (pool_) pool_->enforce();  // over the session's bound: the stalest descriptor goes
    if (!file) {
      if (allow_missing && ec == std::errc::no_such_file_or_directory) continue;
      return ec;
    }
    const int fd = file->fd;
    std::uint64_t done = 0;
    while (done < s.length) {
      ssize_t r =
          ::pread(fd, out + s.piece_offset - begin + done, s.length - done, static_cast<off_t>(s.file_offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return {errno, std::generic_category()};
      }
      if (r == 0) {
        if (allow_missing) break;  // short file: the rest stays zero
        return std::make_error_code(std::errc::io_error);
      }
      done += static_cast<std::uint64_t>(r);
    }
  }
  return {};
}

std::error_code disk_io::write(std::uint32_t piece, std::uint64_t begin, std::string_view data) {
  std::vector<file_slice> slices;
  fs_.map(piece, begin, data.size(), slices);
  for (const auto& s : slices) {
    std::error_code ec;
    std::shared_ptr<fd_holder> file;
    {
      std::lock_guard lk(mu_);
      file = open_file(s.file, true, ec);
    }
    if (pool_) pool_->enforce();  // over the session's bound: the stalest descriptor goes
    if (!file) return ec;
    const int fd = file->fd;
    std::uint64_t done = 0;
    while (done < s.length) {
      ssize_t r = ::pwrite(fd, data.data() + s.piece_offset - begin + done, s.length - done,
                           static_cast<off_t>(s.file_offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return {errno, std::generic_category()};
      }
      done += static_cast<std::uint64_t>(r);
    }
    // Dirty only once the bytes are in: a flush that starts earlier must not count them.
    std::lock_guard lk(mu_);
    if (std::find(dirty_.begin(), dirty_.end(), s.file) == dirty_.end()) dirty_.push_back(s.file);
  }
  return {};
}

std::error_code disk_io::flush() {
  // One flush at a time: a flush must not return while an earlier one is still syncing
  // files it took. Writes go on meanwhile (mu_ is released during fdatasync).
  std::lock_guard flush_lk(flush_mu_);
  std::vector<std::pair<std::uint32_t, std::shared_ptr<fd_holder>>> files;
  {
    std::lock_guard lk(mu_);
    if (sync_error_) return sync_error_;
    for (std::uint32_t f : dirty_) {
      auto it = open_.find(f);
      if (it != open_.end()) files.emplace_back(f, it->second.file);
    }
    dirty_.clear();
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (::fdatasync(files[i].second->fd) != 0) {
      // Sticky: data that failed to sync may be gone; no later flush may claim otherwise.
      std::lock_guard lk(mu_);
      sync_error_ = std::error_code(errno, std::generic_category());
      for (std::size_t k = i; k < files.size(); ++k)
        dirty_.push_back(files[k].first);
      return sync_error_;
    }
  }
  return {};
}

std::error_code disk_io::sync_all() {
  std::lock_guard flush_lk(flush_mu_);
  for (std::uint32_t f = 0; f < fs_.files().size(); ++f) {
    if (fs_.files()[f].pad || fs_.files()[f].size == 0) continue;
    std::error_code ec;
    safe::fd root = safe::open_root(root_, false, ec);
    if (!root) return {};  // no folder: no file holds a piece to vouch for
    safe::fd file = safe::open_beneath(root.get(), rel_path(f), O_RDONLY, 0, false, ec);
    if (!file) continue;  // a missing file holds no piece to vouch for
    if (::fdatasync(file.get()) != 0) return {errno, std::generic_category()};
  }
  return {};
}

bool disk_io::file_complete(std::uint32_t f) const {
  std::error_code ec;
  safe::fd root = safe::open_root(root_, false, ec);
  if (!root) return false;
  safe::fd file = safe::open_beneath(root.get(), rel_path(f), O_PATH, 0, false, ec);
  struct stat st {};
  if (!file || ::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return static_cast<std::uint64_t>(st.st_size) >= fs_.files()[f].size;
}

std::error_code disk_io::create_empty_files() {
  for (std::uint32_t f = 0; f < fs_.files().size(); ++f) {
    const auto& fe = fs_.files()[f];
    if (fe.pad || fe.size != 0 || fe.symlink) continue;
    std::error_code ec;
    safe::fd root = safe::open_root(root_, true, ec);
    if (!root) return ec;
    safe::fd file = safe::open_beneath(root.get(), rel_path(f), O_WRONLY | O_CREAT, 0644, true, ec);
    if (!file) return ec;
  }
  return {};
}

}  // namespace shoal
