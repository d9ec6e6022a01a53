// MSE/PE: RC4 against an independent implementation's keystream, and the handshake state
// machines run against each other in memory.
#include <gtest/gtest.h>

#include <string>

#include "core/text.hpp"
#include "net/rc4.hpp"
#include "wire/mse.hpp"

using namespace shoal;
using namespace shoal::wire;
using hs = mse::handshake;

namespace {

sha1_digest skey_of(char c) {
  sha1_digest d{};
  d.fill(static_cast<std::uint8_t>(c));
  return d;
}

std::optional<sha1_digest> find_in(const std::vector<sha1_digest>& served, const sha1_digest& req2) {
  for (const auto& s : served) {
    hasher x(hasher::algo::sha1);
    x.update("req2");
    x.update(as_view(s));
    sha1_digest d;
    x.final(d.data());
    if (d == req2) return s;
  }
  return std::nullopt;
}

// Runs both sides to the end, moving `chunk` bytes at a time; returns their last statuses.
std::pair<hs::status, hs::status> run(hs& a, hs& b, std::size_t chunk, const std::string& a_extra = {},
                                      const std::string& b_extra = {}) {
  auto st_a = hs::status::need_more, st_b = hs::status::need_more;
  std::string to_b, to_a;
  bool a_sent_extra = false, b_sent_extra = false;
  for (int round = 0; round < 10000; ++round) {
    to_b += a.take_output();
    to_a += b.take_output();
    if (st_a == hs::status::done && !a_sent_extra) {
      to_b += a_extra;
      a_sent_extra = true;
    }
    if (st_b == hs::status::done && !b_sent_extra) {
      to_a += b_extra;
      b_sent_extra = true;
    }
    if (to_a.empty() && to_b.empty()) break;
    if (!to_b.empty() && st_b == hs::status::need_more) {
      const auto n = std::min(chunk, to_b.size());
      st_b = b.feed(to_b.substr(0, n));
      to_b.erase(0, n);
    } else if (st_b != hs::status::need_more) {
      to_b.clear();
    }
    if (!to_a.empty() && st_a == hs::status::need_more) {
      const auto n = std::min(chunk, to_a.size());
      st_a = a.feed(to_a.substr(0, n));
      to_a.erase(0, n);
    } else if (st_a != hs::status::need_more) {
      to_a.clear();
    }
  }
  return {st_a, st_b};
}

}  // namespace

TEST(Rc4, KeystreamAfterDiscardMatchesIndependentImplementation) {
  std::array<std::uint8_t, 20> key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(i);
  net::rc4 c(key);
  std::string zeros(16, '\0');
  c.apply(zeros);
  // The `cryptography` package's ARC4, key 00..13, 1024 bytes dropped, then 16 zero bytes.
  EXPECT_EQ(to_hex(zeros), "cb84e3c95ede7bb7651390078ae97777");
}

TEST(Mse, Rc4BothWaysIncludingBytesRightAfterTheHandshake) {
  const std::vector<sha1_digest> served{skey_of('x'), skey_of('t')};
  for (std::size_t chunk : {1u, 7u, 100u, 4096u}) {
    // A `preferred` dialler (offers both) meets a `required` responder: RC4.
    auto a = hs::initiator(skey_of('t'), mse::offer_for(mse::policy::preferred));
    auto b =
        hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::accept_for(mse::policy::required));
    auto [sa, sb] = run(a, b, chunk);
    ASSERT_EQ(sa, hs::status::done) << a.err().message();
    ASSERT_EQ(sb, hs::status::done) << b.err().message();
    EXPECT_EQ(a.selected(), mse::crypto_rc4);
    EXPECT_EQ(b.selected(), mse::crypto_rc4);
    EXPECT_EQ(b.skey(), skey_of('t'));
    auto ae = a.take_encryptor(), ad = a.take_decryptor(), be = b.take_encryptor(), bd = b.take_decryptor();
    ASSERT_TRUE(ae && ad && be && bd);
    std::string msg =
        "\x13"
        "BitTorrent protocol and then some";
    std::string wire = msg;
    ae->apply(wire);
    EXPECT_NE(wire, msg);
    bd->apply(wire);
    EXPECT_EQ(wire, msg);
    std::string back = "reply";
    be->apply(back);
    ad->apply(back);
    EXPECT_EQ(back, "reply");
  }
}

TEST(Mse, LeftoverBytesAreDecrypted) {
  const std::vector<sha1_digest> served{skey_of('t')};
  auto a = hs::initiator(skey_of('t'), mse::crypto_rc4);
  auto b = hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::crypto_rc4, 7);
  // Drive by hand so the responder's reply and the first encrypted payload arrive in one read.
  b.feed(a.take_output());
  std::string reply = b.take_output();
  ASSERT_EQ(a.feed(reply), hs::status::need_more);
  ASSERT_EQ(b.feed(a.take_output()), hs::status::done) << b.err().message();
  std::string tail = b.take_output();
  auto be = b.take_encryptor();
  std::string payload = "hello over rc4";
  be->apply(payload);
  ASSERT_EQ(a.feed(tail + payload), hs::status::done) << a.err().message();
  EXPECT_EQ(a.take_leftover(), "hello over rc4");
}

TEST(Mse, PlaintextSelectedWhenThatIsAllTheInitiatorOffers) {
  const std::vector<sha1_digest> served{skey_of('t')};
  auto a = hs::initiator(skey_of('t'), mse::crypto_plaintext);
  auto b =
      hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::crypto_rc4 | mse::crypto_plaintext);
  auto [sa, sb] = run(a, b, 13);
  ASSERT_EQ(sa, hs::status::done) << a.err().message();
  ASSERT_EQ(sb, hs::status::done) << b.err().message();
  EXPECT_EQ(a.selected(), mse::crypto_plaintext);
  EXPECT_FALSE(a.take_encryptor());
  EXPECT_FALSE(b.take_decryptor());
}

TEST(Mse, RequiredRefusesAPlaintextOnlyOffer) {
  const std::vector<sha1_digest> served{skey_of('t')};
  auto a = hs::initiator(skey_of('t'), mse::crypto_plaintext);
  auto b = hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::crypto_rc4);
  auto [sa, sb] = run(a, b, 50);
  EXPECT_EQ(sb, hs::status::failed);
  EXPECT_NE(b.err().message().find("no method in common"), std::string::npos) << b.err().message();
  EXPECT_NE(sa, hs::status::done);
}

TEST(Mse, UnknownTorrentFails) {
  const std::vector<sha1_digest> served{skey_of('x')};
  auto a = hs::initiator(skey_of('t'), mse::crypto_rc4);
  auto b = hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::crypto_rc4);
  auto [sa, sb] = run(a, b, 1000);
  EXPECT_EQ(sb, hs::status::failed);
  EXPECT_NE(b.err().message().find("torrent we do not serve"), std::string::npos);
}

TEST(Mse, PublicKeysOutOfRangeAreRefused) {
  for (int which = 0; which < 3; ++which) {
    std::string y(mse::key_size, '\0');
    if (which == 1) y.back() = 1;
    if (which == 2) y.assign(mse::key_size, '\xff');  // above P
    auto b = hs::responder([](const sha1_digest&) { return std::optional<sha1_digest>(); }, mse::crypto_rc4);
    EXPECT_EQ(b.feed(y), hs::status::failed);
    EXPECT_NE(b.err().message().find("out of range"), std::string::npos);
  }
}

TEST(Mse, NoSynchronisationWithin512BytesFails) {
  auto a = hs::initiator(skey_of('t'), mse::crypto_rc4, 3);
  auto b = hs::responder([](const sha1_digest&) { return std::optional<sha1_digest>(); }, mse::crypto_rc4, 5);
  b.feed(a.take_output().substr(0, mse::key_size));  // Ya alone, then junk instead of HASH('req1', S)
  std::string junk(mse::max_pad + 20, 'j');
  EXPECT_EQ(b.feed(junk), hs::status::failed);
  EXPECT_NE(b.err().message().find("within 512 bytes"), std::string::npos);
  // The initiator: Yb, then junk where ENCRYPT(VC) should be.
  auto a2 = hs::initiator(skey_of('t'), mse::crypto_rc4, 3);
  (void)a2.take_output();
  std::string yb = b.take_output().substr(0, mse::key_size);
  EXPECT_EQ(a2.feed(yb + std::string(mse::max_pad + 8, 'j')), hs::status::failed);
}

TEST(Mse, PolicyNames) {
  EXPECT_EQ(mse::parse_policy("required"), mse::policy::required);
  EXPECT_EQ(mse::parse_policy("preferred"), mse::policy::preferred);
  EXPECT_EQ(mse::parse_policy("allowed"), mse::policy::allowed);
  EXPECT_FALSE(mse::parse_policy("forced"));
}

TEST(Rc4, OutOfPlaceEqualsInPlace) {
  std::array<std::uint8_t, 20> key{};
  key.fill(9);
  net::rc4 a(key), b(key);
  std::string plain(100000, '\0');
  for (std::size_t i = 0; i < plain.size(); ++i)
    plain[i] = static_cast<char>(i * 7);
  std::string in_place = plain, out(plain.size(), '\0');
  a.apply(in_place);
  b.apply(plain.data(), out.data(), plain.size());
  EXPECT_EQ(out, in_place);
  EXPECT_NE(out, plain);
  EXPECT_EQ(plain[1], static_cast<char>(7));  // the source is left alone
}

TEST(Mse, PoliciesOfferAndAccept) {
  EXPECT_EQ(mse::offer_for(mse::policy::preferred), mse::crypto_rc4 | mse::crypto_plaintext);
  EXPECT_EQ(mse::accept_for(mse::policy::preferred), mse::crypto_rc4 | mse::crypto_plaintext);
  EXPECT_EQ(mse::offer_for(mse::policy::required), mse::crypto_rc4);
  EXPECT_EQ(mse::accept_for(mse::policy::required), mse::crypto_rc4);
  EXPECT_EQ(mse::select_method(mse::crypto_rc4 | mse::crypto_plaintext, mse::crypto_rc4 | mse::crypto_plaintext),
            mse::crypto_plaintext);
  EXPECT_EQ(mse::select_method(mse::crypto_rc4 | mse::crypto_plaintext, mse::crypto_rc4), mse::crypto_rc4);
  EXPECT_EQ(mse::select_method(mse::crypto_rc4, mse::crypto_rc4 | mse::crypto_plaintext), mse::crypto_rc4);
  EXPECT_EQ(mse::select_method(mse::crypto_plaintext, mse::crypto_rc4), 0u);
}

// The default: both sides `preferred`. The handshake is the obfuscated one (the dialler's
// first bytes are a DH key, not the BitTorrent header), then the stream is plaintext.
TEST(Mse, PreferredBothSidesSelectsPlaintextAfterTheObfuscatedHandshake) {
  const std::vector<sha1_digest> served{skey_of('t')};
  for (std::size_t chunk : {1u, 13u, 4096u}) {
    auto a = hs::initiator(skey_of('t'), mse::offer_for(mse::policy::preferred));
    auto b = hs::responder([&](const sha1_digest& r) { return find_in(served, r); },
                           mse::accept_for(mse::policy::preferred));
    std::string first = a.take_output();
    ASSERT_GE(first.size(), mse::key_size);
    EXPECT_EQ(first.find("BitTorrent protocol"), std::string::npos);
    ASSERT_EQ(b.feed(first), hs::status::need_more);
    auto [sa, sb] = run(a, b, chunk, {}, "after the handshake");
    ASSERT_EQ(sa, hs::status::done) << a.err().message();
    ASSERT_EQ(sb, hs::status::done) << b.err().message();
    EXPECT_EQ(a.selected(), mse::crypto_plaintext);
    EXPECT_EQ(b.selected(), mse::crypto_plaintext);
    EXPECT_FALSE(a.take_encryptor());
    EXPECT_FALSE(a.take_decryptor());
    EXPECT_FALSE(b.take_encryptor());
    EXPECT_FALSE(b.take_decryptor());
  }
}

TEST(Mse, RequiredBothSidesSelectsRc4) {
  const std::vector<sha1_digest> served{skey_of('t')};
  for (auto [offer, accept] : {std::pair{mse::policy::required, mse::policy::required},
                               std::pair{mse::policy::required, mse::policy::preferred},
                               std::pair{mse::policy::preferred, mse::policy::required}}) {
    auto a = hs::initiator(skey_of('t'), mse::offer_for(offer));
    auto b = hs::responder([&](const sha1_digest& r) { return find_in(served, r); }, mse::accept_for(accept));
    auto [sa, sb] = run(a, b, 100);
    ASSERT_EQ(sa, hs::status::done) << a.err().message();
    ASSERT_EQ(sb, hs::status::done) << b.err().message();
    EXPECT_EQ(a.selected(), mse::crypto_rc4);
    EXPECT_EQ(b.selected(), mse::crypto_rc4);
    EXPECT_TRUE(a.take_encryptor() && b.take_decryptor());
  }
}
