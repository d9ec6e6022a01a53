// shoal sync, the network half: the secure channel's handshake and frames over loopback,
// message bounds, forged records, conflict names and symlink targets.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <optional>

#include "core/bencode.hpp"
#include "net/stream.hpp"
#include "sync/fsops.hpp"
#include "sync/index.hpp"
#include "sync/messages.hpp"
#include "sync/secure_channel.hpp"

using namespace shoal;
using namespace shoal::sync;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

using maybe_channel = std::optional<result<secure_channel::ptr>>;

// Two ends of one loopback connection, each run through the handshake on one io_context.
struct loop_pair {
  asio::io_context io;
  device_identity listener_dev = device_identity::generate();
  device_identity dialler_dev = device_identity::generate();
  maybe_channel listener;
  maybe_channel dialler;

  void handshake(const folder_key& listener_key, const folder_key& dialler_key,
                 std::optional<share_id> claim = std::nullopt) {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const auto ep = acc.local_endpoint();
    auto listen = [&]() -> asio::awaitable<void> {
      auto sock = co_await acc.async_accept(asio::use_awaitable);
      auto st = std::make_unique<net::tcp_stream>(std::move(sock));
      std::string first(channel_magic.size(), '\0');
      auto [ec, n] = co_await net::read_exact(*st, asio::buffer(first));
      if (ec) first.resize(n);
      listener = co_await secure_channel::accept(std::move(st), std::move(first), listener_key, listener_dev,
                                                 hello_fields{true, 7});
      // A side that failed closes, so the other one's read ends too.
    };
    auto dial = [&]() -> asio::awaitable<void> {
      tcp::socket sock(io);
      co_await sock.async_connect(ep, asio::use_awaitable);
      auto st = std::make_unique<net::tcp_stream>(std::move(sock));
      dialler =
          co_await secure_channel::connect(std::move(st), dialler_key, dialler_dev, hello_fields{false, 3}, claim);
    };
    asio::co_spawn(io, listen(), asio::detached);
    asio::co_spawn(io, dial(), asio::detached);
    io.run();
    io.restart();
  }
};

folder_key key_from(std::uint8_t b) {
  std::array<std::uint8_t, seed_bytes> seed{};
  seed.fill(b);
  return folder_key::from_seed(seed);
}

}  // namespace

TEST(SyncChannel, MagicObeysTheSessionRules) {
  EXPECT_EQ(channel_magic.size(), 10u);
  const auto first = static_cast<unsigned char>(channel_magic[0]);
  EXPECT_NE(first, 'd');              // KRPC
  EXPECT_NE(first & 0x0f, 1);         // uTP version nibble
  EXPECT_NE(channel_magic[0], 0x13);  // the BitTorrent handshake's first byte
}

TEST(SyncChannel, HandshakeAgreesAndFramesFlowBothWays) {
  const auto key = key_from(1);
  loop_pair p;
  p.handshake(key, key);
  ASSERT_TRUE(p.listener && *p.listener) << (p.listener ? p.listener->err().message() : "no result");
  ASSERT_TRUE(p.dialler && *p.dialler) << (p.dialler ? p.dialler->err().message() : "no result");
  auto l = **p.listener;
  auto d = **p.dialler;
  EXPECT_EQ(l->peer().device_id, p.dialler_dev.id());
  EXPECT_EQ(d->peer().device_id, p.listener_dev.id());
  EXPECT_FALSE(l->peer().can_write);
  EXPECT_EQ(l->peer().last_sequence, 3u);
  EXPECT_TRUE(d->peer().can_write);
  EXPECT_EQ(d->peer().last_sequence, 7u);

  const std::string big(max_message_bytes, 'x');
  std::vector<std::string> at_listener;
  std::vector<std::string> at_dialler;
  // Writer and reader apart: a 4 MiB frame does not fit the socket buffers at once.
  auto dialler_side = [&]() -> asio::awaitable<void> {
    for (const std::string& m : {std::string("one"), std::string(), big}) {
      auto w = co_await d->write(m);
      EXPECT_TRUE(w);
    }
    auto r = co_await d->read();
    EXPECT_TRUE(r);
    if (r) at_dialler.push_back(*r);
    // Past the bound: refused before anything is sent.
    const std::string too_big(max_message_bytes + 1, 'y');
    auto refused = co_await d->write(too_big);
    EXPECT_FALSE(refused);
  };
  auto listener_side = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      auto r = co_await l->read();
      EXPECT_TRUE(r);
      if (r) at_listener.push_back(*r);
    }
    auto w = co_await l->write("back");
    EXPECT_TRUE(w);
  };
  asio::co_spawn(p.io, dialler_side(), asio::detached);
  asio::co_spawn(p.io, listener_side(), asio::detached);
  p.io.run();
  ASSERT_EQ(at_listener.size(), 3u);
  EXPECT_EQ(at_listener[0], "one");
  EXPECT_EQ(at_listener[1], "");
  EXPECT_EQ(at_listener[2], big);
  ASSERT_EQ(at_dialler.size(), 1u);
  EXPECT_EQ(at_dialler[0], "back");
}

TEST(SyncChannel, AnotherFoldersKeyFailsAndIsReported) {
  // The dialler knows the share id (it is public, through discovery) but not the key.
  const auto key = key_from(1);
  const auto other = key_from(2);
  loop_pair p;
  p.handshake(key, other, key.share());
  ASSERT_TRUE(p.listener);
  ASSERT_FALSE(*p.listener);
  EXPECT_EQ(p.listener->err().message(), wrong_key_message);
  ASSERT_TRUE(p.dialler);
  EXPECT_FALSE(*p.dialler);
}

TEST(SyncChannel, AnotherShareIdIsRefused) {
  loop_pair p;
  p.handshake(key_from(1), key_from(2));
  ASSERT_TRUE(p.listener);
  ASSERT_FALSE(*p.listener);
  EXPECT_NE(p.listener->err().message().find("share id"), std::string::npos);
  ASSERT_TRUE(p.dialler);
  EXPECT_FALSE(*p.dialler);
}

TEST(SyncChannel, ReadOnlyKeyIsEnoughToJoin) {
  const auto key = key_from(3);
  loop_pair p;
  p.handshake(key, key.read_only());
  ASSERT_TRUE(p.listener && *p.listener);
  ASSERT_TRUE(p.dialler && *p.dialler);
}

TEST(SyncChannel, TamperedFrameCloses) {
  const auto key = key_from(1);
  loop_pair p;
  p.handshake(key, key);
  ASSERT_TRUE(p.listener && *p.listener && p.dialler && *p.dialler);
  auto l = **p.listener;
  auto d = **p.dialler;
  std::optional<result<std::string>> got;
  std::optional<result<std::string>> after;
  auto run = [&]() -> asio::awaitable<void> {
    // A well-formed frame whose bytes are not what the key sealed.
    std::string frame("\x00\x00\x00\x20", 4);
    frame.append(32, '\x55');
    co_await d->raw().write(asio::buffer(frame));
    got = co_await l->read();
    after = co_await l->read();
  };
  asio::co_spawn(p.io, run(), asio::detached);
  p.io.run();
  ASSERT_TRUE(got);
  ASSERT_FALSE(*got);
  EXPECT_NE(got->err().message().find("authenticate"), std::string::npos);
  ASSERT_TRUE(after);
  EXPECT_FALSE(*after);  // closed
}

TEST(SyncChannel, FrameOverTheBoundCloses) {
  const auto key = key_from(1);
  loop_pair p;
  p.handshake(key, key);
  ASSERT_TRUE(p.listener && *p.listener && p.dialler && *p.dialler);
  auto l = **p.listener;
  auto d = **p.dialler;
  std::optional<result<std::string>> got;
  auto run = [&]() -> asio::awaitable<void> {
    const std::uint32_t n = max_frame_bytes + 1;
    const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                         static_cast<char>(n)};
    co_await d->raw().write(asio::buffer(len, 4));
    got = co_await l->read();
  };
  asio::co_spawn(p.io, run(), asio::detached);
  p.io.run();
  ASSERT_TRUE(got);
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->err().code, errc::limit_exceeded);
}

TEST(SyncChannel, FrameCipherDetectsAnyChangedByte) {
  std::array<std::uint8_t, 32> k{};
  k.fill(9);
  frame_cipher tx(k);
  frame_cipher rx(k);
  std::string frame = tx.seal("hello");
  std::string out;
  ASSERT_TRUE(rx.open(std::string_view(frame).substr(4), out));
  EXPECT_EQ(out, "hello");
  frame = tx.seal("again");
  frame[6] ^= 1;
  EXPECT_FALSE(rx.open(std::string_view(frame).substr(4), out));
  // The same bytes a second time (a replay) use another nonce: refused too.
  frame_cipher tx2(k);
  frame_cipher rx2(k);
  const std::string once = tx2.seal("x");
  ASSERT_TRUE(rx2.open(std::string_view(once).substr(4), out));
  EXPECT_FALSE(rx2.open(std::string_view(once).substr(4), out));
}

TEST(SyncChannel, SessionKeysDependOnTheFolderKey) {
  std::array<std::uint8_t, 32> shared{};
  std::array<std::uint8_t, 32> a{};
  std::array<std::uint8_t, 32> b{};
  a.fill(1);
  b.fill(2);
  const auto k1 = derive_session_keys(key_from(1).pub(), shared, a, b);
  const auto k2 = derive_session_keys(key_from(2).pub(), shared, a, b);
  EXPECT_NE(k1.dialler_to_listener, k2.dialler_to_listener);
  EXPECT_NE(k1.dialler_to_listener, k1.listener_to_dialler);
}

TEST(SyncMessages, RoundTripAndBounds) {
  msg_index ix;
  ix.done = true;
  ix.records.push_back(wire_record{"d1:ai1ee", std::string(64, 's'), 5});
  auto back = decode_message(encode(message{ix}));
  ASSERT_TRUE(back);
  const auto* got = std::get_if<msg_index>(&*back);
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(got->done);
  ASSERT_EQ(got->records.size(), 1u);
  EXPECT_EQ(got->records[0].seq, 5u);

  msg_index full;
  for (std::size_t i = 0; i < max_batch_records; ++i)
    full.records.push_back(wire_record{"x", std::string(64, 's'), i + 1});
  EXPECT_TRUE(decode_message(encode(message{full})));
  full.records.push_back(wire_record{"x", std::string(64, 's'), 999});
  EXPECT_FALSE(decode_message(encode(message{full})));

  msg_block_request rq;
  rq.path = "a";
  rq.hash = std::string(32, 'h');
  rq.length = max_chunk_bytes;
  EXPECT_TRUE(decode_message(encode(message{rq})));
  rq.length = max_chunk_bytes + 1;
  EXPECT_FALSE(decode_message(encode(message{rq})));
  rq.length = 0;
  EXPECT_FALSE(decode_message(encode(message{rq})));

  msg_block b;
  b.data = std::string(max_chunk_bytes, 'd');
  EXPECT_TRUE(decode_message(encode(message{b})));
  b.data.push_back('d');
  EXPECT_FALSE(decode_message(encode(message{b})));

  EXPECT_FALSE(decode_message("d1:t4:nopee"));
  EXPECT_FALSE(decode_message("not bencode"));
}

TEST(SyncMessages, ForgedRecordIsRejected) {
  const auto key = key_from(1);
  record r;
  r.path = "notes.txt";
  r.type = entry_type::file;
  r.size = 0;
  r.block_size = min_block_size;
  r.mode = 0644;
  r.modified_by = "DEVICE";
  bump(r.version, "DEVICE");
  sign_record(r, key);
  const std::string canon = encode_record(r);
  EXPECT_TRUE(decode_record(canon, r.signature, key.pub()));
  // Signed by another folder's key.
  record forged = r;
  sign_record(forged, key_from(2));
  EXPECT_FALSE(decode_record(encode_record(forged), forged.signature, key.pub()));
  // A right signature over other bytes.
  record changed = r;
  changed.mode = 0777;
  EXPECT_FALSE(decode_record(encode_record(changed), r.signature, key.pub()));
  // A read-only key cannot sign at all.
  EXPECT_THROW(sign_record(forged, key.read_only()), std::logic_error);
}

TEST(SyncFsops, ConflictNames) {
  // 2026-01-02 03:04:05 UTC
  const std::int64_t t = 1767323045LL * 1'000'000'000;
  EXPECT_EQ(conflict_path("a/report.txt", t, "ABCDEFGHIJ"), "a/report.sync-conflict-20260102-030405-ABCDEFG.txt");
  EXPECT_EQ(conflict_path("Makefile", t, "X"), "Makefile.sync-conflict-20260102-030405-X");
  EXPECT_EQ(conflict_path(".bashrc", t, "X"), ".bashrc.sync-conflict-20260102-030405-X");
  const std::string long_name(250, 'n');
  const auto c = conflict_path(long_name + ".txt", t, "DEV");
  EXPECT_LE(c.size(), max_name_bytes);
  EXPECT_NE(c.find(".sync-conflict-"), std::string::npos);
  EXPECT_TRUE(c.ends_with(".txt"));
}

TEST(SyncFsops, SymlinkTargetsStayInside) {
  EXPECT_TRUE(safe_symlink_target("link", "file"));
  EXPECT_TRUE(safe_symlink_target("a/link", "../file"));
  EXPECT_TRUE(safe_symlink_target("a/b/link", "../../x/./y"));
  EXPECT_FALSE(safe_symlink_target("link", "../outside"));
  EXPECT_FALSE(safe_symlink_target("a/link", "../../outside"));
  EXPECT_FALSE(safe_symlink_target("link", "/etc/passwd"));
  EXPECT_FALSE(safe_symlink_target("link", "x/../../y"));
  EXPECT_FALSE(safe_symlink_target("link", ""));
}
