// The tracker server's memory: for each torrent, the peers that announced it. No I/O and
// no clock (the caller passes the time), so it is unit-testable and fuzzable.
//
// A peer is its address and port (the peer id is not kept). Each torrent holds four
// vectors sorted by endpoint: IPv4 seeders, IPv4 leechers, IPv6 seeders, IPv6 leechers.
// An entry is the compact endpoint as it goes on the wire (6 or 18 bytes) and a 16-bit
// "last announce" stamp in seconds: 8 bytes per IPv4 peer, 20 per IPv6 peer, and no index
// beside them (lookups are binary searches). Replies copy entries' first bytes as they
// are. Stamps wrap every 18 hours; expiry runs far more often than that and peer
// timeouts are capped well below it, so the wrap never confuses an age.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/hash.hpp"
#include "tracker/announce.hpp"

namespace shoal::tracker {

inline constexpr std::uint32_t max_peer_timeout = 6 * 3600;  // seconds; far below the stamps' 18 h wrap

struct store_limits {
  std::size_t max_torrents = 1'000'000;
  std::size_t max_peers_per_torrent = 100'000;
  std::size_t max_peers = 20'000'000;  // in all torrents together
};

// A peer's endpoint in compact form: 4 or 16 address bytes, then the port, big-endian.
struct peer_endpoint {
  bool v6 = false;
  std::array<std::uint8_t, 18> bytes{};
  [[nodiscard]] std::string_view compact() const {
    return {reinterpret_cast<const char*>(bytes.data()), v6 ? 18u : 6u};
  }
  [[nodiscard]] std::string_view address() const {
    return {reinterpret_cast<const char*>(bytes.data()), v6 ? 16u : 4u};
  }
  [[nodiscard]] std::uint16_t port() const {
    const std::size_t at = v6 ? 16 : 4;
    return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
  }
  static peer_endpoint v4(std::uint32_t addr, std::uint16_t port);
  static peer_endpoint v6_from(const std::array<std::uint8_t, 16>& addr, std::uint16_t port);
};

class swarm_store {
 public:
  struct counts {
    std::uint32_t complete = 0, incomplete = 0, downloaded = 0;
  };
  enum class outcome {
    stored,         // the peer is in the swarm (or was removed, for `stopped`)
    not_stored,     // a peer limit kept it out; it still gets peers
    torrent_limit,  // a new torrent and max_torrents reached: nothing recorded, no peers
  };
  struct announce_result {
    outcome status = outcome::stored;
    counts swarm;  // after this announce
  };

  swarm_store(store_limits limits, std::uint64_t seed);

  // Records (or, for `stopped`, removes) the peer `from`, then appends up to `numwant`
  // other peers: IPv4 ones to out4 (6 bytes each) when want4, IPv6 ones to out6 (18 bytes
  // each) when want6. A seeder is given leechers only; the peer itself is never given.
  // `now` is in seconds.
  announce_result announce(const sha1_digest& info_hash, const peer_endpoint& from, event ev, bool seeder,
                           std::uint32_t numwant, std::uint64_t now, bool want4, bool want6, std::string& out4,
                           std::string& out6);
  [[nodiscard]] counts scrape(const sha1_digest& info_hash) const;

  // Drops peers whose last announce is `timeout` seconds old or more (timeout is capped
  // at max_peer_timeout), then torrents left without peers. Call it at least every few
  // minutes.
  void expire(std::uint64_t now, std::uint32_t timeout);

  [[nodiscard]] std::size_t torrents() const { return torrents_.size(); }
  [[nodiscard]] std::size_t peers() const { return seeders_ + leechers_; }
  [[nodiscard]] std::size_t seeders() const { return seeders_; }
  [[nodiscard]] std::size_t leechers() const { return leechers_; }
  [[nodiscard]] std::size_t peers_v6() const { return peers_v6_; }
  [[nodiscard]] std::uint64_t completed() const { return completed_; }
  // Bytes held by the peer vectors (capacity, not size): what the entries cost.
  [[nodiscard]] std::size_t peer_bytes() const;

 private:
  template <std::size_t AddrLen>
  struct entry {
    std::array<std::uint8_t, AddrLen + 2> ep;
    std::uint16_t stamp;
  };
  using entry4 = entry<4>;
  using entry6 = entry<16>;
  static_assert(sizeof(entry4) == 8 && sizeof(entry6) == 20);

  struct swarm {
    std::vector<entry4> seeds4, leeches4;
    std::vector<entry6> seeds6, leeches6;
    std::uint32_t downloaded = 0;
    [[nodiscard]] std::size_t size() const { return seeds4.size() + leeches4.size() + seeds6.size() + leeches6.size(); }
  };
  struct key_hash {
    std::array<std::uint8_t, 16> key;
    std::size_t operator()(const sha1_digest& h) const;
  };

  template <class Entry>
  void update(swarm& s, std::vector<Entry>& mine, std::vector<Entry>& other, const peer_endpoint& from, event ev,
              bool seeder, std::uint16_t stamp, announce_result& res);
  template <class Entry>
  void pick(const std::vector<Entry>& a, const std::vector<Entry>& b, const peer_endpoint& self, std::uint32_t& budget,
            std::string& out);
  std::uint64_t next_random();

  key_hash make_key_hash();

  store_limits limits_;
  std::uint64_t rng_;  // before torrents_: the bucket hash key is drawn from it
  std::unordered_map<sha1_digest, swarm, key_hash> torrents_;
  std::size_t seeders_ = 0, leechers_ = 0, peers_v6_ = 0;
  std::uint64_t completed_ = 0;
};

}  // namespace shoal::tracker
