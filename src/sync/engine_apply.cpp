// sync::engine, the disk side: the puller that applies queued records, conflicts, scans
// and the inotify watcher.
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "core/hash.hpp"
#include "core/text.hpp"
#include "sync/engine_impl.hpp"
#include "sync/fsops.hpp"

namespace shoal::sync {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

version_vector merged(const version_vector& a, const version_vector& b) {
  version_vector out;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].device < b[j].device)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].device < a[i].device) {
      out.push_back(b[j++]);
    } else {
      out.push_back(version_entry{a[i].device, std::max(a[i].counter, b[j].counter)});
      ++i;
      ++j;
    }
  }
  return out;
}

// Of two concurrent versions with the same content, the one every device keeps.
bool wins(const record& a, const record& b) {
  // A record a read-only device made can never spread: the signed one is kept.
  if (a.local_only != b.local_only) return b.local_only;
  if (a.modified_by != b.modified_by) return a.modified_by > b.modified_by;
  return encode_record(a) > encode_record(b);
}

// Of two concurrent versions with different content, the one that becomes the conflict
// copy: the older change (by mtime, then device id).
bool loses(const record& a, const record& b) {
  if (a.mtime_ns != b.mtime_ns) return a.mtime_ns < b.mtime_ns;
  if (a.modified_by != b.modified_by) return a.modified_by < b.modified_by;
  return encode_record(a) < encode_record(b);
}

bool same_content(const record& a, const record& b) {
  if (a.deleted != b.deleted || a.type != b.type) return false;
  switch (a.type) {
    case entry_type::file:
      return a.size == b.size && a.blocks == b.blocks;
    case entry_type::symlink:
      return a.target == b.target;
    case entry_type::dir:
      return true;
  }
  return false;
}

bool on_disk(const std::filesystem::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void fsync_dir_of(const std::filesystem::path& p) {
  const int fd = ::open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string engine::impl::source_of(const need& n) const {
  return n.sources.empty() ? n.rec.modified_by : *n.sources.begin();
}

void engine::impl::put(record r) {
  r.local_only = r.signature.empty();
  f.db().put(r);
  announce();
}

// ---- the puller -------------------------------------------------------------------------

namespace {

// One key is the other's directory (or the same path).
bool related(const std::string& a, const std::string& b) {
  const auto& shorter = a.size() <= b.size() ? a : b;
  const auto& longer = a.size() <= b.size() ? b : a;
  return longer.compare(0, shorter.size(), shorter) == 0 &&
         (longer.size() == shorter.size() || longer[shorter.size()] == '\0');
}

}  // namespace

std::optional<std::string> engine::impl::next_need() {
  const auto now = steady::now();
  auto free = [&](const std::string& k) {
    for (const auto& f : in_flight)
      if (related(f, k)) return false;
    return true;
  };
  // Live versions first (in key order: a directory before what is in it), several at once
  // when their paths are unrelated; then deleted files once no live one is queued or under
  // way, then deleted directories deepest first, alone: a move's new path is made from the
  // old one's blocks before the old one goes to the archive.
  bool live_waiting = false;
  for (const auto& [k, n] : needs) {
    if (n.rec.deleted || in_flight.count(k) != 0) continue;
    if (n.not_before <= now && free(k)) return k;
    live_waiting = live_waiting || n.not_before <= now;
  }
  if (live_waiting) return std::nullopt;
  for (const auto& f : in_flight)
    if (auto it = needs.find(f); it != needs.end() && !it->second.rec.deleted) return std::nullopt;
  for (const auto& [k, n] : needs)
    if (n.not_before <= now && n.rec.deleted && n.rec.type != entry_type::dir && in_flight.count(k) == 0 && free(k))
      return k;
  if (!in_flight.empty()) return std::nullopt;
  for (auto it = needs.rbegin(); it != needs.rend(); ++it)
    if (it->second.not_before <= now) return it->first;
  return std::nullopt;
}

asio::awaitable<void> engine::impl::pull_loop() {
  auto self = shared_from_this();
  while (!stopped) {
    while (in_flight.size() < max_applies) {
      const auto key = next_need();
      if (!key) break;
      in_flight.insert(*key);
      spawn(apply_one(*key), "sync apply");
    }
    // Woken by a new need, a finished apply, or the earliest back-off ending (not by
    // walking every queued need: that made a large queue quadratic).
    const auto now = steady::now();
    const auto wake = next_retry > now ? next_retry : steady::time_point::max();
    if (next_retry <= now) next_retry = steady::time_point::max();
    puller_wake.expires_at(wake);
    boost::system::error_code ec;
    co_await puller_wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> engine::impl::apply_one(std::string key) {
  auto self = shared_from_this();
  const need copy = needs.at(key);
  outcome o = outcome::retry;
  try {
    o = co_await apply(copy);
  } catch (const index_error& e) {
    log(std::string("sync: ") + e.what());
  }
  in_flight.erase(key);
  puller_wake.cancel();
  auto it = needs.find(key);
  if (it == needs.end() || it->second.generation != copy.generation) co_return;
  if (o == outcome::done) {
    finish_need(key);  // erases it
    co_return;
  }
  if (o == outcome::rescan) {
    // Something the scan does not index (ignored, unreadable) backs off too.
    const int k = std::min(++it->second.failures, 7);
    it->second.not_before = steady::now() + 100ms * (1 << k);
  } else {
    const int k = std::min(++it->second.failures, 5);
    it->second.not_before = steady::now() + std::chrono::seconds(1 << k);
  }
  next_retry = std::min(next_retry, it->second.not_before);
}

asio::awaitable<outcome> engine::impl::apply(const need& n) {
  const record& r = n.rec;
  const auto local = f.db().get(r.path);
  const auto ord = local ? compare(r.version, local->version) : ordering::after;
  if (ord == ordering::equal || ord == ordering::before) co_return outcome::done;
  // A local change not indexed yet is never overwritten: the scan first.
  if (!disk_matches(f.paths().dir, r.path, local)) {
    request_scan(true);
    co_return outcome::rescan;
  }
  if (ord == ordering::concurrent) co_return co_await conflict(r, *local, n);
  co_return co_await take(r, local, n);
}

asio::awaitable<outcome> engine::impl::take(const record& r, const std::optional<record>& local, const need& n) {
  const auto& root = f.paths().dir;
  const auto full = root / r.path;
  if (r.deleted) {
    if (local && !local->deleted) {
      if (local->type == entry_type::dir) {
        if (::rmdir(full.c_str()) != 0 && errno != ENOENT) {
          // Something is still in it (perhaps a change of ours): the delete is recorded and
          // the next scan brings the directory back with what is there.
          put(r);
          request_scan(true);
          co_return outcome::done;
        }
      } else {
        auto a = archive(root, r.path, false);
        if (!a) {
          log("sync: " + shown(r.path) + ": " + a.err().message());
          co_return outcome::retry;
        }
        remember_blocks(*local, *a);
      }
      emit("delete", r.path, source_of(n), "");
    }
    put(r);
    co_return outcome::done;
  }
  if (auto p = make_parents(root, r.path); !p) {
    log("sync: " + shown(r.path) + ": " + p.err().message());
    co_return outcome::retry;
  }
  co_return co_await place(r, r.path, n);
}

// Makes r's content at dest (r.path, or a conflict copy's path): the index record at dest
// must not change meanwhile, and the disk must still be what it says (nothing, for a
// conflict copy).
asio::awaitable<outcome> engine::impl::place(const record& r, const std::string& dest, const need& n) {
  const auto& root = f.paths().dir;
  const auto full = root / dest;
  const bool own_path = dest == r.path;
  const auto before = f.db().get(dest);
  const std::uint64_t before_seq = before ? before->sequence : 0;
  auto unchanged = [&]() {
    const auto now = f.db().get(dest);
    if ((now ? now->sequence : 0) != before_seq) return false;
    return own_path ? disk_matches(root, dest, now) : !on_disk(full);
  };
  // What is at dest now goes to the archive (a hard link when it is replaced by a rename).
  auto keep_old = [&](bool replaced_by_rename) -> bool {
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) return true;
    const bool is_dir = S_ISDIR(st.st_mode);
    if (is_dir && r.type == entry_type::dir) return true;
    auto a = archive(root, dest, replaced_by_rename && !is_dir);
    if (!a) a = archive(root, dest, false);
    if (!a) {
      log("sync: " + shown(dest) + ": " + a.err().message());
      return false;
    }
    if (before) remember_blocks(*before, *a);
    return true;
  };
  if (own_path && before && same_content(*before, r) && before->mode == r.mode && before->mtime_ns == r.mtime_ns) {
    // Already here (a merge of two versions, or the same change made twice): the record alone.
    put(r);
    co_return outcome::done;
  }
  if (r.type == entry_type::dir) {
    if (!keep_old(false)) co_return outcome::retry;
    if (::mkdir(full.c_str(), r.mode | 0700) != 0 && errno != EEXIST) {
      log("sync: " + shown(dest) + ": " + std::strerror(errno));
      co_return outcome::retry;
    }
    ::chmod(full.c_str(), r.mode);
    if (own_path) put(r);
    if (!before || before->deleted) emit("sync", dest, source_of(n), "dir");
    co_return outcome::done;
  }
  if (r.type == entry_type::symlink) {
    if (!safe_symlink_target(dest, r.target)) {
      refused.insert(to_hex(as_view(sha256(encode_record(r)))));
      log("sync: refused symlink " + shown(dest) + " -> " + shown(r.target) +
          ": its target is absolute or outside the folder");
      emit("refused", dest, source_of(n), "symlink target outside the folder");
      co_return outcome::done;
    }
    const auto tmp = f.paths().state / "tmp" / (to_hex(as_view(sha256(encode_record(r)))).substr(0, 40) + ".link");
    ::mkdir(tmp.parent_path().c_str(), 0700);
    ::unlink(tmp.c_str());
    if (::symlink(r.target.c_str(), tmp.c_str()) != 0) {
      log("sync: " + shown(dest) + ": symlink: " + std::strerror(errno));
      co_return outcome::retry;
    }
    if (!keep_old(true)) co_return outcome::retry;
    if (::rename(tmp.c_str(), full.c_str()) != 0) {
      log("sync: " + shown(dest) + ": " + std::strerror(errno));
      co_return outcome::retry;
    }
    if (own_path) put(r);
    emit("sync", dest, source_of(n), "symlink");
    co_return outcome::done;
  }
  if (own_path && r.block_total() > 0) {
    // A move: a file here with exactly this content (by the index: size and block list)
    // whose delete is queued too, with nothing changed here since it was indexed, is
    // renamed into place instead of copied (its delete then needs nothing more).
    std::optional<record> from;
    for (const auto& loc : find_block(std::string_view(r.blocks).substr(0, 32), 16)) {
      if (loc.offset != 0) continue;
      const std::string rel = loc.file.lexically_relative(root).generic_string();
      if (rel == r.path || (from && rel == from->path)) continue;
      const auto q = f.db().get(rel);
      if (!q || q->deleted || q->type != entry_type::file || q->size != r.size || q->block_size != r.block_size ||
          q->blocks != r.blocks)
        continue;
      const auto it = needs.find(path_key(rel));
      if (it == needs.end() || !it->second.rec.deleted || in_flight.count(it->first) != 0 ||
          compare(it->second.rec.version, q->version) != ordering::after || !disk_matches(root, rel, q))
        continue;
      from = q;
      break;
    }
    if (from && keep_old(true)) {
      const auto old_full = root / from->path;
      if (::rename(old_full.c_str(), full.c_str()) != 0) {
        log("sync: " + shown(from->path) + " -> " + shown(dest) + ": " + std::strerror(errno));
        co_return outcome::retry;
      }
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
          static_cast<std::uint64_t>(st.st_size) != from->size || mtime_ns_of(st) != from->mtime_ns) {
        // Written to between the check and the rename: a local change now, the scan's.
        request_scan(true);
        co_return outcome::rescan;
      }
      if ((static_cast<std::uint32_t>(st.st_mode) & max_mode) != r.mode) ::chmod(full.c_str(), r.mode);
      if (r.mtime_ns != from->mtime_ns) {
        const timespec times[2] = {
            {0, UTIME_OMIT},
            {static_cast<time_t>(r.mtime_ns / 1'000'000'000), static_cast<long>(r.mtime_ns % 1'000'000'000)}};
        ::utimensat(AT_FDCWD, full.c_str(), times, AT_SYMLINK_NOFOLLOW);
      }
      fsync_dir_of(full);
      fsync_dir_of(old_full);
      record here = r;
      here.dev = static_cast<std::uint64_t>(st.st_dev);
      here.ino = static_cast<std::uint64_t>(st.st_ino);
      put(here);
      const std::string old_key = path_key(from->path);
      put(needs.at(old_key).rec);
      finish_need(old_key);
      log("sync: " + shown(from->path) + " renamed to " + shown(dest) + " (moved on " + source_of(n) + ")");
      emit("sync", dest, source_of(n), std::to_string(r.size) + " bytes, 0 fetched");
      co_return outcome::done;
    }
  }
  const std::uint64_t fetched_before = bytes_fetched;
  auto tmp = co_await assemble(r, n);
  if (!tmp) {
    log("sync: " + shown(dest) + ": " + tmp.err().message());
    co_return outcome::retry;
  }
  if (stopped) co_return outcome::retry;
  if (!unchanged()) {
    // Changed here while it was fetched: the scan decides (the temporary file stays and
    // is reused).
    request_scan(true);
    co_return outcome::rescan;
  }
  if (!keep_old(true)) co_return outcome::retry;
  if (::rename(tmp->c_str(), full.c_str()) != 0) {
    log("sync: " + shown(dest) + ": " + std::strerror(errno));
    co_return outcome::retry;
  }
  fsync_dir_of(full);
  if (own_path) {
    // With the inode of the file just made, so that a move of it is seen by the next scan.
    record here = r;
    struct stat st {};
    if (::lstat(full.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == r.size &&
        mtime_ns_of(st) == r.mtime_ns) {
      here.dev = static_cast<std::uint64_t>(st.st_dev);
      here.ino = static_cast<std::uint64_t>(st.st_ino);
    }
    put(here);
  }
  emit("sync", dest, source_of(n),
       std::to_string(r.size) + " bytes, " + std::to_string(bytes_fetched - fetched_before) + " fetched");
  co_return outcome::done;
}

asio::awaitable<outcome> engine::impl::conflict(const record& r, const record& local, const need& n) {
  const auto& root = f.paths().dir;
  if (same_content(r, local)) {
    // Both sides made the same thing: every device keeps the same one of the two records.
    if (wins(r, local)) {
      const auto full = root / r.path;
      if (!r.deleted && r.type != entry_type::symlink) {
        ::chmod(full.c_str(), r.mode);
        if (r.type == entry_type::file) {
          const timespec times[2] = {
              {0, UTIME_OMIT},
              {static_cast<time_t>(r.mtime_ns / 1'000'000'000), static_cast<long>(r.mtime_ns % 1'000'000'000)}};
          ::utimensat(AT_FDCWD, full.c_str(), times, AT_SYMLINK_NOFOLLOW);
        }
      }
      put(r);
    }
    co_return outcome::done;
  }
  if (r.deleted) co_return outcome::done;                   // a change beats a delete: ours stays
  if (local.deleted) co_return co_await take(r, local, n);  // and theirs comes back here
  bool local_loses = loses(local, r);
  if (local.type == entry_type::dir && r.type != entry_type::dir) local_loses = false;
  if (r.type == entry_type::dir && local.type != entry_type::dir) local_loses = true;
  if (local_loses) {
    const std::string cpath = conflict_path(local.path, local.mtime_ns, local.modified_by);
    const auto cfull = root / cpath;
    if (on_disk(cfull)) {
      if (auto a = archive(root, cpath, false); !a) co_return outcome::retry;
    }
    if (::rename((root / local.path).c_str(), cfull.c_str()) != 0) {
      log("sync: " + shown(local.path) + ": " + std::strerror(errno));
      co_return outcome::retry;
    }
    remember_blocks(local, cfull);
    emit("conflict", local.path, local.modified_by, cpath);
    request_scan(false);
    co_return co_await place(r, r.path, n);
  }
  const std::string cpath = conflict_path(r.path, r.mtime_ns, r.modified_by);
  if (!on_disk(root / cpath)) {
    if (auto p = make_parents(root, cpath); !p) co_return outcome::retry;
    const auto o = co_await place(r, cpath, n);
    if (o != outcome::done) co_return o;
    emit("conflict", r.path, r.modified_by, cpath);
  }
  if (f.key().can_write()) {
    // Ours stays at the path, now a version after both.
    const auto cur = f.db().get(local.path);
    if (cur && cur->sequence == local.sequence) {
      record m = local;
      m.version = merged(local.version, r.version);
      bump(m.version, f.device().id());
      m.modified_by = f.device().id();
      sign_record(m, f.key());
      put(m);
    }
  }
  request_scan(false);
  co_return outcome::done;
}

// ---- scans ------------------------------------------------------------------------------

void engine::impl::request_scan(bool now) {
  const auto t = steady::now();
  const auto due = now ? t : t + opt.debounce;
  // A folder that never goes quiet is still scanned: the first request waits at most 5 s.
  if (!scan_requested) {
    scan_requested = true;
    scan_due = due;
    scan_first = t;
  } else {
    scan_due = now ? t : std::min(due, scan_first + 5 * opt.debounce);
  }
  scan_wake.cancel();
}

asio::awaitable<void> engine::impl::scan_loop() {
  auto self = shared_from_this();
  auto next_full = steady::now() + opt.full_scan;
  while (!stopped) {
    const auto due = scan_requested ? std::min(scan_due, next_full) : next_full;
    if (steady::now() < due) {
      scan_wake.expires_at(due);
      boost::system::error_code ec;
      co_await scan_wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (stopped) break;
    try {
      do_scan();
    } catch (const index_error& e) {
      log(std::string("sync: scan: ") + e.what());
    }
    next_full = steady::now() + opt.full_scan;
  }
}

void engine::impl::do_scan(bool report) {
  scan_requested = false;
  const std::uint64_t before = f.db().last_sequence();
  scan_options so;
  so.on_error = [this](const std::string& path, const std::string& why) {
    log("sync: scan: " + shown(path) + ": " + why);
  };
  auto s = f.scan(so);
  if (!s) {
    log("sync: scan: " + s.err().message());
    return;
  }
  if (f.db().last_sequence() != before && report) {
    emit("scan", "", f.device().id(),
         std::to_string(s->added) + " added, " + std::to_string(s->changed) + " changed, " +
             std::to_string(s->deleted) + " deleted" +
             (s->moved > 0 ? ", " + std::to_string(s->moved) + " moved (not read)" : std::string()));
    announce();
  }
  if (!needs.empty()) puller_wake.cancel();
}

// ---- the watcher ------------------------------------------------------------------------

result<bool> engine::impl::start_watch() {
  ino = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino < 0) return error{errc::io, std::string("inotify: ") + std::strerror(errno)};
  ino_sd = std::make_unique<asio::posix::stream_descriptor>(io, ino);
  watch_tree("");
  spawn(watch_loop(), "sync watch");
  return true;
}

void engine::impl::watch_tree(const std::string& rel) {
  const auto full = rel.empty() ? f.paths().dir : f.paths().dir / rel;
  const std::uint32_t mask =
      IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW;
  const int wd = ::inotify_add_watch(ino, full.c_str(), mask);
  if (wd < 0) {
    log("sync: watch " + shown(rel) + ": " + std::strerror(errno) + " (the periodic scan still sees it)");
    return;
  }
  watches[wd] = rel;
  DIR* d = ::opendir(full.c_str());
  if (d == nullptr) return;
  std::vector<std::string> subdirs;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == ".." || (rel.empty() && name == ".shoal")) continue;
    const std::string child = rel.empty() ? std::string(name) : rel + "/" + std::string(name);
    struct stat st {};
    if (::lstat((f.paths().dir / child).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) subdirs.push_back(child);
  }
  ::closedir(d);
  for (const auto& s : subdirs)
    watch_tree(s);
}

// Reads a buffer of inotify events; true if any of them is a change in the folder. Every
// change only schedules the one debounced scan, so a rename's IN_MOVED_FROM and IN_MOVED_TO
// are one scan that sees both paths (and pairs them by inode: a move, nothing re-read).
// A directory moved within the folder keeps its watch descriptors (watch_tree on the new
// name renames them in the map); one moved out of the folder (an IN_MOVED_FROM whose cookie
// has no IN_MOVED_TO in the same buffer) has its watches removed, so what is done in it
// afterwards does not make scans here. Should the pair be split across two reads, the
// directory is simply watched again when its IN_MOVED_TO comes.
bool engine::impl::take_events(const char* data, std::size_t n) {
  std::size_t pos = 0;
  bool any = false;
  std::map<std::uint32_t, std::string> moved_from;  // cookie -> a directory moved away
  while (pos + sizeof(inotify_event) <= n) {
    inotify_event ev{};
    std::memcpy(&ev, data + pos, sizeof ev);
    const std::string name = ev.len > 0 ? std::string(data + pos + sizeof ev) : std::string();
    pos += sizeof ev + ev.len;
    if ((ev.mask & IN_Q_OVERFLOW) != 0) {
      any = true;
      continue;
    }
    auto it = watches.find(ev.wd);
    if (it == watches.end()) continue;
    if ((ev.mask & IN_IGNORED) != 0) {
      watches.erase(it);
      continue;
    }
    const std::string rel = it->second;
    if (rel.empty() && name == ".shoal") continue;
    const std::string child = rel.empty() ? name : rel + "/" + name;
    if ((ev.mask & IN_ISDIR) != 0 && (ev.mask & IN_MOVED_FROM) != 0) moved_from[ev.cookie] = child;
    if ((ev.mask & IN_ISDIR) != 0 && (ev.mask & IN_MOVED_TO) != 0) moved_from.erase(ev.cookie);
    if ((ev.mask & IN_ISDIR) != 0 && (ev.mask & (IN_CREATE | IN_MOVED_TO)) != 0) watch_tree(child);
    any = true;
  }
  for (const auto& [cookie, dir] : moved_from) {
    for (auto it = watches.begin(); it != watches.end();) {
      const std::string& w = it->second;
      if (w == dir || (w.size() > dir.size() && w.compare(0, dir.size(), dir) == 0 && w[dir.size()] == '/')) {
        ::inotify_rm_watch(ino, it->first);
        it = watches.erase(it);
      } else {
        ++it;
      }
    }
  }
  return any;
}

asio::awaitable<void> engine::impl::watch_loop() {
  auto self = shared_from_this();
  std::vector<char> buf(64 * 1024);
  while (!stopped) {
    boost::system::error_code ec;
    const std::size_t n =
        co_await ino_sd->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    if (take_events(buf.data(), n)) request_scan(false);
  }
}

}  // namespace shoal::sync
