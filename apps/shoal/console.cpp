#include "console.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cctype>

#include "core/text.hpp"
#include "live_display.hpp"

namespace shoal::cli {

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "0.0.0"
#endif
#ifndef SHOAL_GIT_COMMIT
#define SHOAL_GIT_COMMIT "unknown"
#endif

std::string version_string() {
  // Both come from CMake at configure time; the commit is "unknown" outside a git checkout.
  return std::string("shoal ") + SHOAL_VERSION + " (commit " + SHOAL_GIT_COMMIT + ")";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

bool is_magnet(std::string_view arg) {
  constexpr std::string_view scheme = "magnet:";
  if (arg.size() < scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(arg[i])) != scheme[i]) return false;
  }
  return true;
}

int fail(std::string_view what) {
  fmt::print(stderr, "shoal: error: {}\n", printable(what));
  return exit_error;
}

int usage_error(std::string_view command, std::string_view what) {
  fmt::print(stderr, "shoal: error: {} (see shoal {}{}--help)\n", printable(what), command, command.empty() ? "" : " ");
  return exit_usage;
}

int fail_errno(std::string_view what, int err) {
  fmt::print(stderr, "shoal: error: {}: {}\n", printable(what), std::strerror(err));
  return exit_error;
}

void warn(std::string_view what) {
  fmt::print(stderr, "shoal: warning: {}\n", printable(what));
}

progress_bar::progress_bar(std::string label)
    : label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

void progress_bar::update(std::uint64_t done, std::uint64_t total) {
  if (!tty_ || total == 0) return;
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  const int width = 30;
  const int filled = static_cast<int>(frac * width);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(width - filled), '.');
  // Fitted to the terminal (the bar goes first, then the rate), erasing what a longer line left.
  winsize ws{};
  const std::size_t cols = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  const std::vector<line_field> fields{{"[" + bar + "]", 3},
                                       {fmt::format("{:5.1f}%", frac * 100.0), 0},
                                       {human_size(done) + " / " + human_size(total), 1},
                                       {human_size(static_cast<std::uint64_t>(rate)) + "/s", 2}};
  fmt::print(stderr, "\r{}\x1b[K", fit_line(label_, fields, cols));
  std::fflush(stderr);
  drawn_ = true;
}

void progress_bar::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

bool env_local() {
  const char* v = std::getenv("SHOAL_LOCAL");
  return v && *v && std::string(v) != "0";
}

}  // namespace shoal::cli
