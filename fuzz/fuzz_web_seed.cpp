// Web seed reply headers (BEP 19): Content-Range and Retry-After parsing never crashes;
// what parses is consistent (first <= last < total) and, written back in the canonical
// form, parses to the same value.
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "session/web_seed_codec.hpp"

using namespace shoal::web_seed_codec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = parse_content_range(in)) {
    FUZZ_CHECK(r->first <= r->last);
    FUZZ_CHECK(!r->total || r->last < *r->total);
    const std::string again = "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) + "/" +
                              (r->total ? std::to_string(*r->total) : std::string("*"));
    auto r2 = parse_content_range(again);
    FUZZ_CHECK(r2 && *r2 == *r);
  }
  if (auto s = parse_retry_after(in)) {
    FUZZ_CHECK(s->count() >= 0 && s->count() <= 86400);
    auto s2 = parse_retry_after(std::to_string(s->count()));
    FUZZ_CHECK(s2 && *s2 == *s);
  }
  // Percent-encoding keeps only unreserved bytes and %XX.
  const std::string enc = encode_component(in);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    const char c = enc[i];
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (c == '%') {
      FUZZ_CHECK(i + 2 < enc.size());
      i += 2;
      continue;
    }
    FUZZ_CHECK(unreserved);
  }
  return 0;
}
