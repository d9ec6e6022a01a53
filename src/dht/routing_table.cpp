#include "dht/routing_table.hpp"

#include <algorithm>
#include <random>

namespace shoal::dht {

void routing_table::reset(const node_id& self) {
  self_ = self;
  buckets_.clear();
  buckets_.emplace_back();
}

std::size_t routing_table::bucket_index(const node_id& id) const {
  const auto cpl = static_cast<std::size_t>(common_prefix_bits(self_, id));
  return std::min(cpl, buckets_.size() - 1);
}

void routing_table::split_last() {
  const std::size_t last = buckets_.size() - 1;
  buckets_.emplace_back();
  bucket& from = buckets_[last];
  bucket& to = buckets_[last + 1];
  for (auto* list : {&from.live, &from.replacements}) {
    auto& dst = list == &from.live ? to.live : to.replacements;
    for (auto it = list->begin(); it != list->end();) {
      if (static_cast<std::size_t>(common_prefix_bits(self_, it->id)) > last) {
        dst.push_back(*it);
        it = list->erase(it);
      } else {
        ++it;
      }
    }
  }
  to.last_changed = from.last_changed;
}

std::optional<table_node> routing_table::heard_from(const node_id& id, const udp::endpoint& ep, bool replied,
                                                    bool verified, clock::time_point now) {
  if (id == self_) return std::nullopt;
  bucket& b = buckets_[bucket_index(id)];
  for (auto it = b.live.begin(); it != b.live.end(); ++it) {
    if (it->id == id) {
      // A known id from a new address: keep the old one while it is good (an id cannot be
      // taken over by whoever claims it).
      if (it->ep != ep) {
        if (it->good(now) || !replied) return std::nullopt;
        it->ep = ep;
        it->verified = verified;
      }
      if (replied) {
        it->last_reply = now;
        it->fails = 0;
        b.last_changed = now;
      } else {
        it->last_query = now;
      }
      return std::nullopt;
    }
    if (it->ep == ep) {
      // The node at this address has a new id: forget the old one once the new one answers.
      if (!replied) return std::nullopt;
      b.live.erase(it);
      break;
    }
  }
  if (!replied) return std::nullopt;  // only nodes that answered us enter the table

  table_node n;
  n.id = id;
  n.ep = ep;
  n.last_reply = now;
  n.verified = verified;
  if (b.live.size() < bucket_size) {
    std::erase_if(b.replacements, [&](const table_node& r) { return r.id == id; });
    b.live.push_back(n);
    b.last_changed = now;
    return std::nullopt;
  }
  if (&b == &buckets_.back() && buckets_.size() < 160) {
    split_last();
    return heard_from(id, ep, replied, verified, now);
  }
  // Full: a bad node makes room, then an unverified one if the newcomer is verified.
  auto victim = std::find_if(b.live.begin(), b.live.end(), [](const table_node& x) { return x.bad(); });
  if (victim == b.live.end() && verified) {
    victim = std::find_if(b.live.begin(), b.live.end(), [](const table_node& x) { return !x.verified; });
  }
  if (victim != b.live.end()) {
    if (!victim->bad()) b.replacements.push_back(*victim);
    *victim = n;
    b.last_changed = now;
  } else {
    std::erase_if(b.replacements, [&](const table_node& r) { return r.id == id || r.ep == ep; });
    b.replacements.push_back(n);
  }
  if (b.replacements.size() > bucket_size) b.replacements.erase(b.replacements.begin());
  // The least recently heard questionable node gets a ping: if it fails, a replacement
  // takes its place.
  const table_node* oldest = nullptr;
  for (const auto& x : b.live) {
    if (!x.good(now) && (!oldest || x.last_reply < oldest->last_reply)) oldest = &x;
  }
  if (oldest) return *oldest;
  return std::nullopt;
}

void routing_table::failed(const node_id& id, const udp::endpoint& ep) {
  bucket& b = buckets_[bucket_index(id)];
  std::erase_if(b.replacements, [&](const table_node& r) { return r.id == id && r.ep == ep; });
  for (auto it = b.live.begin(); it != b.live.end(); ++it) {
    if (it->id != id || it->ep != ep) continue;
    ++it->fails;
    if (it->bad() && !b.replacements.empty()) {
      *it = b.replacements.back();
      b.replacements.pop_back();
    } else if (it->fails > 2 * max_fails) {
      b.live.erase(it);
    }
    return;
  }
}

std::vector<node_entry> routing_table::closest(const node_id& target, std::size_t n) const {
  std::vector<node_entry> out;
  for (const auto& b : buckets_) {
    for (const auto& x : b.live) {
      if (!x.bad()) out.push_back({x.id, x.ep});
    }
  }
  const auto k = std::min(n, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(),
                    [&](const node_entry& a, const node_entry& b) { return closer(target, a.id, b.id); });
  out.resize(k);
  return out;
}

const table_node* routing_table::find(const udp::endpoint& ep) const {
  for (const auto& b : buckets_) {
    for (const auto& x : b.live) {
      if (x.ep == ep) return &x;
    }
  }
  return nullptr;
}

std::vector<node_id> routing_table::stale_buckets(clock::time_point now, clock::duration age) const {
  std::vector<node_id> out;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (now - buckets_[i].last_changed < age) continue;
    node_id id;
    for (auto& byte : id)
      byte = static_cast<std::uint8_t>(random_engine()());
    // Keep our first i bits, flip bit i (not for the last bucket, which holds our side).
    for (std::size_t bit = 0; bit <= i && bit < 160; ++bit) {
      const std::uint8_t mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
      bool want = (self_[bit / 8] & mask) != 0;
      if (bit == i) {
        if (i + 1 == buckets_.size()) break;
        want = !want;
      }
      id[bit / 8] = static_cast<std::uint8_t>(want ? (id[bit / 8] | mask) : (id[bit / 8] & ~mask));
    }
    out.push_back(id);
  }
  return out;
}

std::vector<node_entry> routing_table::questionable(clock::time_point now, std::size_t max) const {
  std::vector<const table_node*> q;
  for (const auto& b : buckets_) {
    for (const auto& x : b.live) {
      if (!x.good(now) && !x.bad()) q.push_back(&x);
    }
  }
  std::sort(q.begin(), q.end(), [](const table_node* a, const table_node* b) { return a->last_reply < b->last_reply; });
  std::vector<node_entry> out;
  for (std::size_t i = 0; i < q.size() && i < max; ++i)
    out.push_back({q[i]->id, q[i]->ep});
  return out;
}

std::size_t routing_table::size() const {
  std::size_t n = 0;
  for (const auto& b : buckets_)
    n += b.live.size();
  return n;
}

std::vector<node_entry> routing_table::all() const {
  std::vector<node_entry> out;
  for (const auto& b : buckets_) {
    for (const auto& x : b.live)
      out.push_back({x.id, x.ep});
  }
  return out;
}

}  // namespace shoal::dht
