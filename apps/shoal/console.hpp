// Terminal helpers for the CLI: printable text, a progress bar, error lines.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::cli {

// Exit codes, documented in the README.
inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;  // bad input or a failed operation
inline constexpr int exit_usage = 2;  // wrong command-line arguments

// "shoal 0.1.0 (commit 1a2b3c4d5e6f)", as --version prints it.
[[nodiscard]] std::string version_string();

// Levenshtein distance: how far a mistyped flag is from a known one.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

// Replaces control characters so untrusted text cannot move the cursor or fake lines.
[[nodiscard]] std::string printable(std::string_view s);

// True if the argument is a magnet link (the scheme is case-insensitive).
[[nodiscard]] bool is_magnet(std::string_view arg);

// Prints "shoal: error: <what>" to stderr and returns exit_error.
int fail(std::string_view what);
// A wrong argument: prints "shoal: error: <what> (see shoal <command> --help)" to stderr and
// returns exit_usage. `command` is the subcommand's path, e.g. "download" or "dht get".
int usage_error(std::string_view command, std::string_view what);
// "shoal: error: <what>: <strerror(err)>", exit_error: a read or write that failed names its cause.
int fail_errno(std::string_view what, int err);
// SHOAL_LOCAL set to anything but "0": the same as --local.
bool env_local();
void warn(std::string_view what);

// A one-line progress bar on stderr when it is a terminal; silent otherwise.
class progress_bar {
 public:
  explicit progress_bar(std::string label);
  void update(std::uint64_t done, std::uint64_t total);
  void finish();

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace shoal::cli
