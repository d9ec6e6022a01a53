// The tracker client's guards: URLs in error lines without their query, and --local
// refusing public hosts before anything is sent or resolved.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <thread>

#include "tracker/announce.hpp"
#include "tracker/cache.hpp"
#include "tracker/client.hpp"

using namespace shoal;
namespace asio = boost::asio;

TEST(TrackerClient, RedactUrlKeepsSchemeHostPortPath) {
  EXPECT_EQ(tracker::redact_url("http://t.example:6969/announce?info_hash=%01%02&peer_id=-SH0100-abc&key=1234"),
            "http://t.example:6969/announce");
  EXPECT_EQ(tracker::redact_url("https://t.example/abcdef0123/announce?passkey=secret"),
            "https://t.example/abcdef0123/announce");
  EXPECT_EQ(tracker::redact_url("udp://[2001:db8::1]:1337/announce?x=y"), "udp://[2001:db8::1]:1337/announce");
  EXPECT_EQ(tracker::redact_url("http://user:pw@t.example:80/a#frag"), "http://t.example:80/a");
  EXPECT_EQ(tracker::redact_url("not a url?peer_id=x"), "not a url");
  EXPECT_EQ(tracker::redact_url("http://t.example/announce"), "http://t.example/announce");
}

namespace {

result<tracker::announce_response> announce_now(const std::string& url, bool local,
                                                std::optional<std::uint16_t> socks_port = std::nullopt,
                                                std::shared_ptr<tracker::client_cache> cache = nullptr) {
  asio::io_context io;
  tracker::announce_request req;
  req.peer_id.fill('p');
  req.key = 0x1234;
  tracker::client_options opt;
  opt.local = local;
  opt.http_timeout = std::chrono::seconds(2);
  opt.udp_attempts = cache ? 2 : 1;
  opt.udp_base_timeout = std::chrono::milliseconds(cache ? 300 : 200);
  opt.cache = std::move(cache);
  if (socks_port) {
    opt.proxy.type = net::proxy_settings::socks5;
    opt.proxy.host = "127.0.0.1";
    opt.proxy.port = *socks_port;
    opt.proxy.timeout = std::chrono::milliseconds(1000);
  }
  std::optional<result<tracker::announce_response>> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await tracker::announce(io, url, req, opt); }, asio::detached);
  io.run();
  return std::move(*out);
}

}  // namespace

TEST(TrackerClient, LocalSkipsPublicHostsAtOnce) {
  // Everything goes to a "SOCKS5 proxy" on loopback that only listens: were --local not
  // to hold, the attempt would show up there as a connection, and nothing would leave
  // loopback or be resolved even then (the proxy resolves names).
  asio::io_context probe;
  asio::ip::tcp::acceptor proxy(probe, {asio::ip::make_address("127.0.0.1"), 0});
  proxy.non_blocking(true);
  const auto port = proxy.local_endpoint().port();
  for (const char* url :
       {"http://203.0.113.5:6969/announce", "udp://198.51.100.7:6969/announce", "http://tracker.example.com/announce",
        "udp://tracker.example.net:1337", "http://[2001:db8::7]:8080/announce"}) {
    auto r = announce_now(url, true, port);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_NE(r.err().message().find("skipped under --local"), std::string::npos) << r.err().message();
    // The line names the URL without a query: no peer_id, no key.
    EXPECT_EQ(r.err().message().find("peer_id"), std::string::npos) << r.err().message();
    EXPECT_EQ(r.err().message().find("key="), std::string::npos) << r.err().message();
    boost::system::error_code ec;
    asio::ip::tcp::socket s(probe);
    proxy.accept(s, ec);
    EXPECT_EQ(ec, asio::error::would_block) << url << ": something was dialled";
  }
}

TEST(TrackerClient, LocalStillReachesLoopbackTrackers) {
  // Nobody listens there: the error is the connection's, not a --local skip.
  asio::io_context probe;
  asio::ip::tcp::acceptor a(probe, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto r = announce_now("http://" + host + ":" + std::to_string(port) + "/announce", true);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message().find("skipped under --local"), std::string::npos) << r.err().message();
    EXPECT_EQ(r.err().message().find("peer_id"), std::string::npos) << r.err().message();
  }
}

TEST(TrackerClient, HttpErrorLinesHaveNoQuery) {
  asio::io_context probe;
  asio::ip::tcp::acceptor a(probe, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  auto r = announce_now("http://127.0.0.1:" + std::to_string(port) + "/announce?passkey=hunter2", false);
  ASSERT_FALSE(r.ok());
  const auto msg = r.err().message();
  EXPECT_NE(msg.find("http://127.0.0.1:" + std::to_string(port) + "/announce"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("passkey"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("peer_id"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("info_hash"), std::string::npos) << msg;
}

namespace {

// A UDP tracker of a few lines (BEP 15), counting what it is sent: connects hand out an
// id; announces with the current id get an answer, others an error.
struct fake_udp_tracker {
  asio::io_context io;
  asio::ip::udp::socket sock{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::atomic<int> connects{0}, announces{0}, rejected{0};
  std::atomic<std::uint64_t> current{0};
  std::atomic<bool> stop{false};
  std::thread th;
  fake_udp_tracker() {
    th = std::thread([this] {
      std::array<char, 2048> in{};
      for (;;) {
        asio::ip::udp::endpoint from;
        boost::system::error_code ec;
        const std::size_t n = sock.receive_from(asio::buffer(in), from, 0, ec);
        if (ec || stop) return;
        auto be = [&](std::size_t off, int bytes) {
          std::uint64_t v = 0;
          for (int i = 0; i < bytes; ++i)
            v = (v << 8) | static_cast<unsigned char>(in[off + i]);
          return v;
        };
        auto put = [](std::string& out, std::uint64_t v, int bytes) {
          for (int i = bytes - 1; i >= 0; --i)
            out += static_cast<char>((v >> (8 * i)) & 0xff);
        };
        if (n < 16) continue;
        const auto action = be(8, 4), txn = be(12, 4);
        std::string out;
        if (action == 0) {
          ++connects;
          current = 1000 + connects;
          put(out, 0, 4);
          put(out, txn, 4);
          put(out, current, 8);
        } else if (action == 1) {
          ++announces;
          if (be(0, 8) != current) {
            ++rejected;
            put(out, 3, 4);
            put(out, txn, 4);
            out += "unknown connection id";
          } else {
            put(out, 1, 4);
            put(out, txn, 4);
            put(out, 1234, 4);
            put(out, 0, 4);
            put(out, 1, 4);
          }
        }
        sock.send_to(asio::buffer(out), from, 0, ec);
      }
    });
  }
  ~fake_udp_tracker() {
    // A datagram wakes the blocked receive; the flag ends the loop.
    stop = true;
    asio::ip::udp::socket poke(io, {asio::ip::make_address("127.0.0.1"), 0});
    poke.send_to(asio::buffer("x", 1), sock.local_endpoint());
    th.join();
  }
  std::string url() const { return "udp://127.0.0.1:" + std::to_string(sock.local_endpoint().port()) + "/announce"; }
};

}  // namespace

TEST(TrackerClient, SharedCacheReusesUdpConnectionIdsAndNames) {
  fake_udp_tracker t;
  auto cache = std::make_shared<tracker::client_cache>();
  ASSERT_TRUE(announce_now(t.url(), false, std::nullopt, cache).ok());
  ASSERT_TRUE(announce_now(t.url(), false, std::nullopt, cache).ok());
  EXPECT_EQ(t.connects, 1) << "the second announce connected again instead of using the id";
  EXPECT_EQ(t.announces, 2);
  EXPECT_EQ(cache->counters().name_lookups, 1u);
  EXPECT_EQ(cache->counters().name_hits, 1u);
  // The tracker forgets the id (it restarted, say): one refused try, then a new connect.
  t.current = 1;
  auto r = announce_now(t.url(), false, std::nullopt, cache);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->interval, 1234u);
  EXPECT_EQ(t.rejected, 1);
  EXPECT_EQ(t.connects, 2);
  // Without a cache every announce connects.
  ASSERT_TRUE(announce_now(t.url(), false).ok());
  EXPECT_EQ(t.connects, 3);
}
