// BEP 9 ut_metadata messages: request, data (a bencoded header followed by up to 16 KiB
// of the info dictionary) and reject. Pure codecs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace shoal::wire {

inline constexpr std::uint32_t metadata_piece_size = 16 * 1024;
inline constexpr std::uint64_t max_metadata_size = 64u << 20;  // bytes of an info dictionary
inline constexpr std::string_view ut_metadata = "ut_metadata";

enum class metadata_msg : std::uint8_t { request = 0, data = 1, reject = 2 };

struct metadata_message {
  metadata_msg type = metadata_msg::request;
  std::uint32_t piece = 0;
  std::uint64_t total_size = 0;  // data only
  std::string_view data;         // data only: a view into the payload
};

[[nodiscard]] std::string encode_metadata_request(std::uint32_t piece);
[[nodiscard]] std::string encode_metadata_reject(std::uint32_t piece);
[[nodiscard]] std::string encode_metadata_data(std::uint32_t piece, std::uint64_t total_size, std::string_view data);
// Errors for malformed messages, unknown types, pieces past max_metadata_size, data that
// is longer than a piece.
[[nodiscard]] result<metadata_message> decode_metadata_message(std::string_view payload);

// Number of 16 KiB pieces in metadata of `size` bytes.
[[nodiscard]] constexpr std::uint32_t metadata_pieces(std::uint64_t size) {
  return static_cast<std::uint32_t>((size + metadata_piece_size - 1) / metadata_piece_size);
}

}  // namespace shoal::wire
