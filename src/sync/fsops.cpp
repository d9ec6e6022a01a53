#include "sync/fsops.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace shoal::sync {

std::int64_t mtime_ns_of(const struct ::stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::string shown(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

bool disk_matches(const std::filesystem::path& root, const std::string& path, const std::optional<record>& local) {
  struct stat st {};
  const std::string full = (root / path).string();
  if (::lstat(full.c_str(), &st) != 0) return errno == ENOENT && (!local || local->deleted);
  if (!local || local->deleted) return false;
  const auto mode = static_cast<std::uint32_t>(st.st_mode) & max_mode;
  switch (local->type) {
    case entry_type::file:
      return S_ISREG(st.st_mode) && local->size == static_cast<std::uint64_t>(st.st_size) &&
             local->mtime_ns == mtime_ns_of(st) && local->mode == mode;
    case entry_type::dir:
      return S_ISDIR(st.st_mode) && local->mode == mode;
    case entry_type::symlink: {
      if (!S_ISLNK(st.st_mode)) return false;
      std::string buf(max_target_bytes + 1, '\0');
      const ssize_t n = ::readlink(full.c_str(), buf.data(), buf.size());
      return n > 0 && std::string_view(buf.data(), static_cast<std::size_t>(n)) == local->target;
    }
  }
  return false;
}

namespace {

std::string stamp(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

// Cuts s to at most n bytes without splitting a UTF-8 sequence.
std::string cut_utf8(std::string s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
    --end;
  s.resize(end);
  return s;
}

}  // namespace

std::string conflict_path(const std::string& path, std::int64_t mtime_ns, const std::string& device) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  auto dot = name.rfind('.');
  if (dot == 0 || dot == std::string::npos) dot = name.size();
  std::string stem = name.substr(0, dot);
  const std::string ext = name.substr(dot);
  const std::string mark = ".sync-conflict-" +
                           stamp(mtime_ns >= 0 ? mtime_ns / 1'000'000'000 : (mtime_ns + 1) / 1'000'000'000 - 1) + "-" +
                           device.substr(0, 7);
  const std::size_t room =
      max_name_bytes - std::min(max_name_bytes - 1, mark.size() + std::min<std::size_t>(ext.size(), 64));
  stem = cut_utf8(stem, room);
  return dir + stem + mark + cut_utf8(ext, 64);
}

bool safe_symlink_target(const std::string& path, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  // Depth of the link's directory below the root.
  long depth = 0;
  for (char c : path)
    depth += c == '/' ? 1 : 0;
  std::size_t start = 0;
  while (start <= target.size()) {
    const auto slash = target.find('/', start);
    const auto comp = target.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp == "..") {
      if (--depth < 0) return false;
    } else if (!comp.empty() && comp != ".") {
      ++depth;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

result<bool> make_parents(const std::filesystem::path& root, const std::string& path) {
  std::size_t pos = 0;
  while (true) {
    const auto slash = path.find('/', pos);
    if (slash == std::string::npos) return true;
    const std::string part = path.substr(0, slash);
    const std::string full = (root / part).string();
    struct stat st {};
    if (::lstat(full.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return error{errc::io, part + " is not a directory"};
    } else if (::mkdir(full.c_str(), 0755) != 0 && errno != EEXIST) {
      return error{errc::io, part + ": " + std::strerror(errno)};
    }
    pos = slash + 1;
  }
}

result<std::filesystem::path> archive(const std::filesystem::path& root, const std::string& path, bool keep_original) {
  const auto arch = root / ".shoal" / "archive";
  // A long name keeps its start: the suffix must fit in one component.
  const std::string suffix = "~" + stamp(::time(nullptr));
  const auto slash = path.rfind('/');
  const std::size_t name_len = path.size() - (slash == std::string::npos ? 0 : slash + 1);
  const std::size_t room = max_name_bytes - suffix.size() - 5;
  const std::string base = (name_len > room ? cut_utf8(path, path.size() - name_len + room) : path) + suffix;
  if (::mkdir(arch.c_str(), 0700) != 0 && errno != EEXIST)
    return error{errc::io, "archive: " + std::string(std::strerror(errno))};
  if (auto p = make_parents(arch, base); !p) return error{errc::io, "archive: " + p.err().message()};
  std::filesystem::path dest = arch / base;
  for (int i = 1; ::access(dest.c_str(), F_OK) == 0 || errno != ENOENT; ++i) {
    if (i > 1000) return error{errc::io, "archive: too many copies of " + path};
    dest = arch / (base + "-" + std::to_string(i));
  }
  const std::string from = (root / path).string();
  const int rc = keep_original ? ::link(from.c_str(), dest.c_str()) : ::rename(from.c_str(), dest.c_str());
  if (rc != 0) return error{errc::io, "archive " + path + ": " + std::strerror(errno)};
  return dest;
}

}  // namespace shoal::sync
