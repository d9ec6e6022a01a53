#include "session/web_seed_codec.hpp"

#include <algorithm>

namespace shoal::web_seed_codec {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// A run of 1 to 19 decimal digits at the front of s, consumed.
std::optional<std::uint64_t> take_number(std::string_view& s) {
  std::size_t n = 0;
  std::uint64_t v = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
    if (n == 19) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(s[n] - '0');
    ++n;
  }
  if (n == 0) return std::nullopt;
  s.remove_prefix(n);
  return v;
}

}  // namespace

std::string encode_component(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string file_url(std::string_view base, bool multi_file, std::string_view name, std::string_view file_path) {
  std::string url(base);
  if (!multi_file) {
    if (!url.empty() && url.back() == '/') url += encode_component(name);
    return url;
  }
  if (url.empty() || url.back() != '/') url += '/';
  bool first = true;
  while (true) {
    const auto slash = file_path.find('/');
    if (!first) url += '/';
    first = false;
    url += encode_component(file_path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    file_path.remove_prefix(slash + 1);
  }
  return url;
}

std::vector<range_request> plan_requests(const file_storage& fs, const std::vector<block_ref>& blocks) {
  std::vector<range_request> out;
  std::vector<file_slice> sl;
  std::uint64_t buf = 0;
  for (const auto& b : blocks) {
    sl.clear();
    fs.map(b.piece, b.begin, b.length, sl);
    for (const auto& s : sl) {
      const std::uint64_t at = buf + (s.piece_offset - b.begin);
      if (!out.empty()) {
        auto& last = out.back();
        if (last.file == s.file && last.file_offset + last.length == s.file_offset &&
            last.buf_offset + last.length == at) {
          last.length += s.length;
          continue;
        }
      }
      out.push_back({s.file, s.file_offset, s.length, at});
    }
    buf += b.length;
  }
  return out;
}

std::optional<content_range> parse_content_range(std::string_view v) {
  v = trim(v);
  if (v.size() < 6) return std::nullopt;
  std::string unit(v.substr(0, 5));
  std::transform(unit.begin(), unit.end(), unit.begin(), [](char c) { return static_cast<char>(c | 0x20); });
  if (unit != "bytes" || (v[5] != ' ' && v[5] != '\t')) return std::nullopt;
  v = trim(v.substr(6));
  content_range r;
  auto first = take_number(v);
  if (!first || v.empty() || v.front() != '-') return std::nullopt;
  v.remove_prefix(1);
  auto last = take_number(v);
  if (!last || v.empty() || v.front() != '/') return std::nullopt;
  v.remove_prefix(1);
  if (v == "*") {
    r.total = std::nullopt;
  } else {
    auto total = take_number(v);
    if (!total || !v.empty()) return std::nullopt;
    r.total = *total;
  }
  r.first = *first;
  r.last = *last;
  if (r.first > r.last) return std::nullopt;
  if (r.total && r.last >= *r.total) return std::nullopt;
  return r;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) {
  v = trim(v);
  auto n = take_number(v);
  if (!n || !v.empty()) return std::nullopt;
  return std::chrono::seconds(std::min<std::uint64_t>(*n, 86400));
}

}  // namespace shoal::web_seed_codec
