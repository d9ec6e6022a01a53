#include "wire/mse.hpp"

#include <openssl/bn.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace shoal::wire::mse {

namespace {

// The 768-bit prime of MSE (the Oakley group 1 prime); the generator is 2.
constexpr const char* prime_hex =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A43"
    "1B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

struct bn_deleter {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
struct ctx_deleter {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;
using ctx_ptr = std::unique_ptr<BN_CTX, ctx_deleter>;

bn_ptr prime() {
  BIGNUM* p = nullptr;
  BN_hex2bn(&p, prime_hex);
  return bn_ptr(p);
}

sha1_digest hash_of(std::string_view a, std::string_view b, std::string_view c = {}) {
  hasher h(hasher::algo::sha1);
  h.update(a);
  h.update(b);
  h.update(c);
  sha1_digest d;
  h.final(d.data());
  return d;
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i)
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xff));
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}
std::uint16_t get_u16(const char* p) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(p[0]) << 8) | static_cast<std::uint8_t>(p[1]));
}

}  // namespace

std::optional<policy> parse_policy(std::string_view s) {
  if (s == "allowed" || s == "tolerated") return policy::allowed;
  if (s == "preferred") return policy::preferred;
  if (s == "required") return policy::required;
  return std::nullopt;
}

const char* to_string(policy p) {
  switch (p) {
    case policy::allowed:
      return "allowed";
    case policy::preferred:
      return "preferred";
    case policy::required:
      return "required";
  }
  return "?";
}

std::uint32_t offer_for(policy p) {
  return p == policy::required ? crypto_rc4 : (crypto_rc4 | crypto_plaintext);
}

std::uint32_t accept_for(policy p) {
  return p == policy::required ? crypto_rc4 : (crypto_rc4 | crypto_plaintext);
}

std::uint32_t select_method(std::uint32_t offered, std::uint32_t accepted) {
  const std::uint32_t common = offered & accepted;
  if (common & crypto_plaintext) return crypto_plaintext;
  if (common & crypto_rc4) return crypto_rc4;
  return 0;
}

struct dh_key::impl {
  bn_ptr priv;
};

dh_key::dh_key(std::optional<std::uint32_t> seed) : p_(std::make_unique<impl>()) {
  std::array<std::uint8_t, 20> x{};
  if (seed) {
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<std::uint8_t>((*seed >> (8 * (i % 4))) + i * 37 + 1);
  } else if (RAND_bytes(x.data(), static_cast<int>(x.size())) != 1) {
    throw std::runtime_error("no randomness for the MSE key");
  }
  p_->priv.reset(BN_bin2bn(x.data(), static_cast<int>(x.size()), nullptr));
  BN_set_flags(p_->priv.get(), BN_FLG_CONSTTIME);
  auto p = prime();
  bn_ptr g(BN_new()), y(BN_new());
  ctx_ptr ctx(BN_CTX_new());
  BN_set_word(g.get(), 2);
  if (!BN_mod_exp(y.get(), g.get(), p_->priv.get(), p.get(), ctx.get()) ||
      BN_bn2binpad(y.get(), pub_.data(), static_cast<int>(pub_.size())) < 0) {
    throw std::runtime_error("MSE key generation failed");
  }
}

dh_key::~dh_key() = default;
dh_key::dh_key(dh_key&&) noexcept = default;
dh_key& dh_key::operator=(dh_key&&) noexcept = default;

std::optional<std::array<std::uint8_t, key_size>> dh_key::shared_secret(std::string_view other) const {
  if (other.size() != key_size) return std::nullopt;
  auto p = prime();
  bn_ptr y(BN_bin2bn(reinterpret_cast<const unsigned char*>(other.data()), static_cast<int>(other.size()), nullptr));
  bn_ptr pm1(BN_dup(p.get()));
  BN_sub_word(pm1.get(), 1);
  // 1 < y < P-1, or the secret is fixed whatever our key is.
  if (BN_cmp(y.get(), BN_value_one()) <= 0 || BN_cmp(y.get(), pm1.get()) >= 0) return std::nullopt;
  bn_ptr s(BN_new());
  ctx_ptr ctx(BN_CTX_new());
  std::array<std::uint8_t, key_size> out{};
  if (!BN_mod_exp(s.get(), y.get(), p_->priv.get(), p.get(), ctx.get()) ||
      BN_bn2binpad(s.get(), out.data(), static_cast<int>(out.size())) < 0) {
    return std::nullopt;
  }
  return out;
}

handshake handshake::initiator(const sha1_digest& skey, std::uint32_t provide, std::optional<std::uint32_t> seed) {
  handshake h;
  h.initiator_ = true;
  h.skey_ = skey;
  h.provide_ = provide;
  h.padded_ = !seed;
  h.key_ = std::make_unique<dh_key>(seed);
  h.out_.assign(reinterpret_cast<const char*>(h.key_->public_key().data()), key_size);
  h.out_ += h.random_pad();
  h.st_ = state::wait_yb;
  return h;
}

handshake handshake::responder(std::function<std::optional<sha1_digest>(const sha1_digest&)> find,
                               std::uint32_t allowed, std::optional<std::uint32_t> seed) {
  handshake h;
  h.find_ = std::move(find);
  h.allowed_ = allowed;
  h.padded_ = !seed;
  h.key_ = std::make_unique<dh_key>(seed);
  h.st_ = state::wait_ya;
  return h;
}

handshake::handshake(handshake&&) noexcept = default;
handshake& handshake::operator=(handshake&&) noexcept = default;
handshake::~handshake() = default;

std::string handshake::random_pad() {
  if (!padded_) return {};
  std::uint8_t len[2];
  RAND_bytes(len, 2);
  std::string pad((static_cast<std::size_t>(len[0]) << 8 | len[1]) % (max_pad + 1), '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(pad.data()), static_cast<int>(pad.size()));
  return pad;
}

std::string handshake::take_output() {
  return std::exchange(out_, {});
}
std::optional<net::rc4> handshake::take_encryptor() {
  return std::exchange(enc_, std::nullopt);
}
std::optional<net::rc4> handshake::take_decryptor() {
  return std::exchange(dec_, std::nullopt);
}

handshake::status handshake::fail(errc code, std::string detail) {
  st_ = state::failed;
  err_ = error{code, "encryption handshake: " + std::move(detail)};
  return status::failed;
}

void handshake::start_ciphers(bool as_initiator) {
  const std::string_view s(reinterpret_cast<const char*>(secret_.data()), secret_.size());
  const auto key_a = hash_of("keyA", s, as_view(skey_));
  const auto key_b = hash_of("keyB", s, as_view(skey_));
  enc_.emplace(as_initiator ? key_a : key_b);
  dec_.emplace(as_initiator ? key_b : key_a);
}

handshake::status handshake::feed(std::string_view in) {
  if (st_ == state::done || st_ == state::failed) return st_ == state::done ? status::done : status::failed;
  in_.append(in);
  return step();
}

handshake::status handshake::step() {
  for (;;) {
    switch (st_) {
      case state::wait_yb:
      case state::wait_ya: {
        if (in_.size() < key_size) return status::need_more;
        auto s = key_->shared_secret(std::string_view(in_).substr(0, key_size));
        if (!s) return fail(errc::syntax, "the peer's public key is out of range");
        secret_ = *s;
        in_.erase(0, key_size);
        const std::string_view sv(reinterpret_cast<const char*>(secret_.data()), secret_.size());
        if (initiator_) {
          out_ += as_view(hash_of("req1", sv));
          auto req2 = hash_of("req2", as_view(skey_));
          const auto req3 = hash_of("req3", sv);
          for (std::size_t i = 0; i < req2.size(); ++i)
            req2[i] ^= req3[i];
          out_ += as_view(req2);
          start_ciphers(true);
          std::string block(8, '\0');  // VC
          put_u32(block, provide_);
          const std::string pad = padded_ ? std::string(random_pad().size() % 64, '\0') : std::string();
          put_u16(block, static_cast<std::uint16_t>(pad.size()));
          block += pad;
          put_u16(block, 0);  // no initial payload: the BT handshake follows, encrypted as chosen
          enc_->apply(block);
          out_ += block;
          // The responder's reply starts with ENCRYPT(VC) under key B, somewhere after PadB.
          sync_.assign(8, '\0');
          dec_->apply(sync_);
          st_ = state::find_vc;
        } else {
          out_.append(reinterpret_cast<const char*>(key_->public_key().data()), key_size);
          out_ += random_pad();
          const auto req1 = hash_of("req1", sv);
          sync_.assign(as_view(req1));
          st_ = state::find_req1;
        }
        break;
      }
      case state::find_vc:
      case state::find_req1: {
        const auto pos = in_.find(sync_);
        if (pos == std::string::npos || pos > max_pad) {
          if (in_.size() >= max_pad + sync_.size() || (pos != std::string::npos && pos > max_pad)) {
            return fail(errc::syntax, st_ == state::find_vc ? "no verification constant within 512 bytes"
                                                            : "no synchronisation hash within 512 bytes");
          }
          return status::need_more;
        }
        in_.erase(0, pos + sync_.size());
        st_ = st_ == state::find_vc ? state::read_select : state::read_req23;
        break;
      }
      case state::read_select: {
        if (in_.size() < 6) return status::need_more;
        dec_->apply(in_.data(), 6);
        selected_ = get_u32(in_.data());
        pad_len_ = get_u16(in_.data() + 4);
        in_.erase(0, 6);
        if ((selected_ != crypto_rc4 && selected_ != crypto_plaintext) || !(selected_ & provide_)) {
          return fail(errc::syntax, "the peer selected method " + std::to_string(selected_) + ", not one offered");
        }
        if (pad_len_ > max_pad) return fail(errc::limit_exceeded, "padding of " + std::to_string(pad_len_) + " bytes");
        st_ = state::read_pad_d;
        break;
      }
      case state::read_pad_d: {
        if (in_.size() < pad_len_) return status::need_more;
        dec_->apply(in_.data(), pad_len_);
        in_.erase(0, pad_len_);
        leftover_ = std::move(in_);
        in_.clear();
        if (selected_ == crypto_rc4) {
          dec_->apply(leftover_);
        } else {
          enc_.reset();
          dec_.reset();
        }
        st_ = state::done;
        return status::done;
      }
      case state::read_req23: {
        if (in_.size() < 20) return status::need_more;
        const std::string_view sv(reinterpret_cast<const char*>(secret_.data()), secret_.size());
        const auto req3 = hash_of("req3", sv);
        sha1_digest req2{};
        for (std::size_t i = 0; i < req2.size(); ++i)
          req2[i] = static_cast<std::uint8_t>(in_[i]) ^ req3[i];
        in_.erase(0, 20);
        auto skey = find_ ? find_(req2) : std::nullopt;
        if (!skey) return fail(errc::invalid_argument, "the peer asked for a torrent we do not serve");
        skey_ = *skey;
        start_ciphers(false);
        st_ = state::read_vc;
        break;
      }
      case state::read_vc: {
        if (in_.size() < 14) return status::need_more;
        dec_->apply(in_.data(), 14);
        if (std::any_of(in_.begin(), in_.begin() + 8, [](char c) { return c != 0; })) {
          return fail(errc::syntax, "wrong verification constant");
        }
        provide_ = get_u32(in_.data() + 8);
        pad_len_ = get_u16(in_.data() + 12);
        in_.erase(0, 14);
        if (pad_len_ > max_pad) return fail(errc::limit_exceeded, "padding of " + std::to_string(pad_len_) + " bytes");
        st_ = state::read_pad_c;
        break;
      }
      case state::read_pad_c: {
        if (in_.size() < pad_len_ + 2) return status::need_more;
        dec_->apply(in_.data(), pad_len_ + 2);
        ia_len_ = get_u16(in_.data() + pad_len_);
        in_.erase(0, pad_len_ + 2);
        if (ia_len_ > max_initial) {
          return fail(errc::limit_exceeded, "initial payload of " + std::to_string(ia_len_) + " bytes");
        }
        st_ = state::read_ia;
        break;
      }
      case state::read_ia: {
        if (in_.size() < ia_len_) return status::need_more;
        selected_ = select_method(provide_, allowed_);
        if (selected_ == 0) {
          return fail(errc::invalid_argument, "no method in common (peer offers " + std::to_string(provide_) + ")");
        }
        // IA is always encrypted; what follows it only when RC4 was chosen.
        dec_->apply(in_.data(), ia_len_);
        leftover_ = in_.substr(0, ia_len_);
        std::string rest = in_.substr(ia_len_);
        in_.clear();
        std::string block(8, '\0');
        put_u32(block, selected_);
        const std::string pad = padded_ ? std::string(random_pad().size() % 64, '\0') : std::string();
        put_u16(block, static_cast<std::uint16_t>(pad.size()));
        block += pad;
        enc_->apply(block);
        out_ += block;
        if (selected_ == crypto_rc4) {
          dec_->apply(rest);
        } else {
          enc_.reset();
          dec_.reset();
        }
        leftover_ += rest;
        st_ = state::done;
        return status::done;
      }
      case state::done:
        return status::done;
      case state::failed:
        return status::failed;
    }
  }
}

}  // namespace shoal::wire::mse
