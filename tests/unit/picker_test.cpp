#include "session/piece_picker.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace shoal;

namespace {
constexpr std::uint32_t piece = 4 * piece_picker::block_size;  // 4 blocks
piece_picker make(std::uint32_t n, std::uint32_t last = piece) {
  return piece_picker(
      n, [n, last](std::uint32_t p) { return p + 1 == n ? last : piece; }, 1);
}
auto none = [](const block_ref&) { return false; };
}  // namespace

TEST(Picker, RarestFirstAfterTheFirstPieces) {
  auto pk = make(10);
  bitfield all(10, true);
  bitfield common(10);
  for (std::uint32_t p = 0; p < 10; ++p) {
    if (p != 7) common.set(p);
  }
  pk.add_peer(common, false);
  pk.add_peer(common, false);
  pk.add_peer(all, false);  // piece 7 has availability 1, the rest 3
  for (std::uint32_t p = 0; p < piece_picker::random_first_pieces; ++p)
    pk.set_have(p == 7 ? 9 : p);
  std::vector<block_ref> out;
  pk.pick(all, false, 4, none, out);
  ASSERT_EQ(out.size(), 4u);
  for (const auto& b : out)
    EXPECT_EQ(b.piece, 7u);
}

TEST(Picker, PartialPiecesFirstAndWholePieces) {
  auto pk = make(8);
  bitfield all(8, true);
  pk.add_peer(all, true);
  std::vector<block_ref> out;
  pk.pick(all, true, 2, none, out);
  ASSERT_EQ(out.size(), 2u);
  const std::uint32_t first = out[0].piece;
  EXPECT_EQ(out[1].piece, first);
  for (auto& b : out)
    pk.mark_requested(b);
  out.clear();
  pk.pick(all, true, 2, none, out);  // the rest of the same piece comes first
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].piece, first);
  EXPECT_EQ(out[0].begin, 2 * piece_picker::block_size);
}

TEST(Picker, ReceivedBlocksCompleteAPiece) {
  auto pk = make(2, 20000);  // last piece: 2 blocks, the second 3616 bytes
  bitfield all(2, true);
  std::vector<block_ref> out;
  pk.set_sequential(true);
  pk.pick(all, true, 100, none, out);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out.back().piece, 1u);
  EXPECT_EQ(out.back().length, 20000u - piece_picker::block_size);
  for (auto& b : out)
    pk.mark_requested(b);
  for (auto& b : out)
    EXPECT_TRUE(pk.mark_received(b));
  EXPECT_FALSE(pk.mark_received(out[0]));  // duplicate
  EXPECT_TRUE(pk.piece_received(0));
  EXPECT_TRUE(pk.piece_received(1));
  pk.piece_passed(0);
  pk.piece_failed(1);
  EXPECT_TRUE(pk.have(0));
  EXPECT_FALSE(pk.piece_received(1));
  out.clear();
  pk.pick(all, true, 100, none, out);
  EXPECT_EQ(out.size(), 2u);  // piece 1 again
}

TEST(Picker, PrioritiesAndSkippedPieces) {
  auto pk = make(4);
  pk.set_priority(1, 0);
  pk.set_priority(3, 0);
  EXPECT_EQ(pk.wanted_pieces(), 2u);
  bitfield all(4, true);
  std::vector<block_ref> out;
  pk.pick(all, true, 100, none, out);
  std::set<std::uint32_t> pieces;
  for (auto& b : out)
    pieces.insert(b.piece);
  EXPECT_EQ(pieces, (std::set<std::uint32_t>{0, 2}));
  bitfield only_skipped(4);
  only_skipped.set(1);
  EXPECT_FALSE(pk.interesting(only_skipped, false));
  pk.set_have(0);
  pk.set_have(2);
  EXPECT_TRUE(pk.wanted_complete());
}

TEST(Picker, EndGameDuplicatesOthersRequests) {
  auto pk = make(1);
  bitfield all(1, true);
  std::vector<block_ref> a, b;
  pk.pick(all, true, 100, none, a);
  ASSERT_EQ(a.size(), 4u);
  for (auto& x : a)
    pk.mark_requested(x);
  EXPECT_FALSE(pk.in_end_game());
  auto mine_a = [&](const block_ref& x) { return std::find(a.begin(), a.end(), x) != a.end(); };
  pk.pick(all, true, 100, mine_a, b);
  EXPECT_TRUE(b.empty());  // everything is already this peer's
  pk.pick(all, true, 100, none, b);
  EXPECT_TRUE(pk.in_end_game());
  EXPECT_EQ(b.size(), 4u);  // another peer may duplicate them
  // Aborting a duplicate keeps the block requested while one request remains. A pick by a
  // third peer whose queue is full (no end-game duplicates) sees only free blocks: none
  // while b[0] still has a request, b[0] itself once its last request is aborted too.
  for (auto& x : b)
    pk.mark_requested(x);
  pk.abort_request(b[0]);
  std::vector<block_ref> c;
  pk.pick(all, true, 4, none, c, piece_picker::end_game_queue);
  EXPECT_TRUE(c.empty()) << "the block went back to free with one request still out";
  pk.abort_request(b[0]);
  c.clear();
  pk.pick(all, true, 4, none, c, piece_picker::end_game_queue);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], b[0]);
}

TEST(Picker, PadBlocksAreNeverRequested) {
  auto pk = make(2);
  pk.set_pad_block_test([](std::uint32_t p, std::uint32_t blk) { return p == 0 && blk >= 2; });
  bitfield all(2, true);
  std::vector<block_ref> out;
  pk.set_sequential(true);
  pk.pick(all, true, 100, none, out);
  EXPECT_EQ(out.size(), 6u);  // 2 + 4
  for (auto& b : out) {
    pk.mark_requested(b);
    pk.mark_received(b);
  }
  EXPECT_TRUE(pk.piece_received(0));
}

TEST(Picker, StartedPiecesStayWithinTheirBound) {
  auto pk = make(8);
  bitfield all(8, true);
  pk.add_peer(all, true);
  pk.set_max_partial(2);
  std::vector<block_ref> out;
  pk.pick(all, true, 100, none, out);
  std::set<std::uint32_t> started;
  for (const auto& b : out) {
    started.insert(b.piece);
    pk.mark_requested(b);
  }
  EXPECT_EQ(started.size(), 2u) << "more pieces started than the bound allows";
  EXPECT_EQ(out.size(), 8u);
  EXPECT_FALSE(pk.in_end_game()) << "waiting for the bound is not the end game";
  std::vector<block_ref> web;
  EXPECT_FALSE(pk.take_piece(7, web)) << "a web seed cannot start a piece past the bound either";
  // One piece verified: room for one more.
  const std::uint32_t done = *started.begin();
  for (const auto& b : out) {
    if (b.piece == done) pk.mark_received(b);
  }
  ASSERT_TRUE(pk.piece_received(done));
  pk.piece_passed(done);
  pk.set_have(done);
  out.clear();
  pk.pick(all, true, 100, none, out);
  std::set<std::uint32_t> next;
  for (const auto& b : out)
    next.insert(b.piece);
  EXPECT_EQ(next.size(), 1u);
  EXPECT_EQ(started.count(*next.begin()), 0u);
}

TEST(Picker, InterestCursorAgreesWithAFullScan) {
  // The resumable check must answer what a full scan answers after every kind of change:
  // our pieces completing, the peer gaining pieces, priorities lowered and raised, a
  // piece that failed a recheck.
  constexpr std::uint32_t n = 64;
  auto pk = make(n);
  bitfield peer(n);
  piece_picker::interest_cursor c;
  auto agree = [&](const char* when) {
    const bool full = pk.interesting(peer, false);
    EXPECT_EQ(pk.interesting(peer, false, c), full) << when;
    return full;
  };
  EXPECT_FALSE(agree("peer has nothing"));
  peer.set(40);
  c.seen(40);
  EXPECT_TRUE(agree("peer has 40"));
  EXPECT_EQ(c.next, 40u) << "the cursor stops at the piece it found";
  pk.set_have(40);
  EXPECT_FALSE(agree("40 done"));
  EXPECT_EQ(c.next, n) << "scanned to the end";
  peer.set(10);
  c.seen(10);
  EXPECT_TRUE(agree("peer gained 10, behind the cursor"));
  pk.set_priority(10, 0);
  EXPECT_FALSE(agree("10 no longer wanted"));
  pk.set_priority(10, 3);
  EXPECT_TRUE(agree("10 wanted again: the generation restarts the scan"));
  pk.set_have(10);
  EXPECT_FALSE(agree("10 done"));
  pk.clear_have(40);
  EXPECT_TRUE(agree("40 failed a recheck"));
  // Many pieces: a peer gaining pieces one by one while we complete others.
  for (std::uint32_t p = 0; p < n; ++p) {
    if (p % 3 == 0) {
      peer.set(p);
      c.seen(p);
    }
    if (p % 5 == 0) pk.set_have(p);
    agree("mixed");
  }
}

TEST(Picker, CriticalPiecesComeBeforePartialAndRarestPieces) {
  auto pk = make(20);
  bitfield all(20, true);
  pk.add_peer(all, false);
  std::vector<block_ref> out;
  // A piece started earlier (partial) would come first without a deadline.
  pk.pick(all, false, 1, none, out);
  ASSERT_EQ(out.size(), 1u);
  pk.mark_requested(out[0]);
  const std::uint32_t started = out[0].piece;
  const std::uint32_t a = started == 15 ? 16 : 15, b = started == 3 ? 4 : 3;
  pk.set_critical({a, b, a, 99});  // duplicates and pieces out of range are dropped
  EXPECT_EQ(pk.critical(), (std::vector<std::uint32_t>{a, b}));
  out.clear();
  pk.pick(all, false, 8, none, out);
  ASSERT_EQ(out.size(), 8u);
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(out[i].piece, a) << i;
  for (std::size_t i = 4; i < 8; ++i)
    EXPECT_EQ(out[i].piece, b) << i;
  for (const auto& r : out)
    pk.mark_requested(r);
  // The most urgent pieces are asked of a second peer while the first has not answered
  // (its queue is short); the request each block already has counts: two at most.
  out.clear();
  pk.pick(all, false, 8, none, out, 0);
  ASSERT_EQ(out.size(), 8u);
  EXPECT_EQ(out[0].piece, a);
  EXPECT_EQ(out[4].piece, b);
  for (const auto& r : out)
    pk.mark_requested(r);
  out.clear();
  pk.pick(all, false, 4, none, out, 0);
  for (const auto& r : out)
    EXPECT_TRUE(r.piece != a && r.piece != b) << "a block asked a third time";
  // A peer whose queue is long gets no duplicates, and a peer that already asked for a block
  // is not asked again.
  pk.set_critical({a, b, 10});
  out.clear();
  pk.pick(all, false, 4, none, out, piece_picker::end_game_queue);
  for (const auto& r : out)
    EXPECT_EQ(r.piece, 10u);
  // Pieces had or no longer wanted leave the deadline list's effect.
  pk.set_have(10);
  pk.set_priority(a, 0);
  out.clear();
  pk.pick(all, false, 2, none, out);
  for (const auto& r : out)
    EXPECT_TRUE(r.piece != 10 && r.piece != a);
}

TEST(Picker, CriticalPiecesIgnoreThePartialBoundAndWebSeedsTakeThemFirst) {
  auto pk = make(10);
  bitfield all(10, true);
  pk.set_max_partial(1);
  std::vector<block_ref> out;
  pk.pick(all, true, 1, none, out);
  pk.mark_requested(out[0]);
  const std::uint32_t started = out[0].piece;
  const std::uint32_t c = (started + 5) % 10;
  EXPECT_EQ(pk.critical_untouched(), std::nullopt);
  pk.set_critical({started, c});
  EXPECT_EQ(pk.critical_untouched(), c);
  out.clear();
  pk.pick(all, true, 8, none, out, piece_picker::end_game_queue);
  std::set<std::uint32_t> pieces;
  for (const auto& r : out)
    pieces.insert(r.piece);
  EXPECT_EQ(pieces, (std::set<std::uint32_t>{started, c})) << "the bound of one partial piece held a deadline back";
  // More than max_critical pieces: the first ones are kept.
  auto big = piece_picker(
      5000, [](std::uint32_t) { return piece; }, 1);
  std::vector<std::uint32_t> many(5000);
  for (std::uint32_t i = 0; i < 5000; ++i)
    many[i] = 4999 - i;
  big.set_critical(many);
  ASSERT_EQ(big.critical().size(), piece_picker::max_critical);
  EXPECT_EQ(big.critical().front(), 4999u);
}
