// Planted symlinks inside the download folder: nothing outside it may change, whichever
// component is the link (a folder on the way, the file itself, DIR/.shoal, the resume
// file's temporary name), through openat2 and through the component-by-component walk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/metainfo.hpp"
#include "storage/disk_io.hpp"
#include "storage/file_storage.hpp"
#include "storage/resume.hpp"
#include "storage/safe_path.hpp"

using namespace shoal;
namespace fs = std::filesystem;

namespace {

struct sandbox {
  fs::path base, dl, outside;
  sandbox() {
    base = fs::temp_directory_path() / ("shoal-safe-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base);
    dl = base / "dl";
    outside = base / "outside";
    fs::create_directories(dl);
    fs::create_directories(outside);
  }
  ~sandbox() { fs::remove_all(base); }
  [[nodiscard]] std::size_t outside_entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(outside), fs::directory_iterator()));
  }
};

metainfo two_files() {
  metainfo m;
  m.piece_length = 16384;
  m.num_pieces = 1;
  m.version = torrent_version::v1;
  file_entry a;
  a.path = "t/sub/a";
  a.size = 10000;
  file_entry b;
  b.path = "t/b";
  b.size = 6384;
  b.offset = 10000;
  m.files = {a, b};
  return m;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TEST(SafePath, SymlinkedFolderInsideTheDownloadFolderGetsNoData) {
  sandbox sb;
  fs::create_directories(sb.dl / "t");
  fs::create_symlink(sb.outside, sb.dl / "t" / "sub");  // planted: t/sub -> outside
  metainfo m = two_files();
  file_storage fs(m);
  disk_io d(fs, sb.dl);
  const std::string piece(16384, 'x');
  const auto ec = d.write(0, 0, piece);
  EXPECT_EQ(ec, safe::symlink_in_path()) << ec.message();
  EXPECT_NE(ec.message().find("symlink"), std::string::npos);
  EXPECT_EQ(sb.outside_entries(), 0u);
  EXPECT_FALSE(d.file_complete(0));
  // The same with the link one level higher (t -> outside).
  fs::remove_all(sb.dl / "t");
  fs::create_symlink(sb.outside, sb.dl / "t");
  disk_io d2(fs, sb.dl);
  EXPECT_EQ(d2.write(0, 0, piece), safe::symlink_in_path());
  EXPECT_EQ(d2.create_empty_files(), std::error_code());  // no empty files in this torrent
  EXPECT_EQ(sb.outside_entries(), 0u);
}

TEST(SafePath, ReadsDoNotFollowAPlantedFolder) {
  sandbox sb;
  spit(sb.outside / "a", std::string(10000, 's'));  // a secret outside
  fs::create_directories(sb.dl / "t");
  fs::create_symlink(sb.outside, sb.dl / "t" / "sub");
  metainfo m = two_files();
  file_storage fs(m);
  disk_io d(fs, sb.dl);
  std::string out(16384, '\0');
  EXPECT_TRUE(d.read(0, 0, out.size(), out.data()));
  EXPECT_FALSE(d.file_complete(0));
  EXPECT_EQ(out.find('s'), std::string::npos);
}

TEST(SafePath, RealFoldersAreCreatedAndUsed) {
  sandbox sb;
  metainfo m = two_files();
  file_storage fs(m);
  disk_io d(fs, sb.dl);
  std::string piece(16384, 'y');
  ASSERT_EQ(d.write(0, 0, piece), std::error_code());
  ASSERT_EQ(d.flush(), std::error_code());
  EXPECT_EQ(slurp(sb.dl / "t/sub/a"), std::string(10000, 'y'));
  EXPECT_TRUE(d.file_complete(0));
  EXPECT_TRUE(d.file_complete(1));
}

// Both resolution paths: openat2 (where the kernel has it) and the walk.
TEST(SafePath, WalkAndOpenat2RefuseEveryPlantedComponent) {
  sandbox sb;
  std::error_code ec;
  safe::fd root = safe::open_root(sb.dl, false, ec);
  ASSERT_TRUE(root) << ec.message();
  fs::create_directories(sb.dl / "real");
  fs::create_symlink(sb.outside, sb.dl / "real" / "link");
  spit(sb.outside / "target", "keep");
  fs::create_symlink(sb.outside / "target", sb.dl / "real" / "file-link");
  using open_fn = safe::fd (*)(int, const fs::path&, int, mode_t, bool, std::error_code&);
  std::vector<open_fn> fns{&safe::open_beneath_walk};
  if (safe::have_openat2()) fns.push_back(&safe::open_beneath);
  for (auto fn : fns) {
    ec.clear();
    EXPECT_FALSE(fn(root.get(), "real/link/new", O_WRONLY | O_CREAT, 0644, true, ec));
    EXPECT_EQ(ec, safe::symlink_in_path()) << ec.message();
    ec.clear();
    EXPECT_FALSE(fn(root.get(), "real/link/deeper/new", O_WRONLY | O_CREAT, 0644, true, ec));
    EXPECT_EQ(ec, safe::symlink_in_path()) << ec.message();
    ec.clear();
    EXPECT_FALSE(fn(root.get(), "real/file-link", O_WRONLY | O_TRUNC, 0, false, ec));
    EXPECT_EQ(ec, safe::symlink_in_path()) << ec.message();
    ec.clear();
    EXPECT_FALSE(fn(root.get(), "../outside/target", O_WRONLY | O_TRUNC, 0, false, ec));
    EXPECT_TRUE(ec);
    ec.clear();
    safe::fd ok = fn(root.get(), "real/made/here", O_WRONLY | O_CREAT, 0644, true, ec);
    EXPECT_TRUE(ok) << ec.message();
    fs::remove_all(sb.dl / "real" / "made");
  }
  ec.clear();
  EXPECT_FALSE(safe::make_dirs_beneath(root.get(), "real/link/x", ec));
  EXPECT_EQ(ec, safe::symlink_in_path());
  EXPECT_EQ(slurp(sb.outside / "target"), "keep");
  EXPECT_EQ(sb.outside_entries(), 1u);
}

TEST(SafePath, SymlinkedShoalFolderIsRefused) {
  sandbox sb;
  fs::create_symlink(sb.outside, sb.dl / ".shoal");
  const auto ec = write_file_atomically(sb.dl / ".shoal" / "x.resume", "data");
  EXPECT_EQ(ec, safe::symlink_in_path()) << ec.message();
  EXPECT_EQ(sb.outside_entries(), 0u);
  spit(sb.outside / "x.resume", "planted");
  EXPECT_FALSE(load_resume_file(sb.dl / ".shoal" / "x.resume", std::string(20, 'h'), 1));
}

TEST(SafePath, ResumeTempNameCannotTruncateASymlinksTarget) {
  sandbox sb;
  fs::create_directories(sb.dl / ".shoal");
  spit(sb.outside / "victim", "precious");
  // The old fixed temporary name, and the final name itself, both planted.
  fs::create_symlink(sb.outside / "victim", sb.dl / ".shoal" / "x.resume.tmp");
  fs::create_symlink(sb.outside / "victim", sb.dl / ".shoal" / ".x.resume.tmp");
  ASSERT_EQ(write_file_atomically(sb.dl / ".shoal" / "x.resume", "fresh"), std::error_code());
  EXPECT_EQ(slurp(sb.outside / "victim"), "precious");
  EXPECT_EQ(slurp(sb.dl / ".shoal" / "x.resume"), "fresh");
  EXPECT_FALSE(fs::is_symlink(sb.dl / ".shoal" / "x.resume"));
  fs::remove(sb.dl / ".shoal" / "x.resume");
  fs::create_symlink(sb.outside / "victim", sb.dl / ".shoal" / "x.resume");
  ASSERT_EQ(write_file_atomically(sb.dl / ".shoal" / "x.resume", "again"), std::error_code());
  EXPECT_EQ(slurp(sb.outside / "victim"), "precious");  // the link was replaced, not followed
  EXPECT_EQ(slurp(sb.dl / ".shoal" / "x.resume"), "again");
  // No temporary file is left behind: the two planted links, the resume file.
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(sb.dl / ".shoal"))
    n += e.path().filename().string().find(".tmp") != std::string::npos && !fs::is_symlink(e.path());
  EXPECT_EQ(n, 0u);
}

TEST(SafePath, AtomicWritesInTheWorkingFolderAndRelativePaths) {
  sandbox sb;
  const auto old = fs::current_path();
  fs::current_path(sb.dl);
  EXPECT_EQ(write_file_atomically("plain.state", "a"), std::error_code());
  EXPECT_EQ(write_file_atomically("./dot.state", "b"), std::error_code());
  fs::create_directories("sub");
  EXPECT_EQ(write_file_atomically("sub/../up.state", "c"), std::error_code());
  EXPECT_EQ(write_file_atomically("new/.shoal/x.resume", "d"), std::error_code());  // folders made
  fs::current_path(old);
  EXPECT_EQ(slurp(sb.dl / "plain.state"), "a");
  EXPECT_EQ(slurp(sb.dl / "dot.state"), "b");
  EXPECT_EQ(slurp(sb.dl / "up.state"), "c");
  EXPECT_EQ(slurp(sb.dl / "new/.shoal/x.resume"), "d");
}

TEST(SafePath, StaleTemporaryFilesAreRemovedAfterAWrite) {
  sandbox sb;
  fs::create_directories(sb.dl / ".shoal");
  spit(sb.dl / ".shoal" / ".x.resume.0123456789ab.tmp", "left by a kill -9");
  spit(sb.outside / "victim", "precious");
  fs::create_symlink(sb.outside / "victim", sb.dl / ".shoal" / ".x.resume.ba9876543210.tmp");
  spit(sb.dl / ".shoal" / ".y.resume.0123456789ab.tmp", "another file's");
  ASSERT_EQ(write_file_atomically(sb.dl / ".shoal" / "x.resume", "fresh"), std::error_code());
  EXPECT_FALSE(fs::exists(sb.dl / ".shoal" / ".x.resume.0123456789ab.tmp"));
  EXPECT_FALSE(fs::is_symlink(sb.dl / ".shoal" / ".x.resume.ba9876543210.tmp"));
  EXPECT_EQ(slurp(sb.outside / "victim"), "precious");  // the link went, not its target
  EXPECT_TRUE(fs::exists(sb.dl / ".shoal" / ".y.resume.0123456789ab.tmp"));
  EXPECT_EQ(slurp(sb.dl / ".shoal" / "x.resume"), "fresh");
}
