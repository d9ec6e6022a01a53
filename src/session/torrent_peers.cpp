// A torrent's peers: candidates, dialling, attaching and detaching, peer exchange, bans
// and the choker.
#include "session/torrent.hpp"

#include <algorithm>

#include "dht/krpc.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"

namespace shoal {

namespace {
using clock = std::chrono::steady_clock;
constexpr auto first_retry = std::chrono::seconds(2);
constexpr auto max_retry = std::chrono::seconds(60);
constexpr std::size_t max_candidates = 2000;  // peers known but not connected
constexpr std::size_t max_scan = 256;         // candidates connect_more looks at per call
constexpr std::uint32_t max_failures = 5;     // failed connection attempts before a peer is forgotten
constexpr int optimistic_every_ticks = 30;
// --local: only loopback and private-range addresses (the test networks), never the internet.
using dht::is_local_address;
}  // namespace

void torrent::add_peer(const tcp::endpoint& ep) {
  // Bounded: trackers, the DHT, LSD and PEX together cannot grow it past max_candidates.
  if (candidates_->size() >= max_candidates || session_.is_self(ep) || is_banned(ep)) return;
  candidates_->insert(ep);
}

bool torrent::is_banned(const tcp::endpoint& ep) const {
  return banned_->count(ep) != 0 || banned_ips_->count(ep.address()) != 0;
}

void torrent::connect_more() {
  if (!(active_ || metadata_phase()) || stopping_ || state_ == torrent_state::error) return;
  const auto now = clock::now();
  std::size_t active = peers_.size() + connecting_.view().size();
  if (active >= session_.settings().max_peers_per_torrent || session_.connections_full()) return;
  if (candidates_.view().empty()) return;
  // Connected already, either way round (an incoming peer is known by its listen port).
  std::set<tcp::endpoint> connected;
  for (auto& p : peers_) {
    connected.insert(p->endpoint());
    if (auto l = p->listen_endpoint()) connected.insert(*l);
  }
  // At most max_scan candidates a call, going on from where the last call stopped: with
  // 2,000 candidates that mostly wait out a backoff, a call costs what it does with few.
  const std::size_t scan = std::min(candidates_.view().size(), max_scan);
  auto it = candidates_->upper_bound(scan_from_);
  for (std::size_t seen = 0; seen < scan; ++seen, ++it) {
    if (active >= session_.settings().max_peers_per_torrent || session_.connections_full()) break;
    if (it == candidates_->end()) it = candidates_->begin();
    const tcp::endpoint ep = *it;
    scan_from_ = ep;
    if (connecting_.view().count(ep) || connected.count(ep) || is_banned(ep) || session_.is_self(ep)) continue;
    auto f = failed_->find(ep);
    if (f != failed_->end()) {
      const auto backoff = std::min<std::chrono::steady_clock::duration>(
          first_retry * (1u << std::min<std::uint32_t>(f->second.count - 1, 5)), max_retry);
      if (now - f->second.when < backoff) continue;
    }
    connecting_->insert(ep);
    ++active;
    if (session_.settings().log) {
      log("connecting to " + ep.address().to_string() + ":" + std::to_string(ep.port()));
    }
    auto p = std::make_shared<peer_connection>(session_, nullptr, true);
    auto self = shared_from_this();
    p->start_outgoing(self, ep);
    // Watch the attempt: if it closes before attaching, remember the failure.
    auto watch = std::make_shared<asio::steady_timer>(session_.io());
    auto check = std::make_shared<std::function<void()>>();
    std::weak_ptr<peer_connection> wp = p;
    // The function holds itself only weakly: the pending wait owns it, so a session that
    // stops mid-attempt frees it with the wait (a strong self-reference leaked it).
    std::weak_ptr<std::function<void()>> weak_check = check;
    *check = [self, wp, ep, watch, weak_check] {
      auto peer = wp.lock();
      bool attached = false;
      for (auto& q : self->peers_)
        attached = attached || q.get() == peer.get();
      if (peer && !peer->closed() && !attached) {
        watch->expires_after(std::chrono::milliseconds(100));
        watch->async_wait([c = weak_check.lock()](boost::system::error_code) {
          if (c) (*c)();
        });
        return;
      }
      self->connecting_->erase(ep);
      if (!attached) {
        auto& f = self->failed_[ep];
        f.when = clock::now();
        // Contacts from peers that never answer are forgotten, so they cannot crowd out others.
        if (++f.count >= max_failures && self->pinned_->count(ep) == 0) {
          self->candidates_->erase(ep);
          self->failed_->erase(ep);
        }
      } else {
        self->failed_->erase(ep);
      }
    };
    watch->expires_after(std::chrono::milliseconds(50));
    watch->async_wait([check](boost::system::error_code) {
      if (*check) (*check)();
    });
  }
}

bool torrent::attach(const std::shared_ptr<peer_connection>& p) {
  if (!(active_ || metadata_phase()) || stopping_ || state_ == torrent_state::error) return false;
  // Fetching metadata: a connection that handshaked before the metadata came is not one.
  if (p->metadata_only() != metadata_phase()) return false;
  if (is_banned(p->endpoint())) return false;
  // Per-IP limit; on loopback every peer shares the address, so count address+port there.
  const auto& ep = p->endpoint();
  std::uint32_t same = 0;
  for (auto& q : peers_) {
    if (ep.address().is_loopback() ? q->endpoint() == ep : q->endpoint().address() == ep.address()) ++same;
  }
  if (same >= session_.settings().max_peers_per_ip) return false;
  if (peers_.size() >= session_.settings().max_peers_per_torrent) {
    // Full: an idle connection (handshaked long ago, nothing exchanged, no interest) makes
    // room, so connections that only handshake cannot keep real peers out.
    const auto now = clock::now();
    auto idle = std::find_if(peers_.begin(), peers_.end(),
                             [&](auto& q) { return q->evictable(now, session_.settings().idle_eviction); });
    if (idle == peers_.end()) return false;
    auto victim = *idle;
    victim->close("evicted for a new peer: idle");
    if (peers_.size() >= session_.settings().max_peers_per_torrent) return false;
  }
  // Session-wide: past max_connections only in place of an idle connection.
  const auto cap = session_.settings().max_connections;
  if (cap > 0 && session_.limits().peers >= cap && !session_.make_room(session_.settings().idle_eviction)) return false;
  peers_.push_back(p);
  ++session_.limits().peers;
  return true;
}

void torrent::penalize(const tcp::endpoint& ep) {
  auto& f = failed_[ep];
  f.when = clock::now();
  f.count = std::min<std::uint32_t>(f.count + 1, max_failures - 1);
}

void torrent::detach(peer_connection* p) {
  auto it = std::find_if(peers_.begin(), peers_.end(), [p](auto& q) { return q.get() == p; });
  if (it == peers_.end()) return;
  auto keep = *it;  // stay alive until we are done with it
  peers_.erase(it);
  --session_.limits().peers;
  if (picker_ && !p->metadata_only()) picker_->remove_peer(p->has(), p->counted_as_seed());
  if (optimistic_ == p) optimistic_ = nullptr;
  // Through get(): a peer leaving allocates none of these tables.
  if (auto* layers = missing_layers_.get()) {
    for (auto& [root, lf] : *layers) {
      for (auto& a : lf.asked) {
        if (a == p) a = nullptr;
      }
    }
  }
  if (auto* checks = leaf_checks_.get()) {
    for (auto& [piece, lc] : *checks) {
      if (lc.asked == p) lc.asked = nullptr;
    }
  }
  if (auto* bufs = buffers_.get()) {
    for (auto& [piece, buf] : *bufs) {
      for (auto& s : buf->senders) {
        if (s == p) s = nullptr;
      }
    }
  }
  // Its unchoke slot is free now.
  if (p->peer_interested() && !p->am_choking())
    asio::post(session_.io(), [self = shared_from_this()] { self->run_choker(); });
}

void torrent::on_have(peer_connection* p, std::uint32_t piece) {
  if (!p->counted_as_seed()) picker_->add_have(piece);
  p->update_interest();
}

void torrent::on_pex(peer_connection* from, const wire::pex_message& m) {
  if (info_.is_private) return;
  std::size_t added = 0;
  std::set<asio::ip::address> ips;  // one contact per address and message, except on loopback
  for (const auto& [ep, flags] : m.added) {
    if (candidates_.view().size() >= max_candidates) break;
    if (!ep.address().is_loopback() && !ips.insert(ep.address()).second) continue;
    if (session_.settings().local && !is_local_address(ep.address())) continue;
    // A seed gains nothing from contacts that are seeds too.
    if (state_ == torrent_state::seeding && (flags & wire::pex_seed)) continue;
    if (session_.is_self(ep) || is_banned(ep) || candidates_.view().count(ep)) continue;
    candidates_->insert(ep);
    ++added;
  }
  if (added && session_.settings().log) {
    const auto& ep = from->endpoint();
    log("pex: " + std::to_string(added) + " new peers from " + ep.address().to_string() + ":" +
        std::to_string(ep.port()));
  }
  if (added) connect_more();
}

std::vector<std::pair<tcp::endpoint, std::uint8_t>> torrent::pex_contacts(const peer_connection* except) const {
  std::vector<std::pair<tcp::endpoint, std::uint8_t>> out;
  for (const auto& p : peers_) {
    if (p.get() == except || p->closed()) continue;
    auto ep = p->listen_endpoint();
    if (!ep) continue;
    std::uint8_t flags = 0;
    if (p->is_seed() || p->upload_only()) flags |= wire::pex_seed;
    if (p->is_outgoing()) flags |= wire::pex_reachable;
    out.emplace_back(*ep, flags);
  }
  return out;
}

void torrent::on_peer_interest_changed(peer_connection* p) {
  if (p->peer_interested()) {
    // Unchoke at once if a slot is free, rather than waiting for the next round.
    std::uint32_t unchoked = 0;
    for (auto& q : peers_)
      unchoked += q->am_choking() ? 0 : 1;
    if (unchoked < upload_slots() + 1) p->choke(false);
  } else if (!p->am_choking()) {
    p->choke(true);
    run_choker();
  }
}

std::uint32_t torrent::upload_slots() const {
  const auto& st = session_.settings();
  if (st.upload_slots) return st.upload_slots;
  if (st.max_upload_rate) {
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(st.max_upload_rate / (64 * 1024), 2, 20));
  }
  return 8;
}

void torrent::run_choker() {
  if (stopping_) return;
  std::vector<peer_connection*> interested;
  for (auto& p : peers_) {
    if (p->peer_interested() && !p->closed()) interested.push_back(p.get());
  }
  const std::uint32_t slots = upload_slots();
  if (state_ == torrent_state::seeding) {
    // Seeding: share fairly; those that have received least from us go first.
    std::sort(interested.begin(), interested.end(),
              [](peer_connection* a, peer_connection* b) { return a->uploaded_total() < b->uploaded_total(); });
  } else {
    // Downloading: tit-for-tat, the peers that give us most.
    std::sort(interested.begin(), interested.end(),
              [](peer_connection* a, peer_connection* b) { return a->download_rate() > b->download_rate(); });
  }
  // Rotate the optimistic unchoke every 30 s to the one waiting longest.
  bool optimistic_alive = false;
  for (auto* p : interested)
    optimistic_alive = optimistic_alive || p == optimistic_;
  if (!optimistic_alive || tick_count_ % optimistic_every_ticks == 0) {
    optimistic_ = nullptr;
    for (std::size_t i = slots; i < interested.size(); ++i) {
      if (!optimistic_ || interested[i]->last_unchoked() < optimistic_->last_unchoked()) optimistic_ = interested[i];
    }
  }
  for (auto& p : peers_) {
    const auto it = std::find(interested.begin(), interested.end(), p.get());
    const bool regular = it != interested.end() && static_cast<std::uint32_t>(it - interested.begin()) < slots;
    p->choke(!(regular || p.get() == optimistic_));
  }
}

void torrent::ban(peer_connection* p, const std::string& why) {
  banned_->insert(p->endpoint());
  if (!p->endpoint().address().is_loopback()) banned_ips_->insert(p->endpoint().address());
  candidates_->erase(p->endpoint());
  p->close("banned: " + why);
}

}  // namespace shoal
