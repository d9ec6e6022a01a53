// BEP 10 extension handshake (with BEP 21 upload_only and the reqq / yourip fields).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace shoal::wire {

inline constexpr std::uint32_t max_reqq = 2000;  // a peer's advertised queue is capped here

struct ext_handshake {
  std::map<std::string, std::uint8_t, std::less<>> messages;  // "m": name -> id (0 = disabled)
  std::string client;                                         // "v"
  std::optional<std::uint32_t> reqq;                          // request queue depth it accepts
  std::optional<std::uint16_t> listen_port;                   // "p"
  std::string yourip;                                         // 4 or 16 raw bytes
  bool upload_only = false;                                   // BEP 21
  std::optional<std::uint64_t> metadata_size;                 // BEP 9
};

[[nodiscard]] std::string encode_ext_handshake(const ext_handshake& h);
// Unknown keys are ignored; wrong-typed known keys are ignored too (peers differ), but a
// payload that is not a bencoded dictionary is an error.
[[nodiscard]] result<ext_handshake> decode_ext_handshake(std::string_view payload);

}  // namespace shoal::wire
