// Streaming's HTTP half without a session: the Range header (good and bad), content types,
// the /stream/ routes, SRT to WebVTT, M3U playlists, the buffer bar's JSON; and the HTTP
// server's sized streams (kept-alive connections, a short body, a client that stops reading).
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <thread>

#include "daemon/http_server.hpp"
#include "stream/http_codec.hpp"

namespace {

using namespace shoal::stream;

range_request R(std::string_view h, std::uint64_t size) {
  return parse_range(h, size);
}

TEST(StreamRange, FirstLast) {
  auto r = R("bytes=0-99", 1000);
  ASSERT_EQ(r.status, range_status::ok);
  EXPECT_EQ(r.range, (byte_range{0, 99}));
  EXPECT_EQ(r.range.length(), 100u);
  EXPECT_EQ(content_range(r.range, 1000), "bytes 0-99/1000");
}

TEST(StreamRange, OpenEndedAndPastTheEnd) {
  EXPECT_EQ(R("bytes=500-", 1000).range, (byte_range{500, 999}));
  EXPECT_EQ(R("bytes=990-5000", 1000).range, (byte_range{990, 999}));
  EXPECT_EQ(R("bytes=999-999", 1000).range, (byte_range{999, 999}));
  // A last position past what 64 bits hold is no number at all.
  EXPECT_EQ(R("bytes=0-99999999999999999999999", 1000).status, range_status::invalid);
  EXPECT_EQ(R("bytes=0-18446744073709551615", 1000).range, (byte_range{0, 999}));
  EXPECT_EQ(R("bytes=0-18446744073709551616", 1000).status, range_status::invalid);
}

TEST(StreamRange, Suffix) {
  EXPECT_EQ(R("bytes=-100", 1000).range, (byte_range{900, 999}));
  EXPECT_EQ(R("bytes=-5000", 1000).range, (byte_range{0, 999}));
  EXPECT_EQ(R("bytes=-0", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(R("bytes=-1", 0).status, range_status::unsatisfiable);
}

TEST(StreamRange, Unsatisfiable) {
  EXPECT_EQ(R("bytes=1000-", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(R("bytes=1000-2000", 1000).status, range_status::unsatisfiable);
  EXPECT_EQ(R("bytes=0-", 0).status, range_status::unsatisfiable);
}

TEST(StreamRange, SeveralRangesAnswerTheFirstSatisfiable) {
  EXPECT_EQ(R("bytes=0-9, 20-29", 1000).range, (byte_range{0, 9}));
  EXPECT_EQ(R("bytes=5000-6000,20-29", 1000).range, (byte_range{20, 29}));
  EXPECT_EQ(R("bytes= 1-2 ,,", 1000).range, (byte_range{1, 2}));
  std::string many = "bytes=";
  for (int i = 0; i < 65; ++i)
    many += std::to_string(i) + "-" + std::to_string(i) + ",";
  EXPECT_EQ(R(many, 1000).status, range_status::invalid);
}

TEST(StreamRange, OtherUnitsAreIgnored) {
  EXPECT_EQ(R("items=0-5", 1000).status, range_status::none);
  EXPECT_EQ(R("BYTES=0-5", 1000).status, range_status::ok);
}

TEST(StreamRange, BadInput) {
  for (std::string_view bad :
       {"", "bytes", "bytes=", "bytes=,", "bytes=abc", "bytes=5", "bytes=9-3", "bytes=-", "bytes=--5", "bytes=1-2-3",
        "bytes=+1-2", "bytes=0x10-", "bytes=1 -2", "bytes=-1-", "bytes=0-5,x", "bytes=\x01-\x02"}) {
    EXPECT_EQ(R(bad, 1000).status, range_status::invalid) << bad;
  }
}

TEST(StreamContentType, ByExtension) {
  EXPECT_EQ(content_type_for("a/b/film.mp4"), "video/mp4");
  EXPECT_EQ(content_type_for("FILM.M4V"), "video/mp4");
  EXPECT_EQ(content_type_for("x.webm"), "video/webm");
  EXPECT_EQ(content_type_for("x.mkv"), "video/x-matroska");
  EXPECT_EQ(content_type_for("x.mp3"), "audio/mpeg");
  EXPECT_EQ(content_type_for("x.opus"), "audio/ogg");
  EXPECT_EQ(content_type_for("x.ogg"), "audio/ogg");
  EXPECT_EQ(content_type_for("x.oga"), "audio/ogg");
  EXPECT_EQ(content_type_for("x.ogv"), "video/ogg");
  EXPECT_EQ(content_type_for("x.flac"), "audio/flac");
  EXPECT_EQ(content_type_for("x.m4a"), "audio/mp4");
  EXPECT_EQ(content_type_for("x.wav"), "audio/wav");
  EXPECT_EQ(content_type_for("x.srt"), "application/x-subrip");
  EXPECT_EQ(content_type_for("x.vtt"), "text/vtt");
  EXPECT_EQ(content_type_for("x.txt"), "application/octet-stream");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
  EXPECT_EQ(content_type_for("dir.mp4/readme"), "application/octet-stream");
  EXPECT_EQ(content_type_for("x."), "application/octet-stream");
  EXPECT_TRUE(is_media("a.MKV"));
  EXPECT_FALSE(is_media("a.srt"));
  EXPECT_FALSE(is_media("a.nfo"));
  EXPECT_TRUE(is_srt("Sub.SRT"));
}

TEST(StreamRoute, Routes) {
  const std::string h40(40, 'a'), h64(64, 'B');
  auto r = parse_stream_route("/stream/" + h40 + "/3", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::file);
  EXPECT_EQ(r->hash, h40);
  EXPECT_EQ(r->index, 3u);
  r = parse_stream_route("/stream/" + h64 + "/0", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->hash, std::string(64, 'b'));
  r = parse_stream_route("/stream/" + h40 + "/12.vtt", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::vtt);
  EXPECT_EQ(r->index, 12u);
  r = parse_stream_route("/stream/" + h40 + "/12", "a=b&format=vtt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::vtt);
  r = parse_stream_route("/stream/" + h40 + "/7/buffered", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::buffered);
  EXPECT_EQ(r->index, 7u);
  r = parse_stream_route("/stream/" + h40 + ".m3u", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::playlist);
  r = parse_stream_route("/stream/" + h40 + ".json", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, stream_route::kind::listing);
  for (const std::string& bad : std::vector<std::string>{
           "/stream/", "/stream/" + h40, "/stream/" + h40 + "/", "/stream/" + h40 + "/x", "/stream/" + h40 + "/-1",
           "/stream/" + h40 + "/01", "/stream/" + h40 + "/4294967296", "/stream/" + h40 + "/1234567890",
           "/stream/" + h40 + "/1/other", "/stream/" + std::string(39, 'a') + "/1",
           "/stream/" + std::string(40, 'g') + "/1", "/stream/.m3u", "/stream/.json", "/stream/" + h40 + ".jsonx",
           "/other/" + h40 + "/1", "/stream/" + h40 + "/1/buffered/x"}) {
    EXPECT_FALSE(parse_stream_route(bad, "")) << bad;
  }
  r = parse_stream_route("/stream/" + h40 + "/999999999", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->index, 999999999u);
}

TEST(StreamVtt, SrtToVtt) {
  const std::string srt =
      "\xEF\xBB\xBF"
      "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello, world\r\n\r\n2\r\n00:01:00,250 --> 00:01:03,000\r\nTwo, lines\r\n";
  EXPECT_EQ(srt_to_vtt(srt),
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello, world\n\n2\n00:01:00.250 --> 00:01:03.000\nTwo, "
            "lines\n");
  EXPECT_EQ(srt_to_vtt(""), "WEBVTT\n\n");
  EXPECT_EQ(srt_to_vtt("a\rb"), "WEBVTT\n\na\nb\n");
}

TEST(StreamM3u, Playlist) {
  EXPECT_EQ(make_m3u({}), "#EXTM3U\n");
  EXPECT_EQ(make_m3u({{"a.mp4", "http://h:1/stream/x/0"}, {"evil\n#EXTINF:1,x\nhttp://bad", "http://h:1/stream/x/1"}}),
            "#EXTM3U\n#EXTINF:-1,a.mp4\nhttp://h:1/stream/x/0\n#EXTINF:-1,evil #EXTINF:1,x http://bad\n"
            "http://h:1/stream/x/1\n");
}

TEST(StreamM3u, Host) {
  EXPECT_EQ(safe_host("127.0.0.1:8080"), "127.0.0.1:8080");
  EXPECT_EQ(safe_host("[::1]:80"), "[::1]:80");
  EXPECT_EQ(safe_host("media.example"), "media.example");
  EXPECT_FALSE(safe_host(""));
  EXPECT_FALSE(safe_host("a/b"));
  EXPECT_FALSE(safe_host("a b"));
  EXPECT_FALSE(safe_host("user@host"));
  EXPECT_FALSE(safe_host(std::string(300, 'a')));
}

TEST(StreamBuffered, Json) {
  EXPECT_EQ(buffered_json(10, {}), "{\"size\":10,\"ranges\":[]}");
  EXPECT_EQ(buffered_json(100, {{0, 10}, {50, 100}}), "{\"size\":100,\"ranges\":[[0,10],[50,100]]}");
}

}  // namespace

// The HTTP server's sized streams (media bodies), in-process.
namespace sized {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace shoal::daemon;

// Yields `*left` bytes of 'x' in chunks of 64 KiB, then stops; short: stops early.
asio::awaitable<std::optional<std::string>> next_chunk(std::shared_ptr<std::uint64_t> left) {
  if (*left == 0) co_return std::nullopt;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(*left, 64 * 1024));
  *left -= n;
  co_return std::string(n, 'x');
}

struct server_fixture {
  asio::io_context io;
  std::optional<http_server> srv;
  std::thread thread;
  explicit server_fixture(http_limits lim) {
    srv.emplace(
        io,
        [](const request& req, const tcp::endpoint&, bool) {
          const std::string_view target(req.target().data(), req.target().size());
          const std::uint64_t size = target == "/big" ? (256u << 20) : 10;
          const std::uint64_t sent = target == "/short" ? 5 : size;
          reply r{make_response(req, http::status::ok, ""), stream_reply{}};
          r.stream->head = make_response(req, http::status::ok, "", "application/octet-stream");
          r.stream->head.content_length(size);
          r.stream->sized = true;
          auto left = std::make_shared<std::uint64_t>(sent);
          r.stream->next = [left] { return next_chunk(left); };
          return r;
        },
        lim);
    EXPECT_FALSE(srv->listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    thread = std::thread([this] { io.run(); });
  }
  ~server_fixture() {
    asio::post(io, [this] { srv->stop(); });
    io.stop();
    thread.join();
  }
  std::size_t clients() {
    std::promise<std::size_t> p;
    auto f = p.get_future();
    asio::post(io, [&] { p.set_value(srv->clients()); });
    return f.get();
  }
};

TEST(StreamHttpServer, SizedBodiesKeepTheConnectionAlive) {
  server_fixture fx{http_limits{}};
  asio::io_context cio;
  tcp::socket s(cio);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), fx.srv->port()));
  beast::flat_buffer buf;
  for (auto method : {http::verb::get, http::verb::head, http::verb::get}) {
    http::request<http::empty_body> req{method, "/small", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    http::response_parser<http::string_body> p;
    if (method == http::verb::head) p.skip(true);
    http::read(s, buf, p);
    auto res = p.release();
    EXPECT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res[http::field::content_length], "10");
    EXPECT_FALSE(res.chunked());
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res.body(), method == http::verb::head ? "" : "xxxxxxxxxx");
  }
}

TEST(StreamHttpServer, AShortBodyClosesTheConnection) {
  server_fixture fx{http_limits{}};
  asio::io_context cio;
  tcp::socket s(cio);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), fx.srv->port()));
  http::request<http::empty_body> req{http::verb::get, "/short", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  boost::system::error_code ec;
  http::read(s, buf, res, ec);
  EXPECT_TRUE(ec);  // the connection closed before the 10 bytes promised
}

TEST(StreamHttpServer, AClientThatStopsReadingIsDropped) {
  http_limits lim;
  lim.read_timeout = std::chrono::seconds(1);
  server_fixture fx{lim};
  asio::io_context cio;
  tcp::socket s(cio);
  s.open(tcp::v4());
  s.set_option(asio::socket_base::receive_buffer_size(4096));
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), fx.srv->port()));
  http::request<http::empty_body> req{http::verb::get, "/big", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(s, req);
  // Nothing is read: the socket buffers fill, the server's write stalls, its timer fires.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fx.clients() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(fx.clients(), 1u);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (fx.clients() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(fx.clients(), 0u);
}

}  // namespace sized
