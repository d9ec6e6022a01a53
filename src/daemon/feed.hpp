// RSS 2.0 and Atom feeds for the daemon's feed following: the items (title, the .torrent or
// magnet link, an id to remember), and the include/exclude filter on titles. No I/O;
// fuzzed through fuzz_rpc.
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace shoal::daemon {

struct feed_item {
  std::string title;
  std::string link;  // the enclosure's URL (a .torrent or a magnet), else <link>
  std::string id;    // <guid> / Atom <id>, else the link
};

// An item a poll took: its id, and a .torrent's bytes or a magnet link.
struct feed_pending {
  std::string id, title, metainfo, magnet;
};

// Items in document order; at most 10,000, titles cut at 1 KiB. Entities (&amp; &#38; ...)
// and CDATA are decoded. Not an XML validator: what is not an item is skipped.
[[nodiscard]] std::vector<feed_item> parse_feed(std::string_view xml);

// Case-insensitive ECMAScript patterns on titles; an empty include matches all.
class feed_filter {
 public:
  static result<feed_filter> make(const std::string& include, const std::string& exclude);
  [[nodiscard]] bool matches(const std::string& title) const;

 private:
  std::optional<std::regex> include_, exclude_;
};

}  // namespace shoal::daemon
