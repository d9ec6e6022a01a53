// BEP 52 merkle trees: SHA-256 over 16 KiB blocks, padded to a power of two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/hash.hpp"

namespace shoal::merkle {

inline constexpr std::uint64_t block_size = 16 * 1024;

// Root of a subtree of 2^levels all-zero leaves (the padding BEP 52 uses).
[[nodiscard]] sha256_digest pad_hash(unsigned levels);

// Root over `leaves`, padded with `pad` (the root of one missing leaf-level subtree)
// up to the next power of two. One leaf is its own root; no leaves gives `pad`.
[[nodiscard]] sha256_digest root(std::span<const sha256_digest> leaves, const sha256_digest& pad);

// Hashes the next level up, in place: leaves -> parents (padding an odd tail with `pad`).
void reduce_level(std::vector<sha256_digest>& level, const sha256_digest& pad);

[[nodiscard]] constexpr unsigned log2_exact(std::uint64_t v) {
  unsigned l = 0;
  while ((std::uint64_t{1} << l) < v)
    ++l;
  return l;
}

}  // namespace shoal::merkle
