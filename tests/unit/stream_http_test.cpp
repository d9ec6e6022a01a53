// Streaming's HTTP half without a session: the Range header (good and bad), content types,
// the /stream/ routes, SRT to WebVTT, M3U playlists, the buffer bar's JSON.
#include <gtest/gtest.h>

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
  for (const std::string& bad :
       std::vector<std::string>{"/stream/", "/stream/" + h40, "/stream/" + h40 + "/", "/stream/" + h40 + "/x",
                                "/stream/" + h40 + "/-1", "/stream/" + h40 + "/01", "/stream/" + h40 + "/4294967296",
                                "/stream/" + h40 + "/1234567890", "/stream/" + h40 + "/1/other",
                                "/stream/" + std::string(39, 'a') + "/1", "/stream/" + std::string(40, 'g') + "/1",
                                "/stream/.m3u", "/other/" + h40 + "/1", "/stream/" + h40 + "/1/buffered/x"}) {
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
