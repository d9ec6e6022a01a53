// BEP 11 peer exchange messages (ut_pex): compact IPv4/IPv6 contacts added and dropped,
// with per-contact flags. Pure codecs.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace shoal::wire {

inline constexpr std::string_view ut_pex = "ut_pex";
// Contacts taken from one received message (the BEP allows 50 after the first message;
// the first may carry more).
inline constexpr std::size_t max_pex_contacts = 200;
// Contacts we put in one message after the first.
inline constexpr std::size_t pex_batch = 50;

enum pex_flag : std::uint8_t {
  pex_encryption = 0x01,
  pex_seed = 0x02,
  pex_utp = 0x04,
  pex_holepunch = 0x08,
  pex_reachable = 0x10,
};

struct pex_message {
  std::vector<std::pair<boost::asio::ip::tcp::endpoint, std::uint8_t>> added;  // contact, flags
  std::vector<boost::asio::ip::tcp::endpoint> dropped;
};

[[nodiscard]] std::string encode_pex(const pex_message& m);
// Takes at most max_pex_contacts of each list; port-0 contacts are skipped; a message
// with none of added/added6/dropped/dropped6 is an error.
[[nodiscard]] result<pex_message> decode_pex(std::string_view payload);

}  // namespace shoal::wire
