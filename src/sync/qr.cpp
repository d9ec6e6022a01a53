#include "sync/qr.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>

namespace shoal::sync {

namespace {

constexpr int max_version = 10;

struct block_layout {
  int ec_per_block;
  int blocks1, data1;  // group 1: blocks and data codewords per block
  int blocks2, data2;  // group 2 (one more data codeword per block)
};

// Per version 1..10: level L, then level M.
constexpr std::array<std::array<block_layout, 2>, max_version> layouts{{
    {{{7, 1, 19, 0, 0}, {10, 1, 16, 0, 0}}},
    {{{10, 1, 34, 0, 0}, {16, 1, 28, 0, 0}}},
    {{{15, 1, 55, 0, 0}, {26, 1, 44, 0, 0}}},
    {{{20, 1, 80, 0, 0}, {18, 2, 32, 0, 0}}},
    {{{26, 1, 108, 0, 0}, {24, 2, 43, 0, 0}}},
    {{{18, 2, 68, 0, 0}, {16, 4, 27, 0, 0}}},
    {{{20, 2, 78, 0, 0}, {18, 4, 31, 0, 0}}},
    {{{24, 2, 97, 0, 0}, {22, 2, 38, 2, 39}}},
    {{{30, 2, 116, 0, 0}, {22, 3, 36, 2, 37}}},
    {{{18, 2, 68, 2, 69}, {26, 4, 43, 1, 44}}},
}};

// Row/column centres of the alignment patterns, per version (version 1 has none).
constexpr std::array<std::array<int, 3>, max_version> alignment{{
    {{0, 0, 0}},
    {{6, 18, 0}},
    {{6, 22, 0}},
    {{6, 26, 0}},
    {{6, 30, 0}},
    {{6, 34, 0}},
    {{6, 22, 38}},
    {{6, 24, 42}},
    {{6, 26, 46}},
    {{6, 28, 50}},
}};

const block_layout& layout(int version, qr_ecc ecc) {
  return layouts[static_cast<std::size_t>(version - 1)][ecc == qr_ecc::low ? 0 : 1];
}

int data_codewords(int version, qr_ecc ecc) {
  const auto& l = layout(version, ecc);
  return l.blocks1 * l.data1 + l.blocks2 * l.data2;
}

constexpr std::string_view alnum_chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

bool is_alnum(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return alnum_chars.find(c) != std::string_view::npos; });
}

struct bit_writer {
  std::vector<std::uint8_t> bits;  // one per bit
  void put(std::uint32_t value, int n) {
    for (int i = n - 1; i >= 0; --i)
      bits.push_back(static_cast<std::uint8_t>((value >> i) & 1));
  }
};

// GF(256) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D).
std::uint8_t gf_mul(std::uint8_t a, std::uint8_t b) {
  unsigned r = 0;
  unsigned x = a;
  for (int i = 0; i < 8; ++i) {
    if ((b >> i) & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11D;
  }
  return static_cast<std::uint8_t>(r);
}

// The Reed-Solomon generator of degree n: the product of (x - a^i), i < n; highest term
// (always 1) left out.
std::vector<std::uint8_t> rs_generator(int n) {
  std::vector<std::uint8_t> g(static_cast<std::size_t>(n), 0);
  g.back() = 1;
  std::uint8_t root = 1;
  for (int i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < g.size(); ++j) {
      g[j] = gf_mul(g[j], root);
      if (j + 1 < g.size()) g[j] ^= g[j + 1];
    }
    root = gf_mul(root, 2);
  }
  return g;
}

std::vector<std::uint8_t> rs_remainder(const std::vector<std::uint8_t>& data, const std::vector<std::uint8_t>& gen) {
  std::vector<std::uint8_t> rem(gen.size(), 0);
  for (std::uint8_t b : data) {
    const std::uint8_t factor = b ^ rem.front();
    rem.erase(rem.begin());
    rem.push_back(0);
    for (std::size_t i = 0; i < rem.size(); ++i)
      rem[i] ^= gf_mul(gen[i], factor);
  }
  return rem;
}

class matrix {
 public:
  explicit matrix(int version) : version_(version), size_(17 + 4 * version) {
    const auto n = static_cast<std::size_t>(size_ * size_);
    dark_.assign(n, 0);
    fixed_.assign(n, 0);
  }
  int size() const { return size_; }
  void set(int x, int y, bool d) {
    dark_[idx(x, y)] = d ? 1 : 0;
    fixed_[idx(x, y)] = 1;
  }
  bool dark(int x, int y) const { return dark_[idx(x, y)] != 0; }
  bool fixed(int x, int y) const { return fixed_[idx(x, y)] != 0; }
  void put_data(int x, int y, bool d) { dark_[idx(x, y)] = d ? 1 : 0; }
  std::vector<std::uint8_t>& modules() { return dark_; }

  void draw_function_patterns() {
    for (int i = 0; i < size_; ++i) {  // timing
      set(6, i, i % 2 == 0);
      set(i, 6, i % 2 == 0);
    }
    finder(3, 3);
    finder(size_ - 4, 3);
    finder(3, size_ - 4);
    const auto& al = alignment[static_cast<std::size_t>(version_ - 1)];
    const int count = version_ == 1 ? 0 : (al[2] == 0 ? 2 : 3);
    for (int i = 0; i < count; ++i) {
      for (int j = 0; j < count; ++j) {
        if ((i == 0 && j == 0) || (i == 0 && j == count - 1) || (i == count - 1 && j == 0)) continue;
        align(al[static_cast<std::size_t>(i)], al[static_cast<std::size_t>(j)]);
      }
    }
    draw_format(0, qr_ecc::medium);  // reserves the format areas; drawn again with the mask
    draw_version();
  }

  void draw_format(int mask, qr_ecc ecc) {
    const int data = (ecc == qr_ecc::low ? 1 : 0) << 3 | mask;
    int rem = data;
    for (int i = 0; i < 10; ++i)
      rem = (rem << 1) ^ ((rem >> 9) * 0x537);
    const int bits = ((data << 10) | rem) ^ 0x5412;
    auto bit = [bits](int i) { return ((bits >> i) & 1) != 0; };
    for (int i = 0; i <= 5; ++i)
      set(8, i, bit(i));
    set(8, 7, bit(6));
    set(8, 8, bit(7));
    set(7, 8, bit(8));
    for (int i = 9; i < 15; ++i)
      set(14 - i, 8, bit(i));
    for (int i = 0; i < 8; ++i)
      set(size_ - 1 - i, 8, bit(i));
    for (int i = 8; i < 15; ++i)
      set(8, size_ - 15 + i, bit(i));
    set(8, size_ - 8, true);  // the dark module
  }

  void place(const std::vector<std::uint8_t>& codewords) {
    std::size_t i = 0;
    const std::size_t total = codewords.size() * 8;
    for (int right = size_ - 1; right >= 1; right -= 2) {
      if (right == 6) right = 5;
      for (int vert = 0; vert < size_; ++vert) {
        for (int j = 0; j < 2; ++j) {
          const int x = right - j;
          const bool upward = ((right + 1) & 2) == 0;
          const int y = upward ? size_ - 1 - vert : vert;
          if (fixed(x, y)) continue;
          if (i < total) {
            put_data(x, y, ((codewords[i >> 3] >> (7 - (i & 7))) & 1) != 0);
            ++i;
          }  // remainder bits stay light
        }
      }
    }
  }

  void apply_mask(int mask) {
    for (int y = 0; y < size_; ++y) {
      for (int x = 0; x < size_; ++x) {
        if (fixed(x, y)) continue;
        bool flip = false;
        switch (mask) {
          case 0:
            flip = (x + y) % 2 == 0;
            break;
          case 1:
            flip = y % 2 == 0;
            break;
          case 2:
            flip = x % 3 == 0;
            break;
          case 3:
            flip = (x + y) % 3 == 0;
            break;
          case 4:
            flip = (x / 3 + y / 2) % 2 == 0;
            break;
          case 5:
            flip = x * y % 2 + x * y % 3 == 0;
            break;
          case 6:
            flip = (x * y % 2 + x * y % 3) % 2 == 0;
            break;
          default:
            flip = ((x + y) % 2 + x * y % 3) % 2 == 0;
            break;
        }
        if (flip) dark_[idx(x, y)] ^= 1;
      }
    }
  }

  long penalty() const {
    long p = 0;
    // Runs of five or more of one colour, in rows and columns; 1:1:3:1:1 finder-like
    // patterns with four light modules on one side.
    for (int pass = 0; pass < 2; ++pass) {
      for (int a = 0; a < size_; ++a) {
        int run = 0;
        bool prev = false;
        for (int b = 0; b < size_; ++b) {
          const bool d = pass == 0 ? dark(b, a) : dark(a, b);
          if (b > 0 && d == prev) {
            ++run;
          } else {
            if (run >= 5) p += 3 + (run - 5);
            run = 1;
            prev = d;
          }
        }
        if (run >= 5) p += 3 + (run - 5);
        for (int b = 0; b + 10 < size_ + 4; ++b) {
          // Modules outside the symbol are light.
          auto at = [&](int k) {
            if (k < 0 || k >= size_) return false;
            return pass == 0 ? dark(k, a) : dark(a, k);
          };
          static constexpr std::array<bool, 7> core{true, false, true, true, true, false, true};
          bool match = true;
          for (int k = 0; k < 7 && match; ++k)
            match = at(b + k) == core[static_cast<std::size_t>(k)];
          if (!match) continue;
          const bool before = !at(b - 1) && !at(b - 2) && !at(b - 3) && !at(b - 4);
          const bool after = !at(b + 7) && !at(b + 8) && !at(b + 9) && !at(b + 10);
          if (before || after) p += 40;
        }
      }
    }
    // 2x2 blocks of one colour.
    for (int y = 0; y + 1 < size_; ++y)
      for (int x = 0; x + 1 < size_; ++x) {
        const bool d = dark(x, y);
        if (d == dark(x + 1, y) && d == dark(x, y + 1) && d == dark(x + 1, y + 1)) p += 3;
      }
    // Balance of dark and light.
    long darks = 0;
    for (auto m : dark_)
      darks += m;
    const long total = static_cast<long>(dark_.size());
    const long k = (std::labs(darks * 20 - total * 10) + total - 1) / total - 1;
    p += std::max(0L, k) * 10;
    return p;
  }

 private:
  std::size_t idx(int x, int y) const { return static_cast<std::size_t>(y * size_ + x); }

  void finder(int cx, int cy) {
    for (int dy = -4; dy <= 4; ++dy) {
      for (int dx = -4; dx <= 4; ++dx) {
        const int x = cx + dx;
        const int y = cy + dy;
        if (x < 0 || y < 0 || x >= size_ || y >= size_) continue;
        const int dist = std::max(std::abs(dx), std::abs(dy));
        set(x, y, dist != 2 && dist != 4);
      }
    }
  }

  void align(int cx, int cy) {
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        set(cx + dx, cy + dy, std::max(std::abs(dx), std::abs(dy)) != 1);
  }

  void draw_version() {
    if (version_ < 7) return;
    int rem = version_;
    for (int i = 0; i < 12; ++i)
      rem = (rem << 1) ^ ((rem >> 11) * 0x1F25);
    const long bits = static_cast<long>(version_) << 12 | rem;
    for (int i = 0; i < 18; ++i) {
      const bool d = ((bits >> i) & 1) != 0;
      const int a = size_ - 11 + i % 3;
      const int b = i / 3;
      set(a, b, d);
      set(b, a, d);
    }
  }

  int version_;
  int size_;
  std::vector<std::uint8_t> dark_;
  std::vector<std::uint8_t> fixed_;
};

}  // namespace

result<qr_code> qr_encode(std::string_view text, qr_ecc ecc, int mask) {
  if (mask < -1 || mask > 7) return error{errc::invalid_argument, "qr: mask must be 0-7 or -1"};
  const bool alnum = is_alnum(text);
  int version = 1;
  std::size_t need_bits = 0;
  for (; version <= max_version; ++version) {
    const int count_bits = alnum ? (version <= 9 ? 9 : 11) : (version <= 9 ? 8 : 16);
    const std::size_t payload = alnum ? text.size() / 2 * 11 + (text.size() % 2) * 6 : text.size() * 8;
    need_bits = 4 + static_cast<std::size_t>(count_bits) + payload;
    if (text.size() < (std::size_t{1} << count_bits) &&
        need_bits <= static_cast<std::size_t>(data_codewords(version, ecc)) * 8)
      break;
  }
  if (version > max_version) {
    return error{errc::limit_exceeded, "qr: " + std::to_string(text.size()) + " characters do not fit in version " +
                                           std::to_string(max_version)};
  }
  const int capacity = data_codewords(version, ecc);
  bit_writer w;
  if (alnum) {
    w.put(0b0010, 4);
    w.put(static_cast<std::uint32_t>(text.size()), version <= 9 ? 9 : 11);
    std::size_t i = 0;
    for (; i + 1 < text.size(); i += 2) {
      const auto a = static_cast<std::uint32_t>(alnum_chars.find(text[i]));
      const auto b = static_cast<std::uint32_t>(alnum_chars.find(text[i + 1]));
      w.put(a * 45 + b, 11);
    }
    if (i < text.size()) w.put(static_cast<std::uint32_t>(alnum_chars.find(text[i])), 6);
  } else {
    w.put(0b0100, 4);
    w.put(static_cast<std::uint32_t>(text.size()), version <= 9 ? 8 : 16);
    for (char c : text)
      w.put(static_cast<unsigned char>(c), 8);
  }
  const std::size_t cap_bits = static_cast<std::size_t>(capacity) * 8;
  w.put(0, static_cast<int>(std::min<std::size_t>(4, cap_bits - w.bits.size())));
  while (w.bits.size() % 8 != 0)
    w.bits.push_back(0);
  for (std::uint32_t pad = 0xEC; w.bits.size() < cap_bits; pad ^= 0xEC ^ 0x11)
    w.put(pad, 8);
  std::vector<std::uint8_t> data(static_cast<std::size_t>(capacity));
  for (std::size_t i = 0; i < w.bits.size(); ++i)
    data[i / 8] = static_cast<std::uint8_t>(data[i / 8] << 1 | w.bits[i]);

  // Blocks, their error correction, interleaved.
  const auto& l = layout(version, ecc);
  const auto gen = rs_generator(l.ec_per_block);
  std::vector<std::vector<std::uint8_t>> blocks;
  std::vector<std::vector<std::uint8_t>> ecs;
  std::size_t pos = 0;
  for (int b = 0; b < l.blocks1 + l.blocks2; ++b) {
    const auto len = static_cast<std::size_t>(b < l.blocks1 ? l.data1 : l.data2);
    blocks.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(pos),
                        data.begin() + static_cast<std::ptrdiff_t>(pos + len));
    ecs.push_back(rs_remainder(blocks.back(), gen));
    pos += len;
  }
  std::vector<std::uint8_t> codewords;
  const std::size_t longest = static_cast<std::size_t>(std::max(l.data1, l.data2));
  for (std::size_t i = 0; i < longest; ++i)
    for (const auto& b : blocks)
      if (i < b.size()) codewords.push_back(b[i]);
  for (std::size_t i = 0; i < static_cast<std::size_t>(l.ec_per_block); ++i)
    for (const auto& e : ecs)
      codewords.push_back(e[i]);

  matrix base(version);
  base.draw_function_patterns();
  base.place(codewords);
  int best = mask;
  if (best < 0) {
    long best_penalty = -1;
    for (int m = 0; m < 8; ++m) {
      matrix t = base;
      t.apply_mask(m);
      t.draw_format(m, ecc);
      const long p = t.penalty();
      if (best_penalty < 0 || p < best_penalty) {
        best_penalty = p;
        best = m;
      }
    }
  }
  base.apply_mask(best);
  base.draw_format(best, ecc);
  qr_code q;
  q.version = version;
  q.size = base.size();
  q.mask = best;
  q.ecc = ecc;
  q.modules = std::move(base.modules());
  return q;
}

std::string render_half_blocks(const qr_code& q, int quiet, bool dark_on_light) {
  const int total = q.size + 2 * quiet;
  // Drawn: a module in the quiet zone is light.
  auto drawn = [&](int x, int y) {
    x -= quiet;
    y -= quiet;
    const bool d = x >= 0 && y >= 0 && x < q.size && y < q.size && q.dark(x, y);
    return d == dark_on_light;
  };
  std::string out;
  for (int y = 0; y < total; y += 2) {
    for (int x = 0; x < total; ++x) {
      const bool top = drawn(x, y);
      const bool bottom = y + 1 < total ? drawn(x, y + 1) : false;
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += '\n';
  }
  return out;
}

}  // namespace shoal::sync
