// What the announces of many torrents share, so 10,000 torrents on one tracker cost one
// name lookup, one TLS context and one UDP connect a minute, not one of each per torrent:
// name lookups (kept 5 minutes), one TLS client context (the system CA store is read
// once), and UDP trackers' connection ids (BEP 15: usable for a minute after they were
// handed out; kept 50 s). One per session, used on the session's network thread only.
// Bounded: at most max_entries names and ids; at the bound the stalest goes.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shoal::tracker {

class client_cache {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t max_entries = 4096;
  static constexpr auto name_ttl = std::chrono::minutes(5);
  static constexpr auto connection_id_ttl = std::chrono::seconds(50);

  struct stats {
    std::uint64_t name_hits = 0, name_lookups = 0, id_hits = 0, id_connects = 0, tls_contexts = 0;
  };

  // The addresses `host` resolved to, if looked up less than name_ttl ago.
  [[nodiscard]] std::optional<std::vector<boost::asio::ip::address>> addresses(const std::string& host) {
    auto it = names_.find(host);
    if (it == names_.end() || clock::now() - it->second.when > name_ttl) return std::nullopt;
    ++stats_.name_hits;
    return it->second.addrs;
  }
  void remember_addresses(const std::string& host, std::vector<boost::asio::ip::address> addrs) {
    ++stats_.name_lookups;
    if (addrs.empty()) return;
    make_room(names_);
    names_[host] = {std::move(addrs), clock::now()};
  }

  // A UDP tracker's connection id (key: its host and port, and the path taken to it).
  [[nodiscard]] std::optional<std::uint64_t> connection_id(const std::string& key) {
    auto it = ids_.find(key);
    if (it == ids_.end() || clock::now() - it->second.when > connection_id_ttl) return std::nullopt;
    ++stats_.id_hits;
    return it->second.id;
  }
  void remember_connection_id(const std::string& key, std::uint64_t id) {
    ++stats_.id_connects;
    make_room(ids_);
    ids_[key] = {id, clock::now()};
  }
  void forget_connection_id(const std::string& key) { ids_.erase(key); }

  // The TLS client context: peer verification against the system CA store.
  boost::asio::ssl::context& tls() {
    if (!tls_) {
      tls_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
      tls_->set_default_verify_paths();
      tls_->set_verify_mode(boost::asio::ssl::verify_peer);
      ++stats_.tls_contexts;
    }
    return *tls_;
  }

  [[nodiscard]] const stats& counters() const { return stats_; }

 private:
  struct name_entry {
    std::vector<boost::asio::ip::address> addrs;
    clock::time_point when;
  };
  struct id_entry {
    std::uint64_t id = 0;
    clock::time_point when;
  };
  template <class Map>
  static void make_room(Map& m) {
    if (m.size() < max_entries) return;
    auto stalest = m.begin();
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it->second.when < stalest->second.when) stalest = it;
    }
    m.erase(stalest);
  }
  std::map<std::string, name_entry> names_;
  std::map<std::string, id_entry> ids_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  stats stats_;
};

}  // namespace shoal::tracker
