// What a DHT node stores for others: peers announced per info-hash (BEP 5, with BEP 33 seed
// flags) and BEP 44 items. Every collection is bounded; the oldest entry makes room.
// Pure: time is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dht/krpc.hpp"

namespace shoal::dht {

struct storage_limits {
  std::size_t max_torrents = 2000;
  std::size_t max_peers_per_torrent = 500;
  std::size_t max_items = 700;
  std::size_t max_values_per_reply = 100;
  std::chrono::seconds peer_ttl{45 * 60};
  std::chrono::seconds item_ttl{2 * 3600};
};

struct stored_item {
  std::string v;  // raw bencoded value
  std::string k, sig, salt;
  std::optional<std::int64_t> seq;  // mutable items only
  std::chrono::steady_clock::time_point last_put{};
};

class storage {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  explicit storage(storage_limits lim = {}) : lim_(lim) {}

  void announce(const node_id& info_hash, const tcp::endpoint& peer, bool seed, time_point now);
  // Up to max_values_per_reply peers of one family, a random sample when there are more;
  // seeds are left out when noseed.
  [[nodiscard]] std::vector<tcp::endpoint> peers(const node_id& info_hash, bool v6, bool noseed) const;
  // BEP 33 bloom filters of the seeds and of the downloaders.
  [[nodiscard]] std::pair<std::string, std::string> scrape(const node_id& info_hash) const;
  [[nodiscard]] bool has_torrent(const node_id& info_hash) const { return torrents_.count(info_hash) != 0; }
  // Up to n info-hashes, chosen at random (BEP 51).
  [[nodiscard]] std::vector<node_id> sample(std::size_t n) const;

  // BEP 44. put() has already checked the signature, sequence and CAS (see dht_node).
  [[nodiscard]] const stored_item* item(const node_id& target) const;
  void put_item(const node_id& target, stored_item it, time_point now);

  void expire(time_point now);

  [[nodiscard]] std::size_t torrent_count() const { return torrents_.size(); }
  [[nodiscard]] std::size_t peer_count() const;
  [[nodiscard]] std::size_t item_count() const { return items_.size(); }
  [[nodiscard]] const storage_limits& limits() const { return lim_; }

 private:
  struct peer_entry {
    tcp::endpoint ep;
    bool seed = false;
    time_point added{};
  };
  struct torrent_entry {
    std::vector<peer_entry> peers;
    time_point last_announce{};
  };
  storage_limits lim_;
  std::map<node_id, torrent_entry> torrents_;
  std::map<node_id, stored_item> items_;
};

}  // namespace shoal::dht
