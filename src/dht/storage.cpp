#include "dht/storage.hpp"

#include <algorithm>
#include <random>

namespace shoal::dht {

void storage::announce(const node_id& info_hash, const tcp::endpoint& peer, bool seed, time_point now) {
  auto it = torrents_.find(info_hash);
  if (it == torrents_.end()) {
    if (torrents_.size() >= lim_.max_torrents) {
      // The torrent announced least recently makes room.
      auto oldest = std::min_element(torrents_.begin(), torrents_.end(), [](const auto& a, const auto& b) {
        return a.second.last_announce < b.second.last_announce;
      });
      torrents_.erase(oldest);
    }
    it = torrents_.emplace(info_hash, torrent_entry{}).first;
  }
  auto& t = it->second;
  t.last_announce = now;
  // One entry per address (BEP 33), so one host cannot crowd out a swarm with many ports;
  // on loopback, where every test peer lives, one per address and port.
  for (auto& p : t.peers) {
    if (p.ep.address() == peer.address() && (p.ep.port() == peer.port() || !peer.address().is_loopback())) {
      p.ep = peer;
      p.seed = seed;
      p.added = now;
      return;
    }
  }
  if (t.peers.size() >= lim_.max_peers_per_torrent) {
    auto oldest = std::min_element(t.peers.begin(), t.peers.end(),
                                   [](const peer_entry& a, const peer_entry& b) { return a.added < b.added; });
    *oldest = peer_entry{peer, seed, now};
    return;
  }
  t.peers.push_back(peer_entry{peer, seed, now});
}

std::vector<tcp::endpoint> storage::peers(const node_id& info_hash, bool v6, bool noseed) const {
  std::vector<tcp::endpoint> out;
  auto it = torrents_.find(info_hash);
  if (it == torrents_.end()) return out;
  for (const auto& p : it->second.peers) {
    if (p.ep.address().is_v6() == v6 && !(noseed && p.seed)) out.push_back(p.ep);
  }
  if (out.size() > lim_.max_values_per_reply) {
    std::shuffle(out.begin(), out.end(), random_engine());
    out.resize(lim_.max_values_per_reply);
  }
  return out;
}

std::pair<std::string, std::string> storage::scrape(const node_id& info_hash) const {
  std::string seeds(256, '\0'), peers(256, '\0');
  auto it = torrents_.find(info_hash);
  if (it != torrents_.end()) {
    for (const auto& p : it->second.peers)
      bloom_insert(p.seed ? seeds : peers, p.ep.address());
  }
  return {seeds, peers};
}

std::vector<node_id> storage::sample(std::size_t n) const {
  std::vector<node_id> all;
  all.reserve(torrents_.size());
  for (const auto& [h, t] : torrents_)
    all.push_back(h);
  std::shuffle(all.begin(), all.end(), random_engine());
  if (all.size() > n) all.resize(n);
  return all;
}

const stored_item* storage::item(const node_id& target) const {
  auto it = items_.find(target);
  return it == items_.end() ? nullptr : &it->second;
}

void storage::put_item(const node_id& target, stored_item it, time_point now) {
  it.last_put = now;
  auto found = items_.find(target);
  if (found != items_.end()) {
    found->second = std::move(it);
    return;
  }
  if (items_.size() >= lim_.max_items) {
    auto oldest = std::min_element(items_.begin(), items_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last_put < b.second.last_put; });
    items_.erase(oldest);
  }
  items_.emplace(target, std::move(it));
}

void storage::expire(time_point now) {
  for (auto it = torrents_.begin(); it != torrents_.end();) {
    std::erase_if(it->second.peers, [&](const peer_entry& p) { return now - p.added > lim_.peer_ttl; });
    it = it->second.peers.empty() ? torrents_.erase(it) : std::next(it);
  }
  std::erase_if(items_, [&](const auto& kv) { return now - kv.second.last_put > lim_.item_ttl; });
}

std::size_t storage::peer_count() const {
  std::size_t n = 0;
  for (const auto& [h, t] : torrents_)
    n += t.peers.size();
  return n;
}

}  // namespace shoal::dht
