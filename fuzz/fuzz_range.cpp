// Fuzz target for streaming's HTTP parsing without a session (src/stream/http_codec).
//
// Checks, for every input:
//  - parse_range never crashes, against a size taken from the input's first 8 bytes and
//    against a few fixed sizes; an ok range lies inside the file (first <= last < size),
//    and written back as "bytes=F-L" it parses to the same range;
//  - parse_stream_route of the input as a path (and as path?query) never crashes; a route
//    has a 40 or 64 digit lower-case hex hash;
//  - srt_to_vtt starts with the WEBVTT header and holds no CR; make_m3u of the input as a
//    title and URL has exactly 3 lines (the input cannot add one); safe_host gives only
//    the characters it allows.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "check.hpp"
#include "stream/http_codec.hpp"

namespace {

void check_range(std::string_view in, std::uint64_t size) {
  using namespace shoal::stream;
  auto r = parse_range(in, size);
  if (r.status != range_status::ok) return;
  FUZZ_CHECK(r.range.first <= r.range.last);
  FUZZ_CHECK(r.range.last < size);
  const std::string again = "bytes=" + std::to_string(r.range.first) + "-" + std::to_string(r.range.last);
  auto back = parse_range(again, size);
  FUZZ_CHECK(back.status == range_status::ok && back.range == r.range);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shoal::stream;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::uint64_t file_size = 0;
  if (size >= 8) std::memcpy(&file_size, data, 8);
  check_range(in, file_size);
  if (size >= 8) check_range(in.substr(8), file_size);
  for (std::uint64_t s : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1000}, UINT64_MAX})
    check_range(in, s);

  const auto q = in.find('?');
  for (auto route :
       {parse_stream_route(in, {}),
        parse_stream_route(in.substr(0, q), q == std::string_view::npos ? std::string_view{} : in.substr(q + 1))}) {
    if (!route) continue;
    FUZZ_CHECK(route->hash.size() == 40 || route->hash.size() == 64);
    for (char c : route->hash)
      FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  }

  const std::string vtt = srt_to_vtt(in);
  FUZZ_CHECK(vtt.rfind("WEBVTT\n\n", 0) == 0);
  FUZZ_CHECK(vtt.find('\r') == std::string::npos);

  const std::string m3u = make_m3u({{std::string(in), std::string(in)}});
  std::size_t lines = 0;
  for (char c : m3u)
    lines += c == '\n' ? 1 : 0;
  FUZZ_CHECK(lines == 3);

  if (auto h = safe_host(in)) {
    FUZZ_CHECK(!h->empty() && h->size() <= 255);
    FUZZ_CHECK(h->find_first_of("/@ ?#\r\n") == std::string::npos);
  }
  return 0;
}
