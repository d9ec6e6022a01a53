// Peer wire messages: the BEP 3 handshake and messages, BEP 6 fast extension, BEP 10
// extended messages and BEP 52 hash messages. Pure codecs: bytes in, values out.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal::wire {

inline constexpr std::size_t handshake_size = 68;
inline constexpr std::string_view protocol_name = "BitTorrent protocol";
// Largest message body accepted (a 16 KiB block needs 9 + 16384; bitfields of 2^21
// pieces need 2^18 + 1). Anything longer closes the connection.
inline constexpr std::uint32_t max_message_size = (1u << 20) + 13;
inline constexpr std::uint32_t block_size = 16 * 1024;
// Largest block a peer may request from us (BEP 3 clients use 16 KiB; 128 KiB is the
// conventional ceiling before a request counts as abuse).
inline constexpr std::uint32_t max_request_length = 128 * 1024;

using peer_id = std::array<std::uint8_t, 20>;

struct handshake {
  std::array<std::uint8_t, 8> reserved{};
  sha1_digest info_hash{};
  peer_id id{};

  [[nodiscard]] bool extension_protocol() const { return (reserved[5] & 0x10) != 0; }
  [[nodiscard]] bool fast_extension() const { return (reserved[7] & 0x04) != 0; }
  [[nodiscard]] bool dht() const { return (reserved[7] & 0x01) != 0; }
  [[nodiscard]] bool v2_upgrade() const { return (reserved[7] & 0x10) != 0; }
  void set_extension_protocol() { reserved[5] |= 0x10; }
  void set_fast_extension() { reserved[7] |= 0x04; }
  void set_dht() { reserved[7] |= 0x01; }
};

[[nodiscard]] std::string encode_handshake(const handshake& h);
// Decodes the 68-byte handshake; errors on a wrong protocol string.
[[nodiscard]] result<handshake> decode_handshake(std::string_view bytes);

enum class msg : std::uint8_t {
  choke = 0,
  unchoke = 1,
  interested = 2,
  not_interested = 3,
  have = 4,
  bitfield = 5,
  request = 6,
  piece = 7,
  cancel = 8,
  port = 9,
  suggest = 0x0d,
  have_all = 0x0e,
  have_none = 0x0f,
  reject = 0x10,
  allowed_fast = 0x11,
  extended = 20,
  hash_request = 21,
  hashes = 22,
  hash_reject = 23,
  keep_alive = 0xff,  // not on the wire: a zero-length message
};

[[nodiscard]] std::string_view msg_name(msg m);

// One decoded message. Fields not used by a type are zero/empty; views point into the
// caller's buffer.
struct message {
  msg type = msg::keep_alive;
  std::uint32_t index = 0;   // piece index (have, request, piece, cancel, suggest, reject, allowed_fast)
  std::uint32_t begin = 0;   // byte offset in the piece
  std::uint32_t length = 0;  // request/cancel/reject length
  std::uint16_t port = 0;    // DHT port
  std::uint8_t ext_id = 0;   // extended message id
  std::string_view payload;  // bitfield bits, piece data, extended payload, hash message body
};

// Decodes a message body (the bytes after the 4-byte length prefix). An empty body is
// a keep-alive. Errors name the message and what is wrong with it.
[[nodiscard]] result<message> decode_message(std::string_view body);

// Reads the big-endian length prefix; nullopt if fewer than 4 bytes are available.
[[nodiscard]] std::optional<std::uint32_t> peek_length(std::string_view buf);

// Encoders append one framed message (length prefix included) to `out`.
void put_simple(std::string& out, msg m);  // choke .. not_interested, have_all, have_none
void put_keep_alive(std::string& out);
void put_have(std::string& out, std::uint32_t index);
void put_bitfield(std::string& out, std::string_view bits);
void put_request(std::string& out, msg m, std::uint32_t index, std::uint32_t begin,
                 std::uint32_t length);  // request, cancel, reject
// A piece message header; the caller appends `length` bytes of data after it.
void put_piece_header(std::string& out, std::uint32_t index, std::uint32_t begin, std::uint32_t length);
void put_index(std::string& out, msg m, std::uint32_t index);  // suggest, allowed_fast
void put_port(std::string& out, std::uint16_t port);
void put_extended(std::string& out, std::uint8_t ext_id, std::string_view payload);

// BEP 52 hash messages. A request names a file by its merkle root, a layer (`base`: 0 is
// the 16 KiB block hashes), `length` hashes from `index`, and how many layers of proof
// above the base to include.
struct hash_request {
  sha256_digest root{};
  std::uint32_t base = 0, index = 0, length = 0, proof_layers = 0;
  friend bool operator==(const hash_request&, const hash_request&) = default;
};
inline constexpr std::size_t hash_request_size = 48;
// Largest request we send or serve: BEP 52 says SHOULD NOT exceed 512.
inline constexpr std::uint32_t max_hash_request_length = 512;

// Decodes the body of a hash request or hash reject; checks BEP 52's rules (length a
// power of two, at least 2, index a multiple of length).
[[nodiscard]] result<hash_request> decode_hash_request(std::string_view payload);
struct hashes_message {
  hash_request req;
  std::vector<sha256_digest> hashes;  // the `length` base hashes, then the uncles, lowest first
};
[[nodiscard]] result<hashes_message> decode_hashes(std::string_view payload);
void put_hash_request(std::string& out, msg m, const hash_request& r);  // hash_request, hash_reject
void put_hashes(std::string& out, const hash_request& r, std::span<const sha256_digest> hashes);

}  // namespace shoal::wire
