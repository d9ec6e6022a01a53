// The engine as a library, in-process: sessions on loopback driven through handles and
// events (pause, resume, remove, move, priorities, recheck, queueing, seeding goals,
// duplicate adds, magnets, restart after kill -9).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <set>
#include <tuple>

#include "core/magnet.hpp"
#include "core/text.hpp"
#include "session_fixture.hpp"
#include "storage/resume.hpp"

namespace shoal::testing {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t MiB = 1 << 20;

// A seeding session for `mi` (data in `dir`), optionally rate limited so that a download
// from it lasts long enough to act on it midway.
struct seeder {
  fixture_session fs;
  torrent_handle h;
  seeder(const metainfo& mi, const fs::path& dir, std::uint64_t rate = 0)
      : fs([rate](session_settings& st) { st.max_upload_rate = rate; }) {
    torrent_params p;
    p.info = mi;
    p.save_path = dir;
    h = fs.ses().add(p);
    EXPECT_TRUE(fs.wait_state(h.id(), torrent_state::seeding)) << "the seeder never seeded";
  }
};

torrent_params leech_params(const metainfo& mi, const fs::path& dir, const tcp::endpoint& from) {
  torrent_params p;
  p.info = mi;
  p.save_path = dir;
  p.resume_file = dir / ".shoal" / (to_hex(as_view(*mi.info_hash_v1)) + ".resume");
  p.peers = {from};
  return p;
}

TEST(Session, PauseAndResumeMidDownload) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "data.bin", {{"", 2 * MiB}}, 1);
  seeder s(mi, d.path / "seed", 512 * 1024);
  fixture_session leech;
  auto h = leech.ses().add(leech_params(mi, d.path / "leech", s.fs.endpoint()));
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::piece_finished)) << "no piece arrived";
  h.pause();
  ASSERT_TRUE(leech.wait_state(h.id(), torrent_state::paused));
  auto st = leech.wait_status(h, [](const torrent_status& x) { return x.peers == 0; });
  EXPECT_EQ(st.state, torrent_state::paused);
  EXPECT_EQ(st.peers, 0u);
  EXPECT_LT(st.have_wanted, st.total_wanted) << "finished before the pause: the seeder's limit is too high";
  // Nothing may arrive while paused (pieces already received may still finish their check).
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(h.status()->downloaded, st.downloaded);
  EXPECT_EQ(h.status()->peers, 0u);
  h.resume();
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished, 60s));
  EXPECT_EQ(read_file(d.path / "leech" / "data.bin"), read_file(d.path / "seed" / "data.bin"));
  auto fin = *h.status();
  EXPECT_EQ(fin.state, torrent_state::seeding);
  // What was verified before the pause was not fetched again.
  EXPECT_EQ(fin.downloaded - fin.wasted, fin.total_wanted);
}

TEST(Session, RemoveWhileDownloadingKeepsOrDeletesData) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "folder", {{"a.bin", 1 * MiB}, {"b.bin", 1 * MiB}}, 2);
  seeder s(mi, d.path / "seed", 512 * 1024);
  for (const bool delete_data : {false, true}) {
    SCOPED_TRACE(delete_data ? "delete data" : "keep data");
    fixture_session leech;
    const fs::path dir = d.path / (delete_data ? "leech-delete" : "leech-keep");
    auto h = leech.ses().add(leech_params(mi, dir, s.fs.endpoint()));
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::piece_finished));
    const fs::path resume = dir / ".shoal" / (to_hex(as_view(*mi.info_hash_v1)) + ".resume");
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!fs::exists(resume) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(fs::exists(resume)) << "no resume data written while downloading";
    leech.ses().remove(h.id(), delete_data);
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::removed));
    EXPECT_FALSE(h.status()) << "a removed torrent's handle still answers";
    EXPECT_TRUE(leech.ses().status_all().empty());
    EXPECT_FALSE(fs::exists(resume)) << "resume data left behind";
    if (delete_data) {
      EXPECT_FALSE(fs::exists(dir / "folder")) << "the torrent's folder is still there";
    } else {
      EXPECT_TRUE(fs::exists(dir / "folder" / "a.bin"));
    }
  }
}

// Renaming a folder and a file of a seeding torrent: on disk, in what peers are served, in
// the resume data (a restart finds the files by their new names with no check); and a file
// of a torrent renamed before any of its data came.
TEST(Session, RenameFilesAndFoldersOnDiskAndAcrossRestart) {
  temp_dir d;
  const auto seed_dir = d.path / "seed";
  auto mi =
      make_torrent(seed_dir, "multi", {{"a/x.bin", 200 * 1024}, {"a/y.bin", 100 * 1024}, {"z.bin", 70 * 1024}}, 60);
  const auto resume = seed_dir / ".shoal" / (to_hex(as_view(*mi.info_hash_v1)) + ".resume");
  auto seed_params = [&] {
    torrent_params p;
    p.info = mi;
    p.save_path = seed_dir;
    p.resume_file = resume;
    return p;
  };
  {
    fixture_session fs;
    auto h = fs.ses().add(seed_params());
    ASSERT_TRUE(fs.wait_state(h.id(), torrent_state::seeding));
    // Refused, and nothing changes: a name that leaves the folder, a path the torrent does
    // not have, a name another file has, a file where a folder is, a folder into itself.
    EXPECT_TRUE(h.rename_path("multi/a", "multi/../evil").first == std::errc::invalid_argument);
    EXPECT_TRUE(h.rename_path("multi/nope", "multi/b").first == std::errc::no_such_file_or_directory);
    EXPECT_TRUE(h.rename_path("multi/z.bin", "multi/a/x.bin").first == std::errc::file_exists);
    EXPECT_TRUE(h.rename_path("multi/z.bin", "multi/a").first == std::errc::file_exists);
    EXPECT_TRUE(h.rename_path("multi/a", "multi/a/b").first == std::errc::invalid_argument);
    EXPECT_TRUE(fs::exists(seed_dir / "multi" / "a" / "x.bin"));
    EXPECT_FALSE(fs::exists(d.path / "evil"));

    auto [ec1, why1] = h.rename_path("multi/a", "multi/b");
    ASSERT_FALSE(ec1) << why1;
    auto [ec2, why2] = h.rename_path("multi/z.bin", "multi/c/z2.bin");
    ASSERT_FALSE(ec2) << why2;
    EXPECT_TRUE(fs::exists(seed_dir / "multi" / "b" / "x.bin"));
    EXPECT_FALSE(fs::exists(seed_dir / "multi" / "a"));
    EXPECT_TRUE(fs::exists(seed_dir / "multi" / "c" / "z2.bin"));
    EXPECT_FALSE(fs::exists(seed_dir / "multi" / "z.bin"));
    EXPECT_TRUE(fs.wait_kind(h.id(), event_kind::file_renamed));

    // A leech renames a file before any data came, then downloads from the renamed seed.
    fixture_session leech;
    auto lp = leech_params(mi, d.path / "leech", fs.endpoint());
    lp.paused = true;
    auto lh = leech.ses().add(lp);
    ASSERT_TRUE(leech.wait_state(lh.id(), torrent_state::paused));
    auto [ec3, why3] = lh.rename_path("multi/a/y.bin", "multi/y-renamed.bin");
    ASSERT_FALSE(ec3) << why3;
    lh.resume();
    ASSERT_TRUE(leech.wait_kind(lh.id(), event_kind::torrent_finished, 60s));
    EXPECT_EQ(read_file(d.path / "leech" / "multi" / "y-renamed.bin"), read_file(seed_dir / "multi" / "b" / "y.bin"));
    EXPECT_EQ(read_file(d.path / "leech" / "multi" / "z.bin"), read_file(seed_dir / "multi" / "c" / "z2.bin"));
    EXPECT_EQ(read_file(d.path / "leech" / "multi" / "a" / "x.bin"), read_file(seed_dir / "multi" / "b" / "x.bin"));
    EXPECT_FALSE(fs::exists(d.path / "leech" / "multi" / "a" / "y.bin"));
  }
  // Restarted from its resume data, the seed finds every file by its new name: no check.
  fixture_session fs;
  auto h = fs.ses().add(seed_params());
  ASSERT_TRUE(fs.wait_state(h.id(), torrent_state::seeding));
  auto st = h.status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->have_wanted, st->total_wanted);
  for (const auto& e : fs.events()) {
    if (e.torrent == h.id() && e.kind == event_kind::state_changed) {
      EXPECT_NE(e.state, static_cast<std::uint8_t>(torrent_state::checking)) << "checked again after the restart";
    }
  }
}

// What the user changes while a torrent's resume data is still being read (a daemon that
// just restarted) is newer than the resume data: kept over it, and saved once it is read,
// with every verified piece. Before, the place in the queue and the label went back to the
// resume data's, and the early save wrote no verified pieces over the file.
TEST(Session, ChangesBeforeTheResumeDataIsReadAreKept) {
  temp_dir d;
  std::vector<metainfo> tors;
  for (int i = 0; i < 2; ++i)
    tors.push_back(make_torrent(d.path, "early" + std::to_string(i) + ".bin", {{"", 96 * 1024}}, 80 + i));
  auto params = [&](int i) {
    torrent_params p;
    p.info = tors[static_cast<std::size_t>(i)];
    p.save_path = d.path;
    p.resume_file = d.path / ".shoal" / (std::to_string(i) + ".resume");
    return p;
  };
  auto saved = [&](int i) {
    const auto& mi = tors[static_cast<std::size_t>(i)];
    return load_resume_file(params(i).resume_file, std::string(as_view(*mi.info_hash_v1)), 3);
  };
  {
    fixture_session first;
    for (int i = 0; i < 2; ++i)
      ASSERT_TRUE(first.wait_state(first.ses().add(params(i)).id(), torrent_state::seeding));
  }
  ASSERT_TRUE(saved(0) && saved(0)->pieces.count() == 3);

  fixture_session fs;
  // The disk is busy (one disk thread, held here): no resume data is read until it is let go.
  std::promise<void> release;
  auto gate = release.get_future().share();
  fs.ses().disk_pool().post([gate] { gate.wait(); });
  auto h0 = fs.ses().add(params(0));
  auto h1 = fs.ses().add(params(1));
  fs.ses().queue_move({h0.id()}, session::queue_step::bottom);
  h0.set_labels({"early"});
  h1.set_limits(5000, 6000);
  release.set_value();
  ASSERT_TRUE(fs.wait_state(h0.id(), torrent_state::seeding));
  ASSERT_TRUE(fs.wait_state(h1.id(), torrent_state::seeding));
  auto s0 = h0.status(), s1 = h1.status();
  ASSERT_TRUE(s0 && s1);
  EXPECT_EQ(s0->queue_position, 1u);
  EXPECT_EQ(s1->queue_position, 0u);
  EXPECT_EQ(s0->labels, std::vector<std::string>{"early"});
  EXPECT_EQ(s1->max_download_rate, 5000u);
  // ... and the resume data says so, every piece still verified.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool ok = false;
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    auto r0 = saved(0), r1 = saved(1);
    ok = r0 && r1 && r0->queue_position == 1 && r0->labels == std::vector<std::string>{"early"} &&
         r1->max_download_rate == 5000 && r0->pieces.count() == 3 && r1->pieces.count() == 3;
    if (!ok) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ok) << "the resume data lost the early changes or its pieces";
}

TEST(Session, MoveStorageWhileDownloadingAndWhileSeeding) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "folder", {{"a.bin", 1 * MiB}, {"sub/b.bin", 1 * MiB}}, 3);
  seeder s(mi, d.path / "seed", 1024 * 1024);
  fixture_session leech;
  auto h = leech.ses().add(leech_params(mi, d.path / "one", s.fs.endpoint()));
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::piece_finished));
  h.move_storage(d.path / "two");
  auto moved = leech.wait_kind(h.id(), event_kind::storage_moved);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->message, (d.path / "two").string());
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished, 60s));
  EXPECT_EQ(read_file(d.path / "two" / "folder" / "a.bin"), read_file(d.path / "seed" / "folder" / "a.bin"));
  EXPECT_EQ(read_file(d.path / "two" / "folder" / "sub" / "b.bin"),
            read_file(d.path / "seed" / "folder" / "sub" / "b.bin"));
  EXPECT_FALSE(fs::exists(d.path / "one" / "folder")) << "the old copy was not removed";
  EXPECT_EQ(h.status()->save_path, (d.path / "two").string());

  // Seeding: move again, then a third session downloads from the new place.
  h.move_storage(d.path / "three");
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::storage_moved));
  ASSERT_TRUE(leech.wait_state(h.id(), torrent_state::seeding));
  EXPECT_FALSE(fs::exists(d.path / "two" / "folder"));
  fixture_session third;
  auto h3 = third.ses().add(leech_params(mi, d.path / "four", leech.endpoint()));
  ASSERT_TRUE(third.wait_kind(h3.id(), event_kind::torrent_finished, 60s));
  EXPECT_EQ(read_file(d.path / "four" / "folder" / "sub" / "b.bin"),
            read_file(d.path / "seed" / "folder" / "sub" / "b.bin"));
}

TEST(Session, WantedFilesAddedAfterCompletionDownloadAgain) {
  temp_dir d;
  // 256 KiB files on 32 KiB pieces: each file has pieces of its own.
  auto mi =
      make_torrent(d.path / "seed", "album", {{"1.bin", 256 * 1024}, {"2.bin", 256 * 1024}, {"3.bin", 256 * 1024}}, 4);
  seeder s(mi, d.path / "seed");
  fixture_session leech;
  auto p = leech_params(mi, d.path / "leech", s.fs.endpoint());
  p.file_priorities = {1, 0, 0};
  auto h = leech.ses().add(p);
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished));
  auto st = *h.status();
  EXPECT_EQ(st.total_wanted, 256u * 1024);
  EXPECT_FALSE(fs::exists(d.path / "leech" / "album" / "2.bin"));
  h.set_file_priorities({1, 1, 1});
  ASSERT_TRUE(leech.wait_state(h.id(), torrent_state::downloading)) << "did not go back to downloading";
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished));
  for (const char* f : {"1.bin", "2.bin", "3.bin"})
    EXPECT_EQ(read_file(d.path / "leech" / "album" / f), read_file(d.path / "seed" / "album" / f)) << f;
  EXPECT_EQ(h.status()->total_wanted, 3u * 256 * 1024);
}

TEST(Session, ForceRecheckFindsDamage) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "data.bin", {{"", 1 * MiB}}, 5);
  fixture_session one;
  torrent_params p;
  p.info = mi;
  p.save_path = d.path / "seed";
  auto h = one.ses().add(p);
  ASSERT_TRUE(one.wait_state(h.id(), torrent_state::seeding));
  EXPECT_EQ(h.status()->pieces_have, h.status()->num_pieces);
  {
    // Damage one byte of piece 3 behind the torrent's back.
    std::fstream f(d.path / "seed" / "data.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3 * 32 * 1024 + 100);
    f.put('\x5a' ^ read_file(d.path / "seed" / "data.bin")[3 * 32 * 1024 + 100]);
  }
  h.force_recheck();
  ASSERT_TRUE(one.wait_state(h.id(), torrent_state::checking));
  ASSERT_TRUE(one.wait_state(h.id(), torrent_state::downloading));
  auto st = *h.status();
  EXPECT_EQ(st.pieces_have, st.num_pieces - 1);
  EXPECT_EQ(st.total_wanted - st.have_wanted, 32u * 1024);
}

TEST(Session, QueueLimitKeepsTheThirdDownloadWaiting) {
  temp_dir d;
  std::vector<metainfo> tors;
  for (int i = 0; i < 3; ++i)
    tors.push_back(make_torrent(d.path / "seed", "t" + std::to_string(i) + ".bin", {{"", 1 * MiB}}, 10 + i));
  fixture_session seed([](session_settings& st) {
    st.max_upload_rate = 1024 * 1024;
    if (getenv("SHOAL_TEST_LOG")) st.log = [](const std::string& l) { fprintf(stderr, "S %s\n", l.c_str()); };
  });
  for (auto& mi : tors) {
    torrent_params p;
    p.info = mi;
    p.save_path = d.path / "seed";
    auto h = seed.ses().add(p);
    ASSERT_TRUE(seed.wait_state(h.id(), torrent_state::seeding));
  }
  fixture_session leech([](session_settings& st) {
    st.max_active_downloads = 2;
    if (getenv("SHOAL_TEST_LOG")) st.log = [](const std::string& l) { fprintf(stderr, "L %s\n", l.c_str()); };
  });
  std::vector<torrent_handle> hs;
  for (auto& mi : tors)
    hs.push_back(leech.ses().add(leech_params(mi, d.path / "leech", seed.endpoint())));
  for (auto& h : hs)
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished, 60s));
  // Replay the events: never more than two downloading at once, and the third started only
  // after one of the first two finished.
  std::set<torrent_id> downloading;
  std::size_t most = 0;
  bool third_after_finish = false, finished_any = false;
  for (const auto& e : leech.events()) {
    if (e.kind == event_kind::torrent_finished) finished_any = true;
    if (e.kind != event_kind::state_changed) continue;
    if (e.state == static_cast<std::uint8_t>(torrent_state::downloading)) {
      downloading.insert(e.torrent);
      if (e.torrent == hs[2].id()) third_after_finish = finished_any;
    } else {
      downloading.erase(e.torrent);
    }
    most = std::max(most, downloading.size());
  }
  EXPECT_EQ(most, 2u);
  EXPECT_TRUE(third_after_finish) << "the third download did not wait for a slot";
  for (int i = 0; i < 3; ++i) {
    const std::string n = "t" + std::to_string(i) + ".bin";
    EXPECT_EQ(read_file(d.path / "leech" / n), read_file(d.path / "seed" / n));
  }
}

// The queue as the daemon's clients move it: several torrents at once to the top or the
// bottom (their order kept) or one place up or down; and a status of only the torrents
// named, by id or by info-hash.
TEST(Session, QueueMovesManyAtOnceAndStatusOfPicksByIdOrHash) {
  temp_dir d;
  fixture_session fs;
  std::vector<torrent_id> id;  // id[i]: the i-th torrent added
  std::vector<metainfo> tors;
  for (int i = 0; i < 6; ++i) {
    tors.push_back(make_torrent(d.path, "q" + std::to_string(i) + ".bin", {{"", 64 * 1024}}, 40 + i));
    torrent_params p;
    p.info = tors.back();
    p.save_path = d.path;
    p.paused = true;
    id.push_back(fs.ses().add(p).id());
  }
  // The queue as indices into id, by queue position.
  auto order = [&] {
    auto all = fs.ses().status_all();
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.queue_position < b.queue_position; });
    std::vector<int> out;
    for (std::size_t k = 0; k < all.size(); ++k) {
      EXPECT_EQ(all[k].queue_position, k) << "positions are not 0..n-1";
      out.push_back(static_cast<int>(std::find(id.begin(), id.end(), all[k].id) - id.begin()));
    }
    return out;
  };
  using step = session::queue_step;
  ASSERT_EQ(order(), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  fs.ses().queue_move({id[4], id[2]}, step::top);
  EXPECT_EQ(order(), (std::vector<int>{2, 4, 0, 1, 3, 5}));
  fs.ses().queue_move({id[2], id[4]}, step::bottom);
  EXPECT_EQ(order(), (std::vector<int>{0, 1, 3, 5, 2, 4}));
  fs.ses().queue_move({id[0], id[5]}, step::up);  // the first cannot go higher
  EXPECT_EQ(order(), (std::vector<int>{0, 1, 5, 3, 2, 4}));
  fs.ses().queue_move({id[1], id[3], 999}, step::down);  // an unknown id is skipped
  EXPECT_EQ(order(), (std::vector<int>{0, 5, 1, 2, 3, 4}));
  fs.ses().queue_move({id[4]}, step::down);  // the last cannot go lower
  EXPECT_EQ(order(), (std::vector<int>{0, 5, 1, 2, 3, 4}));

  const auto some = fs.ses().status_of({id[3], 999, id[3]}, {*tors[1].info_hash_v1, sha1_digest{}});
  ASSERT_EQ(some.size(), 2u) << "by id and by hash, each once, nothing for unknown names";
  EXPECT_EQ(some[0].id, id[1]);
  EXPECT_EQ(some[1].id, id[3]);
  EXPECT_TRUE(fs.ses().status_of({}).empty());
}

TEST(Session, EachSeedingGoalPausesTheTorrent) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "data.bin", {{"", 512 * 1024}}, 20);
  {
    // Ratio 1.0: the seeder stops once one full copy went out.
    fixture_session sfs;
    torrent_params p;
    p.info = mi;
    p.save_path = d.path / "seed";
    p.goals.ratio = 1.0;
    auto h = sfs.ses().add(p);
    ASSERT_TRUE(sfs.wait_state(h.id(), torrent_state::seeding));
    fixture_session leech;
    auto lh = leech.ses().add(leech_params(mi, d.path / "leech", sfs.endpoint()));
    ASSERT_TRUE(leech.wait_kind(lh.id(), event_kind::torrent_finished));
    auto goal = sfs.wait_kind(h.id(), event_kind::goal_reached);
    ASSERT_TRUE(goal);
    EXPECT_EQ(goal->message, "ratio");
    ASSERT_TRUE(sfs.wait_state(h.id(), torrent_state::paused));
    EXPECT_GE(h.status()->total_uploaded, h.status()->total_wanted);
  }
  for (const bool idle : {false, true}) {
    fixture_session one;
    torrent_params p;
    p.info = mi;
    p.save_path = d.path / "seed";
    if (idle) {
      p.goals.idle_time = 1s;
    } else {
      p.goals.seeding_time = 2s;
    }
    auto h = one.ses().add(p);
    ASSERT_TRUE(one.wait_state(h.id(), torrent_state::seeding));
    auto goal = one.wait_kind(h.id(), event_kind::goal_reached, 20s);
    ASSERT_TRUE(goal);
    EXPECT_EQ(goal->message, idle ? "idle time" : "seeding time");
    ASSERT_TRUE(one.wait_state(h.id(), torrent_state::paused));
    if (!idle) {
      EXPECT_GE(h.status()->seeding_seconds, 2);
    }
  }
}

TEST(Session, AddingTheSameInfoHashAgainMerges) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "data.bin", {{"", 256 * 1024}}, 30);
  fixture_session one;
  torrent_params p;
  p.info = mi;
  p.save_path = d.path / "seed";
  p.paused = true;
  auto a = one.ses().add(p);
  p.info.tracker_tiers = {{"http://127.0.0.1:1/announce"}};
  p.web_seeds = std::vector<std::string>{"http://127.0.0.1:1/files/"};
  auto b = one.ses().add(p);
  EXPECT_EQ(a.id(), b.id());
  EXPECT_EQ(one.ses().status_all().size(), 1u);
  auto st = *a.status();
  EXPECT_EQ(st.trackers, std::vector<std::string>{"http://127.0.0.1:1/announce"});
  // A magnet of the same torrent finds it too.
  torrent_params m;
  m.magnet = magnet_from(mi);
  auto c = one.ses().add(m);
  EXPECT_EQ(c.id(), a.id());
  EXPECT_EQ(one.ses().status_all().size(), 1u);
}

TEST(Session, MagnetBecomesATorrent) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "folder", {{"x.bin", 300 * 1024}, {"y.bin", 100 * 1024}}, 40);
  seeder s(mi, d.path / "seed");
  fixture_session leech;
  torrent_params p;
  p.magnet = magnet_from(mi);
  p.magnet->trackers.clear();
  p.peers = {s.fs.endpoint()};
  p.save_path = d.path / "leech";
  p.metadata_file = d.path / "leech" / ".shoal" / "m.torrent";
  auto h = leech.ses().add(p);
  ASSERT_TRUE(leech.wait_state(h.id(), torrent_state::fetching_metadata));
  auto meta = leech.wait_kind(h.id(), event_kind::metadata_received);
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->message, "folder");
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished));
  EXPECT_EQ(read_file(d.path / "leech" / "folder" / "x.bin"), read_file(d.path / "seed" / "folder" / "x.bin"));
  EXPECT_EQ(h.status()->name, "folder");
  auto kept = load_metainfo(p.metadata_file);
  ASSERT_TRUE(kept) << "the verified metadata was not kept";
  EXPECT_EQ(kept->info_hash_v1, mi.info_hash_v1);
}

// The session-wide send budget: each connection holds at most its share of piece payload
// read or queued for it (the budget over the connections, at least 256 KiB), so three
// leechers asking deep queues at once cannot make the seeder hold 8 reads of 256 KiB
// each (2 MiB) apiece, as they could before (a peak of 7 to 11 MB with the budget off);
// every download still completes.
TEST(Session, SendBudgetIsSharedByTheConnections) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "data.bin", {{"", 4 * MiB}}, 7, 1 * MiB);
  fixture_session seed([](session_settings& st) { st.max_send_backlog_total = 512 * 1024; });
  torrent_params sp;
  sp.info = mi;
  sp.save_path = d.path / "seed";
  auto sh = seed.ses().add(sp);
  ASSERT_TRUE(seed.wait_state(sh.id(), torrent_state::seeding));
  std::vector<std::unique_ptr<fixture_session>> leeches;
  std::vector<torrent_handle> hs;
  for (int i = 0; i < 3; ++i) {
    leeches.push_back(std::make_unique<fixture_session>());
    hs.push_back(leeches.back()->ses().add(leech_params(mi, d.path / ("leech" + std::to_string(i)), seed.endpoint())));
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(leeches[i]->wait_kind(hs[i].id(), event_kind::torrent_finished, 60s)) << "leecher " << i;
    EXPECT_EQ(read_file(d.path / ("leech" + std::to_string(i)) / "data.bin"), read_file(d.path / "seed" / "data.bin"));
  }
  // End-game spares may still be in flight when the last leecher finishes: they drain.
  std::uint64_t now = 1;
  for (auto until = std::chrono::steady_clock::now() + 10s; now != 0 && std::chrono::steady_clock::now() < until;) {
    now = seed.ses().call([&] { return seed.ses().send_backlog(); });
    if (now != 0) std::this_thread::sleep_for(20ms);
  }
  const auto [peak, share] = seed.ses().call([&] {
    return std::pair{seed.ses().send_backlog_peak(), seed.ses().send_share()};
  });
  // Under its share a connection starts one more read of at most 256 KiB. Shares are
  // 512 KiB while one leecher is attached, 256 KiB with two or three: at worst the first
  // holds 768 KiB and the others 512 KiB each, 1.75 MiB.
  EXPECT_LE(peak, (512 + 256 + 2 * 512) * 1024u) << "the connections held more than their shares";
  EXPECT_GT(peak, 0u) << "nothing was ever counted: the budget is not in the serving path";
  EXPECT_EQ(now, 0u) << "payload still counted after every download finished";
  EXPECT_GE(share, 256u * 1024);
}

TEST(Session, EventsComeInOrder) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "folder", {{"a.bin", 64 * 1024}, {"b.bin", 64 * 1024}}, 50);
  seeder s(mi, d.path / "seed");
  fixture_session leech;
  auto h = leech.ses().add(leech_params(mi, d.path / "leech", s.fs.endpoint()));
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished));
  std::vector<std::string> seen;
  std::uint64_t last_seq = 0;
  std::size_t pieces = 0, files = 0;
  for (const auto& e : leech.events()) {
    if (e.torrent != h.id()) continue;
    EXPECT_GT(e.sequence, last_seq);
    last_seq = e.sequence;
    if (e.kind == event_kind::piece_finished) {
      ++pieces;
    } else if (e.kind == event_kind::file_completed) {
      ++files;
    } else if (e.kind == event_kind::state_changed) {
      seen.push_back(e.message);
    } else if (e.kind != event_kind::tracker_reply) {
      seen.push_back(event_kind_name(e.kind));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"added", "queued", "downloading", "seeding", "torrent_finished"}));
  EXPECT_EQ(pieces, 4u);
  EXPECT_EQ(files, 2u);
}

// 50 torrents in mixed states in a child process, kill -9, then the same torrents again in a
// new session from their resume files: same states, nothing hashed or fetched again.
TEST(Session, RestartAfterKillKeepsEveryState) {
  temp_dir d;
  constexpr int groups = 5, per = 10;  // seeding, paused, half done, queued, magnet
  std::vector<metainfo> tors;
  for (int i = 0; i < groups * per; ++i) {
    tors.push_back(make_torrent(d.path / "data", "t" + std::to_string(i) + ".bin", {{"", 64 * 1024}}, 100 + i));
  }
  // Half done: the second piece of each of those torrents is wrong on disk.
  for (int i = 2 * per; i < 3 * per; ++i) {
    std::fstream f(d.path / "data" / ("t" + std::to_string(i) + ".bin"),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40 * 1024);
    f.write(std::string(1024, '\0').data(), 1024);
  }
  // Queued: no data at all, behind the half-done ones (max 10 downloads).
  for (int i = 3 * per; i < 4 * per; ++i)
    fs::remove(d.path / "data" / ("t" + std::to_string(i) + ".bin"));
  auto params = [&](int i) {
    torrent_params p;
    if (i >= 4 * per) {
      p.magnet = magnet_link{};
      sha1_digest h{};
      for (std::size_t k = 0; k < h.size(); ++k)
        h[k] = static_cast<std::uint8_t>(i * 7 + k);
      p.magnet->info_hash_v1 = h;
    } else {
      p.info = tors[static_cast<std::size_t>(i)];
    }
    p.save_path = d.path / "data";
    p.resume_file = d.path / "resume" / (std::to_string(i) + ".resume");
    return p;
  };
  auto limits = [](session_settings& st) { st.max_active_downloads = per; };
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    {
      fixture_session one(limits);
      std::vector<torrent_handle> hs;
      for (int i = 0; i < groups * per; ++i)
        hs.push_back(one.ses().add(params(i)));
      // The paused group: checked and seeding first, then paused.
      for (int i = per; i < 2 * per; ++i) {
        if (!one.wait_state(hs[static_cast<std::size_t>(i)].id(), torrent_state::seeding)) ::_exit(2);
        hs[static_cast<std::size_t>(i)].pause();
      }
      for (;;)
        std::this_thread::sleep_for(1s);  // until killed
    }
  }
  // Wait until every resume file of the first three groups says what we expect.
  std::string why;
  auto resume_ready = [&] {
    for (int i = 0; i < 3 * per; ++i) {
      const auto& mi = tors[static_cast<std::size_t>(i)];
      auto r = load_resume_file(d.path / "resume" / (std::to_string(i) + ".resume"),
                                std::string(as_view(*mi.info_hash_v1)), 2);
      why = "torrent " + std::to_string(i) + ": ";
      if (!r) {
        why += r.err().message();
        return false;
      }
      const std::uint32_t want = i < 2 * per ? 2 : 1;
      if (r->pieces.count() != want || r->paused != (i >= per && i < 2 * per) || r->files.empty()) {
        why += std::to_string(r->pieces.count()) + " pieces, paused " + std::to_string(r->paused);
        return false;
      }
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!resume_ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(resume_ready()) << "the child never wrote the expected resume data: " << why;

  fixture_session again(limits);
  std::vector<torrent_handle> hs;
  for (int i = 0; i < groups * per; ++i) {
    hs.push_back(again.ses().add(params(i)));  // the resume data says which were paused
  }
  auto expect = [&](int i) {
    switch (i / per) {
      case 0:
        return torrent_state::seeding;
      case 1:
        return torrent_state::paused;
      case 2:
        return torrent_state::downloading;
      case 3:
        return torrent_state::queued;
      default:
        return torrent_state::fetching_metadata;
    }
  };
  for (int i = 0; i < groups * per; ++i) {
    SCOPED_TRACE("torrent " + std::to_string(i));
    auto st = again.wait_status(
        hs[static_cast<std::size_t>(i)], [&](const torrent_status& s) { return s.state == expect(i); }, 20s);
    EXPECT_EQ(st.state, expect(i)) << state_name(st.state);
    if (i < 3 * per) {
      EXPECT_EQ(st.pieces_have, i < 2 * per ? 2u : 1u);
    }
    EXPECT_EQ(st.downloaded, 0u);
  }
  // Nothing was hashed again: no torrent went through checking.
  for (const auto& e : again.events()) {
    if (e.kind == event_kind::state_changed) {
      EXPECT_NE(e.state, static_cast<std::uint8_t>(torrent_state::checking)) << "torrent " << e.torrent;
    }
  }
}

}  // namespace
}  // namespace shoal::testing

namespace shoal::testing {
namespace {

// kill -9 at random points of a move to another file system (copy, sync, resume data,
// removal): one complete copy always exists, and a restart seeds from it without a check.
TEST(Session, KillDuringMoveStorageLeavesOneCompleteCopy) {
  temp_dir d;
  // /dev/shm is another file system than the temporary folder on these machines: files are
  // copied, not linked, which is where a crash can land mid-way.
  temp_dir shm_parent;
  const fs::path other = fs::exists("/dev/shm") ? fs::path("/dev/shm") / shm_parent.path.filename() : shm_parent.path;
  std::error_code ec;
  fs::create_directories(other, ec);
  auto mi = make_torrent(d.path / "a", "movie", {{"1.bin", 12 * MiB}, {"2.bin", 12 * MiB}, {"3.bin", 1 * MiB}}, 60,
                         256 * 1024);
  const std::string want1 = read_file(d.path / "a" / "movie" / "1.bin");
  const std::string want3 = read_file(d.path / "a" / "movie" / "3.bin");
  const fs::path resume = d.path / "m.resume";
  std::mt19937 rng(7);
  fs::path here = d.path / "a";
  int moved = 0;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const fs::path there =
        round % 2 == 0 ? other / ("r" + std::to_string(round)) : d.path / ("b" + std::to_string(round));
    const int kill_after_ms = std::uniform_int_distribution<int>(0, 120)(rng);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      fixture_session one;
      torrent_params p;
      p.info = mi;
      p.save_path = here;
      p.resume_file = resume;
      p.settings_from_resume = true;
      auto h = one.ses().add(p);
      if (!one.wait_state(h.id(), torrent_state::seeding)) ::_exit(2);
      std::ofstream(d.path / "ready").put('1');
      h.move_storage(there);
      (void)one.wait_kind(h.id(), event_kind::storage_moved, 60s);
      std::ofstream(d.path / "moved").put('1');
      for (;;)
        std::this_thread::sleep_for(1s);
    }
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (!fs::exists(d.path / "ready") && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    fs::remove(d.path / "ready", ec);
    fs::remove(d.path / "moved", ec);
    // Restart from the resume data: wherever it points, the data must be complete there.
    fixture_session again;
    torrent_params p;
    p.info = mi;
    p.save_path = here;  // the resume data says where the files really are
    p.resume_file = resume;
    auto h = again.ses().add(p);
    auto st = again.wait_status(
        h, [](const torrent_status& s) { return s.state == torrent_state::seeding; }, 60s);
    ASSERT_EQ(st.state, torrent_state::seeding) << state_name(st.state);
    EXPECT_EQ(st.pieces_have, st.num_pieces);
    const fs::path at = st.save_path;
    EXPECT_TRUE(at == here || at == there) << at;
    EXPECT_EQ(read_file(at / "movie" / "1.bin"), want1);
    EXPECT_EQ(read_file(at / "movie" / "3.bin"), want3);
    if (at == there) ++moved;
    here = at;
  }
  std::cout << moved << " of 10 moves had completed when killed\n";
  fs::remove_all(other, ec);
}

}  // namespace
}  // namespace shoal::testing
