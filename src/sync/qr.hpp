// A QR code encoder (ISO/IEC 18004, model 2) for short text such as a folder key: byte or
// alphanumeric mode (alphanumeric when every character is in its set: digits, A-Z and
// " $%*+-./:"), error correction level L or M, versions 1 to 10 (up to 271 bytes at L, 213 at M),
// Reed-Solomon codes over GF(256), and the mask with the lowest penalty unless one is asked
// for. render_half_blocks draws it for a terminal, two rows of modules per line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace shoal::sync {

enum class qr_ecc { low, medium };

struct qr_code {
  int version = 0;
  int size = 0;  // modules per side: 17 + 4 * version
  int mask = 0;
  qr_ecc ecc = qr_ecc::medium;
  std::vector<std::uint8_t> modules;  // size * size, row major; 1 is dark
  [[nodiscard]] bool dark(int x, int y) const { return modules[static_cast<std::size_t>(y * size + x)] != 0; }
};

// The smallest version that holds `text` at `ecc`; `mask` 0-7 forces a mask, -1 picks the
// one with the lowest penalty. Errors: errc::limit_exceeded (too long for version 10).
[[nodiscard]] result<qr_code> qr_encode(std::string_view text, qr_ecc ecc = qr_ecc::medium, int mask = -1);

// The code with a quiet zone of `quiet` modules, drawn with ' ', '▀', '▄' and '█', one line
// per two rows of modules. Light modules are the drawn ones, for the usual light text on a
// dark terminal; with `dark_on_light` the dark modules are (for dark text on light).
[[nodiscard]] std::string render_half_blocks(const qr_code& q, int quiet = 4, bool dark_on_light = false);

}  // namespace shoal::sync
