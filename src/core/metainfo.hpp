// Metainfo (.torrent) files: v1 (BEP 3), v2 (BEP 52) and hybrid, with BEP 12 tiers,
// BEP 19 web seeds, BEP 27 private flag and BEP 47 pad files, attributes and symlinks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal {

inline constexpr std::size_t max_torrent_size = 64u << 20;  // bytes of a .torrent file
inline constexpr std::uint64_t max_pieces = std::uint64_t{1} << 21;
inline constexpr std::uint64_t min_v2_piece_length = 16 * 1024;
inline constexpr std::uint64_t max_piece_length = std::uint64_t{1} << 30;
inline constexpr std::uint64_t max_total_size = std::uint64_t{1} << 56;
inline constexpr std::size_t max_component_bytes = 255;  // one path component on disk

enum class torrent_version { v1, v2, hybrid };

struct file_entry {
  std::string path;  // sanitised, '/'-separated; multi-file torrents start with the name
  std::uint64_t size = 0;
  std::uint64_t offset = 0;                  // first byte in the torrent's piece space
  bool pad = false;                          // BEP 47 'p'
  bool executable = false;                   // 'x'
  bool hidden = false;                       // 'h'
  bool symlink = false;                      // 'l'
  std::string symlink_target;                // sanitised, relative to the torrent's root
  std::optional<sha256_digest> pieces_root;  // v2 files with data
};

struct metainfo {
  std::string name;  // sanitised
  torrent_version version = torrent_version::v1;
  std::uint64_t piece_length = 0;
  std::uint64_t num_pieces = 0;
  std::uint64_t total_size = 0;  // bytes of real files (pad files excluded)
  bool multi_file = false;
  bool is_private = false;
  std::optional<sha1_digest> info_hash_v1;
  std::optional<sha256_digest> info_hash_v2;
  std::string v1_piece_hashes;  // 20 bytes per piece
  std::vector<file_entry> files;
  // Validated v2 piece layers, keyed by the file's pieces root (32 bytes per piece).
  std::map<sha256_digest, std::string> piece_layers;
  std::vector<std::vector<std::string>> tracker_tiers;
  std::vector<std::string> web_seeds;
  std::string comment;
  std::string created_by;
  std::string source;
  std::optional<std::int64_t> creation_date;
  std::string info_bytes;  // the info dictionary exactly as in the file
  // Non-fatal findings: sanitised names, dropped piece layers, ignored fields.
  std::vector<std::string> warnings;

  [[nodiscard]] bool has_v1() const { return info_hash_v1.has_value(); }
  [[nodiscard]] bool has_v2() const { return info_hash_v2.has_value(); }
};

// Parses a .torrent held in memory. Structure violations are errors naming the field;
// bad names are sanitised and noted in `warnings`.
[[nodiscard]] result<metainfo> parse_metainfo(std::string_view torrent);
// Reads and parses a .torrent file, refusing files over max_torrent_size.
[[nodiscard]] result<metainfo> load_metainfo(const std::filesystem::path& file);

// Sanitises one path component: repairs UTF-8, escapes separators and control bytes,
// defuses drive letters, shortens over-long names. nullopt means "drop it" ("", ".", "..").
[[nodiscard]] std::optional<std::string> sanitize_component(std::string_view c);
// True for a '/'-separated relative path every component of which sanitize_component
// leaves as it is (no "", ".", "..", separators, control bytes, drive letters or bad
// UTF-8): a name a user or a resume file gives is taken only if it is such a path.
[[nodiscard]] bool is_clean_relative_path(std::string_view p);

[[nodiscard]] std::string_view version_name(torrent_version v);

}  // namespace shoal
