// Small text codecs: hex, base32 (RFC 4648, as in magnet links), UTF-8 checks,
// human-readable sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shoal {

[[nodiscard]] std::string to_hex(std::string_view bytes);
// Decodes hex digits (either case); nullopt on odd length or a non-hex digit.
[[nodiscard]] std::optional<std::string> from_hex(std::string_view hex);
// Decodes RFC 4648 base32 without padding (either case); nullopt on a bad digit or
// a length that is not a whole number of bytes.
[[nodiscard]] std::optional<std::string> from_base32(std::string_view b32);
[[nodiscard]] std::string to_base32(std::string_view bytes);

[[nodiscard]] bool is_valid_utf8(std::string_view s);
// Replaces each invalid UTF-8 sequence with U+FFFD.
[[nodiscard]] std::string repair_utf8(std::string_view s);

// "1.50 MiB"; exact byte counts below 1 KiB ("512 B").
[[nodiscard]] std::string human_size(std::uint64_t bytes);

// Parses "16384", "16k", "16KiB", "4 MiB", "1m" into bytes; nullopt if malformed or overflowing.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view s);

}  // namespace shoal
