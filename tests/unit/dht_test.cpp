// The DHT's pure parts: KRPC codec, BEP 42 ids, BEP 44 signing buffers and targets, BEP 33
// bloom filters (the specs' test vectors), the routing table and the bounded storage; a
// node's state saves (off the network thread) and the hosts --local allows.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <filesystem>

#include "core/text.hpp"
#include "dht/krpc.hpp"
#include "dht/node.hpp"
#include "dht/routing_table.hpp"
#include "dht/storage.hpp"
#include "lsd/lsd.hpp"

using namespace shoal;
using namespace shoal::dht;
namespace ip = boost::asio::ip;

namespace {

node_id id_with_prefix(std::uint8_t first, std::uint8_t fill = 0) {
  node_id id;
  id.fill(fill);
  id[0] = first;
  return id;
}

udp::endpoint ep(const char* a, std::uint16_t port) {
  return {ip::make_address(a), port};
}

}  // namespace

TEST(Krpc, QueryRoundTrip) {
  message q;
  q.type = msg_type::query;
  q.tid = "aa";
  q.meth = method::get_peers;
  q.id = id_with_prefix(1);
  q.info_hash = id_with_prefix(2);
  q.want4 = q.want6 = true;
  q.scrape = true;
  const std::string wire = encode(q);
  EXPECT_EQ(wire.substr(0, 3), "d1:");
  auto back = decode(wire);
  ASSERT_TRUE(back) << back.err().message();
  EXPECT_EQ(back->type, msg_type::query);
  EXPECT_EQ(back->meth, method::get_peers);
  EXPECT_EQ(back->tid, "aa");
  EXPECT_EQ(*back->id, *q.id);
  EXPECT_EQ(*back->info_hash, *q.info_hash);
  EXPECT_TRUE(back->want4 && back->want6 && back->scrape);
  EXPECT_EQ(encode(*back), wire);
}

TEST(Krpc, ResponseWithNodesValuesAndIp) {
  message r;
  r.type = msg_type::response;
  r.tid = "xy";
  r.id = id_with_prefix(9);
  r.token = "tok";
  r.ip = ep("1.2.3.4", 6881);
  r.nodes = {{id_with_prefix(3), ep("10.0.0.1", 1000)}, {id_with_prefix(4), ep("10.0.0.2", 2000)}};
  r.nodes6 = {{id_with_prefix(5), ep("fd00::1", 3000)}};
  r.values = {tcp::endpoint(ip::make_address("127.0.0.1"), 51413), tcp::endpoint(ip::make_address("::1"), 80)};
  auto back = decode(encode(r));
  ASSERT_TRUE(back) << back.err().message();
  EXPECT_EQ(back->nodes, r.nodes);
  EXPECT_EQ(back->nodes6, r.nodes6);
  EXPECT_EQ(back->values, r.values);
  EXPECT_EQ(*back->ip, *r.ip);
  EXPECT_EQ(back->token, "tok");
}

TEST(Krpc, ErrorMessage) {
  auto m = decode("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, msg_type::error);
  EXPECT_EQ(m->error_code, 201);
  EXPECT_EQ(m->error_text, "A Generic Error Ocurred");
}

TEST(Krpc, ItemValueKeptByteForByte) {
  // A value that is not canonical (unsorted keys) must go out exactly as stored: the
  // signature covers those bytes.
  message r;
  r.type = msg_type::response;
  r.tid = "t1";
  r.id = id_with_prefix(1);
  r.v = "d1:bi1e1:ai2ee";
  r.seq = 7;
  auto back = decode(encode(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->v, "d1:bi1e1:ai2ee");
  EXPECT_EQ(*back->seq, 7);
}

TEST(Krpc, RejectsMalformed) {
  for (const char* bad : {"", "le", "i1e", "d1:t2:aa1:y1:qe",                            // query without q/a
                          "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",                      // short id
                          "d1:rd2:id20:aaaaaaaaaaaaaaaaaaaa5:nodes3:abce1:t1:x1:y1:re",  // bad nodes
                          "d1:t2:aa1:y1:ze", "d1:y1:qe"}) {
    EXPECT_FALSE(decode(bad)) << bad;
  }
  EXPECT_FALSE(decode(std::string(100000, 'l')));
}

TEST(Krpc, UnknownMethodKeepsItsName) {
  auto m = decode("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:vote1:t2:aa1:y1:qe");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->meth, method::unknown);
  EXPECT_EQ(m->method_text, "vote");
}

TEST(Bep42, SpecVectors) {
  struct v {
    const char* ip;
    std::uint8_t rand;
    const char* prefix;
  };
  for (const v& t : {v{"124.31.75.21", 1, "5fbfbf"}, v{"21.75.31.124", 86, "5a3ce9"}, v{"65.23.51.170", 22, "a5d432"},
                     v{"84.124.73.14", 65, "1b0321"}, v{"43.213.53.83", 90, "e56f6c"}}) {
    node_id random{};
    const node_id id = make_node_id(ip::make_address(t.ip), t.rand, random);
    const std::string hex = to_hex(as_view(id));
    EXPECT_EQ(hex.substr(0, 4), std::string(t.prefix).substr(0, 4)) << t.ip;
    EXPECT_EQ(id[2] & 0xf8, from_hex(t.prefix)->at(2) & 0xf8) << t.ip;
    EXPECT_EQ(id[19], t.rand);
    EXPECT_TRUE(node_id_valid_for(id, ip::make_address(t.ip)));
    EXPECT_FALSE(node_id_valid_for(id, ip::make_address("8.8.8.8")));
  }
  // Local addresses may use any id.
  EXPECT_TRUE(node_id_valid_for(id_with_prefix(0xff), ip::make_address("127.0.0.1")));
  EXPECT_TRUE(node_id_valid_for(id_with_prefix(0xff), ip::make_address("192.168.1.9")));
  EXPECT_FALSE(is_local_address(ip::make_address("8.8.8.8")));
}

TEST(Bep44, SpecVectors) {
  ASSERT_GE(sodium_init(), 0);
  const std::string v = "12:Hello World!";
  const std::string pk = *from_hex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548");
  EXPECT_EQ(signature_buffer("", 1, v), "3:seqi1e1:v12:Hello World!");
  EXPECT_EQ(signature_buffer("foobar", 1, v), "4:salt6:foobar3:seqi1e1:v12:Hello World!");
  EXPECT_EQ(to_hex(as_view(mutable_target(pk, ""))), "4a533d47ec9c7d95b1ad75f576cffc641853b750");
  EXPECT_EQ(to_hex(as_view(mutable_target(pk, "foobar"))), "411eba73b6f087ca51a3795d9c8c938d365e32c1");
  EXPECT_EQ(to_hex(as_view(immutable_target(v))), "e5f96f6f38320f0f33959cb4d3d656452117aadb");
  const std::string sig1 = *from_hex(
      "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53"
      "a16"
      "08ecd7ae21f01");
  const std::string sig2 = *from_hex(
      "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f"
      "18"
      "f14951a87d9a08");
  auto verify = [&](const std::string& sig, const std::string& buf) {
    return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                       reinterpret_cast<const unsigned char*>(buf.data()), buf.size(),
                                       reinterpret_cast<const unsigned char*>(pk.data())) == 0;
  };
  EXPECT_TRUE(verify(sig1, signature_buffer("", 1, v)));
  EXPECT_TRUE(verify(sig2, signature_buffer("foobar", 1, v)));
  EXPECT_FALSE(verify(sig1, signature_buffer("", 2, v)));
}

TEST(Bep33, SpecVector) {
  std::string f;
  for (int i = 0; i <= 255; ++i)
    bloom_insert(f, ip::make_address("192.0.2." + std::to_string(i)));
  auto base = ip::make_address_v6("2001:db8::").to_bytes();
  for (int i = 0; i <= 0x3e7; ++i) {
    auto b = base;
    b[14] = static_cast<std::uint8_t>(i >> 8);
    b[15] = static_cast<std::uint8_t>(i & 0xff);
    bloom_insert(f, ip::address_v6(b));
  }
  EXPECT_EQ(to_hex(f).substr(0, 16), "f6c3f5eaa07ffd91");
  EXPECT_EQ(to_hex(f).substr(to_hex(f).size() - 8), "fd8f72ef");
  EXPECT_NEAR(bloom_estimate(f), 1224.9308, 0.001);
}

TEST(Bep33, SmallCountsRoundToThemselves) {
  std::string f(256, '\0');
  EXPECT_EQ(bloom_estimate(f), 0);  // nobody: not the 0.5 the formula's clamp would give
  for (int n = 1; n <= 5; ++n) {
    bloom_insert(f, ip::make_address("127.0.0." + std::to_string(n + 1)));
    EXPECT_EQ(std::llround(bloom_estimate(f)), n);
  }
}

TEST(RoutingTable, SplitsOwnBucketAndKeepsClosest) {
  const node_id self = id_with_prefix(0x00);
  routing_table t(self);
  const auto now = clock::now();
  // 8 far nodes (first bit 1) fill bucket 0; more far nodes go to its replacement cache.
  for (int i = 0; i < 12; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x80 + i)), ep("10.0.0.1", 1000 + i), true, false, now);
  EXPECT_EQ(t.size(), 8u);
  // Near nodes split the table.
  for (int i = 0; i < 8; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x01 + i)), ep("10.0.1.1", 2000 + i), true, false, now);
  EXPECT_GT(t.bucket_count(), 1u);
  EXPECT_EQ(t.size(), 16u);
  auto c = t.closest(id_with_prefix(0x02), 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id[0], 0x02);
  // Nodes that only queried us do not enter the table.
  t.heard_from(id_with_prefix(0x40), ep("10.0.2.1", 1), false, false, now);
  EXPECT_EQ(t.find(ep("10.0.2.1", 1)), nullptr);
}

TEST(RoutingTable, BadNodesAreReplaced) {
  routing_table t(id_with_prefix(0x00));
  const auto now = clock::now();
  for (int i = 0; i < 8; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x80 + i)), ep("10.0.0.1", 1000 + i), true, false, now);
  // Own bucket is bucket 0 here only while nothing near arrived; fill replacements by
  // splitting first so bucket 0 is a non-own bucket.
  for (int i = 0; i < 8; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x01 + i)), ep("10.0.1.1", 2000 + i), true, false, now);
  t.heard_from(id_with_prefix(0xf0), ep("10.0.3.1", 3000), true, false, now);  // a replacement
  EXPECT_EQ(t.find(ep("10.0.3.1", 3000)), nullptr);
  for (int k = 0; k < max_fails; ++k)
    t.failed(id_with_prefix(0x80), ep("10.0.0.1", 1000));
  EXPECT_EQ(t.find(ep("10.0.0.1", 1000)), nullptr);
  EXPECT_NE(t.find(ep("10.0.3.1", 3000)), nullptr);
}

TEST(RoutingTable, VerifiedIdsTakeUnverifiedSlots) {
  routing_table t(id_with_prefix(0x00));
  const auto now = clock::now();
  for (int i = 0; i < 8; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x01 + i)), ep("10.0.1.1", 2000 + i), true, false, now);
  for (int i = 0; i < 8; ++i)
    t.heard_from(id_with_prefix(static_cast<std::uint8_t>(0x80 + i)), ep("10.0.0.1", 1000 + i), true, false, now);
  t.heard_from(id_with_prefix(0xfe), ep("10.0.9.9", 9), true, true, now);
  const table_node* n = t.find(ep("10.0.9.9", 9));
  ASSERT_NE(n, nullptr);
  EXPECT_TRUE(n->verified);
}

TEST(Storage, BoundsAndExpiry) {
  storage_limits lim;
  lim.max_torrents = 3;
  lim.max_peers_per_torrent = 4;
  lim.max_items = 2;
  lim.max_values_per_reply = 2;
  storage s(lim);
  auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i)
    s.announce(id_with_prefix(static_cast<std::uint8_t>(i)), tcp::endpoint(ip::make_address("10.0.0.1"), 1), false,
               now + std::chrono::seconds(i));
  EXPECT_EQ(s.torrent_count(), 3u);
  EXPECT_TRUE(s.has_torrent(id_with_prefix(9)));
  EXPECT_FALSE(s.has_torrent(id_with_prefix(0)));
  const node_id h = id_with_prefix(9);
  for (int i = 0; i < 10; ++i)
    s.announce(h, tcp::endpoint(ip::make_address("10.0.0.2"), static_cast<std::uint16_t>(100 + i)), i % 2 == 0, now);
  EXPECT_EQ(s.peers(h, false, false).size(), 2u);  // capped per reply
  EXPECT_LE(s.peer_count(), 3u * 4u);
  auto [seeds, peers] = s.scrape(h);
  EXPECT_EQ(seeds.size(), 256u);
  for (int i = 0; i < 5; ++i) {
    stored_item it;
    it.v = "1:" + std::to_string(i);
    s.put_item(id_with_prefix(static_cast<std::uint8_t>(0x40 + i)), it, now + std::chrono::seconds(i));
  }
  EXPECT_EQ(s.item_count(), 2u);
  s.expire(now + std::chrono::hours(10));
  EXPECT_EQ(s.torrent_count(), 0u);
  EXPECT_EQ(s.item_count(), 0u);
}

TEST(Lsd, FormatAndParse) {
  lsd::announce a;
  a.port = 6881;
  a.info_hashes = {id_with_prefix(1, 7), id_with_prefix(2, 9)};
  a.cookie = "abc";
  const std::string d = lsd::format_announce(a);
  EXPECT_EQ(d.rfind("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n", 0), 0u);
  auto back = lsd::parse_announce(d);
  ASSERT_TRUE(back) << back.err().message();
  EXPECT_EQ(back->port, 6881);
  EXPECT_EQ(back->info_hashes, a.info_hashes);
  EXPECT_EQ(back->cookie, "abc");
  // Header names are case-blind; unknown headers are ignored.
  auto odd = lsd::parse_announce(
      "BT-SEARCH * HTTP/1.1\r\nPORT:  51413 \r\nx-foo: 1\r\ninfohash: " + std::string(40, 'a') + "\r\n\r\n\r\n");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->port, 51413);
  for (const std::string& bad : {std::string("GET / HTTP/1.1\r\n\r\n"),
                                 "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + std::string(40, 'a') + "\r\n\r\n",
                                 std::string("BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\nInfohash: zz\r\n\r\n"),
                                 std::string("BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n")}) {
    EXPECT_FALSE(lsd::parse_announce(bad)) << bad;
  }
}

TEST(DhtNode, SaveStateWritesOffTheNetworkThread) {
  const auto dir = std::filesystem::temp_directory_path() / ("shoal-dht-save-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  boost::asio::io_context io;
  std::vector<std::function<void()>> held;
  dht::settings s;
  s.listen_address = "127.0.0.1";
  s.port = 0;
  s.local = true;
  s.state_file = dir / ".shoal" / "dht.state";
  s.run_blocking = [&](std::function<void()> job) { held.push_back(std::move(job)); };
  auto n = std::make_shared<dht::node>(io, s);
  ASSERT_FALSE(n->start());
  n->save_state();
  // save_state only handed the write over: nothing is on disk until the job runs.
  ASSERT_EQ(held.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(s.state_file));
  held[0]();
  ASSERT_TRUE(std::filesystem::exists(s.state_file));
  EXPECT_GT(std::filesystem::file_size(s.state_file), 20u);
  n->stop();  // the final save goes the same way
  EXPECT_EQ(held.size(), 2u);
  n.reset();
  std::filesystem::remove_all(dir);
}

TEST(DhtNode, DefaultWriterFinishesTheLastSaveBeforeTheNodeIsGone) {
  const auto dir = std::filesystem::temp_directory_path() / ("shoal-dht-save2-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto io = std::make_unique<boost::asio::io_context>();
  dht::settings s;
  s.listen_address = "127.0.0.1";
  s.port = 0;
  s.local = true;
  s.state_file = dir / "dht.state";
  auto n = std::make_shared<dht::node>(*io, s);
  ASSERT_FALSE(n->start());
  n->stop();
  n.reset();
  io.reset();  // the node's coroutines (and with them the node) go with the io_context
  EXPECT_TRUE(std::filesystem::exists(s.state_file));
  std::filesystem::remove_all(dir);
}

TEST(LocalHosts, LiteralsAndLocalhostOnly) {
  EXPECT_EQ(local_host_addresses("localhost").size(), 2u);
  EXPECT_EQ(local_host_addresses("LocalHost").size(), 2u);
  EXPECT_EQ(local_host_addresses("127.0.0.1").size(), 1u);
  EXPECT_EQ(local_host_addresses("10.1.2.3").size(), 1u);
  EXPECT_EQ(local_host_addresses("192.168.0.1").size(), 1u);
  EXPECT_EQ(local_host_addresses("[::1]").size(), 1u);
  EXPECT_EQ(local_host_addresses("fd00::1").size(), 1u);
  EXPECT_TRUE(local_host_addresses("8.8.8.8").empty());
  EXPECT_TRUE(local_host_addresses("2001:db8::1").empty());
  EXPECT_TRUE(local_host_addresses("tracker.example.org").empty());
  EXPECT_TRUE(local_host_addresses("localhost.example.org").empty());
  EXPECT_TRUE(local_host_addresses("").empty());
}
