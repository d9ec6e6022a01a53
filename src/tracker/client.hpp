// Talks to trackers: HTTP and HTTPS announces through Beast (HTTPS verifies the
// certificate chain against the system CA store and the host name), UDP announces per
// BEP 15 with its retransmission schedule.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "net/proxy_codec.hpp"
#include "tracker/announce.hpp"

namespace shoal::tracker {

class client_cache;  // tracker/cache.hpp

struct client_options {
  std::chrono::seconds http_timeout{20};
  // UDP: wait 15 * 2^n seconds for attempt n (BEP 15), up to this many attempts.
  unsigned udp_attempts = 3;
  std::chrono::milliseconds udp_base_timeout{15000};
  std::string user_agent = "shoal/0.1.0";
  // When set, HTTP(S) requests go through this proxy (the proxy resolves the tracker's
  // name); UDP announces go through a SOCKS5 UDP association, or are skipped with an HTTP
  // proxy: see announce().
  net::proxy_settings proxy;
  // Source address of direct HTTP(S) and UDP announces (--bind); empty: the OS chooses.
  std::string bind_address;
  // --local: only loopback and private IP literals and `localhost` are contacted, and no
  // name is ever looked up (dht::local_host_addresses); any other host fails at once with
  // an error saying it was skipped.
  bool local = false;
  // Shared by a session's announces (name lookups, the TLS context, UDP connection ids);
  // none: each call starts from nothing.
  std::shared_ptr<client_cache> cache;
};

// The one line said for a host that --local skips.
[[nodiscard]] std::string skipped_under_local(const std::string& host);

// With an HTTP proxy set, a udp:// tracker fails at once with an error saying it was
// skipped: its datagrams would leave from our own address, around the proxy.
[[nodiscard]] boost::asio::awaitable<result<announce_response>> announce(boost::asio::io_context& io,
                                                                         const std::string& url,
                                                                         const announce_request& req,
                                                                         const client_options& opt);

// BEP 48 over HTTP(S) (one GET with every info_hash) or BEP 15 over UDP (one scrape
// packet): seeders, leechers and completed downloads of the torrents asked for on one
// tracker (a batch as scrape_batches cuts them), in order; nullopt where the tracker did
// not list a torrent.
[[nodiscard]] boost::asio::awaitable<result<std::vector<std::optional<scrape_entry>>>> scrape(
    boost::asio::io_context& io, const std::string& url, const std::vector<sha1_digest>& hashes,
    const client_options& opt);

// Options are passed by name, never as a default-argument temporary: GCC 12 destroys
// temporaries around co_await wrongly.
// GET of a small HTTP(S) resource (a .torrent by URL); bodies over `limit` are refused.
[[nodiscard]] boost::asio::awaitable<result<std::string>> http_get(boost::asio::io_context& io, const std::string& url,
                                                                   std::size_t limit, const client_options& opt);

}  // namespace shoal::tracker
