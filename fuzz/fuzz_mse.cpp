// MSE/PE handshake. The first byte picks a mode:
//  0: the responder fed the input as a peer's bytes (hostile initiator);
//  1: the initiator fed the input (hostile responder);
//  2+: an honest initiator and responder whose bytes pass through a tamperer the input
//      drives (chunk sizes, flipped bytes, cut streams), which reaches every state.
// Invariants: no crash; a failure carries a reason; when both sides finish they agree on
// the method, and data one encrypts the other decrypts (unless the tamperer changed bytes:
// RC4 has no integrity, so a flipped bit in crypto_select is read as another method).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "check.hpp"
#include "wire/mse.hpp"

using namespace shoal;
using hs = wire::mse::handshake;

namespace {

sha1_digest fixed_key() {
  sha1_digest d{};
  d.fill(0x5a);
  return d;
}

std::optional<sha1_digest> find(const sha1_digest& req2) {
  hasher x(hasher::algo::sha1);
  x.update("req2");
  x.update(as_view(fixed_key()));
  sha1_digest d;
  x.final(d.data());
  if (d == req2) return fixed_key();
  return std::nullopt;
}

void check_status(hs& h, hs::status s) {
  if (s == hs::status::failed) FUZZ_CHECK(!h.err().detail.empty());
}

struct tape {
  std::string_view in;
  std::uint8_t byte() {
    if (in.empty()) return 0;
    auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  tape t{std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
  const std::uint8_t mode = data[0] % 4;
  const std::uint32_t both = wire::mse::crypto_rc4 | wire::mse::crypto_plaintext;
  if (mode == 0) {
    auto r = hs::responder(find, both, 1);
    check_status(r, r.feed(t.in));
    return 0;
  }
  if (mode == 1) {
    auto i = hs::initiator(fixed_key(), both, 1);
    (void)i.take_output();
    check_status(i, i.feed(t.in));
    return 0;
  }
  const std::uint32_t provide = 1 + t.byte() % 3;
  const std::uint32_t allowed = 1 + t.byte() % 3;
  auto a = hs::initiator(fixed_key(), provide, 2);
  auto b = hs::responder(find, allowed, 3);
  auto sa = hs::status::need_more, sb = hs::status::need_more;
  std::string to_a, to_b;
  bool tampered = false;  // RC4 has no integrity: a flipped bit can change what one side reads
  for (int round = 0; round < 64 && (sa == hs::status::need_more || sb == hs::status::need_more); ++round) {
    to_b += a.take_output();
    to_a += b.take_output();
    if (to_a.empty() && to_b.empty()) break;
    const std::uint8_t op = t.byte();
    std::string& dir = op & 1 ? to_a : to_b;
    if ((op & 0x0e) == 0x0e && !dir.empty()) {
      dir[t.byte() % dir.size()] ^= static_cast<char>(1 + t.byte() % 255);
      tampered = true;
    }
    if ((op & 0x30) == 0x30 && !dir.empty()) {
      dir.resize(t.byte() % dir.size());
      tampered = true;
    }
    for (std::string* d : {&to_b, &to_a}) {
      const std::size_t n = std::min<std::size_t>(d->size(), 1 + t.byte() * 3u);
      if (n == 0) continue;
      if (d == &to_b && sb == hs::status::need_more) sb = b.feed(std::string_view(*d).substr(0, n));
      if (d == &to_a && sa == hs::status::need_more) sa = a.feed(std::string_view(*d).substr(0, n));
      d->erase(0, n);
    }
  }
  check_status(a, sa);
  check_status(b, sb);
  if (sa == hs::status::done && sb == hs::status::done && !tampered) {
    FUZZ_CHECK(a.selected() == b.selected());
    FUZZ_CHECK(a.selected() & provide);
    auto ae = a.take_encryptor();
    auto bd = b.take_decryptor();
    FUZZ_CHECK(ae.has_value() == bd.has_value());
    if (ae && bd) {
      std::string msg = "piece data";
      ae->apply(msg);
      bd->apply(msg);
      FUZZ_CHECK(msg == "piece data");
    }
  }
  return 0;
}
