// Fuzz target for the decoder of a peer's signed index record (sync::decode_record).
//
// A fuzzer cannot forge Ed25519 signatures, so the harness signs each input with a fixed
// folder key: that reaches the decoder behind the signature check. Checks, for every input:
//  - with a wrong signature (all zeros, or by another key) decoding fails, never crashes;
//  - with the right signature decoding never crashes; an error names a sync record;
//  - a decoded record passes validate_record, is within every bound (path, target, blocks,
//    version vector, mode), and re-encodes to exactly the input bytes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "sync/index.hpp"
#include "sync/keys.hpp"

namespace {
const shoal::sync::folder_key& the_key(std::uint8_t b) {
  static const auto k1 = [] {
    std::array<std::uint8_t, shoal::sync::seed_bytes> s{};
    s.fill(7);
    return shoal::sync::folder_key::from_seed(s);
  }();
  static const auto k2 = [] {
    std::array<std::uint8_t, shoal::sync::seed_bytes> s{};
    s.fill(9);
    return shoal::sync::folder_key::from_seed(s);
  }();
  return b == 1 ? k1 : k2;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shoal::sync;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto& key = the_key(1);
  const std::string zero(signature_bytes, '\0');
  FUZZ_CHECK(!decode_record(in, zero, key.pub()).ok());
  if (in.size() > max_record_bytes) {
    FUZZ_CHECK(!decode_record(in, zero, key.pub()).ok());
    return 0;
  }
  const auto sig = key.sign(signed_bytes(in));
  const std::string sig_s(reinterpret_cast<const char*>(sig.data()), sig.size());
  const auto other = the_key(2).sign(signed_bytes(in));
  FUZZ_CHECK(
      !decode_record(in, std::string(reinterpret_cast<const char*>(other.data()), other.size()), key.pub()).ok());
  auto r = decode_record(in, sig_s, key.pub());
  if (!r) {
    FUZZ_CHECK(r.err().message().rfind("sync record: ", 0) == 0);
    return 0;
  }
  FUZZ_CHECK(validate_record(*r).ok());
  FUZZ_CHECK(!r->path.empty() && r->path.size() <= max_path_bytes);
  FUZZ_CHECK(r->target.size() <= max_target_bytes);
  FUZZ_CHECK(r->block_total() <= max_blocks && r->blocks.size() % 32 == 0);
  FUZZ_CHECK(!r->version.empty() && r->version.size() <= max_version_entries);
  FUZZ_CHECK(r->mode <= max_mode);
  FUZZ_CHECK(r->signature == sig_s);
  FUZZ_CHECK(encode_record(*r) == in);
  return 0;
}
