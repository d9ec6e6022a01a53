#include "sync/archive.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>

#include "sync/fsops.hpp"
#include "sync/index.hpp"

namespace shoal::sync {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

result<folder_settings> load_settings(const fs::path& state) {
  folder_settings s;
  std::ifstream in(state / "config");
  if (!in) return s;
  std::string line;
  for (int n = 1; n <= 1000 && std::getline(in, line); ++n) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const std::string t = trim(line);
    if (t.empty()) continue;
    const auto eq = t.find('=');
    const std::string where = "config line " + std::to_string(n);
    if (eq == std::string::npos) return error{errc::syntax, where + ": expected name = value"};
    const std::string name = trim(std::string_view(t).substr(0, eq));
    const std::string value = trim(std::string_view(t).substr(eq + 1));
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || p != value.data() + value.size())
      return error{errc::syntax, where + ": " + name + ": expected a whole number"};
    if (name == "archive_days") {
      if (v > 100'000) return error{errc::syntax, where + ": archive_days: at most 100000"};
      s.archive_days = static_cast<std::uint32_t>(v);
    } else if (name == "archive_max_mb") {
      if (v > (std::uint64_t{1} << 40)) return error{errc::syntax, where + ": archive_max_mb: too large"};
      s.archive_max_bytes = v * 1024 * 1024;
    } else {
      return error{errc::syntax, where + ": unknown setting '" + shown(name) + "' (archive_days, archive_max_mb)"};
    }
  }
  return s;
}

std::optional<std::int64_t> version_time(const std::string& version) {
  // YYYYMMDD-HHMMSS, then an optional -N.
  if (version.size() < 15 || version[8] != '-') return std::nullopt;
  const std::string_view date = std::string_view(version).substr(0, 8);
  const std::string_view time = std::string_view(version).substr(9, 6);
  if (!all_digits(date) || !all_digits(time)) return std::nullopt;
  if (version.size() > 15 && (version[15] != '-' || !all_digits(std::string_view(version).substr(16))))
    return std::nullopt;
  auto num = [](std::string_view s) {
    int v = 0;
    for (char c : s)
      v = v * 10 + (c - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(date.substr(0, 4)) - 1900;
  tm.tm_mon = num(date.substr(4, 2)) - 1;
  tm.tm_mday = num(date.substr(6, 2));
  tm.tm_hour = num(time.substr(0, 2));
  tm.tm_min = num(time.substr(2, 2));
  tm.tm_sec = num(time.substr(4, 2));
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::optional<std::pair<std::string, std::string>> split_archived(const std::string& name) {
  const auto tilde = name.rfind('~');
  if (tilde == std::string::npos || tilde == 0) return std::nullopt;
  std::string version = name.substr(tilde + 1);
  if (!version_time(version)) return std::nullopt;
  return std::make_pair(name.substr(0, tilde), std::move(version));
}

namespace {

std::uint64_t tree_bytes(const fs::path& p) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace

result<std::vector<archived_version>> list_archive(const fs::path& root, const std::string& path) {
  std::vector<archived_version> out;
  const fs::path arch = root / ".shoal" / "archive";
  std::error_code ec;
  if (!fs::exists(arch, ec)) return out;
  fs::recursive_directory_iterator it(arch, fs::directory_options::none, ec);
  if (ec) return error{errc::io, arch.string() + ": " + ec.message()};
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return error{errc::io, arch.string() + ": " + ec.message()};
    const auto rel = fs::path(it->path()).lexically_relative(arch).generic_string();
    auto split = split_archived(rel);
    const auto st = it->symlink_status(ec);
    if (!split) continue;  // a directory above archived versions
    if (fs::is_directory(st)) it.disable_recursion_pending();
    const auto& [orig, version] = *split;
    if (!path.empty() && orig != path &&
        !(orig.size() > path.size() && orig.compare(0, path.size(), path) == 0 && orig[path.size()] == '/'))
      continue;
    archived_version v;
    v.path = orig;
    v.version = version;
    v.archived_at = *version_time(version);
    v.file = it->path();
    if (fs::is_symlink(st)) {
      v.type = archived_type::symlink;
    } else if (fs::is_directory(st)) {
      v.type = archived_type::dir;
      v.bytes = tree_bytes(it->path());
    } else {
      v.bytes = it->file_size(ec);
    }
    out.push_back(std::move(v));
    if (out.size() > 10'000'000) return error{errc::io, "archive: more than 10,000,000 versions"};
  }
  std::sort(out.begin(), out.end(), [](const archived_version& a, const archived_version& b) {
    if (a.path != b.path) return a.path < b.path;
    if (a.archived_at != b.archived_at) return a.archived_at < b.archived_at;
    return a.version.size() != b.version.size() ? a.version.size() < b.version.size() : a.version < b.version;
  });
  return out;
}

result<prune_stats> prune_archive(const fs::path& root, const folder_settings& s, std::int64_t now) {
  prune_stats stats;
  if (s.archive_days == 0 && s.archive_max_bytes == 0) return stats;
  auto all = list_archive(root);
  if (!all) return all.err();
  auto remove = [&](const archived_version& v) -> result<bool> {
    std::error_code ec;
    fs::remove_all(v.file, ec);
    if (ec) return error{errc::io, "archive: " + v.file.string() + ": " + ec.message()};
    ++stats.removed;
    stats.bytes += v.bytes;
    return true;
  };
  // Oldest first for the size bound.
  std::vector<const archived_version*> by_age;
  std::uint64_t total = 0;
  const std::int64_t cutoff = now - static_cast<std::int64_t>(s.archive_days) * 86'400;
  for (const auto& v : *all) {
    if (s.archive_days > 0 && v.archived_at < cutoff) {
      if (auto r = remove(v); !r) return r.err();
    } else {
      by_age.push_back(&v);
      total += v.bytes;
    }
  }
  if (s.archive_max_bytes > 0 && total > s.archive_max_bytes) {
    std::stable_sort(by_age.begin(), by_age.end(),
                     [](const auto* a, const auto* b) { return a->archived_at < b->archived_at; });
    for (const auto* v : by_age) {
      if (total <= s.archive_max_bytes) break;
      if (auto r = remove(*v); !r) return r.err();
      total -= v->bytes;
    }
  }
  if (stats.removed > 0) {
    // Directories left empty, deepest first.
    const fs::path arch = root / ".shoal" / "archive";
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(arch, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.native() > b.native(); });
    for (const auto& d : dirs)
      ::rmdir(d.c_str());  // fails, as it should, on a directory that is not empty
  }
  return stats;
}

namespace {

result<bool> copy_back(const archived_version& v, const fs::path& tmp) {
  std::error_code ec;
  fs::remove_all(tmp, ec);
  switch (v.type) {
    case archived_type::symlink:
      fs::copy_symlink(v.file, tmp, ec);
      break;
    case archived_type::dir:
      fs::copy(v.file, tmp, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
      break;
    case archived_type::file:
      fs::copy_file(v.file, tmp, ec);
      break;
  }
  if (ec) return error{errc::io, "restore " + shown(v.path) + ": " + ec.message()};
  return true;
}

}  // namespace

result<archived_version> restore_version(const fs::path& root, const std::string& path, const std::string& version) {
  if (auto ok = validate_path(path); !ok) return error{errc::invalid_argument, ok.err().message()};
  if (path == ".shoal" || path.rfind(".shoal/", 0) == 0)
    return error{errc::invalid_argument, "DIR/.shoal/ is never synced nor restored"};
  auto all = list_archive(root, path);
  if (!all) return all.err();
  const archived_version* pick = nullptr;
  for (const auto& v : *all) {
    if (v.path != path) continue;
    if (version.empty() || v.version == version) pick = &v;  // the list is oldest first
  }
  if (!pick) {
    return error{errc::invalid_argument, version.empty() ? "no archived version of " + shown(path)
                                                         : "no version " + shown(version) + " of " + shown(path)};
  }
  const archived_version chosen = *pick;
  const fs::path tmp_dir = root / ".shoal" / "tmp";
  ::mkdir(tmp_dir.c_str(), 0700);
  const fs::path tmp = tmp_dir / ("restore-" + std::to_string(::getpid()) + ".tmp");
  if (auto c = copy_back(chosen, tmp); !c) return c.err();
  const fs::path full = root / path;
  struct stat st {};
  if (::lstat(full.c_str(), &st) == 0) {
    if (auto a = archive(root, path, false); !a) return a.err();
  }
  if (auto p = make_parents(root, path); !p) return error{errc::io, "restore: " + p.err().message()};
  if (::rename(tmp.c_str(), full.c_str()) != 0)
    return error{errc::io, "restore " + shown(path) + ": " + std::strerror(errno)};
  if (chosen.type != archived_type::symlink) {
    const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    ::utimensat(AT_FDCWD, full.c_str(), now, AT_SYMLINK_NOFOLLOW);
  }
  return chosen;
}

}  // namespace shoal::sync
