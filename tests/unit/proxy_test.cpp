// Proxy codecs (net/proxy_codec.hpp) byte for byte against RFC 1928/1929, and
// connect_through / socks5_udp_associate (net/proxy.hpp) against scripted servers on
// loopback inside the test.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <functional>

#include "net/proxy.hpp"

using namespace shoal;
using namespace shoal::net;
namespace asio = boost::asio;
namespace ip = asio::ip;
using boost::system::error_code;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v)
    s.push_back(static_cast<char>(b));
  return s;
}

error_code code(proxy_errc e) {
  return make_error_code(e);
}

}  // namespace

TEST(ProxyUrl, Socks5WithCredentials) {
  auto p = parse_proxy_url("socks5://alice:s%3Acret@127.0.0.1:1080");
  ASSERT_TRUE(p) << p.err().message();
  EXPECT_EQ(p->type, proxy_settings::socks5);
  EXPECT_EQ(p->host, "127.0.0.1");
  EXPECT_EQ(p->port, 1080);
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->password, "s:cret");
  EXPECT_EQ(describe(*p), "socks5://alice:***@127.0.0.1:1080");
}

TEST(ProxyUrl, HttpIpv6AndNames) {
  auto p = parse_proxy_url("http://[::1]:8080");
  ASSERT_TRUE(p) << p.err().message();
  EXPECT_EQ(p->type, proxy_settings::http);
  EXPECT_EQ(p->host, "::1");
  EXPECT_EQ(describe(*p), "http://[::1]:8080");
  auto q = parse_proxy_url("socks5h://proxy.example:1080/");
  ASSERT_TRUE(q) << q.err().message();
  EXPECT_EQ(q->host, "proxy.example");
  EXPECT_TRUE(q->user.empty());
  auto none = parse_proxy_url("");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->enabled());
}

TEST(ProxyUrl, ClearErrors) {
  auto msg = [](std::string_view url) {
    auto p = parse_proxy_url(url);
    return p ? std::string("accepted") : p.err().message();
  };
  EXPECT_NE(msg("socks4://h:1").find("unsupported scheme 'socks4'"), std::string::npos);
  EXPECT_NE(msg("socks5://h").find("no port"), std::string::npos);
  EXPECT_NE(msg("socks5://h:0").find("not between 1 and 65535"), std::string::npos);
  EXPECT_NE(msg("socks5://h:99999").find("not between 1 and 65535"), std::string::npos);
  EXPECT_NE(msg("socks5://:1080").find("no host"), std::string::npos);
  EXPECT_NE(msg("http://h:1/x").find("no path"), std::string::npos);
  EXPECT_NE(msg("http://h:1?q").find("no query"), std::string::npos);
  EXPECT_NE(msg("socks5://:pw@h:1").find("empty user name"), std::string::npos);
  EXPECT_NE(msg("127.0.0.1:1080").find("expected socks5://"), std::string::npos);
  EXPECT_NE(msg("socks5:h:1").find("expected socks5://"), std::string::npos);
  EXPECT_NE(msg("socks5://" + std::string(256, 'u') + ":p@h:1").find("255 bytes"), std::string::npos);
  EXPECT_EQ(msg("socks5://" + std::string(255, 'u') + ":p@h:1"), "accepted");
}

TEST(Socks5, Greeting) {
  EXPECT_EQ(socks5_greeting(false), bytes({5, 1, 0}));
  EXPECT_EQ(socks5_greeting(true), bytes({5, 2, 0, 2}));
}

TEST(Socks5, MethodChoice) {
  EXPECT_EQ(*parse_socks5_method(bytes({5, 0}), false), 0);
  EXPECT_EQ(*parse_socks5_method(bytes({5, 2}), true), 2);
  EXPECT_EQ(parse_socks5_method(bytes({5, 2}), false).error(), code(proxy_errc::unexpected_method));
  EXPECT_EQ(parse_socks5_method(bytes({5, 1}), true).error(), code(proxy_errc::unexpected_method));
  EXPECT_EQ(parse_socks5_method(bytes({5, 0xff}), true).error(), code(proxy_errc::no_acceptable_method));
  EXPECT_EQ(parse_socks5_method(bytes({4, 0}), false).error(), code(proxy_errc::bad_version));
  EXPECT_EQ(parse_socks5_method(bytes({5}), false).error(), code(proxy_errc::malformed_reply));
}

TEST(Socks5, UsernamePassword) {
  EXPECT_EQ(*socks5_auth_request("bob", "pw"), bytes({1, 3, 'b', 'o', 'b', 2, 'p', 'w'}));
  EXPECT_EQ(*socks5_auth_request("", ""), bytes({1, 0, 0}));
  EXPECT_TRUE(socks5_auth_request(std::string(255, 'x'), std::string(255, 'y')));
  EXPECT_EQ(socks5_auth_request(std::string(256, 'x'), "").error(), code(proxy_errc::credentials_too_long));
  EXPECT_EQ(socks5_auth_request("x", std::string(256, 'y')).error(), code(proxy_errc::credentials_too_long));
  EXPECT_FALSE(parse_socks5_auth_reply(bytes({1, 0})));
  EXPECT_EQ(parse_socks5_auth_reply(bytes({1, 1})), code(proxy_errc::auth_failed));
  EXPECT_EQ(parse_socks5_auth_reply(bytes({5, 0})), code(proxy_errc::bad_auth_version));
  EXPECT_EQ(parse_socks5_auth_reply(bytes({1})), code(proxy_errc::bad_auth_version));
}

TEST(Socks5, ConnectRequestAddressTypes) {
  EXPECT_EQ(*socks5_request(socks5_cmd_connect, socks5_target("10.1.2.3", 6881)),
            bytes({5, 1, 0, 1, 10, 1, 2, 3, 0x1a, 0xe1}));
  std::string v6 = bytes({5, 1, 0, 4});
  v6 += std::string(15, '\0') + bytes({1, 0x00, 0x50});
  EXPECT_EQ(*socks5_request(socks5_cmd_connect, socks5_target("::1", 80)), v6);
  EXPECT_EQ(*socks5_request(socks5_cmd_connect, socks5_target("[::1]", 80)), v6);
  // A v4-mapped address goes as IPv4: the proxy may have no IPv6 at all.
  EXPECT_EQ(*socks5_request(socks5_cmd_connect, socks5_target("::ffff:10.1.2.3", 6881)),
            bytes({5, 1, 0, 1, 10, 1, 2, 3, 0x1a, 0xe1}));
  EXPECT_EQ(*socks5_request(socks5_cmd_connect, socks5_target("tracker.example", 443)),
            bytes({5, 1, 0, 3, 15}) + "tracker.example" + bytes({1, 0xbb}));
  EXPECT_TRUE(socks5_request(socks5_cmd_connect, socks5_target(std::string(255, 'a'), 1)));
  EXPECT_EQ(socks5_request(socks5_cmd_connect, socks5_target(std::string(256, 'a'), 1)).error(),
            code(proxy_errc::host_name_too_long));
  EXPECT_EQ(socks5_request(socks5_cmd_udp_associate, socks5_target("0.0.0.0", 0)).value(),
            bytes({5, 3, 0, 1, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks5, ReplyLengthAndBoundAddress) {
  const std::string v4 = bytes({5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38});
  EXPECT_EQ(*socks5_reply_length(v4.substr(0, 5)), 10u);
  auto r = parse_socks5_reply(v4);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ip, ip::make_address("127.0.0.1"));
  EXPECT_EQ(r->port, 1080);
  const std::string name = bytes({5, 0, 0, 3, 4}) + "host" + bytes({0, 1});
  EXPECT_EQ(*socks5_reply_length(name.substr(0, 5)), 11u);
  EXPECT_EQ(parse_socks5_reply(name)->domain, "host");
  std::string v6 = bytes({5, 0, 0, 4}) + std::string(16, '\0') + bytes({0, 9});
  EXPECT_EQ(*socks5_reply_length(v6.substr(0, 5)), 22u);
  EXPECT_TRUE(parse_socks5_reply(v6)->ip.is_v6());
  EXPECT_EQ(socks5_reply_length(bytes({5, 0, 0, 9, 0})).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(socks5_reply_length(bytes({4, 0, 0, 1, 0})).error(), code(proxy_errc::bad_version));
  EXPECT_EQ(socks5_reply_length(bytes({5, 0, 0, 1})).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(parse_socks5_reply(v4.substr(0, 9)).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(parse_socks5_reply(v4 + "x").error(), code(proxy_errc::malformed_reply));
  std::string rsv = v4;
  rsv[2] = 1;
  EXPECT_EQ(parse_socks5_reply(rsv).error(), code(proxy_errc::malformed_reply));
}

TEST(Socks5, EveryReplyCode) {
  const proxy_errc expect[] = {proxy_errc::general_failure,       proxy_errc::not_allowed_by_ruleset,
                               proxy_errc::network_unreachable,   proxy_errc::host_unreachable,
                               proxy_errc::connection_refused,    proxy_errc::ttl_expired,
                               proxy_errc::command_not_supported, proxy_errc::address_type_not_supported};
  for (int rep = 1; rep <= 8; ++rep) {
    auto r = parse_socks5_reply(bytes({5, rep, 0, 1, 0, 0, 0, 0, 0, 0}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), code(expect[rep - 1]));
    EXPECT_NE(r.error().message().find("SOCKS5 proxy:"), std::string::npos) << r.error().message();
  }
  for (int rep : {9, 0x7f, 0xff}) {
    EXPECT_EQ(parse_socks5_reply(bytes({5, rep, 0, 1, 0, 0, 0, 0, 0, 0})).error(),
              code(proxy_errc::unknown_reply_code));
  }
  EXPECT_EQ(code(proxy_errc::connection_refused).message(), "SOCKS5 proxy: connection refused by the target");
}

TEST(Socks5, UdpHeader) {
  auto w = socks5_udp_wrap(socks5_target("10.0.0.1", 6969), "abc");
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, bytes({0, 0, 0, 1, 10, 0, 0, 1, 0x1b, 0x39, 'a', 'b', 'c'}));
  auto u = socks5_udp_unwrap(*w);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->from, socks5_target("10.0.0.1", 6969));
  EXPECT_EQ(u->payload, "abc");
  auto n = socks5_udp_wrap(socks5_target("tracker.example", 80), "");
  ASSERT_TRUE(n);
  auto un = socks5_udp_unwrap(*n);
  ASSERT_TRUE(un);
  EXPECT_EQ(un->from.domain, "tracker.example");
  EXPECT_TRUE(un->payload.empty());
  auto v6 = socks5_udp_wrap(socks5_target("2001:db8::7", 1), "x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->size(), 3u + 1 + 16 + 2 + 1);
  EXPECT_EQ(socks5_udp_unwrap(*v6)->from.ip, ip::make_address("2001:db8::7"));
  std::string frag = *w;
  frag[2] = 1;
  EXPECT_EQ(socks5_udp_unwrap(frag).error(), code(proxy_errc::fragmented_datagram));
  std::string rsv = *w;
  rsv[0] = 1;
  EXPECT_EQ(socks5_udp_unwrap(rsv).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(socks5_udp_unwrap(w->substr(0, 9)).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(socks5_udp_unwrap(bytes({0, 0, 0, 3})).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(socks5_udp_unwrap(bytes({0, 0, 0, 3, 5, 'a'})).error(), code(proxy_errc::malformed_reply));
  EXPECT_EQ(socks5_udp_unwrap(bytes({0, 0, 0, 2, 0, 0})).error(), code(proxy_errc::malformed_reply));
}

TEST(HttpConnect, Request) {
  EXPECT_EQ(http_connect_request("10.0.0.1", 6881, "", ""),
            "CONNECT 10.0.0.1:6881 HTTP/1.1\r\nHost: 10.0.0.1:6881\r\n\r\n");
  EXPECT_EQ(http_connect_request("::1", 80, "", ""), "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
  EXPECT_EQ(http_connect_request("h", 1, "Aladdin", "open sesame"),
            "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
}

TEST(HttpConnect, Replies) {
  EXPECT_FALSE(http_head_end("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(*http_head_end("HTTP/1.1 200 OK\r\n\r\nrest"), 19u);
  auto ok = parse_http_connect_reply("HTTP/1.1 200 Connection established\r\n\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200u);
  EXPECT_EQ(ok->reason, "Connection established");
  // A body announced on a refusal is not waited for.
  auto no = parse_http_connect_reply(
      "HTTP/1.0 407 Proxy Authentication Required\r\nContent-Length: 100\r\nProxy-Authenticate: Basic\r\n\r\n");
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 407u);
  EXPECT_EQ(no->reason, "Proxy Authentication Required");
  EXPECT_EQ(parse_http_connect_reply("SSH-2.0-OpenSSH\r\n\r\n").error(), code(proxy_errc::bad_http_reply));
  EXPECT_EQ(parse_http_connect_reply("HTTP/1.1 200 OK\r\n").error(), code(proxy_errc::bad_http_reply));
  EXPECT_EQ(parse_http_connect_reply("HTTP/1.1 2000 OK\r\n\r\n").error(), code(proxy_errc::bad_http_reply));
  EXPECT_EQ(parse_http_connect_reply("HTTP/1.1 073 OK\r\n\r\n").error(), code(proxy_errc::bad_http_reply));  // fuzz
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(max_http_head, 'a') + "\r\n\r\n";
  EXPECT_EQ(parse_http_connect_reply(big).error(), code(proxy_errc::http_reply_too_large));
}

// ---- I/O against scripted servers on loopback ----

namespace {

using tcp = ip::tcp;
// One accepted connection, handled by `script`; runs on the same io_context.
using script_fn = std::function<asio::awaitable<void>(tcp::socket&)>;

struct fixture {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(ip::make_address("127.0.0.1"), 0)};
  std::string seen;  // what the client sent, as the script recorded it

  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  void serve(script_fn script) {
    asio::co_spawn(
        io,
        [this, script]() -> asio::awaitable<void> {
          auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
          if (ec) co_return;
          co_await script(s);
        },
        asio::detached);
  }

  // Runs connect_through; returns its error and the `why` line.
  std::pair<error_code, std::string> connect(const proxy_settings& p, const std::string& host, std::uint16_t port,
                                             tcp::socket& sock) {
    error_code result;
    std::string why;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          result = co_await connect_through(sock, p, host, port, &why);
          // The scripted server may still wait on its socket: stop everything.
          acceptor.close();
        },
        [&](std::exception_ptr) { io.stop(); });
    io.run_for(std::chrono::seconds(10));
    return {result, why};
  }
};

asio::awaitable<std::string> read_n(tcp::socket& s, std::size_t n) {
  std::string buf(n, '\0');
  auto [ec, got] = co_await asio::async_read(s, asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
  buf.resize(got);
  co_return buf;
}

// Callers name what they send first: GCC 12 rejects array temporaries (initializer lists)
// inside a co_await expression.
asio::awaitable<void> write_str(tcp::socket& s, std::string data) {
  co_await asio::async_write(s, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
}

proxy_settings socks(std::uint16_t port, std::string user = "", std::string pass = "") {
  proxy_settings p;
  p.type = proxy_settings::socks5;
  p.host = "127.0.0.1";
  p.port = port;
  p.user = std::move(user);
  p.password = std::move(pass);
  p.timeout = std::chrono::milliseconds(3000);
  return p;
}

}  // namespace

TEST(ProxyIo, Socks5PasswordThenDomainConnectThenData) {
  fixture f;
  f.serve([&f](tcp::socket& s) -> asio::awaitable<void> {
    f.seen += co_await read_n(s, 4);  // 5 2 0 2
    {
      const std::string reply = bytes({5, 2});
      co_await write_str(s, reply);
    }
    f.seen += co_await read_n(s, 1 + 1 + 5 + 1 + 6);
    {
      const std::string reply = bytes({1, 0});
      co_await write_str(s, reply);
    }
    f.seen += co_await read_n(s, 5 + 11 + 2);  // 5 1 0 3 11 "example.org" port
    // A reply with a domain BND.ADDR, then the target's first bytes at once.
    {
      const std::string reply = bytes({5, 0, 0, 3, 2, 'b', 'n', 0, 1}) + "hello";
      co_await write_str(s, reply);
    }
  });
  tcp::socket sock(f.io);
  auto [ec, why] = f.connect(socks(f.port(), "alice", "secret"), "example.org", 6881, sock);
  ASSERT_FALSE(ec) << why;
  EXPECT_EQ(f.seen, bytes({5, 2, 0, 2, 1, 5}) + "alice" + bytes({6}) + "secret" + bytes({5, 1, 0, 3, 11}) +
                        "example.org" + bytes({0x1a, 0xe1}));
  // Nothing of the target's data was eaten by the negotiation.
  std::string got(5, '\0');
  asio::read(sock, asio::buffer(got));
  EXPECT_EQ(got, "hello");
}

TEST(ProxyIo, Socks5WrongPassword) {
  fixture f;
  f.serve([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_n(s, 4);
    {
      const std::string reply = bytes({5, 2});
      co_await write_str(s, reply);
    }
    co_await read_n(s, 1 + 1 + 1 + 1 + 1);
    {
      const std::string reply = bytes({1, 1});
      co_await write_str(s, reply);
    }
  });
  tcp::socket sock(f.io);
  auto [ec, why] = f.connect(socks(f.port(), "u", "p"), "10.0.0.1", 1, sock);
  EXPECT_EQ(ec, code(proxy_errc::auth_failed));
  EXPECT_NE(why.find("authentication failed"), std::string::npos) << why;
  EXPECT_NE(why.find("socks5://u:***@127.0.0.1:"), std::string::npos) << why;
  EXPECT_FALSE(sock.is_open());
}

TEST(ProxyIo, Socks5NeedsPasswordWeHaveNone) {
  fixture f;
  f.serve([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_n(s, 3);
    {
      const std::string reply = bytes({5, 0xff});
      co_await write_str(s, reply);
    }
  });
  tcp::socket sock(f.io);
  auto [ec, why] = f.connect(socks(f.port()), "10.0.0.1", 1, sock);
  EXPECT_EQ(ec, code(proxy_errc::no_acceptable_method));
  EXPECT_NE(why.find("user name and password"), std::string::npos) << why;
}

TEST(ProxyIo, Socks5RefusedWithShortReply) {
  fixture f;
  f.serve([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_n(s, 3);
    {
      const std::string reply = bytes({5, 0});
      co_await write_str(s, reply);
    }
    co_await read_n(s, 10);
    // Some servers send only the code and a zero address type before closing.
    {
      const std::string reply = bytes({5, 5, 0, 0, 0});
      co_await write_str(s, reply);
    }
  });
  tcp::socket sock(f.io);
  auto [ec, why] = f.connect(socks(f.port()), "10.0.0.1", 1, sock);
  EXPECT_EQ(ec, code(proxy_errc::connection_refused));
  EXPECT_NE(why.find("reply code 5"), std::string::npos) << why;
}

TEST(ProxyIo, Timeout) {
  fixture f;
  f.serve([](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_n(s, 3);  // then silence until the client gives up
    co_await read_n(s, 1);
  });
  tcp::socket sock(f.io);
  auto p = socks(f.port());
  p.timeout = std::chrono::milliseconds(300);
  const auto t0 = std::chrono::steady_clock::now();
  auto [ec, why] = f.connect(p, "10.0.0.1", 1, sock);
  EXPECT_EQ(ec, code(proxy_errc::timed_out));
  EXPECT_NE(why.find("no answer within 300 ms"), std::string::npos) << why;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(ProxyIo, ProxyNotListening) {
  fixture f;
  const auto port = f.port();
  f.acceptor.close();
  tcp::socket sock(f.io);
  auto [ec, why] = f.connect(socks(port), "10.0.0.1", 1, sock);
  EXPECT_EQ(ec, asio::error::connection_refused);
  EXPECT_NE(why.find("cannot connect to the proxy"), std::string::npos) << why;
}

TEST(ProxyIo, HttpConnectOkAndRefused) {
  for (const bool allow : {true, false}) {
    fixture f;
    f.serve([&f, allow](tcp::socket& s) -> asio::awaitable<void> {
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        auto c = co_await read_n(s, 1);
        if (c.empty()) co_return;
        req += c;
      }
      f.seen = req;
      {
        const std::string reply = allow ? std::string("HTTP/1.1 200 Connection established\r\n\r\nBT")
                                        : std::string("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!");
        co_await write_str(s, reply);
      }
    });
    proxy_settings p = socks(f.port());
    p.type = proxy_settings::http;
    tcp::socket sock(f.io);
    auto [ec, why] = f.connect(p, "10.9.8.7", 6881, sock);
    EXPECT_EQ(f.seen, "CONNECT 10.9.8.7:6881 HTTP/1.1\r\nHost: 10.9.8.7:6881\r\n\r\n");
    if (allow) {
      ASSERT_FALSE(ec) << why;
      std::string got(2, '\0');
      asio::read(sock, asio::buffer(got));
      EXPECT_EQ(got, "BT");
    } else {
      EXPECT_EQ(ec, code(proxy_errc::http_refused));
      EXPECT_NE(why.find("HTTP 403 Forbidden"), std::string::npos) << why;
    }
  }
}

TEST(ProxyIo, UdpAssociateUsesProxyAddressForUnspecifiedRelay) {
  fixture f;
  f.serve([&f](tcp::socket& s) -> asio::awaitable<void> {
    co_await read_n(s, 3);
    {
      const std::string reply = bytes({5, 0});
      co_await write_str(s, reply);
    }
    f.seen = co_await read_n(s, 10);
    {
      const std::string reply = bytes({5, 0, 0, 1, 0, 0, 0, 0, 0x30, 0x39});
      co_await write_str(s, reply);
    }
    co_await read_n(s, 1);  // holds the association until the client closes
  });
  socks5_udp_association assoc(f.io.get_executor());
  error_code ec;
  std::string why;
  const auto p = socks(f.port());
  asio::co_spawn(
      f.io,
      [&]() -> asio::awaitable<void> {
        const ip::udp::endpoint local(ip::make_address("127.0.0.1"), 7000);
        ec = co_await socks5_udp_associate(assoc, p, local, &why);
        assoc.control.close();
      },
      asio::detached);
  f.io.run_for(std::chrono::seconds(10));
  ASSERT_FALSE(ec) << why;
  EXPECT_EQ(f.seen, bytes({5, 3, 0, 1, 127, 0, 0, 1, 0x1b, 0x58}));
  EXPECT_EQ(assoc.relay, ip::udp::endpoint(ip::make_address("127.0.0.1"), 12345));
}
