#include "live_display.hpp"

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace shoal::cli {

namespace {

bool continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// The first `n` code points of s.
std::string_view head_cols(std::string_view s, std::size_t n) {
  std::size_t i = 0, cols = 0;
  while (i < s.size()) {
    if (!continuation(s[i])) {
      if (cols == n) break;
      ++cols;
    }
    ++i;
  }
  return s.substr(0, i);
}

// The last `n` code points of s.
std::string_view tail_cols(std::string_view s, std::size_t n) {
  std::size_t i = s.size(), cols = 0;
  while (i > 0 && cols < n) {
    --i;
    if (!continuation(s[i])) ++cols;
  }
  while (i > 0 && i < s.size() && continuation(s[i]))
    --i;
  return s.substr(i);
}

void write_json(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string(kv.key()));
        out += ':';
        write_json(out, kv.value());
      }
      out += '}';
      break;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, e);
      }
      out += ']';
      break;
    }
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      std::string s = fmt::format("{:.6f}", d);
      while (s.back() == '0')
        s.pop_back();
      if (s.back() == '.') s.pop_back();
      if (s == "-0") s = "0";
      out += s;
      break;
    }
    default:
      out += boost::json::serialize(v);
  }
}

}  // namespace

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    n += continuation(c) ? 0 : 1;
  return n;
}

std::string abbreviate(std::string_view s, std::size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width <= 3) return std::string(head_cols(s, width));
  const std::size_t keep = width - 3;
  const std::size_t tail = keep / 3;
  return std::string(head_cols(s, keep - tail)) + "..." + std::string(tail_cols(s, tail));
}

std::string fit_line(std::string_view name, const std::vector<line_field>& fields, std::size_t columns) {
  const std::size_t avail = columns > 1 ? columns - 1 : 1;  // the last column stays empty: no wrap
  constexpr std::size_t min_name = 16;
  std::vector<bool> keep(fields.size(), true);
  auto rest_width = [&] {
    std::size_t w = 0;
    for (std::size_t i = 0; i < fields.size(); ++i)
      w += keep[i] ? 2 + display_width(fields[i].text) : 0;
    return w;
  };
  const std::size_t name_w = display_width(name);
  std::size_t name_budget = std::min(name_w, min_name);
  // Drop the fields that go first until the line fits with the name at its shortest.
  while (name_budget + rest_width() > avail) {
    int worst = 0;
    std::size_t at = fields.size();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (keep[i] && fields[i].drop > worst) {
        worst = fields[i].drop;
        at = i;
      }
    }
    if (at == fields.size()) break;
    keep[at] = false;
  }
  const std::size_t rest = rest_width();
  if (rest < avail) name_budget = std::max(name_budget, std::min(name_w, avail - rest));
  std::string line = abbreviate(name, name_budget);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (keep[i]) line += "  " + fields[i].text;
  }
  if (display_width(line) > avail) line = std::string(head_cols(line, avail));
  return line;
}

std::string plain_json(const boost::json::value& v) {
  std::string out;
  write_json(out, v);
  return out;
}

live_display::live_display(bool tty) : tty_(tty) {
  refresh_size();
}

void live_display::refresh_size() {
  winsize ws{};
  if (tty_ && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    cols_ = ws.ws_col;
    rows_ = ws.ws_row > 0 ? ws.ws_row : 24;
    return;
  }
  const char* c = std::getenv("COLUMNS");
  const long n = c ? std::strtol(c, nullptr, 10) : 0;
  cols_ = n > 0 && n < 10000 ? static_cast<std::size_t>(n) : 80;
  rows_ = 24;
}

void live_display::clear_block() {
  if (drawn_ == 0) return;
  // Back to the block's first line, then erase to the end of the screen.
  if (drawn_ > 1) fmt::print(stderr, "\x1b[{}A", drawn_ - 1);
  fmt::print(stderr, "\r\x1b[J");
  drawn_ = 0;
}

void live_display::draw(const std::vector<std::string>& lines) {
  if (!tty_ || lines.empty()) return;
  std::string out;
  if (drawn_ > 1) out += fmt::format("\x1b[{}A", drawn_ - 1);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += '\r';
    out += lines[i];
    out += "\x1b[K";
    if (i + 1 < lines.size()) out += '\n';
  }
  // A block shorter than the last one: erase the lines it left below.
  if (lines.size() < drawn_) out += "\x1b[J";
  fmt::print(stderr, "{}", out);
  std::fflush(stderr);
  drawn_ = lines.size();
}

void live_display::message(std::string_view line) {
  if (tty_) clear_block();
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

void live_display::finish() {
  if (tty_ && drawn_ > 0) fmt::print(stderr, "\n");
  drawn_ = 0;
  std::fflush(stderr);
}

}  // namespace shoal::cli
