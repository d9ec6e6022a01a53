// Fuzz target for the magnet link parser and writer.
//
// Checks, for every input:
//  - parse_magnet never crashes; an error is bad_magnet or limit_exceeded with a message;
//  - on success the link has an info-hash, trackers are unique and non-empty, web seeds
//    non-empty, peers have a port, select-only ranges are ordered and bounded;
//  - to_uri() of the result parses again and gives the same info-hashes and every other
//    field, and writing that again gives the same URI (unless the written URI passes
//    max_magnet_length, when parsing it must fail for that reason).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "core/magnet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = shoal::parse_magnet(in);
  if (!r) {
    const shoal::error& e = r.err();
    FUZZ_CHECK(e.code == shoal::errc::bad_magnet || e.code == shoal::errc::limit_exceeded);
    FUZZ_CHECK(!e.detail.empty());
    return 0;
  }
  const shoal::magnet_link& m = *r;
  FUZZ_CHECK(m.info_hash_v1 || m.info_hash_v2);
  for (std::size_t i = 0; i < m.trackers.size(); ++i) {
    FUZZ_CHECK(!m.trackers[i].empty());
    FUZZ_CHECK(std::find(m.trackers.begin() + static_cast<std::ptrdiff_t>(i) + 1, m.trackers.end(), m.trackers[i]) ==
               m.trackers.end());
  }
  for (const auto& w : m.web_seeds)
    FUZZ_CHECK(!w.empty());
  for (const auto& p : m.peers) {
    const std::size_t colon = p.rfind(':');
    FUZZ_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < p.size());
  }
  for (const auto& [a, b] : m.select_only)
    FUZZ_CHECK(a <= b && b <= shoal::max_select_index);

  const std::string uri = shoal::to_uri(m);
  auto back = shoal::parse_magnet(uri);
  if (uri.size() > shoal::max_magnet_length) {
    FUZZ_CHECK(!back && back.err().code == shoal::errc::limit_exceeded);
    return 0;
  }
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->info_hash_v1 == m.info_hash_v1);
  FUZZ_CHECK(back->info_hash_v2 == m.info_hash_v2);
  FUZZ_CHECK(back->name == m.name);
  FUZZ_CHECK(back->trackers == m.trackers);
  FUZZ_CHECK(back->web_seeds == m.web_seeds);
  FUZZ_CHECK(back->peers == m.peers);
  FUZZ_CHECK(back->select_only == m.select_only);
  FUZZ_CHECK(shoal::to_uri(*back) == uri);
  return 0;
}
