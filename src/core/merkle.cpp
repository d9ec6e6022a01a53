#include "core/merkle.hpp"

#include <cstring>

namespace shoal::merkle {

namespace {
sha256_digest hash_pair(const sha256_digest& a, const sha256_digest& b) {
  std::uint8_t buf[64];
  std::memcpy(buf, a.data(), 32);
  std::memcpy(buf + 32, b.data(), 32);
  return sha256({reinterpret_cast<const char*>(buf), 64});
}
}  // namespace

sha256_digest pad_hash(unsigned levels) {
  sha256_digest h{};
  for (unsigned i = 0; i < levels; ++i)
    h = hash_pair(h, h);
  return h;
}

void reduce_level(std::vector<sha256_digest>& level, const sha256_digest& pad) {
  const std::size_t n = level.size();
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; i += 2) {
    level[out++] = hash_pair(level[i], i + 1 < n ? level[i + 1] : pad);
  }
  level.resize(out);
}

sha256_digest root(std::span<const sha256_digest> leaves, const sha256_digest& pad) {
  if (leaves.empty()) return pad;
  std::vector<sha256_digest> level(leaves.begin(), leaves.end());
  sha256_digest p = pad;
  while (level.size() > 1) {
    reduce_level(level, p);
    p = hash_pair(p, p);
  }
  return level[0];
}

}  // namespace shoal::merkle
