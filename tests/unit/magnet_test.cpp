#include "core/magnet.hpp"

#include <gtest/gtest.h>

#include "core/text.hpp"

using namespace shoal;

namespace {
const std::string hex40 = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
const std::string hex64 = "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb";

magnet_link ok(const std::string& uri) {
  auto r = parse_magnet(uri);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message());
  return r.ok() ? std::move(r).value() : magnet_link{};
}

std::string bad(const std::string& uri) {
  auto r = parse_magnet(uri);
  EXPECT_FALSE(r.ok()) << uri;
  return r.ok() ? "" : r.err().message();
}
}  // namespace

TEST(Magnet, HexAndBase32) {
  auto m = ok("magnet:?xt=urn:btih:" + hex40 + "&dn=Some+Name%21");
  ASSERT_TRUE(m.info_hash_v1);
  EXPECT_EQ(to_hex(as_view(*m.info_hash_v1)), hex40);
  EXPECT_FALSE(m.info_hash_v2);
  EXPECT_EQ(m.name, "Some Name!");
  const std::string b32 = to_base32(*from_hex(hex40));
  ASSERT_EQ(b32.size(), 32u);
  auto m2 = ok("magnet:?xt=urn:btih:" + b32);
  EXPECT_EQ(m2.info_hash_v1, m.info_hash_v1);
  // Upper-case hex and scheme are accepted.
  auto m3 = ok("MAGNET:?xt=urn:btih:C12FE1C06BBA254A9DC9F519B335AA7C1367A88A");
  EXPECT_EQ(m3.info_hash_v1, m.info_hash_v1);
}

TEST(Magnet, V2AndHybrid) {
  auto m = ok("magnet:?xt=urn:btmh:1220" + hex64);
  ASSERT_TRUE(m.info_hash_v2);
  EXPECT_EQ(to_hex(as_view(*m.info_hash_v2)), hex64);
  auto h = ok("magnet:?xt=urn:btih:" + hex40 + "&xt=urn:btmh:1220" + hex64 + "&tr=udp%3A%2F%2Ft%3A1&tr.1=http://t2/a");
  EXPECT_TRUE(h.info_hash_v1 && h.info_hash_v2);
  EXPECT_EQ(h.trackers, (std::vector<std::string>{"udp://t:1", "http://t2/a"}));
}

TEST(Magnet, PeersWebSeedsAndSelectOnly) {
  auto m = ok("magnet:?xt=urn:btih:" + hex40 +
              "&x.pe=127.0.0.1:6881&x.pe=%5B::1%5D:51413&ws=http%3A%2F%2Fws%2Ff&so=0,2,4-6&tr=http://a/&tr=http://a/");
  EXPECT_EQ(m.peers, (std::vector<std::string>{"127.0.0.1:6881", "[::1]:51413"}));
  EXPECT_EQ(m.web_seeds, std::vector<std::string>{"http://ws/f"});
  ASSERT_EQ(m.select_only.size(), 3u);
  EXPECT_EQ(m.select_only[2], (std::pair<std::uint32_t, std::uint32_t>{4, 6}));
  EXPECT_EQ(m.trackers.size(), 1u);
}

TEST(Magnet, RoundTrip) {
  magnet_link m = ok("magnet:?xt=urn:btih:" + hex40 + "&xt=urn:btmh:1220" + hex64 +
                     "&dn=a%20b%26c&tr=http%3A%2F%2Ft%2F%3Fx%3D1%26y&ws=http://w/&x.pe=1.2.3.4:5&so=1,3-4"
                     "&xs=http%3A%2F%2Fh%2Fa%20b.torrent&xs=http://h/a%20b.torrent");
  EXPECT_EQ(m.exact_sources, std::vector<std::string>{"http://h/a b.torrent"});  // the same URL once
  const std::string uri = to_uri(m);
  auto again = ok(uri);
  EXPECT_EQ(again.info_hash_v1, m.info_hash_v1);
  EXPECT_EQ(again.info_hash_v2, m.info_hash_v2);
  EXPECT_EQ(again.name, "a b&c");
  EXPECT_EQ(again.trackers, std::vector<std::string>{"http://t/?x=1&y"});
  EXPECT_EQ(again.web_seeds, m.web_seeds);
  EXPECT_EQ(again.peers, m.peers);
  EXPECT_EQ(again.exact_sources, m.exact_sources);
  EXPECT_EQ(again.select_only, m.select_only);
  EXPECT_EQ(uri.rfind("magnet:?xt=urn:btih:" + hex40 + "&xt=urn:btmh:1220" + hex64, 0), 0u);
}

TEST(Magnet, MalformedLinksAreRejectedClearly) {
  EXPECT_NE(bad("http://x/?xt=urn:btih:" + hex40).find("does not start with 'magnet:'"), std::string::npos);
  EXPECT_NE(bad("magnet:").find("no parameters"), std::string::npos);
  EXPECT_NE(bad("magnet:?dn=x").find("no info-hash"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:abc").find("40 hex or 32 base32"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + std::string(40, 'g')).find("not valid hex"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + std::string(32, '1')).find("not valid base32"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btmh:1114" + hex64).find("1220"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btmh:1220abcd").find("64 hex"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&xt=urn:btih:" + std::string(40, '0')).find("two different"),
            std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&x.pe=nohost").find("x.pe"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&x.pe=h:70000").find("x.pe"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&so=5-2").find("so"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&so=a").find("so"), std::string::npos);
  EXPECT_NE(bad("magnet:?xt=urn:btih:" + hex40 + "&dn=%zz").find("not a valid URI"), std::string::npos);
}

TEST(Magnet, LengthAndParameterLimits) {
  std::string base = "magnet:?xt=urn:btih:" + hex40 + "&dn=";
  std::string at = base + std::string(max_magnet_length - base.size(), 'a');
  ASSERT_EQ(at.size(), max_magnet_length);
  EXPECT_EQ(ok(at).name.size(), max_magnet_length - base.size());
  auto r = parse_magnet(at + "a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::limit_exceeded);

  std::string params = "magnet:?xt=urn:btih:" + hex40;
  for (std::size_t i = 1; i < max_magnet_params; ++i)
    params += "&a=1";
  ok(params);
  auto r2 = parse_magnet(params + "&a=1");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.err().code, errc::limit_exceeded);
}
