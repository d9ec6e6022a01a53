// Knobs of a session, with the defaults a desktop user expects.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "net/proxy_codec.hpp"
#include "session/events.hpp"
#include "wire/mse.hpp"

namespace shoal {

// How peers are dialled (--transport): TCP only; uTP only (BEP 29); or both: TCP first,
// uTP when TCP gets nowhere (refused, filtered). With utp or both the session also accepts
// uTP connections on UDP at the listen port number, so a peer that dials uTP first gets one.
enum class peer_transport { tcp, utp, both };

struct session_settings {
  // Empty: every address, IPv6 and IPv4 on one dual-stack socket (IPv4 alone where the
  // system has no IPv6).
  std::string listen_address;
  // Source address of every outgoing connection (--bind); empty: the OS chooses.
  std::string outgoing_address;
  // MSE/PE (--encryption): "preferred" dials encrypted and falls back to plaintext,
  // "required" refuses plaintext both ways, "allowed" dials plaintext and accepts both.
  wire::mse::policy encryption = wire::mse::policy::preferred;
  // How long a dialled peer has to answer the encryption handshake before "preferred"
  // falls back to plaintext.
  std::chrono::milliseconds encryption_timeout{4000};
  peer_transport transport = peer_transport::both;
  // With `both`, how long TCP may take to connect before uTP is tried (and uTP's own limit).
  std::chrono::milliseconds utp_connect_timeout{3000};
  std::uint16_t listen_port = 6881;  // 0: any free port
  // Keep every byte on loopback and the addresses given: no public bootstrap, no port
  // mapping, no multicast (--local / SHOAL_LOCAL=1).
  bool local = false;
  // Local Service Discovery (BEP 14) for public torrents.
  bool lsd = false;
  std::uint32_t max_peers_per_torrent = 80;
  // Connections per remote IP; loopback peers are counted per address *and* port.
  std::uint32_t max_peers_per_ip = 4;
  std::uint64_t max_download_rate = 0;  // bytes/s, 0 = unlimited
  std::uint64_t max_upload_rate = 0;
  std::uint32_t upload_slots = 0;  // 0: chosen from the upload limit
  std::string client_name = "shoal 0.1.0";
  unsigned disk_threads = 1;
  unsigned hash_threads = 0;  // 0: one per core
  // Bytes waiting for the disk before peers stop reading their sockets.
  std::uint64_t max_disk_queue = 64u << 20;
  // Bytes of started, not yet verified pieces one torrent holds in memory (each started
  // piece has a buffer of its size): new pieces wait at the bound. One piece always fits.
  std::uint64_t max_partial_memory = 128u << 20;
  // Files open at once across all torrents (0: only each torrent's own cache of 64); the
  // least recently used is closed at the bound.
  std::uint32_t max_open_files = 256;
  // Our request queue depth bounds per peer.
  std::uint32_t min_request_queue = 16;
  std::uint32_t max_request_queue = 1000;
  // Queue depth ~ this many seconds of the peer's measured rate.
  double request_queue_seconds = 3.0;
  std::chrono::seconds peer_timeout{120};
  std::chrono::seconds request_timeout{30};
  std::chrono::seconds keep_alive{90};
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds flush_interval{5};  // resume data saved this often while downloading
  std::uint64_t flush_bytes = 16u << 20;   // ... or after this many bytes of verified pieces
  // Requests a peer may send while we choke it (after the choke had time to arrive).
  std::uint32_t max_choked_requests = 256;
  // Receives one line per notable event (peer connected, closed and why, tracker replies);
  // empty: silent. The CLI's --verbose prints them.
  std::function<void(const std::string&)> log;
  // Peer connections we make and HTTP(S) tracker announces go through this proxy when set
  // (--proxy); UDP trackers only through a SOCKS5 proxy (skipped behind an HTTP one).
  // Incoming connections are still accepted.
  net::proxy_settings proxy;
  // Requests a peer may have queued with us before we drop it.
  std::uint32_t max_peer_requests = 2000;
  // Queueing: torrents downloading / seeding at once (0: no limit); the rest wait, queued,
  // in queue order. One torrent checks its data at a time.
  std::uint32_t max_active_downloads = 0;
  std::uint32_t max_active_seeds = 0;
  // Which events (session/events.hpp) are queued, and how many before new ones are dropped.
  std::uint32_t event_mask = default_event_mask;
  std::size_t event_queue_capacity = 100000;
  // Torrents starting together begin their tracker announces and DHT lookups this far
  // apart, so 10,000 torrents do not announce in the same second.
  std::chrono::milliseconds announce_spacing{20};
  std::chrono::milliseconds dht_announce_spacing{100};
  // Every torrent's trackers are scraped (BEP 48, BEP 15) this often for their seeder,
  // leecher and download counts, paused and queued torrents too; the session asks each
  // tracker for many torrents in one request (74 over UDP, about 28 over HTTP), one
  // request at a time. 0: never.
  std::chrono::seconds scrape_interval{1800};
  // The DHT (BEP 5), started by listen(): a node on UDP at the listen port's number (on
  // uTP's socket when uTP is on), bootstrapped from these HOST:PORT (empty: the public
  // routers, none under `local`), its id and table kept in dht_state_file.
  bool dht = false;
  std::vector<std::string> dht_bootstrap;
  std::filesystem::path dht_state_file;
  // Port mapping (UPnP IGD and NAT-PMP) of the listen port, started by listen(); under
  // `local` only the gateways named here are asked.
  bool port_mapping = false;
  std::string upnp_url;
  std::string natpmp_gateway;
  std::chrono::seconds port_mapping_lease{0};  // 0: the mapper's default
  // Bytes queued for one peer (messages not yet written to its socket) at which we stop
  // reading that peer and so stop making replies for it, until the queue drains.
  std::uint64_t max_send_queue = 8u << 20;
  // A peer whose send queue stays at that bound this long is dropped.
  std::chrono::seconds send_queue_stall{20};
  // Piece payload being read from disk or queued for peers, all connections together:
  // each connection serves requests while it holds less than its share of this (the
  // bound over the connections, never under 256 KiB nor over 4 MiB). So the whole is
  // bounded by the larger of this and 256 KiB a connection. 0: 4 MiB a connection.
  std::uint64_t max_send_backlog_total = 64u << 20;
  // Outgoing connections still connecting or handshaking, session-wide; more wait.
  std::uint32_t max_half_open = 64;
  // Incoming connections that have not yet completed the BitTorrent handshake,
  // session-wide; at the bound the oldest of them is closed to make room.
  std::uint32_t max_unauthenticated = 256;
  // Handshaked peer connections of all torrents together (0: no bound). At the bound no
  // more are dialled, and an incoming one gets in only in place of an idle one.
  std::uint32_t max_connections = 500;
  // A full torrent closes a peer idle this long (no data either way, neither side
  // interested) to make room for a new one.
  std::chrono::seconds idle_eviction{15};
};

}  // namespace shoal
