// Tracker protocol codecs (pure): HTTP announce URLs and bencoded replies (BEP 3, 23
// compact peers, 7 IPv6 peers, 24 external IP, 48 scrape) and UDP tracker packets
// (BEP 15).
#pragma once

#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal::tracker {

inline constexpr std::size_t max_reply_size = 4u << 20;  // bytes of one tracker reply
inline constexpr std::size_t max_reply_peers = 10000;    // peers taken from one reply
// Seconds: a tracker's interval is followed as given within these bounds (a tracker asking
// for 0 or 1 s is not obeyed to the letter; one asking for days is asked again in 6 h).
inline constexpr std::uint32_t min_interval = 5;
inline constexpr std::uint32_t max_interval = 6 * 3600;

enum class event { none, completed, started, stopped };

struct announce_request {
  sha1_digest info_hash{};
  std::array<std::uint8_t, 20> peer_id{};
  std::uint16_t port = 0;
  std::uint64_t uploaded = 0, downloaded = 0, left = 0;
  event ev = event::none;
  std::uint32_t numwant = 50;
  std::uint32_t key = 0;
};

struct announce_response {
  std::uint32_t interval = 1800;
  std::optional<std::uint32_t> min_interval;
  std::optional<std::uint32_t> complete, incomplete;
  std::vector<boost::asio::ip::tcp::endpoint> peers;
  std::string warning;
  std::optional<boost::asio::ip::address> external_ip;
};

struct scrape_entry {
  std::uint32_t complete = 0, incomplete = 0, downloaded = 0;
};

// The announce URL with the request's query parameters appended.
[[nodiscard]] std::string announce_url(std::string_view base, const announce_request& r);
// What logs and error lines show of a tracker or web-seed URL: scheme://host:port/path.
// The query (peer_id, key, passkeys), user info and fragment are left out.
[[nodiscard]] std::string redact_url(std::string_view url);
// The scrape URL for an announce URL (BEP 48), or nullopt if the tracker has none.
[[nodiscard]] std::optional<std::string> scrape_url(std::string_view announce, const sha1_digest& h);
// The same for several torrents at once: one info_hash parameter each.
[[nodiscard]] std::optional<std::string> scrape_url(std::string_view announce, const std::vector<sha1_digest>& hashes);
// A tracker's "failure reason" becomes an error carrying that text.
[[nodiscard]] result<announce_response> parse_announce_reply(std::string_view body);
[[nodiscard]] result<scrape_entry> parse_scrape_reply(std::string_view body, const sha1_digest& h);
// How a scrape of many torrents on one tracker is split into requests: [first, last)
// ranges of `hashes`. UDP: 74 a packet (BEP 15's limit); HTTP(S): as many as keep the
// URL within max_scrape_url bytes (trackers refuse longer request targets: shoal's own
// at 2,048 bytes), so about 28 a request.
inline constexpr std::size_t max_udp_scrape = 74;
inline constexpr std::size_t max_scrape_url = 2000;
[[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> scrape_batches(std::string_view announce,
                                                                              const std::vector<sha1_digest>& hashes);
// Every torrent asked for, in order: nullopt where the reply has no entry for it.
[[nodiscard]] result<std::vector<std::optional<scrape_entry>>> parse_scrape_replies(
    std::string_view body, const std::vector<sha1_digest>& hashes);

namespace detail {
// Big-endian integers of `bytes` bytes, as the UDP tracker protocol writes them.
inline void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}
inline std::uint64_t get(std::string_view s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
  return v;
}
}  // namespace detail

// BEP 15.
inline constexpr std::uint64_t udp_protocol_id = 0x41727101980ull;
[[nodiscard]] std::string udp_connect_request(std::uint32_t transaction);
[[nodiscard]] result<std::uint64_t> udp_connect_reply(std::string_view pkt, std::uint32_t transaction);
[[nodiscard]] std::string udp_announce_request(std::uint64_t connection, std::uint32_t transaction,
                                               const announce_request& r);
// Scrape (action 2) of up to 74 info-hashes, and its reply: one entry per hash asked.
[[nodiscard]] std::string udp_scrape_request(std::uint64_t connection, std::uint32_t transaction,
                                             const std::vector<sha1_digest>& hashes);
[[nodiscard]] result<std::vector<scrape_entry>> udp_scrape_reply(std::string_view pkt, std::uint32_t transaction,
                                                                 std::size_t count);
[[nodiscard]] result<announce_response> udp_announce_reply(std::string_view pkt, std::uint32_t transaction, bool ipv6);

}  // namespace shoal::tracker
