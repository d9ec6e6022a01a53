#include "storage/safe_path.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace shoal::safe {

namespace fs = std::filesystem;

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "shoal.path"; }
  [[nodiscard]] std::string message(int) const override {
    return "a symlink in the path inside the download folder (refusing to follow it)";
  }
};

std::error_code errno_code() {
  return {errno, std::generic_category()};
}

// The components of a relative path, or an empty list when it is not one we may open
// (absolute, "..", "."): torrent paths are sanitised before they get here, so this is a
// second fence, not the first.
bool split(const fs::path& rel, std::vector<std::string>& out) {
  if (rel.empty() || rel.is_absolute()) return false;
  for (const auto& c : rel) {
    const std::string s = c.string();
    if (s.empty()) continue;  // a trailing slash
    if (s == "." || s == ".." || s.find('/') != std::string::npos) return false;
    out.push_back(s);
  }
  return !out.empty();
}

bool is_symlink_at(int dirfd, const std::string& name) {
  struct stat st {};
  return ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// Enters folder `name` beneath `cur` (creating it when asked); never through a symlink.
fd enter_dir(int cur, const std::string& name, bool make, std::error_code& ec) {
  int f = ::openat(cur, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (f < 0 && errno == ENOENT && make) {
    if (::mkdirat(cur, name.c_str(), 0755) != 0 && errno != EEXIST) {
      ec = errno_code();
      return {};
    }
    f = ::openat(cur, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (f < 0) {
    const int err = errno;
    ec = err == ELOOP || (err == ENOTDIR && is_symlink_at(cur, name)) ? symlink_in_path()
                                                                      : std::error_code(err, std::generic_category());
    return {};
  }
  return fd(f);
}

long raw_openat2(int dirfd, const char* path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags) | O_CLOEXEC;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

}  // namespace

const std::error_category& path_category() {
  static const category c;
  return c;
}

std::error_code symlink_in_path() {
  return {1, path_category()};
}

fd::~fd() {
  if (f_ >= 0) ::close(f_);
}

fd& fd::operator=(fd&& o) noexcept {
  if (this != &o) {
    if (f_ >= 0) ::close(f_);
    f_ = o.release();
  }
  return *this;
}

bool have_openat2() {
  static const bool yes = [] {
    const long f = raw_openat2(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY, 0);
    if (f < 0) return false;  // ENOSYS, or a seccomp filter that refuses it
    ::close(static_cast<int>(f));
    return true;
  }();
  return yes;
}

fd open_root(const fs::path& dir, bool create, std::error_code& ec) {
  const fs::path d = dir.empty() ? fs::path(".") : dir;
  if (create) {
    fs::create_directories(d, ec);
    if (ec) return {};
  }
  const int f = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (f < 0) {
    ec = errno_code();
    return {};
  }
  return fd(f);
}

fd make_dirs_beneath(int dirfd, const fs::path& rel, std::error_code& ec) {
  std::vector<std::string> parts;
  if (!split(rel, parts)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  fd cur;
  for (const auto& p : parts) {
    fd next = enter_dir(cur ? cur.get() : dirfd, p, true, ec);
    if (!next) return {};
    cur = std::move(next);
  }
  return cur;
}

fd open_beneath_walk(int dirfd, const fs::path& rel, int flags, mode_t mode, bool make_dirs, std::error_code& ec) {
  std::vector<std::string> parts;
  if (!split(rel, parts)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  fd cur;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    fd next = enter_dir(cur ? cur.get() : dirfd, parts[i], make_dirs, ec);
    if (!next) return {};
    cur = std::move(next);
  }
  const int at = cur ? cur.get() : dirfd;
  const int f = ::openat(at, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (f < 0) {
    const int err = errno;
    ec = err == ELOOP ? symlink_in_path() : std::error_code(err, std::generic_category());
    return {};
  }
  return fd(f);
}

fd open_beneath(int dirfd, const fs::path& rel, int flags, mode_t mode, bool make_dirs, std::error_code& ec) {
  if (!have_openat2()) return open_beneath_walk(dirfd, rel, flags, mode, make_dirs, ec);
  std::vector<std::string> parts;
  if (!split(rel, parts)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const long f = raw_openat2(dirfd, rel.c_str(), flags | O_NOFOLLOW, mode);
    if (f >= 0) return fd(static_cast<int>(f));
    const int err = errno;
    if (err == ENOENT && make_dirs && attempt == 0 && parts.size() > 1) {
      fd d = make_dirs_beneath(dirfd, rel.parent_path(), ec);
      if (!d) return {};
      continue;
    }
    // ELOOP: a symlink on the way (RESOLVE_NO_SYMLINKS); EXDEV: the path left the folder.
    ec = err == ELOOP || err == EXDEV ? symlink_in_path() : std::error_code(err, std::generic_category());
    return {};
  }
  ec = std::make_error_code(std::errc::no_such_file_or_directory);
  return {};
}

}  // namespace shoal::safe
