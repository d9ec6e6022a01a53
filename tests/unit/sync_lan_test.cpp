// shoal sync's LAN discovery: the datagram's form, the bounded, rate-limited table of
// devices heard, and three announcers on loopback multicast (two of one folder find each
// other; the third, another folder's, is never reported).
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <functional>
#include <set>

#include "sync/lan_discovery.hpp"

using namespace shoal;
using namespace shoal::sync;
namespace asio = boost::asio;

namespace {
sha1_digest id_of(std::uint8_t b) {
  share_id s{};
  s.fill(b);
  return lan_id_of(s);
}
}  // namespace

TEST(SyncLan, AnnouncementRoundTripsAndRejects) {
  lan_announcement a{id_of(1), 40123, "DEVICEABCDEF234567"};
  const std::string d = encode_announcement(a);
  EXPECT_EQ(d.size(), 4u + 20 + 2 + 1 + a.device.size());
  auto b = decode_announcement(d);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->folder, a.folder);
  EXPECT_EQ(b->port, 40123);
  EXPECT_EQ(b->device, a.device);
  EXPECT_NE(id_of(1), id_of(2));
  EXPECT_FALSE(decode_announcement(d.substr(0, d.size() - 1)));  // short
  EXPECT_FALSE(decode_announcement(d + "x"));                    // long
  EXPECT_FALSE(decode_announcement("XHL1" + d.substr(4)));
  std::string zero_port = d;
  zero_port[24] = zero_port[25] = 0;
  EXPECT_FALSE(decode_announcement(zero_port));
  std::string ctl = d;
  ctl.back() = '\n';
  EXPECT_FALSE(decode_announcement(ctl));
  EXPECT_FALSE(decode_announcement(""));
  lan_announcement none{id_of(1), 1, ""};
  EXPECT_FALSE(decode_announcement(encode_announcement(none)));
}

TEST(SyncLan, TableIsRateLimitedAndBounded) {
  using clock = lan_table::clock;
  lan_table t(3, std::chrono::seconds(10));
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  const net::endpoint ep(asio::ip::make_address("10.0.0.1"), 5000);
  EXPECT_TRUE(t.heard("A", ep, t0));
  EXPECT_FALSE(t.heard("A", ep, t0 + std::chrono::seconds(9)));
  EXPECT_TRUE(t.heard("A", ep, t0 + std::chrono::seconds(10)));
  EXPECT_TRUE(t.heard("A", net::endpoint(ep.address(), 5001), t0));  // another port
  EXPECT_TRUE(t.heard("B", ep, t0 + std::chrono::seconds(1)));
  EXPECT_EQ(t.size(), 3u);
  // A fourth pushes out the least recently heard (A at :5001, heard at t0).
  EXPECT_TRUE(t.heard("C", ep, t0 + std::chrono::seconds(2)));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(t.heard("A", net::endpoint(ep.address(), 5001), t0 + std::chrono::seconds(3)));
  // That pushed out B (heard at t0+1); C, heard at t0+2, is still rate-limited.
  EXPECT_FALSE(t.heard("C", ep, t0 + std::chrono::seconds(3)));
  EXPECT_TRUE(t.heard("B", ep, t0 + std::chrono::seconds(4)));
  EXPECT_EQ(t.size(), 3u);
}

TEST(SyncLan, DevicesOfOneFolderFindEachOtherOnLoopback) {
  asio::io_context io;
  lan_options o;
  o.interface = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(42000 + ::getpid() % 20000);
  o.interval = std::chrono::milliseconds(100);
  std::set<std::string> found_by_a, found_by_b, found_by_c;
  auto make = [&](std::uint8_t folder, std::uint16_t port, const char* dev, std::set<std::string>& found) {
    auto on = [&found](const net::endpoint& ep, const std::string& device) {
      found.insert(device + "@" + std::to_string(ep.port()));
    };
    return std::make_unique<lan_discovery>(io, lan_announcement{id_of(folder), port, dev}, on, o);
  };
  auto a = make(1, 1111, "DEVA", found_by_a);
  auto b = make(1, 2222, "DEVB", found_by_b);
  auto c = make(2, 3333, "DEVC", found_by_c);
  ASSERT_TRUE(a->start().ok());
  ASSERT_TRUE(b->start().ok());
  ASSERT_TRUE(c->start().ok());
  // Until each of a and b has heard the other (or 10 s: then the test fails); c's
  // announcements go out all the while.
  asio::steady_timer limit(io);
  limit.expires_after(std::chrono::seconds(10));
  limit.async_wait([&](boost::system::error_code) { io.stop(); });
  asio::steady_timer poll(io);
  std::function<void()> check = [&] {
    if (!found_by_a.empty() && !found_by_b.empty()) {
      // A few more rounds, so a wrong report of c would show.
      poll.expires_after(std::chrono::milliseconds(500));
      poll.async_wait([&](boost::system::error_code) { io.stop(); });
      return;
    }
    poll.expires_after(std::chrono::milliseconds(20));
    poll.async_wait([&](boost::system::error_code ec) {
      if (!ec) check();
    });
  };
  check();
  io.run();
  EXPECT_EQ(found_by_a, std::set<std::string>{"DEVB@2222"});
  EXPECT_EQ(found_by_b, std::set<std::string>{"DEVA@1111"});
  EXPECT_TRUE(found_by_c.empty());
  a->stop();
  b->stop();
  c->stop();
}
