// The secure session between two devices of one folder.
//
// The folder's read-only key (the Ed25519 public key) is the credential: only members have
// it, the share id that discovery names the folder by is only its hash. So the session is
// keyed by it rather than by a certificate (TLS would need one per device and still have to
// prove folder membership on top).
//
// Handshake (the dialler speaks first, in the clear):
//   dialler  -> magic "SHOALSYNC\x01" (10 bytes), share id (32), X25519 ephemeral key (32)
//   listener -> its X25519 ephemeral key (32)
// Both compute the X25519 shared secret and derive one 32-byte key per direction with
// BLAKE2b keyed by the folder's public key over (shared secret || dialler eph || listener
// eph || direction label). A device without the read key derives other keys, so the first
// frame it receives fails to authenticate: proof of the key without sending it.
//
// Frames: 4-byte big-endian length of the ciphertext (at most max_frame_bytes), then
// ChaCha20-Poly1305 (IETF) with a 64-bit counter nonce per direction. A frame that fails to
// authenticate or is past the bound ends the session.
//
// The first frame each way is the hello: the device's Ed25519 public key and its signature
// over the transcript (share id, both ephemeral keys, the sender's role), whether it holds
// the read-write key, and its last sequence number. Device identities persist
// (DIR/.shoal/device.key), so a peer is known by the id of a key it proved it holds.
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "net/stream.hpp"
#include "sync/keys.hpp"

namespace shoal::sync {

namespace asio = boost::asio;

inline constexpr std::string_view channel_magic{"SHOALSYNC\x01", 10};
inline constexpr std::size_t channel_header_bytes = 10 + 32 + 32;
inline constexpr std::size_t aead_tag_bytes = 16;
// A message (decrypted) is at most this; a frame's ciphertext adds the tag.
inline constexpr std::size_t max_message_bytes = 4 * 1024 * 1024 + 64 * 1024;
inline constexpr std::size_t max_frame_bytes = max_message_bytes + aead_tag_bytes;
inline constexpr std::size_t max_hello_bytes = 1024;

// What a failed authentication says (no key material ever goes into it).
inline constexpr std::string_view wrong_key_message = "peer does not hold this folder's key";

// What each side tells the other in its hello.
struct hello_fields {
  bool can_write = false;
  std::uint64_t last_sequence = 0;
};

// A peer's hello, its device key checked against the signature.
struct peer_hello {
  public_key device{};
  std::string device_id;
  bool can_write = false;
  std::uint64_t last_sequence = 0;
};

// The two directional keys of a session (see the top of this file).
struct session_keys {
  std::array<std::uint8_t, 32> dialler_to_listener{};
  std::array<std::uint8_t, 32> listener_to_dialler{};
};
[[nodiscard]] session_keys derive_session_keys(const public_key& folder, const std::array<std::uint8_t, 32>& shared,
                                               const std::array<std::uint8_t, 32>& dialler_eph,
                                               const std::array<std::uint8_t, 32>& listener_eph);

// One direction of frame encryption: a key and its counter.
class frame_cipher {
 public:
  frame_cipher() = default;
  explicit frame_cipher(const std::array<std::uint8_t, 32>& key) : key_(key) {}
  ~frame_cipher();
  frame_cipher(const frame_cipher&) = default;
  frame_cipher& operator=(const frame_cipher&) = default;
  // Length prefix + ciphertext of `msg` (at most max_message_bytes), next nonce.
  [[nodiscard]] std::string seal(std::string_view msg);
  // Decrypts one frame's ciphertext (without its length prefix); false if it does not
  // authenticate (then the counter is spent: the session must end).
  [[nodiscard]] bool open(std::string_view ciphertext, std::string& out);

 private:
  std::array<std::uint8_t, 32> key_{};
  std::uint64_t counter_ = 0;
};

class secure_channel {
 public:
  using ptr = std::shared_ptr<secure_channel>;
  // Dialler side: sends the header, reads the listener's key, exchanges hellos. `claim`
  // (tests) sends another share id than the key's.
  static asio::awaitable<result<ptr>> connect(std::unique_ptr<net::stream> s, const folder_key& key,
                                              const device_identity& dev, hello_fields mine,
                                              std::optional<share_id> claim = std::nullopt);
  // Listener side: `first` are the bytes already read (the magic, perhaps more). Errors:
  // another folder's share id, a peer without the key (wrong_key_message), a bad hello.
  static asio::awaitable<result<ptr>> accept(std::unique_ptr<net::stream> s, std::string first, const folder_key& key,
                                             const device_identity& dev, hello_fields mine);

  // One message. An error ends the session (closed, tampered, past the bound).
  asio::awaitable<result<std::string>> read();
  // One message; one write at a time (the caller keeps a queue).
  asio::awaitable<result<bool>> write(std::string_view msg);
  void close();

  [[nodiscard]] const peer_hello& peer() const { return peer_; }
  [[nodiscard]] bool dialler() const { return dialler_; }
  [[nodiscard]] std::string remote() const;
  // The stream below (tests write raw bytes through it).
  [[nodiscard]] net::stream& raw() { return *s_; }

 private:
  secure_channel() = default;
  static asio::awaitable<result<ptr>> finish(ptr c, const folder_key& key, const device_identity& dev,
                                             hello_fields mine, const share_id& share,
                                             const std::array<std::uint8_t, 32>& shared,
                                             const std::array<std::uint8_t, 32>& dialler_eph,
                                             const std::array<std::uint8_t, 32>& listener_eph);
  std::unique_ptr<net::stream> s_;
  frame_cipher tx_;
  frame_cipher rx_;
  peer_hello peer_;
  bool dialler_ = false;
  bool authenticated_ = false;  // a frame from the peer has authenticated
};

// The bytes a device signs in its hello: a domain string, the share id, both ephemeral keys
// and the signer's role ('D' dialler, 'L' listener), so a hello cannot be replayed into
// another session or reflected back.
[[nodiscard]] std::string hello_transcript(const share_id& share, const std::array<std::uint8_t, 32>& dialler_eph,
                                           const std::array<std::uint8_t, 32>& listener_eph, char role);

}  // namespace shoal::sync
