#include "core/merkle.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace shoal;

namespace {
sha256_digest pair(const sha256_digest& a, const sha256_digest& b) {
  std::string s(as_view(a));
  s.append(as_view(b));
  return sha256(s);
}
sha256_digest leaf(char c) {
  return sha256(std::string(1, c));
}
}  // namespace

TEST(Merkle, PadHashes) {
  EXPECT_EQ(merkle::pad_hash(0), sha256_digest{});
  EXPECT_EQ(merkle::pad_hash(1), pair(sha256_digest{}, sha256_digest{}));
  EXPECT_EQ(merkle::pad_hash(2), pair(merkle::pad_hash(1), merkle::pad_hash(1)));
}

TEST(Merkle, RootPadsToPowerOfTwo) {
  const sha256_digest z{};
  std::vector<sha256_digest> one{leaf('a')};
  EXPECT_EQ(merkle::root(one, z), leaf('a'));
  std::vector<sha256_digest> three{leaf('a'), leaf('b'), leaf('c')};
  EXPECT_EQ(merkle::root(three, z), pair(pair(leaf('a'), leaf('b')), pair(leaf('c'), z)));
  // Padding at a higher level uses the pad subtree's root.
  const sha256_digest p1 = merkle::pad_hash(1);
  std::vector<sha256_digest> five{leaf('a'), leaf('b'), leaf('c'), leaf('d'), leaf('e')};
  auto l = pair(pair(leaf('a'), leaf('b')), pair(leaf('c'), leaf('d')));
  auto r = pair(pair(leaf('e'), p1), merkle::pad_hash(2));
  EXPECT_EQ(merkle::root(five, p1), pair(l, r));
  EXPECT_EQ(merkle::log2_exact(1), 0u);
  EXPECT_EQ(merkle::log2_exact(64), 6u);
}

namespace {
std::vector<sha256_digest> numbered(std::size_t n) {
  std::vector<sha256_digest> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = sha256("leaf " + std::to_string(i));
  return v;
}
}  // namespace

TEST(Merkle, LayersAboveMatchRoot) {
  for (std::size_t n : {2u, 3u, 5u, 8u, 13u}) {
    auto base = numbered(n);
    const auto pad = merkle::pad_hash(3);
    auto layers = merkle::layers_above(base, pad);
    EXPECT_EQ(layers.back().size(), 1u);
    EXPECT_EQ(layers.back()[0], merkle::root(base, pad)) << n;
    EXPECT_EQ(layers[0].size(), std::size_t{1} << merkle::log2_exact(std::max<std::size_t>(n, 2)));
  }
}

TEST(Merkle, ProofRoundTripsEveryShape) {
  // A 13-node layer (16 padded, depth 4): every legal (index, length, proof layers)
  // verifies against the root, and any changed hash does not.
  auto base = numbered(13);
  const auto pad = merkle::pad_hash(2);
  auto layers = merkle::layers_above(base, pad);
  const auto root = layers.back()[0];
  const unsigned depth = 4;
  for (std::uint32_t length = 2; length <= 16; length *= 2) {
    for (std::uint32_t index = 0; index < 16; index += length) {
      auto h = merkle::proof(layers, index, length, merkle::proof_layers_for(depth));
      ASSERT_EQ(h.size(), length + (depth - merkle::log2_exact(length))) << index << " " << length;
      EXPECT_TRUE(merkle::verify(h, index, length, depth, root)) << index << " " << length;
      for (std::size_t i = 0; i < h.size(); ++i) {
        auto bad = h;
        bad[i][0] ^= 1;
        EXPECT_FALSE(merkle::verify(bad, index, length, depth, root)) << index << " " << length << " at " << i;
      }
      // Claimed at another index, the same hashes do not verify.
      if (index + length < 16) {
        EXPECT_FALSE(merkle::verify(h, index + length, length, depth, root));
      }
      // Without all the uncles they cannot be checked.
      if (h.size() > length) {
        auto short_proof = h;
        short_proof.pop_back();
        EXPECT_FALSE(merkle::verify(short_proof, index, length, depth, root));
      }
    }
  }
  // Fewer proof layers give fewer uncles; none when the range is the whole layer.
  EXPECT_EQ(merkle::proof(layers, 0, 4, 0).size(), 4u);
  EXPECT_EQ(merkle::proof(layers, 0, 4, 2).size(), 5u);
  EXPECT_EQ(merkle::proof(layers, 0, 16, 3).size(), 16u);
  // Outside the layer, or a malformed range: nothing.
  EXPECT_TRUE(merkle::proof(layers, 16, 16, 3).empty());
  EXPECT_TRUE(merkle::proof(layers, 2, 4, 3).empty());
  EXPECT_TRUE(merkle::proof(layers, 0, 3, 3).empty());
}
