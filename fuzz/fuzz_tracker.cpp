// Tracker replies: bencoded HTTP announce and scrape replies (one torrent and several),
// BEP 15 UDP announce and scrape replies. Peers taken from a reply are bounded and have
// ports; intervals are clamped.
#include <cstdint>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "tracker/announce.hpp"

using namespace shoal;

namespace {
void check_reply(const tracker::announce_response& r) {
  FUZZ_CHECK(r.interval >= tracker::min_interval && r.interval <= tracker::max_interval);
  FUZZ_CHECK(!r.min_interval || (*r.min_interval >= tracker::min_interval && *r.min_interval <= tracker::max_interval));
  FUZZ_CHECK(r.peers.size() <= 2 * tracker::max_reply_peers);
  for (const auto& p : r.peers)
    FUZZ_CHECK(p.port() != 0);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = tracker::parse_announce_reply(in)) {
    check_reply(*r);
  } else {
    FUZZ_CHECK(!r.err().detail.empty());
  }
  sha1_digest h{};
  if (size >= 20) std::copy_n(data, 20, h.begin());
  (void)tracker::parse_scrape_reply(in, h);
  // Several torrents at once: one answer per hash asked, in order.
  const std::vector<sha1_digest> asked{h, sha1_digest{}, h};
  if (auto r = tracker::parse_scrape_replies(in, asked)) FUZZ_CHECK(r->size() == asked.size());
  const std::uint32_t tid =
      size >= 8 ? static_cast<std::uint32_t>(data[4]) << 24 | data[5] << 16 | data[6] << 8 | data[7] : 0;
  (void)tracker::udp_connect_reply(in, tid);
  for (std::size_t n : {std::size_t{1}, std::size_t{3}, tracker::max_udp_scrape}) {
    if (auto r = tracker::udp_scrape_reply(in, tid, n)) FUZZ_CHECK(r->size() == n && in.size() >= 8 + 12 * n);
  }
  for (bool v6 : {false, true}) {
    if (auto r = tracker::udp_announce_reply(in, tid, v6)) check_reply(*r);
  }
  return 0;
}
