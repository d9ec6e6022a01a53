// KRPC, the DHT's message format (BEP 5), with the fields of BEP 32 (IPv6), 33 (scrape),
// 42 (the "ip" field), 43 (read-only), 44 (items) and 51 (sample_infohashes). Pure: no I/O,
// no coroutines, so the fuzz target links it.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal::dht {

using udp = boost::asio::ip::udp;
using tcp = boost::asio::ip::tcp;
using node_id = sha1_digest;

inline constexpr std::size_t max_packet = 1500;      // bytes we send or accept in one datagram
inline constexpr std::size_t max_item_value = 1000;  // BEP 44: bencoded "v" at most this long
inline constexpr std::size_t max_salt = 64;          // BEP 44
inline constexpr std::size_t max_transaction_id = 16;
inline constexpr std::size_t max_nodes_in_message = 64;    // per family, more is ignored
inline constexpr std::size_t max_values_in_message = 200;  // peers taken from one reply

// KRPC error codes (BEP 5, 44).
enum error_code : int {
  err_generic = 201,
  err_server = 202,
  err_protocol = 203,
  err_method_unknown = 204,
  err_message_too_big = 205,
  err_invalid_signature = 206,
  err_salt_too_big = 207,
  err_cas_mismatch = 301,
  err_sequence_too_old = 302,
};

enum class msg_type : std::uint8_t { query, response, error };
enum class method : std::uint8_t { unknown, ping, find_node, get_peers, announce_peer, get, put, sample_infohashes };

[[nodiscard]] std::string_view method_name(method m);
[[nodiscard]] method method_from_name(std::string_view s);

struct node_entry {
  node_id id{};
  udp::endpoint ep;
  bool operator==(const node_entry&) const = default;
};

// One message, query, response or error. Fields a message does not carry stay empty.
struct message {
  std::string tid;  // transaction id
  msg_type type = msg_type::query;
  method meth = method::unknown;    // queries only
  std::string method_text;          // as received (for "method unknown" errors)
  bool read_only = false;           // BEP 43 "ro"
  std::string version;              // "v": client and version, optional
  std::optional<udp::endpoint> ip;  // BEP 42: the requester's address as seen by the replier

  std::optional<node_id> id;
  std::optional<node_id> target;     // find_node, get, sample_infohashes
  std::optional<node_id> info_hash;  // get_peers, announce_peer
  std::string token;
  std::optional<std::uint16_t> port;
  bool implied_port = false;
  bool want4 = false, want6 = false;  // BEP 32 "want"; neither: the requester's own family
  std::vector<node_entry> nodes, nodes6;
  std::vector<tcp::endpoint> values;

  // BEP 33.
  bool scrape = false;
  bool seed = false;               // announce_peer: we are a seed
  bool noseed = false;             // get_peers: leave seeds out of the values
  std::string bf_seeds, bf_peers;  // 256-byte bloom filters

  // BEP 44. `v` is the raw bencoded value.
  std::string v;
  std::string k;    // ed25519 public key, 32 bytes
  std::string sig;  // 64 bytes
  std::string salt;
  std::optional<std::int64_t> seq, cas;

  // BEP 51.
  std::optional<std::int64_t> interval, num;
  std::string samples;  // 20-byte hashes back to back

  // Errors.
  int error_code = 0;
  std::string error_text;
};

// Decodes a datagram. Fails on anything that is not a well-formed KRPC message: not a
// dict, no "t" or "y", a query without "q" or "a", an id that is not 20 bytes, truncated
// compact nodes. Unknown keys are ignored (BEP 5 asks for that).
[[nodiscard]] result<message> decode(std::string_view packet);

// Encodes a message; keys in canonical order. `v` must be valid bencoding.
[[nodiscard]] std::string encode(const message& m);

// Compact forms (BEP 5, 32).
[[nodiscard]] std::string compact_nodes(const std::vector<node_entry>& nodes, bool v6);
[[nodiscard]] std::string compact_endpoint(const udp::endpoint& ep);
[[nodiscard]] std::optional<udp::endpoint> parse_compact_endpoint(std::string_view s);

// The DHT's pseudo-random source (random ids, samples), one per thread.
[[nodiscard]] std::mt19937_64& random_engine();

// XOR distance helpers.
[[nodiscard]] node_id distance(const node_id& a, const node_id& b);
// Number of leading bits a and b share (160 if equal).
[[nodiscard]] int common_prefix_bits(const node_id& a, const node_id& b);
// True if a is closer to target than b.
[[nodiscard]] bool closer(const node_id& target, const node_id& a, const node_id& b);

// BEP 42: the node-id prefix an address must have, and whether an id is valid for it.
// Loopback and private addresses are exempt (any id is valid).
[[nodiscard]] node_id make_node_id(const boost::asio::ip::address& ip, std::uint8_t r, const node_id& random);
[[nodiscard]] bool node_id_valid_for(const node_id& id, const boost::asio::ip::address& ip);
[[nodiscard]] bool is_local_address(const boost::asio::ip::address& ip);
// --local: the addresses a host name stands for without any name lookup, when it is one
// that --local allows: an IP literal that is_local_address (brackets of an IPv6 literal
// allowed), or `localhost` (127.0.0.1 and ::1, never asked of a resolver). Empty for
// anything else, which --local skips.
[[nodiscard]] std::vector<boost::asio::ip::address> local_host_addresses(std::string_view host);
[[nodiscard]] std::uint32_t crc32c(const std::uint8_t* data, std::size_t n);

// BEP 44: the bytes an item's signature covers, and the target of an item.
[[nodiscard]] std::string signature_buffer(std::string_view salt, std::int64_t seq, std::string_view v);
[[nodiscard]] node_id mutable_target(std::string_view k, std::string_view salt);
[[nodiscard]] node_id immutable_target(std::string_view v);

// BEP 33: a 2048-bit bloom filter over addresses.
void bloom_insert(std::string& filter, const boost::asio::ip::address& ip);
// The estimated number of distinct items in a filter (BEP 33's formula).
[[nodiscard]] double bloom_estimate(std::string_view filter);

}  // namespace shoal::dht
