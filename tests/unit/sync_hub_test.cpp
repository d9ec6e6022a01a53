// sync::hub: many folders on one session's port. Two folders run on one session (one hub)
// and sync with their copies on another session; a connection naming a share id no folder
// has is closed; a peer that sends part of the header and stalls is dropped after the
// header limit; a folder that leaves the hub is no longer reached. And what the engine
// fetches for an edit: a one-byte change in a large file fetches one block, the rest is
// copied from the receiver's old version.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "session_fixture.hpp"
#include "sync/engine.hpp"
#include "sync/folder.hpp"
#include "sync/hub.hpp"
#include "sync/secure_channel.hpp"

using namespace shoal;
using namespace shoal::testing;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// A folder and its engine on a session, behind that session's hub.
struct running {
  running(session& ses, sync::hub& h, const fs::path& dir, const sync::folder_key& key,
          std::vector<net::endpoint> peers = {}, std::function<void(const sync::engine_event&)> on_event = {})
      : ses_(ses) {
    auto f = sync::folder::create(dir, key);
    EXPECT_TRUE(f) << (f ? "" : f.err().message());
    f_ = std::make_unique<sync::folder>(std::move(*f));
    sync::engine_options o;
    o.peers = std::move(peers);
    o.debounce = 100ms;
    o.redial = 200ms;
    o.via = &h;
    o.on_event = std::move(on_event);
    ses.call([&] {
      eng_ = std::make_unique<sync::engine>(ses, *f_, std::move(o));
      auto s = eng_->start();
      EXPECT_TRUE(s) << (s ? "" : s.err().message());
    });
  }
  ~running() {
    std::promise<void> ended;
    ses_.call([&] { eng_->stop([&ended] { ended.set_value(); }); });
    EXPECT_EQ(ended.get_future().wait_for(30s), std::future_status::ready);
    eng_.reset();
  }
  std::size_t peers() {
    return ses_.call([&] { return eng_->status().peers.size(); });
  }
  session& ses_;
  std::unique_ptr<sync::folder> f_;
  std::unique_ptr<sync::engine> eng_;
};

// Connects to `ep`, sends `bytes`, and waits (up to `limit`) for the other side to close.
// Returns how long that took, or nullopt if it stayed open.
std::optional<std::chrono::milliseconds> closed_after(const tcp::endpoint& ep, const std::string& bytes,
                                                      std::chrono::milliseconds limit) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(ep, ec);
  if (ec) return std::nullopt;
  asio::write(s, asio::buffer(bytes), ec);
  if (ec) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<std::chrono::milliseconds> out;
  char buf[64];
  s.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t) {
    if (e) out = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  });
  io.run_for(limit);
  return out;
}

std::string header_for(const sync::share_id& share) {
  std::string h(sync::channel_magic);
  h.append(reinterpret_cast<const char*>(share.data()), share.size());
  return h;
}

}  // namespace

TEST(SyncHub, TwoFoldersOnOneSessionSyncWithTheirPeers) {
  temp_dir tmp;
  fixture_session a, b;
  sync::hub ha(a.ses()), hb(b.ses());
  ASSERT_TRUE(a.ses().call([&] { return ha.start(); }));
  ASSERT_TRUE(b.ses().call([&] { return hb.start(); }));
  EXPECT_TRUE(a.ses().call([&] { return ha.start(); }));  // again: a no-op
  const auto k1 = sync::folder_key::generate(), k2 = sync::folder_key::generate();
  write_file(tmp.path / "a1" / "one.txt", "folder one, from a");
  write_file(tmp.path / "a2" / "two.txt", "folder two, from a");
  write_file(tmp.path / "b2" / "back.txt", "folder two, from b");
  {
    running a1(a.ses(), ha, tmp.path / "a1", k1), a2(a.ses(), ha, tmp.path / "a2", k2);
    EXPECT_EQ(a.ses().call([&] { return ha.folders(); }), 2u);
    // b dials a's one port for both folders; the hub sorts them by share id.
    running b1(b.ses(), hb, tmp.path / "b1", k1, {a.endpoint()});
    running b2(b.ses(), hb, tmp.path / "b2", k2.read_only(), {a.endpoint()});
    ASSERT_TRUE(wait_for([&] { return read_file(tmp.path / "b1" / "one.txt") == "folder one, from a"; }));
    ASSERT_TRUE(wait_for([&] { return read_file(tmp.path / "b2" / "two.txt") == "folder two, from a"; }));
    EXPECT_FALSE(fs::exists(tmp.path / "b1" / "two.txt"));  // nothing crosses between folders
    EXPECT_FALSE(fs::exists(tmp.path / "b2" / "one.txt"));
    // The other way, on a read-write copy.
    write_file(tmp.path / "b1" / "reply.txt", "from b");
    ASSERT_TRUE(wait_for([&] { return read_file(tmp.path / "a1" / "reply.txt") == "from b"; }));
    EXPECT_EQ(a1.peers(), 1u);
    EXPECT_EQ(a2.peers(), 1u);
    EXPECT_EQ(a.ses().call([&] { return ha.refused(); }), 0u);
  }
  // The engines stopped: they left their hubs.
  EXPECT_EQ(a.ses().call([&] { return ha.folders(); }), 0u);
}

TEST(SyncHub, UnknownShareIdIsClosed) {
  temp_dir tmp;
  fixture_session a;
  sync::hub ha(a.ses());
  ASSERT_TRUE(a.ses().call([&] { return ha.start(); }));
  running a1(a.ses(), ha, tmp.path / "a1", sync::folder_key::generate());
  const auto other = sync::folder_key::generate().share();
  // The full header and the key that follows it: closed without an answer.
  auto t = closed_after(a.endpoint(), header_for(other) + std::string(32, 'k'), 10s);
  ASSERT_TRUE(t) << "the connection stayed open";
  EXPECT_LT(*t, 5000ms);
  EXPECT_EQ(a.ses().call([&] { return ha.refused(); }), 1u);
  // A share id that left the hub is unknown too.
  const auto gone = sync::folder_key::generate();
  {
    auto reg = a.ses().call([&] { return ha.add(gone.share(), [](std::unique_ptr<net::stream>, std::string) {}); });
    ASSERT_TRUE(reg);
    EXPECT_FALSE(a.ses().call([&] { return ha.add(gone.share(), [](std::unique_ptr<net::stream>, std::string) {}); }))
        << "a share id is taken once";
    a.ses().call([&] { reg->reset(); });
  }
  ASSERT_TRUE(closed_after(a.endpoint(), header_for(gone.share()), 10s));
  EXPECT_EQ(a.ses().call([&] { return ha.refused(); }), 2u);
}

TEST(SyncHub, StalledPartialHeaderIsDropped) {
  fixture_session a;
  sync::hub ha(a.ses());
  ha.set_header_limit(300ms);
  ASSERT_TRUE(a.ses().call([&] { return ha.start(); }));
  bool reached = false;
  const auto k = sync::folder_key::generate();
  auto reg = a.ses().call(
      [&] { return ha.add(k.share(), [&reached](std::unique_ptr<net::stream>, std::string) { reached = true; }); });
  ASSERT_TRUE(reg);
  // The magic and 5 bytes of the share id, then nothing.
  const auto t = closed_after(a.endpoint(), header_for(k.share()).substr(0, 15), 10s);
  ASSERT_TRUE(t) << "the stalled connection stayed open";
  EXPECT_GE(*t, 250ms);
  EXPECT_LT(*t, 5000ms);
  // Counted once the read that the watchdog cut short returns.
  EXPECT_TRUE(wait_for([&] { return a.ses().call([&] { return ha.refused(); }) == 1u; }));
  EXPECT_FALSE(a.ses().call([&] { return reached; }));
  // The whole routed part reaches the folder's handler with the bytes read.
  std::string got;
  auto reg2 = a.ses().call([&] {
    reg->reset();
    return ha.add(k.share(), [&got](std::unique_ptr<net::stream>, std::string first) { got = first; });
  });
  ASSERT_TRUE(reg2);
  (void)closed_after(a.endpoint(), header_for(k.share()), 2s);
  ASSERT_TRUE(wait_for([&] { return a.ses().call([&] { return !got.empty(); }); }));
  EXPECT_EQ(a.ses().call([&] { return got; }), header_for(k.share()));
  a.ses().call([&] { reg2->reset(); });
}

TEST(SyncHub, BoundsOnHeadersBeingReadAndOnFolders) {
  fixture_session a;
  sync::hub ha(a.ses());
  ASSERT_TRUE(a.ses().call([&] { return ha.start(); }));
  const auto k = sync::folder_key::generate();
  int reached = 0;
  auto reg = a.ses().call(
      [&] { return ha.add(k.share(), [&reached](std::unique_ptr<net::stream>, std::string) { ++reached; }); });
  ASSERT_TRUE(reg);
  // max_pending connections that sent the magic alone are all being read...
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> stalled;
  for (std::size_t i = 0; i < sync::hub::max_pending; ++i) {
    auto s = std::make_unique<tcp::socket>(io);
    s->connect(a.endpoint());
    asio::write(*s, asio::buffer(sync::channel_magic));
    stalled.push_back(std::move(s));
  }
  ASSERT_TRUE(wait_for([&] { return a.ses().call([&] { return ha.pending(); }) == sync::hub::max_pending; }));
  // ... and one more is closed at once, even with a known share id.
  auto t = closed_after(a.endpoint(), header_for(k.share()), 10s);
  ASSERT_TRUE(t) << "the connection past the bound stayed open";
  EXPECT_LT(*t, 5000ms);
  EXPECT_EQ(a.ses().call([&] { return ha.refused(); }), 1u);
  EXPECT_EQ(a.ses().call([&] { return reached; }), 0);
  // The stalled ones go: their slots are free again.
  stalled.clear();
  ASSERT_TRUE(wait_for([&] { return a.ses().call([&] { return ha.pending(); }) == 0u; }));
  EXPECT_EQ(a.ses().call([&] { return ha.refused(); }), 1u + sync::hub::max_pending);
  (void)closed_after(a.endpoint(), header_for(k.share()), 2s);
  ASSERT_TRUE(wait_for([&] { return a.ses().call([&] { return reached; }) == 1; }));

  // max_folders share ids, and not one more.
  a.ses().call([&] {
    std::vector<sync::hub::registration> regs;
    for (std::size_t i = 1; i < sync::hub::max_folders; ++i) {  // reg holds the first
      sync::share_id s{};
      s[0] = static_cast<std::uint8_t>(i);
      s[1] = static_cast<std::uint8_t>(i >> 8);
      s[31] = 0xee;
      auto r = ha.add(s, [](std::unique_ptr<net::stream>, std::string) {});
      ASSERT_TRUE(r);
      regs.push_back(std::move(*r));
    }
    EXPECT_EQ(ha.folders(), sync::hub::max_folders);
    sync::share_id one_more{};
    one_more.fill(0x77);
    EXPECT_FALSE(ha.add(one_more, [](std::unique_ptr<net::stream>, std::string) {}));
    regs.clear();
    EXPECT_EQ(ha.folders(), 1u);
    reg->reset();
    EXPECT_EQ(ha.folders(), 0u);
  });
}

TEST(SyncEdit, OneByteInALargeFileFetchesOneBlock) {
  temp_dir tmp;
  fixture_session a, b;
  sync::hub ha(a.ses()), hb(b.ses());
  ASSERT_TRUE(a.ses().call([&] { return ha.start(); }));
  ASSERT_TRUE(b.ses().call([&] { return hb.start(); }));
  const auto key = sync::folder_key::generate();
  std::string data(24 << 20, '\0');
  std::mt19937_64 rng(7);
  for (auto& c : data)
    c = static_cast<char>(rng());
  write_file(tmp.path / "a" / "big.bin", data);
  std::mutex m;
  std::vector<std::string> synced;  // the details of b's "sync" events
  auto on_b = [&](const sync::engine_event& e) {
    if (e.kind != "sync" || e.path != "big.bin") return;
    std::lock_guard l(m);
    synced.push_back(e.detail);
  };
  running ra(a.ses(), ha, tmp.path / "a", key);
  running rb(b.ses(), hb, tmp.path / "b", key, {a.endpoint()}, on_b);
  ASSERT_TRUE(wait_for([&] { return read_file(tmp.path / "b" / "big.bin") == data; }, 60s));
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard l(m);
    return synced.size() == 1;
  }));
  // b's index holds its copy (the index is the network thread's).
  ASSERT_TRUE(wait_for([&] {
    return b.ses().call([&] {
      auto r = rb.f_->db().get("big.bin");
      return r && r->size == data.size();
    });
  }));
  data[data.size() / 2 + 5] = static_cast<char>(data[data.size() / 2 + 5] ^ 0x5a);
  {
    // In place, the size unchanged.
    std::FILE* fp = std::fopen((tmp.path / "a" / "big.bin").c_str(), "r+b");
    ASSERT_NE(fp, nullptr);
    std::fseek(fp, static_cast<long>(data.size() / 2 + 5), SEEK_SET);
    std::fputc(static_cast<unsigned char>(data[data.size() / 2 + 5]), fp);
    std::fclose(fp);
  }
  ASSERT_TRUE(wait_for([&] { return read_file(tmp.path / "b" / "big.bin") == data; }, 60s));
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard l(m);
    return synced.size() == 2;
  }));
  const auto block = b.ses().call([&] { return rb.f_->db().get("big.bin")->block_size; });
  std::lock_guard l(m);
  // "SIZE bytes, FETCHED fetched": one block came over the network, the rest from b's copy.
  EXPECT_EQ(synced[1], std::to_string(data.size()) + " bytes, " + std::to_string(block) + " fetched") << synced[1];
  EXPECT_LT(block, data.size() / 4);
}
