#include "tracker/swarm_store.hpp"

#include <sodium/crypto_shorthash.h>

#include <algorithm>

namespace shoal::tracker {

peer_endpoint peer_endpoint::v4(std::uint32_t addr, std::uint16_t port) {
  peer_endpoint e;
  e.v6 = false;
  e.bytes[0] = static_cast<std::uint8_t>(addr >> 24);
  e.bytes[1] = static_cast<std::uint8_t>(addr >> 16);
  e.bytes[2] = static_cast<std::uint8_t>(addr >> 8);
  e.bytes[3] = static_cast<std::uint8_t>(addr);
  e.bytes[4] = static_cast<std::uint8_t>(port >> 8);
  e.bytes[5] = static_cast<std::uint8_t>(port);
  return e;
}

peer_endpoint peer_endpoint::v6_from(const std::array<std::uint8_t, 16>& addr, std::uint16_t port) {
  peer_endpoint e;
  e.v6 = true;
  std::copy(addr.begin(), addr.end(), e.bytes.begin());
  e.bytes[16] = static_cast<std::uint8_t>(port >> 8);
  e.bytes[17] = static_cast<std::uint8_t>(port);
  return e;
}

// Info-hashes come from the network: a keyed hash keeps anyone from choosing many that
// land in one bucket.
std::size_t swarm_store::key_hash::operator()(const sha1_digest& h) const {
  std::array<unsigned char, crypto_shorthash_BYTES> out{};
  crypto_shorthash(out.data(), h.data(), h.size(), key.data());
  std::size_t v = 0;
  std::memcpy(&v, out.data(), sizeof v);
  return v;
}

swarm_store::swarm_store(store_limits limits, std::uint64_t seed)
    : limits_(limits), rng_(seed), torrents_(16, make_key_hash()) {}

swarm_store::key_hash swarm_store::make_key_hash() {
  key_hash kh{};
  for (std::size_t i = 0; i < kh.key.size(); i += 8) {
    const std::uint64_t r = next_random();
    std::memcpy(kh.key.data() + i, &r, 8);
  }
  return kh;
}

std::uint64_t swarm_store::next_random() {
  // splitmix64: peers handed out need to vary, not to be unpredictable.
  std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

namespace {

template <class Entry>
bool ep_less(const Entry& e, const std::uint8_t* ep) {
  return std::memcmp(e.ep.data(), ep, e.ep.size()) < 0;
}

template <class Entry>
typename std::vector<Entry>::iterator find_ep(std::vector<Entry>& v, const std::uint8_t* ep) {
  auto it = std::lower_bound(v.begin(), v.end(), ep, ep_less<Entry>);
  if (it != v.end() && std::memcmp(it->ep.data(), ep, it->ep.size()) == 0) return it;
  return v.end();
}

template <class Entry>
void insert_ep(std::vector<Entry>& v, const std::uint8_t* ep, std::uint16_t stamp) {
  // Grow by an eighth, not by doubling: spare capacity is memory per peer (doubling left
  // about 10.7 bytes per IPv4 peer for 8 of data). A sorted insert moves the tail anyway,
  // so the extra reallocations cost little.
  if (v.size() == v.capacity()) v.reserve(v.size() + v.size() / 8 + 4);
  auto it = std::lower_bound(v.begin(), v.end(), ep, ep_less<Entry>);
  Entry e;
  std::memcpy(e.ep.data(), ep, e.ep.size());
  e.stamp = stamp;
  v.insert(it, e);
}

}  // namespace

template <class Entry>
void swarm_store::update(swarm& s, std::vector<Entry>& mine, std::vector<Entry>& other, const peer_endpoint& from,
                         event ev, bool seeder, std::uint16_t stamp, announce_result& res) {
  const std::uint8_t* ep = from.bytes.data();
  auto count = [&](bool is_seed, int delta) {
    std::size_t& c = is_seed ? seeders_ : leechers_;
    c = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(c) + delta);
    if (from.v6) peers_v6_ = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(peers_v6_) + delta);
  };
  if (auto it = find_ep(mine, ep); it != mine.end()) {
    if (ev == event::stopped) {
      mine.erase(it);
      count(seeder, -1);
    } else {
      it->stamp = stamp;
    }
    return;
  }
  if (auto it = find_ep(other, ep); it != other.end()) {
    other.erase(it);
    count(!seeder, -1);
    if (ev == event::stopped) return;
    insert_ep(mine, ep, stamp);  // a move: the swarm does not grow
    count(seeder, +1);
    if (seeder && ev == event::completed) {
      ++s.downloaded;
      ++completed_;
    }
    return;
  }
  if (ev == event::stopped) return;
  if (s.size() >= limits_.max_peers_per_torrent || peers() >= limits_.max_peers) {
    res.status = outcome::not_stored;
    return;
  }
  insert_ep(mine, ep, stamp);
  count(seeder, +1);
  if (seeder && ev == event::completed) {
    ++s.downloaded;
    ++completed_;
  }
}

template <class Entry>
void swarm_store::pick(const std::vector<Entry>& a, const std::vector<Entry>& b, const peer_endpoint& self,
                       std::uint32_t& budget, std::string& out) {
  const std::size_t n = a.size() + b.size();
  if (n == 0 || budget == 0) return;
  // All of them, or a run from a random start over a then b (both sorted by address), so
  // each reply is a different slice of the swarm.
  const std::size_t start = n <= budget ? 0 : static_cast<std::size_t>(next_random() % n);
  const std::uint8_t* me = self.bytes.data();
  constexpr std::size_t len = sizeof(Entry::ep);
  for (std::size_t k = 0; k < n && budget > 0; ++k) {
    std::size_t i = start + k;
    if (i >= n) i -= n;
    const Entry& e = i < a.size() ? a[i] : b[i - a.size()];
    if (std::memcmp(e.ep.data(), me, len) == 0) continue;
    out.append(reinterpret_cast<const char*>(e.ep.data()), len);
    --budget;
  }
}

swarm_store::announce_result swarm_store::announce(const sha1_digest& info_hash, const peer_endpoint& from, event ev,
                                                   bool seeder, std::uint32_t numwant, std::uint64_t now, bool want4,
                                                   bool want6, std::string& out4, std::string& out6) {
  announce_result res;
  auto it = torrents_.find(info_hash);
  if (it == torrents_.end()) {
    if (ev == event::stopped) return res;  // leaving a swarm nobody is in
    if (torrents_.size() >= limits_.max_torrents) {
      res.status = outcome::torrent_limit;
      return res;
    }
    it = torrents_.try_emplace(info_hash).first;
  }
  swarm& s = it->second;
  const auto stamp = static_cast<std::uint16_t>(now);
  if (from.v6) {
    update(s, seeder ? s.seeds6 : s.leeches6, seeder ? s.leeches6 : s.seeds6, from, ev, seeder, stamp, res);
  } else {
    update(s, seeder ? s.seeds4 : s.leeches4, seeder ? s.leeches4 : s.seeds4, from, ev, seeder, stamp, res);
  }
  if (ev != event::stopped) {
    std::uint32_t budget = numwant;
    static const std::vector<entry4> none4;
    static const std::vector<entry6> none6;
    auto give4 = [&] {
      if (want4) pick(s.leeches4, seeder ? none4 : s.seeds4, from, budget, out4);
    };
    auto give6 = [&] {
      if (want6) pick(s.leeches6, seeder ? none6 : s.seeds6, from, budget, out6);
    };
    // The requester's own family first.
    if (from.v6) {
      give6();
      give4();
    } else {
      give4();
      give6();
    }
  }
  res.swarm.complete = static_cast<std::uint32_t>(s.seeds4.size() + s.seeds6.size());
  res.swarm.incomplete = static_cast<std::uint32_t>(s.leeches4.size() + s.leeches6.size());
  res.swarm.downloaded = s.downloaded;
  return res;
}

swarm_store::counts swarm_store::scrape(const sha1_digest& info_hash) const {
  counts c;
  auto it = torrents_.find(info_hash);
  if (it == torrents_.end()) return c;
  const swarm& s = it->second;
  c.complete = static_cast<std::uint32_t>(s.seeds4.size() + s.seeds6.size());
  c.incomplete = static_cast<std::uint32_t>(s.leeches4.size() + s.leeches6.size());
  c.downloaded = s.downloaded;
  return c;
}

namespace {
template <class Entry>
std::size_t drop_old(std::vector<Entry>& v, std::uint16_t now, std::uint32_t timeout) {
  const std::size_t before = v.size();
  std::erase_if(v, [&](const Entry& e) { return static_cast<std::uint16_t>(now - e.stamp) >= timeout; });
  // A swarm that shrank a lot gives its memory back.
  if (v.capacity() > 64 && v.size() < v.capacity() / 4) v.shrink_to_fit();
  return before - v.size();
}
}  // namespace

void swarm_store::expire(std::uint64_t now, std::uint32_t timeout) {
  timeout = std::min(timeout, max_peer_timeout);
  const auto stamp = static_cast<std::uint16_t>(now);
  for (auto it = torrents_.begin(); it != torrents_.end();) {
    swarm& s = it->second;
    const std::size_t s4 = drop_old(s.seeds4, stamp, timeout), l4 = drop_old(s.leeches4, stamp, timeout);
    const std::size_t s6 = drop_old(s.seeds6, stamp, timeout), l6 = drop_old(s.leeches6, stamp, timeout);
    seeders_ -= s4 + s6;
    leechers_ -= l4 + l6;
    peers_v6_ -= s6 + l6;
    it = s.size() == 0 ? torrents_.erase(it) : std::next(it);
  }
}

std::size_t swarm_store::peer_bytes() const {
  std::size_t b = 0;
  for (const auto& [h, s] : torrents_) {
    b += (s.seeds4.capacity() + s.leeches4.capacity()) * sizeof(entry4);
    b += (s.seeds6.capacity() + s.leeches6.capacity()) * sizeof(entry6);
  }
  return b;
}

}  // namespace shoal::tracker
