// Resume data: which pieces are verified AND flushed to disk, saved atomically
// (temporary file, fsync, rename, fsync of the folder), so a crash at any instant
// leaves either the old or the new file, never a torn one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/bitfield.hpp"
#include "core/error.hpp"

namespace shoal {

inline constexpr std::size_t max_resume_size = 16u << 20;

// A file as it was when the resume data was written: a file whose size or modification
// time differs later was changed behind our back, and its pieces are checked again.
struct resume_file_stamp {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;  // 0: the file did not exist
};

struct resume_data {
  std::string info_hash;  // 20 (v1) or 32 (v2) raw bytes: whichever identifies the torrent
  bitfield pieces;        // verified and flushed
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  // Version 2: what a restart must bring back as it was.
  std::vector<resume_file_stamp> files;  // per file of the metainfo; empty: not recorded
  bool paused = false;
  std::vector<std::uint8_t> file_priorities;
  bool sequential = false;
  std::uint64_t max_download_rate = 0, max_upload_rate = 0;
  std::optional<double> goal_ratio;
  std::optional<std::int64_t> goal_seeding_time, goal_idle_time;  // seconds
  std::uint32_t queue_position = 0;
  std::int64_t added_time = 0, completed_time = 0;  // unix seconds; 0: never
  std::int64_t seeding_seconds = 0, active_seconds = 0;
  std::string save_path;
  std::vector<std::string> labels;
  std::vector<std::string> trackers;             // tiers flattened with "" between them; empty: the metainfo's
  std::map<std::uint32_t, std::string> renamed;  // file -> the path it was renamed to (clean, relative)
  std::string name;                              // the name shown, if the user gave one (<= 1 KiB)
};

[[nodiscard]] std::string encode_resume(const resume_data& r);
// Checks the info-hash and piece count against the torrent it should belong to.
[[nodiscard]] result<resume_data> decode_resume(std::string_view bytes, std::string_view info_hash,
                                                std::uint32_t num_pieces);
// Replaces `file` atomically: temporary file, fsync, rename, fsync of the folder. The
// folder holding `file` (DIR/.shoal for resume data, cached metadata and the DHT state)
// is created if missing and must not be a symlink; the temporary file gets a random name
// made with O_CREAT | O_EXCL | O_NOFOLLOW, so nothing planted beside it is written through.
[[nodiscard]] std::error_code write_file_atomically(const std::filesystem::path& file, const std::string& bytes);
// The resume file, written by write_file_atomically.
[[nodiscard]] std::error_code save_resume_file(const std::filesystem::path& file, const std::string& bytes);
// The size and modification time of each path (on the disk pool: one stat a file).
[[nodiscard]] std::vector<resume_file_stamp> stamp_files(const std::vector<std::filesystem::path>& paths);
// Read through the same guarded folder (a symlinked DIR/.shoal is refused).
[[nodiscard]] result<resume_data> load_resume_file(const std::filesystem::path& file, std::string_view info_hash,
                                                   std::uint32_t num_pieces);

}  // namespace shoal
