// The tracker server's codecs, swarm store and request logic (tracker/server_codec.hpp,
// swarm_store.hpp, service.hpp). Replies are checked with the client-side parsers of
// tracker/announce.hpp, so both ends of each protocol meet here.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "core/bencode.hpp"
#include "tracker/announce.hpp"
#include "tracker/server_codec.hpp"
#include "tracker/service.hpp"
#include "tracker/swarm_store.hpp"

using namespace shoal;
using namespace shoal::tracker;
namespace ip = boost::asio::ip;

namespace {

sha1_digest hash_of(std::uint8_t fill) {
  sha1_digest h;
  h.fill(fill);
  return h;
}

// Every byte value that needs escaping, and some that do not.
sha1_digest binary_hash() {
  sha1_digest h;
  const std::uint8_t bytes[20] = {0x00, 0xff, 0x25, 0x26, 0x3d, 0x2b, 0x20, 0x3f, 0x23, 0x80,
                                  'a',  'Z',  '9',  '-',  '.',  '_',  '~',  0x0a, 0x0d, 0x7f};
  std::copy(std::begin(bytes), std::end(bytes), h.begin());
  return h;
}

std::string pct_all(std::string_view raw) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    out += '%';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

const std::string peer_id_text = "-XX0001-abcdefghijkl";

std::string query_with(const std::string& extra) {
  return "info_hash=" + pct_all(as_view(hash_of(0xab))) + "&peer_id=" + peer_id_text + "&port=6881&left=100" + extra;
}

}  // namespace

// --- HTTP query strings --------------------------------------------------------------

TEST(TrackerServerCodec, ParsesAFullAnnounce) {
  const sha1_digest h = binary_hash();
  const std::string q = "info_hash=" + pct_all(as_view(h)) + "&peer_id=%2DXX0001%2Dabcdefghijkl&port=51413" +
                        "&uploaded=10&downloaded=20&left=30&event=started&numwant=80&compact=0&no_peer_id=1" +
                        "&key=ABCDEF01&ip=10.9.9.9&supportcrypto=1";
  auto r = parse_announce_query(q);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->req.info_hash, h);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->req.peer_id.data()), 20), peer_id_text);
  EXPECT_EQ(r->req.port, 51413);
  EXPECT_EQ(r->req.uploaded, 10u);
  EXPECT_EQ(r->req.downloaded, 20u);
  EXPECT_EQ(r->req.left, 30u);
  EXPECT_EQ(r->req.ev, event::started);
  EXPECT_TRUE(r->numwant_given);
  EXPECT_EQ(r->req.numwant, 80u);
  EXPECT_FALSE(r->compact);
  EXPECT_TRUE(r->no_peer_id);
}

TEST(TrackerServerCodec, ReadsWhatTheClientWrites) {
  announce_request req;
  req.info_hash = binary_hash();
  std::copy(peer_id_text.begin(), peer_id_text.end(), req.peer_id.begin());
  req.peer_id[19] = 0xfe;  // binary peer ids happen too
  req.port = 6881;
  req.uploaded = 1ull << 40;
  req.downloaded = 5;
  req.left = 0;
  req.ev = event::completed;
  req.numwant = 0;
  const std::string url = announce_url("http://127.0.0.1:6969/announce", req);
  const std::string target = url.substr(url.find("/announce"));
  const auto parts = split_target(target);
  EXPECT_EQ(parts.path, "/announce");
  auto r = parse_announce_query(parts.query);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->req.info_hash, req.info_hash);
  EXPECT_EQ(r->req.peer_id, req.peer_id);
  EXPECT_EQ(r->req.port, req.port);
  EXPECT_EQ(r->req.uploaded, req.uploaded);
  EXPECT_EQ(r->req.left, 0u);
  EXPECT_EQ(r->req.ev, event::completed);
  EXPECT_TRUE(r->numwant_given);
  EXPECT_EQ(r->req.numwant, 0u);
  EXPECT_TRUE(r->compact);
  EXPECT_TRUE(r->no_peer_id);
}

TEST(TrackerServerCodec, EscapedKeysStillCount) {
  const std::string q =
      "info%5Fhash=" + pct_all(as_view(hash_of(3))) + "&peer%5fid=" + peer_id_text + "&%70ort=99&left=1";
  auto r = parse_announce_query(q);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->req.info_hash, hash_of(3));
  EXPECT_EQ(r->req.port, 99);
  auto s = parse_scrape_query("info%5Fhash=" + pct_all(as_view(hash_of(4))));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at(0), hash_of(4));
}

TEST(TrackerServerCodec, DefaultsOfAnAnnounce) {
  auto r = parse_announce_query(query_with(""));
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->req.ev, event::none);
  EXPECT_FALSE(r->numwant_given);
  EXPECT_TRUE(r->compact);
  EXPECT_FALSE(r->no_peer_id);
  for (const char* ev : {"&event=", "&event=empty", "&event=paused"}) {
    auto e = parse_announce_query(query_with(ev));
    ASSERT_TRUE(e.ok()) << ev;
    EXPECT_EQ(e->req.ev, event::none) << ev;
  }
  auto neg = parse_announce_query(query_with("&numwant=-1"));
  ASSERT_TRUE(neg.ok());
  EXPECT_FALSE(neg->numwant_given);  // negative: the tracker's default, as in BEP 15
}

TEST(TrackerServerCodec, MissingOrInvalidFieldsAreNamed) {
  const std::string ih = "info_hash=" + pct_all(as_view(hash_of(1)));
  const std::string pid = "&peer_id=" + peer_id_text;
  struct bad_case {
    std::string query, expect;
  };
  const std::vector<bad_case> cases = {
      {"", "info_hash is missing"},
      {pid + "&port=1&left=0", "info_hash is missing"},
      {ih + "&port=1&left=0", "peer_id is missing"},
      {ih + pid + "&left=0", "port is missing"},
      {ih + pid + "&port=1", "left is missing"},
      {"info_hash=" + pct_all(std::string(19, 'a')) + pid + "&port=1&left=0", "info_hash must be 20 bytes"},
      {"info_hash=" + pct_all(std::string(21, 'a')) + pid + "&port=1&left=0", "info_hash must be 20 bytes"},
      {ih + "&peer_id=short&port=1&left=0", "peer_id must be 20 bytes"},
      {ih + pid + "&port=0&left=0", "port must be 1 to 65535"},
      {ih + pid + "&port=65536&left=0", "port must be 1 to 65535"},
      {ih + pid + "&port=80x&left=0", "port must be 1 to 65535"},
      {ih + pid + "&port=1&left=-1", "left is not a number"},
      {ih + pid + "&port=1&left=", "left is not a number"},
      {ih + pid + "&port=1&left=99999999999999999999999", "left is not a number"},
      {ih + pid + "&port=1&left=0&uploaded=1e3", "uploaded is not a number"},
      {ih + pid + "&port=1&left=0&numwant=many", "numwant is not a number"},
      {ih + pid + "&port=1&left=0&event=begun", "unknown event"},
      {ih + "&" + ih + pid + "&port=1&left=0", "info_hash given twice"},
      // Binary bytes must be percent-encoded; a stray '%' is not an escape.
      {"info_hash=\xff\xfe" + pid + "&port=1&left=0", "query string is not valid"},
      {ih + pid + "&port=1&left=0&x=%G1", "query string is not valid"},
      {ih + pid + "&port=1&left=0&x=%4", "query string is not valid"},
  };
  for (const auto& c : cases) {
    auto r = parse_announce_query(c.query);
    ASSERT_FALSE(r.ok()) << c.query;
    EXPECT_NE(r.err().detail.find(c.expect), std::string::npos) << c.query << " -> " << r.err().detail;
  }
}

TEST(TrackerServerCodec, ScrapeQueries) {
  auto two = parse_scrape_query("info_hash=" + pct_all(as_view(hash_of(1))) +
                                "&info_hash=" + pct_all(as_view(hash_of(2))) + "&other=1");
  ASSERT_TRUE(two.ok()) << two.err().message();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0], hash_of(1));
  EXPECT_EQ((*two)[1], hash_of(2));

  auto none = parse_scrape_query("");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.err().detail.find("full scrapes are not supported"), std::string::npos);

  std::string q;
  for (std::size_t i = 0; i < max_scrape_hashes; ++i)
    q += (i ? "&" : "") + std::string("info_hash=") + pct_all(as_view(hash_of(static_cast<std::uint8_t>(i))));
  auto at_limit = parse_scrape_query(q);
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->size(), max_scrape_hashes);
  auto past = parse_scrape_query(q + "&info_hash=" + pct_all(as_view(hash_of(0xee))));
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.err().detail.find("more than 64"), std::string::npos);

  auto short_hash = parse_scrape_query("info_hash=abc");
  ASSERT_FALSE(short_hash.ok());
  EXPECT_NE(short_hash.err().detail.find("20 bytes"), std::string::npos);
}

TEST(TrackerServerCodec, EmptyQueries) {
  // A default string_view has a null pointer, which Boost.URL must never see (found by fuzzing).
  EXPECT_FALSE(parse_announce_query(std::string_view()).ok());
  EXPECT_FALSE(parse_scrape_query(std::string_view()).ok());
  EXPECT_NE(split_target("/announce").query.data(), nullptr);
}

TEST(TrackerServerCodec, QueriesEndWhereTheirViewEnds) {
  // A query is a view into a request buffer that goes on with more bytes (Boost.URL 1.81
  // reads up to a NUL if given the chance).
  const std::string scrape = "info_hash=" + pct_all(as_view(hash_of(2)));
  const std::string buffer = scrape + "%02%02 HTTP/1.1\r\nConnection: close\r\n\r\n";
  auto s = parse_scrape_query(std::string_view(buffer).substr(0, scrape.size()));
  ASSERT_TRUE(s.ok()) << s.err().message();
  EXPECT_EQ(s->at(0), hash_of(2));
  const std::string ann = query_with("");
  const std::string buffer2 = ann + "0000&event=stopped HTTP/1.1\r\n";
  auto a = parse_announce_query(std::string_view(buffer2).substr(0, ann.size()));
  ASSERT_TRUE(a.ok()) << a.err().message();
  EXPECT_EQ(a->req.left, 100u);
  EXPECT_EQ(a->req.ev, event::none);
}

TEST(TrackerServerCodec, SplitTarget) {
  EXPECT_EQ(split_target("/announce?a=1?b").path, "/announce");
  EXPECT_EQ(split_target("/announce?a=1?b").query, "a=1?b");
  EXPECT_EQ(split_target("/stats").path, "/stats");
  EXPECT_TRUE(split_target("/stats").query.empty());
}

// --- whitelist -----------------------------------------------------------------------

TEST(TrackerServerCodec, Whitelist) {
  const std::string text =
      "# torrents we track\n"
      "abababababababababababababababababababab\n"
      "\n"
      "  0123456789ABCDEF0123456789abcdef01234567\r\n"
      "\t# indented comment\n"
      "ffffffffffffffffffffffffffffffffffffffff";  // no final newline
  auto w = parse_whitelist(text);
  ASSERT_TRUE(w.ok()) << w.err().message();
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ((*w)[0], hash_of(0xab));
  EXPECT_EQ((*w)[1][0], 0x01);
  EXPECT_EQ((*w)[1][19], 0x67);
  EXPECT_EQ((*w)[2], hash_of(0xff));

  EXPECT_TRUE(parse_whitelist("").ok());
  for (const char* bad :
       {"abab\n", "abababababababababababababababababababab00\n", "zzabababababababababababababababababababab\n"}) {
    auto r = parse_whitelist(std::string("# ok\n\n") + bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.err().detail.find("line 3"), std::string::npos) << r.err().detail;
  }
}

// --- HTTP replies ----------------------------------------------------------------------

TEST(TrackerServerCodec, CompactReplyReadsBackInTheClient) {
  const std::string p4 = std::string("\x7f\x00\x00\x01\x1a\xe1", 6) + std::string("\x0a\x00\x00\x02\x00\x50", 6);
  std::string p6(16, '\0');
  p6[15] = 1;
  p6 += std::string("\x1a\xe2", 2);
  announce_reply rep;
  rep.interval = 600;
  rep.min_interval = 300;
  rep.complete = 3;
  rep.incomplete = 4;
  rep.downloaded = 5;
  rep.peers4 = p4;
  rep.peers6 = p6;
  const std::string body = encode_http_announce(rep, true);
  // Canonical bencode: keys sorted, peers as one string.
  EXPECT_EQ(body.substr(0, 45), "d8:completei3e10:downloadedi5e10:incompletei4");
  EXPECT_NE(body.find("5:peers12:"), std::string::npos);
  EXPECT_NE(body.find("6:peers618:"), std::string::npos);
  auto r = parse_announce_reply(body);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->interval, 600u);
  EXPECT_EQ(r->min_interval, 300u);
  EXPECT_EQ(r->complete, 3u);
  EXPECT_EQ(r->incomplete, 4u);
  ASSERT_EQ(r->peers.size(), 3u);
  EXPECT_EQ(r->peers[0], ip::tcp::endpoint(ip::make_address("127.0.0.1"), 6881));
  EXPECT_EQ(r->peers[1], ip::tcp::endpoint(ip::make_address("10.0.0.2"), 80));
  EXPECT_EQ(r->peers[2], ip::tcp::endpoint(ip::make_address("::1"), 6882));
}

TEST(TrackerServerCodec, CompactReplyIsWhatTheBencodeEncoderWrites) {
  const std::string p4("\x7f\x00\x00\x01\x1a\xe1", 6);
  const std::string p6 = std::string(15, '\0') + "\x01\x1a\xe2";
  for (int variant = 0; variant < 4; ++variant) {
    announce_reply rep;
    rep.interval = 1800;
    rep.min_interval = 900;
    rep.complete = 12345678;
    rep.incomplete = 0;
    rep.downloaded = 4294967295u;
    rep.peers4 = (variant & 1) ? std::string_view(p4) : std::string_view();
    rep.peers6 = (variant & 2) ? std::string_view(p6) : std::string_view();
    if (variant == 3) rep.warning = "swarm is full";
    bencode::dict d;
    d["interval"] = std::int64_t{1800};
    d["min interval"] = std::int64_t{900};
    d["complete"] = std::int64_t{12345678};
    d["incomplete"] = std::int64_t{0};
    d["downloaded"] = std::int64_t{4294967295};
    d["peers"] = rep.peers4;
    if (!rep.peers6.empty()) d["peers6"] = rep.peers6;
    if (!rep.warning.empty()) d["warning message"] = rep.warning;
    EXPECT_EQ(encode_http_announce(rep, true), bencode::encode(d)) << variant;
  }
}

TEST(TrackerServerCodec, DictionaryPeers) {
  const std::string p4("\x7f\x00\x00\x01\x1a\xe1", 6);
  std::string p6(16, '\0');
  p6[15] = 1;
  p6 += std::string("\x00\x50", 2);
  announce_reply rep;
  rep.peers4 = p4;
  rep.peers6 = p6;
  rep.warning = "busy";
  const std::string body = encode_http_announce(rep, false);
  EXPECT_EQ(body.find("peer id"), std::string::npos);  // peer ids are not kept
  EXPECT_EQ(body.find("peers6"), std::string::npos);   // every family in one list
  auto r = parse_announce_reply(body);
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ(r->warning, "busy");
  ASSERT_EQ(r->peers.size(), 2u);
  EXPECT_EQ(r->peers[0], ip::tcp::endpoint(ip::make_address("127.0.0.1"), 6881));
  EXPECT_EQ(r->peers[1], ip::tcp::endpoint(ip::make_address("::1"), 80));
}

TEST(TrackerServerCodec, FailureAndScrapeReplies) {
  EXPECT_EQ(encode_http_failure("no such torrent"), "d14:failure reason15:no such torrente");
  auto f = parse_announce_reply(encode_http_failure("no such torrent"));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.err().detail.find("no such torrent"), std::string::npos);

  const std::string body = encode_http_scrape({{hash_of(1), {7, 8, 9}}, {hash_of(2), {0, 1, 0}}});
  auto s1 = parse_scrape_reply(body, hash_of(1));
  ASSERT_TRUE(s1.ok()) << s1.err().message();
  EXPECT_EQ(s1->complete, 7u);
  EXPECT_EQ(s1->incomplete, 8u);
  EXPECT_EQ(s1->downloaded, 9u);
  auto s2 = parse_scrape_reply(body, hash_of(2));
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->incomplete, 1u);
  EXPECT_FALSE(parse_scrape_reply(body, hash_of(3)).ok());
  // Several at once, in the order asked; one the tracker does not list is nullopt.
  auto many = parse_scrape_replies(body, {hash_of(2), hash_of(3), hash_of(1)});
  ASSERT_TRUE(many.ok()) << many.err().message();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ((*many)[0]->incomplete, 1u);
  EXPECT_FALSE((*many)[1]);
  EXPECT_EQ((*many)[2]->complete, 7u);
  // The URL the client asks with is one the server reads back whole.
  auto url = scrape_url("http://t/x/announce?k=1", std::vector<sha1_digest>{hash_of(1), hash_of(2)});
  ASSERT_TRUE(url);
  const auto q = url->substr(url->find('?') + 1);
  auto hashes = parse_scrape_query(q);
  ASSERT_TRUE(hashes.ok()) << hashes.err().message() << " in " << *url;
  EXPECT_EQ(*hashes, (std::vector<sha1_digest>{hash_of(1), hash_of(2)}));
}

// --- UDP -----------------------------------------------------------------------------

TEST(TrackerServerCodec, UdpRequestsFromTheClient) {
  auto c = parse_udp_request(udp_connect_request(0x11223344));
  ASSERT_TRUE(c.ok()) << c.err().message();
  EXPECT_EQ(c->action, udp_action::connect);
  EXPECT_EQ(c->transaction, 0x11223344u);

  announce_request req;
  req.info_hash = binary_hash();
  std::copy(peer_id_text.begin(), peer_id_text.end(), req.peer_id.begin());
  req.port = 40000;
  req.uploaded = 1;
  req.downloaded = 2;
  req.left = 3;
  req.ev = event::stopped;
  req.numwant = 33;
  req.key = 0xdeadbeef;
  const std::string pkt = udp_announce_request(0x0102030405060708ull, 99, req);
  ASSERT_EQ(pkt.size(), udp_announce_size);
  auto a = parse_udp_request(pkt);
  ASSERT_TRUE(a.ok()) << a.err().message();
  EXPECT_EQ(a->action, udp_action::announce);
  EXPECT_EQ(a->connection_id, 0x0102030405060708ull);
  EXPECT_EQ(a->transaction, 99u);
  EXPECT_EQ(udp_transaction_of(pkt), 99u);
  EXPECT_EQ(a->announce.req.info_hash, req.info_hash);
  EXPECT_EQ(a->announce.req.peer_id, req.peer_id);
  EXPECT_EQ(a->announce.req.port, 40000);
  EXPECT_EQ(a->announce.req.uploaded, 1u);
  EXPECT_EQ(a->announce.req.downloaded, 2u);
  EXPECT_EQ(a->announce.req.left, 3u);
  EXPECT_EQ(a->announce.req.ev, event::stopped);
  EXPECT_EQ(a->announce.req.key, 0xdeadbeefu);
  EXPECT_TRUE(a->announce.numwant_given);
  EXPECT_EQ(a->announce.req.numwant, 33u);

  // num_want -1 is "the default"; BEP 41 options after byte 98 are ignored.
  std::string dflt = pkt;
  for (int i = 92; i < 96; ++i)
    dflt[static_cast<std::size_t>(i)] = '\xff';
  dflt += std::string("\x02\x05/path", 7);
  auto d = parse_udp_request(dflt);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->announce.numwant_given);
}

TEST(TrackerServerCodec, UdpMalformedRequests) {
  const std::string connect = udp_connect_request(1);
  EXPECT_FALSE(parse_udp_request(connect.substr(0, 15)).ok());
  std::string magic = connect;
  magic[0] = 'X';
  EXPECT_NE(parse_udp_request(magic).err().detail.find("protocol id"), std::string::npos);

  announce_request req;
  req.port = 1;
  const std::string ann = udp_announce_request(5, 6, req);
  EXPECT_NE(parse_udp_request(ann.substr(0, 97)).err().detail.find("shorter than 98"), std::string::npos);
  std::string port0 = ann;
  port0[96] = port0[97] = 0;
  EXPECT_NE(parse_udp_request(port0).err().detail.find("port"), std::string::npos);
  std::string bad_event = ann;
  bad_event[83] = 4;
  EXPECT_NE(parse_udp_request(bad_event).err().detail.find("unknown event"), std::string::npos);
  std::string bad_action = ann;
  bad_action[11] = 7;
  EXPECT_NE(parse_udp_request(bad_action).err().detail.find("unknown action"), std::string::npos);

  std::string scrape = ann.substr(0, 16);
  scrape[11] = 2;
  EXPECT_FALSE(parse_udp_request(scrape).ok());  // no info-hash at all
  EXPECT_FALSE(parse_udp_request(scrape + std::string(30, 'a')).ok());
  auto at_limit = parse_udp_request(scrape + std::string(20 * max_udp_scrape_hashes, 'a'));
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->scrape_hashes.size(), 20 * max_udp_scrape_hashes);
  EXPECT_FALSE(parse_udp_request(scrape + std::string(20 * (max_udp_scrape_hashes + 1), 'a')).ok());
}

TEST(TrackerServerCodec, UdpRepliesReadBackInTheClient) {
  std::string out;
  encode_udp_connect(out, 42, 0xfeedfacecafebeefull);
  auto id = udp_connect_reply(out, 42);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 0xfeedfacecafebeefull);

  const std::string p4("\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\x1a\xe2", 12);
  encode_udp_announce(out, 43, 900, 5, 6, p4);
  EXPECT_EQ(out.size(), 20u + 12u);
  auto a = udp_announce_reply(out, 43, false);
  ASSERT_TRUE(a.ok()) << a.err().message();
  EXPECT_EQ(a->interval, 900u);
  EXPECT_EQ(a->incomplete, 5u);
  EXPECT_EQ(a->complete, 6u);
  ASSERT_EQ(a->peers.size(), 2u);
  EXPECT_EQ(a->peers[1], ip::tcp::endpoint(ip::make_address("127.0.0.2"), 6882));

  encode_udp_scrape(out, 44, {{1, 2, 3}, {4, 5, 6}});
  ASSERT_EQ(out.size(), 8u + 24u);
  // BEP 15 order: seeders, completed, leechers.
  EXPECT_EQ(out.substr(8, 12), std::string("\0\0\0\x01\0\0\0\x03\0\0\0\x02", 12));

  // The client's side of a scrape: what the server writes reads back, in order.
  auto sr = udp_scrape_reply(out, 44, 2);
  ASSERT_TRUE(sr.ok()) << sr.err().message();
  EXPECT_EQ((*sr)[0].complete, 1u);
  EXPECT_EQ((*sr)[0].incomplete, 2u);
  EXPECT_EQ((*sr)[0].downloaded, 3u);
  EXPECT_EQ((*sr)[1].downloaded, 6u);
  EXPECT_FALSE(udp_scrape_reply(out, 45, 2).ok()) << "another transaction's reply";
  EXPECT_FALSE(udp_scrape_reply(out, 44, 3).ok()) << "fewer entries than asked";
  const std::string req = udp_scrape_request(7, 44, {hash_of(1), hash_of(2)});
  auto parsed = parse_udp_request(req);
  ASSERT_TRUE(parsed.ok()) << parsed.err().message();
  EXPECT_EQ(parsed->action, udp_action::scrape);
  EXPECT_EQ(parsed->scrape_hashes.size(), 40u);

  encode_udp_error(out, 45, "go away");
  auto e = udp_announce_reply(out, 45, false);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().detail.find("go away"), std::string::npos);
}

TEST(TrackerServerCodec, ConnectionIds) {
  connection_secret key{};
  key[0] = 7;
  const std::string addr("\x7f\x00\x00\x01", 4);
  for (std::uint64_t issued : {0ull, 59ull, 1000ull, 1'000'000ull}) {
    const auto id = make_connection_id(key, addr, 6881, issued);
    EXPECT_TRUE(check_connection_id(key, id, addr, 6881, issued)) << issued;
    // At least two minutes, whatever the moment in its window it was made.
    EXPECT_TRUE(check_connection_id(key, id, addr, 6881, issued + 120)) << issued;
    // At most three windows.
    const std::uint64_t expiry = (issued / connection_id_window + 3) * connection_id_window;
    EXPECT_TRUE(check_connection_id(key, id, addr, 6881, expiry - 1)) << issued;
    EXPECT_FALSE(check_connection_id(key, id, addr, 6881, expiry)) << issued;
    // Only for the address and port it was given to, under this key.
    EXPECT_FALSE(check_connection_id(key, id, std::string("\x7f\x00\x00\x02", 4), 6881, issued));
    EXPECT_FALSE(check_connection_id(key, id, addr, 6882, issued));
    connection_secret other = key;
    other[15] ^= 1;
    EXPECT_FALSE(check_connection_id(other, id, addr, 6881, issued));
    for (int bit = 0; bit < 64; bit += 7)
      EXPECT_FALSE(check_connection_id(key, id ^ (1ull << bit), addr, 6881, issued)) << bit;
    // The window's low byte repeats every 256 windows; an id that old is still refused.
    EXPECT_FALSE(check_connection_id(key, id, addr, 6881, issued + 256 * connection_id_window));
  }
  const std::string v6(16, '\x01');
  const auto id6 = make_connection_id(key, v6, 1, 5);
  EXPECT_TRUE(check_connection_id(key, id6, v6, 1, 5));
  EXPECT_FALSE(check_connection_id(key, id6, v6.substr(0, 4), 1, 5));
}

// --- swarm store ---------------------------------------------------------------------

namespace {
peer_endpoint local_peer(std::uint16_t port, std::uint32_t addr = 0x7f000001) {
  return peer_endpoint::v4(addr, port);
}
std::set<std::string> entries(const std::string& compact, std::size_t step) {
  std::set<std::string> s;
  for (std::size_t i = 0; i + step <= compact.size(); i += step)
    s.insert(compact.substr(i, step));
  return s;
}
struct announcer {
  explicit announcer(swarm_store& s) : st(s) {}
  swarm_store& st;
  std::string out4, out6;
  swarm_store::announce_result go(const sha1_digest& h, const peer_endpoint& p, bool seeder, event ev = event::none,
                                  std::uint32_t numwant = 50, std::uint64_t now = 0) {
    out4.clear();
    out6.clear();
    return st.announce(h, p, ev, seeder, numwant, now, true, true, out4, out6);
  }
};
}  // namespace

TEST(TrackerSwarmStore, NeverGivesAPeerItself) {
  swarm_store st({}, 1);
  announcer a{st};
  const auto h = hash_of(1);
  auto r = a.go(h, local_peer(1000), false, event::started);
  EXPECT_EQ(r.status, swarm_store::outcome::stored);
  EXPECT_TRUE(a.out4.empty());
  EXPECT_EQ(r.swarm.incomplete, 1u);
  a.go(h, local_peer(1001), false);
  EXPECT_EQ(a.out4, std::string(local_peer(1000).compact()));
  // The same address on another port is another peer; the same endpoint is the same one.
  a.go(h, local_peer(1000), false);
  EXPECT_EQ(a.out4, std::string(local_peer(1001).compact()));
  EXPECT_EQ(st.peers(), 2u);
  for (std::uint16_t p = 2000; p < 2050; ++p)
    a.go(h, local_peer(p), false);
  for (std::uint16_t p = 2000; p < 2050; ++p) {
    a.go(h, local_peer(p), false, event::none, 10);
    const auto got = entries(a.out4, 6);
    EXPECT_EQ(a.out4.size(), 60u);
    EXPECT_EQ(got.size(), 10u);  // no duplicates
    EXPECT_EQ(got.count(std::string(local_peer(p).compact())), 0u);
  }
  // Asking for everyone gives everyone but the asker.
  a.go(h, local_peer(1000), false, event::none, 1000);
  EXPECT_EQ(a.out4.size(), 51u * 6);
  EXPECT_EQ(entries(a.out4, 6).count(std::string(local_peer(1000).compact())), 0u);
}

TEST(TrackerSwarmStore, SeedersGetLeechersOnly) {
  swarm_store st({}, 2);
  announcer a{st};
  const auto h = hash_of(2);
  a.go(h, local_peer(1), true);
  a.go(h, local_peer(2), true);
  a.go(h, local_peer(3), false);
  a.go(h, local_peer(4), true);
  EXPECT_EQ(a.out4, std::string(local_peer(3).compact()));
  auto r = a.go(h, local_peer(5), false);
  EXPECT_EQ(entries(a.out4, 6).size(), 4u);  // a leecher gets everyone else
  EXPECT_EQ(r.swarm.complete, 3u);
  EXPECT_EQ(r.swarm.incomplete, 2u);
  EXPECT_EQ(st.seeders(), 3u);
  EXPECT_EQ(st.leechers(), 2u);
}

TEST(TrackerSwarmStore, RepliesVaryOverTheSwarm) {
  swarm_store st({}, 3);
  announcer a{st};
  const auto h = hash_of(3);
  for (std::uint16_t p = 1; p <= 200; ++p)
    a.go(h, local_peer(p), false);
  std::set<std::string> seen;
  for (int i = 0; i < 40; ++i) {
    a.go(h, local_peer(1), false, event::none, 10);
    for (const auto& e : entries(a.out4, 6))
      seen.insert(e);
  }
  EXPECT_GT(seen.size(), 100u);
}

TEST(TrackerSwarmStore, StoppedAndCompleted) {
  swarm_store st({}, 4);
  announcer a{st};
  const auto h = hash_of(4);
  a.go(h, local_peer(1), false, event::started);
  a.go(h, local_peer(2), false, event::started);
  auto r = a.go(h, local_peer(1), true, event::completed);
  EXPECT_EQ(r.swarm.complete, 1u);
  EXPECT_EQ(r.swarm.incomplete, 1u);
  EXPECT_EQ(r.swarm.downloaded, 1u);
  // A repeated `completed` from a seeder is not another download.
  r = a.go(h, local_peer(1), true, event::completed);
  EXPECT_EQ(r.swarm.downloaded, 1u);
  EXPECT_EQ(st.completed(), 1u);
  r = a.go(h, local_peer(2), false, event::stopped);
  EXPECT_TRUE(a.out4.empty());  // leaving: no peers
  EXPECT_EQ(r.swarm.incomplete, 0u);
  EXPECT_EQ(st.peers(), 1u);
  a.go(h, local_peer(3), false);
  EXPECT_EQ(a.out4, std::string(local_peer(1).compact()));
  // Stopping twice, or stopping in a torrent nobody announced, changes nothing.
  a.go(h, local_peer(2), false, event::stopped);
  a.go(hash_of(99), local_peer(2), false, event::stopped);
  EXPECT_EQ(st.torrents(), 1u);
  EXPECT_EQ(st.peers(), 2u);
  const auto sc = st.scrape(h);
  EXPECT_EQ(sc.complete, 1u);
  EXPECT_EQ(sc.incomplete, 1u);
  EXPECT_EQ(sc.downloaded, 1u);
  EXPECT_EQ(st.scrape(hash_of(98)).complete, 0u);
}

TEST(TrackerSwarmStore, ExpiresSilentPeers) {
  swarm_store st({}, 5);
  announcer a{st};
  a.go(hash_of(1), local_peer(1), false, event::started, 50, 0);
  a.go(hash_of(1), local_peer(2), true, event::started, 50, 0);
  a.go(hash_of(2), local_peer(3), false, event::started, 50, 10);
  a.go(hash_of(1), local_peer(1), false, event::none, 50, 100);  // re-announces
  st.expire(119, 120);
  EXPECT_EQ(st.peers(), 3u);
  st.expire(120, 120);
  EXPECT_EQ(st.peers(), 2u);  // peer 2 is gone
  EXPECT_EQ(st.seeders(), 0u);
  st.expire(130, 120);
  EXPECT_EQ(st.torrents(), 1u);  // torrent 2 emptied and dropped
  st.expire(220, 120);
  EXPECT_EQ(st.peers(), 0u);
  EXPECT_EQ(st.torrents(), 0u);

  // Stamps are 16 bits of seconds: ages are right across the wrap.
  a.go(hash_of(1), local_peer(1), false, event::none, 50, 65530);
  st.expire(65540, 100);
  EXPECT_EQ(st.peers(), 1u);
  st.expire(65630, 100);
  EXPECT_EQ(st.peers(), 0u);
}

TEST(TrackerSwarmStore, Limits) {
  store_limits lim;
  lim.max_torrents = 2;
  lim.max_peers_per_torrent = 3;
  lim.max_peers = 4;
  swarm_store st(lim, 6);
  announcer a{st};
  for (std::uint16_t p = 1; p <= 3; ++p)
    EXPECT_EQ(a.go(hash_of(1), local_peer(p), false).status, swarm_store::outcome::stored);
  auto full = a.go(hash_of(1), local_peer(4), false);
  EXPECT_EQ(full.status, swarm_store::outcome::not_stored);
  EXPECT_EQ(a.out4.size(), 18u);  // still given peers
  EXPECT_EQ(full.swarm.incomplete, 3u);
  // Known peers may still re-announce and change state at the limit.
  EXPECT_EQ(a.go(hash_of(1), local_peer(2), true, event::completed).status, swarm_store::outcome::stored);
  EXPECT_EQ(a.go(hash_of(2), local_peer(1), false).status, swarm_store::outcome::stored);
  EXPECT_EQ(a.go(hash_of(2), local_peer(2), false).status, swarm_store::outcome::not_stored);  // 4 in all
  EXPECT_EQ(a.go(hash_of(3), local_peer(1), false).status, swarm_store::outcome::torrent_limit);
  EXPECT_EQ(st.torrents(), 2u);
  EXPECT_EQ(st.peers(), 4u);
}

TEST(TrackerSwarmStore, Ipv6PeersAndMemory) {
  swarm_store st({}, 7);
  announcer a{st};
  std::array<std::uint8_t, 16> v6{};
  v6[15] = 1;
  const auto h = hash_of(7);
  a.go(h, peer_endpoint::v6_from(v6, 1), false);
  a.go(h, local_peer(2), false);
  auto r = a.go(h, peer_endpoint::v6_from(v6, 3), false);
  EXPECT_EQ(a.out6, std::string(peer_endpoint::v6_from(v6, 1).compact()));
  EXPECT_EQ(a.out4, std::string(local_peer(2).compact()));
  EXPECT_EQ(r.swarm.incomplete, 3u);
  EXPECT_EQ(st.peers_v6(), 2u);
  // One family only when asked (UDP answers in the requester's family).
  a.out4.clear();
  a.out6.clear();
  st.announce(h, peer_endpoint::v6_from(v6, 3), event::none, false, 50, 0, false, true, a.out4, a.out6);
  EXPECT_TRUE(a.out4.empty());
  EXPECT_EQ(a.out6.size(), 18u);

  swarm_store big({}, 8);
  announcer b{big};
  for (std::uint32_t i = 0; i < 4096; ++i)
    b.go(hash_of(static_cast<std::uint8_t>(i % 4)), local_peer(static_cast<std::uint16_t>(i + 1)), false,
         event::started, 0);
  EXPECT_EQ(big.peers(), 4096u);
  // 8 bytes per IPv4 peer, with at most an eighth (and a few entries) spare on top.
  EXPECT_GE(big.peer_bytes(), 4096u * 8);
  EXPECT_LE(big.peer_bytes(), 4096u * 8 * 9 / 8 + 4 * 8 * 8);
}

// --- service -------------------------------------------------------------------------

namespace {
service make_service(std::optional<std::vector<sha1_digest>> whitelist = std::nullopt) {
  service_options o;
  o.interval = 600;
  o.whitelist = std::move(whitelist);
  connection_secret key{};
  key[3] = 9;
  return service(o, key, 42);
}
const ip::address loopback = ip::make_address("127.0.0.1");
std::string announce_target(const sha1_digest& h, int port, const std::string& extra = "") {
  return "/announce?" + std::string("info_hash=") + pct_all(as_view(h)) + "&peer_id=" + peer_id_text +
         "&port=" + std::to_string(port) + "&left=5" + extra;
}
}  // namespace

TEST(TrackerService, HttpAnnounceScrapeAndStats) {
  auto svc = make_service();
  auto r1 = svc.handle_http(announce_target(hash_of(1), 1000), loopback, 0);
  EXPECT_EQ(r1.status, 200u);
  auto r2 = svc.handle_http(announce_target(hash_of(1), 1001), ip::make_address("::ffff:127.0.0.1"), 1);
  auto parsed = parse_announce_reply(r2.body);
  ASSERT_TRUE(parsed.ok()) << parsed.err().message();
  EXPECT_EQ(parsed->interval, 600u);
  ASSERT_EQ(parsed->peers.size(), 1u);  // the v4-mapped requester is stored as IPv4 and not given itself
  EXPECT_EQ(parsed->peers[0], ip::tcp::endpoint(loopback, 1000));

  auto scrape = svc.handle_http("/scrape?info_hash=" + pct_all(as_view(hash_of(1))), loopback, 2);
  auto s = parse_scrape_reply(scrape.body, hash_of(1));
  ASSERT_TRUE(s.ok()) << s.err().message();
  EXPECT_EQ(s->incomplete, 2u);

  auto bad = svc.handle_http("/announce?port=1", loopback, 3);
  EXPECT_EQ(bad.status, 200u);  // failures are tracker replies, not HTTP errors
  EXPECT_NE(bad.body.find("failure reason"), std::string::npos);
  EXPECT_NE(svc.handle_http("/announce", loopback, 3).body.find("info_hash is missing"), std::string::npos);
  EXPECT_EQ(svc.handle_http("/nothing", loopback, 3).status, 404u);
  auto long_target = svc.handle_http("/announce?" + std::string(max_request_target, 'a'), loopback, 3);
  EXPECT_EQ(long_target.status, 414u);

  auto st = svc.handle_http("/stats", loopback, 77);
  EXPECT_EQ(st.content_type, "application/json");
  auto j = boost::json::parse(st.body).as_object();
  EXPECT_EQ(j["torrents"].as_int64(), 1);
  EXPECT_EQ(j["peers"].as_int64(), 2);
  EXPECT_EQ(j["leechers"].as_int64(), 2);
  EXPECT_EQ(j["announces"].as_object()["http"].as_int64(), 2);
  EXPECT_EQ(j["announces"].as_object()["udp"].as_int64(), 0);
  EXPECT_EQ(j["scrapes"].as_object()["http"].as_int64(), 1);
  EXPECT_EQ(j["failures"].as_object()["http"].as_int64(), 4);
  EXPECT_EQ(j["uptime_seconds"].as_int64(), 77);
  EXPECT_EQ(j["peer_storage_bytes"].as_int64(), 4 * 8);  // room for 4 IPv4 peers
}

TEST(TrackerService, WhitelistRefusesOtherTorrents) {
  auto svc = make_service(std::vector<sha1_digest>{hash_of(1)});
  auto ok = svc.handle_http(announce_target(hash_of(1), 1000), loopback, 0);
  EXPECT_TRUE(parse_announce_reply(ok.body).ok());
  auto no = svc.handle_http(announce_target(hash_of(2), 1000), loopback, 0);
  auto parsed = parse_announce_reply(no.body);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.err().detail.find("whitelist"), std::string::npos);
  EXPECT_EQ(svc.store().torrents(), 1u);
  EXPECT_EQ(svc.stats().not_whitelisted, 1u);
  // Scrapes leave unlisted torrents out.
  auto sc = svc.handle_http("/scrape?info_hash=" + pct_all(as_view(hash_of(2))), loopback, 0);
  EXPECT_FALSE(parse_scrape_reply(sc.body, hash_of(2)).ok());

  // Over UDP: an error packet.
  std::string out;
  ASSERT_TRUE(svc.handle_udp(udp_connect_request(1), loopback, 5000, 0, out));
  const auto conn = udp_connect_reply(out, 1);
  ASSERT_TRUE(conn.ok());
  announce_request req;
  req.info_hash = hash_of(2);
  req.port = 5000;
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(*conn, 2, req), loopback, 5000, 0, out));
  auto r = udp_announce_reply(out, 2, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().detail.find("whitelist"), std::string::npos);
}

TEST(TrackerService, UdpConversation) {
  auto svc = make_service();
  std::string out;
  const std::uint16_t sport = 7000;
  // Too short to answer: ignored. A connect with the wrong magic: ignored.
  EXPECT_FALSE(svc.handle_udp(std::string(15, '\0'), loopback, sport, 0, out));
  std::string magic = udp_connect_request(1);
  magic[1] = 'x';
  EXPECT_FALSE(svc.handle_udp(magic, loopback, sport, 0, out));

  ASSERT_TRUE(svc.handle_udp(udp_connect_request(7), loopback, sport, 100, out));
  const auto conn = udp_connect_reply(out, 7);
  ASSERT_TRUE(conn.ok());

  announce_request req;
  req.info_hash = hash_of(5);
  req.port = 6881;
  req.left = 0;
  req.ev = event::started;
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(*conn, 8, req), loopback, sport, 101, out));
  ASSERT_TRUE(udp_announce_reply(out, 8, false).ok());
  req.port = 6882;
  req.left = 10;
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(*conn, 9, req), loopback, sport, 102, out));
  auto a = udp_announce_reply(out, 9, false);
  ASSERT_TRUE(a.ok()) << a.err().message();
  EXPECT_EQ(a->interval, 600u);
  EXPECT_EQ(a->complete, 1u);
  EXPECT_EQ(a->incomplete, 1u);
  ASSERT_EQ(a->peers.size(), 1u);
  EXPECT_EQ(a->peers[0], ip::tcp::endpoint(loopback, 6881));

  // Scrape: seeders, completed, leechers per hash, in order; unknown torrents are zeros.
  std::string scrape = udp_connect_request(10).substr(0, 16);
  for (int i = 0; i < 8; ++i)
    scrape[static_cast<std::size_t>(i)] = static_cast<char>(*conn >> (56 - 8 * i));
  scrape[11] = 2;
  scrape += std::string(as_view(hash_of(5))) + std::string(as_view(hash_of(6)));
  ASSERT_TRUE(svc.handle_udp(scrape, loopback, sport, 103, out));
  ASSERT_EQ(out.size(), 8u + 24u);
  EXPECT_EQ(out.substr(8, 24), std::string("\0\0\0\x01\0\0\0\0\0\0\0\x01", 12) + std::string(12, '\0'));

  // The id is only good from the address and port it was given to, and not for ever.
  EXPECT_FALSE(svc.handle_udp(udp_announce_request(*conn, 11, req), loopback, sport, 100 + 3 * 60, out) &&
               udp_announce_reply(out, 11, false).ok());
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(*conn, 12, req), loopback, sport + 1, 104, out));
  auto refused = udp_announce_reply(out, 12, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().detail.find("connection id"), std::string::npos);
  // An unproved source never gets a reply larger than its packet.
  EXPECT_FALSE(svc.handle_udp(scrape.substr(0, 36), loopback, sport + 1, 104, out));

  // stopped removes the peer.
  req.ev = event::stopped;
  req.port = 6881;
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(*conn, 13, req), loopback, sport, 105, out));
  auto stopped = udp_announce_reply(out, 13, false);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->complete, 0u);
  EXPECT_TRUE(stopped->peers.empty());
  EXPECT_EQ(svc.stats().announces_udp, 3u);
  EXPECT_EQ(svc.stats().connects_udp, 1u);
  EXPECT_EQ(svc.stats().scrapes_udp, 1u);
  EXPECT_GE(svc.stats().failures_udp, 2u);
}

TEST(TrackerService, UdpCapsPeersToOnePacket) {
  auto svc = make_service();
  std::string out;
  ASSERT_TRUE(svc.handle_udp(udp_connect_request(1), loopback, 9, 0, out));
  const auto conn = *udp_connect_reply(out, 1);
  announce_request req;
  req.info_hash = hash_of(8);
  req.left = 1;
  req.numwant = 0;
  for (std::uint16_t p = 1; p <= 300; ++p) {
    req.port = p;
    ASSERT_TRUE(svc.handle_udp(udp_announce_request(conn, p, req), loopback, 9, 0, out));
  }
  req.numwant = 1000;
  req.port = 301;
  ASSERT_TRUE(svc.handle_udp(udp_announce_request(conn, 5, req), loopback, 9, 0, out));
  EXPECT_EQ(out.size(), 20u + 200u * 6);  // max_numwant (200) and the packet bound agree here
}

TEST(TrackerServerCodec, ScrapeBatchesFitTheRequestLimits) {
  std::vector<sha1_digest> hashes;
  for (int i = 0; i < 200; ++i) {
    sha1_digest h;
    for (std::size_t k = 0; k < h.size(); ++k)
      h[k] = static_cast<std::uint8_t>(i * 31 + static_cast<int>(k) * 7);
    hashes.push_back(h);
  }
  const std::string http = "http://tracker.example:6969/announce?passkey=abc";
  auto b = scrape_batches(http, hashes);
  ASSERT_FALSE(b.empty());
  std::size_t next = 0;
  for (const auto& [first, last] : b) {
    ASSERT_EQ(first, next) << "batches leave a gap or overlap";
    ASSERT_LT(first, last);
    const std::vector<sha1_digest> part(hashes.begin() + static_cast<std::ptrdiff_t>(first),
                                        hashes.begin() + static_cast<std::ptrdiff_t>(last));
    auto url = scrape_url(http, part);
    ASSERT_TRUE(url);
    EXPECT_LE(url->size(), max_scrape_url);
    if (last < hashes.size()) {
      auto more = part;
      more.push_back(hashes[last]);
      EXPECT_GT(scrape_url(http, more)->size(), max_scrape_url) << "a batch stopped before it was full";
    }
    next = last;
  }
  EXPECT_EQ(next, hashes.size());
  auto u = scrape_batches("udp://tracker.example:6969/announce", hashes);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0], (std::pair<std::size_t, std::size_t>{0, 74}));
  EXPECT_EQ(u[2], (std::pair<std::size_t, std::size_t>{148, 200}));
  EXPECT_TRUE(scrape_batches("http://t.example/a", hashes).empty()) << "no scrape address, no batches";
  const std::string huge = "http://t.example/announce?key=" + std::string(1990, 'k');
  EXPECT_TRUE(scrape_batches(huge, hashes).empty()) << "not even one hash fits: nothing to send";
}
