// The tracker server's logic without its sockets: one HTTP request target or one UDP
// datagram in, the reply out. It owns the swarms, the whitelist and the counters that
// /stats reports. The caller passes the time (`now`: seconds since the tracker started, on
// a monotonic clock), so it can be unit-tested and fuzzed; server.hpp does the I/O.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracker/server_codec.hpp"
#include "tracker/swarm_store.hpp"

namespace shoal::tracker {

struct service_options {
  std::uint32_t interval = 1800;       // seconds between a peer's announces
  std::uint32_t peer_timeout = 0;      // seconds without an announce before a peer is dropped; 0: 2 * interval
  std::uint32_t default_numwant = 50;  // peers for a request that does not say
  std::uint32_t max_numwant = 200;     // peers in one reply at most
  store_limits limits;
  std::optional<std::vector<sha1_digest>> whitelist;  // when set, only these torrents are tracked
};

// Counters for /stats, per protocol.
struct service_stats {
  std::uint64_t announces_http = 0, announces_udp = 0;
  std::uint64_t scrapes_http = 0, scrapes_udp = 0;
  std::uint64_t connects_udp = 0;
  std::uint64_t failures_http = 0, failures_udp = 0;  // requests answered with an error
  std::uint64_t not_whitelisted = 0;                  // announces refused by the whitelist (both protocols)
  std::uint64_t ignored_udp = 0;                      // datagrams dropped without an answer
};

class service {
 public:
  service(service_options opt, const connection_secret& secret, std::uint64_t seed);

  struct http_reply {
    unsigned status = 200;
    std::string_view content_type = "text/plain";
    std::string body;
  };
  // One GET: `target` is the path and query, `from` the connection's remote address.
  // Tracker-level failures (bad query, whitelist) are a 200 with a "failure reason", as
  // clients expect; unknown paths are 404s and over-long targets 414s.
  [[nodiscard]] http_reply handle_http(std::string_view target, const boost::asio::ip::address& from,
                                       std::uint64_t now);
  // One datagram from `from`:`port`. Returns false when it deserves no answer; otherwise
  // the reply is in `out`.
  bool handle_udp(std::string_view pkt, const boost::asio::ip::address& from, std::uint16_t port, std::uint64_t now,
                  std::string& out);

  void expire(std::uint64_t now) { store_.expire(now, peer_timeout()); }
  [[nodiscard]] std::uint32_t peer_timeout() const;
  [[nodiscard]] const service_stats& stats() const { return stats_; }
  [[nodiscard]] const swarm_store& store() const { return store_; }
  [[nodiscard]] std::size_t whitelist_size() const { return whitelist_ ? whitelist_->size() : 0; }
  // The /stats document (JSON); also served at /stats.
  [[nodiscard]] std::string stats_json(std::uint64_t uptime_seconds) const;
  // The IPv4 form of a v4-mapped IPv6 address (dual-stack sockets report those).
  [[nodiscard]] static boost::asio::ip::address unmapped(const boost::asio::ip::address& a);

 private:
  [[nodiscard]] bool allowed(const sha1_digest& h) const;
  [[nodiscard]] std::uint32_t numwant_of(const announce_query& q, std::uint32_t cap) const;
  http_reply http_announce(std::string_view query, const boost::asio::ip::address& from, std::uint64_t now);
  http_reply http_scrape(std::string_view query);
  http_reply http_failure(std::string_view why);

  service_options opt_;
  connection_secret secret_;
  swarm_store store_;
  std::optional<std::vector<sha1_digest>> whitelist_;  // sorted
  service_stats stats_;
  std::string peers4_, peers6_;  // reused reply buffers
};

}  // namespace shoal::tracker
