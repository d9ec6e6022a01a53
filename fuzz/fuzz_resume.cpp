// Resume files are read back from disk after crashes: anything may be in them. A file
// that decodes must describe exactly the torrent asked for.
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "core/metainfo.hpp"
#include "storage/resume.hpp"

using namespace shoal;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string key(20, 'k');
  for (std::uint32_t pieces : {1u, 7u, 8u, 100u}) {
    auto r = decode_resume(in, key, pieces);
    if (!r) continue;
    FUZZ_CHECK(r->info_hash == key);
    FUZZ_CHECK(r->pieces.size() == pieces);
    FUZZ_CHECK(r->pieces.count() <= pieces);
    auto again = decode_resume(encode_resume(*r), key, pieces);
    FUZZ_CHECK(again.ok() && again->pieces.bytes() == r->pieces.bytes());
    // Version 2's settings survive a round trip too.
    FUZZ_CHECK(again->labels == r->labels && again->file_priorities == r->file_priorities);
    FUZZ_CHECK(again->files.size() == r->files.size() && again->paused == r->paused);
    FUZZ_CHECK(again->goal_ratio.has_value() == r->goal_ratio.has_value());
    FUZZ_CHECK(again->save_path == r->save_path && again->queue_position == r->queue_position);
    // Renamed files: only clean relative paths are ever taken, and they survive.
    FUZZ_CHECK(again->renamed == r->renamed && again->name == r->name && r->name.size() <= 1024);
    for (const auto& [f, p] : r->renamed)
      FUZZ_CHECK(f < (1u << 24) && is_clean_relative_path(p));
  }
  return 0;
}
