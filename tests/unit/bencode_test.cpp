#include "core/bencode.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace shoal;
using namespace shoal::bencode;

namespace {

document ok(std::string_view s, mode m = mode::lenient) {
  auto r = decode(s, m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message());
  return std::move(r).value();
}

error bad(std::string_view s, mode m = mode::lenient, limits lim = {}) {
  auto r = decode(s, m, lim);
  EXPECT_FALSE(r.ok()) << "decoded: " << s;
  return r.ok() ? error{} : r.err();
}

std::string nested_lists(std::size_t depth) {
  return std::string(depth, 'l') + std::string(depth, 'e');
}

}  // namespace

TEST(Bencode, Scalars) {
  {
    auto d = ok("i42e");
    EXPECT_EQ(d.root().as_int(), 42);
  }
  {
    auto d = ok("i-7e");
    EXPECT_EQ(d.root().as_int(), -7);
  }
  {
    auto d = ok("i9223372036854775807e");
    EXPECT_EQ(d.root().as_int(), INT64_MAX);
  }
  {
    auto d = ok("i-9223372036854775808e");
    EXPECT_EQ(d.root().as_int(), INT64_MIN);
  }
  {
    auto d = ok("4:spam");
    EXPECT_EQ(d.root().as_string(), "spam");
    EXPECT_EQ(d.root().raw(), "4:spam");
  }
  {
    auto d = ok("0:");
    EXPECT_TRUE(d.root().is_string());
    EXPECT_EQ(d.root().as_string(), "");
  }
}

TEST(Bencode, IntegerErrors) {
  EXPECT_EQ(bad("i9223372036854775808e").code, errc::syntax);
  EXPECT_EQ(bad("i-9223372036854775809e").code, errc::syntax);
  EXPECT_NE(bad("ie").detail.find("no digits"), std::string::npos);
  EXPECT_NE(bad("i-e").detail.find("no digits"), std::string::npos);
  EXPECT_EQ(bad("i12").code, errc::syntax);
  EXPECT_EQ(bad("i12x").offset, 3u);
  EXPECT_EQ(bad("i").code, errc::syntax);
}

TEST(Bencode, StrictRejectsNonCanonical) {
  EXPECT_EQ(ok("i03e").root().as_int(), 3);
  EXPECT_EQ(bad("i03e", mode::strict).code, errc::non_canonical);
  EXPECT_EQ(ok("i-0e").root().as_int(), 0);
  EXPECT_EQ(bad("i-0e", mode::strict).code, errc::non_canonical);
  ok("i0e", mode::strict);
  EXPECT_EQ(ok("03:abc").root().as_string(), "abc");
  EXPECT_EQ(bad("03:abc", mode::strict).code, errc::non_canonical);
  ok("d1:ai1e1:bi2ee", mode::strict);
  EXPECT_EQ(ok("d1:bi1e1:ai2ee").root().find("a").as_int(), 2);
  auto e = bad("d1:bi1e1:ai2ee", mode::strict);
  EXPECT_EQ(e.code, errc::non_canonical);
  EXPECT_EQ(e.offset, 7u);
  EXPECT_NE(e.detail.find("not sorted"), std::string::npos);
  EXPECT_NE(bad("d1:ai1e1:ai2ee", mode::strict).detail.find("duplicate"), std::string::npos);
  // Keys compare as unsigned bytes.
  ok("d1:ai1e1:\xffi2ee", mode::strict);
  // Trailing bytes are tolerated only in lenient mode.
  EXPECT_EQ(ok("i1eXYZ").trailing_bytes(), 3u);
  EXPECT_EQ(bad("i1eXYZ", mode::strict).offset, 3u);
}

TEST(Bencode, StructureErrors) {
  EXPECT_EQ(bad("").code, errc::syntax);
  EXPECT_EQ(bad("e").offset, 0u);
  EXPECT_EQ(bad("l").code, errc::syntax);
  EXPECT_NE(bad("li1e").detail.find("inside a list opened at byte 0"), std::string::npos);
  EXPECT_NE(bad("di1ei2ee").detail.find("key must be a string"), std::string::npos);
  EXPECT_NE(bad("d1:ae").detail.find("key without a value"), std::string::npos);
  EXPECT_NE(bad("x").detail.find("unexpected 'x'"), std::string::npos);
  EXPECT_NE(bad(std::string_view("\x01", 1)).detail.find("0x01"), std::string::npos);
  auto e = bad("5:abc");
  EXPECT_EQ(e.offset, 0u);
  EXPECT_NE(e.detail.find("runs past the end"), std::string::npos);
  EXPECT_NE(bad("3abc").detail.find("expected ':'"), std::string::npos);
  EXPECT_EQ(bad("12").code, errc::syntax);
}

TEST(Bencode, StringLengthDigitsAtBound) {
  // 19 digits is the most a length may have (zeros pad it in lenient mode).
  std::string at = std::string(18, '0') + "3:abc";
  EXPECT_EQ(ok(at).root().as_string(), "abc");
  std::string past = std::string(19, '0') + "3:abc";
  EXPECT_EQ(bad(past).code, errc::limit_exceeded);
  // A huge declared length never allocates; it fails on the bounds check.
  EXPECT_EQ(bad("9999999999999999999:x").code, errc::syntax);
}

TEST(Bencode, DepthAtBoundAndOnePast) {
  ok(nested_lists(max_depth));
  auto e = bad(nested_lists(max_depth + 1));
  EXPECT_EQ(e.code, errc::limit_exceeded);
  EXPECT_EQ(e.offset, max_depth);
  // Very deep input fails fast without recursion.
  EXPECT_EQ(bad(std::string(1'000'000, 'l')).code, errc::limit_exceeded);
  limits small;
  small.depth = 3;
  ok("llleee", mode::lenient);
  EXPECT_EQ(bad("lllleeee", mode::lenient, small).code, errc::limit_exceeded);
}

TEST(Bencode, TokenLimitAtBoundAndOnePast) {
  // The default bound: one list plus max_tokens - 1 integers.
  std::string at = "l";
  at.reserve(3 * max_tokens + 2);
  for (std::size_t i = 0; i + 1 < max_tokens; ++i)
    at += "i0e";
  at += "e";
  auto d = ok(at);
  EXPECT_EQ(d.token_count(), max_tokens);
  std::string past = at;
  past.insert(1, "i0e");
  EXPECT_EQ(bad(past).code, errc::limit_exceeded);
  limits lim;
  lim.tokens = 3;
  ok("li1ei2ee");
  EXPECT_TRUE(decode("li1ei2ee", mode::lenient, lim).ok());
  EXPECT_EQ(bad("li1ei2ei3ee", mode::lenient, lim).code, errc::limit_exceeded);
}

TEST(Bencode, NodesAndIteration) {
  const std::string s = "d4:infod6:lengthi5e4:name3:abce4:listli1e3:twoli3eeleee";
  auto r = decode(s);
  ASSERT_TRUE(r.ok());
  node root = r->root();
  ASSERT_TRUE(root.is_dict());
  EXPECT_EQ(root.size(), 2u);
  node info = root.find("info");
  EXPECT_EQ(info.raw(), "d6:lengthi5e4:name3:abce");
  EXPECT_EQ(info.offset(), 7u);
  EXPECT_EQ(info.find("length").as_int(), 5);
  EXPECT_EQ(info.find("name").as_string(), "abc");
  EXPECT_FALSE(info.find("missing"));
  node list = root.find("list");
  ASSERT_TRUE(list.is_list());
  EXPECT_EQ(list.size(), 4u);
  std::vector<std::string> kinds;
  for (node e : list)
    kinds.push_back(std::to_string(static_cast<int>(e.kind())));
  EXPECT_EQ(kinds, (std::vector<std::string>{"0", "1", "2", "2"}));
  std::vector<std::string> keys;
  for (node k : root)
    keys.emplace_back(k.as_string());
  EXPECT_EQ(keys, (std::vector<std::string>{"info", "list"}));
  // Wrong-typed and absent nodes give empty values, never crash.
  node absent;
  EXPECT_FALSE(absent.present());
  EXPECT_EQ(absent.as_int(), 0);
  EXPECT_EQ(absent.as_string(), "");
  EXPECT_FALSE(absent.find("x"));
  EXPECT_EQ(absent.size(), 0u);
  EXPECT_EQ(info.as_int(), 0);
  EXPECT_EQ(list.as_string(), "");
  EXPECT_FALSE(list.find("x"));
  EXPECT_EQ(root.find("info").find("length").find("x").as_int(), 0);
}

TEST(Bencode, EncodeRoundTrip) {
  value v = dict{{"b", list{1, "two", dict{}}}, {"a", std::int64_t{-5}}, {"c", std::string("\0x", 2)}};
  std::string enc = encode(v);
  EXPECT_EQ(enc, std::string("d1:ai-5e1:bli1e3:twodee1:c2:\0xe", 31));
  auto d = decode(enc, mode::strict);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(encode(to_value(d->root())), enc);
}

TEST(Bencode, ErrorMessageHasOffset) {
  auto e = bad("li1ex");
  EXPECT_EQ(e.message(), "bencode: unexpected 'x' (at byte 4)");
}
