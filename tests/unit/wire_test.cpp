#include <gtest/gtest.h>

#include "core/bitfield.hpp"
#include "wire/extension.hpp"
#include "wire/message.hpp"
#include "wire/metadata.hpp"
#include "wire/pex.hpp"

using namespace shoal;
using namespace shoal::wire;

namespace {
message decode_framed(const std::string& framed) {
  auto len = peek_length(framed);
  EXPECT_TRUE(len.has_value());
  EXPECT_EQ(*len + 4, framed.size());
  auto m = decode_message(std::string_view(framed).substr(4));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.err().message());
  return m.ok() ? *m : message{};
}
}  // namespace

TEST(Wire, HandshakeRoundTrip) {
  handshake h;
  h.set_extension_protocol();
  h.set_fast_extension();
  h.info_hash[0] = 0xab;
  h.id[19] = 7;
  const std::string bytes = encode_handshake(h);
  ASSERT_EQ(bytes.size(), handshake_size);
  EXPECT_EQ(bytes.substr(1, 19), "BitTorrent protocol");
  auto d = decode_handshake(bytes);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->extension_protocol());
  EXPECT_TRUE(d->fast_extension());
  EXPECT_FALSE(d->dht());
  EXPECT_EQ(d->info_hash, h.info_hash);
  EXPECT_EQ(d->id, h.id);
  std::string bad = bytes;
  bad[5] = 'X';
  EXPECT_FALSE(decode_handshake(bad).ok());
  EXPECT_FALSE(decode_handshake(bytes.substr(0, 67)).ok());
}

TEST(Wire, MessagesRoundTrip) {
  std::string out;
  put_simple(out, msg::unchoke);
  EXPECT_EQ(decode_framed(out).type, msg::unchoke);
  out.clear();
  put_have(out, 0x01020304);
  EXPECT_EQ(out, std::string("\0\0\0\5\4\1\2\3\4", 9));
  EXPECT_EQ(decode_framed(out).index, 0x01020304u);
  out.clear();
  put_request(out, msg::request, 7, 16384, 16384);
  auto r = decode_framed(out);
  EXPECT_EQ(r.type, msg::request);
  EXPECT_EQ(r.index, 7u);
  EXPECT_EQ(r.begin, 16384u);
  EXPECT_EQ(r.length, 16384u);
  out.clear();
  put_piece_header(out, 3, 0, 5);
  out += "hello";
  auto p = decode_framed(out);
  EXPECT_EQ(p.type, msg::piece);
  EXPECT_EQ(p.payload, "hello");
  EXPECT_EQ(p.length, 5u);
  out.clear();
  put_bitfield(out, "\xf0");
  EXPECT_EQ(decode_framed(out).payload, "\xf0");
  out.clear();
  put_port(out, 6881);
  EXPECT_EQ(decode_framed(out).port, 6881);
  out.clear();
  put_extended(out, 3, "d1:xi1ee");
  auto e = decode_framed(out);
  EXPECT_EQ(e.ext_id, 3);
  EXPECT_EQ(e.payload, "d1:xi1ee");
  out.clear();
  put_keep_alive(out);
  EXPECT_EQ(decode_framed(out).type, msg::keep_alive);
}

TEST(Wire, MalformedMessagesAreErrors) {
  EXPECT_FALSE(decode_message(std::string("\x04\0\0\0", 4)).ok());                   // have: 3 bytes
  EXPECT_FALSE(decode_message(std::string("\x06\0\0\0\0\0\0\0\0\0\0\0", 12)).ok());  // request: 11
  EXPECT_FALSE(decode_message(std::string("\x07\0\0\0", 4)).ok());                   // piece: short header
  EXPECT_FALSE(decode_message(std::string("\x00\x01", 2)).ok());                     // choke with payload
  EXPECT_FALSE(decode_message(std::string("\x14", 1)).ok());                         // extended: no id
  auto unknown = decode_message(std::string("\x63", 1));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.err().detail.find("unknown type 99"), std::string::npos);
  EXPECT_FALSE(peek_length("\0\0\0").has_value());
}

TEST(Wire, ExtensionHandshake) {
  ext_handshake h;
  h.messages["ut_metadata"] = 2;
  h.client = "shoal test";
  h.reqq = 500;
  h.listen_port = 6881;
  h.yourip = std::string("\x7f\0\0\1", 4);
  h.upload_only = true;
  auto d = decode_ext_handshake(encode_ext_handshake(h));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->messages.at("ut_metadata"), 2);
  EXPECT_EQ(d->client, "shoal test");
  EXPECT_EQ(d->reqq, 500u);
  EXPECT_EQ(d->listen_port, 6881);
  EXPECT_EQ(d->yourip.size(), 4u);
  EXPECT_TRUE(d->upload_only);
  // Huge reqq values are capped; wrong types are ignored; non-dicts fail.
  auto capped = decode_ext_handshake("d4:reqqi999999999e1:p3:abce");
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->reqq, max_reqq);
  EXPECT_FALSE(capped->listen_port);
  EXPECT_FALSE(decode_ext_handshake("li1ee").ok());
  EXPECT_FALSE(decode_ext_handshake("d1:md").ok());
  EXPECT_FALSE(decode_ext_handshake(std::string(20, 'l') + std::string(20, 'e')).ok());  // depth 8
}

TEST(Bitfield, HintsAndWireForm) {
  bitfield b(10);
  EXPECT_TRUE(b.none());
  b.set(0);
  b.set(9);
  b.set(9);
  EXPECT_EQ(b.count(), 2u);
  EXPECT_EQ(b.bytes(), std::string("\x80\x40", 2));
  b.set_all();
  EXPECT_TRUE(b.all());
  EXPECT_EQ(b.bytes(), std::string("\xff\xc0", 2));
  b.clear(0);
  EXPECT_FALSE(b.all());
  EXPECT_EQ(b.count(), 9u);
  bitfield w(10);
  EXPECT_TRUE(w.assign(std::string("\xff\xc0", 2)));
  EXPECT_TRUE(w.all());
  EXPECT_FALSE(w.assign(std::string("\xff\xe0", 2)));  // a spare bit set
  EXPECT_FALSE(w.assign(std::string("\xff", 1)));      // wrong length
}

TEST(Wire, MetadataMessages) {
  auto req = decode_metadata_message(encode_metadata_request(3));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->type, metadata_msg::request);
  EXPECT_EQ(req->piece, 3u);
  const std::string chunk(100, 'i');
  // The decoded data is a view: keep the encoded bytes alive while it is used.
  const std::string encoded = encode_metadata_data(1, metadata_piece_size + 100, chunk);
  auto data = decode_metadata_message(encoded);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->type, metadata_msg::data);
  EXPECT_EQ(data->total_size, metadata_piece_size + 100u);
  EXPECT_EQ(data->data, chunk);
  EXPECT_EQ(decode_metadata_message(encode_metadata_reject(9))->type, metadata_msg::reject);
  // Bounds: piece past the total, data over 16 KiB, oversized totals, unknown types.
  EXPECT_FALSE(decode_metadata_message(encode_metadata_data(2, metadata_piece_size + 100, chunk)).ok());
  EXPECT_FALSE(
      decode_metadata_message(encode_metadata_data(0, 1 << 20, std::string(metadata_piece_size + 1, 'x'))).ok());
  EXPECT_FALSE(decode_metadata_message(encode_metadata_data(0, max_metadata_size + 1, chunk)).ok());
  EXPECT_TRUE(decode_metadata_message(encode_metadata_data(0, max_metadata_size, chunk)).ok());
  EXPECT_FALSE(decode_metadata_message("d8:msg_typei3e5:piecei0ee").ok());
  EXPECT_FALSE(decode_metadata_message("d8:msg_typei0e5:piecei0eeXX").ok());
  EXPECT_EQ(metadata_pieces(1), 1u);
  EXPECT_EQ(metadata_pieces(metadata_piece_size), 1u);
  EXPECT_EQ(metadata_pieces(metadata_piece_size + 1), 2u);
}

TEST(Wire, PexMessages) {
  namespace ip = boost::asio::ip;
  pex_message m;
  m.added.emplace_back(ip::tcp::endpoint(ip::make_address("10.0.0.1"), 6881), pex_seed | pex_reachable);
  m.added.emplace_back(ip::tcp::endpoint(ip::make_address("::1"), 51413), pex_utp);
  m.dropped.emplace_back(ip::make_address("192.0.2.9"), 80);
  auto d = decode_pex(encode_pex(m));
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->added.size(), 2u);
  EXPECT_EQ(d->added[0].first.address().to_string(), "10.0.0.1");
  EXPECT_EQ(d->added[0].second, pex_seed | pex_reachable);
  EXPECT_EQ(d->added[1].first.port(), 51413);
  EXPECT_EQ(d->added[1].second, pex_utp);
  ASSERT_EQ(d->dropped.size(), 1u);
  EXPECT_EQ(d->dropped[0].port(), 80);
  // At most max_pex_contacts are taken; port 0 is skipped; an empty message is an error.
  std::string many;
  for (int i = 0; i < 300; ++i)
    many += std::string("\x0a\0\0", 3) + static_cast<char>(i % 250 + 1) + "\x1a\xe1";
  auto big = decode_pex("d5:added" + std::to_string(many.size()) + ":" + many + "e");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->added.size(), max_pex_contacts);
  auto zero = decode_pex(std::string("d5:added6:\x0a\0\0\1\0\0e", 17));
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->added.empty());
  EXPECT_FALSE(decode_pex("d1:xi1ee").ok());
  EXPECT_FALSE(decode_pex("le").ok());
}

TEST(Wire, HashMessages) {
  hash_request r;
  r.root = sha256("file");
  r.base = 3;
  r.index = 512;
  r.length = 512;
  r.proof_layers = 9;
  std::string out;
  put_hash_request(out, msg::hash_request, r);
  auto m = decode_framed(out);
  EXPECT_EQ(m.type, msg::hash_request);
  auto back = decode_hash_request(m.payload);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);

  out.clear();
  put_hash_request(out, msg::hash_reject, r);
  m = decode_framed(out);
  EXPECT_EQ(m.type, msg::hash_reject);
  ASSERT_TRUE(decode_hash_request(m.payload));

  std::vector<sha256_digest> hs(r.length + 2);
  for (std::size_t i = 0; i < hs.size(); ++i)
    hs[i] = sha256(std::to_string(i));
  out.clear();
  put_hashes(out, r, hs);
  m = decode_framed(out);
  EXPECT_EQ(m.type, msg::hashes);
  auto got = decode_hashes(m.payload);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->req, r);
  EXPECT_EQ(got->hashes, hs);

  // BEP 52's rules on the shape of a request.
  auto shape = [&](std::uint32_t index, std::uint32_t length) {
    hash_request q = r;
    q.index = index;
    q.length = length;
    std::string o;
    put_hash_request(o, msg::hash_request, q);
    auto res = decode_hash_request(decode_framed(o).payload);
    return res ? std::string("ok") : res.err().message();
  };
  EXPECT_EQ(shape(0, 2), "ok");
  EXPECT_NE(shape(0, 1).find("power of two"), std::string::npos);
  EXPECT_NE(shape(0, 6).find("power of two"), std::string::npos);
  EXPECT_NE(shape(4, 8).find("multiple of length"), std::string::npos);
  EXPECT_NE(decode_hash_request(std::string(47, '\0')).err().message().find("48 bytes"), std::string::npos);
  // 'hashes' with fewer hashes than asked for, or a ragged tail.
  std::string body = std::string(m.payload.substr(0, 48)) + std::string(32 * 3, 'x');
  EXPECT_NE(decode_hashes(body).err().message().find("3 hashes for a request of 512"), std::string::npos);
  body = std::string(m.payload) + "xyz";
  EXPECT_FALSE(decode_hashes(body));
}
