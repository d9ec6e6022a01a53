#include "sync/keys.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/text.hpp"

namespace shoal::sync {

namespace {

void ensure_sodium() {
  // Idempotent and thread-safe; a failure means no usable random source.
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

std::string_view bytes_view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

std::array<std::uint8_t, key_checksum_bytes> checksum(char letter, std::string_view payload) {
  std::string in = "shoal-sync-key";
  in += letter;
  in.append(payload);
  const auto d = sha256(in);
  std::array<std::uint8_t, key_checksum_bytes> c{};
  std::copy_n(d.begin(), c.size(), c.begin());
  return c;
}

error not_a_key(std::string_view why) {
  return error{errc::syntax, std::string(not_a_key_message) + " (" + std::string(why) + ")"};
}

}  // namespace

std::string encode_key_text(char letter, std::string_view payload32) {
  std::string raw(payload32);
  const auto c = checksum(letter, payload32);
  raw.append(bytes_view(c.data(), c.size()));
  return std::string(1, letter) + to_base32(raw);
}

result<decoded_key_text> decode_key_text(std::string_view text, std::string_view letters) {
  if (text.size() > max_key_input) return not_a_key("longer than " + std::to_string(max_key_input) + " characters");
  std::string clean;
  clean.reserve(key_text_chars);
  for (char c : text) {
    if (c == ' ' || c == '-' || c == '\t' || c == '\n' || c == '\r') continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    clean += c;
  }
  if (clean.empty()) return not_a_key("empty");
  const char letter = clean[0];
  if (letters.find(letter) == std::string_view::npos) {
    std::string want;
    for (char l : letters)
      want += std::string(want.empty() ? "" : " or ") + "'" + l + "'";
    return not_a_key("it must start with " + want);
  }
  if (clean.size() != key_text_chars) {
    return not_a_key(std::to_string(clean.size()) + " letters and digits, not " + std::to_string(key_text_chars));
  }
  auto raw = from_base32(std::string_view(clean).substr(1));
  if (!raw) {
    // A digit outside A-Z, 2-7 (such as 0, 1, 8, 9) is a typo too.
    for (char c : std::string_view(clean).substr(1)) {
      if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')))
        return not_a_key(std::string("'") + c + "' is not a base32 digit (A-Z, 2-7)");
    }
    return error{errc::syntax, std::string(checksum_message)};  // bits past the end are not zero
  }
  if (raw->size() != 32 + key_checksum_bytes) return not_a_key("wrong length");
  const std::string_view payload = std::string_view(*raw).substr(0, 32);
  const auto want = checksum(letter, payload);
  if (std::memcmp(want.data(), raw->data() + 32, key_checksum_bytes) != 0) {
    return error{errc::syntax, std::string(checksum_message)};
  }
  decoded_key_text out;
  out.letter = letter;
  out.payload = std::string(payload);
  sodium_memzero(raw->data(), raw->size());
  sodium_memzero(clean.data(), clean.size());
  return out;
}

folder_key folder_key::generate() {
  ensure_sodium();
  std::array<std::uint8_t, seed_bytes> seed{};
  randombytes_buf(seed.data(), seed.size());
  folder_key k = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return k;
}

folder_key folder_key::from_seed(const std::array<std::uint8_t, seed_bytes>& seed) {
  ensure_sodium();
  folder_key k;
  k.type_ = key_type::read_write;
  k.seed_ = seed;
  crypto_sign_seed_keypair(k.pk_.data(), k.secret_.data(), k.seed_.data());
  return k;
}

folder_key folder_key::from_public(const public_key& pk) {
  ensure_sodium();
  folder_key k;
  k.type_ = key_type::read_only;
  k.pk_ = pk;
  return k;
}

result<folder_key> folder_key::parse(std::string_view text) {
  auto d = decode_key_text(text, "WR");
  if (!d) return d.err();
  if (d->letter == 'W') {
    std::array<std::uint8_t, seed_bytes> seed{};
    std::memcpy(seed.data(), d->payload.data(), seed.size());
    sodium_memzero(d->payload.data(), d->payload.size());
    folder_key k = from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    return k;
  }
  public_key pk{};
  std::memcpy(pk.data(), d->payload.data(), pk.size());
  // Not every 32-byte string is a point on the curve: such a "key" could verify nothing.
  ensure_sodium();
  std::array<std::uint8_t, crypto_scalarmult_curve25519_BYTES> x{};
  if (crypto_sign_ed25519_pk_to_curve25519(x.data(), pk.data()) != 0) {
    return not_a_key("the read-only key is not a valid public key");
  }
  return from_public(pk);
}

folder_key::folder_key(const folder_key&) = default;
folder_key& folder_key::operator=(const folder_key&) = default;
folder_key::~folder_key() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(secret_.data(), secret_.size());
}

std::string folder_key::read_write_text() const {
  if (!can_write()) throw std::logic_error("a read-only key has no read-write text");
  return encode_key_text('W', bytes_view(seed_.data(), seed_.size()));
}

std::string folder_key::read_only_text() const {
  return encode_key_text('R', bytes_view(pk_.data(), pk_.size()));
}

share_id folder_key::share() const {
  return share_id_of(pk_);
}
dht_id folder_key::dht() const {
  return dht_id_of(share());
}

signature folder_key::sign(std::string_view msg) const {
  if (!can_write()) throw std::logic_error("a read-only key cannot sign");
  signature sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       secret_.data());
  return sig;
}

bool folder_key::verify(std::string_view msg, const signature& sig) const {
  return sync::verify(pk_, msg, sig);
}

bool verify(const public_key& pk, std::string_view msg, const signature& sig) {
  ensure_sodium();
  return crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                     pk.data()) == 0;
}

bool verify(const public_key& pk, std::string_view msg, std::string_view sig) {
  if (sig.size() != signature_bytes) return false;
  signature s{};
  std::memcpy(s.data(), sig.data(), s.size());
  return verify(pk, msg, s);
}

share_id share_id_of(const public_key& pk) {
  std::string in = "shoal-sync-share";
  in.append(bytes_view(pk.data(), pk.size()));
  return sha256(in);
}

dht_id dht_id_of(const share_id& share) {
  std::string in = "shoal-sync-dht";
  in.append(bytes_view(share.data(), share.size()));
  return sha1(in);
}

std::string device_id_of(const public_key& pk) {
  const auto d = sha256(bytes_view(pk.data(), pk.size()));
  return to_base32(bytes_view(d.data(), 16));
}

device_identity device_identity::generate() {
  ensure_sodium();
  device_identity d;
  randombytes_buf(d.seed_.data(), d.seed_.size());
  d.derive();
  return d;
}

void device_identity::derive() {
  crypto_sign_seed_keypair(pk_.data(), secret_.data(), seed_.data());
  id_ = device_id_of(pk_);
}

result<device_identity> device_identity::load_or_create(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    device_identity d = generate();
    auto w = write_private_file(file, encode_key_text('D', bytes_view(d.seed_.data(), d.seed_.size())) + "\n");
    if (!w) return w.err();
    return d;
  }
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) return error{errc::io, file.string() + ": cannot be read"};
  auto dk = decode_key_text(text.substr(0, max_key_input), "D");
  sodium_memzero(text.data(), text.size());
  if (!dk) return error{errc::syntax, file.string() + ": " + dk.err().message()};
  ensure_sodium();
  device_identity d;
  std::memcpy(d.seed_.data(), dk->payload.data(), d.seed_.size());
  sodium_memzero(dk->payload.data(), dk->payload.size());
  d.derive();
  return d;
}

device_identity::device_identity(const device_identity&) = default;
device_identity& device_identity::operator=(const device_identity&) = default;
device_identity::~device_identity() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(secret_.data(), secret_.size());
}

signature device_identity::sign(std::string_view msg) const {
  signature sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       secret_.data());
  return sig;
}

result<bool> write_private_file(const std::filesystem::path& file, std::string_view content) {
  const std::string tmp = file.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return error{errc::io, tmp + ": " + std::strerror(errno)};
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return error{errc::io, tmp + ": " + std::strerror(e)};
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return error{errc::io, tmp + ": " + std::strerror(e)};
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return error{errc::io, file.string() + ": " + std::strerror(e)};
  }
  return true;
}

}  // namespace shoal::sync
