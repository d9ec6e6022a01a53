#include "sync/ignore.hpp"

#include <fstream>
#include <iterator>

namespace shoal::sync {

namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > start) out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// Components of a pattern against components of a path; "**" spans any number. Dynamic
// programming over (pattern part, path part), so no input makes it exponential.
bool match_parts(const std::vector<std::string>& pat, const std::vector<std::string_view>& path) {
  const std::size_t np = pat.size();
  const std::size_t nn = path.size();
  // can[j]: pattern parts [i, np) match path parts [j, nn); computed from i = np down.
  std::vector<char> next(nn + 1, 0);
  std::vector<char> cur(nn + 1, 0);
  next[nn] = 1;
  for (std::size_t i = np; i-- > 0;) {
    const bool globstar = pat[i] == "**";
    for (std::size_t j = nn + 1; j-- > 0;) {
      if (globstar) {
        cur[j] = static_cast<char>(next[j] || (j < nn && cur[j + 1]));
      } else {
        cur[j] = static_cast<char>(j < nn && next[j + 1] && glob_match(pat[i], path[j]));
      }
    }
    std::swap(next, cur);
  }
  return next[0] != 0;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  // The classic linear-backtrack matcher: only the last '*' is ever retried.
  std::size_t pi = 0;
  std::size_t si = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      while (pi < p.size() && p[pi] == '*')
        ++pi;
      star = pi;
      mark = si;
    } else if (pi < p.size() && s[si] != '/' && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (star != std::string_view::npos && s[mark] != '/') {
      pi = star;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*')
    ++pi;
  return pi == p.size();
}

result<ignore_rules> ignore_rules::parse(std::string_view text) {
  if (text.size() > max_ignore_file_bytes) {
    return error{errc::limit_exceeded, ".shoalignore: larger than " + std::to_string(max_ignore_file_bytes) + " bytes"};
  }
  ignore_rules out;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (line.size() > max_ignore_pattern_bytes) {
      return error{errc::limit_exceeded, ".shoalignore line " + std::to_string(line_no) + ": longer than " +
                                             std::to_string(max_ignore_pattern_bytes) + " bytes"};
    }
    rule r;
    if (line.front() == '!') {
      r.negate = true;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      r.dir_only = true;
      while (!line.empty() && line.back() == '/')
        line.remove_suffix(1);
    }
    bool anchored = false;
    if (!line.empty() && line.front() == '/') {
      anchored = true;
      while (!line.empty() && line.front() == '/')
        line.remove_prefix(1);
    }
    if (line.empty()) continue;  // "/", "!" or "!/": nothing to match
    if (!anchored) r.parts.emplace_back("**");
    for (auto part : split(line))
      r.parts.emplace_back(part);
    if (out.rules_.size() == max_ignore_patterns) {
      return error{errc::limit_exceeded,
                   ".shoalignore: more than " + std::to_string(max_ignore_patterns) + " patterns"};
    }
    out.rules_.push_back(std::move(r));
  }
  return out;
}

result<ignore_rules> ignore_rules::load(const std::filesystem::path& folder) {
  const auto file = folder / ".shoalignore";
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(file, ec);
  if (ec || !std::filesystem::is_regular_file(st)) return ignore_rules{};
  std::ifstream in(file, std::ios::binary);
  if (!in) return error{errc::io, file.string() + ": cannot be read"};
  std::string text;
  text.resize(max_ignore_file_bytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse(text);
}

bool ignore_rules::ignored(std::string_view path, bool is_dir) const {
  if (rules_.empty()) return false;
  const auto parts = split(path);
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    if (match_parts(it->parts, parts)) return !it->negate;
  }
  return false;
}

bool ignore_rules::ignored_or_inside_ignored(std::string_view path, bool is_dir) const {
  if (rules_.empty()) return false;
  for (std::size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
    if (ignored(path.substr(0, slash), true)) return true;
  }
  return ignored(path, is_dir);
}

}  // namespace shoal::sync
