// A folder's archive, DIR/.shoal/archive/: every version a delete or an overwrite took away
// (see fsops.hpp's archive(), which puts them there as PATH~YYYYMMDD-HHMMSS, and
// PATH~YYYYMMDD-HHMMSS-N for a second one in the same second). Here: listing those
// versions, pruning them by age and total size, and bringing one back.
//
// The folder's settings are in DIR/.shoal/config, lines of `name = value` ('#' starts a
// comment): archive_days (versions older than this are removed at scan time; default 30, 0
// keeps them forever) and archive_max_mb (the archive's size bound in MiB: the oldest
// versions go first past it; default 0, no bound).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace shoal::sync {

struct folder_settings {
  std::uint32_t archive_days = 30;
  std::uint64_t archive_max_bytes = 0;  // 0: no bound
};

// Reads DIR/.shoal/config (`state` is DIR/.shoal). A missing file is the defaults.
// Errors: errc::syntax naming the line (an unknown name, a bad number).
[[nodiscard]] result<folder_settings> load_settings(const std::filesystem::path& state);

enum class archived_type { file, dir, symlink };

struct archived_version {
  std::string path;          // the path in the folder it was at
  std::string version;       // YYYYMMDD-HHMMSS or YYYYMMDD-HHMMSS-N: what --version takes
  std::int64_t archived_at;  // seconds since the epoch (UTC), from the name
  std::uint64_t bytes = 0;   // for a directory, all its files
  archived_type type = archived_type::file;
  std::filesystem::path file;  // where it is, below DIR/.shoal/archive/
};

// Splits an archived name ("a.txt~20261207-203000-2") into path and version; nullopt if the
// name has no version suffix.
[[nodiscard]] std::optional<std::pair<std::string, std::string>> split_archived(const std::string& name);
// The seconds since the epoch of a version's stamp (UTC); nullopt if it is not one.
[[nodiscard]] std::optional<std::int64_t> version_time(const std::string& version);

// Every version in the archive of the folder at `root`, by path then oldest first; with
// `path`, only that path's versions (and, for a directory, those of the paths below it).
// A missing archive is an empty list. Errors: errc::io.
[[nodiscard]] result<std::vector<archived_version>> list_archive(const std::filesystem::path& root,
                                                                 const std::string& path = {});

struct prune_stats {
  std::uint64_t removed = 0;
  std::uint64_t bytes = 0;
};

// Removes the versions archived before now - archive_days, then the oldest ones while the
// archive is over archive_max_bytes, and the directories left empty. Errors: errc::io.
[[nodiscard]] result<prune_stats> prune_archive(const std::filesystem::path& root, const folder_settings& s,
                                                std::int64_t now);

// Brings `path` back from the archive: `version`, or the newest one when empty. What is at
// path now goes to the archive first (nothing is lost); the version is copied back (it stays
// in the archive) with the current time as its mtime, so the next scan takes it as a local
// change. Returns the version restored. Errors: errc::invalid_argument (no such version,
// a path outside the folder or in .shoal/), errc::io.
[[nodiscard]] result<archived_version> restore_version(const std::filesystem::path& root, const std::string& path,
                                                       const std::string& version = {});

}  // namespace shoal::sync
