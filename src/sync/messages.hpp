// The messages two devices exchange inside a secure_channel: bencoded dictionaries with a
// type "t". Decoding is strict and bounded; a message that breaks a rule ends the session.
//
//   have    {seq}                      "my index has grown to seq": ask me for it
//   ireq    {since}                    index_request: my records after `since`, please
//   index   {recs: [[canonical, signature, seq], ...], done}
//                                      a batch (at most max_batch_records or max_batch_bytes)
//   breq    {id, path, block, hash, off, len}
//                                      block_request: bytes [off, off+len) of block `block` of
//                                      `path`, whose SHA-256 is `hash` (len <= max_chunk_bytes)
//   block   {id, data} or {id, err}    the bytes, or why not
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"

namespace shoal::sync {

inline constexpr std::size_t max_batch_records = 500;
inline constexpr std::size_t max_batch_bytes = 2 * 1024 * 1024;
inline constexpr std::uint32_t max_chunk_bytes = 1024 * 1024;

struct msg_have {
  std::uint64_t seq = 0;
};
struct msg_index_request {
  std::uint64_t since = 0;
};
struct wire_record {
  std::string canonical;
  std::string signature;
  std::uint64_t seq = 0;
};
struct msg_index {
  std::vector<wire_record> records;
  bool done = false;
};
struct msg_block_request {
  std::uint64_t id = 0;
  std::string path;
  std::uint64_t block = 0;
  std::string hash;  // 32 bytes
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
};
struct msg_block {
  std::uint64_t id = 0;
  std::string data;
  std::string error;  // set: no data
};

using message = std::variant<msg_have, msg_index_request, msg_index, msg_block_request, msg_block>;

[[nodiscard]] std::string encode(const message& m);
// Errors name the rule broken (unknown type, a field missing or out of its bounds).
[[nodiscard]] result<message> decode_message(std::string_view bytes);

}  // namespace shoal::sync
