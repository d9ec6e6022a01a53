// Moving a torrent's files to another folder, and deleting them. A move never leaves the
// data in no complete place: every file is first linked (same file system) or copied and
// synced (another one) into the new folder; only then does the resume data name the new
// folder, and only after that write are the originals removed. A crash at any point leaves
// the old copy (resume data still naming it) or the new one complete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "session/session.hpp"
#include "session/torrent.hpp"
#include "storage/resume.hpp"

namespace shoal {

namespace fs = std::filesystem;

namespace {

std::error_code sys_error() {
  return {errno, std::generic_category()};
}

// Copies `from` to `to` (created or truncated) and fsyncs it.
std::error_code copy_synced(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return sys_error();
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0) {
    auto e = sys_error();
    ::close(in);
    return e;
  }
  std::error_code ec;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = sys_error();
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        ec = sys_error();
        break;
      }
      done += w;
    }
    if (ec) break;
  }
  if (!ec && ::fsync(out) != 0) ec = sys_error();
  ::close(in);
  ::close(out);
  return ec;
}

void sync_dir(const fs::path& dir) {
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);
    ::close(d);
  }
}

// Removes the folders between each removed file and `root` that are empty now.
void remove_empty_parents(const std::vector<fs::path>& files, const fs::path& root) {
  std::set<fs::path, std::greater<>> dirs;  // deepest first
  for (const auto& f : files) {
    for (auto d = f.parent_path(); d != root && d.string().size() > root.string().size(); d = d.parent_path())
      dirs.insert(d);
  }
  for (const auto& d : dirs) {
    std::error_code ec;
    if (fs::is_empty(d, ec) && !ec) fs::remove(d, ec);
  }
}

}  // namespace

void torrent::move_storage(fs::path to, bool move_data) {
  if (stopping_ || moving_) return;
  if (!fs_) {
    save_path_ = std::move(to);  // nothing on disk yet
    return;
  }
  std::error_code ec;
  if (fs::weakly_canonical(to, ec) == fs::weakly_canonical(save_path_, ec)) return;
  moving_ = true;
  ++check_gen_;  // a check in progress starts again afterwards
  if (state_ == torrent_state::checking) needs_check_ = true;
  // Renames under way finish first: they name the files the move takes.
  auto go = [self = shared_from_this(), to, move_data] {
    self->when_idle([self] { return self->renames_inflight_ > 0; },
                    [self, to, move_data] { self->move_files(to, move_data); });
  };
  if (active_) {
    wind_down(go);
    set_state(torrent_state::queued);
    return;
  }
  // Wait for checks in flight (they read the files) before touching anything, and for the
  // resume data to be read: the move's own save must hold the verified pieces.
  when_idle([self = shared_from_this()] { return self->check_inflight_ > 0 || !self->loaded_; }, go);
}

void torrent::move_files(fs::path to, bool move_data) {
  auto self = shared_from_this();
  std::vector<std::pair<fs::path, fs::path>> moves;  // old, new
  if (move_data) {
    disk_io fresh(*fs_, to);
    fresh.set_renamed(renamed_.view());
    for (std::uint32_t f = 0; f < fs_->files().size(); ++f) {
      if (fs_->files()[f].pad) continue;
      moves.emplace_back(disk_->file_path(f), fresh.file_path(f));
    }
  }
  const fs::path old_root = save_path_;
  session_.disk_pool().post([self, moves, to, old_root, move_data] {
    std::error_code ec;
    std::string failed;
    for (const auto& [from, dest] : moves) {
      struct stat st {};
      if (::lstat(from.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // not there: nothing to move
      fs::create_directories(dest.parent_path(), ec);
      if (ec) {
        failed = dest.parent_path().string();
        break;
      }
      // A copy left by an earlier, interrupted move is replaced.
      ::unlink(dest.c_str());
      if (::link(from.c_str(), dest.c_str()) != 0) {
        ec = copy_synced(from, dest);
        if (ec) {
          failed = dest.string();
          break;
        }
      }
      sync_dir(dest.parent_path());
    }
    asio::post(self->session_.io(), [self, ec, failed, moves, to, old_root, move_data] {
      if (ec) {
        // The originals are untouched: the torrent stays where it was.
        self->moving_ = false;
        self->post_event(static_cast<int>(event_kind::error), "cannot move to " + failed + ": " + ec.message());
        self->session_.queue_changed();
        return;
      }
      self->save_path_ = to;
      self->disk_ = self->make_disk(to);
      self->save_resume();  // names the new folder; queued on the disk pool before the removal
      self->session_.disk_pool().post([self, moves, to, old_root, move_data] {
        std::vector<fs::path> removed;
        for (const auto& [from, dest] : moves) {
          std::error_code rec;
          if (fs::remove(from, rec)) removed.push_back(from);
        }
        remove_empty_parents(removed, old_root);
        asio::post(self->session_.io(), [self, to, move_data] {
          self->moving_ = false;
          self->post_event(static_cast<int>(event_kind::storage_moved), to.string());
          // Not moved: what is in the new folder is not known until it is checked.
          if (!move_data) self->force_recheck();
          self->session_.queue_changed();
        });
      });
    });
  });
}

void torrent::delete_files(bool data, std::function<void(std::error_code)> done) {
  auto self = shared_from_this();
  std::vector<fs::path> files;
  if (fs_ && data) {
    for (std::uint32_t f = 0; f < fs_->files().size(); ++f) {
      if (!fs_->files()[f].pad) files.push_back(disk_->file_path(f));
    }
  }
  session_.disk_pool().post(
      [self, files, done = std::move(done), root = save_path_, resume = resume_file_, meta = metadata_file_] {
        std::error_code first;
        std::vector<fs::path> removed;
        for (const auto& f : files) {
          std::error_code ec;
          if (fs::remove(f, ec)) removed.push_back(f);
          if (ec && !first) first = ec;
        }
        remove_empty_parents(removed, root);
        std::error_code ignored;
        if (!resume.empty()) fs::remove(resume, ignored);
        if (!meta.empty()) fs::remove(meta, ignored);
        asio::post(self->session_.io(), [done, first] { done(first); });
      });
}

std::unique_ptr<disk_io> torrent::make_disk(const fs::path& root) const {
  auto d = std::make_unique<disk_io>(*fs_, root, session_.files());
  d->set_renamed(renamed_.view());
  return d;
}

std::string torrent::file_name(std::uint32_t f) const {
  if (auto it = renamed_.view().find(f); it != renamed_.view().end()) return it->second;
  return fs_->files()[f].path;
}

void torrent::rename_path(std::string from, std::string to, std::function<void(std::error_code, std::string)> done) {
  auto refuse = [&](std::errc e, std::string why) { done(std::make_error_code(e), std::move(why)); };
  while (!from.empty() && from.back() == '/')
    from.pop_back();
  while (!to.empty() && to.back() == '/')
    to.pop_back();
  if (!fs_) return refuse(std::errc::operation_not_permitted, "the torrent has no metadata yet");
  if (moving_) return refuse(std::errc::device_or_resource_busy, "the torrent's files are being moved");
  if (!is_clean_relative_path(from)) return refuse(std::errc::invalid_argument, "not a path of the torrent: " + from);
  if (!is_clean_relative_path(to)) {
    return refuse(std::errc::invalid_argument,
                  "not a usable name: " + to + " (relative, no empty, '.' or '..' parts, no control characters)");
  }
  if (from == to) return done({}, {});
  if (to.starts_with(from + "/")) return refuse(std::errc::invalid_argument, "cannot move " + from + " into itself");
  // The files under `from` (a file, or a folder and everything in it) and their new paths.
  std::map<std::uint32_t, std::string> names;
  std::vector<std::string> others;
  for (std::uint32_t f = 0; f < fs_->files().size(); ++f) {
    if (fs_->files()[f].pad) continue;
    auto name = file_name(f);
    if (name == from) {
      names[f] = to;
    } else if (name.starts_with(from + "/")) {
      names[f] = to + name.substr(from.size());
    } else {
      others.push_back(std::move(name));
    }
  }
  if (names.empty())
    return refuse(std::errc::no_such_file_or_directory, "no file or folder " + from + " in the torrent");
  // No new path may be another file's, a folder of one, or inside one.
  std::set<std::string> taken(others.begin(), others.end());
  for (const auto& o : others) {
    for (auto slash = o.find('/'); slash != std::string::npos; slash = o.find('/', slash + 1))
      taken.insert(o.substr(0, slash) + "/");  // its folders
  }
  for (const auto& [f, n] : names) {
    if (taken.count(n) || taken.count(n + "/")) return refuse(std::errc::file_exists, n + " is taken by another file");
    for (auto slash = n.find('/'); slash != std::string::npos; slash = n.find('/', slash + 1)) {
      if (taken.count(n.substr(0, slash))) return refuse(std::errc::file_exists, n.substr(0, slash) + " is a file");
    }
  }
  auto self = shared_from_this();
  ++renames_inflight_;
  session_.disk_pool().post([self, from, to, names, done = std::move(done)]() mutable {
    auto ec = self->disk_->rename(from, to, names);
    asio::post(self->session_.io(), [self, ec, to, names = std::move(names), done = std::move(done)] {
      --self->renames_inflight_;
      if (ec) return done(ec, "cannot rename: " + ec.message());
      for (const auto& [f, n] : names) {
        if (n == self->fs_->files()[f].path) {
          self->renamed_->erase(f);
        } else {
          self->renamed_[f] = n;
        }
      }
      self->save_resume();
      self->post_event(static_cast<int>(event_kind::file_renamed), to, names.begin()->first);
      done({}, {});
    });
  });
}

}  // namespace shoal
