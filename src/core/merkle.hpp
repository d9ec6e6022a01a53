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

// Every layer of a tree from `base` (padded with `pad` to a power of two, at least 2
// nodes) up to the root: result[0] is the padded base, result.back() has one node.
[[nodiscard]] std::vector<std::vector<sha256_digest>> layers_above(std::span<const sha256_digest> base,
                                                                   const sha256_digest& pad);

// BEP 52 'hashes' for a request on a tree given by layers_above(): `length` hashes of
// the base layer from `index`, then one uncle per proof layer above the subtree they
// span (the first log2(length) - 1 proof layers are implied). Empty when the range is
// not inside the layer.
[[nodiscard]] std::vector<sha256_digest> proof(const std::vector<std::vector<sha256_digest>>& layers,
                                               std::uint32_t index, std::uint32_t length, std::uint32_t proof_layers);

// Checks received 'hashes' against a file's root: the first `length` of `hashes` start at
// `index` of a layer `depth` levels below the root; the rest are uncles, lowest first.
[[nodiscard]] bool verify(std::span<const sha256_digest> hashes, std::uint32_t index, std::uint32_t length,
                          unsigned depth, const sha256_digest& root);

// Number of proof layers to ask for so that the answer reaches the root of a tree
// `depth` levels above the base.
[[nodiscard]] constexpr std::uint32_t proof_layers_for(unsigned depth) {
  return depth == 0 ? 0 : depth - 1;
}

[[nodiscard]] constexpr unsigned log2_exact(std::uint64_t v) {
  unsigned l = 0;
  while ((std::uint64_t{1} << l) < v)
    ++l;
  return l;
}

}  // namespace shoal::merkle
