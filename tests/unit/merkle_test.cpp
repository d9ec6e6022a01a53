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
