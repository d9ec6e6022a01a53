#include "sync/secure_channel.hpp"

#include <sodium.h>

#include <cstring>

#include "core/bencode.hpp"

namespace shoal::sync {

namespace {

using key32 = std::array<std::uint8_t, 32>;

constexpr std::string_view label_d2l = "shoal-sync dialler->listener";
constexpr std::string_view label_l2d = "shoal-sync listener->dialler";

error fail(std::string what) {
  return error{errc::invalid_argument, std::move(what)};
}

std::string_view view(const key32& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}

void put_be32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

std::uint32_t get_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

struct ephemeral {
  key32 pub{};
  key32 secret{};
  ephemeral() { crypto_box_keypair(pub.data(), secret.data()); }
  ~ephemeral() { sodium_memzero(secret.data(), secret.size()); }
  ephemeral(const ephemeral&) = delete;
  ephemeral& operator=(const ephemeral&) = delete;
};

// False for a low-order public key (the shared secret would be all zeros).
bool shared_secret(const key32& secret, const key32& their_pub, key32& out) {
  return crypto_scalarmult(out.data(), secret.data(), their_pub.data()) == 0;
}

std::string encode_hello(const device_identity& dev, const std::string& transcript, hello_fields mine) {
  const auto sig = dev.sign(transcript);
  bencode::dict d;
  d["device"] = std::string(reinterpret_cast<const char*>(dev.pub().data()), dev.pub().size());
  d["seq"] = static_cast<std::int64_t>(mine.last_sequence);
  d["sig"] = std::string(reinterpret_cast<const char*>(sig.data()), sig.size());
  d["write"] = mine.can_write ? 1 : 0;
  return bencode::encode(d);
}

result<peer_hello> decode_hello(std::string_view msg, const std::string& transcript) {
  if (msg.size() > max_hello_bytes) return fail("hello of " + std::to_string(msg.size()) + " bytes");
  bencode::limits lim;
  lim.depth = 2;
  lim.tokens = 16;
  auto doc = bencode::decode(msg, bencode::mode::strict, lim);
  if (!doc) return fail("hello: " + doc.err().message());
  const auto root = doc->root();
  const auto dev = root.find("device");
  const auto sig = root.find("sig");
  const auto seq = root.find("seq");
  const auto wr = root.find("write");
  if (!dev.is_string() || dev.as_string().size() != public_key_bytes || !sig.is_string() ||
      sig.as_string().size() != signature_bytes || !seq.is_int() || seq.as_int() < 0 || !wr.is_int() ||
      (wr.as_int() != 0 && wr.as_int() != 1)) {
    return fail("hello: missing or malformed fields");
  }
  peer_hello h;
  std::memcpy(h.device.data(), dev.as_string().data(), public_key_bytes);
  if (!verify(h.device, transcript, sig.as_string())) return fail("hello: the device signature does not verify");
  h.device_id = device_id_of(h.device);
  h.can_write = wr.as_int() == 1;
  h.last_sequence = static_cast<std::uint64_t>(seq.as_int());
  return h;
}

}  // namespace

session_keys derive_session_keys(const public_key& folder, const key32& shared, const key32& dialler_eph,
                                 const key32& listener_eph) {
  session_keys out;
  auto derive = [&](std::string_view label, key32& key) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, folder.data(), folder.size(), key.size());
    crypto_generichash_update(&st, shared.data(), shared.size());
    crypto_generichash_update(&st, dialler_eph.data(), dialler_eph.size());
    crypto_generichash_update(&st, listener_eph.data(), listener_eph.size());
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()), label.size());
    crypto_generichash_final(&st, key.data(), key.size());
    sodium_memzero(&st, sizeof st);
  };
  derive(label_d2l, out.dialler_to_listener);
  derive(label_l2d, out.listener_to_dialler);
  return out;
}

std::string hello_transcript(const share_id& share, const key32& dialler_eph, const key32& listener_eph, char role) {
  std::string t("shoal-sync-hello", sizeof("shoal-sync-hello"));
  t.append(reinterpret_cast<const char*>(share.data()), share.size());
  t.append(view(dialler_eph));
  t.append(view(listener_eph));
  t.push_back(role);
  return t;
}

frame_cipher::~frame_cipher() {
  sodium_memzero(key_.data(), key_.size());
}

std::string frame_cipher::seal(std::string_view msg) {
  std::array<unsigned char, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i)
    nonce[4 + i] = static_cast<unsigned char>(counter_ >> (56 - 8 * i));
  ++counter_;
  std::string out(4 + msg.size() + aead_tag_bytes, '\0');
  put_be32(out.data(), static_cast<std::uint32_t>(msg.size() + aead_tag_bytes));
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data() + 4), &clen,
                                            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), nullptr, 0,
                                            nullptr, nonce.data(), key_.data());
  return out;
}

bool frame_cipher::open(std::string_view c, std::string& out) {
  if (c.size() < aead_tag_bytes) return false;
  std::array<unsigned char, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i)
    nonce[4 + i] = static_cast<unsigned char>(counter_ >> (56 - 8 * i));
  ++counter_;
  out.resize(c.size() - aead_tag_bytes);
  unsigned long long mlen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(out.data()), &mlen, nullptr,
                                                reinterpret_cast<const unsigned char*>(c.data()), c.size(), nullptr, 0,
                                                nonce.data(), key_.data()) != 0) {
    out.clear();
    return false;
  }
  return true;
}

asio::awaitable<result<secure_channel::ptr>> secure_channel::connect(std::unique_ptr<net::stream> s,
                                                                     const folder_key& key, const device_identity& dev,
                                                                     hello_fields mine, std::optional<share_id> claim) {
  if (sodium_init() < 0) co_return fail("libsodium cannot start");
  ptr c(new secure_channel());
  c->s_ = std::move(s);
  c->dialler_ = true;
  ephemeral eph;
  const share_id share = claim ? *claim : key.share();
  std::string header(channel_magic);
  header.append(reinterpret_cast<const char*>(share.data()), share.size());
  header.append(view(eph.pub));
  auto [wec, wn] = co_await c->s_->write(asio::buffer(header));
  if (wec) co_return fail("handshake: " + wec.message());
  key32 listener_eph{};
  auto [rec, rn] = co_await net::read_exact(*c->s_, asio::buffer(listener_eph));
  if (rec) co_return fail("handshake: the peer closed before answering (" + rec.message() + ")");
  key32 shared{};
  if (!shared_secret(eph.secret, listener_eph, shared)) co_return fail("handshake: a low-order key");
  auto done = co_await finish(c, key, dev, mine, share, shared, eph.pub, listener_eph);
  sodium_memzero(shared.data(), shared.size());
  co_return done;
}

asio::awaitable<result<secure_channel::ptr>> secure_channel::accept(std::unique_ptr<net::stream> s, std::string first,
                                                                    const folder_key& key, const device_identity& dev,
                                                                    hello_fields mine) {
  if (sodium_init() < 0) co_return fail("libsodium cannot start");
  ptr c(new secure_channel());
  c->s_ = std::move(s);
  if (first.size() > channel_header_bytes) co_return fail("handshake: bytes past the header before the answer");
  std::string header = std::move(first);
  const std::size_t have = header.size();
  header.resize(channel_header_bytes);
  if (have < channel_header_bytes) {
    auto [ec, n] = co_await net::read_exact(*c->s_, asio::buffer(header.data() + have, channel_header_bytes - have));
    if (ec) co_return fail("handshake: closed in the header (" + ec.message() + ")");
  }
  if (!std::string_view(header).starts_with(channel_magic)) co_return fail("handshake: not the sync magic");
  const share_id share = key.share();
  if (std::memcmp(header.data() + channel_magic.size(), share.data(), share.size()) != 0) {
    co_return fail("handshake: another folder's share id");
  }
  key32 dialler_eph{};
  std::memcpy(dialler_eph.data(), header.data() + channel_magic.size() + 32, 32);
  ephemeral eph;
  auto [wec, wn] = co_await c->s_->write(asio::buffer(eph.pub));
  if (wec) co_return fail("handshake: " + wec.message());
  key32 shared{};
  if (!shared_secret(eph.secret, dialler_eph, shared)) co_return fail("handshake: a low-order key");
  auto done = co_await finish(c, key, dev, mine, share, shared, dialler_eph, eph.pub);
  sodium_memzero(shared.data(), shared.size());
  co_return done;
}

asio::awaitable<result<secure_channel::ptr>> secure_channel::finish(ptr c, const folder_key& key,
                                                                    const device_identity& dev, hello_fields mine,
                                                                    const share_id& share, const key32& shared,
                                                                    const key32& dialler_eph,
                                                                    const key32& listener_eph) {
  auto keys = derive_session_keys(key.pub(), shared, dialler_eph, listener_eph);
  c->tx_ = frame_cipher(c->dialler_ ? keys.dialler_to_listener : keys.listener_to_dialler);
  c->rx_ = frame_cipher(c->dialler_ ? keys.listener_to_dialler : keys.dialler_to_listener);
  sodium_memzero(&keys, sizeof keys);
  const char my_role = c->dialler_ ? 'D' : 'L';
  const char their_role = c->dialler_ ? 'L' : 'D';
  const std::string hello = encode_hello(dev, hello_transcript(share, dialler_eph, listener_eph, my_role), mine);
  auto w = co_await c->write(hello);
  if (!w) co_return w.err();
  auto m = co_await c->read();
  if (!m) co_return m.err();
  auto h = decode_hello(*m, hello_transcript(share, dialler_eph, listener_eph, their_role));
  if (!h) co_return h.err();
  if (h->device == dev.pub()) co_return fail("handshake: the peer is this device");
  c->peer_ = std::move(*h);
  co_return c;
}

asio::awaitable<result<std::string>> secure_channel::read() {
  char len[4];
  auto [ec, n] = co_await net::read_exact(*s_, asio::buffer(len, 4));
  if (ec) co_return error{errc::io, "closed (" + ec.message() + ")"};
  const std::uint32_t size = get_be32(len);
  if (size > max_frame_bytes || size < aead_tag_bytes) {
    close();
    co_return error{errc::limit_exceeded,
                    "a frame of " + std::to_string(size) + " bytes (at most " + std::to_string(max_frame_bytes) + ")"};
  }
  std::string cipher(size, '\0');
  auto [ec2, n2] = co_await net::read_exact(*s_, asio::buffer(cipher));
  if (ec2) co_return error{errc::io, "closed in a frame (" + ec2.message() + ")"};
  std::string out;
  if (!rx_.open(cipher, out)) {
    close();
    co_return error{errc::invalid_argument, authenticated_ ? std::string("a frame failed to authenticate (tampered)")
                                                           : std::string(wrong_key_message)};
  }
  authenticated_ = true;
  co_return out;
}

asio::awaitable<result<bool>> secure_channel::write(std::string_view msg) {
  if (msg.size() > max_message_bytes) co_return error{errc::limit_exceeded, "message past the frame bound"};
  const std::string frame = tx_.seal(msg);
  auto [ec, n] = co_await s_->write(asio::buffer(frame));
  if (ec) co_return error{errc::io, "closed (" + ec.message() + ")"};
  co_return true;
}

void secure_channel::close() {
  if (s_) s_->close();
}

std::string secure_channel::remote() const {
  if (!s_) return "?";
  const auto ep = s_->remote_endpoint();
  boost::system::error_code ec;
  return ep.address().to_string(ec) + ":" + std::to_string(ep.port());
}

}  // namespace shoal::sync
