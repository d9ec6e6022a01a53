// The BEP 5 routing table of one address family: buckets of k = 8 nodes by shared prefix
// with our id, the bucket holding our own id split when full, a replacement cache per
// bucket, node states (good / questionable / bad) and a preference for BEP 42-verified ids.
// Pure: time is passed in, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "dht/krpc.hpp"

namespace shoal::dht {

using clock = std::chrono::steady_clock;

inline constexpr std::size_t bucket_size = 8;  // k
inline constexpr int max_fails = 3;            // timeouts in a row before a node is bad
inline constexpr auto good_window = std::chrono::minutes(15);

struct table_node {
  node_id id{};
  udp::endpoint ep;
  clock::time_point last_reply{};  // zero: never answered a query of ours
  clock::time_point last_query{};  // when we last heard a query from it
  int fails = 0;
  bool verified = false;  // id matches its address (BEP 42)
  [[nodiscard]] bool answered() const { return last_reply != clock::time_point{}; }
  [[nodiscard]] bool good(clock::time_point now) const {
    return fails == 0 && answered() && (now - last_reply < good_window || now - last_query < good_window);
  }
  [[nodiscard]] bool bad() const { return fails >= max_fails; }
};

struct bucket {
  std::vector<table_node> live;          // at most k
  std::vector<table_node> replacements;  // at most k, newest last
  clock::time_point last_changed{};
};

class routing_table {
 public:
  explicit routing_table(const node_id& self) : self_(self) { buckets_.emplace_back(); }

  [[nodiscard]] const node_id& self() const { return self_; }
  // Starts over with a new id (BEP 42: our address changed); nodes are kept as candidates.
  void reset(const node_id& self);

  // A node answered one of our queries (`replied`) or sent us one. Returns a node that
  // should be pinged to make room (a questionable node of a full bucket), if any.
  std::optional<table_node> heard_from(const node_id& id, const udp::endpoint& ep, bool replied, bool verified,
                                       clock::time_point now);
  // A query to this node timed out.
  void failed(const node_id& id, const udp::endpoint& ep);
  // The k (or n) live, non-bad nodes closest to target.
  [[nodiscard]] std::vector<node_entry> closest(const node_id& target, std::size_t n = bucket_size) const;
  // A node in the table at that address, if any.
  [[nodiscard]] const table_node* find(const udp::endpoint& ep) const;
  // Buckets not changed for `age`: a random id in each one's range to refresh with.
  [[nodiscard]] std::vector<node_id> stale_buckets(clock::time_point now, clock::duration age) const;
  // Marks the bucket holding id as just refreshed (so a dead bucket is not retried at once).
  void touch(const node_id& id, clock::time_point now) { buckets_[bucket_index(id)].last_changed = now; }
  // Questionable nodes worth a ping (not heard from for a while, not bad).
  [[nodiscard]] std::vector<node_entry> questionable(clock::time_point now, std::size_t max) const;

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::size_t bucket_count() const { return buckets_.size(); }
  [[nodiscard]] std::vector<node_entry> all() const;
  [[nodiscard]] const std::vector<bucket>& buckets() const { return buckets_; }

 private:
  std::size_t bucket_index(const node_id& id) const;
  void split_last();

  node_id self_;
  std::vector<bucket> buckets_;  // bucket i: nodes sharing exactly i prefix bits (the last: >= i)
};

}  // namespace shoal::dht
