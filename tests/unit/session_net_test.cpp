// The session's one network context, in-process: magnet metadata fetched over the
// session's own connections (so the encryption policy and uTP apply), a second protocol
// sharing the BitTorrent port by its first bytes (TCP and UDP), the global connection
// limit, and scrapes batched per tracker.
#include <future>
#include <thread>

#include "core/bencode.hpp"
#include "core/magnet.hpp"
#include "core/text.hpp"
#include "session_fixture.hpp"
#include "tracker/client.hpp"
#include "tracker/server.hpp"

namespace shoal::testing {
namespace {

using namespace std::chrono_literals;

struct seeding {
  fixture_session fs;
  torrent_handle h;
  seeding(const metainfo& mi, const fs::path& dir, const std::function<void(session_settings&)>& tweak = {})
      : fs(tweak) {
    torrent_params p;
    p.info = mi;
    p.save_path = dir;
    h = fs.ses().add(p);
    EXPECT_TRUE(fs.wait_state(h.id(), torrent_state::seeding)) << "the seeder never seeded";
  }
};

torrent_params magnet_params(const metainfo& mi, const fs::path& dir) {
  torrent_params p;
  p.magnet = magnet_from(mi);
  p.magnet->trackers.clear();
  p.save_path = dir;
  p.metadata_timeout = std::chrono::seconds(60);
  return p;
}

// A seeder that refuses plaintext: a metadata fetch that dialled plain TCP (as one did
// before it used the session's connections) gets nowhere; the session's own connection
// speaks MSE as the policy says, and the same goes for a leech that dials uTP only.
TEST(SessionNet, MagnetMetadataFollowsEncryptionPolicyAndTransport) {
  for (auto transport : {peer_transport::tcp, peer_transport::utp}) {
    SCOPED_TRACE(transport == peer_transport::tcp ? "tcp" : "utp");
    temp_dir d;
    auto mi = make_torrent(d.path / "seed", "f.bin", {{"", 200 * 1024}}, 7);
    auto strict = [transport](session_settings& st) {
      st.encryption = wire::mse::policy::required;
      st.transport = transport;
    };
    seeding s(mi, d.path / "seed", strict);
    fixture_session leech(strict);
    auto p = magnet_params(mi, d.path / "leech");
    p.peers = {s.fs.endpoint()};
    auto h = leech.ses().add(p);
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::metadata_received)) << h.status()->error;
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished)) << h.status()->error;
    EXPECT_EQ(read_file(d.path / "leech" / "f.bin"), read_file(d.path / "seed" / "f.bin"));
  }
}

// Nobody to dial: the seeder dials the magnet's session (it was given the address), and
// the metadata comes over that incoming connection; the leech then dials the seeder back
// at the port its extension handshake named, and downloads.
TEST(SessionNet, MagnetMetadataFromAnIncomingConnection) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "g.bin", {{"", 150 * 1024}}, 8);
  fixture_session leech;
  auto p = magnet_params(mi, d.path / "leech");
  p.metadata_timeout = std::chrono::seconds(0);  // wait for whoever comes
  auto h = leech.ses().add(p);
  ASSERT_TRUE(leech.wait_state(h.id(), torrent_state::fetching_metadata));
  fixture_session seed;
  torrent_params sp;
  sp.info = mi;
  sp.save_path = d.path / "seed";
  sp.peers = {leech.endpoint()};
  auto sh = seed.ses().add(sp);
  ASSERT_TRUE(seed.wait_state(sh.id(), torrent_state::seeding));
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::metadata_received));
  ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished)) << h.status()->error;
  EXPECT_EQ(read_file(d.path / "leech" / "g.bin"), read_file(d.path / "seed" / "g.bin"));
}

// A peer that has no metadata (another magnet fetcher) does not stop the fetch, and a
// magnet with a deadline and nobody answering fails with kind "metadata".
TEST(SessionNet, MagnetWithoutAnswerFailsAtItsDeadline) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "h.bin", {{"", 50 * 1024}}, 9);
  fixture_session other;  // fetching the same magnet: it has nothing to give
  auto op = magnet_params(mi, d.path / "other");
  op.metadata_timeout = std::chrono::seconds(0);
  auto oh = other.ses().add(op);
  ASSERT_TRUE(other.wait_state(oh.id(), torrent_state::fetching_metadata));
  fixture_session leech;
  auto p = magnet_params(mi, d.path / "leech");
  p.peers = {other.endpoint()};
  p.metadata_timeout = std::chrono::seconds(3);
  auto h = leech.ses().add(p);
  auto err = leech.wait_state(h.id(), torrent_state::error, 20s);
  ASSERT_TRUE(err) << "the fetch never gave up";
  auto st = h.status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_type, error_kind::metadata);
  EXPECT_NE(st->error.find("could not get the metadata"), std::string::npos) << st->error;
  EXPECT_NE(st->error.find("no metadata to give"), std::string::npos) << st->error;
}

// A second protocol on the BitTorrent port: connections whose first bytes are its magic
// (also a client that sends only the magic and waits) reach it; datagrams on the shared
// UDP socket that start with it too; BitTorrent on the same port still works.
TEST(SessionNet, SecondProtocolSharesThePortByItsFirstBytes) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "p.bin", {{"", 100 * 1024}}, 10);
  seeding s(mi, d.path / "seed", [](session_settings& st) { st.transport = peer_transport::both; });
  auto& ses = s.fs.ses();
  const std::string magic = "SHSY";
  std::promise<std::string> got_stream;
  std::promise<std::string> got_datagram;
  session::protocol proto;
  proto.name = "sync";
  proto.magic = magic;
  proto.on_stream = [&ses, &got_stream](std::unique_ptr<net::stream> st, std::string first) {
    got_stream.set_value(first);
    std::shared_ptr<net::stream> sp(std::move(st));
    asio::co_spawn(
        ses.io(),
        [sp]() -> asio::awaitable<void> {
          static const std::string reply = "pong";
          co_await sp->write(asio::buffer(reply));
        },
        asio::detached);
  };
  proto.on_datagram = [&ses, &got_datagram](std::span<const char> dg, const asio::ip::udp::endpoint& from) {
    got_datagram.set_value(std::string(dg.data(), dg.size()));
    static const std::string reply = "SHSYack";
    ses.send_datagram(std::span<const char>(reply.data(), reply.size()), from);
  };
  ASSERT_FALSE(ses.call([&] { return ses.add_protocol(proto); }));
  // Rules: a magic that looks like KRPC, uTP or BitTorrent, or overlaps another, is refused.
  for (std::string bad : {std::string("d1:a"),
                          std::string("\x13"
                                      "Bit"),
                          std::string("\x41xyz"), magic + "X", std::string("SH")}) {
    session::protocol q;
    q.magic = bad;
    EXPECT_TRUE(ses.call([&] { return ses.add_protocol(q); })) << "accepted " << bad;
  }

  asio::io_context io;
  tcp::socket c(io);
  c.connect(s.fs.endpoint());
  asio::write(c, asio::buffer(magic));  // the magic alone, then wait for an answer
  std::string reply(4, '\0');
  asio::read(c, asio::buffer(reply));
  EXPECT_EQ(reply, "pong");
  auto f = got_stream.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), magic);

  asio::ip::udp::socket u(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string dg = magic + "hello";
  u.send_to(asio::buffer(dg), asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), ses.port()));
  auto fd = got_datagram.get_future();
  ASSERT_EQ(fd.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(fd.get(), dg);
  std::string back(64, '\0');
  asio::ip::udp::endpoint from;
  u.non_blocking(false);
  const std::size_t n = u.receive_from(asio::buffer(back), from);
  EXPECT_EQ(back.substr(0, n), "SHSYack");

  // BitTorrent on the same port, plaintext and MSE.
  for (auto pol : {wire::mse::policy::allowed, wire::mse::policy::required}) {
    fixture_session leech([pol](session_settings& st) { st.encryption = pol; });
    torrent_params p;
    p.info = mi;
    p.save_path = d.path / (pol == wire::mse::policy::required ? "rc4" : "plain");
    p.peers = {s.fs.endpoint()};
    auto h = leech.ses().add(p);
    ASSERT_TRUE(leech.wait_kind(h.id(), event_kind::torrent_finished)) << h.status()->error;
    EXPECT_EQ(read_file(p.save_path / "p.bin"), read_file(d.path / "seed" / "p.bin"));
  }
}

// max_connections bounds the peers of all torrents together: with room for two, a leech
// given three seeders connects to two and no more while it downloads.
TEST(SessionNet, GlobalConnectionLimitHolds) {
  temp_dir d;
  auto mi = make_torrent(d.path / "seed", "c.bin", {{"", 2 << 20}}, 11);
  auto slow = [](session_settings& st) { st.max_upload_rate = 64 * 1024; };
  seeding a(mi, d.path / "seed", slow), b(mi, d.path / "seed", slow), c(mi, d.path / "seed", slow);
  fixture_session leech([](session_settings& st) { st.max_connections = 2; });
  torrent_params p;
  p.info = mi;
  p.save_path = d.path / "leech";
  p.peers = {a.fs.endpoint(), b.fs.endpoint(), c.fs.endpoint()};
  auto h = leech.ses().add(p);
  auto st = leech.wait_status(h, [](const torrent_status& s) { return s.peers >= 2; });
  ASSERT_EQ(st.peers, 2u);
  std::uint32_t most = 0;
  for (int i = 0; i < 30; ++i) {
    most = std::max(most, h.status()->peers);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(most, 2u);
  ASSERT_EQ(leech.ses().call([&] { return leech.ses().limits().peers; }), 2u);
  // Without the bound the same leech takes all three.
  fixture_session open_leech;
  p.save_path = d.path / "leech2";
  auto h2 = open_leech.ses().add(p);
  auto st2 = open_leech.wait_status(h2, [](const torrent_status& s) { return s.peers >= 3; });
  EXPECT_EQ(st2.peers, 3u);
}

}  // namespace
}  // namespace shoal::testing

namespace shoal::testing {
namespace {

// A one-piece torrent on `tracker` whose data is never read (added paused, checks skipped).
metainfo tracked_torrent(int i, const std::string& tracker) {
  bencode::dict info;
  info["name"] = "scraped" + std::to_string(i);
  info["piece length"] = 16384;
  info["length"] = 16384;
  info["pieces"] = random_bytes(20, 1000 + static_cast<std::uint64_t>(i));
  bencode::dict top;
  top["announce"] = tracker;
  top["info"] = std::move(info);
  auto mi = parse_metainfo(bencode::encode(top));
  EXPECT_TRUE(mi) << (mi ? "" : mi.err().message());
  return *mi;
}

// Scrapes are batched per tracker: 100 paused torrents on an HTTP tracker and 70 on a UDP
// one (the same tracker server) cost a few HTTP scrapes and one UDP scrape, not 170; every
// torrent gets the counts the tracker holds for it (a seeder and a leecher announced for
// two of them beforehand).
TEST(SessionNet, ScrapesAreBatchedPerTracker) {
  asio::io_context tio;
  tracker::server_options so;
  so.bind = "127.0.0.1";
  so.port = 0;
  tracker::server srv(tio, so);
  auto port = srv.listen();
  ASSERT_TRUE(port.ok()) << port.err().message();
  srv.start();
  std::thread tracker_thread([&] { tio.run(); });
  struct stop_tracker {
    asio::io_context& io;
    tracker::server& s;
    std::thread& t;
    ~stop_tracker() {
      asio::post(io, [this] { s.stop(); });
      t.join();
    }
  } stopper{tio, srv, tracker_thread};
  const std::string http = "http://127.0.0.1:" + std::to_string(*port) + "/announce";
  const std::string udp = "udp://127.0.0.1:" + std::to_string(*port) + "/announce";
  std::vector<metainfo> tors;
  for (int i = 0; i < 170; ++i)
    tors.push_back(tracked_torrent(i, i < 100 ? http : udp));
  // Torrent 3 has a seeder, torrent 120 a leecher, as far as the tracker knows.
  auto announce = [&](const metainfo& mi, std::uint64_t left, char id) {
    asio::io_context io;
    tracker::announce_request req;
    req.info_hash = *mi.info_hash_v1;
    req.peer_id.fill(static_cast<std::uint8_t>(id));
    req.port = 7000;
    req.left = left;
    req.ev = tracker::event::started;
    tracker::client_options opt;
    opt.local = true;
    std::optional<result<tracker::announce_response>> out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await tracker::announce(io, http, req, opt); }, asio::detached);
    io.run();
    ASSERT_TRUE(out && out->ok());
  };
  announce(tors[3], 0, 's');
  announce(tors[120], 16384, 'l');
  temp_dir d;
  fixture_session s;
  // In one trip to the network thread, as a daemon loads its state: the first scrape
  // round sees all 170 (one added at a time, a round could start between two adds).
  std::vector<torrent_params> batch;
  for (auto& mi : tors) {
    torrent_params p;
    p.info = mi;
    p.save_path = d.path;
    p.skip_check = true;
    p.paused = true;
    batch.push_back(std::move(p));
  }
  const std::vector<torrent_handle> hs = s.ses().add_many(std::move(batch));
  ASSERT_EQ(hs.size(), tors.size());
  auto scraped = [&](const torrent_handle& h) {
    return s.ses().call([&] {
      auto t = s.ses().find(h.id());
      if (!t) return std::optional<tracker_state>{};
      auto st = t->tracker_states();
      return st.empty() || st[0].last_scrape == 0 ? std::optional<tracker_state>{}
                                                  : std::optional<tracker_state>{st[0]};
    });
  };
  const auto until = std::chrono::steady_clock::now() + 30s;
  std::vector<std::optional<tracker_state>> got(hs.size());
  for (bool all = false; !all && std::chrono::steady_clock::now() < until;) {
    all = true;
    for (std::size_t i = 0; i < hs.size(); ++i) {
      if (!got[i] || got[i]->downloaded < 0) got[i] = scraped(hs[i]);
      all = all && got[i] && got[i]->downloaded >= 0;
    }
    if (!all) std::this_thread::sleep_for(50ms);
  }
  for (std::size_t i = 0; i < hs.size(); ++i) {
    ASSERT_TRUE(got[i] && got[i]->scrape_ok)
        << "torrent " << i << " was not scraped" << (got[i] ? ": " + got[i]->scrape_result : "");
    EXPECT_EQ(got[i]->seeders, i == 3 ? 1 : 0) << i;
    EXPECT_EQ(got[i]->leechers, i == 120 ? 1 : 0) << i;
  }
  const auto sent = s.ses().call([&] { return s.ses().scrape_requests(); });
  std::promise<tracker::service_stats> ps;
  asio::post(tio, [&] { ps.set_value(srv.svc().stats()); });
  const auto ts = ps.get_future().get();
  EXPECT_EQ(ts.scrapes_udp, 1u) << "70 torrents fit one UDP scrape";
  // HTTP: as many as fit a 2,000-byte URL, about 28 (escaped hashes are ~60 bytes each).
  EXPECT_GE(ts.scrapes_http, 3u);
  EXPECT_LE(ts.scrapes_http, 5u) << "scrapes were not batched";
  EXPECT_EQ(sent, ts.scrapes_http + ts.scrapes_udp);
}

}  // namespace
}  // namespace shoal::testing
