// Fuzz target for the decoder of the messages two sync devices exchange inside their
// secure channel (sync::decode_message). Checks, for every input:
//  - decoding never crashes; an error names a sync message;
//  - a decoded message is within every bound (records per batch and their sizes, signature
//    length, block request fields, chunk and error sizes);
//  - it encodes to a message that decodes to the same thing and encodes to the same bytes
//    (the input itself may carry keys the decoder ignores).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "check.hpp"
#include "sync/index.hpp"
#include "sync/messages.hpp"
#include "sync/secure_channel.hpp"

namespace {

void check_bounds(const shoal::sync::message& m) {
  using namespace shoal::sync;
  if (const auto* ix = std::get_if<msg_index>(&m)) {
    FUZZ_CHECK(ix->records.size() <= max_batch_records);
    for (const auto& r : ix->records) {
      FUZZ_CHECK(r.canonical.size() <= max_record_bytes);
      FUZZ_CHECK(r.signature.size() == 64);
      FUZZ_CHECK(r.seq > 0);
    }
  } else if (const auto* br = std::get_if<msg_block_request>(&m)) {
    FUZZ_CHECK(br->hash.size() == 32);
    FUZZ_CHECK(br->path.size() <= max_path_bytes);
    FUZZ_CHECK(br->block < max_blocks);
    FUZZ_CHECK(br->offset < max_block_size);
    FUZZ_CHECK(br->length > 0 && br->length <= max_chunk_bytes);
  } else if (const auto* b = std::get_if<msg_block>(&m)) {
    FUZZ_CHECK(b->data.size() <= max_chunk_bytes);
    FUZZ_CHECK(b->error.size() <= 1024);
    FUZZ_CHECK(b->data.empty() || b->error.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shoal::sync;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = decode_message(in);
  if (!m) {
    FUZZ_CHECK(m.err().message().rfind("sync message: ", 0) == 0);
    return 0;
  }
  FUZZ_CHECK(in.size() <= max_message_bytes);
  check_bounds(*m);
  const std::string once = encode(*m);
  auto again = decode_message(once);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->index() == m->index());
  check_bounds(*again);
  FUZZ_CHECK(encode(*again) == once);
  return 0;
}
