// The disk side of applying a peer's record: what the folder looks like at a path, where
// the archive and conflict copies go, which symlink targets may be made. No sockets here.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "sync/index.hpp"

namespace shoal::sync {

// True if the disk at `path` (below `root`) is what `local` says (a record whose path was
// never indexed, or a deleted one: nothing there). Compared as the scanner does: type,
// size, mtime and mode for files, mode for directories, target for symlinks.
[[nodiscard]] bool disk_matches(const std::filesystem::path& root, const std::string& path,
                                const std::optional<record>& local);

// `name.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.ext` for the version of `path` last changed at
// mtime_ns by `device` (its first 7 characters). The extension is the last '.' part of the
// name unless the name starts with it; a long name is cut so the result stays a valid name.
[[nodiscard]] std::string conflict_path(const std::string& path, std::int64_t mtime_ns, const std::string& device);

// A symlink target that may be created at `path`: relative, and never climbing above the
// folder's root from the link's directory.
[[nodiscard]] bool safe_symlink_target(const std::string& path, std::string_view target);

// Makes the directories above `path` (relative) below root, each a real directory (not a
// symlink). Errors: errc::io naming the component.
[[nodiscard]] result<bool> make_parents(const std::filesystem::path& root, const std::string& path);

// Moves root/path into DIR/.shoal/archive/path~YYYYMMDD-HHMMSS (a second copy the same
// second gets a number), or hard-links it there with keep_original. Errors: errc::io.
[[nodiscard]] result<std::filesystem::path> archive(const std::filesystem::path& root, const std::string& path,
                                                    bool keep_original);

// A path or target from a peer as a log line may show it: control bytes become '?'.
[[nodiscard]] std::string shown(std::string_view s);

[[nodiscard]] std::int64_t mtime_ns_of(const struct ::stat& st);

}  // namespace shoal::sync
