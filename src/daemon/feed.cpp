#include "daemon/feed.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/hash.hpp"
#include "core/text.hpp"

namespace shoal::daemon {

namespace {

// The text between <tag ...> and </tag> inside `s`, or nullopt.
std::optional<std::string_view> element(std::string_view s, std::string_view tag, std::string_view* attrs = nullptr) {
  std::size_t pos = 0;
  while (true) {
    pos = s.find("<" + std::string(tag), pos);
    if (pos == std::string_view::npos) return std::nullopt;
    const auto after = pos + 1 + tag.size();
    if (after < s.size() && (s[after] == '>' || s[after] == ' ' || s[after] == '/' || s[after] == '\t' ||
                             s[after] == '\n' || s[after] == '\r'))
      break;
    pos = after;
  }
  const auto open_end = s.find('>', pos);
  if (open_end == std::string_view::npos) return std::nullopt;
  if (attrs) *attrs = s.substr(pos, open_end - pos);
  if (s[open_end - 1] == '/') return std::string_view{};  // <tag ... />
  const auto close = s.find("</" + std::string(tag), open_end);
  if (close == std::string_view::npos) return std::nullopt;
  return s.substr(open_end + 1, close - open_end - 1);
}

std::optional<std::string_view> attribute(std::string_view attrs, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = attrs.find(name, pos)) != std::string_view::npos) {
    const bool word_start = pos > 0 && (attrs[pos - 1] == ' ' || attrs[pos - 1] == '\t' || attrs[pos - 1] == '\n');
    auto p = pos + name.size();
    while (p < attrs.size() && attrs[p] == ' ')
      ++p;
    if (word_start && p < attrs.size() && attrs[p] == '=') {
      ++p;
      while (p < attrs.size() && attrs[p] == ' ')
        ++p;
      if (p < attrs.size() && (attrs[p] == '"' || attrs[p] == '\'')) {
        const char q = attrs[p];
        const auto end = attrs.find(q, p + 1);
        if (end == std::string_view::npos) return std::nullopt;
        return attrs.substr(p + 1, end - p - 1);
      }
    }
    pos = p;
  }
  return std::nullopt;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string text(std::string_view s, std::size_t limit) {
  std::string out;
  // CDATA: the inside, as it is.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  if (s.substr(0, 9) == "<![CDATA[") {
    auto end = s.find("]]>");
    out = std::string(s.substr(9, end == std::string_view::npos ? std::string_view::npos : end - 9));
    if (out.size() > limit) out.resize(limit);
    return out;
  }
  for (std::size_t i = 0; i < s.size() && out.size() < limit; ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += '&';
      continue;
    }
    const auto ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      std::uint32_t cp = 0;
      const bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
      bool ok = ent.size() > (hex ? 2u : 1u);
      for (std::size_t k = hex ? 2 : 1; k < ent.size() && ok; ++k) {
        const char c = ent[k];
        int d = c >= '0' && c <= '9'          ? c - '0'
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : -1;
        if (d < 0 || cp > 0x10FFFF)
          ok = false;
        else
          cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
      }
      if (ok) append_utf8(out, cp);
    } else {
      out += '&';
      continue;
    }
    i = semi;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\r' || out.back() == '\t'))
    out.pop_back();
  return out;
}

// A byte count, or -1.
std::int64_t content_size(const std::string& s) {
  auto n = parse_size(s);
  return n && *n < (1ull << 62) ? static_cast<std::int64_t>(*n) : -1;
}

// A v1 info hash as 40 hex digits (either case), lowercased; "" for anything else.
std::string hex_hash(const std::string& s) {
  auto bytes = s.size() == 40 ? from_hex(s) : std::nullopt;
  return bytes ? to_hex(*bytes) : "";
}

}  // namespace

std::vector<feed_item> parse_feed(std::string_view xml) {
  std::vector<feed_item> items;
  const bool atom = xml.find("<entry") != std::string_view::npos && xml.find("<item") == std::string_view::npos;
  const std::string open = atom ? "<entry" : "<item", close = atom ? "</entry>" : "</item>";
  std::size_t pos = 0;
  while (items.size() < 10000) {
    pos = xml.find(open, pos);
    if (pos == std::string_view::npos) break;
    const auto end = xml.find(close, pos);
    if (end == std::string_view::npos) break;
    const auto body = xml.substr(pos, end - pos);
    pos = end + close.size();
    feed_item it;
    if (auto t = element(body, "title")) it.title = text(*t, 1024);
    std::string_view attrs;
    if (element(body, "enclosure", &attrs) && !attrs.empty()) {
      if (auto u = attribute(attrs, "url")) it.link = text(*u, 8192);
    }
    if (it.link.empty()) {
      if (atom) {
        // Atom: the first <link href=...> (rel="enclosure" preferred).
        std::size_t lp = 0;
        while ((lp = body.find("<link", lp)) != std::string_view::npos) {
          auto le = body.find('>', lp);
          if (le == std::string_view::npos) break;
          auto a = body.substr(lp, le - lp);
          lp = le;
          auto href = attribute(a, "href");
          if (!href) continue;
          const bool enclosure = attribute(a, "rel").value_or("") == "enclosure";
          if (it.link.empty() || enclosure) it.link = text(*href, 8192);
          if (enclosure) break;
        }
      } else if (auto l = element(body, "link")) {
        it.link = text(*l, 8192);
      }
    }
    if (auto g = element(body, atom ? "id" : "guid")) it.id = text(*g, 1024);
    if (auto d = element(body, atom ? "summary" : "description")) it.description = text(*d, 1024);
    for (const char* tag : {"pubDate", "updated", "published"}) {
      if (!it.date.empty()) break;
      if (auto dt = element(body, tag)) it.date = text(*dt, 100);
    }
    for (const char* tag : {"torrent:contentLength", "contentLength"})
      if (auto n = element(body, tag); n && it.size < 0) it.size = content_size(text(*n, 32));
    for (const char* tag : {"torrent:infoHash", "infoHash"})
      if (auto h = element(body, tag); h && it.info_hash.empty()) it.info_hash = hex_hash(text(*h, 64));
    for (const char* tag : {"torrent:magnetURI", "magnetURI"})
      if (auto m = element(body, tag); m && it.magnet_uri.empty()) it.magnet_uri = text(*m, 8192);
    if (it.id.empty()) it.id = it.link;
    if (!it.link.empty()) items.push_back(std::move(it));
  }
  return items;
}

feed_head parse_feed_head(std::string_view xml) {
  feed_head h;
  auto first = std::min(xml.find("<item"), xml.find("<entry"));
  const auto head = xml.substr(0, first);
  if (auto t = element(head, "title")) h.title = text(*t, 1024);
  for (const char* tag : {"lastBuildDate", "updated", "pubDate"}) {
    if (!h.last_build_date.empty()) break;
    if (auto dt = element(head, tag)) h.last_build_date = text(*dt, 100);
  }
  return h;
}

result<feed_filter> feed_filter::make(const std::string& include, const std::string& exclude) {
  feed_filter f;
  try {
    const auto flags = std::regex::ECMAScript | std::regex::icase | std::regex::nosubs;
    if (!include.empty()) f.include_.emplace(include, flags);
    if (!exclude.empty()) f.exclude_.emplace(exclude, flags);
  } catch (const std::regex_error& e) {
    return error{errc::invalid_argument, std::string("a feed filter is not a valid pattern: ") + e.what()};
  }
  return f;
}

bool feed_filter::matches(const std::string& title) const {
  try {
    if (include_ && !std::regex_search(title, *include_)) return false;
    if (exclude_ && std::regex_search(title, *exclude_)) return false;
  } catch (const std::regex_error&) {
    return false;  // too complex for this title: not taken
  }
  return true;
}

// --- rss/* rules and STATE/rss.json ---------------------------------------------------------

namespace {

namespace json = boost::json;

// Reads the rule's fields from `o`; an error names the first field that is wrong.
result<rss_rule> rule_from(const json::object& o) {
  rss_rule r;
  auto bad = [](const char* k, const char* what) {
    return error{errc::invalid_argument, std::string("ruleDef: ") + k + " must be " + what};
  };
  auto str = [&](const char* k, std::string& dst) -> bool {
    auto* v = o.if_contains(k);
    if (!v || v->is_null()) return true;
    if (!v->is_string() || v->as_string().size() > rss_max_text) return false;
    dst = std::string(v->as_string());
    return true;
  };
  auto flag = [&](const char* k, bool& dst) -> bool {
    auto* v = o.if_contains(k);
    if (!v || v->is_null()) return true;
    if (!v->is_bool()) return false;
    dst = v->as_bool();
    return true;
  };
  auto list = [&](const char* k, std::vector<std::string>& dst) -> bool {
    auto* v = o.if_contains(k);
    if (!v || v->is_null()) return true;
    if (!v->is_array() || v->as_array().size() > rss_max_feeds) return false;
    for (const auto& e : v->as_array()) {
      if (!e.is_string() || e.as_string().size() > rss_max_text) return false;
      dst.emplace_back(e.as_string());
    }
    return true;
  };
  for (auto [k, dst] : {std::pair{"mustContain", &r.must_contain},
                        {"mustNotContain", &r.must_not_contain},
                        {"episodeFilter", &r.episode_filter},
                        {"lastMatch", &r.last_match},
                        {"assignedCategory", &r.category},
                        {"savePath", &r.save_path}})
    if (!str(k, *dst)) return bad(k, "a text of at most 2 KiB");
  for (auto [k, dst] : {std::pair{"enabled", &r.enabled}, {"useRegex", &r.use_regex}, {"smartFilter", &r.smart_filter}})
    if (!flag(k, *dst)) return bad(k, "true or false");
  if (!list("affectedFeeds", r.affected_feeds)) return bad("affectedFeeds", "a list of at most 100 feed URLs");
  if (!list("previouslyMatchedEpisodes", r.previously_matched))
    return bad("previouslyMatchedEpisodes", "a list of at most 100 texts");
  if (auto* v = o.if_contains("ignoreDays"); v && !v->is_null()) {
    if (!v->is_number()) return bad("ignoreDays", "a number");
    const double d = v->to_number<double>();
    if (!(d >= 0 && d <= 1e6)) return bad("ignoreDays", "a number of days");
    r.ignore_days = static_cast<std::int64_t>(d);
  }
  if (auto* v = o.if_contains("addPaused"); v && !v->is_null()) {
    if (!v->is_bool()) return bad("addPaused", "true, false or null");
    r.add_paused = v->as_bool();
  }
  return r;
}

// A wildcard word as an ECMAScript pattern: '*' any run, '?' any one character.
void append_wildcard(std::string& out, std::string_view word) {
  for (char c : word) {
    if (c == '*') {
      out += "[\\s\\S]*";
    } else if (c == '?') {
      out += "[\\s\\S]";
    } else {
      if (c != '\0' && std::strchr("^$\\.+()[]{}|/", c)) out += '\\';
      out += c;
    }
  }
}

// qBittorrent's wildcard expression: alternatives between '|', each a set of words that
// must all appear. "" stays "" (feed_filter: no pattern).
std::string wildcard_pattern(std::string_view expr) {
  if (expr.empty()) return {};
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const auto bar = expr.find('|', pos);
    const auto alt = expr.substr(pos, bar == std::string_view::npos ? std::string_view::npos : bar - pos);
    if (pos > 0) out += '|';
    out += '^';
    std::size_t w = 0;
    while (w < alt.size()) {
      while (w < alt.size() && (alt[w] == ' ' || alt[w] == '\t'))
        ++w;
      auto e = w;
      while (e < alt.size() && alt[e] != ' ' && alt[e] != '\t')
        ++e;
      if (e > w) {
        out += "(?=[\\s\\S]*";
        append_wildcard(out, alt.substr(w, e - w));
        out += ')';
      }
      w = e;
    }
    if (bar == std::string_view::npos) break;
    pos = bar + 1;
  }
  return out;
}

}  // namespace

result<rss_rule> parse_rss_rule(std::string_view json_text) {
  if (json_text.size() > 65536) return error{errc::invalid_argument, "ruleDef: larger than 64 KiB"};
  boost::system::error_code ec;
  auto v = json::parse(json_text, ec);
  if (ec || !v.is_object()) return error{errc::invalid_argument, "ruleDef: not a JSON object"};
  return rule_from(v.as_object());
}

json::object rss_rule_json(const rss_rule& r) {
  json::object o;
  o["enabled"] = r.enabled;
  o["mustContain"] = r.must_contain;
  o["mustNotContain"] = r.must_not_contain;
  o["useRegex"] = r.use_regex;
  o["episodeFilter"] = r.episode_filter;
  o["smartFilter"] = r.smart_filter;
  json::array prev, feeds;
  for (const auto& e : r.previously_matched)
    prev.emplace_back(e);
  for (const auto& f : r.affected_feeds)
    feeds.emplace_back(f);
  o["previouslyMatchedEpisodes"] = std::move(prev);
  o["affectedFeeds"] = std::move(feeds);
  o["ignoreDays"] = r.ignore_days;
  o["lastMatch"] = r.last_match;
  o["addPaused"] = r.add_paused ? json::value(*r.add_paused) : json::value(nullptr);
  o["assignedCategory"] = r.category;
  o["savePath"] = r.save_path;
  o["torrentContentLayout"] = nullptr;  // qBittorrent's; the torrent's own layout is kept
  return o;
}

std::pair<std::string, std::string> rss_rule_patterns(const rss_rule& r) {
  if (r.use_regex) return {r.must_contain, r.must_not_contain};
  return {wildcard_pattern(r.must_contain), wildcard_pattern(r.must_not_contain)};
}

result<rss_state> parse_rss_state(std::string_view json_text) {
  boost::system::error_code ec;
  auto v = json::parse(json_text, ec);
  if (ec || !v.is_object()) return error{errc::invalid_argument, "rss.json: not a JSON object"};
  rss_state s;
  const auto& o = v.as_object();
  if (auto* feeds = o.if_contains("feeds"); feeds && feeds->is_array()) {
    for (const auto& f : feeds->as_array()) {
      if (s.feeds.size() >= rss_max_feeds) break;
      const auto* name = f.is_object() ? f.as_object().if_contains("name") : nullptr;
      const auto* url = f.is_object() ? f.as_object().if_contains("url") : nullptr;
      if (!name || !url || !name->is_string() || !url->is_string() || name->as_string().empty() ||
          url->as_string().empty() || name->as_string().size() > rss_max_text || url->as_string().size() > rss_max_text)
        continue;
      s.feeds.push_back({std::string(name->as_string()), std::string(url->as_string())});
    }
  }
  if (auto* rules = o.if_contains("rules"); rules && rules->is_object()) {
    for (const auto& [name, def] : rules->as_object()) {
      if (s.rules.size() >= rss_max_rules) break;
      if (name.empty() || name.size() > rss_max_text || !def.is_object()) continue;
      if (auto r = rule_from(def.as_object())) s.rules[std::string(name)] = std::move(*r);
    }
  }
  return s;
}

std::string rss_state_json(const rss_state& s) {
  json::array feeds;
  for (const auto& f : s.feeds)
    feeds.emplace_back(json::object{{"name", f.name}, {"url", f.url}});
  json::object rules;
  for (const auto& [name, r] : s.rules)
    rules[name] = rss_rule_json(r);
  return json::serialize(json::object{{"feeds", std::move(feeds)}, {"rules", std::move(rules)}}) + "\n";
}

}  // namespace shoal::daemon
