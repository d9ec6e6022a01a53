// Streaming's engine half in-process: file readers over a torrent that is still
// downloading wait for the pieces they need, get the right bytes, and stay within their
// bounds. Deterministic: the partial peer has only some pieces, so which reads can finish
// does not depend on timing.
#include <boost/asio.hpp>

#include "core/text.hpp"
#include "session/peer_connection.hpp"
#include "session_fixture.hpp"
#include "stream/reader.hpp"

namespace shoal::testing {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t KiB = 1 << 10;
constexpr std::size_t MiB = 1 << 20;

// One read, run on the test thread's io_context.
struct pending_read {
  std::optional<std::pair<std::error_code, std::string>> result;
};

std::shared_ptr<pending_read> start_read(asio::io_context& io, const std::shared_ptr<stream::file_reader>& r,
                                         std::uint64_t offset, std::size_t max) {
  auto p = std::make_shared<pending_read>();
  asio::co_spawn(io, r->read(offset, max), [p](std::exception_ptr e, std::pair<std::error_code, std::string> got) {
    if (e) {
      p->result = std::pair{std::make_error_code(std::errc::state_not_recoverable), std::string{}};
      return;
    }
    p->result = std::move(got);
  });
  return p;
}

bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_for(20ms);
  }
  return done();
}

TEST(Stream, ReadsWaitForTheirPieceAndReturnTheFilesBytes) {
  temp_dir d;
  // 4 MiB in 16 pieces of 256 KiB, after a small first file (so the streamed file does not
  // start at a piece boundary).
  auto mi = make_torrent(d.path / "seed", "media", {{"a.txt", 1000}, {"b.webm", 4 * MiB}}, 21, 256 * KiB);
  const std::string source = read_file(d.path / "seed" / "media" / "b.webm");
  const std::uint64_t off = 1000;  // b.webm's place in the torrent
  // A partial peer with only the last MiB of b.webm: the pieces it can give are known.
  std::string partial(source.size(), 'x');
  std::copy(source.end() - MiB, source.end(), partial.end() - MiB);
  write_file(d.path / "part" / "media" / "b.webm", partial);
  write_file(d.path / "part" / "media" / "a.txt", std::string(1000, 'x'));
  fixture_session part;
  torrent_params pp;
  pp.info = mi;
  pp.save_path = d.path / "part";
  pp.force_check = true;
  auto ph = part.ses().add(pp);
  const auto ps = part.wait_status(ph, [](const torrent_status& s) { return s.state == torrent_state::downloading; });
  ASSERT_EQ(ps.state, torrent_state::downloading);
  const std::uint32_t first_full =
      static_cast<std::uint32_t>((off + source.size() - MiB + 256 * KiB - 1) / (256 * KiB));
  ASSERT_EQ(ps.pieces_have, mi.num_pieces - first_full) << "the partial peer's pieces";

  fixture_session leech;
  torrent_params lp;
  lp.info = mi;
  lp.save_path = d.path / "leech";
  lp.peers = {part.endpoint()};
  auto lh = leech.ses().add(lp);
  ASSERT_TRUE(leech.wait_state(lh.id(), torrent_state::downloading));

  // Unknown files, pad files and torrents give no reader.
  EXPECT_EQ(stream::file_reader::open(leech.ses(), lh.id(), 7), nullptr);
  EXPECT_EQ(stream::file_reader::open(leech.ses(), lh.id() + 100, 0), nullptr);
  const auto hex = to_hex(as_view(*mi.info_hash_v1));
  EXPECT_EQ(stream::find_torrent(leech.ses(), hex), lh.id());
  EXPECT_EQ(stream::find_torrent(leech.ses(), "nothex"), std::nullopt);
  EXPECT_EQ(stream::url_hash(leech.ses(), lh.id()), hex);
  auto files = stream::list_files(leech.ses(), lh.id());
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].path, "media/b.webm");
  EXPECT_EQ((*files)[1].size, 4 * MiB);

  auto r = stream::file_reader::open(leech.ses(), lh.id(), 1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->size(), 4 * MiB);
  asio::io_context io;
  // The start: no peer has it, so the read waits.
  auto head = start_read(io, r, 0, 64 * KiB);
  // Near the end: the partial peer has it.
  const std::uint64_t at = 4 * MiB - 300 * KiB;
  auto tail = start_read(io, r, at, 1 * MiB);
  ASSERT_TRUE(run_until(
      io, [&] { return tail->result.has_value(); }, 30s))
      << "a read of pieces a peer has never came";
  ASSERT_FALSE(tail->result->first) << tail->result->first.message();
  // At most to the end of the piece it starts in.
  const std::uint64_t piece_end = ((off + at) / (256 * KiB) + 1) * 256 * KiB - off;
  ASSERT_EQ(tail->result->second.size(), piece_end - at);
  EXPECT_EQ(tail->result->second, source.substr(at, piece_end - at));
  EXPECT_FALSE(head->result) << "a read of a piece nobody has finished";
  auto ranges = r->have_ranges();
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.back().second, 4 * MiB);
  EXPECT_GT(ranges.front().first, 0u);

  // Past the end: nothing, at once.
  auto past = start_read(io, r, 4 * MiB, 10);
  ASSERT_TRUE(run_until(
      io, [&] { return past->result.has_value(); }, 10s));
  EXPECT_FALSE(past->result->first);
  EXPECT_TRUE(past->result->second.empty());

  // A whole seed joins: the waiting read is served with the right bytes.
  fixture_session seed;
  torrent_params sp;
  sp.info = mi;
  sp.save_path = d.path / "seed";
  auto sh = seed.ses().add(sp);
  ASSERT_TRUE(seed.wait_state(sh.id(), torrent_state::seeding));
  const auto seed_ep = seed.endpoint();
  leech.ses().call([&] {
    if (auto t = leech.ses().find(lh.id())) t->add_peer(seed_ep);
    return 0;
  });
  ASSERT_TRUE(run_until(
      io, [&] { return head->result.has_value(); }, 30s))
      << "the waiting read never came";
  ASSERT_FALSE(head->result->first) << head->result->first.message();
  EXPECT_EQ(head->result->second, source.substr(0, 64 * KiB));
  // Reads at random places all return the file's bytes.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20; ++i) {
    const std::uint64_t o = rng() % source.size();
    auto x = start_read(io, r, o, 1 + rng() % (300 * KiB));
    ASSERT_TRUE(run_until(
        io, [&] { return x->result.has_value(); }, 30s));
    ASSERT_FALSE(x->result->first);
    ASSERT_FALSE(x->result->second.empty());
    EXPECT_EQ(x->result->second, source.substr(o, x->result->second.size())) << "at " << o;
  }
}

TEST(Stream, ReadersAndWaitingReadsAreBounded) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "one.mp3", {{"", 2 * MiB}}, 22, 256 * KiB);
  fixture_session leech;
  torrent_params lp;
  lp.info = mi;
  lp.save_path = d.path / "leech";
  auto lh = leech.ses().add(lp);  // no peers: nothing ever arrives
  ASSERT_TRUE(leech.wait_state(lh.id(), torrent_state::downloading));
  std::vector<std::shared_ptr<stream::file_reader>> readers;
  for (std::size_t i = 0; i < torrent::max_stream_readers; ++i) {
    readers.push_back(stream::file_reader::open(leech.ses(), lh.id(), 0));
    ASSERT_NE(readers.back(), nullptr) << i;
  }
  EXPECT_EQ(stream::file_reader::open(leech.ses(), lh.id(), 0), nullptr) << "a reader past the bound";
  readers.resize(1);
  asio::io_context io;
  std::vector<std::shared_ptr<pending_read>> waits;
  for (std::size_t i = 0; i < torrent::max_stream_waits; ++i)
    waits.push_back(start_read(io, readers[0], (i * 7919) % (2 * MiB), 100));
  auto over = start_read(io, readers[0], 0, 100);
  ASSERT_TRUE(run_until(
      io, [&] { return over->result.has_value(); }, 10s));
  EXPECT_EQ(over->result->first, std::make_error_code(std::errc::resource_unavailable_try_again));
  for (const auto& w : waits)
    EXPECT_FALSE(w->result);
  // Closing the reader ends its waiting reads with an error, not silence.
  readers.clear();
  ASSERT_TRUE(run_until(
      io, [&] { return std::all_of(waits.begin(), waits.end(), [](const auto& w) { return w->result.has_value(); }); },
      10s));
  EXPECT_EQ(waits[0]->result->first, std::make_error_code(std::errc::operation_canceled));
  // The critical list is empty again once no reader is left.
  const auto crit = leech.ses().call([&] { return leech.ses().find(lh.id())->picker().critical().size(); });
  EXPECT_EQ(crit, 0u);
}

TEST(Stream, ASeekMovesTheDeadlines) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "film.mp4", {{"", 32 * MiB}}, 23, 256 * KiB);
  fixture_session leech;
  torrent_params lp;
  lp.info = mi;
  lp.save_path = d.path / "leech";
  auto lh = leech.ses().add(lp);
  ASSERT_TRUE(leech.wait_state(lh.id(), torrent_state::downloading));
  auto r = stream::file_reader::open(leech.ses(), lh.id(), 0);
  ASSERT_NE(r, nullptr);
  auto crit = [&] { return leech.ses().call([&] { return leech.ses().find(lh.id())->picker().critical(); }); };
  auto c0 = crit();
  ASSERT_FALSE(c0.empty());
  EXPECT_EQ(c0.front(), 0u) << "the piece under the reader first";
  // The last 256 KiB (the last piece) comes early, and nothing else near the end.
  EXPECT_EQ(std::find(c0.begin(), c0.end(), 126u), c0.end());
  for (std::uint32_t p = 127; p < 128; ++p)
    EXPECT_NE(std::find(c0.begin(), c0.end(), p), c0.end()) << p;
  asio::io_context io;
  auto far = start_read(io, r, 20 * MiB, 100);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::vector<std::uint32_t> c1;
  while (std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(20ms);
    c1 = crit();
    if (!c1.empty() && c1.front() == 80) break;
  }
  ASSERT_FALSE(c1.empty());
  EXPECT_EQ(c1.front(), 80u) << "the seek did not move the deadlines";
  EXPECT_EQ(std::find(c1.begin(), c1.end(), 5u), c1.end()) << "the old window is still critical";
  EXPECT_FALSE(far->result);
  // The reader goes while its read waits: the read ends with an error on this io_context,
  // which must outlive it (it is the read's executor).
  r.reset();
  ASSERT_TRUE(run_until(
      io, [&] { return far->result.has_value(); }, 10s));
  EXPECT_EQ(far->result->first, std::make_error_code(std::errc::operation_canceled));
}

TEST(Stream, ASeekPutsTheNewWindowAheadOfTheOldOnesRequests) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "film.webm", {{"", 16 * MiB}}, 24, 256 * KiB);
  // A slow seeder: requests pile up in the leecher's queue.
  fixture_session seed([](session_settings& st) { st.max_upload_rate = 128 * KiB; });
  torrent_params sp;
  sp.info = mi;
  sp.save_path = d.path / "seed";
  auto sh = seed.ses().add(sp);
  ASSERT_TRUE(seed.wait_state(sh.id(), torrent_state::seeding));
  fixture_session leech;
  torrent_params lp;
  lp.info = mi;
  lp.save_path = d.path / "leech";
  lp.peers = {seed.endpoint()};
  auto lh = leech.ses().add(lp);
  ASSERT_TRUE(leech.wait_state(lh.id(), torrent_state::downloading));
  const std::uint64_t rid = leech.ses().call([&] { return leech.ses().find(lh.id())->open_reader(0); });
  ASSERT_NE(rid, 0u);
  // Wait until the leecher has asked for pieces of the reader's first window (past piece 0,
  // the file's first piece, which stays time-critical wherever the reader goes).
  auto window_requests = [&] {
    return leech.ses().call([&] {
      std::size_t n = 0;
      if (auto t = leech.ses().find(lh.id())) {
        for (const auto& p : t->peers())
          for (const auto& b : p->requested())
            n += b.piece >= 1 && b.piece < 16 ? 1 : 0;
      }
      return n;
    });
  };
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (window_requests() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  ASSERT_GT(window_requests(), 0u);
  // The seek, and what the queue looks like right after it, in one trip to the network thread.
  const std::uint32_t target = 40;  // 10 MiB
  const auto [ok, first_new, old_before_new] = leech.ses().call([&] {
    auto t = leech.ses().find(lh.id());
    t->stream_read(rid, std::uint64_t{target} * 256 * KiB, 100, [](std::error_code, std::string) {});
    bool found = false;
    std::size_t first = 0, old = 0;
    for (const auto& p : t->peers()) {
      std::size_t i = 0;
      for (const auto& b : p->requested()) {
        if (b.piece == target && !found) {
          found = true;
          first = i;
        }
        if (!found && b.piece >= 1 && b.piece < 16) ++old;
        ++i;
      }
    }
    t->close_reader(rid);
    return std::tuple{found, first, old};
  });
  ASSERT_TRUE(ok) << "nothing was asked for the piece under the new position";
  EXPECT_EQ(old_before_new, 0u) << "requests for the old window still come first (" << first_new << " ahead)";
}

}  // namespace
}  // namespace shoal::testing
