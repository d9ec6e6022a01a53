// RC4 for MSE/PE, through OpenSSL 3's EVP interface. RC4 lives in OpenSSL's legacy
// provider, which is loaded explicitly (with the default provider beside it) when a
// session starts, before it holds any descriptor (rc4_available()); a load that failed
// is tried again later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace shoal::net {

class rc4 {
 public:
  // `key` is MSE's 20-byte SHA-1 key; the first 1024 bytes of keystream are discarded,
  // as MSE requires.
  explicit rc4(std::span<const std::uint8_t> key);
  ~rc4();
  rc4(rc4&&) noexcept;
  rc4& operator=(rc4&&) noexcept;
  // Encrypts or decrypts (the same operation) in place: one EVP call per buffer.
  void apply(char* data, std::size_t len) { apply(data, data, len); }
  // The same from `in` into `out` (len bytes each; they may be the same buffer), so a
  // caller that must keep its plaintext gets the ciphertext without a separate copy.
  void apply(const char* in, char* out, std::size_t len);
  void apply(std::string& s) { apply(s.data(), s.size()); }

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

// True once the legacy provider has been loaded and RC4 can be fetched (loading it now if
// it is not yet); false on a system whose OpenSSL lacks it (encryption is then
// unavailable and says so) or while a load cannot be made.
[[nodiscard]] bool rc4_available();

}  // namespace shoal::net
