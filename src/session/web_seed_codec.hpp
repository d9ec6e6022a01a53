// The pure parts of web seeds (BEP 19): the URL of each file, the HTTP range requests that
// fetch a list of blocks, and the header values a web seed's replies carry. No I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session/piece_picker.hpp"
#include "storage/file_storage.hpp"

namespace shoal::web_seed_codec {

// Percent-encodes one path component: RFC 3986 unreserved bytes stay, every other byte
// (UTF-8 included) becomes %XX.
[[nodiscard]] std::string encode_component(std::string_view s);

// BEP 19: a single-file torrent's data is at `base` itself, or at base + name when `base`
// ends in '/'; a multi-file torrent's file is at base + '/' (unless already there) + the
// file's path ("name/dir/file"), each component percent-encoded.
[[nodiscard]] std::string file_url(std::string_view base, bool multi_file, std::string_view name,
                                   std::string_view file_path);

// One HTTP range request: `length` bytes of file `file` from `file_offset`, landing at
// `buf_offset` of a buffer holding the blocks one after another.
struct range_request {
  std::uint32_t file = 0;
  std::uint64_t file_offset = 0;
  std::uint64_t length = 0;
  std::uint64_t buf_offset = 0;
  bool operator==(const range_request&) const = default;
};

// The requests that fetch `blocks` (laid out back to back in that order): each block's
// bytes split at file boundaries, pad files (BEP 47) skipped (they are zeros), and
// neighbouring pieces of one file merged into one request.
[[nodiscard]] std::vector<range_request> plan_requests(const file_storage& fs, const std::vector<block_ref>& blocks);

// Content-Range of a 206 reply: "bytes FIRST-LAST/TOTAL" or "bytes FIRST-LAST/*".
struct content_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;              // inclusive
  std::optional<std::uint64_t> total;  // nullopt: "*"
  bool operator==(const content_range&) const = default;
};
// nullopt for anything else (unsatisfied "bytes */N" included), for FIRST > LAST, or for
// LAST >= TOTAL. Numbers of at most 19 digits.
[[nodiscard]] std::optional<content_range> parse_content_range(std::string_view v);

// Retry-After as delta-seconds (the HTTP-date form gives nullopt), capped at a day.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view v);

}  // namespace shoal::web_seed_codec
