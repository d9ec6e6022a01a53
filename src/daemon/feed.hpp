// RSS 2.0 and Atom feeds for the daemon's feed following: the items (title, the .torrent or
// magnet link, an id to remember), the include/exclude filter on titles, and the feeds and
// auto-downloading rules of qBittorrent's rss/* API with their STATE/rss.json. No I/O;
// fuzzed through fuzz_rpc.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace shoal::daemon {

struct feed_item {
  std::string title;
  std::string link;         // the enclosure's URL (a .torrent or a magnet), else <link>
  std::string id;           // <guid> / Atom <id>, else the link
  std::string date;         // <pubDate> / Atom <updated> or <published>, as written; "" if none
  std::string description;  // <description> / Atom <summary>, cut at 1 KiB
  // What torrent feeds add in the torrent namespace: <torrent:contentLength> (the
  // content's bytes, -1 if not given), <torrent:infoHash> (lowercase hex, "" if not given
  // or not 40 hex digits) and <torrent:magnetURI>. rss/items names them as qBittorrent does
  // an item's other elements: contentLength, infoHash, magnetURI, as strings.
  std::int64_t size = -1;
  std::string info_hash, magnet_uri;
};

// The feed's own title and date (RSS <lastBuildDate>, Atom <updated>), from before its
// first item.
struct feed_head {
  std::string title, last_build_date;
};

// An item a poll took: its id, and a .torrent's bytes or a magnet link; `taker` is the
// index of the filter (settings.json's, or an API rule's) that took it.
struct feed_pending {
  std::string id, title, metainfo, magnet;
  std::size_t taker = 0;
};

// Items in document order; at most 10,000, titles cut at 1 KiB. Entities (&amp; &#38; ...)
// and CDATA are decoded. Not an XML validator: what is not an item is skipped.
[[nodiscard]] std::vector<feed_item> parse_feed(std::string_view xml);
[[nodiscard]] feed_head parse_feed_head(std::string_view xml);

// Case-insensitive ECMAScript patterns on titles; an empty include matches all.
class feed_filter {
 public:
  static result<feed_filter> make(const std::string& include, const std::string& exclude);
  [[nodiscard]] bool matches(const std::string& title) const;

 private:
  std::optional<std::regex> include_, exclude_;
};

// --- qBittorrent's rss/* API (qbittorrent_rss.cpp): feeds and auto-downloading rules ---

inline constexpr std::size_t rss_max_feeds = 100, rss_max_rules = 100;
inline constexpr std::size_t rss_max_text = 2048;  // a name, URL, pattern or folder

// A feed added with rss/addFeed: its name (qBittorrent's item path; flat, no folders) and URL.
struct rss_feed {
  std::string name, url;
};

// An auto-downloading rule (rss/setRule's ruleDef, qBittorrent's field names). Applied to
// the feeds it names: an item is taken when its title passes must_contain and not
// must_not_contain (rss_rule_patterns). The episode filter, smart filter and ignoreDays are
// kept and shown, not applied.
struct rss_rule {
  bool enabled = true;
  std::string must_contain, must_not_contain;
  bool use_regex = false;
  std::string episode_filter;
  bool smart_filter = false;
  std::vector<std::string> previously_matched;
  std::vector<std::string> affected_feeds;  // feed URLs
  std::int64_t ignore_days = 0;
  std::string last_match;          // when it last took an item (RFC 2822), "" never
  std::optional<bool> add_paused;  // none: the daemon's default
  std::string category;            // assignedCategory: a label of what it adds
  std::string save_path;           // "": the download folder
};

// Everything rss/* made: saved whole in STATE/rss.json.
struct rss_state {
  std::vector<rss_feed> feeds;
  std::map<std::string, rss_rule> rules;
};

// A ruleDef (JSON text, at most 64 KiB): fields missing take their defaults, a field of the
// wrong type or a text past rss_max_text is an error that names it.
[[nodiscard]] result<rss_rule> parse_rss_rule(std::string_view json_text);
[[nodiscard]] boost::json::object rss_rule_json(const rss_rule& r);
// The include and exclude patterns of feed_filter for a rule. Without use_regex as
// qBittorrent reads them: '|' separates alternatives, in each the words between spaces must
// all appear, '*' stands for any run of characters and '?' for one; an empty alternative
// matches every title. With use_regex: the two as case-insensitive ECMAScript patterns.
[[nodiscard]] std::pair<std::string, std::string> rss_rule_patterns(const rss_rule& r);
// STATE/rss.json: what does not fit the bounds or the types is left out.
[[nodiscard]] result<rss_state> parse_rss_state(std::string_view json_text);
[[nodiscard]] std::string rss_state_json(const rss_state& s);

}  // namespace shoal::daemon
