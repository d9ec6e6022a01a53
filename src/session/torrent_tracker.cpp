// A torrent's tracker announces (BEP 3, BEP 12 tiers, BEP 52 second swarm).
#include "session/torrent.hpp"

#include <algorithm>

#include "dht/krpc.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "tracker/client.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace shoal {

using namespace boost::asio::experimental::awaitable_operators;
using dht::is_local_address;

asio::awaitable<bool> torrent::announce_once(int ev, bool stopping) {
  tracker::announce_request req;
  req.info_hash = wire_hash_;
  req.peer_id = session_.id();
  req.port = session_.port();
  req.uploaded = total_uploaded();
  req.downloaded = total_downloaded();
  req.left = bytes_left();
  req.ev = static_cast<tracker::event>(ev);
  req.key = tracker_key_;
  req.numwant = stopping ? 0 : 50;
  tracker::client_options opt;
  opt.proxy = session_.settings().proxy;
  opt.bind_address = session_.settings().outgoing_address;
  opt.local = session_.settings().local;
  opt.cache = session_.tracker_cache();
  if (stopping) {
    opt.http_timeout = std::chrono::seconds(3);
    opt.udp_attempts = 1;
    opt.udp_base_timeout = std::chrono::milliseconds(2000);
  }
  if (stopping) {
    // Leaving: tell only the tracker that last answered, and give it three seconds in all
    // (name resolution included), so that dead trackers cannot hold up shutdown.
    if (last_tracker_.empty()) co_return false;
    asio::steady_timer limit(session_.io());
    limit.expires_after(std::chrono::seconds(3));
    const std::string url = last_tracker_;
    co_await (tracker::announce(session_.io(), url, req, opt) || limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (v2_wire_hash_) {
      req.info_hash = *v2_wire_hash_;
      limit.expires_after(std::chrono::seconds(1));
      co_await (tracker::announce(session_.io(), url, req, opt) ||
                limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    co_return true;
  }
  std::string last_error;
  const auto unix_now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // BEP 12: tiers in order, trackers in a tier in order; the first to answer moves up.
  // By index, re-checked after every wait: a duplicate add may append tiers meanwhile.
  for (std::size_t ti = 0; ti < tiers_.size(); ++ti) {
    for (std::size_t i = 0; ti < tiers_.size() && i < tiers_[ti].size(); ++i) {
      const std::string url = tiers_[ti][i];
      auto r = co_await tracker::announce(session_.io(), url, req, opt);
      if (!r) {
        last_error = r.err().message();
        auto& ts = tracker_states_[url];
        ts.last_announce = unix_now();
        ts.last_ok = false;
        ts.last_result = last_error;
        ts.next_announce = 0;
        continue;
      }
      if (ti < tiers_.size() && i < tiers_[ti].size() && tiers_[ti][i] == url) {
        auto& tier = tiers_[ti];
        std::rotate(tier.begin(), tier.begin() + static_cast<std::ptrdiff_t>(i),
                    tier.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      }
      // A hybrid is announced in its v2 swarm too (BEP 52), to the tracker that answered.
      auto peers = r->peers;
      if (v2_wire_hash_) {
        auto req2 = req;
        req2.info_hash = *v2_wire_hash_;
        auto r2 = co_await tracker::announce(session_.io(), url, req2, opt);
        if (r2) peers.insert(peers.end(), r2->peers.begin(), r2->peers.end());
      }
      std::size_t added = 0;
      for (const auto& ep : peers) {
        if (session_.is_self(ep)) continue;
        if (session_.settings().local && !is_local_address(ep.address())) continue;
        add_peer(ep);
        ++added;
      }
      // The tracker's interval between regular announces; its `min interval` (if any) for the
      // ones asked for sooner (reannounce()). `completed` and `stopped` go at once regardless.
      next_announce_ = std::chrono::seconds(std::max(r->interval, r->min_interval.value_or(0)));
      min_next_announce_ = std::chrono::steady_clock::now() + std::chrono::seconds(r->min_interval.value_or(0));
      auto& ts = tracker_states_[url];
      ts.last_announce = unix_now();
      ts.last_ok = true;
      ts.last_result = r->warning.empty() ? "Success" : r->warning;
      ts.last_peers = static_cast<std::uint32_t>(added);
      ts.seeders = r->complete ? static_cast<std::int64_t>(*r->complete) : -1;
      ts.leechers = r->incomplete ? static_cast<std::int64_t>(*r->incomplete) : -1;
      ts.next_announce = ts.last_announce + next_announce_.count();
      last_tracker_ = url;
      const std::string shown = tracker::redact_url(url);
      tracker_message_ =
          shown + ": " + std::to_string(added) + " peers" + (r->warning.empty() ? "" : " (" + r->warning + ")");
      tracker_failed_ = false;
      if (session_.settings().log) log("tracker " + tracker_message_);
      post_event(static_cast<int>(event_kind::tracker_reply), tracker_message_, static_cast<std::uint32_t>(added));
      if (!stopping && active_) connect_more();
      co_return true;
    }
  }
  tracker_message_ = last_error;
  tracker_failed_ = true;
  if (session_.settings().log) log("tracker error: " + last_error);
  post_event(static_cast<int>(event_kind::tracker_reply), "error: " + last_error);
  co_return false;
}

std::vector<tracker_state> torrent::tracker_states() const {
  std::vector<tracker_state> out;
  for (std::size_t t = 0; t < tiers_.size(); ++t) {
    for (const auto& url : tiers_[t]) {
      auto it = tracker_states_.find(url);
      tracker_state s = it == tracker_states_.end() ? tracker_state{} : it->second;
      s.url = url;
      s.tier = static_cast<int>(t);
      if (!active_ || stopping_) s.next_announce = 0;  // a stopped torrent asks nobody
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<std::string> torrent::scrape_due(std::int64_t now, std::chrono::seconds every) {
  // A torrent's trackers are asked together, so one time per torrent says when: nothing
  // is written per tracker until an answer comes (an idle torrent keeps no records).
  std::vector<std::string> due;
  if (tiers_.empty() || now < next_scrape_) return due;
  for (const auto& tier : tiers_)
    due.insert(due.end(), tier.begin(), tier.end());
  next_scrape_ = now + every.count();
  return due;
}

void torrent::on_scrape(const std::string& url, const std::optional<tracker::scrape_entry>& e, const std::string& error,
                        std::int64_t now) {
  bool listed = false;
  for (const auto& tier : tiers_)
    listed = listed || std::find(tier.begin(), tier.end(), url) != tier.end();
  if (!listed) return;  // the tracker was removed meanwhile
  auto& ts = tracker_states_[url];
  ts.last_scrape = now;
  ts.next_scrape = next_scrape_;
  ts.scrape_ok = e.has_value();
  ts.scrape_result = e ? "" : error.empty() ? "the tracker does not list this torrent" : error;
  if (!e) return;
  ts.seeders = e->complete;
  ts.leechers = e->incomplete;
  ts.downloaded = e->downloaded;
}

asio::awaitable<void> torrent::announce_loop(std::shared_ptr<torrent> self, std::uint64_t gen) {
  co_await self->announce_body(gen);
}

asio::awaitable<void> torrent::announce_body(std::uint64_t gen) {
  auto running = [this, gen] { return !stopping_ && state_ != torrent_state::error && run_gen_ == gen; };
  // Announces are spread: thousands of torrents starting at once do not all announce at once.
  const auto slot = session_.next_announce_slot();
  if (slot > std::chrono::steady_clock::now()) {
    announce_timer_.expires_at(slot);
    co_await announce_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  int ev = static_cast<int>(tracker::event::started);
  std::chrono::seconds retry{15};
  while (running()) {
    if (completed_pending_) {
      ev = static_cast<int>(tracker::event::completed);
      completed_pending_ = false;
    }
    const bool ok = co_await announce_once(ev, false);
    if (!running()) co_return;
    std::chrono::seconds wait = next_announce_;
    if (ok) {
      ev = static_cast<int>(tracker::event::none);
      retry = std::chrono::seconds(15);
    } else {
      wait = retry;
      retry = std::min(retry * 2, std::chrono::seconds(1800));
    }
    if (completed_pending_) continue;  // finished while announcing: say so at once
    announce_timer_.expires_after(wait);
    co_await announce_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    // Woken early by reannounce(): not before the last answer's `min interval` has passed.
    while (running() && !completed_pending_ && std::chrono::steady_clock::now() < min_next_announce_) {
      announce_timer_.expires_at(min_next_announce_);
      co_await announce_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
}

}  // namespace shoal
