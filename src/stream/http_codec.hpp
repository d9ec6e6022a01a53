// The parts of HTTP streaming without a session (unit-tested, fuzzed): the Range header,
// Content-Type by extension, the routes under /stream/, SRT to WebVTT, M3U playlists and
// the buffer bar's JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shoal::stream {

// Most byte-range specs a Range header may hold; more is an invalid header.
inline constexpr std::size_t max_range_specs = 64;

// A byte range of a file, both ends included (as Content-Range writes it).
struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  [[nodiscard]] std::uint64_t length() const { return last - first + 1; }
  bool operator==(const byte_range&) const = default;
};

enum class range_status {
  none,           // no Range header, or another unit than bytes: the whole file (200)
  ok,             // `range` is the first satisfiable range (206)
  unsatisfiable,  // well formed, but nothing in it overlaps the file (416)
  invalid,        // a bytes= header that does not parse (400)
};

struct range_request {
  range_status status = range_status::none;
  byte_range range;
};

// RFC 9110 section 14: "bytes=a-b", "a-", "-n", several separated by commas (the first
// satisfiable one is answered: no multipart). A last position past the end is cut to the
// end; a suffix longer than the file is the whole file. Numbers that overflow 64 bits, a
// first position after the last, or more than max_range_specs specs are invalid.
[[nodiscard]] range_request parse_range(std::string_view header, std::uint64_t size);
// "bytes 0-99/1000"
[[nodiscard]] std::string content_range(const byte_range& r, std::uint64_t size);

// By the file name's extension, case-insensitive; application/octet-stream if unknown.
[[nodiscard]] std::string_view content_type_for(std::string_view path);
// Audio or video by its extension (what `shoal stream` picks and the playlist lists).
[[nodiscard]] bool is_media(std::string_view path);
// .srt (case-insensitive)
[[nodiscard]] bool is_srt(std::string_view path);

// What a path under /stream/ asks for.
struct stream_route {
  enum class kind { file, vtt, buffered, playlist, listing };
  kind what = kind::file;
  std::string hash;  // lower-case hex, 40 or 64 digits
  std::uint32_t index = 0;
};
// `path` is the request target without its query; `query` what follows '?' (or empty).
// nullopt for anything else than the routes documented in src/stream/README.md.
[[nodiscard]] std::optional<stream_route> parse_stream_route(std::string_view path, std::string_view query);

// SRT to WebVTT: a "WEBVTT" header, a byte-order mark dropped, CRLF and CR to LF, and
// the comma before the milliseconds of each cue timing turned into a dot.
[[nodiscard]] std::string srt_to_vtt(std::string_view srt);

struct playlist_entry {
  std::string title;
  std::string url;
};
// An extended M3U playlist: "#EXTM3U", then "#EXTINF:-1,TITLE" and the URL per entry.
// Control characters in titles and URLs become spaces (a title cannot add a line).
[[nodiscard]] std::string make_m3u(const std::vector<playlist_entry>& entries);

// A Host header fit to build URLs with: a name or address and an optional port, nothing
// else; nullopt otherwise.
[[nodiscard]] std::optional<std::string> safe_host(std::string_view host);

// {"size":N,"ranges":[[begin,end],...]} with end exclusive.
[[nodiscard]] std::string buffered_json(std::uint64_t size,
                                        const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges);

}  // namespace shoal::stream
