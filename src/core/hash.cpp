#include "core/hash.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace shoal {

namespace {
const EVP_MD* md(hasher::algo a) {
  // Fetched once per process; EVP_MD_fetch avoids the implicit fetch on every init.
  static EVP_MD* s1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  static EVP_MD* s256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const EVP_MD* m = a == hasher::algo::sha1 ? s1 : s256;
  if (m == nullptr) throw std::runtime_error("OpenSSL has no SHA-1/SHA-256 digest");
  return m;
}
}  // namespace

struct hasher::impl {
  EVP_MD_CTX* ctx = nullptr;
  ~impl() { EVP_MD_CTX_free(ctx); }
};

hasher::hasher(algo a) : p_(std::make_unique<impl>()), a_(a) {
  p_->ctx = EVP_MD_CTX_new();
  if (p_->ctx == nullptr || EVP_DigestInit_ex2(p_->ctx, md(a), nullptr) != 1) {
    throw std::runtime_error("OpenSSL digest initialisation failed");
  }
}
hasher::~hasher() = default;
hasher::hasher(hasher&&) noexcept = default;
hasher& hasher::operator=(hasher&&) noexcept = default;

void hasher::update(const void* data, std::size_t len) {
  EVP_DigestUpdate(p_->ctx, data, len);
}

void hasher::final(std::uint8_t* out) {
  unsigned int len = 0;
  EVP_DigestFinal_ex(p_->ctx, out, &len);
  EVP_DigestInit_ex2(p_->ctx, nullptr, nullptr);
}

sha1_digest sha1(std::string_view data) {
  sha1_digest d{};
  EVP_Digest(data.data(), data.size(), d.data(), nullptr, md(hasher::algo::sha1), nullptr);
  return d;
}

sha256_digest sha256(std::string_view data) {
  sha256_digest d{};
  EVP_Digest(data.data(), data.size(), d.data(), nullptr, md(hasher::algo::sha256), nullptr);
  return d;
}

}  // namespace shoal
