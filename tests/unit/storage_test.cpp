#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "core/bencode.hpp"
#include "core/metainfo.hpp"
#include "storage/disk_io.hpp"
#include "storage/file_storage.hpp"
#include "storage/resume.hpp"
#include "tracker/announce.hpp"

using namespace shoal;
namespace fs = std::filesystem;

namespace {
metainfo three_files() {
  metainfo m;
  m.piece_length = 16384;
  m.num_pieces = 3;
  m.version = torrent_version::v1;
  auto file = [](std::string path, std::uint64_t size, std::uint64_t offset, bool pad = false) {
    file_entry f;
    f.path = std::move(path);
    f.size = size;
    f.offset = offset;
    f.pad = pad;
    return f;
  };
  m.files = {file("t/a", 10000, 0), file("t/.pad/6384", 6384, 10000, true), file("t/b", 20000, 16384),
             file("t/empty", 0, 36384)};
  return m;
}
}  // namespace

TEST(FileStorage, MapsPiecesAcrossFilesAndSkipsPads) {
  file_storage fs(three_files());
  EXPECT_EQ(fs.piece_size(0), 16384u);
  EXPECT_EQ(fs.piece_size(2), 36384u - 32768u);
  std::vector<file_slice> sl;
  fs.map(0, 0, 16384, sl);
  ASSERT_EQ(sl.size(), 1u);  // the pad is not a slice
  EXPECT_EQ(sl[0].file, 0u);
  EXPECT_EQ(sl[0].length, 10000u);
  fs.map(1, 100, 16384 - 100, sl);
  ASSERT_EQ(sl.size(), 1u);
  EXPECT_EQ(sl[0].file, 2u);
  EXPECT_EQ(sl[0].file_offset, 100u);
  EXPECT_EQ(sl[0].piece_offset, 100u);
  EXPECT_EQ(fs.file_pieces(2), (std::pair<std::uint32_t, std::uint32_t>{1, 3}));
  EXPECT_EQ(fs.file_pieces(3), (std::pair<std::uint32_t, std::uint32_t>{0, 0}));
}

TEST(DiskIo, WriteReadFlushAndPadZeros) {
  const fs::path root = fs::temp_directory_path() / ("shoal-disk-" + std::to_string(::getpid()));
  fs::remove_all(root);
  metainfo m = three_files();
  file_storage fs(m);
  {
    disk_io d(fs, root);
    std::string piece0(16384, 'x');
    ASSERT_FALSE(d.write(0, 0, piece0));
    ASSERT_FALSE(d.flush());
    std::string back(16384, '?');
    ASSERT_FALSE(d.read(0, 0, back.size(), back.data()));
    EXPECT_EQ(back.substr(0, 10000), std::string(10000, 'x'));
    EXPECT_EQ(back.substr(10000), std::string(6384, '\0'));  // pad reads as zeros, never written
    EXPECT_FALSE(fs::exists(root / "t/.pad/6384"));
    EXPECT_TRUE(d.file_complete(0));
    EXPECT_FALSE(d.file_complete(2));
    EXPECT_TRUE(d.read(1, 0, 100, back.data()));  // b does not exist yet: an error
    EXPECT_FALSE(d.read(1, 0, 100, back.data(), true));
    ASSERT_FALSE(d.create_empty_files());
    EXPECT_TRUE(fs::exists(root / "t/empty"));
  }
  // A symlink planted at a file's path is not followed: the write fails and the file the
  // link points at (one this test owns, outside the download folder) is unchanged.
  const fs::path outside = root.string() + "-outside";
  { std::ofstream(outside, std::ios::binary) << "untouched"; }
  fs::remove(root / "t/b");
  fs::create_symlink(outside, root / "t/b");
  {
    disk_io d(fs, root);
    EXPECT_TRUE(d.write(1, 0, std::string(100, 'y')));
  }
  {
    std::ifstream in(outside, std::ios::binary);
    const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(after == "untouched") << "the file behind the link now holds " << after.size() << " bytes";
  }
  EXPECT_TRUE(fs::is_symlink(root / "t/b"));
  fs::remove(outside);
  fs::remove_all(root);
}

TEST(Resume, RoundTripAndRejections) {
  resume_data r;
  r.info_hash = std::string(20, 'h');
  r.pieces = bitfield(12);
  r.pieces.set(3);
  r.pieces.set(11);
  r.uploaded = 5;
  r.downloaded = 7;
  const std::string bytes = encode_resume(r);
  auto back = decode_resume(bytes, r.info_hash, 12);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->pieces.get(3));
  EXPECT_TRUE(back->pieces.get(11));
  EXPECT_EQ(back->pieces.count(), 2u);
  EXPECT_EQ(back->uploaded, 5u);
  EXPECT_FALSE(decode_resume(bytes, std::string(20, 'x'), 12).ok());  // another torrent
  EXPECT_FALSE(decode_resume(bytes, r.info_hash, 13).ok());           // piece count
  EXPECT_FALSE(decode_resume("d4:xxxxi1ee", r.info_hash, 12).ok());
  EXPECT_FALSE(decode_resume(bytes.substr(0, bytes.size() / 2), r.info_hash, 12).ok());
  const fs::path f = fs::temp_directory_path() / ("shoal-resume-" + std::to_string(::getpid())) / "x.resume";
  ASSERT_FALSE(save_resume_file(f, bytes));
  EXPECT_FALSE(fs::exists(f.string() + ".tmp"));
  auto loaded = load_resume_file(f, r.info_hash, 12);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->pieces.bytes(), r.pieces.bytes());
  fs::remove_all(f.parent_path());
}

TEST(Resume, Version2KeepsWhatARestartNeeds) {
  resume_data r;
  r.info_hash = std::string(20, 'h');
  r.pieces = bitfield(4);
  r.files = {{1000, 1700000000123456789}, {0, 0}};
  r.paused = true;
  r.file_priorities = {1, 0};
  r.sequential = true;
  r.max_download_rate = 1000;
  r.goal_ratio = 1.5;
  r.goal_seeding_time = 60;
  r.queue_position = 3;
  r.added_time = 1700000000;
  r.seeding_seconds = 10;
  r.save_path = "/srv/t";
  r.labels = {"tv", "hd"};
  r.renamed = {{1, "album/disc 2/track.flac"}};
  r.name = "Album (2026)";
  auto back = decode_resume(encode_resume(r), r.info_hash, 4);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[0].size, 1000u);
  EXPECT_EQ(back->files[0].mtime_ns, 1700000000123456789);
  EXPECT_TRUE(back->paused);
  EXPECT_EQ(back->file_priorities, r.file_priorities);
  EXPECT_TRUE(back->sequential);
  EXPECT_EQ(back->max_download_rate, 1000u);
  ASSERT_TRUE(back->goal_ratio);
  EXPECT_DOUBLE_EQ(*back->goal_ratio, 1.5);
  EXPECT_EQ(back->goal_seeding_time, 60);
  EXPECT_FALSE(back->goal_idle_time);
  EXPECT_EQ(back->queue_position, 3u);
  EXPECT_EQ(back->added_time, 1700000000);
  EXPECT_EQ(back->seeding_seconds, 10);
  EXPECT_EQ(back->save_path, "/srv/t");
  EXPECT_EQ(back->labels, r.labels);
  EXPECT_EQ(back->renamed, r.renamed);
  EXPECT_EQ(back->name, r.name);
  // A renamed path that would leave the folder (or is not clean) is dropped on load.
  for (const char* bad : {"../x", "a/../../x", "/etc/x", "a//b", "a/./b", ""}) {
    auto r2 = r;
    r2.renamed = {{0, bad}};
    auto b2 = decode_resume(encode_resume(r2), r.info_hash, 4);
    ASSERT_TRUE(b2.ok());
    EXPECT_TRUE(b2->renamed.empty()) << bad;
  }
  // A version 1 file (no settings) still loads, with nothing recorded about its files.
  auto v1 = decode_resume(
      "d11:file-format12:shoal resume12:file-versioni1e9:info-hash20:hhhhhhhhhhhhhhhhhhhh"
      "10:num piecesi4e6:pieces1:\xf0"
      "e",
      r.info_hash, 4);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->pieces.count(), 4u);
  EXPECT_TRUE(v1->files.empty());
  EXPECT_FALSE(v1->paused);
}

TEST(Tracker, AnnounceRepliesAndUrls) {
  tracker::announce_request req;
  req.info_hash.fill(0xff);
  req.port = 6881;
  req.left = 10;
  req.ev = tracker::event::started;
  const std::string u = tracker::announce_url("http://t/announce?passkey=abc", req);
  EXPECT_EQ(u.rfind("http://t/announce?passkey=abc&info_hash=%FF%FF", 0), 0u);
  EXPECT_NE(u.find("&event=started"), std::string::npos);
  EXPECT_NE(u.find("&compact=1"), std::string::npos);
  EXPECT_EQ(tracker::scrape_url("http://t/x/announce.php?k=1", req.info_hash)
                .value()
                .rfind("http://t/x/scrape.php?k=1&info_hash=", 0),
            0u);
  EXPECT_FALSE(tracker::scrape_url("http://t/a", req.info_hash));

  auto r = tracker::parse_announce_reply(std::string("d8:intervali900e5:peers12:\x7f\0\0\1\x1a\xe1\x0a\0\0\2\0\x50"
                                                     "6:peers618:",
                                                     49) +
                                         std::string("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\x1a\xe2", 18) + "e");
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->interval, 900u);
  ASSERT_EQ(r->peers.size(), 3u);
  EXPECT_EQ(r->peers[0].address().to_string(), "127.0.0.1");
  EXPECT_EQ(r->peers[0].port(), 6881);
  EXPECT_EQ(r->peers[2].address().to_string(), "::1");
  auto dicts = tracker::parse_announce_reply("d5:peersld2:ip9:127.0.0.14:porti80eed2:ip3:bad4:porti1eeee");
  ASSERT_TRUE(dicts.ok());
  EXPECT_EQ(dicts->peers.size(), 1u);
  auto refused = tracker::parse_announce_reply("d14:failure reason6:nope!!e");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().detail.find("nope!!"), std::string::npos);
  // Intervals are clamped; deep nesting is rejected.
  EXPECT_EQ(tracker::parse_announce_reply("d8:intervali1ee")->interval, tracker::min_interval);
  EXPECT_EQ(tracker::parse_announce_reply("d8:intervali10e12:min intervali7ee")->interval, 10u);
  EXPECT_EQ(tracker::parse_announce_reply("d8:intervali10e12:min intervali7ee")->min_interval, 7u);
  EXPECT_FALSE(tracker::parse_announce_reply("d1:x" + std::string(10, 'l') + std::string(10, 'e') + "e").ok());
}

TEST(Tracker, UdpPackets) {
  const std::string c = tracker::udp_connect_request(0x11223344);
  ASSERT_EQ(c.size(), 16u);
  std::string reply("\0\0\0\0\x11\x22\x33\x44\1\2\3\4\5\6\7\x8", 16);
  EXPECT_EQ(tracker::udp_connect_reply(reply, 0x11223344).value(), 0x0102030405060708ull);
  EXPECT_FALSE(tracker::udp_connect_reply(reply, 1).ok());
  tracker::announce_request req;
  req.port = 0x1ae1;
  const std::string a = tracker::udp_announce_request(42, 7, req);
  ASSERT_EQ(a.size(), 98u);
  EXPECT_EQ(a.substr(96), "\x1a\xe1");
  std::string ar("\0\0\0\1\0\0\0\7\0\0\x07\x08\0\0\0\1\0\0\0\2\x7f\0\0\1\x1a\xe1", 26);
  auto r = tracker::udp_announce_reply(ar, 7, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->interval, 1800u);
  EXPECT_EQ(r->complete, 2u);
  ASSERT_EQ(r->peers.size(), 1u);
  std::string err("\0\0\0\3\0\0\0\7denied", 14);
  auto e = tracker::udp_announce_reply(err, 7, false);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().detail.find("denied"), std::string::npos);
}

// The session's bound on open files holds across torrents: two torrents of four files
// each, a bound of three, every file written (and read back): never more than three open
// after any call, the stalest closed (synced first), and the data intact.
TEST(FilePool, BoundsOpenFilesAcrossTorrents) {
  const fs::path root = fs::temp_directory_path() / ("shoal-pool-" + std::to_string(::getpid()));
  fs::remove_all(root);
  metainfo m;
  m.piece_length = 16384;
  m.num_pieces = 4;
  m.version = torrent_version::v1;
  for (std::uint64_t i = 0; i < 4; ++i) {
    file_entry f;
    f.path = "t/f" + std::to_string(i);
    f.size = 16384;
    f.offset = i * 16384;
    m.files.push_back(f);
  }
  file_storage fs(m);
  auto pool = std::make_shared<file_pool>(3);
  {
    disk_io a(fs, root / "a", pool), b(fs, root / "b", pool);
    for (std::uint32_t p = 0; p < 4; ++p) {
      ASSERT_FALSE(a.write(p, 0, std::string(16384, static_cast<char>('a' + p))));
      EXPECT_LE(pool->open_count(), 3u);
      ASSERT_FALSE(b.write(p, 0, std::string(16384, static_cast<char>('A' + p))));
      EXPECT_LE(pool->open_count(), 3u);
    }
    EXPECT_GE(pool->evictions(), 5u);
    ASSERT_FALSE(a.flush());
    ASSERT_FALSE(b.flush());
    for (std::uint32_t p = 0; p < 4; ++p) {
      std::string back(16384, '?');
      ASSERT_FALSE(a.read(p, 0, back.size(), back.data()));
      EXPECT_EQ(back, std::string(16384, static_cast<char>('a' + p)));
      ASSERT_FALSE(b.read(p, 0, back.size(), back.data()));
      EXPECT_EQ(back, std::string(16384, static_cast<char>('A' + p)));
      EXPECT_LE(pool->open_count(), 3u);
    }
  }
  EXPECT_EQ(pool->open_count(), 0u) << "descriptors still counted after their torrents went";
  fs::remove_all(root);
}
