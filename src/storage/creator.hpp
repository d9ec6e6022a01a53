// Builds .torrent files (v1, v2 or hybrid) from a file or folder, hashing on every core.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/metainfo.hpp"

namespace shoal {

struct create_options {
  torrent_version version = torrent_version::hybrid;
  std::uint64_t piece_length = 0;  // 0: chosen from the total size
  std::vector<std::vector<std::string>> tracker_tiers;
  std::vector<std::string> web_seeds;
  bool is_private = false;
  std::string comment;
  std::string source;
  std::string created_by = "shoal/0.1.0";
  std::optional<std::int64_t> creation_date;  // unset: now; set to -1 to omit
  unsigned threads = 0;                       // 0: one per core
  std::string name;                           // the torrent's name; empty: the path's last component
  // What the walk of a folder leaves out. Junk (.DS_Store, Thumbs.db, desktop.ini, editor
  // swap and backup files) always; hidden files and folders (dot-names) unless include_hidden;
  // anything whose path below the folder or whose own name matches one of `exclude`
  // (fnmatch globs, e.g. "*.log", "build/*").
  std::vector<std::string> exclude;
  bool include_hidden = false;
  // Symlinks: by default stored as BEP 47 symlinks in v2 and hybrid torrents (attr "l" and
  // "symlink path", when the target lies inside the folder) and skipped with a warning in v1
  // ones; with follow_symlinks, read through (linked files as files, linked folders entered).
  bool follow_symlinks = false;
  // Told what was skipped and why (symlinks a torrent cannot store).
  std::function<void(const std::string&)> warning;
  // Called from the calling thread about ten times a second with bytes hashed so far.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

// The automatic piece size: a power of two from 16 KiB to 16 MiB giving at most
// about 2000 pieces (what qBittorrent and mktorrent users expect for the same size).
[[nodiscard]] std::uint64_t auto_piece_length(std::uint64_t total_size);

// True for files nobody means to share: .DS_Store, Thumbs.db, desktop.ini, editor swap and
// backup files (*.swp, *~, #...#).
[[nodiscard]] bool is_junk_file(const std::string& name);

// Returns the bencoded .torrent. Errors: unreadable files, nothing to share, a bad
// piece length for the chosen version.
[[nodiscard]] result<std::string> create_torrent(const std::filesystem::path& path, const create_options& opt);

}  // namespace shoal
