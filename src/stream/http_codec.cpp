#include "stream/http_codec.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace shoal::stream {

namespace {

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// Decimal digits only, at most what fits 64 bits.
std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::string lower_extension(std::string_view path) {
  const auto slash = path.find_last_of('/');
  const auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == name.size()) return {};
  std::string ext(name.substr(dot + 1));
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

struct type_entry {
  std::string_view ext;
  std::string_view type;
  bool media;
};
constexpr std::array<type_entry, 19> types{{
    {"mp4", "video/mp4", true},
    {"m4v", "video/mp4", true},
    {"webm", "video/webm", true},
    {"mkv", "video/x-matroska", true},
    {"mov", "video/quicktime", true},
    {"avi", "video/x-msvideo", true},
    {"ogv", "video/ogg", true},
    {"ts", "video/mp2t", true},
    {"mp3", "audio/mpeg", true},
    {"opus", "audio/ogg", true},
    {"ogg", "audio/ogg", true},
    {"oga", "audio/ogg", true},
    {"flac", "audio/flac", true},
    {"m4a", "audio/mp4", true},
    {"aac", "audio/aac", true},
    {"wav", "audio/wav", true},
    {"srt", "application/x-subrip", false},
    {"vtt", "text/vtt", false},
    {"m3u", "audio/x-mpegurl", false},
}};

const type_entry* find_type(std::string_view path) {
  const auto ext = lower_extension(path);
  for (const auto& t : types) {
    if (t.ext == ext) return &t;
  }
  return nullptr;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::optional<std::uint32_t> parse_index(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;  // 9 digits: below 2^32
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  auto v = parse_u64(s);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

void append_clean(std::string& out, std::string_view s) {
  for (char c : s)
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
}

}  // namespace

range_request parse_range(std::string_view header, std::uint64_t size) {
  header = trim(header);
  const auto eq = header.find('=');
  if (eq == std::string_view::npos) return {range_status::invalid, {}};
  if (!iequals(trim(header.substr(0, eq)), "bytes")) return {range_status::none, {}};
  std::string_view rest = header.substr(eq + 1);
  std::optional<byte_range> first_ok;
  std::size_t specs = 0;
  while (true) {
    const auto comma = rest.find(',');
    const auto spec = trim(rest.substr(0, comma));
    if (!spec.empty()) {  // RFC 9110 allows empty list elements
      if (++specs > max_range_specs) return {range_status::invalid, {}};
      const auto dash = spec.find('-');
      if (dash == std::string_view::npos) return {range_status::invalid, {}};
      const auto a = spec.substr(0, dash), b = spec.substr(dash + 1);
      if (a.empty()) {
        auto n = parse_u64(b);  // suffix: the last n bytes
        if (!n) return {range_status::invalid, {}};
        if (*n > 0 && size > 0 && !first_ok) first_ok = byte_range{size - std::min(*n, size), size - 1};
      } else {
        auto first = parse_u64(a);
        if (!first) return {range_status::invalid, {}};
        std::uint64_t last = UINT64_MAX;
        if (!b.empty()) {
          auto l = parse_u64(b);
          if (!l || *l < *first) return {range_status::invalid, {}};
          last = *l;
        }
        if (*first < size && !first_ok) first_ok = byte_range{*first, std::min(last, size - 1)};
      }
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (specs == 0) return {range_status::invalid, {}};
  if (!first_ok) return {range_status::unsatisfiable, {}};
  return {range_status::ok, *first_ok};
}

std::string content_range(const byte_range& r, std::uint64_t size) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size);
}

std::string_view content_type_for(std::string_view path) {
  const auto* t = find_type(path);
  return t ? t->type : std::string_view("application/octet-stream");
}

bool is_media(std::string_view path) {
  const auto* t = find_type(path);
  return t && t->media;
}

bool is_srt(std::string_view path) {
  return lower_extension(path) == "srt";
}

std::optional<stream_route> parse_stream_route(std::string_view path, std::string_view query) {
  constexpr std::string_view prefix = "/stream/";
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  path.remove_prefix(prefix.size());
  stream_route r;
  auto take_hash = [&r](std::string_view h) {
    if ((h.size() != 40 && h.size() != 64) || !is_hex(h)) return false;
    r.hash.assign(h);
    for (auto& c : r.hash)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return true;
  };
  const auto slash = path.find('/');
  if (slash == std::string_view::npos) {
    // HASH.m3u (the playlist) or HASH.json (the files, for a player page)
    for (const auto& [suffix, what] : {std::pair{std::string_view(".m3u"), stream_route::kind::playlist},
                                       std::pair{std::string_view(".json"), stream_route::kind::listing}}) {
      if (path.size() <= suffix.size() || path.substr(path.size() - suffix.size()) != suffix) continue;
      if (!take_hash(path.substr(0, path.size() - suffix.size()))) return std::nullopt;
      r.what = what;
      return r;
    }
    return std::nullopt;
  }
  if (!take_hash(path.substr(0, slash))) return std::nullopt;
  auto tail = path.substr(slash + 1);
  r.what = stream_route::kind::file;
  if (const auto s2 = tail.find('/'); s2 != std::string_view::npos) {
    if (tail.substr(s2 + 1) != "buffered") return std::nullopt;
    r.what = stream_route::kind::buffered;
    tail = tail.substr(0, s2);
  } else if (tail.size() > 4 && tail.substr(tail.size() - 4) == ".vtt") {
    r.what = stream_route::kind::vtt;
    tail.remove_suffix(4);
  }
  auto idx = parse_index(tail);
  if (!idx) return std::nullopt;
  r.index = *idx;
  if (r.what == stream_route::kind::file) {
    // ?format=vtt among the query's parameters
    std::string_view q = query;
    while (!q.empty()) {
      const auto amp = q.find('&');
      if (q.substr(0, amp) == "format=vtt") r.what = stream_route::kind::vtt;
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
  }
  return r;
}

std::string srt_to_vtt(std::string_view srt) {
  if (srt.substr(0, 3) == "\xEF\xBB\xBF") srt.remove_prefix(3);
  std::string out = "WEBVTT\n\n";
  out.reserve(srt.size() + out.size());
  std::size_t pos = 0;
  while (pos < srt.size()) {
    auto end = srt.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = srt.size();
    std::string line(srt.substr(pos, end - pos));
    // A cue timing: "00:00:01,000 --> 00:00:02,500": commas between digits become dots.
    if (line.find("-->") != std::string::npos) {
      for (std::size_t i = 1; i + 1 < line.size(); ++i) {
        if (line[i] == ',' && std::isdigit(static_cast<unsigned char>(line[i - 1])) &&
            std::isdigit(static_cast<unsigned char>(line[i + 1]))) {
          line[i] = '.';
        }
      }
    }
    out += line;
    out += '\n';
    if (end < srt.size() && srt[end] == '\r' && end + 1 < srt.size() && srt[end + 1] == '\n') ++end;
    pos = end + 1;
  }
  return out;
}

std::string make_m3u(const std::vector<playlist_entry>& entries) {
  std::string out = "#EXTM3U\n";
  for (const auto& e : entries) {
    out += "#EXTINF:-1,";
    append_clean(out, e.title);
    out += '\n';
    append_clean(out, e.url);
    out += '\n';
  }
  return out;
}

std::optional<std::string> safe_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return std::nullopt;
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' ||
          c == '_')) {
      return std::nullopt;
    }
  }
  return std::string(host);
}

std::string buffered_json(std::uint64_t size, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges) {
  std::string out = "{\"size\":" + std::to_string(size) + ",\"ranges\":[";
  bool first = true;
  for (const auto& [b, e] : ranges) {
    if (!first) out += ',';
    first = false;
    out += '[' + std::to_string(b) + ',' + std::to_string(e) + ']';
  }
  out += "]}";
  return out;
}

}  // namespace shoal::stream
