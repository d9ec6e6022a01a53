// Constants shared by the files of peer_connection (not part of its interface).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "wire/message.hpp"

namespace shoal::peer_detail {

using clock = std::chrono::steady_clock;

// The read buffer starts small (most messages are a few bytes, blocks 16 KiB) and grows
// to the largest message the limit allows, then shrinks back once idle.
constexpr std::size_t initial_read_buffer = 32 * 1024;
constexpr std::size_t max_read_buffer = wire::max_message_size + 4;
constexpr auto read_buffer_shrink_after = std::chrono::seconds(10);
constexpr std::uint32_t default_peer_reqq = 250;
// Disk reads we keep in flight for one peer, and piece bytes we let pile up unsent.
constexpr std::uint32_t max_reads_in_flight = 8;
// Contiguous requests are read from disk together, up to this many bytes.
constexpr std::uint32_t max_read_span = 256 * 1024;
constexpr std::uint64_t max_send_backlog = 4u << 20;
constexpr std::uint8_t our_ut_metadata = 1;  // the id peers use to send us ut_metadata
constexpr std::uint8_t our_ut_pex = 2;
// BEP 52 upgrade: a v1 handshake for a hybrid torrent that offers v2 is answered with
// the v2 info-hash, so the connection can exchange merkle hashes.
constexpr bool upgrade_to_v2 = true;
// BEP 11: the first PEX message a little after the handshake, then at most one a minute.
constexpr auto first_pex_after = std::chrono::seconds(2);
constexpr auto pex_interval = std::chrono::seconds(60);
constexpr auto min_pex_in_interval = std::chrono::seconds(45);
// Metadata requests served per connection before rejecting (flood guard, BEP 9), and
// rejected ones after which the peer is banned for flooding.
constexpr std::uint32_t metadata_requests_per_piece = 4;
constexpr std::uint32_t max_metadata_rejects = 1000;
// A magnet's fetch: metadata pieces asked for ahead of the first one missing, and how long
// a peer may take to send the next one (or its extension handshake) before it is dropped.
constexpr std::uint32_t metadata_request_window = 16;
constexpr auto metadata_answer_timeout = std::chrono::seconds(30);
// BEP 52 leaf-hash requests (hashed off the network thread) in flight per peer.
constexpr std::uint32_t max_leaf_requests = 4;
// Cancelled or dropped requests remembered, so a late answer is not taken for abuse.
constexpr std::size_t max_cancelled = 2048;

inline std::string ep_string(const boost::asio::ip::tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace shoal::peer_detail
