// BEP 29 packets: the 20-byte header and its extension chain (selective ACK). A pure codec:
// bytes in, a header or a precise error out; no sockets, no clocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.hpp"

namespace shoal::net::utp {

enum class packet_type : std::uint8_t { data = 0, fin = 1, state = 2, reset = 3, syn = 4 };

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::size_t header_size = 20;
inline constexpr std::uint8_t ext_none = 0;
inline constexpr std::uint8_t ext_sack = 1;
// Bounds on the extension chain: a longer chain or a bigger selective ACK is refused.
inline constexpr std::size_t max_extensions = 4;
inline constexpr std::size_t max_sack_bytes = 128;  // 1024 packets past ack_nr + 1

struct header {
  packet_type type = packet_type::state;
  std::uint8_t extension = ext_none;  // first extension in the chain (set by write_packet)
  std::uint16_t connection_id = 0;
  std::uint32_t timestamp_us = 0;
  std::uint32_t timestamp_diff_us = 0;
  std::uint32_t wnd_size = 0;
  std::uint16_t seq_nr = 0;
  std::uint16_t ack_nr = 0;
};

struct packet {
  header h;
  // The selective ACK bitmask (empty: none). Bit i of byte j acks ack_nr + 2 + 8*j + i.
  std::span<const std::uint8_t> sack;
  std::span<const char> payload;
};

// Cheap test used to demultiplex a shared UDP socket: long enough, version 1, known type.
[[nodiscard]] bool looks_like_utp(std::span<const char> datagram) noexcept;

// Parses one datagram. Errors (errc::syntax or errc::limit_exceeded) name the field and
// the byte offset: short header, bad version, bad type, truncated extension, an empty or
// second selective ACK (a longer one than max_sack_bytes is cut to it), a chain longer than max_extensions, data on a
// packet type that carries none.
[[nodiscard]] result<packet> parse_packet(std::span<const char> datagram);

// Writes header (+ selective ACK when `sack` is not empty; its size must be a non-zero
// multiple of 4, at most max_sack_bytes) into `out`, which must hold header_size +
// 2 + sack.size() bytes. Returns the bytes written; the payload goes after them.
std::size_t write_header(char* out, const header& h, std::span<const std::uint8_t> sack = {}) noexcept;

// Sequence numbers are 16 bits and wrap: a comes before b when b - a is in (0, 0x8000).
[[nodiscard]] constexpr bool seq_less(std::uint16_t a, std::uint16_t b) noexcept {
  return a != b && static_cast<std::uint16_t>(b - a) < 0x8000;
}

}  // namespace shoal::net::utp
