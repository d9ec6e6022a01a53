// shoal sync's archive (DIR/.shoal/archive/): names, settings, listing, pruning by age and
// size, and bringing a version back as a local change.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sync/archive.hpp"
#include "sync/folder.hpp"
#include "sync/fsops.hpp"

using namespace shoal;
using namespace shoal::sync;
namespace fs = std::filesystem;

namespace {

class SyncArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-archive-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / ".shoal");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const fs::path& p, const std::string& data) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }
  std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // An archived version made by hand, with a chosen stamp.
  void put_version(const std::string& path, const std::string& version, const std::string& data) {
    write(dir_ / ".shoal" / "archive" / (path + "~" + version), data);
  }
  fs::path dir_;
};

}  // namespace

TEST(SyncArchiveNames, SplitsVersions) {
  auto s = split_archived("a/b.txt~20261207-203000");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, "a/b.txt");
  EXPECT_EQ(s->second, "20261207-203000");
  s = split_archived("x~y~20261207-203000-12");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, "x~y");
  EXPECT_EQ(s->second, "20261207-203000-12");
  EXPECT_FALSE(split_archived("plain.txt"));
  EXPECT_FALSE(split_archived("a~2026127-203000"));
  EXPECT_FALSE(split_archived("a~20261207-203000-"));
  EXPECT_FALSE(split_archived("a~20261307-203000"));  // month 13
  EXPECT_FALSE(split_archived("~20261207-203000"));   // no name
  EXPECT_EQ(version_time("19700101-000001").value_or(-1), 1);
  EXPECT_EQ(version_time("20261207-203000").value_or(-1), 1796675400);
}

TEST_F(SyncArchive, SettingsDefaultsAndErrors) {
  auto s = load_settings(dir_ / ".shoal");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->archive_days, 30u);
  EXPECT_EQ(s->archive_max_bytes, 0u);
  write(dir_ / ".shoal" / "config", "# archive\narchive_days = 7\n  archive_max_mb=2  # two\n\n");
  s = load_settings(dir_ / ".shoal");
  ASSERT_TRUE(s.ok()) << s.err().message();
  EXPECT_EQ(s->archive_days, 7u);
  EXPECT_EQ(s->archive_max_bytes, 2u * 1024 * 1024);
  write(dir_ / ".shoal" / "config", "archive_days = 7\nkeep = 3\n");
  s = load_settings(dir_ / ".shoal");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().message().find("line 2"), std::string::npos) << s.err().message();
  EXPECT_NE(s.err().message().find("keep"), std::string::npos);
  write(dir_ / ".shoal" / "config", "archive_days = -1\n");
  EXPECT_FALSE(load_settings(dir_ / ".shoal").ok());
  write(dir_ / ".shoal" / "config", "archive_days\n");
  EXPECT_FALSE(load_settings(dir_ / ".shoal").ok());
}

TEST_F(SyncArchive, ArchiveListsAndRestores) {
  write(dir_ / "docs" / "a.txt", "first");
  auto a1 = archive(dir_, "docs/a.txt", false);
  ASSERT_TRUE(a1.ok()) << a1.err().message();
  EXPECT_FALSE(fs::exists(dir_ / "docs" / "a.txt"));
  write(dir_ / "docs" / "a.txt", "second!");
  auto a2 = archive(dir_, "docs/a.txt", false);  // the same second: a -1 copy
  ASSERT_TRUE(a2.ok());
  write(dir_ / "docs" / "a.txt", "current");
  write(dir_ / "b.bin", "bee");
  ASSERT_TRUE(archive(dir_, "b.bin", false).ok());

  auto all = list_archive(dir_);
  ASSERT_TRUE(all.ok()) << all.err().message();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].path, "b.bin");
  EXPECT_EQ((*all)[1].path, "docs/a.txt");
  EXPECT_EQ((*all)[1].bytes, 5u);
  EXPECT_EQ((*all)[2].path, "docs/a.txt");
  EXPECT_EQ((*all)[2].bytes, 7u);
  // Two in the same second: the second gets -1 (or a later stamp if the clock moved on).
  EXPECT_TRUE((*all)[2].version == (*all)[1].version + "-1" || (*all)[2].archived_at > (*all)[1].archived_at);
  auto only = list_archive(dir_, "docs");  // a directory: the paths below it
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->size(), 2u);

  // The newest by default; what was there goes to the archive.
  auto r = restore_version(dir_, "docs/a.txt");
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->version, (*all)[2].version);
  EXPECT_EQ(read(dir_ / "docs" / "a.txt"), "second!");
  all = list_archive(dir_, "docs/a.txt");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);  // first, second (still there), current
  bool has_current = false;
  for (const auto& v : *all)
    has_current |= read(v.file) == "current";
  EXPECT_TRUE(has_current);
  // A chosen version, and a deleted path brought back.
  r = restore_version(dir_, "docs/a.txt", (*all)[0].version);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(read(dir_ / "docs" / "a.txt"), "first");
  fs::remove_all(dir_ / "docs");
  ASSERT_TRUE(restore_version(dir_, "b.bin").ok());
  EXPECT_EQ(read(dir_ / "b.bin"), "bee");

  // Errors.
  auto e = restore_version(dir_, "nope.txt");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().message().find("no archived version"), std::string::npos);
  e = restore_version(dir_, "b.bin", "20000101-000000");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().message().find("no version"), std::string::npos);
  EXPECT_FALSE(restore_version(dir_, "../x").ok());
  EXPECT_FALSE(restore_version(dir_, ".shoal/index.db").ok());
}

TEST_F(SyncArchive, ListOrdersCopiesOfOneSecond) {
  put_version("z", "20261207-203000-10", "c");
  put_version("z", "20261207-203000-2", "b");
  put_version("z", "20261207-203000", "a");
  put_version("z", "20261207-202959", "0");
  auto all = list_archive(dir_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].version, "20261207-202959");
  EXPECT_EQ((*all)[1].version, "20261207-203000");
  EXPECT_EQ((*all)[2].version, "20261207-203000-2");
  EXPECT_EQ((*all)[3].version, "20261207-203000-10");
  auto r = restore_version(dir_, "z");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(read(dir_ / "z"), "c");
}

TEST_F(SyncArchive, PrunesByAgeThenSize) {
  const std::int64_t now = *version_time("20261207-120000");
  put_version("old.txt", "20261001-000000", std::string(100, 'o'));   // 67 days old
  put_version("a.txt", "20261201-000000", std::string(1000, 'a'));    // 6 days
  put_version("a.txt", "20261205-000000", std::string(1000, 'b'));    // 2 days
  put_version("d/c.txt", "20261206-000000", std::string(1000, 'c'));  // 1 day
  folder_settings s;                                                  // 30 days, no size bound
  auto p = prune_archive(dir_, s, now);
  ASSERT_TRUE(p.ok()) << p.err().message();
  EXPECT_EQ(p->removed, 1u);
  EXPECT_EQ(p->bytes, 100u);
  EXPECT_EQ(list_archive(dir_)->size(), 3u);
  // Over a 2,500-byte bound: the oldest goes.
  s.archive_max_bytes = 2500;
  p = prune_archive(dir_, s, now);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->removed, 1u);
  auto left = list_archive(dir_);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].version, "20261205-000000");
  EXPECT_EQ((*left)[1].path, "d/c.txt");
  // Age 0 keeps them forever; a short one removes all, and the empty directory.
  s = {};
  s.archive_days = 0;
  EXPECT_EQ(prune_archive(dir_, s, now + 1000 * 86400)->removed, 0u);
  s.archive_days = 1;
  EXPECT_EQ(prune_archive(dir_, s, now + 10 * 86400)->removed, 2u);
  EXPECT_FALSE(fs::exists(dir_ / ".shoal" / "archive" / "d"));
}

TEST_F(SyncArchive, RestoredFileIsALocalChange) {
  std::array<std::uint8_t, seed_bytes> seed{};
  seed[0] = 9;
  auto f = folder::create(dir_, folder_key::from_seed(seed));
  ASSERT_TRUE(f.ok()) << f.err().message();
  write(dir_ / "n.txt", "one");
  ASSERT_TRUE(f->scan().ok());
  ASSERT_TRUE(archive(dir_, "n.txt", false).ok());
  auto s = f->scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->deleted, 1u);
  ASSERT_TRUE(restore_version(dir_, "n.txt").ok());
  s = f->scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->added, 1u);
  auto rec = f->db().get("n.txt");
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->deleted);
  EXPECT_EQ(rec->size, 3u);
}

TEST_F(SyncArchive, ScanPrunesWithTheFolderSettings) {
  std::array<std::uint8_t, seed_bytes> seed{};
  seed[0] = 10;
  auto f = folder::create(dir_, folder_key::from_seed(seed));
  ASSERT_TRUE(f.ok());
  put_version("ancient.txt", "20000101-000000", "x");
  put_version("fresh.txt", "20991231-000000", "y");  // stamped ahead: never too old
  ASSERT_TRUE(f->scan().ok());
  auto left = list_archive(dir_);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].path, "fresh.txt");
  // A bad setting is reported, the scan goes on.
  write(dir_ / ".shoal" / "config", "archive_days = x\n");
  auto g = folder::open(dir_);
  ASSERT_TRUE(g.ok());
  std::string reported;
  scan_options o;
  o.on_error = [&](const std::string& path, const std::string& why) { reported = path + ": " + why; };
  EXPECT_TRUE(g->scan(o).ok());
  EXPECT_NE(reported.find("archive_days"), std::string::npos) << reported;
}
