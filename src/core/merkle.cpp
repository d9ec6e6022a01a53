#include "core/merkle.hpp"

#include <algorithm>
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

std::vector<std::vector<sha256_digest>> layers_above(std::span<const sha256_digest> base, const sha256_digest& pad) {
  std::vector<std::vector<sha256_digest>> out;
  std::size_t width = 2;
  while (width < base.size())
    width *= 2;
  out.emplace_back(base.begin(), base.end());
  out.back().resize(width, pad);
  while (out.back().size() > 1) {
    const auto& below = out.back();
    std::vector<sha256_digest> up(below.size() / 2);
    for (std::size_t i = 0; i < up.size(); ++i)
      up[i] = hash_pair(below[2 * i], below[2 * i + 1]);
    out.push_back(std::move(up));
  }
  return out;
}

std::vector<sha256_digest> proof(const std::vector<std::vector<sha256_digest>>& layers, std::uint32_t index,
                                 std::uint32_t length, std::uint32_t proof_layers) {
  if (layers.empty() || length == 0 || (length & (length - 1)) != 0 || index % length != 0) return {};
  const auto& base = layers[0];
  if (static_cast<std::uint64_t>(index) + length > base.size()) return {};
  std::vector<sha256_digest> out(base.begin() + index, base.begin() + index + length);
  const unsigned k = log2_exact(length);
  const unsigned depth = static_cast<unsigned>(layers.size() - 1);
  // Proof layer j (1-based) is the sibling at level j; levels below k are inside the range.
  const std::uint64_t wanted = proof_layers + 1 > k ? proof_layers + 1 - k : 0;
  const std::uint64_t uncles = std::min<std::uint64_t>(wanted, depth - k);
  std::uint64_t pos = index >> k;
  for (std::uint64_t j = 0; j < uncles; ++j) {
    out.push_back(layers[k + j][pos ^ 1]);
    pos >>= 1;
  }
  return out;
}

bool verify(std::span<const sha256_digest> hashes, std::uint32_t index, std::uint32_t length, unsigned depth,
            const sha256_digest& want) {
  if (length == 0 || (length & (length - 1)) != 0 || hashes.size() < length || index % length != 0) return false;
  const unsigned k = log2_exact(length);
  if (k > depth) return false;
  if ((static_cast<std::uint64_t>(index) >> depth) != 0 && depth < 32) return false;  // past the layer's end
  if (hashes.size() - length < depth - k) return false;  // not enough uncles to reach the root
  std::vector<sha256_digest> level(hashes.begin(), hashes.begin() + length);
  while (level.size() > 1)
    reduce_level(level, sha256_digest{});
  sha256_digest node = level[0];
  std::uint64_t pos = index >> k;
  for (unsigned j = 0; j < depth - k; ++j) {
    const auto& uncle = hashes[length + j];
    node = (pos & 1) ? hash_pair(uncle, node) : hash_pair(node, uncle);
    pos >>= 1;
  }
  return node == want;
}

}  // namespace shoal::merkle
