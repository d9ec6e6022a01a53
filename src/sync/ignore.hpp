// `.shoalignore`: which paths of a folder the scanner leaves alone. Read only if the user
// wrote that file; without it nothing is ignored (DIR/.shoal/ is always left out, by the
// scanner, whatever the patterns say).
//
// One pattern a line; blank lines and lines starting with '#' are skipped.
//   *     any run of bytes within one path component (not '/')
//   ?     one byte, not '/'
//   **    as a whole component, any number of components (zero included); elsewhere as '*'
//   /x    anchored: matches from the folder's root only (without a leading '/', a pattern
//         matches at any depth: "*.tmp" is "**/*.tmp")
//   x/    matches directories only
//   !x    negation: a path the pattern matches is not ignored after all
// The last pattern that matches a path decides (as in .gitignore). Inside an ignored
// directory nothing is looked at, so a negation cannot bring back a file under it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace shoal::sync {

inline constexpr std::size_t max_ignore_file_bytes = 1024 * 1024;
inline constexpr std::size_t max_ignore_patterns = 10000;
inline constexpr std::size_t max_ignore_pattern_bytes = 4096;

class ignore_rules {
 public:
  ignore_rules() = default;
  // Parses the text of a .shoalignore file. Errors (errc::limit_exceeded) past the bounds.
  [[nodiscard]] static result<ignore_rules> parse(std::string_view text);
  // Reads DIR/.shoalignore; no file means no rules (not an error).
  [[nodiscard]] static result<ignore_rules> load(const std::filesystem::path& folder);

  // Whether a path (relative, '/'-separated) is ignored by the patterns themselves; its
  // parent directories are not looked at (the scanner never walks into an ignored one).
  [[nodiscard]] bool ignored(std::string_view path, bool is_dir) const;
  // Whether the path or any directory above it is ignored.
  [[nodiscard]] bool ignored_or_inside_ignored(std::string_view path, bool is_dir) const;
  [[nodiscard]] bool empty() const { return rules_.empty(); }
  [[nodiscard]] std::size_t size() const { return rules_.size(); }

 private:
  struct rule {
    std::vector<std::string> parts;  // pattern components
    bool negate = false;
    bool dir_only = false;
  };
  std::vector<rule> rules_;
};

// Glob match of one component: '*' any run, '?' one byte (neither matches '/').
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view name);

}  // namespace shoal::sync
