// shoal sync: keys, signed records, the index, .shoalignore and the scanner.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/text.hpp"
#include "sync/folder.hpp"
#include "sync/ignore.hpp"
#include "sync/index.hpp"
#include "sync/keys.hpp"
#include "sync/scanner.hpp"

using namespace shoal;
using namespace shoal::sync;
namespace fs = std::filesystem;

namespace {

folder_key fixed_key() {
  std::array<std::uint8_t, seed_bytes> seed{};
  for (std::size_t i = 0; i < seed.size(); ++i)
    seed[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return folder_key::from_seed(seed);
}

// A fresh folder under the test's temporary directory, removed afterwards.
class SyncDir : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("shoal-sync-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "dir");
    dir_ = root_ / "dir";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& rel, const std::string& data) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary | std::ios::trunc) << data;
  }
  void append(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ / rel, std::ios::binary | std::ios::app) << data;
  }
  // Moves a file's mtime on so that a change within the same clock tick is seen.
  void touch_later(const std::string& rel) {
    const auto p = dir_ / rel;
    fs::last_write_time(p, fs::last_write_time(p) + std::chrono::seconds(2));
  }
  folder make(const folder_key& k = fixed_key()) {
    auto f = folder::create(dir_, k);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.err().message());
    return std::move(f).value();
  }
  scan_stats scan(folder& f) {
    auto s = f.scan();
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.err().message());
    return s.ok() ? *s : scan_stats{};
  }
  fs::path root_;
  fs::path dir_;
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

}  // namespace

// ---- keys -------------------------------------------------------------------------------

TEST(SyncKeys, RoundTrip) {
  const auto k = folder_key::generate();
  ASSERT_TRUE(k.can_write());
  const std::string rw = k.read_write_text();
  const std::string ro = k.read_only_text();
  EXPECT_EQ(rw.size(), key_text_chars);
  EXPECT_EQ(ro.size(), key_text_chars);
  EXPECT_EQ(rw[0], 'W');
  EXPECT_EQ(ro[0], 'R');
  for (char c : rw.substr(1))
    EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) << c;
  auto back = folder_key::parse(rw);
  ASSERT_TRUE(back.ok()) << back.err().message();
  EXPECT_TRUE(back->can_write());
  EXPECT_EQ(back->read_write_text(), rw);
  EXPECT_EQ(back->pub(), k.pub());
  EXPECT_EQ(back->share(), k.share());
  // Liberal: lower case, spaces and dashes.
  std::string loose;
  for (std::size_t i = 0; i < rw.size(); ++i) {
    loose += static_cast<char>(std::tolower(static_cast<unsigned char>(rw[i])));
    if (i % 5 == 4) loose += (i % 10 == 9) ? " " : "-";
  }
  auto l = folder_key::parse("  " + loose + "\n");
  ASSERT_TRUE(l.ok()) << l.err().message();
  EXPECT_EQ(l->read_write_text(), rw);
}

TEST(SyncKeys, ReadOnlyKey) {
  const auto k = fixed_key();
  auto ro = folder_key::parse(k.read_only_text());
  ASSERT_TRUE(ro.ok()) << ro.err().message();
  EXPECT_FALSE(ro->can_write());
  EXPECT_EQ(ro->type(), key_type::read_only);
  EXPECT_EQ(ro->pub(), k.pub());
  EXPECT_EQ(ro->share(), k.share());
  EXPECT_EQ(ro->dht(), k.dht());
  EXPECT_EQ(ro->read_only_text(), k.read_only_text());
  EXPECT_THROW((void)ro->read_write_text(), std::logic_error);
  EXPECT_THROW((void)ro->sign("x"), std::logic_error);
  // The R text of a key is not its W text with another letter: the payloads differ.
  EXPECT_NE(k.read_only_text().substr(1), k.read_write_text().substr(1));
  // Ids: share id = SHA-256(domain || public key), dht id 20 bytes from it.
  std::string in = "shoal-sync-share";
  in.append(reinterpret_cast<const char*>(k.pub().data()), 32);
  EXPECT_EQ(k.share(), sha256(in));
  EXPECT_EQ(k.dht().size(), 20u);
}

TEST(SyncKeys, EverySubstitutionIsCaught) {
  const auto k = fixed_key();
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  for (const std::string& text : {k.read_write_text(), k.read_only_text()}) {
    std::size_t tried = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      for (char c : alphabet) {
        if (c == text[i]) continue;
        std::string bad = text;
        bad[i] = c;
        auto r = folder_key::parse(bad);
        ASSERT_FALSE(r.ok()) << "position " << i << " -> " << c;
        ++tried;
        if (i == 0) {
          if (c == 'W' || c == 'R') {
            EXPECT_EQ(r.err().message(), checksum_message);
          } else {
            EXPECT_NE(r.err().message().find(not_a_key_message), std::string::npos);
          }
        } else {
          EXPECT_EQ(r.err().message(), checksum_message) << "position " << i;
        }
      }
    }
    EXPECT_EQ(tried, text.size() * 31);
  }
}

TEST(SyncKeys, NotAKey) {
  for (const char* s : {"", "hello", "magnet:?xt=urn:btih:abc", "X234567", "W234"}) {
    auto r = folder_key::parse(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_NE(r.err().message().find("not a shoal sync key"), std::string::npos) << r.err().message();
  }
  std::string key = fixed_key().read_write_text();
  key[10] = '0';  // not a base32 digit
  auto r = folder_key::parse(key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message().find("not a shoal sync key"), std::string::npos);
  // A deleted or added character.
  EXPECT_FALSE(folder_key::parse(fixed_key().read_write_text().substr(1 + 0, 58)).ok());
  EXPECT_FALSE(folder_key::parse(fixed_key().read_write_text() + "A").ok());
  EXPECT_FALSE(folder_key::parse(std::string(max_key_input + 1, ' ')).ok());
  // The input bound counts the spaces too: a key padded to max_key_input parses, one more
  // character does not.
  const std::string padded = fixed_key().read_write_text() + std::string(max_key_input - key_text_chars, ' ');
  ASSERT_EQ(padded.size(), max_key_input);
  EXPECT_TRUE(folder_key::parse(padded).ok());
  EXPECT_FALSE(folder_key::parse(padded + " ").ok());
}

TEST(SyncKeys, SignAndVerify) {
  const auto k = fixed_key();
  const std::string msg = "a message";
  const auto sig = k.sign(msg);
  EXPECT_TRUE(k.verify(msg, sig));
  const auto ro = k.read_only();
  EXPECT_TRUE(ro.verify(msg, sig));
  for (std::size_t i = 0; i < msg.size(); ++i) {
    std::string m = msg;
    m[i] ^= 1;
    EXPECT_FALSE(ro.verify(m, sig));
  }
  for (std::size_t i = 0; i < sig.size(); ++i) {
    auto s = sig;
    s[i] ^= 0x80;
    EXPECT_FALSE(ro.verify(msg, s)) << i;
  }
  EXPECT_FALSE(folder_key::generate().verify(msg, sig));
}

TEST_F(SyncDir, DeviceIdentityPersists) {
  const auto file = dir_ / "device.key";
  auto a = device_identity::load_or_create(file);
  ASSERT_TRUE(a.ok()) << a.err().message();
  EXPECT_EQ(a->id().size(), device_id_chars);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = device_identity::load_or_create(file);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->id(), b->id());
  EXPECT_EQ(a->pub(), b->pub());
  EXPECT_TRUE(verify(b->pub(), "m", a->sign("m")));
  std::ofstream(file, std::ios::trunc) << "garbage";
  EXPECT_FALSE(device_identity::load_or_create(file).ok());
}

// ---- records and the index --------------------------------------------------------------

namespace {
record sample_record() {
  record r;
  r.path = "docs/a file.txt";
  r.type = entry_type::file;
  r.size = 300 * 1024;
  r.mtime_ns = 1'700'000'000'123'456'789;
  r.mode = 0644;
  r.block_size = block_size_for(r.size);
  r.blocks = std::string(3 * 32, 'h');
  bump(r.version, "DEVICEA");
  r.modified_by = "DEVICEA";
  return r;
}
}  // namespace

TEST(SyncRecord, BlockSize) {
  EXPECT_EQ(block_size_for(0), 128u * 1024);
  EXPECT_EQ(block_size_for(2000ull * 128 * 1024), 128u * 1024);
  EXPECT_EQ(block_size_for(2000ull * 128 * 1024 + 1), 256u * 1024);
  EXPECT_EQ(block_size_for(1ull << 30), 1u << 20);  // 1 GiB: 1024 blocks of 1 MiB
  EXPECT_EQ(block_size_for(2000ull * 16 * 1024 * 1024), 16u << 20);
  EXPECT_EQ(block_size_for(1ull << 40), 16u << 20);
  EXPECT_EQ(block_count(0, 1 << 17), 0u);
  EXPECT_EQ(block_count(1, 1 << 17), 1u);
  EXPECT_EQ(block_count(1 << 17, 1 << 17), 1u);
  EXPECT_EQ(block_count((1 << 17) + 1, 1 << 17), 2u);
}

TEST_F(SyncDir, HashBlocksAtBlockEdges) {
  const std::uint32_t bs = 128 * 1024;
  const std::string data = random_bytes(2 * bs + 1, 3);
  std::string buffer(1000, '\0');  // smaller than a block, and not a divisor of it
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{bs - 1}, std::size_t{bs}, std::size_t{bs + 1},
                           std::size_t{2 * bs + 1}}) {
    write("f", data.substr(0, size));
    const int fd = ::open((dir_ / "f").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    auto h = hash_blocks(fd, size, bs, buffer);
    ASSERT_TRUE(h.ok()) << h.err().message();
    ASSERT_EQ(h->size(), block_count(size, bs) * 32) << size;
    for (std::size_t b = 0; b * bs < size; ++b)
      EXPECT_EQ(h->substr(b * 32, 32),
                std::string(as_view(sha256(data.substr(b * bs, std::min<std::size_t>(bs, size - b * bs))))));
    // Claimed larger than the file: an error, not a short hash.
    EXPECT_FALSE(hash_blocks(fd, size + 1, bs, buffer).ok());
    ::close(fd);
  }
}

TEST_F(SyncDir, ScanHashesBlocksOnSeveralThreads) {
  // 40 blocks of 128 KiB and a partial one, some one-block files between: the same block
  // lists whatever the thread count.
  write("a-big", random_bytes(40 * 128 * 1024 + 5, 4));
  for (int i = 0; i < 20; ++i)
    write("b-small-" + std::to_string(i), random_bytes(static_cast<std::size_t>(i) * 1000, 5 + i));
  write("c-big", random_bytes(3 * 128 * 1024, 30));
  std::map<std::string, std::string> want;
  std::string buffer(64 * 1024, '\0');
  for (const auto& e : fs::directory_iterator(dir_)) {
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    const auto size = static_cast<std::uint64_t>(fs::file_size(e.path()));
    auto h = hash_blocks(fd, size, block_size_for(size), buffer);
    ::close(fd);
    ASSERT_TRUE(h.ok());
    want[e.path().filename().string()] = *h;
  }
  for (std::size_t threads : {1u, 2u, 4u}) {
    fs::remove_all(dir_ / ".shoal");
    auto f = make();
    scan_options opt;
    opt.threads = threads;
    opt.read_buffer = 50 * 1000;  // not a divisor of the block size
    auto s = f.scan(opt);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->files_hashed, want.size());
    for (const auto& [name, blocks] : want)
      EXPECT_EQ(f.db().get(name)->blocks, blocks) << name << " with " << threads << " threads";
  }
}

TEST(SyncRecord, VersionVectors) {
  version_vector a;
  bump(a, "B");
  bump(a, "A");
  bump(a, "B");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], (version_entry{"A", 1}));
  EXPECT_EQ(a[1], (version_entry{"B", 2}));
  version_vector b = a;
  EXPECT_EQ(compare(a, b), ordering::equal);
  bump(b, "C");
  EXPECT_EQ(compare(a, b), ordering::before);
  EXPECT_EQ(compare(b, a), ordering::after);
  bump(a, "A");
  EXPECT_EQ(compare(a, b), ordering::concurrent);
}

TEST(SyncRecord, SignedRoundTripAndTamper) {
  const auto k = fixed_key();
  record r = sample_record();
  sign_record(r, k);
  ASSERT_EQ(r.signature.size(), 64u);
  const std::string bytes = encode_record(r);
  auto back = decode_record(bytes, r.signature, k.pub());
  ASSERT_TRUE(back.ok()) << back.err().message();
  EXPECT_EQ(back->path, r.path);
  EXPECT_EQ(back->size, r.size);
  EXPECT_EQ(back->mtime_ns, r.mtime_ns);
  EXPECT_EQ(back->blocks, r.blocks);
  EXPECT_EQ(back->version, r.version);
  EXPECT_EQ(back->modified_by, r.modified_by);
  // Every changed byte of the record, and of the signature, is refused.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string t = bytes;
    t[i] ^= 0x01;
    auto bad = decode_record(t, r.signature, k.pub());
    ASSERT_FALSE(bad.ok()) << i;
    EXPECT_NE(bad.err().message().find("signature does not verify"), std::string::npos);
  }
  std::string sig = r.signature;
  sig[5] ^= 0x10;
  EXPECT_FALSE(decode_record(bytes, sig, k.pub()).ok());
  // Signed by another key: a forgery.
  record f = sample_record();
  sign_record(f, folder_key::generate());
  auto forged = decode_record(encode_record(f), f.signature, k.pub());
  ASSERT_FALSE(forged.ok());
  EXPECT_NE(forged.err().message().find("forged"), std::string::npos);
  EXPECT_FALSE(decode_record(bytes, "", k.pub()).ok());
}

TEST(SyncRecord, BoundsOnPeerRecords) {
  const auto k = fixed_key();
  auto check = [&](record r) {
    sign_record(r, k);
    return decode_record(encode_record(r), r.signature, k.pub());
  };
  auto with_path = [&](std::string p) {
    record r = sample_record();
    r.path = std::move(p);
    return check(r);
  };
  // Path length: at the bound and one past it (components of at most 255 bytes).
  std::string p;
  while (p.size() + 200 <= max_path_bytes)
    p += std::string(199, 'a') + "/";
  p += std::string(max_path_bytes - p.size(), 'b');
  ASSERT_EQ(p.size(), max_path_bytes);
  EXPECT_TRUE(with_path(p).ok());
  EXPECT_FALSE(with_path(p + "c").ok());
  EXPECT_TRUE(with_path(std::string(255, 'n')).ok());
  EXPECT_FALSE(with_path(std::string(256, 'n')).ok());
  for (const char* bad : {"", "/abs", "a//b", "a/", "../x", "a/./b", "a/../b", ".shoal/index.db", ".shoal"})
    EXPECT_FALSE(with_path(bad).ok()) << bad;
  EXPECT_FALSE(with_path(std::string("a\0b", 3)).ok());
  EXPECT_TRUE(with_path("x/.shoal").ok());  // only the top-level .shoal is special
  // Version vector entries.
  record r = sample_record();
  r.version.clear();
  EXPECT_FALSE(check(r).ok());
  for (std::size_t i = 0; i < max_version_entries; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "D%06zu", i);
    r.version.push_back(version_entry{name, 1});
  }
  EXPECT_TRUE(check(r).ok());
  r.version.push_back(version_entry{"Z", 1});
  EXPECT_FALSE(check(r).ok());
  // Block list consistent with size and block size.
  r = sample_record();
  r.blocks += std::string(32, 'x');
  EXPECT_FALSE(check(r).ok());
  r = sample_record();
  r.block_size = 100000;
  EXPECT_FALSE(check(r).ok());
  r = sample_record();
  r.size = max_file_size + 1;
  EXPECT_FALSE(check(r).ok());
  // Block count: the largest file (max_blocks blocks of 16 MiB) and one byte more.
  r = sample_record();
  r.size = max_file_size;
  r.block_size = max_block_size;
  r.blocks = std::string(max_blocks * 32, 'b');
  EXPECT_EQ(block_size_for(r.size), max_block_size);
  EXPECT_TRUE(check(r).ok());
  r.size += 1;
  r.blocks += std::string(32, 'b');
  EXPECT_FALSE(check(r).ok());
  r = sample_record();
  r.mode = 010000;
  EXPECT_FALSE(check(r).ok());
  // Symlinks carry a target, only they do.
  r = sample_record();
  r.type = entry_type::symlink;
  r.size = 0;
  r.block_size = 0;
  r.blocks.clear();
  r.target = "../elsewhere";
  EXPECT_TRUE(check(r).ok());
  r.target = std::string(max_target_bytes + 1, 't');
  EXPECT_FALSE(check(r).ok());
  r.target.clear();
  EXPECT_FALSE(check(r).ok());
  // Past the size bound: refused before the signature is checked.
  EXPECT_FALSE(decode_record(std::string(max_record_bytes + 1, 'x'), std::string(64, 's'), k.pub()).ok());
  // Garbage that is signed is still refused.
  const std::string junk = "d4:path1:xe";
  const auto sig = k.sign(signed_bytes(junk));
  EXPECT_FALSE(decode_record(junk, std::string(reinterpret_cast<const char*>(sig.data()), 64), k.pub()).ok());
}

TEST_F(SyncDir, IndexPutGetChanges) {
  auto ix = index::open(dir_ / "index.db");
  ASSERT_TRUE(ix.ok()) << ix.err().message();
  EXPECT_EQ(ix->last_sequence(), 0u);
  EXPECT_FALSE(ix->get("nothing"));
  record a = sample_record();
  record b = sample_record();
  b.path = "b";
  EXPECT_EQ(ix->put(a), 1u);
  EXPECT_EQ(ix->put(b), 2u);
  a.size = 0;
  a.blocks.clear();
  a.block_size = block_size_for(0);
  bump(a.version, "DEVICEB");
  EXPECT_EQ(ix->put(a), 3u);
  auto got = ix->get("docs/a file.txt");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sequence, 3u);
  EXPECT_EQ(got->size, 0u);
  EXPECT_EQ(got->version, a.version);
  auto ch = ix->changes_since(0, 100);
  ASSERT_EQ(ch.size(), 2u);  // a's first version was replaced
  EXPECT_EQ(ch[0].path, "b");
  EXPECT_EQ(ch[1].path, "docs/a file.txt");
  EXPECT_EQ(ix->changes_since(2, 100).size(), 1u);
  EXPECT_EQ(ix->changes_since(0, 1).size(), 1u);
  EXPECT_EQ(ix->changes_since(3, 100).size(), 0u);
  EXPECT_EQ(ix->peer_sequence("PEER"), 0u);
  ix->set_peer_sequence("PEER", 42);
  EXPECT_EQ(ix->peer_sequence("PEER"), 42u);
  ix->set_meta("share_id", "abc");
  EXPECT_EQ(ix->meta("share_id"), "abc");
  const auto t = ix->totals();
  EXPECT_EQ(t.files, 2u);
  EXPECT_EQ(t.bytes, sample_record().size);
  // Reopened: the sequence continues.
  ix = index::open(dir_ / "index.db");
  ASSERT_TRUE(ix.ok());
  EXPECT_EQ(ix->last_sequence(), 3u);
  EXPECT_EQ(ix->peer_sequence("PEER"), 42u);
  // Keys sort depth first: "a" < "a/b" < "a-c".
  for (const char* p : {"a-c", "a/b", "a"}) {
    record r = sample_record();
    r.path = p;
    ix->put(r);
  }
  auto heads = ix->heads_after("", 100);
  std::vector<std::string> order;
  for (const auto& h : heads)
    order.push_back(key_path(h.key));
  EXPECT_EQ(order, (std::vector<std::string>{"a", "a/b", "a-c", "b", "docs/a file.txt"}));
}

// ---- .shoalignore -----------------------------------------------------------------------

TEST(SyncIgnore, Patterns) {
  auto r = ignore_rules::parse(
      "# comment\n"
      "*.tmp\n"
      "!keep.tmp\n"
      "/build\n"
      "cache/\n"
      "docs/**/*.bak\n"
      "a?c\n"
      "\n");
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->size(), 6u);
  EXPECT_TRUE(r->ignored("x.tmp", false));
  EXPECT_TRUE(r->ignored("deep/er/x.tmp", false));
  EXPECT_FALSE(r->ignored("keep.tmp", false));
  EXPECT_FALSE(r->ignored("sub/keep.tmp", false));
  EXPECT_FALSE(r->ignored("x.tmp.txt", false));
  EXPECT_TRUE(r->ignored("build", true));
  EXPECT_TRUE(r->ignored("build", false));
  EXPECT_FALSE(r->ignored("src/build", true));  // anchored
  EXPECT_TRUE(r->ignored("cache", true));
  EXPECT_TRUE(r->ignored("a/cache", true));
  EXPECT_FALSE(r->ignored("cache", false));  // directories only
  EXPECT_TRUE(r->ignored("docs/x.bak", false));
  EXPECT_TRUE(r->ignored("docs/a/b/x.bak", false));
  EXPECT_TRUE(r->ignored("abc", false));
  EXPECT_FALSE(r->ignored("abbc", false));
  EXPECT_FALSE(r->ignored("a/c", false));  // '?' never matches '/'
  EXPECT_TRUE(r->ignored_or_inside_ignored("build/x/y", false));
  EXPECT_FALSE(r->ignored_or_inside_ignored("src/y", false));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_FALSE(glob_match("*", "a/b"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
  // No exponential blow-up on a hostile pattern.
  EXPECT_FALSE(glob_match(std::string(100, '*') + "b", std::string(4000, 'a')));
  auto deep = ignore_rules::parse("**/**/**/**/**/**/**/**/x\n");
  ASSERT_TRUE(deep.ok());
  std::string path;
  for (int i = 0; i < 300; ++i)
    path += "d/";
  EXPECT_FALSE(deep->ignored(path + "y", false));
  EXPECT_TRUE(deep->ignored(path + "x", false));
  EXPECT_FALSE(ignore_rules::parse(std::string(max_ignore_file_bytes + 1, '#')).ok());
  EXPECT_TRUE(ignore_rules::parse(std::string(max_ignore_file_bytes, '#')).ok());
  EXPECT_TRUE(ignore_rules::parse(std::string(max_ignore_pattern_bytes, 'p') + "\n").ok());
  EXPECT_FALSE(ignore_rules::parse(std::string(max_ignore_pattern_bytes + 1, 'p') + "\n").ok());
  std::string many;
  for (std::size_t i = 0; i < max_ignore_patterns; ++i)
    many += "p\n";
  EXPECT_TRUE(ignore_rules::parse(many).ok());
  EXPECT_FALSE(ignore_rules::parse(many + "q\n").ok());
}

// ---- the scanner ------------------------------------------------------------------------

TEST_F(SyncDir, ScanCreateEditAppendTruncateDeleteRename) {
  write("a.txt", "hello");
  write("sub/b.bin", random_bytes(300 * 1024, 1));
  auto f = make();
  auto s = scan(f);
  EXPECT_EQ(s.added, 3u);  // a.txt, sub, sub/b.bin
  EXPECT_EQ(s.files_hashed, 2u);
  auto b = f.db().get("sub/b.bin");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->size, 300u * 1024);
  EXPECT_EQ(b->block_size, 128u * 1024);
  ASSERT_EQ(b->block_total(), 3u);
  EXPECT_EQ(b->blocks.substr(0, 32), std::string(as_view(sha256(random_bytes(300 * 1024, 1).substr(0, 128 * 1024)))));
  EXPECT_EQ(b->version.size(), 1u);
  EXPECT_EQ(b->version[0].device, f.device().id());
  EXPECT_EQ(b->modified_by, f.device().id());
  // Signed: a peer with the read-only key accepts it.
  EXPECT_TRUE(decode_record(encode_record(*b), b->signature, fixed_key().pub()).ok());

  // Nothing changed: nothing written.
  const auto seq = f.db().last_sequence();
  s = scan(f);
  EXPECT_EQ(s.added + s.changed + s.deleted, 0u);
  EXPECT_EQ(s.unchanged, 3u);
  EXPECT_EQ(f.db().last_sequence(), seq);

  // Edit in place (same size), append, truncate.
  write("a.txt", "HELLO");
  touch_later("a.txt");
  s = scan(f);
  EXPECT_EQ(s.changed, 1u);
  auto a = f.db().get("a.txt");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->blocks, std::string(as_view(sha256("HELLO"))));
  EXPECT_EQ(a->version[0].counter, 2u);
  EXPECT_GT(a->sequence, seq);
  append("a.txt", " world");
  touch_later("a.txt");
  EXPECT_EQ(scan(f).changed, 1u);
  EXPECT_EQ(f.db().get("a.txt")->size, 11u);
  ::truncate((dir_ / "a.txt").c_str(), 2);
  touch_later("a.txt");
  EXPECT_EQ(scan(f).changed, 1u);
  EXPECT_EQ(f.db().get("a.txt")->blocks, std::string(as_view(sha256("HE"))));

  // Rename: the old path deleted, the new one added with the same blocks.
  fs::rename(dir_ / "sub/b.bin", dir_ / "sub/c.bin");
  s = scan(f);
  EXPECT_EQ(s.added, 1u);
  EXPECT_EQ(s.deleted, 1u);
  auto old = f.db().get("sub/b.bin");
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->deleted);
  EXPECT_EQ(old->version[0].counter, 2u);
  EXPECT_TRUE(decode_record(encode_record(*old), old->signature, fixed_key().pub()).ok());
  EXPECT_EQ(f.db().get("sub/c.bin")->blocks, b->blocks);

  // Delete a whole directory; deleted records are not deleted again.
  fs::remove_all(dir_ / "sub");
  s = scan(f);
  EXPECT_EQ(s.deleted, 2u);
  EXPECT_EQ(scan(f).deleted, 0u);
  // Back again: added, with the version going on from the deleted record.
  write("sub/c.bin", "new");
  s = scan(f);
  EXPECT_EQ(s.added, 2u);
  EXPECT_EQ(f.db().get("sub/c.bin")->version[0].counter, 3u);
  const auto t = f.db().totals();
  EXPECT_EQ(t.files, 2u);
  EXPECT_EQ(t.dirs, 1u);
  EXPECT_EQ(t.deleted, 1u);
  EXPECT_EQ(t.bytes, 5u);
}

TEST_F(SyncDir, ScanOddNames) {
  write("empty", "");
  write("with spaces/a file .txt", "x");
  const std::string nfc = "caf\xc3\xa9";   // é precomposed
  const std::string nfd = "cafe\xcc\x81";  // e + combining acute
  write(nfc, "nfc");
  write(nfd, "nfd");
  const std::string long_name(255, 'L');
  write(long_name, "long");
  write("x/" + long_name + "/" + long_name, "deep");
  auto f = make();
  auto s = scan(f);
  EXPECT_EQ(s.errors, 0u);
  auto e = f.db().get("empty");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->size, 0u);
  EXPECT_EQ(e->block_total(), 0u);
  EXPECT_TRUE(f.db().get("with spaces/a file .txt"));
  auto a = f.db().get(nfc);
  auto b = f.db().get(nfd);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->path, nfc);
  EXPECT_EQ(b->path, nfd);
  EXPECT_NE(a->blocks, b->blocks);
  EXPECT_TRUE(f.db().get(long_name));
  EXPECT_TRUE(f.db().get("x/" + long_name + "/" + long_name));
  // The order of the walk and of the index agree: a second scan changes nothing.
  s = scan(f);
  EXPECT_EQ(s.added + s.changed + s.deleted, 0u);
}

TEST_F(SyncDir, ScanSymlinksAndPermissions) {
  fs::create_directories(root_ / "outside");
  std::ofstream(root_ / "outside/secret") << "secret";
  write("real.txt", "r");
  fs::create_symlink("real.txt", dir_ / "link");
  fs::create_directory_symlink(root_ / "outside", dir_ / "out");
  fs::create_symlink("/nonexistent/dangling", dir_ / "dangling");
  write("script.sh", "#!/bin/sh\n");
  ::chmod((dir_ / "script.sh").c_str(), 0750);
  auto f = make();
  auto s = scan(f);
  EXPECT_EQ(s.errors, 0u);
  auto l = f.db().get("link");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->type, entry_type::symlink);
  EXPECT_EQ(l->target, "real.txt");
  EXPECT_EQ(l->size, 0u);
  auto o = f.db().get("out");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->type, entry_type::symlink);
  EXPECT_EQ(o->target, (root_ / "outside").string());
  EXPECT_FALSE(f.db().get("out/secret"));  // never followed
  EXPECT_EQ(f.db().get("dangling")->target, "/nonexistent/dangling");
  EXPECT_EQ(f.db().get("script.sh")->mode, 0750u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "real.txt").c_str(), &st), 0);
  EXPECT_EQ(f.db().get("real.txt")->mode, st.st_mode & 07777u);
  // A mode change and a retargeted link are changes.
  ::chmod((dir_ / "script.sh").c_str(), 0700);
  fs::remove(dir_ / "link");
  fs::create_symlink("other", dir_ / "link");
  s = scan(f);
  EXPECT_EQ(s.changed, 2u);
  EXPECT_EQ(f.db().get("script.sh")->mode, 0700u);
  EXPECT_EQ(f.db().get("link")->target, "other");
  // A symlink replaced by a directory: a type change.
  fs::remove(dir_ / "link");
  fs::create_directory(dir_ / "link");
  s = scan(f);
  EXPECT_EQ(s.changed, 1u);
  EXPECT_EQ(f.db().get("link")->type, entry_type::dir);
}

TEST_F(SyncDir, ScanSkipsStateFolderAndAppliesIgnore) {
  write("keep.txt", "k");
  write("x.tmp", "t");
  write("build/out.o", "o");
  write("src/build/y.c", "y");
  auto f = make();
  auto s = scan(f);
  EXPECT_FALSE(f.db().get(".shoal"));
  EXPECT_FALSE(f.db().get(".shoal/index.db"));
  EXPECT_TRUE(f.db().get("x.tmp"));  // no .shoalignore yet: nothing ignored
  write(".shoalignore", "*.tmp\n/build/\n# nothing\n");
  s = scan(f);
  // The ignore file is added; ignored paths keep their records (not deleted).
  EXPECT_EQ(s.added, 1u);
  EXPECT_EQ(s.deleted, 0u);
  EXPECT_FALSE(f.db().get("x.tmp")->deleted);
  write("y.tmp", "new");
  write("build/new.o", "n");
  s = scan(f);
  EXPECT_EQ(s.added, 0u);
  EXPECT_FALSE(f.db().get("y.tmp"));
  EXPECT_FALSE(f.db().get("build/new.o"));
  EXPECT_TRUE(f.db().get("src/build/y.c"));
  for (const auto& r : f.db().changes_since(0, 1000))
    EXPECT_NE(r.path.rfind(".shoal/", 0), 0u) << r.path;
}

TEST_F(SyncDir, ReadOnlyDeviceRecordsLocalOnly) {
  write("a", "a");
  auto f = make(fixed_key().read_only());
  EXPECT_FALSE(f.key().can_write());
  scan(f);
  auto a = f.db().get("a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->local_only);
  EXPECT_TRUE(a->signature.empty());
  write("b", "b");
  scan(f);
  fs::remove(dir_ / "b");
  scan(f);
  ASSERT_TRUE(f.db().get("b")->deleted);
  EXPECT_TRUE(f.db().get("b")->local_only);
  // Given the read-write key later, the device signs what it had recorded unsigned.
  auto rw = make(fixed_key());
  EXPECT_TRUE(rw.key().can_write());
  auto s = scan(rw);
  EXPECT_EQ(s.changed, 1u);
  EXPECT_EQ(s.deleted, 0u);
  for (const char* p : {"a", "b"}) {
    auto r = rw.db().get(p);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->local_only) << p;
    EXPECT_TRUE(decode_record(encode_record(*r), r->signature, fixed_key().pub()).ok()) << p;
  }
  EXPECT_TRUE(rw.db().get("b")->deleted);
  s = scan(rw);
  EXPECT_EQ(s.added + s.changed + s.deleted, 0u);
}

TEST_F(SyncDir, FolderRefusesAnotherKey) {
  auto f = make();
  (void)f;
  auto other = folder::create(dir_, folder_key::generate());
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.err().message().find("already joined to another folder"), std::string::npos);
  // The same folder's read-only key keeps the read-write one.
  auto same = folder::create(dir_, fixed_key().read_only());
  ASSERT_TRUE(same.ok()) << same.err().message();
  EXPECT_TRUE(same->key().can_write());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / ".shoal/folder.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

namespace {

std::uint64_t inode_of(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace

// A file renamed into another directory, a directory moved to a name before its own in key
// order (its files come before the gone ones) and one moved after it: nothing is read, the
// new records carry the old block lists and the inode, and each comes before its old path's
// deleted record.
TEST_F(SyncDir, ScanMovesKeepBlockListsWithoutHashing) {
  write("a.bin", random_bytes(300 * 1024, 11));
  for (int i = 0; i < 3; ++i) {
    write("m/f" + std::to_string(i), random_bytes(100 * 1024 + static_cast<std::size_t>(i), 20 + i));
    write("c/g" + std::to_string(i), random_bytes(200 * 1024 + static_cast<std::size_t>(i), 30 + i));
  }
  write("keep.txt", "stays");
  auto f = make();
  auto s = scan(f);
  EXPECT_EQ(s.files_hashed, 8u);
  std::map<std::string, record> before;
  for (const char* p : {"a.bin", "m/f0", "m/f1", "m/f2", "c/g0", "c/g1", "c/g2"})
    before[p] = *f.db().get(p);

  fs::create_directories(dir_ / "sub");
  fs::rename(dir_ / "a.bin", dir_ / "sub/a2.bin");  // the new path after the old one
  fs::rename(dir_ / "m", dir_ / "b");               // before: its files wait for the walk's end
  fs::rename(dir_ / "c", dir_ / "z");               // after: the gone files are already known
  s = scan(f);
  EXPECT_EQ(s.bytes_hashed, 0u);
  EXPECT_EQ(s.files_hashed, 0u);
  EXPECT_EQ(s.moved, 7u);
  EXPECT_EQ(s.added, 10u);   // 7 files, sub, b and z
  EXPECT_EQ(s.deleted, 9u);  // 7 files, m and c
  const std::map<std::string, std::string> moves = {{"a.bin", "sub/a2.bin"}, {"m/f0", "b/f0"}, {"m/f1", "b/f1"},
                                                    {"m/f2", "b/f2"},        {"c/g0", "z/g0"}, {"c/g1", "z/g1"},
                                                    {"c/g2", "z/g2"}};
  for (const auto& [from, to] : moves) {
    auto n = f.db().get(to);
    auto o = f.db().get(from);
    ASSERT_TRUE(n && o) << to;
    EXPECT_FALSE(n->deleted);
    EXPECT_EQ(n->blocks, before[from].blocks) << to;
    EXPECT_EQ(n->size, before[from].size);
    EXPECT_EQ(n->block_size, before[from].block_size);
    EXPECT_EQ(n->mtime_ns, before[from].mtime_ns);
    EXPECT_EQ(n->ino, inode_of(dir_ / to));
    EXPECT_TRUE(decode_record(encode_record(*n), n->signature, fixed_key().pub()).ok());
    EXPECT_TRUE(o->deleted) << from;
    EXPECT_EQ(o->ino, 0u);
    EXPECT_LT(n->sequence, o->sequence) << to;
  }
  EXPECT_EQ(f.db().get("sub/a2.bin")->blocks.substr(0, 32),
            std::string(as_view(sha256(random_bytes(300 * 1024, 11).substr(0, 128 * 1024)))));
  // The next scan finds everything as it is.
  s = scan(f);
  EXPECT_EQ(s.added + s.changed + s.deleted, 0u);
}

// A moved file whose content changed too is hashed; a copy (a new inode) is hashed; a file
// moved over another path takes its place with the moved blocks.
TEST_F(SyncDir, ScanMoveWithChangedContentIsHashed) {
  write("one.bin", random_bytes(200 * 1024, 41));
  write("two.bin", random_bytes(150 * 1024, 42));
  write("three.bin", random_bytes(170 * 1024, 43));
  write("zz.txt", "to be replaced");
  auto f = make();
  scan(f);
  const auto three = *f.db().get("three.bin");
  fs::create_directories(dir_ / "x");
  fs::rename(dir_ / "one.bin", dir_ / "x/one.bin");
  append("x/one.bin", "more");
  fs::copy_file(dir_ / "two.bin", dir_ / "two-copy.bin");
  fs::remove(dir_ / "two.bin");
  fs::rename(dir_ / "three.bin", dir_ / "zz.txt");
  auto s = scan(f);
  EXPECT_EQ(s.moved, 1u);
  EXPECT_EQ(s.files_hashed, 2u);
  EXPECT_EQ(s.bytes_hashed, 200u * 1024 + 4 + 150 * 1024);
  auto one = f.db().get("x/one.bin");
  ASSERT_TRUE(one);
  const std::string data = random_bytes(200 * 1024, 41) + "more";
  EXPECT_EQ(one->size, data.size());
  EXPECT_EQ(one->blocks.substr(32, 32), std::string(as_view(sha256(data.substr(128 * 1024)))));
  EXPECT_TRUE(f.db().get("one.bin")->deleted);
  EXPECT_TRUE(f.db().get("two.bin")->deleted);
  EXPECT_EQ(f.db().get("two-copy.bin")->size, 150u * 1024);
  auto zz = f.db().get("zz.txt");
  ASSERT_TRUE(zz);
  EXPECT_EQ(zz->blocks, three.blocks);
  EXPECT_EQ(zz->size, three.size);
  EXPECT_EQ(zz->version[0].counter, 2u);  // a change of zz.txt's record
  EXPECT_TRUE(f.db().get("three.bin")->deleted);
}

// Past move_window, gone and new files are handled as before (hashed): the records are
// still right, and the ones within the window are still moves.
TEST_F(SyncDir, ScanMovesPastTheWindowAreHashed) {
  for (int i = 0; i < 6; ++i)
    write("p/f" + std::to_string(i), random_bytes(20 * 1024, 50 + i));
  for (int i = 0; i < 6; ++i)
    write("q/g" + std::to_string(i), random_bytes(30 * 1024, 60 + i));
  auto f = make();
  scan(f);
  std::map<std::string, std::string> blocks;
  for (int i = 0; i < 6; ++i) {
    blocks["f" + std::to_string(i)] = f.db().get("p/f" + std::to_string(i))->blocks;
    blocks["g" + std::to_string(i)] = f.db().get("q/g" + std::to_string(i))->blocks;
  }
  scan_options opt;
  opt.move_window = 2;
  fs::rename(dir_ / "p", dir_ / "a");  // new files first: 2 wait for the end, 4 are hashed
  auto s = f.scan(opt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->moved, 2u);
  EXPECT_EQ(s->files_hashed, 4u);
  EXPECT_EQ(s->bytes_hashed, 4u * 20 * 1024);
  EXPECT_EQ(s->added, 7u);
  EXPECT_EQ(s->deleted, 7u);
  fs::rename(dir_ / "q", dir_ / "r");  // gone files first: 2 remembered, 4 deleted at once
  s = f.scan(opt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->moved, 2u);
  EXPECT_EQ(s->files_hashed, 4u);
  EXPECT_EQ(s->bytes_hashed, 4u * 30 * 1024);
  EXPECT_EQ(s->added, 7u);
  EXPECT_EQ(s->deleted, 7u);
  for (int i = 0; i < 6; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(f.db().get("a/f" + n)->blocks, blocks["f" + n]);
    EXPECT_EQ(f.db().get("r/g" + n)->blocks, blocks["g" + n]);
    EXPECT_TRUE(f.db().get("p/f" + n)->deleted);
    EXPECT_TRUE(f.db().get("q/g" + n)->deleted);
  }
  EXPECT_EQ(f.scan(opt)->added, 0u);
}

// An index made before the inode columns existed gets them when opened (0: unknown); the
// next scan fills them in for the files it keeps, without new versions, and moves are then
// seen.
TEST_F(SyncDir, IndexFromBeforeInodesGetsThem) {
  write("d/one.bin", random_bytes(140 * 1024, 71));
  write("two.txt", "two");
  {
    auto f = make();
    scan(f);
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / ".shoal" / "index.db").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "ALTER TABLE files DROP COLUMN dev; ALTER TABLE files DROP COLUMN ino", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto f = folder::open(dir_);
  ASSERT_TRUE(f.ok()) << f.err().message();
  EXPECT_EQ(f->db().get("d/one.bin")->ino, 0u);
  const auto seq = f->db().last_sequence();
  auto s = f->scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->unchanged, 3u);
  EXPECT_EQ(f->db().last_sequence(), seq);
  EXPECT_EQ(f->db().get("d/one.bin")->ino, inode_of(dir_ / "d/one.bin"));
  const auto blocks = f->db().get("d/one.bin")->blocks;
  fs::rename(dir_ / "d/one.bin", dir_ / "one.bin");
  s = f->scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->moved, 1u);
  EXPECT_EQ(s->bytes_hashed, 0u);
  EXPECT_EQ(f->db().get("one.bin")->blocks, blocks);
}
