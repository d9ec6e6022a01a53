// A torrent added from a magnet link: in fetching_metadata, peers from the DHT, the link's
// trackers, x.pe and the given peers are asked for the info dictionary (BEP 9); the first
// copy that matches the link's hashes makes it a torrent like any other.
#include <algorithm>

#include "core/text.hpp"
#include "dht/krpc.hpp"
#include "session/metadata_fetch.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"

namespace shoal {

namespace {
constexpr std::size_t max_found_peers = 200;  // peers found while fetching, kept as candidates
}  // namespace

void torrent::start_metadata_fetch() {
  set_state(torrent_state::fetching_metadata);
  const auto gen = ++fetch_gen_;
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
      if (gen != self->fetch_gen_ || self->stopping_) return;
      if (info) {
        self->on_metadata(std::move(*info));
        return;
      }
      asio::co_spawn(self->session_.io(), metadata_loop(self, gen), asio::detached);
    });
  });
}

asio::awaitable<void> torrent::metadata_loop(std::shared_ptr<torrent> self, std::uint64_t gen) {
  auto& io = self->session_.io();
  const auto& st = self->session_.settings();
  const magnet_link& mag = *self->magnet_;
  auto live = [self, gen] { return gen == self->fetch_gen_ && !self->stopping_; };
  metadata_fetch_params p;
  p.wire_hash = self->wire_hash_;
  p.v1 = mag.info_hash_v1;
  p.v2 = mag.info_hash_v2;
  p.id = self->session_.id();
  p.client_name = st.client_name;
  p.log = st.log;
  p.proxy = st.proxy;
  p.peers = self->given_peers_;
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
    // The caller may have resolved x.pe into the given peers already: ask each peer once.
    if (std::find(p.peers.begin(), p.peers.end(), ep) == p.peers.end()) p.peers.push_back(ep);
  }
  if (self->metadata_timeout_.count() > 0) p.timeout = self->metadata_timeout_;
  // Peers given: ask them only. Otherwise the DHT and the link's trackers look for peers
  // while the fetch runs, and hand them over as they come.
  const bool search = p.peers.empty();
  auto done = std::make_shared<bool>(false);
  auto found = std::make_shared<std::vector<tcp::endpoint>>();
  auto dht = self->session_.dht_node();
  auto dht_dead = std::make_shared<bool>(!dht);
  const bool local = st.local;
  const std::uint16_t own_port = self->session_.port();
  auto wanted = [local, own_port](const tcp::endpoint& ep) {
    if (local && !dht::is_local_address(ep.address())) return false;
    return ep.port() != own_port || !ep.address().is_loopback();
  };
  auto keep = [found, wanted](const tcp::endpoint& ep, std::vector<tcp::endpoint>& incoming) {
    if (!wanted(ep)) return;
    incoming.push_back(ep);
    if (found->size() < max_found_peers && std::find(found->begin(), found->end(), ep) == found->end())
      found->push_back(ep);
  };
  if (search) {
    p.incoming = std::make_shared<std::vector<tcp::endpoint>>();
    if (self->tiers_.empty()) p.finders_done = [dht_dead] { return *dht_dead; };
  }
  const sha1_digest wire_hash = p.wire_hash;
  if (search && dht) {
    asio::co_spawn(
        io,
        [&io, dht, done, wire_hash, dht_dead, keep, incoming = p.incoming, log = p.log]() -> asio::awaitable<void> {
          asio::steady_timer wait(io);
          const bool ready = co_await dht->wait_ready(std::chrono::milliseconds(10000));
          if (!ready) {
            if (log) log("dht: no node answered");
            *dht_dead = true;
            co_return;
          }
          for (int round = 0; !*done && dht->running(); ++round) {
            const dht::node::lookup_options opt;
            // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
            std::function<void(const std::vector<tcp::endpoint>&)> on_peers =
                [keep, incoming, done](const std::vector<tcp::endpoint>& peers) {
                  if (*done) return;
                  for (const auto& ep : peers)
                    keep(ep, *incoming);
                };
            auto n = co_await dht->get_peers(wire_hash, opt, on_peers);
            if (log) log("dht: " + std::to_string(n) + " peers found");
            if (*done) break;
            wait.expires_after(std::chrono::seconds(round < 3 ? 2 : 10));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  if (search && !self->tiers_.empty()) {
    std::vector<std::string> trackers;
    for (const auto& tier : self->tiers_)
      trackers.insert(trackers.end(), tier.begin(), tier.end());
    tracker::announce_request req;
    req.info_hash = wire_hash;
    req.peer_id = p.id;
    req.port = own_port;
    req.left = 1;
    req.ev = tracker::event::started;
    // Quick tries only: a dead UDP tracker must not cost minutes.
    tracker::client_options opt;
    opt.proxy = st.proxy;
    opt.bind_address = st.outgoing_address;
    opt.local = st.local;
    opt.http_timeout = std::chrono::seconds(5);
    opt.udp_attempts = 2;
    opt.udp_base_timeout = std::chrono::milliseconds(2000);
    asio::co_spawn(
        io,
        [&io, done, keep, incoming = p.incoming, trackers, req, opt, log = p.log]() -> asio::awaitable<void> {
          // A tracker may not know any peer yet (a seeder that just started), or only peers
          // that are gone: ask again while the fetch runs, backing off from 2 s to 30 s.
          asio::steady_timer wait(io);
          for (int round = 0; !*done; ++round) {
            for (const auto& url : trackers) {
              auto r = co_await tracker::announce(io, url, req, opt);
              if (*done) co_return;
              if (!r) {
                if (log) log("tracker error: " + r.err().message());
                continue;
              }
              for (const auto& ep : r->peers)
                keep(ep, *incoming);
            }
            wait.expires_after(std::chrono::seconds(std::min(30, 2 << std::min(round, 4))));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  for (;;) {
    auto got = co_await fetch_metadata(io, p);
    if (!live()) break;
    if (got) {
      *done = true;
      for (const auto& ep : *found)
        self->add_peer(ep);
      self->on_metadata(std::move(got).value());
      co_return;
    }
    if (self->metadata_timeout_.count() > 0) {
      *done = true;
      self->fail(got.err().message(), error_kind::metadata);
      co_return;
    }
    // No deadline (a daemon's magnet): keep asking, peers come and go.
    asio::steady_timer wait(io);
    wait.expires_after(std::chrono::seconds(5));
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!live()) break;
  }
  *done = true;
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
