// Folder keys and device identities for `shoal sync`.
//
// A folder's read-write key is a 32-byte Ed25519 seed: whoever holds it can sign index
// records. Its read-only key is the Ed25519 public key derived from that seed: enough to
// verify every record and to find the folder's peers, never enough to sign, and the seed
// cannot be recovered from it. The share id (what peers and discovery name the folder by)
// and the DHT id are hashes of the public key, so both kinds of key reach the same folder.
//
// Text form of a key: one type letter ('W' read-write, 'R' read-only), then RFC 4648
// base32 (A-Z, 2-7, no padding) of the 32-byte payload followed by a 4-byte checksum, the
// first 4 bytes of SHA-256("shoal-sync-key" || letter || payload). 59 characters in all.
// Parsing accepts lower case and ignores spaces and '-', so a key read aloud or grouped
// still parses; any other change is caught by the checksum.
//
// Secrets are wiped from memory when a key is destroyed and no type here has an
// operator<<: a key is only ever printed on purpose, through its *_text() functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace shoal::sync {

inline constexpr std::size_t seed_bytes = 32;
inline constexpr std::size_t public_key_bytes = 32;
inline constexpr std::size_t signature_bytes = 64;
inline constexpr std::size_t key_checksum_bytes = 4;
// Type letter + base32 of 36 bytes.
inline constexpr std::size_t key_text_chars = 1 + 58;
// A key text longer than this (spaces and '-' included) is refused before any work.
inline constexpr std::size_t max_key_input = 1024;

using public_key = std::array<std::uint8_t, public_key_bytes>;
using signature = std::array<std::uint8_t, signature_bytes>;
using share_id = sha256_digest;
using dht_id = sha1_digest;  // 20 bytes: the mainline DHT's id size

enum class key_type : char { read_write = 'W', read_only = 'R' };

// Parse errors name what is wrong; these two messages are what a user sees for a string
// that is not a key at all and for a key with a typo.
inline constexpr std::string_view not_a_key_message = "not a shoal sync key";
inline constexpr std::string_view checksum_message = "checksum does not match: is the key mistyped?";

// A folder's key: read-write (holds the seed and the secret key) or read-only (the public
// key alone). Copyable; the secret parts are wiped on destruction.
class folder_key {
 public:
  // A fresh read-write key from the system's random source.
  [[nodiscard]] static folder_key generate();
  [[nodiscard]] static folder_key from_seed(const std::array<std::uint8_t, seed_bytes>& seed);
  [[nodiscard]] static folder_key from_public(const public_key& pk);
  // Parses a key's text form (see the top of this file). Errors: errc::syntax with
  // not_a_key_message (plus what is wrong) or checksum_message.
  [[nodiscard]] static result<folder_key> parse(std::string_view text);

  folder_key(const folder_key&);
  folder_key& operator=(const folder_key&);
  ~folder_key();

  [[nodiscard]] key_type type() const { return type_; }
  [[nodiscard]] bool can_write() const { return type_ == key_type::read_write; }
  [[nodiscard]] const public_key& pub() const { return pk_; }
  // The read-only view of this key (the same key if it is already read-only).
  [[nodiscard]] folder_key read_only() const { return from_public(pk_); }

  // "W..." (throws std::logic_error on a read-only key) and "R...".
  [[nodiscard]] std::string read_write_text() const;
  [[nodiscard]] std::string read_only_text() const;
  // The text of this key as it is: read_write_text() or read_only_text().
  [[nodiscard]] std::string text() const { return can_write() ? read_write_text() : read_only_text(); }

  [[nodiscard]] share_id share() const;
  [[nodiscard]] dht_id dht() const;

  // A detached Ed25519 signature over msg (throws std::logic_error on a read-only key).
  [[nodiscard]] signature sign(std::string_view msg) const;
  [[nodiscard]] bool verify(std::string_view msg, const signature& sig) const;

 private:
  folder_key() = default;
  key_type type_ = key_type::read_only;
  std::array<std::uint8_t, seed_bytes> seed_{};
  std::array<std::uint8_t, 64> secret_{};  // libsodium's secret key: seed || public key
  public_key pk_{};
};

// Detached Ed25519 verification with a bare public key.
[[nodiscard]] bool verify(const public_key& pk, std::string_view msg, const signature& sig);
[[nodiscard]] bool verify(const public_key& pk, std::string_view msg, std::string_view sig);

// share id = SHA-256("shoal-sync-share" || public key).
[[nodiscard]] share_id share_id_of(const public_key& pk);
// dht id = SHA-1("shoal-sync-dht" || share id): the 20-byte id announced on the DHT.
[[nodiscard]] dht_id dht_id_of(const share_id& share);

// Text form for any one-letter-typed 32-byte payload (used for keys and device keys).
[[nodiscard]] std::string encode_key_text(char letter, std::string_view payload32);
// Decodes a key text whose letter is one of `letters`; gives the letter and the payload.
struct decoded_key_text {
  char letter = 0;
  std::string payload;
};
[[nodiscard]] result<decoded_key_text> decode_key_text(std::string_view text, std::string_view letters);

// A device's own identity: an Ed25519 key pair kept in DIR/.shoal/device.key (mode 0600).
// Its id, printable and short, names the device in version vectors and to its peers.
inline constexpr std::size_t device_id_chars = 26;  // base32 of 16 bytes

class device_identity {
 public:
  [[nodiscard]] static device_identity generate();
  // Reads `file`, or makes a new identity and writes it there (mode 0600) if it is missing.
  // Errors: errc::io (unreadable, unwritable), errc::syntax (not a device key).
  [[nodiscard]] static result<device_identity> load_or_create(const std::filesystem::path& file);

  device_identity(const device_identity&);
  device_identity& operator=(const device_identity&);
  ~device_identity();

  [[nodiscard]] const std::string& id() const { return id_; }
  [[nodiscard]] const public_key& pub() const { return pk_; }
  [[nodiscard]] signature sign(std::string_view msg) const;

 private:
  device_identity() = default;
  void derive();
  std::array<std::uint8_t, seed_bytes> seed_{};
  std::array<std::uint8_t, 64> secret_{};
  public_key pk_{};
  std::string id_;
};

// base32 of the first 16 bytes of SHA-256(public key).
[[nodiscard]] std::string device_id_of(const public_key& pk);

// Writes `content` to `file` with mode 0600 through a temporary file and a rename, so a
// crash leaves the old file or the new one. Errors: errc::io naming the file.
[[nodiscard]] result<bool> write_private_file(const std::filesystem::path& file, std::string_view content);

}  // namespace shoal::sync
