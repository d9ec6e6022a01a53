// LSD announces (BEP 14): parsing never crashes, what parses has a port and 1..16
// info-hashes, and re-formats to a datagram that parses to the same announce.
#include <cstdint>
#include <string_view>

#include "check.hpp"
#include "lsd/lsd.hpp"

using namespace shoal;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto a = lsd::parse_announce(in);
  if (!a) {
    FUZZ_CHECK(!a.err().detail.empty());
    return 0;
  }
  FUZZ_CHECK(a->port != 0);
  FUZZ_CHECK(!a->info_hashes.empty() && a->info_hashes.size() <= lsd::max_hashes_per_announce);
  lsd::announce clean = *a;
  std::string cookie;
  for (char c : a->cookie) {
    if (c > ' ' && c < 127) cookie += c;  // a cookie that survives header trimming
  }
  clean.cookie = cookie;
  auto again = lsd::parse_announce(lsd::format_announce(clean));
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->port == clean.port && again->info_hashes == clean.info_hashes && again->cookie == clean.cookie);
  return 0;
}
