// Resume data: which pieces are verified AND flushed to disk, saved atomically
// (temporary file, fsync, rename, fsync of the folder), so a crash at any instant
// leaves either the old or the new file, never a torn one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/bitfield.hpp"
#include "core/error.hpp"

namespace shoal {

inline constexpr std::size_t max_resume_size = 16u << 20;

struct resume_data {
  std::string info_hash;  // 20 (v1) or 32 (v2) raw bytes: whichever identifies the torrent
  bitfield pieces;        // verified and flushed
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
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
// Read through the same guarded folder (a symlinked DIR/.shoal is refused).
[[nodiscard]] result<resume_data> load_resume_file(const std::filesystem::path& file, std::string_view info_hash,
                                                   std::uint32_t num_pieces);

}  // namespace shoal
