// The daemon's synced folders (daemon::sync_folders) on a live session: add (a new folder,
// the same folder again, a relative path, a bad key that is never echoed, bad and too many
// peers), the list (state, counts, no key anywhere), keys, STATE/sync.json (paths, never a
// key), remove (files stay; the folder can be added again once its engine ended), and a
// second sync_folders on the same state file runs the folders again.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "daemon/sync_folders.hpp"
#include "session_fixture.hpp"
#include "sync/discovery.hpp"
#include "sync/keys.hpp"

using namespace shoal;
using namespace shoal::testing;
using namespace std::chrono_literals;

namespace {

// Owns a sync_folders on a fixture session, stopped and destroyed on its network thread.
struct folders_on {
  folders_on(fixture_session& s, const fs::path& state) : ses(s.ses()) {
    ses.call([&] {
      sf = std::make_unique<daemon::sync_folders>(ses, daemon::sync_folders::options{state, true});
      auto r = sf->start();
      EXPECT_TRUE(r) << (r ? "" : r.err().message());
    });
  }
  ~folders_on() {
    std::promise<void> ended;
    ses.call([&] { sf->stop([&ended] { ended.set_value(); }); });
    EXPECT_EQ(ended.get_future().wait_for(30s), std::future_status::ready);
    ses.call([&] { sf.reset(); });
  }
  template <class F>
  auto operator()(F f) {
    return ses.call([&] { return f(*sf); });
  }
  session& ses;
  std::unique_ptr<daemon::sync_folders> sf;
};

std::string all_text(const std::vector<daemon::sync_folder_view>& list) {
  std::string t;
  for (const auto& v : list) {
    t += v.path + v.share + v.access + v.device + v.state + v.error;
    for (const auto& e : v.events)
      t += e.kind + e.path + e.device + e.detail;
    for (const auto& c : v.conflicts)
      t += c;
  }
  return t;
}

}  // namespace

TEST(SyncFolders, AddListKeysRemoveAndRestart) {
  temp_dir tmp;
  const auto state = tmp.path / "sync.json";
  const auto dir = tmp.path / "one";
  write_file(dir / "a.txt", "12345");
  std::string rw, ro;
  {
    fixture_session a;
    folders_on sf(a, state);
    auto added = sf([&](auto& s) { return s.add(dir, "", {"127.0.0.1:9"}); });
    ASSERT_TRUE(added) << added.err().message();
    EXPECT_EQ(added->access, "read-write");
    EXPECT_EQ(added->share.size(), 64u);
    EXPECT_EQ(added->files, 1u);
    EXPECT_EQ(added->bytes, 5u);
    const auto id = added->id;

    EXPECT_FALSE(sf([&](auto& s) { return s.add(dir, "", {}); })) << "the same folder twice";
    EXPECT_FALSE(sf([&](auto& s) { return s.add("relative", "", {}); }));
    const std::string bad_key = "W" + std::string(58, 'A');
    auto bad = sf([&](auto& s) { return s.add(tmp.path / "bad", bad_key, {}); });
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.err().message().find(bad_key), std::string::npos) << "the key is echoed";
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "p", "", {"host.example:1"}); })) << "not an IP";
    std::vector<std::string> many(daemon::sync_folders::max_dial + 1, "127.0.0.1:9");
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "p", "", many); }));
    many.pop_back();
    auto at_bound = sf([&](auto& s) { return s.add(tmp.path / "p", "", many); });
    EXPECT_TRUE(at_bound) << "max_dial peers are taken";

    auto keys = sf([&](auto& s) { return s.keys(id); });
    ASSERT_TRUE(keys);
    rw = keys->read_write;
    ro = keys->read_only;
    EXPECT_EQ(rw.size(), 59u);
    EXPECT_EQ(ro.size(), 59u);
    EXPECT_TRUE(sync::folder_key::parse(rw));
    EXPECT_FALSE(sf([&](auto& s) { return s.keys(9999); }));
    // The same folder's key joins nothing more here: its share id runs already. What the
    // refused add made goes again (a new folder and its .shoal/); a folder there stays.
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "copy", ro, {}); }));
    EXPECT_FALSE(fs::exists(tmp.path / "copy"));
    write_file(tmp.path / "mine" / "keep.txt", "mine");
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "mine", ro, {}); }));
    EXPECT_FALSE(fs::exists(tmp.path / "mine" / ".shoal"));
    EXPECT_EQ(read_file(tmp.path / "mine" / "keep.txt"), "mine");
    EXPECT_FALSE(fs::exists(tmp.path / "bad" / ".shoal")) << "a bad key leaves nothing either";

    // Trackers: announce URLs only, at most max_trackers, kept with the folder.
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "t", "", {}, {"ftp://x/announce"}); }));
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "t", "", {}, {"http://x/a b"}); }));
    std::vector<std::string> trackers(sync::discovery_options::max_trackers + 1, "udp://127.0.0.1:9/announce");
    EXPECT_FALSE(sf([&](auto& s) { return s.add(tmp.path / "t", "", {}, trackers); }));
    EXPECT_FALSE(fs::exists(tmp.path / "t"));
    auto tracked = sf([&](auto& s) { return s.add(tmp.path / "t", "", {}, {"udp://127.0.0.1:9/announce"}); });
    ASSERT_TRUE(tracked) << tracked.err().message();
    EXPECT_EQ(tracked->trackers, std::vector<std::string>{"udp://127.0.0.1:9/announce"});
    EXPECT_NE(read_file(state).find("udp://127.0.0.1:9/announce"), std::string::npos);
    ASSERT_TRUE(sf([&](auto& s) { return s.remove(tracked->id); }));

    auto list = sf([&](auto& s) { return s.list(); });
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].path, dir.string());
    EXPECT_EQ(list[0].dial, std::vector<std::string>{"127.0.0.1:9"});
    EXPECT_TRUE(list[0].state == "idle" || list[0].state == "scanning") << list[0].state;
    const auto text = all_text(list);
    EXPECT_EQ(text.find(rw), std::string::npos);
    EXPECT_EQ(text.find(ro), std::string::npos);
    const auto saved = read_file(state);
    EXPECT_NE(saved.find(dir.string()), std::string::npos);
    EXPECT_EQ(saved.find(rw), std::string::npos);
    EXPECT_EQ(saved.find(ro), std::string::npos);

    // Remove: forgotten, files kept; added again once its engine let go of the folder.
    ASSERT_TRUE(sf([&](auto& s) { return s.remove(id); }));
    EXPECT_FALSE(sf([&](auto& s) { return s.remove(id); }));
    EXPECT_EQ(sf([&](auto& s) { return s.list(); }).size(), 1u);
    EXPECT_EQ(read_file(dir / "a.txt"), "12345");
    EXPECT_TRUE(fs::exists(dir / ".shoal" / "folder.key"));
    EXPECT_EQ(read_file(state).find(dir.string()), std::string::npos);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    bool again = false;
    while (!again && std::chrono::steady_clock::now() < deadline) {
      again = sf([&](auto& s) { return s.add(dir, "", {}).ok(); });
      if (!again) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(again);
  }
  // A new daemon on the same state file runs both folders again, with the same key.
  fixture_session b;
  folders_on sf(b, state);
  auto list = sf([&](auto& s) { return s.list(); });
  ASSERT_EQ(list.size(), 2u);
  for (const auto& v : list)
    EXPECT_NE(v.state, "error") << v.path << ": " << v.error;
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& v) { return v.path == dir.string(); });
  ASSERT_NE(it, list.end());
  auto keys = sf([&](auto& s) { return s.keys(it->id); });
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->read_write, rw);
}
