// The session's tracker scrapes (BEP 48 over HTTP, BEP 15 over UDP): every torrent's
// trackers every scrape_interval, many torrents a request, one request at a time.
#include <algorithm>

#include "session/session.hpp"
#include "tracker/announce.hpp"
#include "tracker/client.hpp"

namespace shoal {

void session::scrape_tick() {
  if (scraping_ || settings_.scrape_interval.count() <= 0) return;
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::map<std::string, std::vector<std::pair<sha1_digest, torrent_id>>> due;
  for (const auto& [id, t] : by_id_) {
    if (t->ended()) continue;
    for (auto& url : t->scrape_due(now, settings_.scrape_interval))
      due[url].emplace_back(t->wire_hash(), id);
  }
  if (due.empty()) return;
  scraping_ = true;
  asio::co_spawn(io_, scrape_round(std::move(due)), asio::detached);
}

asio::awaitable<void> session::scrape_round(
    std::map<std::string, std::vector<std::pair<sha1_digest, torrent_id>>> due) {
  auto alive = alive_;
  // However the round ends (an exception included), the next one may start.
  struct done {
    std::shared_ptr<bool> alive;
    bool& flag;
    ~done() {
      if (*alive) flag = false;
    }
  } guard{alive, scraping_};
  tracker::client_options opt;
  opt.proxy = settings_.proxy;
  opt.bind_address = settings_.outgoing_address;
  opt.local = settings_.local;
  opt.cache = tracker_cache_;
  // Quick tries: a dead tracker must not hold up the others' scrapes for minutes.
  opt.http_timeout = std::chrono::seconds(10);
  opt.udp_attempts = 2;
  opt.udp_base_timeout = std::chrono::milliseconds(5000);
  const auto unix_now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  for (const auto& [url, list] : due) {
    std::vector<sha1_digest> all;
    for (const auto& e : list)
      all.push_back(e.first);
    // After a failed request the tracker's other batches get the same answer unsent: one
    // dead tracker costs one timeout a round, not one per batch.
    std::string failed;
    for (const auto& [at, end] : tracker::scrape_batches(url, all)) {
      if (!*alive || stopping_) co_return;
      const std::size_t n = end - at;
      std::optional<std::vector<std::optional<tracker::scrape_entry>>> got;
      if (failed.empty()) {
        std::vector<sha1_digest> hashes(all.begin() + static_cast<std::ptrdiff_t>(at),
                                        all.begin() + static_cast<std::ptrdiff_t>(end));
        ++scrape_requests_;
        try {
          auto r = co_await tracker::scrape(io_, url, hashes, opt);
          if (r) {
            got = std::move(*r);
          } else {
            failed = r.err().message();
          }
        } catch (const std::exception& e) {  // out of descriptors for a socket, say
          failed = tracker::redact_url(url) + ": " + e.what();
        }
        if (!*alive) co_return;
        if (!failed.empty() && settings_.log) settings_.log("scrape: " + failed);
      }
      const std::int64_t now = unix_now();
      for (std::size_t i = 0; i < n; ++i) {
        auto it = by_id_.find(list[at + i].second);
        if (it == by_id_.end()) continue;
        it->second->on_scrape(url, got ? (*got)[i] : std::nullopt, failed, now);
      }
    }
  }
}

}  // namespace shoal
