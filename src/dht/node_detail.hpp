// Internal to the DHT node's sources (node.cpp, node_answer.cpp, node_lookup.cpp): the
// constants and small helpers they share. Not part of the library's interface.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "dht/krpc.hpp"

namespace shoal::dht::detail {

inline constexpr std::size_t alpha = 3;         // queries in flight per lookup
inline constexpr std::size_t lookup_width = 8;  // k: the closest nodes a lookup settles on
inline constexpr std::size_t max_candidates = 128;
inline constexpr auto query_timeout = std::chrono::milliseconds(2000);
inline constexpr auto lookup_deadline = std::chrono::seconds(30);
inline constexpr std::size_t max_verify_pings = 16;
inline constexpr std::size_t max_sources = 20000;
inline constexpr std::size_t max_answered = 8192;

inline std::string ep_key(const udp::endpoint& ep) {
  // Loopback sources are told apart by port: every test node lives on 127.0.0.1.
  if (ep.address().is_loopback()) return ep.address().to_string() + ":" + std::to_string(ep.port());
  return ep.address().to_string();
}

inline std::string addr_bytes(const boost::asio::ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  auto b = a.to_v6().to_bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline bool verify_item(const node_id& target, const std::string& v, const std::string& k, const std::string& sig,
                        const std::string& salt, std::optional<std::int64_t> seq) {
  if (v.empty() || v.size() > max_item_value) return false;
  if (k.empty()) return immutable_target(v) == target;
  if (!seq || sig.size() != 64 || k.size() != 32) return false;
  if (mutable_target(k, salt) != target) return false;
  const std::string buf = signature_buffer(salt, *seq, v);
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                     reinterpret_cast<const unsigned char*>(buf.data()), buf.size(),
                                     reinterpret_cast<const unsigned char*>(k.data())) == 0;
}

}  // namespace shoal::dht::detail
