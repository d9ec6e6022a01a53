// SHA-1 and SHA-256 through OpenSSL's EVP interface (which uses the CPU's SHA
// instructions), plus the digest types used for info-hashes and merkle trees.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace shoal {

using sha1_digest = std::array<std::uint8_t, 20>;
using sha256_digest = std::array<std::uint8_t, 32>;

[[nodiscard]] sha1_digest sha1(std::string_view data);
[[nodiscard]] sha256_digest sha256(std::string_view data);

// An incremental hasher; reusable after final(). Not thread-safe: one per thread.
class hasher {
 public:
  enum class algo { sha1, sha256 };
  explicit hasher(algo a);
  ~hasher();
  hasher(hasher&&) noexcept;
  hasher& operator=(hasher&&) noexcept;
  void update(const void* data, std::size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Writes the digest (20 or 32 bytes) to out and resets for the next message.
  void final(std::uint8_t* out);
  [[nodiscard]] std::size_t size() const { return a_ == algo::sha1 ? 20 : 32; }

 private:
  struct impl;
  std::unique_ptr<impl> p_;
  algo a_;
};

template <std::size_t N>
[[nodiscard]] std::string_view as_view(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

}  // namespace shoal
