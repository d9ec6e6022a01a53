// The daemon in-process: its codecs (base64, the two RPC dialects, selections, settings),
// and a daemon on loopback driven through handle_http as a client's requests reach it:
// the security rules in order, torrent-add/get/remove, and what survives a restart.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cctype>
#include <cstdio>

#include "daemon/daemon.hpp"
#include "daemon/transmission_rpc.hpp"
#include "session_fixture.hpp"
#include "storage/creator.hpp"

namespace {

using namespace shoal;
using namespace shoal::daemon;
using shoal::testing::temp_dir;
namespace json = boost::json;

TEST(DaemonCodec, Base64RoundTripsAndRejectsJunk) {
  for (std::size_t n = 0; n < 70; ++n) {
    const auto s = shoal::testing::random_bytes(n, n + 1);
    auto enc = base64_encode(s);
    EXPECT_EQ(enc.size() % 4, 0u);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << n;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(base64_decode("aGVs\nbG8="), std::optional<std::string>("hello"));  // wrapped lines
  EXPECT_EQ(base64_decode("aGVsbG8"), std::optional<std::string>("hello"));     // no padding
  EXPECT_FALSE(base64_decode("aGVsbG8=x"));                                     // data after padding
  EXPECT_FALSE(base64_decode("a"));                                             // half a byte
  EXPECT_FALSE(base64_decode("!!!!"));
}

TEST(DaemonCodec, HostHeaderHostPart) {
  EXPECT_EQ(host_part("LocalHost:9091"), "localhost");
  EXPECT_EQ(host_part("[::1]:9091"), "::1");
  EXPECT_EQ(host_part("::1"), "::1");  // a bare IPv6 literal keeps its colons
  EXPECT_EQ(host_part("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(host_part(""), "");
}

TEST(DaemonCodec, SnakeAndLegacyNames) {
  EXPECT_EQ(snake_name("percentDone"), "percent_done");
  EXPECT_EQ(snake_name("peer-limit"), "peer_limit");
  EXPECT_EQ(snake_name("isUTP"), "is_utp");
  EXPECT_EQ(snake_name("torrent-added"), "torrent_added");
  EXPECT_EQ(legacy_name("percent_done"), "percentDone");
  EXPECT_EQ(legacy_name("download_dir"), "downloadDir");
  EXPECT_EQ(legacy_name("download_dir", true), "download-dir");
  EXPECT_EQ(legacy_name("seed_ratio_limited", true), "seedRatioLimited");
  EXPECT_EQ(legacy_name("files_wanted"), "files-wanted");
  EXPECT_EQ(legacy_name("ids"), "ids");
}

TEST(DaemonCodec, ParsesBothDialects) {
  rpc_call c;
  EXPECT_FALSE(parse_rpc(json::parse(R"({"method":"torrent-get","arguments":{"fields":["id"]},"tag":7})"), c));
  EXPECT_EQ(c.method, "torrent-get");
  EXPECT_FALSE(c.jsonrpc);
  EXPECT_EQ(c.id, json::value(7));

  rpc_call j;
  EXPECT_FALSE(parse_rpc(json::parse(R"({"jsonrpc":"2.0","method":"torrent_add","params":{"download_dir":"/x",
      "files_unwanted":[1]},"id":"a"})"),
                         j));
  EXPECT_EQ(j.method, "torrent-add");
  EXPECT_TRUE(j.jsonrpc);
  EXPECT_FALSE(j.notification);
  EXPECT_TRUE(j.args.contains("download-dir"));
  EXPECT_TRUE(j.args.contains("files-unwanted"));

  rpc_call g;
  EXPECT_FALSE(parse_rpc(
      json::parse(R"({"jsonrpc":"2.0","method":"torrent_get","params":{"fields":["hash_string","download_dir"]}})"),
      g));
  EXPECT_TRUE(g.notification);
  EXPECT_EQ(g.args.at("fields"), json::parse(R"(["hashString","downloadDir"])"));

  rpc_call s;
  EXPECT_FALSE(parse_rpc(json::parse(R"({"jsonrpc":"2.0","method":"session_get","params":{"fields":["download_dir"]},
      "id":1})"),
                         s));
  EXPECT_EQ(s.args.at("fields"), json::parse(R"(["download-dir"])"));

  rpc_call bad;
  EXPECT_EQ(parse_rpc(json::parse("[1]"), bad)->code, -32600);
  EXPECT_EQ(parse_rpc(json::parse(R"({"jsonrpc":"1.0","method":"x","id":1})"), bad)->code, -32600);
  EXPECT_EQ(parse_rpc(json::parse(R"({"jsonrpc":"2.0","method":"x","params":[1],"id":1})"), bad)->code, -32602);
  EXPECT_EQ(parse_rpc(json::parse(R"({"arguments":{}})"), bad)->code, -32600);
}

TEST(DaemonCodec, AnswersInTheRequestsDialect) {
  rpc_call legacy;
  legacy.id = 3;
  json::object args;
  args["torrent-added"] = json::object{{"hashString", "ab"}, {"id", 1}};
  auto a = rpc_answer(legacy, "success", args);
  EXPECT_EQ(a, json::parse(R"({"arguments":{"torrent-added":{"hashString":"ab","id":1}},"result":"success","tag":3})"));
  rpc_call j;
  j.jsonrpc = true;
  j.id = 9;
  auto b = rpc_answer(j, "success", args);
  EXPECT_EQ(b, json::parse(R"({"jsonrpc":"2.0","result":{"torrent_added":{"hash_string":"ab","id":1}},"id":9})"));
  auto c = rpc_answer(j, "method name not recognized", {});
  EXPECT_EQ(c.at("error").at("code"), json::value(-32601));
  json::object table;
  table["torrents"] = json::parse(R"([["hashString","percentDone"],["ab",1]])");
  auto d = rpc_answer(j, "success", table);
  EXPECT_EQ(d.at("result").at("torrents").at(0), json::parse(R"(["hash_string","percent_done"])"));
}

TEST(DaemonCodec, TorrentSelections) {
  auto sel = parse_ids(json::parse(R"({"ids":[1,"ABCDEF0123456789abcdef0123456789ABCDEF01",3]})").as_object());
  ASSERT_TRUE(sel);
  EXPECT_FALSE(sel->all);
  EXPECT_EQ(sel->ids, (std::set<std::uint32_t>{1, 3}));
  EXPECT_EQ(sel->hashes.count("abcdef0123456789abcdef0123456789abcdef01"), 1u);
  auto recent = parse_ids(json::parse(R"({"ids":"recently_active"})").as_object());
  ASSERT_TRUE(recent);
  EXPECT_TRUE(recent->recent);
  EXPECT_TRUE(parse_ids(json::object())->all);
  EXPECT_FALSE(parse_ids(json::parse(R"({"ids":{"a":1}})").as_object()));
  EXPECT_FALSE(parse_ids(json::parse(R"({"ids":[true]})").as_object()));
}

TEST(DaemonCodec, FormsMultipartAndCookies) {
  auto f = parse_form("hashes=a%7Cb&category=tv+shows&flag&empty=&bad=%zz%4");
  EXPECT_EQ(f["hashes"], "a|b");
  EXPECT_EQ(f["category"], "tv shows");
  EXPECT_EQ(f.count("flag"), 1u);
  EXPECT_EQ(f["empty"], "");
  EXPECT_EQ(f["bad"], "%zz%4");  // broken escapes are kept as they are
  std::string many;
  for (int i = 0; i < 2000; ++i)
    many += "k" + std::to_string(i) + "=v&";
  EXPECT_EQ(parse_form(many).size(), 1000u);  // bounded

  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=----abc"), std::optional<std::string>("----abc"));
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"q r\""), std::optional<std::string>("q r"));
  EXPECT_FALSE(multipart_boundary("application/json"));
  const std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\ntv\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"a.torrent\"\r\n"
      "Content-Type: application/x-bittorrent\r\n\r\nd4:infoe\r\n--B--\r\n";
  auto parts = parse_multipart(body, "B");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "category");
  EXPECT_EQ((*parts)[0].data, "tv");
  EXPECT_EQ((*parts)[1].filename, "a.torrent");
  EXPECT_EQ((*parts)[1].content_type, "application/x-bittorrent");
  EXPECT_EQ((*parts)[1].data, "d4:infoe");
  EXPECT_FALSE(parse_multipart("--B\r\nno end", "B"));
  EXPECT_FALSE(parse_multipart(body, "C"));

  EXPECT_EQ(cookie_value("a=1; SID=xyz; b=2", "SID"), std::optional<std::string>("xyz"));
  EXPECT_FALSE(cookie_value("SIDX=1", "SID"));
}

TEST(DaemonFeed, ParsesRssAndAtomAndFilters) {
  auto rss = parse_feed(R"(<rss><channel><title>x</title>
    <item><title>A &amp; B &#233;</title><link>http://h/a.torrent</link><guid isPermaLink="false">g1</guid></item>
    <item><title><![CDATA[C <raw>]]></title><enclosure url="http://h/c.torrent" length="1" type="x"/></item>
    <item><title>no link</title></item>
    </channel></rss>)");
  ASSERT_EQ(rss.size(), 2u);
  EXPECT_EQ(rss[0].title, "A & B \xc3\xa9");
  EXPECT_EQ(rss[0].link, "http://h/a.torrent");
  EXPECT_EQ(rss[0].id, "g1");
  EXPECT_EQ(rss[1].title, "C <raw>");
  EXPECT_EQ(rss[1].link, "http://h/c.torrent");
  EXPECT_EQ(rss[1].id, "http://h/c.torrent");  // no guid: the link is the id
  auto atom = parse_feed(R"(<feed><entry><title>T</title><id>i</id><link href="http://h/page"/>
    <link rel="enclosure" href="magnet:?xt=urn:btih:00&amp;dn=x"/></entry></feed>)");
  ASSERT_EQ(atom.size(), 1u);
  EXPECT_EQ(atom[0].link, "magnet:?xt=urn:btih:00&dn=x");
  auto f = feed_filter::make("^show\\.s01", "sample");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->matches("Show.S01E01.mkv"));
  EXPECT_FALSE(f->matches("Show.S01E01.SAMPLE.mkv"));
  EXPECT_FALSE(f->matches("Other.mkv"));
  EXPECT_FALSE(feed_filter::make("([", ""));
  auto cfg = parse_config(R"({"feeds":[{"url":"http://h/f.xml","include":"x","interval":1,"labels":["tv"]}]})",
                          daemon_config{});
  ASSERT_TRUE(cfg);
  ASSERT_EQ(cfg->feeds.size(), 1u);
  EXPECT_EQ(cfg->feeds[0].interval, 10u);  // at least 10 s
  EXPECT_FALSE(parse_config(R"({"feeds":[{"include":"x"}]})", daemon_config{}));
}

TEST(DaemonFeed, ReadsWhatTorrentFeedsSayOfTheContent) {
  const std::string h1 = "0123456789abcdef0123456789abcdef01234567";
  const std::string m1 = "magnet:?xt=urn:btih:" + h1 + "&dn=b";
  auto items = parse_feed(R"(<rss xmlns:torrent="http://xmlns.ezrss.it/0.1/"><channel>
    <item><title>a</title><link>http://h/a.torrent</link><torrent:contentLength>1234567</torrent:contentLength>
      <torrent:infoHash>0123456789ABCDEF0123456789ABCDEF01234567</torrent:infoHash></item>
    <item><title>b</title><link>http://h/b.torrent</link><contentLength>99</contentLength>
      <torrent:magnetURI>magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&amp;dn=b</torrent:magnetURI></item>
    <item><title>c</title><link>http://h/c.torrent</link><torrent:contentLength>-5</torrent:contentLength>
      <torrent:infoHash>not a hash</torrent:infoHash></item>
    </channel></rss>)");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].size, 1234567);
  EXPECT_EQ(items[0].info_hash, h1);  // lowercased
  EXPECT_EQ(items[0].magnet_uri, "");
  EXPECT_EQ(items[1].size, 99);  // without the namespace's prefix too
  EXPECT_EQ(items[1].info_hash, "");
  EXPECT_EQ(items[1].magnet_uri, m1);
  EXPECT_EQ(items[2].size, -1);  // not a size: unknown
  EXPECT_EQ(items[2].info_hash, "");
}

TEST(DaemonFeed, RssRulesAsQbittorrentReadsThem) {
  auto head = parse_feed_head(R"(<rss><channel><title>My &amp; feed</title><lastBuildDate>Mon, 01 Jan 2024 10:00:00 GMT
    </lastBuildDate><item><title>x</title><link>http://h/x</link><pubDate>Tue, 02 Jan 2024</pubDate></item></channel></rss>)");
  EXPECT_EQ(head.title, "My & feed");
  EXPECT_EQ(head.last_build_date, "Mon, 01 Jan 2024 10:00:00 GMT");
  EXPECT_EQ(parse_feed("<item><title>x</title><link>http://h/x</link><pubDate>d1</pubDate></item>").at(0).date, "d1");

  auto rule = parse_rss_rule(R"({"mustContain":"show s0?e*|movie","mustNotContain":"sample|trailer",
      "affectedFeeds":["http://h/f.xml"],"addPaused":true,"assignedCategory":"tv","torrentContentLayout":null})");
  ASSERT_TRUE(rule) << rule.err().detail;
  EXPECT_TRUE(rule->enabled);  // qBittorrent's default
  EXPECT_EQ(rule->add_paused, std::optional<bool>(true));
  auto [include, exclude] = rss_rule_patterns(*rule);
  auto filter = feed_filter::make(include, exclude);
  ASSERT_TRUE(filter) << include;
  EXPECT_TRUE(filter->matches("Show.S01E02.mkv"));  // both words, in any order, any case
  EXPECT_TRUE(filter->matches("S02E01 of the show"));
  EXPECT_TRUE(filter->matches("A Movie (2020)"));       // the other alternative
  EXPECT_FALSE(filter->matches("Show.S01E02.SAMPLE"));  // excluded
  EXPECT_FALSE(filter->matches("Show.X01"));            // s0? needs its digit
  EXPECT_FALSE(filter->matches("Other"));
  // Regex characters in wildcard mode are plain characters.
  rss_rule plain;
  plain.must_contain = "a+b (1)";
  auto [pi, pe] = rss_rule_patterns(plain);
  auto pf = feed_filter::make(pi, pe);
  ASSERT_TRUE(pf) << pi;
  EXPECT_TRUE(pf->matches("x a+b y (1)"));
  EXPECT_FALSE(pf->matches("aab 1"));
  // Round trip through rss_rule_json, and the wrong types named.
  auto back = parse_rss_rule(json::serialize(rss_rule_json(*rule)));
  ASSERT_TRUE(back);
  EXPECT_EQ(json::serialize(rss_rule_json(*back)), json::serialize(rss_rule_json(*rule)));
  auto wrong = parse_rss_rule(R"({"affectedFeeds":"http://h/f.xml"})");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.err().detail.find("affectedFeeds"), std::string::npos);
  EXPECT_FALSE(parse_rss_rule("[]"));
  EXPECT_FALSE(parse_rss_rule(R"({"mustContain":")" + std::string(3000, 'x') + "\"}"));
  rss_state st;
  st.feeds.push_back({"F", "http://h/f.xml"});
  st.rules["tv"] = *rule;
  auto st2 = parse_rss_state(rss_state_json(st));
  ASSERT_TRUE(st2);
  EXPECT_EQ(rss_state_json(*st2), rss_state_json(st));
}

TEST(DaemonConfig, ReadsSavesAndRefusesWrongTypes) {
  temp_dir dir;
  daemon_config c;
  c.download_dir = "/data/dl";
  c.speed_limit_down = 250000;
  c.speed_limit_down_enabled = true;
  c.host_whitelist = {"nas.lan"};
  c.rpc_password_hash = hash_password("secret");
  const auto file = dir.path / "settings.json";
  ASSERT_FALSE(save_config(file, c));
  auto back = load_config(file, daemon_config{});
  ASSERT_TRUE(back) << back.err().detail;
  EXPECT_EQ(back->download_dir, fs::path("/data/dl"));
  EXPECT_EQ(back->speed_limit_down, 250000u);
  EXPECT_TRUE(back->speed_limit_down_enabled);
  EXPECT_EQ(back->host_whitelist, std::vector<std::string>{"nas.lan"});
  EXPECT_EQ(crypto_pwhash_str_verify(back->rpc_password_hash.c_str(), "secret", 6), 0);
  // A reload over the loaded settings replaces lists rather than appending to them.
  auto again = load_config(file, *back);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->host_whitelist.size(), 1u);

  auto wrong = parse_config(R"({"rpc-port":"9091"})", daemon_config{});
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.err().detail.find("rpc-port"), std::string::npos);
  EXPECT_FALSE(parse_config("not json", daemon_config{}));
  EXPECT_FALSE(parse_config("[]", daemon_config{}));
}

// A daemon on loopback ports chosen by the OS; requests go straight to handle_http.
struct daemon_fixture {
  temp_dir dir;
  asio::io_context io;
  std::unique_ptr<shoal::daemon::daemon> d;
  tcp::endpoint local{asio::ip::make_address("127.0.0.1"), 40000};

  explicit daemon_fixture(const std::function<void(daemon_config&)>& tweak = {}) { start(tweak); }
  void start(const std::function<void(daemon_config&)>& tweak = {}) {
    daemon_config c;
    c.state_dir = dir.path / "state";
    c.download_dir = dir.path / "dl";
    c.rpc_port = 0;
    c.peer_port = 0;
    c.local = true;
    c.dht = false;
    c.lsd = false;
    c.port_mapping = false;
    if (tweak) tweak(c);
    d = std::make_unique<shoal::daemon::daemon>(io, c);
    auto r = d->start();
    ASSERT_TRUE(r) << r.err().detail;
  }
  request post(const std::string& body, const std::string& host = "127.0.0.1:9091", bool with_sid = true) {
    request req{http::verb::post, "/transmission/rpc", 11};
    req.set(http::field::host, host);
    if (with_sid) req.set("X-Transmission-Session-Id", d->session_id());
    req.body() = body;
    req.prepare_payload();
    return req;
  }
  json::value rpc(const std::string& body) {
    auto r = d->handle_http(post(body), local);
    EXPECT_EQ(r.resp.result_int(), 200) << r.resp.body();
    return json::parse(r.resp.body());
  }
};

std::string torrent_bytes(const fs::path& root, const std::string& name, std::size_t size, std::uint64_t seed) {
  shoal::testing::write_file(root / name, shoal::testing::random_bytes(size, seed));
  create_options opt;
  opt.version = torrent_version::v1;
  opt.piece_length = 32 * 1024;
  opt.threads = 1;
  auto bytes = create_torrent(root / name, opt);
  EXPECT_TRUE(bytes);
  return *bytes;
}

std::string add_body(const std::string& metainfo, const std::string& extra = "") {
  return R"({"method":"torrent-add","arguments":{"paused":true,"metainfo":")" + base64_encode(metainfo) + "\"" + extra +
         "}}";
}

TEST(Daemon, SecurityRulesInTransmissionsOrder) {
  daemon_fixture f;
  const auto t = torrent_bytes(f.dir.path / "src", "a.bin", 100000, 1);
  // No session id: 409 with the id, nothing run.
  auto r = f.d->handle_http(f.post(add_body(t), "127.0.0.1:9091", false), f.local);
  EXPECT_EQ(r.resp.result_int(), 409);
  EXPECT_EQ(std::string(r.resp["X-Transmission-Session-Id"]), f.d->session_id());
  // A foreign Host (DNS rebinding): 421, even with the right session id.
  r = f.d->handle_http(f.post(add_body(t), "attacker.example:9091"), f.local);
  EXPECT_EQ(r.resp.result_int(), 421);
  // A remote address with no password set: 403.
  r = f.d->handle_http(f.post(add_body(t)), tcp::endpoint(asio::ip::make_address("192.0.2.7"), 5000));
  EXPECT_EQ(r.resp.result_int(), 403);
  // None of them added anything.
  EXPECT_TRUE(f.d->ses().status_all().empty());
  // Loopback names are always allowed.
  for (const char* host : {"localhost:9091", "[::1]:9091", "127.0.0.1"}) {
    auto ok = f.d->handle_http(f.post(R"({"method":"session-stats"})", host), f.local);
    EXPECT_EQ(ok.resp.result_int(), 200) << host;
  }
}

TEST(Daemon, PasswordAndBruteForceGuard) {
  daemon_fixture f([](daemon_config& c) {
    c.rpc_username = "u";
    c.rpc_password_hash = hash_password("right");
  });
  auto with_auth = [&](const std::string& user_pass) {
    auto req = f.post(R"({"method":"session-stats"})");
    req.set(http::field::authorization, "Basic " + base64_encode(user_pass));
    return f.d->handle_http(req, f.local).resp;
  };
  EXPECT_EQ(with_auth("u:right").result_int(), 200);
  EXPECT_EQ(f.d->handle_http(f.post(R"({"method":"session-stats"})"), f.local).resp.result_int(), 401);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(with_auth("u:wrong").result_int(), 401);
  // The fourth failure starts the guard's delay: even the right password waits now.
  EXPECT_EQ(with_auth("u:wrong").result_int(), 401);
  auto blocked = with_auth("u:right");
  EXPECT_EQ(blocked.result_int(), 429);
  EXPECT_FALSE(std::string(blocked[http::field::retry_after]).empty());
  // With a password set, another machine may log in, over HTTPS only: over plain HTTP the
  // password would have crossed the network in clear, and the answer says where to go.
  auto remote = f.post(R"({"method":"session-stats"})");
  remote.set(http::field::authorization, "Basic " + base64_encode("u:right"));
  const tcp::endpoint other(asio::ip::make_address("192.0.2.8"), 1);
  auto clear = f.d->handle_http(remote, other, false).resp;
  EXPECT_EQ(clear.result_int(), 403);
  EXPECT_NE(clear.body().find("https://"), std::string::npos) << clear.body();
  EXPECT_EQ(f.d->handle_http(remote, other, true).resp.result_int(), 200);
}

TEST(Daemon, AddGetRemoveAndRestart) {
  daemon_fixture f;
  const auto t = torrent_bytes(f.dir.path / "src", "a.bin", 100000, 2);
  auto added = f.rpc(add_body(t, R"(,"labels":["tv"])"));
  ASSERT_EQ(added.at("result"), json::value("success")) << json::serialize(added);
  const auto& ta = added.at("arguments").at("torrent-added");
  EXPECT_EQ(ta.at("id"), json::value(1));
  EXPECT_EQ(ta.at("name"), json::value("a.bin"));
  const std::string hash(ta.at("hashString").as_string());
  auto dup = f.rpc(add_body(t));
  EXPECT_TRUE(dup.at("arguments").as_object().contains("torrent-duplicate"));

  auto outside = f.rpc(add_body(t, R"(,"download-dir":"/etc")"));
  EXPECT_NE(std::string(outside.at("result").as_string()).find("outside the allowed"), std::string::npos);
  auto junk = f.rpc(R"({"method":"torrent-add","arguments":{"metainfo":"ZGU="}})");  // "de": not a torrent
  EXPECT_NE(std::string(junk.at("result").as_string()).find("not a valid .torrent"), std::string::npos);

  auto got = f.rpc(R"({"method":"torrent-get","arguments":{"ids":[1],"fields":["id","name","hashString","status",
      "labels","totalSize","downloadDir","files","wanted","priorities"]}})");
  const auto& one = got.at("arguments").at("torrents").at(0);
  EXPECT_EQ(one.at("hashString"), json::value(hash));
  EXPECT_EQ(one.at("status"), json::value(0));  // added paused
  EXPECT_EQ(one.at("labels"), json::parse(R"(["tv"])"));
  EXPECT_EQ(one.at("totalSize"), json::value(100000));
  EXPECT_EQ(one.at("downloadDir"), json::value((f.dir.path / "dl").string()));
  EXPECT_EQ(one.at("files").at(0).at("name"), json::value("a.bin"));
  EXPECT_EQ(one.at("wanted"), json::parse("[1]"));
  // By hash too.
  auto by_hash = f.rpc(R"({"method":"torrent-get","arguments":{"ids":[")" + hash + R"("],"fields":["id"]}})");
  EXPECT_EQ(by_hash.at("arguments").at("torrents").as_array().size(), 1u);

  // A restart brings it back with its id, labels and state; it was never lost.
  f.d->shutdown();
  f.d.reset();
  f.start();
  auto again = f.rpc(R"({"method":"torrent-get","arguments":{"fields":["id","hashString","labels","status"]}})");
  ASSERT_EQ(again.at("arguments").at("torrents").as_array().size(), 1u) << json::serialize(again);
  const auto& back = again.at("arguments").at("torrents").at(0);
  EXPECT_EQ(back.at("hashString"), json::value(hash));
  EXPECT_EQ(back.at("labels"), json::parse(R"(["tv"])"));
  EXPECT_EQ(back.at("status"), json::value(0));

  auto removed = f.rpc(R"({"method":"torrent-remove","arguments":{"ids":[1],"delete-local-data":true}})");
  EXPECT_EQ(removed.at("result"), json::value("success"));
  EXPECT_TRUE(f.d->ses().status_all().empty());
  for (const auto& e : fs::directory_iterator(f.dir.path / "state" / "torrents"))
    EXPECT_NE(e.path().filename().string().rfind(hash, 0), 0u) << e.path();
  f.d->shutdown();
  f.d.reset();
  f.start();
  EXPECT_TRUE(f.d->ses().status_all().empty());
}

TEST(Daemon, QbittorrentApiAddInfoAndSession) {
  daemon_fixture f([](daemon_config& c) {
    c.rpc_username = "u";
    c.rpc_password_hash = hash_password("pw");
  });
  const auto t = torrent_bytes(f.dir.path / "src", "q.bin", 40000, 5);
  auto call = [&](http::verb v, const std::string& target, const std::string& body = "", const std::string& cookie = "",
                  const std::string& ctype = "application/x-www-form-urlencoded") {
    request req{v, target, 11};
    req.set(http::field::host, "127.0.0.1:9091");
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    if (!body.empty()) req.set(http::field::content_type, ctype);
    req.body() = body;
    req.prepare_payload();
    return f.d->handle_http(req, f.local).resp;
  };
  EXPECT_EQ(call(http::verb::get, "/api/v2/torrents/info").result_int(), 403);  // no SID
  EXPECT_EQ(call(http::verb::post, "/api/v2/auth/login", "username=u&password=no").body(), "Fails.");
  auto login = call(http::verb::post, "/api/v2/auth/login", "username=u&password=pw");
  ASSERT_EQ(login.body(), "Ok.");
  const std::string set_cookie(login[http::field::set_cookie]);
  ASSERT_EQ(set_cookie.rfind("SID=", 0), 0u);
  const auto sid = set_cookie.substr(0, set_cookie.find(';'));
  EXPECT_EQ(call(http::verb::post, "/api/v2/torrents/createCategory", "category=tv", sid).result_int(), 200);
  const std::string mp =
      "--X\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\ntv\r\n"
      "--X\r\nContent-Disposition: form-data; name=\"paused\"\r\n\r\ntrue\r\n"
      "--X\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"q.torrent\"\r\n\r\n" +
      t + "\r\n--X--\r\n";
  auto added = call(http::verb::post, "/api/v2/torrents/add", mp, sid, "multipart/form-data; boundary=X");
  EXPECT_EQ(added.body(), "Ok.");
  auto info = json::parse(call(http::verb::get, "/api/v2/torrents/info?category=tv", "", sid).body());
  ASSERT_EQ(info.as_array().size(), 1u);
  EXPECT_EQ(info.at(0).at("name"), json::value("q.bin"));
  EXPECT_EQ(info.at(0).at("state"), json::value("pausedDL"));
  EXPECT_EQ(info.at(0).at("category"), json::value("tv"));
  // The category is a label Transmission clients see too.
  auto treq = f.post(R"({"method":"torrent-get","arguments":{"fields":["labels"]}})");
  treq.set(http::field::authorization, "Basic " + base64_encode("u:pw"));  // the RPC takes Basic, not the SID
  auto tr = json::parse(f.d->handle_http(treq, f.local).resp.body());
  EXPECT_EQ(tr.at("arguments").at("torrents").at(0).at("labels"), json::parse(R"(["tv"])"));
  // A foreign Referer is refused, even with the SID.
  request csrf{http::verb::post, "/api/v2/torrents/delete", 11};
  csrf.set(http::field::host, "127.0.0.1:9091");
  csrf.set(http::field::cookie, sid);
  csrf.set(http::field::referer, "http://evil.example/x");
  csrf.body() = "hashes=all&deleteFiles=true";
  csrf.prepare_payload();
  EXPECT_EQ(f.d->handle_http(csrf, f.local).resp.result_int(), 401);
  EXPECT_EQ(f.d->ses().status_all().size(), 1u);
  // Logged out, the SID opens nothing.
  call(http::verb::post, "/api/v2/auth/logout", "", sid);
  EXPECT_EQ(call(http::verb::get, "/api/v2/torrents/info", "", sid).result_int(), 403);
}

TEST(Daemon, QbittorrentRssFeedsAndRulesSurviveRestart) {
  daemon_fixture f;
  auto call = [&](http::verb v, const std::string& target, const std::string& body = "") {
    request req{v, target, 11};
    req.set(http::field::host, "127.0.0.1:9091");
    if (!body.empty()) req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.body() = body;
    req.prepare_payload();
    return f.d->handle_http(req, f.local).resp;
  };
  auto get_json = [&](const std::string& target) { return json::parse(call(http::verb::get, target).body()); };
  const std::string feed = "http://127.0.0.1:1/feed.xml";
  const std::string feed_enc = "http%3A%2F%2F127.0.0.1%3A1%2Ffeed.xml";
  EXPECT_EQ(call(http::verb::get, "/api/v2/rss/addFeed?url=" + feed_enc).result_int(), 405);  // POST only
  ASSERT_EQ(call(http::verb::post, "/api/v2/rss/addFeed", "url=" + feed_enc + "&path=Shows").result_int(), 200);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/addFeed", "url=" + feed_enc + "&path=Again").result_int(), 409);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/addFeed", "url=file%3A%2F%2F%2Fetc%2Fpasswd").result_int(), 409);
  // A feed at the daemon's own port would have it call its API: refused as torrent-add does.
  auto self = call(http::verb::post, "/api/v2/rss/addFeed",
                   "url=http%3A%2F%2Flocalhost%3A" + std::to_string(f.d->rpc_port()) + "%2Fapi%2Fv2%2Fapp%2Fversion");
  EXPECT_EQ(self.result_int(), 409);
  EXPECT_NE(self.body().find("own RPC port"), std::string::npos) << self.body();

  const std::string def = R"({"enabled":true,"mustContain":"show s01","mustNotContain":"sample","affectedFeeds":[")" +
                          feed + R"("],"assignedCategory":"tv","addPaused":true})";
  auto form = [](const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(b);
    }
    return out;
  };
  ASSERT_EQ(call(http::verb::post, "/api/v2/rss/setRule", "ruleName=tv&ruleDef=" + form(def)).result_int(), 200);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/setRule", "ruleName=bad&ruleDef=" + form("{nope")).result_int(), 400);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/setRule",
                 "ruleName=bad&ruleDef=" + form(R"({"useRegex":true,"mustContain":"(["})"))
                .result_int(),
            400);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/setRule", "ruleName=bad&ruleDef=" + form(R"({"savePath":"/etc"})"))
                .result_int(),
            400);

  auto check = [&] {
    auto items = get_json("/api/v2/rss/items");
    ASSERT_EQ(items.as_object().size(), 1u) << json::serialize(items);
    EXPECT_EQ(items.at("Shows").at("url"), json::value(feed));
    EXPECT_EQ(items.at("Shows").at("uid").as_string().size(), 38u);
    auto data = get_json("/api/v2/rss/items?withData=true");
    EXPECT_TRUE(data.at("Shows").at("articles").is_array());
    EXPECT_TRUE(data.at("Shows").at("hasError").is_bool());
    auto rules = get_json("/api/v2/rss/rules");
    ASSERT_EQ(rules.as_object().size(), 1u) << json::serialize(rules);
    const auto& tv = rules.at("tv");
    EXPECT_EQ(tv.at("mustContain"), json::value("show s01"));
    EXPECT_EQ(tv.at("mustNotContain"), json::value("sample"));
    EXPECT_EQ(tv.at("affectedFeeds"), json::array{json::value(feed)});
    EXPECT_EQ(tv.at("assignedCategory"), json::value("tv"));
    EXPECT_EQ(tv.at("addPaused"), json::value(true));
    EXPECT_EQ(tv.at("enabled"), json::value(true));
  };
  check();
  // A restart from the same state folder: both back, from STATE/rss.json.
  f.d->shutdown();
  f.d.reset();
  EXPECT_TRUE(fs::exists(f.dir.path / "state" / "rss.json"));
  f.start();
  check();

  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/renameRule", "ruleName=tv&newRuleName=tv2").result_int(), 200);
  EXPECT_TRUE(get_json("/api/v2/rss/rules").as_object().contains("tv2"));
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/removeRule", "ruleName=tv2").result_int(), 200);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/removeItem", "path=Shows").result_int(), 200);
  EXPECT_EQ(call(http::verb::post, "/api/v2/rss/removeItem", "path=Shows").result_int(), 409);
  EXPECT_TRUE(get_json("/api/v2/rss/items").as_object().empty());
  EXPECT_TRUE(get_json("/api/v2/rss/rules").as_object().empty());
  f.d->shutdown();
  f.d.reset();
  f.start();
  EXPECT_TRUE(get_json("/api/v2/rss/items").as_object().empty());
  EXPECT_TRUE(get_json("/api/v2/rss/rules").as_object().empty());
}

TEST(Daemon, QbittorrentApiTakesTheWebUisBasicLogin) {
  daemon_fixture f([](daemon_config& c) {
    c.rpc_username = "u";
    c.rpc_password_hash = hash_password("pw");
  });
  auto call = [&](const std::string& auth, bool referer) {
    request req{http::verb::get, "/api/v2/rss/items", 11};
    req.set(http::field::host, "127.0.0.1:9091");
    req.set(http::field::authorization, "Basic " + base64_encode(auth));
    if (referer) req.set(http::field::referer, "http://127.0.0.1:9091/");
    req.prepare_payload();
    return f.d->handle_http(req, f.local).resp.result_int();
  };
  EXPECT_EQ(call("u:pw", true), 200);
  EXPECT_EQ(call("u:wrong", true), 403);
  // Without an Origin or Referer (a request that hid where it came from): the SID only.
  EXPECT_EQ(call("u:pw", false), 403);
}

TEST(Daemon, JsonRpcDialectAndNotifications) {
  daemon_fixture f;
  const auto t = torrent_bytes(f.dir.path / "src", "b.bin", 50000, 3);
  auto added = f.rpc(R"({"jsonrpc":"2.0","method":"torrent_add","params":{"paused":true,"metainfo":")" +
                     base64_encode(t) + R"("},"id":1})");
  EXPECT_EQ(added.at("id"), json::value(1));
  EXPECT_TRUE(added.at("result").as_object().contains("torrent_added")) << json::serialize(added);
  auto got = f.rpc(R"({"jsonrpc":"2.0","method":"torrent_get","params":{"fields":["hash_string","percent_done",
      "file_stats"]},"id":2})");
  const auto& one = got.at("result").at("torrents").at(0);
  EXPECT_TRUE(one.as_object().contains("hash_string"));
  EXPECT_TRUE(one.at("file_stats").at(0).as_object().contains("bytes_completed"));
  auto sess =
      f.rpc(R"({"jsonrpc":"2.0","method":"session_get","params":{"fields":["download_dir","rpc_version_semver"]},
      "id":3})");
  EXPECT_EQ(sess.at("result").at("download_dir"), json::value((f.dir.path / "dl").string()));
  // A notification runs and gets no body (HTTP 204).
  auto r = f.d->handle_http(f.post(R"({"jsonrpc":"2.0","method":"torrent_start","params":{"ids":[1]}})"), f.local);
  EXPECT_EQ(r.resp.result_int(), 204);
  // A batch: answers in order, the notification left out.
  auto batch = f.rpc(R"([{"jsonrpc":"2.0","method":"nope","id":"x"},{"jsonrpc":"2.0","method":"torrent_stop"},
      {"jsonrpc":"2.0","method":"session_stats","id":"y"}])");
  ASSERT_EQ(batch.as_array().size(), 2u);
  EXPECT_EQ(batch.at(0).at("error").at("code"), json::value(-32601));
  EXPECT_EQ(batch.at(1).at("id"), json::value("y"));
  auto parse_error = f.rpc(R"({"jsonrpc":"2.0","method":)");
  EXPECT_EQ(parse_error.at("error").at("code"), json::value(-32700));
}

}  // namespace
