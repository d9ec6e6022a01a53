#include "sync/scanner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/hash.hpp"
#include "sync/ignore.hpp"

namespace shoal::sync {

namespace {

std::int64_t mtime_of(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// One entry of the walk.
struct disk_entry {
  std::string path;  // relative
  std::string key;   // path_key(path)
  entry_type type = entry_type::file;
  struct stat st {};
  std::string target;     // symlinks
  bool unlisted = false;  // a directory that could not be listed: its index subtree is kept
  // The open directory the entry is in, and its name there: valid until the next call to
  // walker::next. Files are opened through them (openat, O_NOFOLLOW), so a directory swapped
  // for a symlink during the scan cannot lead the scanner out of the folder.
  int parent_fd = -1;
  std::string name;
};

// A depth-first walk with sorted entries: yields paths in index key order.
class walker {
 public:
  walker(std::filesystem::path root, const ignore_rules& rules, const scan_options& opt, scan_stats& stats)
      : root_(std::move(root)), rules_(rules), opt_(opt), stats_(stats) {
    push(AT_FDCWD, root_.string(), "");
  }
  walker(const walker&) = delete;
  walker& operator=(const walker&) = delete;
  ~walker() {
    for (auto& f : stack_)
      ::close(f.fd);
  }
  [[nodiscard]] bool root_ok() const { return root_ok_; }

  std::optional<disk_entry> next() {
    while (!stack_.empty()) {
      auto& f = stack_.back();
      if (f.pos == f.names.size()) {
        ::close(f.fd);
        stack_.pop_back();
        continue;
      }
      std::string name = std::move(f.names[f.pos++]);
      const int dir_fd = f.fd;
      std::string rel = f.dir.empty() ? name : f.dir + "/" + name;
      if (f.dir.empty() && name == ".shoal") continue;
      if (rel.size() > max_path_bytes) {
        report(rel, "path longer than " + std::to_string(max_path_bytes) + " bytes: left out");
        continue;
      }
      disk_entry e;
      if (::fstatat(dir_fd, name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) report(rel, std::strerror(errno));
        continue;  // gone since the listing: it is as if it never was
      }
      if (S_ISREG(e.st.st_mode)) {
        e.type = entry_type::file;
      } else if (S_ISDIR(e.st.st_mode)) {
        e.type = entry_type::dir;
      } else if (S_ISLNK(e.st.st_mode)) {
        e.type = entry_type::symlink;
        std::string buf(max_target_bytes + 1, '\0');
        const ssize_t n = ::readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
        if (n <= 0 || static_cast<std::size_t>(n) > max_target_bytes) {
          report(rel, n < 0 ? std::strerror(errno) : "symlink target too long");
          continue;
        }
        buf.resize(static_cast<std::size_t>(n));
        e.target = std::move(buf);
      } else {
        continue;  // sockets, FIFOs, devices: not synced
      }
      if (rules_.ignored(rel, e.type == entry_type::dir)) continue;
      e.key = path_key(rel);
      if (e.type == entry_type::dir && !push(dir_fd, name, rel)) e.unlisted = true;
      e.path = std::move(rel);
      e.parent_fd = dir_fd;
      e.name = std::move(name);
      return e;
    }
    return std::nullopt;
  }

 private:
  struct frame {
    int fd = -1;  // the directory, open (closed when the frame is popped)
    std::string dir;
    std::vector<std::string> names;
    std::size_t pos = 0;
  };

  void report(const std::string& path, const std::string& why) {
    ++stats_.errors;
    if (opt_.on_error) opt_.on_error(path, why);
  }

  // Opens directory `name` of parent_fd (never through a symlink, except the folder itself)
  // and lists it, sorted, onto the stack; false if it cannot be opened or listed.
  bool push(int parent_fd, const std::string& name, const std::string& rel) {
    const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (rel.empty() ? 0 : O_NOFOLLOW);
    const int fd = ::openat(parent_fd, name.c_str(), flags);
    const int list_fd = fd < 0 ? -1 : ::dup(fd);  // fdopendir takes its fd; the frame keeps fd
    DIR* d = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (d == nullptr) {
      const int err = errno;
      if (list_fd >= 0) ::close(list_fd);
      if (fd >= 0) ::close(fd);
      if (rel.empty()) {
        root_ok_ = false;
        root_error_ = err;
      } else {
        report(rel, std::string("cannot list: ") + std::strerror(err));
      }
      return false;
    }
    frame f;
    f.fd = fd;
    f.dir = rel;
    while (const dirent* ent = ::readdir(d)) {
      const std::string_view n = ent->d_name;
      if (n == "." || n == "..") continue;
      f.names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(f.names.begin(), f.names.end());
    stack_.push_back(std::move(f));
    return true;
  }

  std::filesystem::path root_;
  const ignore_rules& rules_;
  const scan_options& opt_;
  scan_stats& stats_;
  std::vector<frame> stack_;
  bool root_ok_ = true;
  int root_error_ = 0;
};

// A descriptor closed when it goes out of scope (-1: none).
struct owned_fd {
  explicit owned_fd(int f) : fd(f) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

// The directory holding `path` (relative, '/'-separated) below root_fd, opened one
// component at a time without following symlinks; -1 if any is missing or not a directory.
int open_parent(int root_fd, const std::string& path) {
  int fd = ::dup(root_fd);
  std::size_t start = 0;
  while (fd >= 0) {
    const std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) return fd;
    const std::string comp = path.substr(start, slash - start);
    const int next = ::openat(fd, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(fd);
    fd = next;
    start = slash + 1;
  }
  return -1;
}

}  // namespace

namespace {

// SHA-256 of block b of the file into out (32 bytes); an error message, or empty.
std::string hash_one_block(int fd, std::uint64_t size, std::uint32_t block_size, std::uint64_t b, hasher& h,
                           std::string& buffer, std::uint8_t* out) {
  std::uint64_t offset = b * block_size;
  std::uint64_t left = std::min<std::uint64_t>(block_size, size - offset);
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
    const ssize_t got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::strerror(errno);
    if (got == 0) return "file shorter than its size (changed while read)";
    h.update(buffer.data(), static_cast<std::size_t>(got));
    offset += static_cast<std::uint64_t>(got);
    left -= static_cast<std::uint64_t>(got);
  }
  h.final(out);
  return {};
}

// Hashes the blocks of one file on several threads at once: blocks are independent, so
// each thread takes the next block not yet taken (pread needs no shared file offset). The
// calling thread works too; the others wait for the next file between files.
class block_pool {
 public:
  block_pool(std::size_t threads, std::size_t buffer_bytes) : buffer_bytes_(buffer_bytes) {
    for (std::size_t i = 1; i < threads; ++i)
      workers_.emplace_back([this] { work_loop(); });
  }
  block_pool(const block_pool&) = delete;
  block_pool& operator=(const block_pool&) = delete;
  ~block_pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_)
      t.join();
  }

  result<std::string> hash(int fd, std::uint64_t size, std::uint32_t block_size) {
    std::string blocks(block_count(size, block_size) * 32, '\0');
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = job{fd, size, block_size, blocks.size() / 32, reinterpret_cast<std::uint8_t*>(blocks.data())};
      next_ = 0;
      finished_ = 0;
      error_.clear();
      ++generation_;
      // A file of one block (or none) is not worth waking anyone for.
      if (job_.n <= 1) skip_workers_ = generation_;
    }
    if (job_.n > 1) wake_.notify_all();
    run_job(own_hasher_, own_buffer());
    {
      std::unique_lock<std::mutex> lock(m_);
      // Every worker checks in for every generation, so none still uses the job after this.
      if (job_.n > 1) done_.wait(lock, [this] { return finished_ == workers_.size(); });
      if (!error_.empty()) return error{errc::io, error_};
    }
    return blocks;
  }

 private:
  struct job {
    int fd = -1;
    std::uint64_t size = 0;
    std::uint32_t block_size = 0;
    std::uint64_t n = 0;
    std::uint8_t* out = nullptr;
  };

  std::string& own_buffer() {
    if (own_buffer_.empty()) own_buffer_.resize(buffer_bytes_);
    return own_buffer_;
  }

  void run_job(hasher& h, std::string& buffer) {
    while (true) {
      const std::uint64_t b = next_.fetch_add(1);
      if (b >= job_.n) return;
      auto err = hash_one_block(job_.fd, job_.size, job_.block_size, b, h, buffer, job_.out + b * 32);
      if (!err.empty()) {
        std::lock_guard<std::mutex> lock(m_);
        if (error_.empty()) error_ = std::move(err);
        next_ = job_.n;  // the others stop at their next block
      }
    }
  }

  void work_loop() {
    hasher h(hasher::algo::sha256);
    std::string buffer(buffer_bytes_, '\0');
    std::uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && skip_workers_ != generation_); });
        if (stop_) return;
        seen = generation_;
      }
      run_job(h, buffer);
      {
        std::lock_guard<std::mutex> lock(m_);
        ++finished_;
      }
      done_.notify_one();
    }
  }

  std::size_t buffer_bytes_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stop_ = false;
  std::uint64_t generation_ = 0;
  std::uint64_t skip_workers_ = 0;  // a one-block job the workers were not woken for
  job job_;
  std::atomic<std::uint64_t> next_{0};
  std::size_t finished_ = 0;
  std::string error_;
  hasher own_hasher_{hasher::algo::sha256};
  std::string own_buffer_;
};

}  // namespace

result<std::string> hash_blocks(int fd, std::uint64_t size, std::uint32_t block_size, std::string& buffer) {
  std::string blocks;
  const std::uint64_t n = block_count(size, block_size);
  blocks.resize(n * 32);
  hasher h(hasher::algo::sha256);
  for (std::uint64_t b = 0; b < n; ++b) {
    auto err =
        hash_one_block(fd, size, block_size, b, h, buffer, reinterpret_cast<std::uint8_t*>(blocks.data()) + b * 32);
    if (!err.empty()) return error{errc::io, err};
  }
  return blocks;
}

result<scan_stats> scan(const std::filesystem::path& folder, index& idx, const folder_key& key,
                        const std::string& device_id, const scan_options& opt) {
  const auto start = std::chrono::steady_clock::now();
  scan_stats stats;
  auto rules = ignore_rules::load(folder);
  if (!rules) return rules.err();
  walker walk(folder, *rules, opt, stats);
  if (!walk.root_ok()) return error{errc::io, folder.string() + ": cannot be listed"};

  const std::size_t threads =
      opt.threads != 0 ? opt.threads : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  block_pool pool(threads, std::max<std::size_t>(opt.read_buffer, 4096));
  std::size_t in_batch = 0;

  // The index side of the merge: pages of heads, refilled as soon as one is used up (before
  // any record with a larger key is written, so a page never sees this scan's inserts).
  std::vector<record_head> page;
  std::size_t pos = 0;
  std::string last_key;
  bool exhausted = false;
  constexpr std::size_t page_size = 512;
  auto refill = [&] {
    if (pos < page.size() || exhausted) return;
    page = idx.heads_after(last_key, page_size);
    pos = 0;
    if (page.empty()) {
      exhausted = true;
    } else {
      last_key = page.back().key;
    }
  };
  auto head = [&]() -> const record_head* { return pos < page.size() ? &page[pos] : nullptr; };
  auto advance = [&] {
    ++pos;
    refill();
  };

  auto wrote = [&] {
    if (++in_batch >= opt.batch_records) {
      idx.commit();
      idx.begin();
      in_batch = 0;
    }
  };
  auto store = [&](record& r) {
    r.modified_by = device_id;
    bump(r.version, device_id);
    if (key.can_write()) {
      sign_record(r, key);
    } else {
      r.signature.clear();
      r.local_only = true;
    }
    idx.put(r);
    wrote();
  };

  // Fills r's content fields from the disk entry; false if the file could not be hashed.
  auto fill = [&](record& r, const disk_entry& d) -> bool {
    r.type = d.type;
    r.deleted = false;
    r.mode = static_cast<std::uint32_t>(d.st.st_mode) & max_mode;
    r.mtime_ns = mtime_of(d.st);
    r.target.clear();
    r.size = 0;
    r.block_size = 0;
    r.blocks.clear();
    r.dev = 0;
    r.ino = 0;
    if (d.type == entry_type::symlink) r.target = d.target;
    if (d.type != entry_type::file) return true;
    const int fd = ::openat(d.parent_fd, d.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      ++stats.errors;
      if (opt.on_error) opt.on_error(d.path, std::strerror(errno));
      return false;
    }
    struct stat before {};
    ::fstat(fd, &before);
    if (!S_ISREG(before.st_mode) || static_cast<std::uint64_t>(before.st_size) > max_file_size) {
      ::close(fd);
      ++stats.skipped;
      return false;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const auto size = static_cast<std::uint64_t>(before.st_size);
    const std::uint32_t bs = block_size_for(size);
    auto blocks = pool.hash(fd, size, bs);
    struct stat after {};
    ::fstat(fd, &after);
    ::close(fd);
    stats.bytes_hashed += size;
    ++stats.files_hashed;
    if (!blocks || after.st_size != before.st_size || mtime_of(after) != mtime_of(before)) {
      ++stats.skipped;  // written to while read: the next scan sees it settled
      return false;
    }
    r.size = size;
    r.block_size = bs;
    r.blocks = std::move(*blocks);
    r.mode = static_cast<std::uint32_t>(after.st_mode) & max_mode;
    r.mtime_ns = mtime_of(after);
    r.dev = static_cast<std::uint64_t>(after.st_dev);
    r.ino = static_cast<std::uint64_t>(after.st_ino);
    return true;
  };

  auto same = [](const record_head& h, const disk_entry& d) {
    if (h.deleted || h.type != d.type) return false;
    const auto mode = static_cast<std::uint32_t>(d.st.st_mode) & max_mode;
    switch (d.type) {
      case entry_type::file:
        return h.size == static_cast<std::uint64_t>(d.st.st_size) && h.mtime_ns == mtime_of(d.st) && h.mode == mode;
      case entry_type::dir:
        return h.mode == mode;
      case entry_type::symlink:
        return h.target == d.target;
    }
    return false;
  };

  auto store_deleted = [&](const std::string& path, bool was_deleted) {
    auto r = idx.get(path);
    if (!r) return;
    if (!was_deleted) ++stats.deleted;
    r->deleted = true;
    r->size = 0;
    r->block_size = 0;
    r->blocks.clear();
    r->target.clear();
    r->dev = 0;
    r->ino = 0;
    store(*r);
  };

  // Moves. Live files gone from disk this scan whose inode is known, by (st_dev, st_ino):
  // their deleted records wait (up to move_window of them) for a new path with the same
  // inode, size and mtime, and are stored when one takes their blocks or at the end.
  struct gone_file {
    std::string path;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
  };
  std::map<std::pair<std::uint64_t, std::uint64_t>, gone_file> gone_files;
  // New (or changed) files seen before the end of the index: a gone file later in key order
  // may still be theirs, so they are looked at again after the walk (up to move_window).
  struct later_file {
    disk_entry d;
    bool added = false;
  };
  std::vector<later_file> later;

  // r (d's record, or a new one) takes the block list of the gone file d is, if any: the
  // new record is stored, then the old path's deleted one.
  auto take_move = [&](record& r, const disk_entry& d) -> bool {
    const auto it = gone_files.find({static_cast<std::uint64_t>(d.st.st_dev), static_cast<std::uint64_t>(d.st.st_ino)});
    if (it == gone_files.end()) return false;
    const gone_file g = it->second;
    if (g.size != static_cast<std::uint64_t>(d.st.st_size) || g.mtime_ns != mtime_of(d.st)) return false;
    gone_files.erase(it);
    auto old = idx.get(g.path);
    if (!old || old->deleted || old->type != entry_type::file || old->size != g.size) {
      store_deleted(g.path, false);
      return false;
    }
    r.type = entry_type::file;
    r.deleted = false;
    r.mode = static_cast<std::uint32_t>(d.st.st_mode) & max_mode;
    r.mtime_ns = g.mtime_ns;
    r.target.clear();
    r.size = g.size;
    r.block_size = old->block_size;
    r.blocks = std::move(old->blocks);
    r.dev = static_cast<std::uint64_t>(d.st.st_dev);
    r.ino = static_cast<std::uint64_t>(d.st.st_ino);
    store(r);
    store_deleted(g.path, false);
    ++stats.moved;
    return true;
  };

  std::string kept_prefix;  // key prefix of an unlistable directory's subtree
  auto gone = [&](const record_head& h) {
    if (h.deleted && !(h.local_only && key.can_write())) return;
    if (!kept_prefix.empty() && h.key.compare(0, kept_prefix.size(), kept_prefix) == 0) return;
    const std::string path = key_path(h.key);
    if (rules->ignored_or_inside_ignored(path, h.type == entry_type::dir)) return;
    if (!h.deleted && h.type == entry_type::file && h.ino != 0 && gone_files.size() < opt.move_window &&
        gone_files.emplace(std::pair{h.dev, h.ino}, gone_file{path, h.size, h.mtime_ns}).second)
      return;
    store_deleted(path, h.deleted);
  };

  // d's content into r, then r stored (counted as added or changed): a move's block list,
  // or the file hashed; or, while gone files may still come, d kept for after the walk.
  auto content = [&](record& r, const disk_entry& d, bool added, bool may_wait) {
    if (d.type == entry_type::file) {
      if (take_move(r, d)) {
        ++(added ? stats.added : stats.changed);
        return;
      }
      if (may_wait && head() != nullptr && later.size() < opt.move_window) {
        disk_entry keep = d;
        keep.parent_fd = -1;
        later.push_back(later_file{std::move(keep), added});
        return;
      }
    }
    if (fill(r, d)) {
      store(r);
      ++(added ? stats.added : stats.changed);
    }
  };

  try {
    idx.begin();
    refill();
    while (true) {
      auto d = walk.next();
      while (head() != nullptr && (!d || head()->key < d->key)) {
        gone(*head());
        advance();
      }
      if (!d) break;
      if (d->unlisted) kept_prefix = d->key + '\0';
      const record_head* h = head();
      if (h != nullptr && h->key == d->key) {
        // A record made while this device had only the read-only key is stored again,
        // signed, once it has the read-write key: until then no peer would take it.
        if (same(*h, *d) && !(h->local_only && key.can_write())) {
          ++stats.unchanged;
          const auto dev = static_cast<std::uint64_t>(d->st.st_dev);
          const auto ino = static_cast<std::uint64_t>(d->st.st_ino);
          if (d->type == entry_type::file && (h->dev != dev || h->ino != ino)) {
            idx.set_inode(d->path, dev, ino);  // a record from a peer, or one indexed before inodes were
            wrote();
          }
          advance();
        } else {
          const bool added = h->deleted;
          advance();  // h points into the page: done with it first
          auto r = idx.get(d->path);
          if (r) content(*r, *d, added, true);
        }
      } else {
        record r;
        r.path = d->path;
        content(r, *d, true, true);
      }
    }
    // The new files that waited, now that every gone file is known; then the gone files
    // nothing took.
    if (!later.empty()) {
      const owned_fd root{::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
      for (auto& l : later) {
        auto r = idx.get(l.d.path);
        record fresh;
        fresh.path = l.d.path;
        record& rec = r ? *r : fresh;
        if (take_move(rec, l.d)) {
          ++(l.added ? stats.added : stats.changed);
          continue;
        }
        const owned_fd parent{root.fd < 0 ? -1 : open_parent(root.fd, l.d.path)};
        if (parent.fd < 0) {
          ++stats.skipped;  // gone or replaced since: the next scan sees it
          continue;
        }
        l.d.parent_fd = parent.fd;
        content(rec, l.d, l.added, false);
      }
    }
    for (const auto& [inode, g] : gone_files)
      store_deleted(g.path, false);
    idx.commit();
  } catch (const index_error& e) {
    try {
      idx.rollback();
    } catch (const index_error&) {
    }
    return error{errc::io, e.what()};
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace shoal::sync
