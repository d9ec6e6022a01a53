// shoal sync's QR encoder, checked module for module against qrencode (an independent
// encoder, Debian's qrencode package) for strings of several lengths, both modes and both
// levels, at the mask qrencode chose; and the terminal rendering.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sync/keys.hpp"
#include "sync/qr.hpp"

using namespace shoal;
using namespace shoal::sync;

namespace {

// qrencode's matrix for text: one string per row, '1' dark. Empty if qrencode failed.
std::vector<std::string> reference(const std::string& text, qr_ecc ecc, bool eight_bit) {
  // The text goes through a file: no shell quoting of arbitrary bytes.
  char name[] = "/tmp/shoal-qr-XXXXXX";
  const int fd = ::mkstemp(name);
  if (fd < 0) return {};
  const auto w = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (w != static_cast<ssize_t>(text.size())) return {};
  const std::string cmd = std::string("qrencode -t ASCII -m 0 -l ") + (ecc == qr_ecc::low ? "L" : "M") +
                          (eight_bit ? " -8" : "") + " -r " + name + " -o - 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::vector<std::string> rows;
  if (p) {
    std::string line;
    int c;
    while ((c = std::fgetc(p)) != EOF) {
      if (c != '\n') {
        line += static_cast<char>(c);
        continue;
      }
      std::string row;
      for (std::size_t i = 0; i + 1 < line.size() + 1; i += 2)
        row += line[i] == '#' ? '1' : '0';
      rows.push_back(row);
      line.clear();
    }
    if (::pclose(p) != 0) rows.clear();
  }
  ::unlink(name);
  return rows;
}

std::vector<std::string> rows_of(const qr_code& q) {
  std::vector<std::string> rows;
  for (int y = 0; y < q.size; ++y) {
    std::string row;
    for (int x = 0; x < q.size; ++x)
      row += q.dark(x, y) ? '1' : '0';
    rows.push_back(row);
  }
  return rows;
}

// True if ours, at some mask, is qrencode's matrix exactly (its mask choice may differ from
// ours: the penalty rules leave room).
void expect_same(const std::string& text, qr_ecc ecc, bool eight_bit) {
  const auto ref = reference(text, ecc, eight_bit);
  ASSERT_FALSE(ref.empty()) << "qrencode failed for '" << text << "' (scripts/install-deps installs it)";
  auto best = qr_encode(text, ecc);
  ASSERT_TRUE(best.ok()) << best.err().message();
  ASSERT_EQ(best->size, static_cast<int>(ref.size())) << "version differs for '" << text << "'";
  bool found = false;
  for (int m = 0; m < 8 && !found; ++m) {
    auto q = qr_encode(text, ecc, m);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->mask, m);
    found = rows_of(*q) == ref;
  }
  EXPECT_TRUE(found) << "no mask gives qrencode's matrix for '" << text << "' (version " << best->version << ")";
}

}  // namespace

TEST(SyncQr, MatchesQrencodeAlphanumeric) {
  // Folder keys are upper-case base32: alphanumeric mode.
  for (const std::string& t : {std::string("HELLO WORLD"), std::string("A"), std::string(59, 'W'),
                               std::string("RABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ2"),
                               std::string(150, 'Q') + "2345", std::string(300, 'Z')}) {
    expect_same(t, qr_ecc::medium, false);
    expect_same(t, qr_ecc::low, false);
  }
}

TEST(SyncQr, MatchesQrencodeBytes) {
  std::string all;
  for (int c = 1; c < 256; ++c)
    all += static_cast<char>(c);
  for (const std::string& t : {std::string("hello, world"), std::string("x"), all.substr(0, 60), all.substr(40, 100),
                               all.substr(0, 150), all.substr(30, 213), all + all.substr(0, 16)}) {
    expect_same(t, qr_ecc::low, true);
    if (t.size() <= 213) expect_same(t, qr_ecc::medium, true);
  }
}

TEST(SyncQr, FolderKeysAndLimits) {
  std::array<std::uint8_t, seed_bytes> seed{};
  seed[3] = 42;
  const auto k = folder_key::from_seed(seed);
  expect_same(k.read_only_text(), qr_ecc::medium, false);
  expect_same(k.read_write_text(), qr_ecc::medium, false);
  auto q = qr_encode(k.read_only_text());
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->version, 3);  // 59 alphanumeric characters at level M
  EXPECT_EQ(qr_encode(std::string(271, 'a'), qr_ecc::low)->version, 10);
  EXPECT_EQ(qr_encode(std::string(213, 'a'), qr_ecc::medium)->version, 10);
  EXPECT_FALSE(qr_encode(std::string(214, 'a'), qr_ecc::medium).ok());
  auto big = qr_encode(std::string(272, 'a'), qr_ecc::low);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, errc::limit_exceeded);
  EXPECT_FALSE(qr_encode("A", qr_ecc::medium, 8).ok());
}

TEST(SyncQr, RendersHalfBlocksWithAQuietZone) {
  auto q = qr_encode("HELLO");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size, 21);
  const std::string s = render_half_blocks(*q, 4);
  // 29 modules: 15 lines of 29 characters (three bytes each in UTF-8).
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(s.substr(start, nl - start));
  ASSERT_EQ(lines.size(), 15u);
  const std::string full = "\u2588";
  for (const auto& l : lines) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < l.size(); i += l[i] == ' ' ? 1 : 3)
      ++n;
    EXPECT_EQ(n, 29u);
  }
  // Light on a dark terminal: the quiet zone is drawn, so the first two lines are full.
  for (int i = 0; i < 2; ++i) {
    std::string want;
    for (int j = 0; j < 29; ++j)
      want += full;
    EXPECT_EQ(lines[static_cast<std::size_t>(i)], want);
  }
  // The finder's dark top row (x 4..10 at y 4) and the quiet zone's light row above it: line
  // 2 holds y 4 and 5; at y 4 the finder is dark (not drawn), at y 5 its inside is light.
  const std::string l2 = lines[2];
  EXPECT_EQ(l2.substr(0, 4 * 3), full + full + full + full);
  // Inverted: the quiet zone is blank.
  const std::string inv = render_half_blocks(*q, 4, true);
  EXPECT_EQ(inv.substr(0, 29), std::string(29, ' '));
}
