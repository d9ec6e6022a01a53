// A torrent added from a magnet link: in fetching_metadata, peers from the DHT, the link's
// trackers, x.pe and the given peers are asked for the info dictionary (BEP 9); the first
// copy that matches the link's hashes makes it a torrent like any other.
#include <algorithm>
#include <cctype>

#include "core/bencode.hpp"
#include "core/text.hpp"
#include "dht/krpc.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"

namespace shoal {

namespace {
using clock = std::chrono::steady_clock;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}
}  // namespace

std::string torrent_from_metadata(const std::string& info, const std::vector<std::string>& trackers) {
  std::string t = "d";
  if (!trackers.empty()) {
    t += "8:announce" + bencode::encode(trackers.front());
    bencode::list tiers;
    for (const auto& tr : trackers)
      tiers.emplace_back(bencode::list{tr});
    t += "13:announce-list" + bencode::encode(tiers);
  }
  t += "4:info" + info + "e";
  return t;
}

void torrent::start_metadata_fetch() {
  set_state(torrent_state::fetching_metadata);
  const auto gen = ++fetch_gen_;
  if (!md_budget_) md_budget_ = std::make_shared<shoal::metadata_budget>();
  md_started_ = clock::now();
  md_last_error_.clear();
  md_finders_done_ = false;
  md_xs_pending_ = false;
  auto self = shared_from_this();
  if (metadata_file_.empty()) {
    asio::co_spawn(session_.io(), metadata_loop(self, gen), asio::detached);
    return;
  }
  // Metadata kept from an earlier run: no need to ask anyone (read on the disk pool).
  session_.disk_pool().post([self, gen, file = metadata_file_] {
    auto c = load_metainfo(file);
    std::optional<std::string> info;
    const auto& m = *self->magnet_;
    if (c && c->info_hash_v1 == m.info_hash_v1 && (!m.info_hash_v2 || c->info_hash_v2 == m.info_hash_v2))
      info = c->info_bytes;
    asio::post(self->session_.io(), [self, gen, info = std::move(info)]() mutable {
      if (gen != self->fetch_gen_ || !self->metadata_phase()) return;
      if (info) {
        ++self->fetch_gen_;
        self->close_metadata_peers("metadata read from disk: dialling again as a full peer", true);
        self->on_metadata(std::move(*info));
        return;
      }
      asio::co_spawn(self->session_.io(), metadata_loop(self, gen), asio::detached);
    });
  });
}

asio::awaitable<void> torrent::metadata_loop(std::shared_ptr<torrent> self, std::uint64_t gen) {
  // Finds peers (the given ones and x.pe, or else the DHT and the link's trackers) and
  // makes them candidates. The session's own connections dial them (encryption policy,
  // bind address, proxy, uTP as for any torrent) and ask each for the info dictionary;
  // metadata_tick gives up at the deadline.
  auto& io = self->session_.io();
  const auto& st = self->session_.settings();
  const magnet_link& mag = *self->magnet_;
  auto live = [self, gen] { return gen == self->fetch_gen_ && self->metadata_phase(); };
  bool given = !self->given_peers_.empty();
  for (const auto& xpe : mag.peers) {
    // x.pe: literal addresses only (a name would need a lookup the link's owner chose).
    auto colon = xpe.rfind(':');
    if (colon == std::string::npos) continue;
    std::string host = xpe.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    unsigned long port = 0;
    try {
      port = std::stoul(xpe.substr(colon + 1));
    } catch (const std::exception&) {
      continue;
    }
    if (ec || port == 0 || port > 65535) continue;
    if (st.local && !dht::is_local_address(addr)) continue;
    const tcp::endpoint ep(addr, static_cast<std::uint16_t>(port));
    self->add_peer(ep);
    self->pinned_->insert(ep);
    given = true;
  }
  // Peers given: ask them only. Otherwise the DHT and the link's trackers look for peers
  // while the fetch runs.
  const bool local = st.local;
  const std::uint16_t own_port = self->session_.port();
  auto keep = [self, gen, local, own_port](const tcp::endpoint& ep) {
    if (gen != self->fetch_gen_ || !self->metadata_phase()) return;
    if (local && !dht::is_local_address(ep.address())) return;
    if (ep.port() == own_port && ep.address().is_loopback()) return;
    self->add_peer(ep);
  };
  auto dht = self->session_.dht_node();
  const bool trackers = !self->tiers_.empty();
  if (given || (!dht && !trackers)) self->md_finders_done_ = true;
  const sha1_digest wire_hash = self->wire_hash_;
  auto log = st.log;
  if (!given && dht) {
    asio::co_spawn(
        io,
        [&io, dht, self, live, wire_hash, keep, trackers, log]() -> asio::awaitable<void> {
          asio::steady_timer wait(io);
          const bool ready = co_await dht->wait_ready(std::chrono::milliseconds(10000));
          if (!ready) {
            if (log) log("dht: no node answered");
            if (!trackers) self->md_finders_done_ = true;
            co_return;
          }
          for (int round = 0; live() && dht->running(); ++round) {
            const dht::node::lookup_options opt;
            // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
            std::function<void(const std::vector<tcp::endpoint>&)> on_peers =
                [keep](const std::vector<tcp::endpoint>& peers) {
                  for (const auto& ep : peers)
                    keep(ep);
                };
            auto n = co_await dht->get_peers(wire_hash, opt, on_peers);
            if (log) log("dht: " + std::to_string(n) + " peers found");
            if (!live()) break;
            self->connect_more();
            wait.expires_after(std::chrono::seconds(round < 3 ? 2 : 10));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  if (!given && trackers) {
    std::vector<std::string> urls;
    for (const auto& tier : self->tiers_)
      urls.insert(urls.end(), tier.begin(), tier.end());
    tracker::announce_request req;
    req.info_hash = wire_hash;
    req.peer_id = self->session_.id();
    req.port = own_port;
    req.left = 1;
    req.ev = tracker::event::started;
    // Quick tries only: a dead UDP tracker must not cost minutes.
    tracker::client_options opt;
    opt.proxy = st.proxy;
    opt.bind_address = st.outgoing_address;
    opt.local = st.local;
    opt.cache = self->session_.tracker_cache();
    opt.http_timeout = std::chrono::seconds(5);
    opt.udp_attempts = 2;
    opt.udp_base_timeout = std::chrono::milliseconds(2000);
    asio::co_spawn(
        io,
        [&io, self, live, keep, urls, req, opt, log]() -> asio::awaitable<void> {
          // A tracker may not know any peer yet (a seeder that just started), or only peers
          // that are gone: ask again while the fetch runs, backing off from 2 s to 30 s.
          asio::steady_timer wait(io);
          for (int round = 0; live(); ++round) {
            for (const auto& url : urls) {
              auto r = co_await tracker::announce(io, url, req, opt);
              if (!live()) co_return;
              if (!r) {
                if (log) log("tracker error: " + tracker::redact_url(url) + ": " + r.err().message());
                continue;
              }
              for (const auto& ep : r->peers)
                keep(ep);
              self->connect_more();
            }
            wait.expires_after(std::chrono::seconds(std::min(30, 2 << std::min(round, 4))));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  if (!mag.exact_sources.empty()) {
    const bool alone = !given && !dht && !trackers;
    self->md_xs_pending_ = true;
    asio::co_spawn(io, exact_source_fetch(self, gen, mag.exact_sources, alone), asio::detached);
  }
  self->connect_more();
  co_return;
}

asio::awaitable<void> torrent::exact_source_fetch(std::shared_ptr<torrent> self, std::uint64_t gen,
                                                  std::vector<std::string> urls, bool at_once) {
  // xs: the .torrent's own URL. Peers get the first chance (exact_source_delay), unless the
  // link gives no other way to find any; what the URL serves is taken only if its info
  // dictionary hashes to the link's info-hashes.
  auto& io = self->session_.io();
  auto live = [self, gen] { return gen == self->fetch_gen_ && self->metadata_phase(); };
  const auto& st = self->session_.settings();
  auto log = st.log;
  tracker::client_options opt;
  opt.proxy = st.proxy;
  opt.bind_address = st.outgoing_address;
  opt.local = st.local;
  opt.cache = self->session_.tracker_cache();
  opt.http_timeout = std::chrono::seconds(15);
  if (!at_once) {
    asio::steady_timer wait(io);
    wait.expires_after(exact_source_delay);
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  for (const auto& url : urls) {
    if (!live()) co_return;
    const std::string shown = tracker::redact_url(url);
    if (!starts_with_ci(url, "http://") && !starts_with_ci(url, "https://")) {
      self->md_last_error_ = "xs " + shown + ": not an http(s) URL";
      continue;
    }
    if (log) log("metadata: fetching the .torrent from its exact source " + shown);
    auto body = co_await tracker::http_get(io, url, max_torrent_size, opt);
    if (!live()) co_return;
    if (!body) {
      self->md_last_error_ = "xs " + shown + ": " + body.err().message();
      if (log) log("metadata: " + self->md_last_error_);
      continue;
    }
    auto mi = parse_metainfo(*body);
    const magnet_link& mag = *self->magnet_;
    if (!mi) {
      self->md_last_error_ = "xs " + shown + ": " + mi.err().message();
    } else if ((mag.info_hash_v1 && mi->info_hash_v1 != mag.info_hash_v1) ||
               (mag.info_hash_v2 && mi->info_hash_v2 != mag.info_hash_v2)) {
      self->md_last_error_ = "xs " + shown + ": refused, its info dictionary does not hash to the link's info-hash";
    } else {
      // The .torrent's web seeds join the link's (a published file downloads from its site).
      for (const auto& w : mi->web_seeds) {
        auto& urls_now = self->web_seed_urls_;
        if (std::find(urls_now.begin(), urls_now.end(), w) == urls_now.end()) urls_now.push_back(w);
      }
      if (log) log("metadata: taken from the exact source " + shown);
      self->md_xs_pending_ = false;
      ++self->fetch_gen_;
      self->close_metadata_peers("metadata from the exact source: dialling again as a full peer", true);
      self->on_metadata(std::move(mi->info_bytes));
      co_return;
    }
    if (log) log("metadata: " + self->md_last_error_);
  }
  if (gen == self->fetch_gen_) self->md_xs_pending_ = false;
}

void torrent::metadata_tick() {
  connect_more();
  if (metadata_timeout_.count() == 0) return;  // a daemon's magnet: keep asking, peers come and go
  const bool nobody =
      md_finders_done_ && !md_xs_pending_ && candidates_.view().empty() && peers_.empty() && connecting_.view().empty();
  if (!nobody && clock::now() - md_started_ < metadata_timeout_) return;
  ++fetch_gen_;
  close_metadata_peers("metadata: giving up", false);
  fail("could not get the metadata from any peer" + (md_last_error_.empty() ? "" : " (last: " + md_last_error_ + ")"),
       error_kind::metadata);
}

void torrent::metadata_peer_failed(const tcp::endpoint& ep, const std::string& why) {
  md_last_error_ = ep.address().to_string() + ":" + std::to_string(ep.port()) + ": " + why;
}

void torrent::close_metadata_peers(const std::string& why, bool redial) {
  for (auto& p : std::vector(peers_)) {
    if (!p->metadata_only()) continue;
    auto at = p->listen_endpoint();
    p->close(why);
    if (redial && at && !is_banned(*at)) {
      failed_->erase(*at);
      add_peer(*at);
    }
  }
}

bool torrent::take_metadata(const metadata_copy& copy) {
  if (!metadata_phase()) return true;  // another copy made it first
  if (!copy.matches(magnet_->info_hash_v1, magnet_->info_hash_v2)) return false;
  ++fetch_gen_;
  close_metadata_peers("metadata received: dialling again as a full peer", true);
  on_metadata(copy.join());
  return true;
}

void torrent::on_metadata(std::string info_bytes) {
  std::vector<std::string> trackers;
  for (const auto& tier : tiers_)
    trackers.insert(trackers.end(), tier.begin(), tier.end());
  std::string bytes = torrent_from_metadata(info_bytes, trackers);
  auto mi = parse_metainfo(bytes);
  if (!mi) {
    fail("metadata: " + mi.err().message(), error_kind::metadata);
    return;
  }
  info_ = std::move(mi).value();
  for (const auto& w : info_.web_seeds) {
    if (std::find(web_seed_urls_.begin(), web_seed_urls_.end(), w) == web_seed_urls_.end()) web_seed_urls_.push_back(w);
  }
  if (info_.has_v1() && info_.has_v2() && !v2_wire_hash_) {
    sha1_digest d{};
    std::copy_n(info_.info_hash_v2->begin(), 20, d.begin());
    v2_wire_hash_ = d;
    session_.add_alias(d, wire_hash_);
  }
  // BEP 53 `so`: indices count the files a user sees (no pad files), from 0.
  if (magnet_ && !magnet_->select_only.empty() && file_prio_.empty()) {
    std::vector<std::size_t> real;
    for (std::size_t i = 0; i < info_.files.size(); ++i)
      if (!info_.files[i].pad) real.push_back(i);
    file_prio_.assign(info_.files.size(), 0);
    for (auto [lo, hi] : magnet_->select_only) {
      for (std::uint64_t i = lo; i <= hi && i < real.size(); ++i)
        file_prio_[real[i]] = 1;
    }
  }
  if (!metadata_file_.empty()) {
    // Kept for the next start; losing it only costs a refetch.
    session_.disk_pool().post([file = metadata_file_, bytes] {
      std::error_code ec;
      std::filesystem::create_directories(file.parent_path(), ec);
      if (!ec) (void)write_file_atomically(file, bytes);
    });
  }
  init_storage();
  post_event(static_cast<int>(event_kind::metadata_received), info_.name);
  start();
}

}  // namespace shoal
