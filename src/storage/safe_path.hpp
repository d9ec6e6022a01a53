// Opening files beneath a folder without following any symlink on the way. O_NOFOLLOW
// guards only a path's last component: a folder inside the download folder that was
// replaced by a symlink to elsewhere would otherwise receive the torrent's data. Every
// component is resolved relative to the folder's descriptor, with openat2's
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has it, else one
// openat(O_NOFOLLOW | O_DIRECTORY) per folder.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace shoal::safe {

// The error for a symlink (or a path leaving the folder) met on the way; its message
// says so plainly instead of "Too many levels of symbolic links".
[[nodiscard]] std::error_code symlink_in_path();
[[nodiscard]] const std::error_category& path_category();

// An owned descriptor (-1 when empty).
class fd {
 public:
  fd() = default;
  explicit fd(int f) : f_(f) {}
  ~fd();
  fd(fd&& o) noexcept : f_(o.release()) {}
  fd& operator=(fd&& o) noexcept;
  fd(const fd&) = delete;
  fd& operator=(const fd&) = delete;
  [[nodiscard]] int get() const { return f_; }
  [[nodiscard]] explicit operator bool() const { return f_ >= 0; }
  int release() {
    const int f = f_;
    f_ = -1;
    return f;
  }

 private:
  int f_ = -1;
};

// Opens (creating it and its parents when `create`) a folder given by the caller, which
// may itself be reached through symlinks: the user chose it.
[[nodiscard]] fd open_root(const std::filesystem::path& dir, bool create, std::error_code& ec);

// Opens `rel` (relative, no "..": paths from a torrent are sanitised first) beneath the
// folder `dirfd` with open(2) `flags` and `mode`, following no symlink in any component,
// the last included. With `make_dirs`, missing folders on the way are created (each
// created folder is opened with O_NOFOLLOW before it is entered).
[[nodiscard]] fd open_beneath(int dirfd, const std::filesystem::path& rel, int flags, mode_t mode, bool make_dirs,
                              std::error_code& ec);

// Creates the folders of `rel` beneath `dirfd` (rel itself included) and returns the last
// one, opened, never following a symlink.
[[nodiscard]] fd make_dirs_beneath(int dirfd, const std::filesystem::path& rel, std::error_code& ec);

// The fallback open_beneath uses where openat2 is missing: one component at a time.
// Public so tests cover it on kernels that have openat2.
[[nodiscard]] fd open_beneath_walk(int dirfd, const std::filesystem::path& rel, int flags, mode_t mode, bool make_dirs,
                                   std::error_code& ec);

// True where openat2(2) is available (Linux 5.6+).
[[nodiscard]] bool have_openat2();

}  // namespace shoal::safe
