// The tracker server's codecs (pure: bytes in, values or a precise error out; no sockets,
// no clocks): HTTP announce and scrape query strings (BEP 3, 23, 48), their bencoded
// replies, BEP 15 UDP requests and replies, connection ids, and the whitelist file.
// The client side of the same protocols is in announce.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "tracker/announce.hpp"

namespace shoal::tracker {

// Bounds on one request. A longer HTTP target is refused before it is parsed.
inline constexpr std::size_t max_request_target = 2048;        // bytes of path + query
inline constexpr std::size_t max_scrape_hashes = 64;           // info-hashes in one HTTP scrape
inline constexpr std::size_t max_udp_scrape_hashes = 74;       // BEP 15: what fits one packet
inline constexpr std::size_t udp_announce_size = 98;           // bytes of a BEP 15 announce
inline constexpr std::size_t max_udp_reply_peer_bytes = 1200;  // keeps a UDP reply in one packet

enum class udp_action : std::uint32_t { connect = 0, announce = 1, scrape = 2, error = 3 };

// An announce as a tracker receives it, over HTTP or UDP.
struct announce_query {
  announce_request req;        // numwant holds what was asked when numwant_given
  bool numwant_given = false;  // false: the tracker's default applies
  bool compact = true;         // HTTP compact=0 asks for a list of dictionaries
  bool no_peer_id = false;
};

// "/announce?a=b" -> {"/announce", "a=b"}.
struct target_parts {
  std::string_view path, query;
};
[[nodiscard]] target_parts split_target(std::string_view target);

// The query string of an HTTP announce (without the '?'). info_hash, peer_id, port and
// left are required; binary values are percent-encoded. Unknown keys are ignored, and so
// is `ip`: the tracker uses the address the request came from.
[[nodiscard]] result<announce_query> parse_announce_query(std::string_view query);
// The info-hashes of an HTTP scrape (BEP 48): 1 to max_scrape_hashes of them. A scrape
// without any (a "full scrape") is refused.
[[nodiscard]] result<std::vector<sha1_digest>> parse_scrape_query(std::string_view query);

// A whitelist file: one 40-digit hex info-hash a line; blank lines and lines starting
// with '#' are skipped. Any other line is an error naming its number.
[[nodiscard]] result<std::vector<sha1_digest>> parse_whitelist(std::string_view text);

// What an announce reply holds. Peers are compact entries: 6 bytes (IPv4 + port) each in
// peers4, 18 bytes (IPv6 + port) each in peers6, all in network byte order.
struct announce_reply {
  std::uint32_t interval = 1800, min_interval = 900;
  std::uint32_t complete = 0, incomplete = 0, downloaded = 0;
  std::string_view peers4, peers6;
  std::string_view warning;  // "warning message" when not empty
};
// compact: "peers" (and "peers6" when there are IPv6 peers) as strings (BEP 23, BEP 7);
// otherwise "peers" is a list of {ip, port} dictionaries. Peer ids are not kept by this
// tracker, so dictionaries never carry one (as if no_peer_id were always set).
[[nodiscard]] std::string encode_http_announce(const announce_reply& r, bool compact);
[[nodiscard]] std::string encode_http_failure(std::string_view reason);
[[nodiscard]] std::string encode_http_scrape(const std::vector<std::pair<sha1_digest, scrape_entry>>& files);

// A BEP 15 request. Views point into the packet.
struct udp_request {
  udp_action action = udp_action::connect;
  std::uint64_t connection_id = 0;
  std::uint32_t transaction = 0;
  announce_query announce;         // action announce (compact and no_peer_id do not apply)
  std::string_view scrape_hashes;  // action scrape: 20 bytes each, 1 to max_udp_scrape_hashes
};
// Packets shorter than 16 bytes carry no transaction id and cannot be answered.
inline constexpr std::size_t udp_header_size = 16;
[[nodiscard]] std::uint32_t udp_transaction_of(std::string_view pkt);  // needs >= 16 bytes
[[nodiscard]] result<udp_request> parse_udp_request(std::string_view pkt);

// Replies are appended to `out` (cleared first), so a server can reuse one buffer.
void encode_udp_connect(std::string& out, std::uint32_t transaction, std::uint64_t connection_id);
// peers: compact entries of the requester's address family only (BEP 15).
void encode_udp_announce(std::string& out, std::uint32_t transaction, std::uint32_t interval, std::uint32_t leechers,
                         std::uint32_t seeders, std::string_view peers);
void encode_udp_scrape(std::string& out, std::uint32_t transaction, const std::vector<scrape_entry>& entries);
void encode_udp_error(std::string& out, std::uint32_t transaction, std::string_view message);

// BEP 15 connection ids without per-client state: the low byte of a time window in the
// top 8 bits, then 56 bits of SipHash-2-4 (keyed with a secret) over that window, the
// client's address and port. An id is accepted in its window and the next two, so it
// lives at least 2 and at most 3 windows.
using connection_secret = std::array<std::uint8_t, 16>;
inline constexpr std::uint64_t connection_id_window = 60;  // seconds
// `address` is the client's 4 or 16 address bytes.
[[nodiscard]] std::uint64_t make_connection_id(const connection_secret& key, std::string_view address,
                                               std::uint16_t port, std::uint64_t now_seconds);
[[nodiscard]] bool check_connection_id(const connection_secret& key, std::uint64_t id, std::string_view address,
                                       std::uint16_t port, std::uint64_t now_seconds);

}  // namespace shoal::tracker
