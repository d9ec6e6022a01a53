#include "core/text.hpp"

#include <gtest/gtest.h>

using namespace shoal;

TEST(Text, Hex) {
  EXPECT_EQ(to_hex(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(from_hex("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

TEST(Text, Base32) {
  // RFC 4648 test vectors.
  EXPECT_EQ(to_base32("foobar"), "MZXW6YTBOI");
  EXPECT_EQ(from_base32("MZXW6YTBOI"), "foobar");
  EXPECT_EQ(from_base32("mzxw6ytboi"), "foobar");
  EXPECT_FALSE(from_base32("MZXW6YTBO1"));
  std::string twenty(20, '\xab');
  EXPECT_EQ(to_base32(twenty).size(), 32u);
  EXPECT_EQ(from_base32(to_base32(twenty)), twenty);
  EXPECT_FALSE(from_base32("A"));  // 5 bits: not a whole byte
}

TEST(Text, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xf0\x9f\x90\x9f"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xe2\x82"));       // truncated
  EXPECT_EQ(repair_utf8("a\xffz"), "a\xef\xbf\xbdz");
  EXPECT_TRUE(is_valid_utf8(repair_utf8("\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80")));
}

TEST(Text, Sizes) {
  EXPECT_EQ(parse_size("16384"), 16384u);
  EXPECT_EQ(parse_size("16KiB"), 16384u);
  EXPECT_EQ(parse_size("16k"), 16384u);
  EXPECT_EQ(parse_size("4 MiB"), 4u << 20);
  EXPECT_EQ(parse_size("1g"), 1u << 30);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("KiB"));
  EXPECT_FALSE(parse_size("12 parsecs"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("17179869184g"));
  EXPECT_EQ(human_size(512), "512 B");
  EXPECT_EQ(human_size(1536), "1.50 KiB");
  EXPECT_EQ(human_size(1u << 30), "1.00 GiB");
}
