// Web seeds (BEP 19): URL mapping, range requests for blocks across files and pad files,
// Content-Range and Retry-After parsing, and the picker's whole-piece hand-out.
#include <gtest/gtest.h>

#include "core/metainfo.hpp"
#include "session/piece_picker.hpp"
#include "session/web_seed_codec.hpp"
#include "storage/file_storage.hpp"

using namespace shoal;
using namespace shoal::web_seed_codec;

namespace {
file_entry file(std::string path, std::uint64_t size, std::uint64_t offset, bool pad = false) {
  file_entry f;
  f.path = std::move(path);
  f.size = size;
  f.offset = offset;
  f.pad = pad;
  return f;
}

// v1, 32 KiB pieces (2 blocks): a = 40000 bytes, b = 10000, c = 30000; 80000 bytes, 3 pieces.
metainfo spanning() {
  metainfo m;
  m.name = "t";
  m.multi_file = true;
  m.piece_length = 32768;
  m.num_pieces = 3;
  m.version = torrent_version::v1;
  m.files = {file("t/a", 40000, 0), file("t/b", 10000, 40000), file("t/c", 30000, 50000)};
  return m;
}

std::vector<block_ref> blocks_of(const file_storage& fs, std::uint32_t first, std::uint32_t last) {
  std::vector<block_ref> out;
  for (std::uint32_t p = first; p <= last; ++p) {
    for (std::uint32_t b = 0; b < fs.piece_size(p); b += piece_picker::block_size)
      out.push_back({p, b, std::min(piece_picker::block_size, fs.piece_size(p) - b)});
  }
  return out;
}
}  // namespace

TEST(WebSeed, SingleFileUrl) {
  EXPECT_EQ(file_url("http://h/dir/file.iso", false, "x.iso", "x.iso"), "http://h/dir/file.iso");
  EXPECT_EQ(file_url("http://h/dir/", false, "x y.iso", "x y.iso"), "http://h/dir/x%20y.iso");
}

TEST(WebSeed, MultiFileUrlEncodesEachComponent) {
  EXPECT_EQ(file_url("http://h/pub", true, "my dir", "my dir/sub/ü#?.bin"),
            "http://h/pub/my%20dir/sub/%C3%BC%23%3F.bin");
  EXPECT_EQ(file_url("https://h:8443/pub/", true, "n", "n/a/b"), "https://h:8443/pub/n/a/b");
  EXPECT_EQ(file_url("http://h/", true, "n", "n/100%"), "http://h/n/100%25");
  EXPECT_EQ(encode_component("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(encode_component("a/b"), "a%2Fb");
}

TEST(WebSeed, OnePieceAcrossThreeFiles) {
  file_storage fs(spanning());
  // Piece 1 = bytes 32768..65535: a 32768..39999, all of b, c 0..15535.
  auto r = plan_requests(fs, blocks_of(fs, 1, 1));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (range_request{0, 32768, 40000 - 32768, 0}));
  EXPECT_EQ(r[1], (range_request{1, 0, 10000, 40000 - 32768}));
  EXPECT_EQ(r[2], (range_request{2, 0, 65536 - 50000, 50000 - 32768}));
  std::uint64_t total = 0;
  for (const auto& q : r)
    total += q.length;
  EXPECT_EQ(total, 32768u);
}

TEST(WebSeed, ConsecutivePiecesMergeIntoOneRequestPerFile) {
  file_storage fs(spanning());
  auto r = plan_requests(fs, blocks_of(fs, 0, 2));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (range_request{0, 0, 40000, 0}));
  EXPECT_EQ(r[1], (range_request{1, 0, 10000, 40000}));
  EXPECT_EQ(r[2], (range_request{2, 0, 30000, 50000}));
}

TEST(WebSeed, GapsBetweenBlocksAreSeparateRequests) {
  file_storage fs(spanning());
  // Block 0 of piece 0 and block 1 of piece 0 are contiguous; block 0 of piece 2 is not.
  std::vector<block_ref> b{{0, 0, 16384}, {2, 0, 14464}};
  auto r = plan_requests(fs, b);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (range_request{0, 0, 16384, 0}));
  EXPECT_EQ(r[1], (range_request{2, 65536 - 50000, 14464, 16384}));
}

TEST(WebSeed, PadFilesAreNeverFetched) {
  metainfo m;
  m.name = "t";
  m.multi_file = true;
  m.piece_length = 16384;
  m.num_pieces = 3;
  m.version = torrent_version::v1;
  m.files = {file("t/a", 10000, 0), file("t/.pad/6384", 6384, 10000, true), file("t/b", 20000, 16384)};
  file_storage fs(m);
  auto r = plan_requests(fs, blocks_of(fs, 0, 2));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (range_request{0, 0, 10000, 0}));
  EXPECT_EQ(r[1], (range_request{2, 0, 20000, 16384}));  // lands after the pad's zeros
}

TEST(WebSeed, ContentRange) {
  EXPECT_EQ(parse_content_range("bytes 0-99/1000"), (content_range{0, 99, 1000}));
  EXPECT_EQ(parse_content_range("  Bytes 5-5/*"), (content_range{5, 5, std::nullopt}));
  EXPECT_EQ(parse_content_range("bytes 999-999/1000"), (content_range{999, 999, 1000}));
  EXPECT_EQ(parse_content_range("bytes 9999999999999999999-9999999999999999999/*"),
            (content_range{9999999999999999999ull, 9999999999999999999ull, std::nullopt}));
  for (const char* bad :
       {"", "bytes", "bytes */1000", "bytes 5-4/10", "bytes 0-10/10", "bytes 0-9/10x", "items 0-9/10", "bytes 0-9",
        "bytes -9/10", "bytes 0-/10", "bytes 10000000000000000000-1/*", "bytes 0-9/ 10", "bytes0-9/10"}) {
    EXPECT_FALSE(parse_content_range(bad)) << bad;
  }
}

TEST(WebSeed, RetryAfter) {
  EXPECT_EQ(parse_retry_after("120"), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after(" 0 "), std::chrono::seconds(0));
  EXPECT_EQ(parse_retry_after("99999999"), std::chrono::seconds(86400));
  EXPECT_FALSE(parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT"));
  EXPECT_FALSE(parse_retry_after(""));
  EXPECT_FALSE(parse_retry_after("-1"));
}

TEST(Picker, TakePieceOnlyUntouchedPieces) {
  piece_picker pk(
      4, [](std::uint32_t) { return 2 * piece_picker::block_size; }, 1);
  std::vector<block_ref> out;
  EXPECT_TRUE(pk.take_piece(2, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (block_ref{2, 0, piece_picker::block_size}));
  EXPECT_FALSE(pk.untouched(2));
  EXPECT_FALSE(pk.take_piece(2, out));  // started already
  pk.set_have(3);
  EXPECT_FALSE(pk.take_piece(3, out));  // had
  pk.set_priority(1, 0);
  EXPECT_FALSE(pk.take_piece(1, out));  // not wanted
  EXPECT_FALSE(pk.take_piece(4, out));  // out of range
  // A peer's pick skips the piece a web seed took.
  bitfield all(4, true);
  for (const auto& b : out)
    pk.mark_requested(b);
  std::vector<block_ref> picked;
  pk.pick(
      all, true, 10, [](const block_ref&) { return false; }, picked, piece_picker::end_game_queue);
  ASSERT_FALSE(picked.empty());  // piece 0 is still there to pick
  for (const auto& b : picked)
    EXPECT_EQ(b.piece, 0u);
}
