#include "storage/creator.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "core/bencode.hpp"
#include "core/merkle.hpp"
#include "core/metainfo.hpp"

using namespace shoal;
namespace fs = std::filesystem;

namespace {

class CreatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-creator-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const fs::path& rel, std::size_t size, unsigned seed = 1) {
    fs::create_directories((dir_ / rel).parent_path());
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (auto& c : data)
      c = static_cast<char>(rng());
    std::ofstream(dir_ / rel, std::ios::binary).write(data.data(), static_cast<std::streamsize>(size));
    return data;
  }

  metainfo make(const fs::path& p, create_options opt) {
    opt.creation_date = -1;
    auto t = create_torrent(p, opt);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().message());
    if (!t.ok()) return {};
    auto m = parse_metainfo(*t);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.err().message());
    return m.ok() ? std::move(m).value() : metainfo{};
  }

  fs::path dir_;
};

// Recomputes a file's v2 root the slow, obvious way.
sha256_digest reference_root(const std::string& data, std::uint64_t plen) {
  std::vector<sha256_digest> leaves;
  for (std::size_t off = 0; off < data.size(); off += merkle::block_size) {
    leaves.push_back(sha256(std::string_view(data).substr(off, merkle::block_size)));
  }
  std::size_t width = 1;
  while (width < leaves.size())
    width *= 2;
  if (data.size() > plen) width = std::max<std::size_t>(width, plen / merkle::block_size);
  leaves.resize(width, sha256_digest{});
  return merkle::root(leaves, sha256_digest{});
}

}  // namespace

TEST_F(CreatorTest, V1MultiFilePiecesSpanFiles) {
  std::string a = write("d/a", 20000), b = write("d/b", 1, 2), c = write("d/sub/c", 30000, 3);
  write("d/empty", 0);
  create_options opt;
  opt.version = torrent_version::v1;
  opt.piece_length = 16384;
  auto m = make(dir_ / "d", opt);
  EXPECT_EQ(m.version, torrent_version::v1);
  EXPECT_EQ(m.name, "d");
  ASSERT_EQ(m.files.size(), 4u);
  EXPECT_EQ(m.files[0].path, "d/a");
  EXPECT_EQ(m.files[1].path, "d/b");
  EXPECT_EQ(m.files[2].path, "d/empty");
  EXPECT_EQ(m.files[3].path, "d/sub/c");
  EXPECT_EQ(m.total_size, 50001u);
  EXPECT_EQ(m.num_pieces, 4u);
  const std::string all = a + b + c;
  for (std::uint64_t p = 0; p < m.num_pieces; ++p) {
    auto h = sha1(std::string_view(all).substr(p * 16384, 16384));
    EXPECT_EQ(m.v1_piece_hashes.substr(p * 20, 20), as_view(h)) << "piece " << p;
  }
}

TEST_F(CreatorTest, HybridHasPadFilesAndMatchingRoots) {
  std::string a = write("h/a", 40000), b = write("h/b", 5, 2);
  create_options opt;
  opt.piece_length = 16384;
  auto m = make(dir_ / "h", opt);
  EXPECT_EQ(m.version, torrent_version::hybrid);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_TRUE(m.files[1].pad);
  EXPECT_EQ(m.files[1].size, 3u * 16384 - 40000);
  EXPECT_EQ(m.files[2].offset, 3u * 16384);
  EXPECT_EQ(m.num_pieces, 4u);
  EXPECT_EQ(*m.files[0].pieces_root, reference_root(a, 16384));
  EXPECT_EQ(*m.files[2].pieces_root, reference_root(b, 16384));
  EXPECT_EQ(m.piece_layers.size(), 1u);  // only "a" is larger than a piece
  // The v1 hash of a's last piece covers its pad (zeros).
  std::string last = a.substr(2 * 16384) + std::string(3 * 16384 - 40000, '\0');
  EXPECT_EQ(m.v1_piece_hashes.substr(2 * 20, 20), as_view(sha1(last)));
  EXPECT_TRUE(m.warnings.empty());
}

TEST_F(CreatorTest, V2SingleFileAndOptions) {
  std::string data = write("movie.bin", 5 * 16384 + 7);
  create_options opt;
  opt.version = torrent_version::v2;
  opt.piece_length = 32768;
  opt.tracker_tiers = {{"http://a/", "http://b/"}, {"udp://c:1"}};
  opt.web_seeds = {"http://ws/"};
  opt.is_private = true;
  opt.comment = "note";
  opt.source = "SRC";
  auto m = make(dir_ / "movie.bin", opt);
  EXPECT_EQ(m.version, torrent_version::v2);
  EXPECT_FALSE(m.multi_file);
  EXPECT_EQ(m.name, "movie.bin");
  EXPECT_EQ(m.num_pieces, 3u);
  EXPECT_EQ(*m.files[0].pieces_root, reference_root(data, 32768));
  EXPECT_EQ(m.piece_layers.size(), 1u);
  EXPECT_EQ(m.tracker_tiers, opt.tracker_tiers);
  EXPECT_EQ(m.web_seeds, opt.web_seeds);
  EXPECT_TRUE(m.is_private);
  EXPECT_EQ(m.comment, "note");
  EXPECT_EQ(m.source, "SRC");
  EXPECT_FALSE(m.creation_date);
}

TEST_F(CreatorTest, OutputIsDeterministicAcrossThreadCounts) {
  write("x/a", 300000);
  write("x/b", 70000, 2);
  create_options one;
  one.threads = 1;
  one.creation_date = -1;
  create_options many = one;
  many.threads = 8;
  auto t1 = create_torrent(dir_ / "x", one);
  auto t2 = create_torrent(dir_ / "x", many);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(*t1, *t2);
}

TEST_F(CreatorTest, ProgressReportsEveryByte) {
  write("p", 200000);
  create_options opt;
  std::uint64_t last = 0, total_seen = 0;
  opt.progress = [&](std::uint64_t done, std::uint64_t total) {
    EXPECT_GE(done, last);
    last = done;
    total_seen = total;
  };
  ASSERT_TRUE(create_torrent(dir_ / "p", opt).ok());
  EXPECT_EQ(last, 200000u);
  EXPECT_EQ(total_seen, 200000u);
}

TEST_F(CreatorTest, Errors) {
  create_options opt;
  auto missing = create_torrent(dir_ / "nope", opt);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.err().detail.find("no such file"), std::string::npos);
  fs::create_directories(dir_ / "emptydir");
  EXPECT_NE(create_torrent(dir_ / "emptydir", opt).err().detail.find("nothing to share"), std::string::npos);
  write("zero/a", 0);
  EXPECT_NE(create_torrent(dir_ / "zero", opt).err().detail.find("nothing to share"), std::string::npos);
  write("f", 10);
  opt.piece_length = 20000;
  EXPECT_NE(create_torrent(dir_ / "f", opt).err().detail.find("power of two"), std::string::npos);
  opt.piece_length = 8192;
  EXPECT_FALSE(create_torrent(dir_ / "f", opt).ok());
  EXPECT_EQ(auto_piece_length(1), 16384u);
  EXPECT_EQ(auto_piece_length(std::uint64_t{1} << 30), 1u << 20);
  EXPECT_EQ(auto_piece_length(std::uint64_t{1} << 50), 16u << 20);
}

TEST_F(CreatorTest, NoPadAfterTheLastFileWithData) {
  // Empty files after the last data file must not get a pad the v1 hashes do not cover.
  std::string a = write("t/a", 100);
  write("t/z", 0);
  create_options opt;
  opt.piece_length = 16384;
  auto m = make(dir_ / "t", opt);
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_FALSE(m.files[1].pad);
  EXPECT_EQ(m.num_pieces, 1u);
  EXPECT_EQ(m.v1_piece_hashes, as_view(sha1(a)));
}

TEST_F(CreatorTest, SymlinkedFileKeepsItsOwnName) {
  write("real/target.bin", 1000);
  write("s/a.bin", 10);
  fs::create_symlink(dir_ / "real" / "target.bin", dir_ / "s" / "link.bin");
  create_options opt;
  opt.follow_symlinks = true;
  auto m = make(dir_ / "s", opt);
  ASSERT_EQ(m.files.size(), 3u);  // a.bin, pad, link.bin (read through the link)
  EXPECT_EQ(m.files[0].path, "s/a.bin");
  EXPECT_EQ(m.files.back().path, "s/link.bin");
  EXPECT_EQ(m.files.back().size, 1000u);
}

TEST_F(CreatorTest, SymlinksAreStoredAsBep47LinksInV2AndLeftOutOfV1) {
  write("s/a.bin", 1000);
  write("outside.bin", 10);
  fs::create_directories(dir_ / "s" / "sub");
  fs::create_symlink("../a.bin", dir_ / "s" / "sub" / "link");
  fs::create_symlink(dir_ / "outside.bin", dir_ / "s" / "out");
  std::vector<std::string> warnings;
  create_options opt;
  opt.warning = [&](const std::string& w) { warnings.push_back(w); };
  for (auto v : {torrent_version::hybrid, torrent_version::v2}) {
    opt.version = v;
    warnings.clear();
    auto m = make(dir_ / "s", opt);
    std::vector<std::string> paths;
    for (const auto& f : m.files) {
      if (!f.pad) paths.push_back(f.path);
    }
    ASSERT_EQ(paths, (std::vector<std::string>{"s/a.bin", "s/sub/link"}));
    const auto& link = m.files.back();
    EXPECT_TRUE(link.symlink);
    EXPECT_EQ(link.symlink_target, "a.bin");
    EXPECT_EQ(link.size, 0u);
    ASSERT_EQ(warnings.size(), 1u);  // the link to outside the folder
    EXPECT_NE(warnings[0].find("out: a symlink to outside the folder"), std::string::npos) << warnings[0];
  }
  opt.version = torrent_version::v1;
  warnings.clear();
  auto m = make(dir_ / "s", opt);
  ASSERT_EQ(m.files.size(), 1u);
  EXPECT_EQ(m.files[0].path, "s/a.bin");
  EXPECT_EQ(warnings.size(), 2u);
}

TEST_F(CreatorTest, JunkHiddenAndExcludedFilesAreLeftOut) {
  for (const char* p : {"d/keep.txt", "d/.DS_Store", "d/Thumbs.db", "d/DESKTOP.INI", "d/x.swp", "d/x~", "d/.env",
                        "d/.git/HEAD", "d/logs/a.log", "d/sub/b.log", "d/build/o.o", "d/sub/c.txt"})
    write(p, 10);
  create_options opt;
  opt.version = torrent_version::v1;
  opt.exclude = {"*.log", "build"};
  auto names = [&](const create_options& o) {
    std::vector<std::string> out;
    for (const auto& f : make(dir_ / "d", o).files)
      out.push_back(f.path);
    return out;
  };
  EXPECT_EQ(names(opt), (std::vector<std::string>{"d/keep.txt", "d/sub/c.txt"}));
  opt.include_hidden = true;
  opt.exclude = {"sub/*"};
  EXPECT_EQ(names(opt),
            (std::vector<std::string>{"d/.env", "d/.git/HEAD", "d/build/o.o", "d/keep.txt", "d/logs/a.log"}));
  EXPECT_TRUE(is_junk_file(".DS_Store"));
  EXPECT_TRUE(is_junk_file("notes.txt~"));
  EXPECT_FALSE(is_junk_file("notes.txt"));
}
