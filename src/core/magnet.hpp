// Magnet links: BEP 9 (btih, hex or base32), BEP 52 (btmh, v2), hybrid links with both,
// dn, tr, ws (BEP 19), xs (exact source: the .torrent's URL), x.pe (peer addresses) and so
// (BEP 53 select-only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal {

struct metainfo;

inline constexpr std::size_t max_magnet_length = 64 * 1024;
inline constexpr std::size_t max_magnet_params = 1024;
inline constexpr std::uint32_t max_select_index = 1u << 24;  // a file index in `so`

struct magnet_link {
  std::optional<sha1_digest> info_hash_v1;
  std::optional<sha256_digest> info_hash_v2;
  std::string name;                        // dn, as given (show it sanitised)
  std::vector<std::string> trackers;       // tr, in order, no duplicates
  std::vector<std::string> web_seeds;      // ws
  std::vector<std::string> exact_sources;  // xs: URLs of the .torrent, in order, no duplicates
  std::vector<std::string> peers;          // x.pe, "host:port" or "[v6]:port"
  // so: inclusive ranges of file indices.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> select_only;
};

[[nodiscard]] result<magnet_link> parse_magnet(std::string_view uri);
[[nodiscard]] std::string to_uri(const magnet_link& m);
[[nodiscard]] magnet_link magnet_from(const metainfo& m);

}  // namespace shoal
