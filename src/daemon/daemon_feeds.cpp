// The daemon's feeds: settings.json's and those of qBittorrent's rss/* API (STATE/rss.json),
// polled on the session's thread, their items taken by the first filter or rule that
// matches, the ids taken remembered in STATE/feeds.json. Everything here but the fetch
// itself runs on the HTTP thread.
#include <algorithm>
#include <ctime>

#include "daemon/daemon.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"
#include "tracker/http_connect.hpp"

namespace shoal::daemon {

namespace json = boost::json;

namespace {

constexpr std::uint32_t rss_interval = 900;  // seconds between polls of an rss/* feed
constexpr std::size_t articles_kept = 50;    // per feed, as qBittorrent keeps

// On the session's thread: the feed, then each new item's .torrent (magnets as they are)
// when a taker's filter passes its title, at most 50 a poll.
asio::awaitable<feed_fetch> fetch_feed(asio::io_context& io, feed_job job, std::set<std::string> seen,
                                       tracker::client_options opt, std::uint16_t rpc_port) {
  feed_fetch out;
  auto xml = co_await tracker::http_get(io, job.url, 16u << 20, opt);
  if (!xml) {
    out.error = "cannot fetch the feed: " + xml.err().message();
    co_return out;
  }
  std::vector<feed_filter> filters;
  for (const auto& t : job.takers) {
    auto filter = feed_filter::make(t.include, t.exclude);
    if (!filter) {
      out.error = filter.err().detail + (t.rule.empty() ? "" : " (rule " + t.rule + ")");
      co_return out;
    }
    filters.push_back(std::move(*filter));
  }
  out.head = parse_feed_head(*xml);
  auto items = parse_feed(*xml);
  for (auto& it : items) {
    if (out.got.size() >= 50) break;
    if (seen.count(it.id)) continue;
    std::size_t k = 0;
    while (k < filters.size() && !filters[k].matches(it.title))
      ++k;
    if (k == filters.size()) continue;
    feed_pending p{it.id, it.title, {}, {}, k};
    if (it.link.rfind("magnet:", 0) == 0) {
      p.magnet = it.link;
    } else {
      // A feed's link may not send the daemon to its own API either.
      if (url_refused(it.link, rpc_port)) continue;
      auto bytes = co_await tracker::http_get(io, it.link, 16u << 20, opt);
      if (!bytes) continue;  // tried again at the next poll
      p.metainfo = std::move(*bytes);
    }
    out.got.push_back(std::move(p));
  }
  if (items.size() > articles_kept) items.resize(articles_kept);
  out.items = std::move(items);
  co_return out;
}

std::string rfc2822_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[64];
  return std::strftime(b, sizeof b, "%d %b %Y %H:%M:%S +0000", &tm) ? b : "";
}

}  // namespace

std::optional<std::string> url_refused(const std::string& url, std::uint16_t rpc_port) {
  auto parts = tracker::split_url(url);
  if (!parts || (parts->scheme != "http" && parts->scheme != "https"))
    return "only http(s) URLs can be added (not " + url + ")";
  // A URL at the daemon itself would have it call its own API with the caller's rights.
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(parts->host, aec);
  const bool local_name = parts->host == "localhost" || (!aec && (is_loopback(addr) || addr.is_unspecified()));
  if (local_name && parts->port == std::to_string(rpc_port))
    return url + " points at this daemon's own RPC port: refused";
  return std::nullopt;
}

void daemon::load_feed_state() {
  if (auto text = read_whole_file(cfg_.state_dir / "feeds.json"); !text.empty()) {
    boost::system::error_code jec;
    auto v = json::parse(text, jec);
    if (!jec && v.is_object())
      for (const auto& [url, ids] : v.as_object())
        if (ids.is_array())
          for (const auto& id : ids.as_array())
            if (id.is_string()) feed_seen_[std::string(url)].insert(std::string(id.as_string()));
  }
  if (auto text = read_whole_file(cfg_.state_dir / "rss.json"); !text.empty()) {
    auto s = parse_rss_state(text);
    if (s) {
      rss_ = std::move(*s);
    } else {
      std::fprintf(stderr, "shoal daemon: %s: %s (the rss/* feeds and rules start empty)\n",
                   (cfg_.state_dir / "rss.json").c_str(), s.err().detail.c_str());
    }
  }
}

std::vector<feed_job> daemon::feed_jobs() const {
  const auto c = config();
  std::vector<feed_job> jobs;
  auto job_for = [&](const std::string& url, std::uint32_t interval) -> feed_job& {
    for (auto& j : jobs)
      if (j.url == url) return j;
    return jobs.emplace_back(feed_job{url, interval, {}});
  };
  for (const auto& f : c.feeds)
    job_for(f.url, f.interval).takers.push_back({f.include, f.exclude, f.download_dir, f.labels, std::nullopt, ""});
  for (const auto& f : rss_.feeds)
    (void)job_for(f.url, rss_interval);
  for (const auto& [name, r] : rss_.rules) {
    if (!r.enabled) continue;
    auto [include, exclude] = rss_rule_patterns(r);
    std::vector<std::string> labels;
    if (!r.category.empty()) labels.push_back(r.category);
    for (auto& j : jobs)
      if (std::find(r.affected_feeds.begin(), r.affected_feeds.end(), j.url) != r.affected_feeds.end())
        j.takers.push_back({include, exclude, r.save_path, labels, r.add_paused, name});
  }
  return jobs;
}

void daemon::poll_feeds() {
  const auto c = config();
  const auto now = std::chrono::steady_clock::now();
  for (auto& job : feed_jobs()) {
    if (feed_busy_.count(job.url)) continue;
    auto next = feed_next_.find(job.url);
    if (next != feed_next_.end() && next->second > now) continue;
    feed_busy_.insert(job.url);
    feed_next_[job.url] = now + std::chrono::seconds(std::max<std::uint32_t>(10, job.interval));
    tracker::client_options opt;
    opt.local = c.local;
    opt.cache = ses_->tracker_cache();
    const auto seen = feed_seen_[job.url];
    asio::co_spawn(ses_->io(), fetch_feed(ses_->io(), job, seen, opt, rpc_port()),
                   [this, job](std::exception_ptr e, feed_fetch r) {
                     if (e) r.error = "the feed poll failed";
                     asio::post(http_io_, [this, job, r = std::move(r)]() mutable {
                       if (!stopped_) on_feed_result(job, std::move(r));
                     });
                   });
  }
}

void daemon::on_feed_result(const feed_job& job, feed_fetch r) {
  feed_busy_.erase(job.url);
  // Unfollowed while it was polled: nothing taken, nothing kept.
  const auto jobs = feed_jobs();
  if (std::none_of(jobs.begin(), jobs.end(), [&](const feed_job& j) { return j.url == job.url; })) return;
  if (!r.error.empty()) {
    if (feed_errors_[job.url] != r.error)
      std::fprintf(stderr, "shoal daemon: feed %s: %s\n", job.url.c_str(), r.error.c_str());
    feed_errors_[job.url] = r.error;
    return;
  }
  feed_errors_.erase(job.url);
  auto& view = feed_views_[job.url];
  view.head = std::move(r.head);
  view.articles = std::move(r.items);
  view.polled = true;
  auto& seen = feed_seen_[job.url];
  bool rules_changed = false;
  for (auto& p : r.got) {
    const auto& t = job.takers.at(p.taker);
    add_request a;
    a.metainfo = std::move(p.metainfo);
    a.magnet = std::move(p.magnet);
    if (!t.save_path.empty()) a.save_path = t.save_path;
    a.labels = t.labels;
    a.paused = t.paused;
    auto added = add(std::move(a));
    if (!added) {
      std::fprintf(stderr, "shoal daemon: feed %s: %s: %s\n", job.url.c_str(), p.title.c_str(),
                   added.err().detail.c_str());
    }
    if (auto rule = rss_.rules.find(t.rule); !t.rule.empty() && rule != rss_.rules.end()) {
      rule->second.last_match = rfc2822_now();
      rules_changed = true;
    }
    // Taken once, whether it was added or refused (a refusal would repeat every poll).
    if (seen.size() < 100000) seen.insert(p.id);
  }
  if (!r.got.empty()) save_feed_state();
  if (rules_changed) (void)write_file_atomically(cfg_.state_dir / "rss.json", rss_state_json(rss_));
}

void daemon::save_feed_state() {
  json::object o;
  for (const auto& [url, ids] : feed_seen_) {
    json::array a;
    for (const auto& id : ids)
      a.emplace_back(id);
    o[url] = std::move(a);
  }
  (void)write_file_atomically(cfg_.state_dir / "feeds.json", json::serialize(o) + "\n");
}

std::error_code daemon::set_rss(rss_state s, const std::vector<std::string>& poll) {
  if (auto ec = write_file_atomically(cfg_.state_dir / "rss.json", rss_state_json(s))) return ec;
  rss_ = std::move(s);
  for (const auto& url : poll)
    feed_next_.erase(url);
  // What no longer names a followed feed is forgotten (but not the ids taken: a feed
  // followed again does not take its items twice).
  std::set<std::string> followed;
  for (const auto& j : feed_jobs())
    followed.insert(j.url);
  std::erase_if(feed_views_, [&](const auto& kv) { return !followed.count(kv.first); });
  std::erase_if(feed_errors_, [&](const auto& kv) { return !followed.count(kv.first); });
  std::erase_if(feed_next_, [&](const auto& kv) { return !followed.count(kv.first); });
  return {};
}

void daemon::poll_soon(const std::string& url) {
  if (url.empty()) {
    feed_next_.clear();
  } else {
    feed_next_.erase(url);
  }
}

void daemon::mark_read(const std::string& url, const std::string& id) {
  auto& seen = feed_seen_[url];
  const auto before = seen.size();
  auto view = feed_views_.find(url);
  if (!id.empty()) {
    if (seen.size() < 100000) seen.insert(id);
  } else if (view != feed_views_.end()) {
    for (const auto& a : view->second.articles)
      if (seen.size() < 100000) seen.insert(a.id);
  }
  if (seen.size() != before) save_feed_state();
}

feed_view daemon::feed_status(const std::string& url) const {
  feed_view v;
  if (auto it = feed_views_.find(url); it != feed_views_.end()) v = it->second;
  auto seen = feed_seen_.find(url);
  v.read.clear();
  for (const auto& a : v.articles)
    v.read.push_back(seen != feed_seen_.end() && seen->second.count(a.id) > 0);
  if (auto it = feed_errors_.find(url); it != feed_errors_.end()) v.error = it->second;
  v.loading = feed_busy_.count(url) > 0;
  return v;
}

}  // namespace shoal::daemon
