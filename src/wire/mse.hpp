// Message Stream Encryption / Protocol Encryption (MSE/PE): the obfuscated handshake
// (768-bit Diffie-Hellman, then RC4 keyed from the shared secret and the info-hash) as a
// state machine without I/O. Bytes received go in through feed(); bytes to send come out
// of take_output(). That keeps the handshake fuzzable and testable on its own; the
// session runs it over a socket.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "net/rc4.hpp"

namespace shoal::wire::mse {

constexpr std::uint32_t crypto_plaintext = 0x01;
constexpr std::uint32_t crypto_rc4 = 0x02;
constexpr std::size_t key_size = 96;       // Ya, Yb: 768 bits, big-endian
constexpr std::size_t max_pad = 512;       // PadA..PadD
constexpr std::size_t max_initial = 4096;  // IA, the initiator's first payload (a handshake is 68)

// The policies users choose, as in Transmission and qBittorrent.
enum class policy { allowed, preferred, required };
[[nodiscard]] std::optional<policy> parse_policy(std::string_view s);
[[nodiscard]] const char* to_string(policy p);

// What a policy offers in crypto_provide when dialling with MSE: `required` offers RC4
// only; `preferred` (and `allowed`, when it does answer an MSE handshake) offers both, so
// the header is obfuscated and the stream may continue in plaintext, as libtorrent does
// by default. (Under `allowed` shoal dials in plaintext and never calls this.)
[[nodiscard]] std::uint32_t offer_for(policy p);
// What a policy accepts when it answers an MSE handshake: RC4 only under `required`,
// either method otherwise.
[[nodiscard]] std::uint32_t accept_for(policy p);
// The method a responder selects from what the initiator offered and what it accepts:
// plaintext whenever both sides allow it (RC4 over the whole stream costs ~3x the CPU per
// byte, and the handshake has already hidden the BitTorrent header), else RC4, else 0
// (no method in common).
[[nodiscard]] std::uint32_t select_method(std::uint32_t offered, std::uint32_t accepted);

// 768-bit DH key pair with MSE's prime and generator 2; the private part is 160 random bits.
class dh_key {
 public:
  explicit dh_key(std::optional<std::uint32_t> seed = {});
  ~dh_key();
  dh_key(dh_key&&) noexcept;
  dh_key& operator=(dh_key&&) noexcept;
  [[nodiscard]] const std::array<std::uint8_t, key_size>& public_key() const { return pub_; }
  // The shared secret S for the other side's public key; nullopt when that key is out of
  // range (0, 1, P-1 or >= P: a peer choosing it would fix the secret).
  [[nodiscard]] std::optional<std::array<std::uint8_t, key_size>> shared_secret(std::string_view other) const;

 private:
  struct impl;
  std::unique_ptr<impl> p_;
  std::array<std::uint8_t, key_size> pub_{};
};

class handshake {
 public:
  enum class status { need_more, done, failed };

  // The side that dialled: knows the torrent (SKEY is its info-hash as sent in the BT
  // handshake), offers `provide` (crypto_rc4 and/or crypto_plaintext).
  // `seed` (tests and fuzzing only) fixes the private key and leaves out padding.
  static handshake initiator(const sha1_digest& skey, std::uint32_t provide, std::optional<std::uint32_t> seed = {});
  // The side that accepted: `find` maps HASH('req2', SKEY) to the SKEY of a torrent we
  // serve; `allowed` says which methods we accept; select_method() picks one (plaintext
  // when both sides allow it).
  static handshake responder(std::function<std::optional<sha1_digest>(const sha1_digest& req2)> find,
                             std::uint32_t allowed, std::optional<std::uint32_t> seed = {});

  handshake(handshake&&) noexcept;
  handshake& operator=(handshake&&) noexcept;
  ~handshake();

  // Consumes received bytes. After `done`, take the results below; after `failed`,
  // error() says why. Bytes received past the end of the handshake are kept (decrypted
  // when RC4 was chosen) in leftover().
  status feed(std::string_view in);
  // Bytes to send now (the initiator has output before any input).
  [[nodiscard]] std::string take_output();
  [[nodiscard]] const error& err() const { return err_; }
  [[nodiscard]] std::uint32_t selected() const { return selected_; }
  [[nodiscard]] const sha1_digest& skey() const { return skey_; }
  // The ciphers for the stream after the handshake; empty when plaintext was chosen.
  std::optional<net::rc4> take_encryptor();
  std::optional<net::rc4> take_decryptor();
  std::string take_leftover() { return std::move(leftover_); }

 private:
  enum class state {
    // initiator
    wait_yb,
    find_vc,
    read_select,
    read_pad_d,
    // responder
    wait_ya,
    find_req1,
    read_req23,
    read_vc,
    read_pad_c,
    read_ia,
    done,
    failed
  };
  handshake() = default;
  status fail(errc code, std::string detail);
  status step();
  void start_ciphers(bool as_initiator);
  std::string random_pad();

  bool initiator_ = false;
  state st_ = state::failed;
  std::unique_ptr<dh_key> key_;
  std::array<std::uint8_t, key_size> secret_{};
  sha1_digest skey_{};
  std::function<std::optional<sha1_digest>(const sha1_digest&)> find_;
  std::uint32_t provide_ = 0, allowed_ = 0, selected_ = 0;
  std::string in_, out_, leftover_;
  std::size_t pad_len_ = 0, ia_len_ = 0;
  std::optional<net::rc4> enc_, dec_;
  std::string sync_;  // what is searched for: ENCRYPT(VC) or HASH('req1', S)
  error err_;
  bool padded_ = true;
};

}  // namespace shoal::wire::mse
