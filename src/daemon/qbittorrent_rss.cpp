// qBittorrent's rss/* calls, as qbittorrent-nox 4.5 answers them, over the daemon's feeds.
// A feed added here is followed beside settings.json's (which rss/items lists too, named by
// their URL, and which only settings.json can remove); its items are taken by the enabled
// rules that name it in affectedFeeds (rss_rule_patterns), not by the feed alone, as in
// qBittorrent. Flat: no folders. Feeds and rules are saved in STATE/rss.json at once and
// used from the next poll (a second away for the feeds a change touches).
#include <algorithm>

#include "core/hash.hpp"
#include "daemon/daemon.hpp"
#include "daemon/qbittorrent_api.hpp"
#include "daemon/qbittorrent_detail.hpp"

namespace shoal::daemon {

namespace json = boost::json;
using namespace qb;

namespace {

// A feed's uid, stable across restarts: a UUID's shape over the SHA-1 of its URL.
std::string feed_uid(const std::string& url) {
  const auto h = to_hex(as_view(sha1(url)));
  return "{" + h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20, 12) + "}";
}

struct named_feed {
  std::string name, url;
  bool from_settings = false;
};

}  // namespace

response qbittorrent_api::rss_call(const request& req, std::string_view call, const form& f) {
  auto get = [&](const char* k) { return f.count(k) ? f.at(k) : std::string(); };
  auto fail = [&](http::status st, std::string why) { return text(req, st, std::move(why)); };
  const bool read_only = call == "items" || call == "rules" || call == "matchingArticles";
  if (!read_only && req.method() != http::verb::post) return fail(http::status::method_not_allowed, "POST");

  // Every followed feed by name: settings.json's (named by their URL), then rss/*'s.
  std::vector<named_feed> feeds;
  for (const auto& fc : d_.config().feeds)
    feeds.push_back({fc.url, fc.url, true});
  for (const auto& rf : d_.rss().feeds)
    feeds.push_back({rf.name, rf.url, false});
  auto by_name = [&](const std::string& name) {
    return std::find_if(feeds.begin(), feeds.end(), [&](const named_feed& x) { return x.name == name; });
  };
  auto save = [&](rss_state s, const std::vector<std::string>& poll = {}) {
    if (auto ec = d_.set_rss(std::move(s), poll))
      return fail(http::status::internal_server_error, "cannot save rss.json: " + ec.message());
    return ok(req);
  };
  auto s = d_.rss();

  if (call == "items") {
    const bool with_data = truthy(get("withData"));
    json::object out;
    for (const auto& nf : feeds) {
      json::object o{{"uid", feed_uid(nf.url)}, {"url", nf.url}};
      if (with_data) {
        const auto v = d_.feed_status(nf.url);
        o["title"] = v.head.title;
        o["lastBuildDate"] = v.head.last_build_date;
        o["isLoading"] = v.loading || (!v.polled && v.error.empty());
        o["hasError"] = !v.error.empty();
        // Not one of qBittorrent's fields: why the last poll failed (the web UI shows it).
        if (!v.error.empty()) o["error"] = v.error;
        json::array articles;
        for (std::size_t k = 0; k < v.articles.size(); ++k) {
          const auto& it = v.articles[k];
          json::object a{
              {"id", it.id}, {"date", it.date}, {"title", it.title}, {"torrentURL", it.link}, {"link", it.link}};
          if (!it.description.empty()) a["description"] = it.description;
          // As qBittorrent, isRead only once it is true: taken by a rule, or marked read.
          if (k < v.read.size() && v.read[k]) a["isRead"] = true;
          // The torrent namespace's elements, named and typed as qBittorrent names an item's
          // other elements (the web UI's channels show the size).
          if (it.size >= 0) a["contentLength"] = std::to_string(it.size);
          if (!it.info_hash.empty()) a["infoHash"] = it.info_hash;
          if (!it.magnet_uri.empty()) a["magnetURI"] = it.magnet_uri;
          articles.emplace_back(std::move(a));
        }
        o["articles"] = std::move(articles);
      }
      out[nf.name] = std::move(o);
    }
    return json_reply(req, out);
  }
  if (call == "addFeed") {
    const auto url = get("url");
    auto name = get("path");
    if (name.empty()) name = url;
    if (url.empty() || url.size() > rss_max_text || name.size() > rss_max_text)
      return fail(http::status::conflict, "a feed needs a url and a name of at most 2 KiB");
    if (auto why = url_refused(url, d_.rpc_port())) return fail(http::status::conflict, *why);
    if (name.find('\\') != std::string::npos) return fail(http::status::conflict, "folders are not supported");
    if (s.feeds.size() >= rss_max_feeds) return fail(http::status::conflict, "at most 100 feeds");
    if (std::any_of(feeds.begin(), feeds.end(), [&](const named_feed& x) { return x.url == url; }))
      return fail(http::status::conflict, "RSS feed with given URL already exists: " + url + ".");
    if (by_name(name) != feeds.end()) return fail(http::status::conflict, "a feed named " + name + " exists already");
    s.feeds.push_back({name, url});
    return save(std::move(s), {url});
  }
  if (call == "removeItem" || call == "moveItem") {
    const auto name = call == "removeItem" ? get("path") : get("itemPath");
    auto it = by_name(name);
    if (it == feeds.end()) return fail(http::status::conflict, "Item doesn't exist: " + name + ".");
    if (it->from_settings)
      return fail(http::status::conflict, name + " is set in settings.json: remove it there (and send SIGHUP)");
    auto mine = std::find_if(s.feeds.begin(), s.feeds.end(), [&](const rss_feed& x) { return x.name == name; });
    if (call == "removeItem") {
      s.feeds.erase(mine);
    } else {
      const auto dest = get("destPath");
      if (dest.empty() || dest.size() > rss_max_text || dest.find('\\') != std::string::npos ||
          (dest != name && by_name(dest) != feeds.end()))
        return fail(http::status::conflict, "destPath must be a new name (folders are not supported)");
      mine->name = dest;
    }
    return save(std::move(s));
  }
  if (call == "addFolder") return fail(http::status::conflict, "folders are not supported");
  if (call == "refreshItem") {
    const auto name = get("itemPath");
    if (auto it = by_name(name); it != feeds.end()) {
      d_.poll_soon(it->url);
    } else if (name.empty()) {
      d_.poll_soon("");
    }
    return ok(req);
  }
  if (call == "markAsRead") {
    // A read article is not taken by a rule, as in qBittorrent (a channel's "new items").
    if (auto it = by_name(get("itemPath")); it != feeds.end()) d_.mark_read(it->url, get("articleId"));
    return ok(req);
  }

  if (call == "rules") {
    json::object out;
    for (const auto& [name, r] : s.rules)
      out[name] = rss_rule_json(r);
    return json_reply(req, out);
  }
  if (call == "setRule") {
    const auto name = get("ruleName");
    if (name.empty() || name.size() > rss_max_text)
      return fail(http::status::bad_request, "ruleName: a name of at most 2 KiB");
    auto rule = parse_rss_rule(get("ruleDef"));
    if (!rule) return fail(http::status::bad_request, rule.err().detail);
    auto [include, exclude] = rss_rule_patterns(*rule);
    if (auto filter = feed_filter::make(include, exclude); !filter)
      return fail(http::status::bad_request, "mustContain/mustNotContain: " + filter.err().detail);
    if (!rule->save_path.empty()) {
      const auto p = fs::path(rule->save_path).lexically_normal();
      if (!p.is_absolute() || !d_.path_allowed(p))
        return fail(http::status::bad_request, "savePath is outside the allowed folders");
      rule->save_path = p.string();
    }
    if (!s.rules.count(name) && s.rules.size() >= rss_max_rules)
      return fail(http::status::conflict, "at most 100 rules");
    // Kept as set by setRule, but when it last took an item is the daemon's to say.
    if (auto old = s.rules.find(name); old != s.rules.end()) rule->last_match = old->second.last_match;
    auto poll = rule->affected_feeds;
    s.rules[name] = std::move(*rule);
    return save(std::move(s), poll);
  }
  if (call == "removeRule") {
    s.rules.erase(get("ruleName"));
    return save(std::move(s));
  }
  if (call == "renameRule") {
    const auto from = get("ruleName"), to = get("newRuleName");
    auto it = s.rules.find(from);
    if (it == s.rules.end()) return ok(req);  // as qBittorrent: nothing to rename is no error
    if (to.empty() || to.size() > rss_max_text || s.rules.count(to))
      return fail(http::status::conflict, "newRuleName must be a new name of at most 2 KiB");
    auto node = s.rules.extract(it);
    node.key() = to;
    s.rules.insert(std::move(node));
    return save(std::move(s));
  }
  if (call == "matchingArticles") {
    auto it = s.rules.find(get("ruleName"));
    if (it == s.rules.end()) return json_reply(req, json::object());
    auto [include, exclude] = rss_rule_patterns(it->second);
    auto filter = feed_filter::make(include, exclude);
    json::object out;
    for (const auto& nf : feeds) {
      const auto& affected = it->second.affected_feeds;
      if (!filter || std::find(affected.begin(), affected.end(), nf.url) == affected.end()) continue;
      json::array titles;
      for (const auto& a : d_.feed_status(nf.url).articles)
        if (filter->matches(a.title)) titles.emplace_back(a.title);
      if (!titles.empty()) out[nf.name] = std::move(titles);
    }
    return json_reply(req, out);
  }
  return fail(http::status::not_found, "Not Found");
}

}  // namespace shoal::daemon
