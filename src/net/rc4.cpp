#include "net/rc4.hpp"

#include <openssl/evp.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <stdexcept>

namespace shoal::net {

namespace {

struct providers {
  OSSL_PROVIDER* legacy = nullptr;
  OSSL_PROVIDER* deflt = nullptr;
  EVP_CIPHER* cipher = nullptr;
};

// Loaded once for the process and never unloaded: the ciphers made from it live as long.
const providers& load() {
  static providers p;
  static std::once_flag once;
  std::call_once(once, [] {
    // Loading any provider explicitly stops OpenSSL loading the default one implicitly,
    // and SHA-1/SHA-256 come from the default provider.
    p.deflt = OSSL_PROVIDER_load(nullptr, "default");
    p.legacy = OSSL_PROVIDER_load(nullptr, "legacy");
    if (p.legacy) p.cipher = EVP_CIPHER_fetch(nullptr, "RC4", nullptr);
  });
  return p;
}

}  // namespace

bool rc4_available() {
  return load().cipher != nullptr;
}

struct rc4::impl {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~impl() { EVP_CIPHER_CTX_free(ctx); }
};

rc4::rc4(std::span<const std::uint8_t> key) : p_(std::make_unique<impl>()) {
  const auto& prov = load();
  if (!prov.cipher) throw std::runtime_error("RC4 is unavailable: OpenSSL's legacy provider did not load");
  p_->ctx = EVP_CIPHER_CTX_new();
  if (!p_->ctx || !EVP_CipherInit_ex2(p_->ctx, prov.cipher, nullptr, nullptr, 1, nullptr) ||
      !EVP_CIPHER_CTX_set_key_length(p_->ctx, static_cast<int>(key.size())) ||
      !EVP_CipherInit_ex2(p_->ctx, nullptr, key.data(), nullptr, 1, nullptr)) {
    throw std::runtime_error("RC4 key setup failed");
  }
  std::array<char, 1024> discard{};
  apply(discard.data(), discard.size());
}

rc4::~rc4() = default;
rc4::rc4(rc4&&) noexcept = default;
rc4& rc4::operator=(rc4&&) noexcept = default;

void rc4::apply(const char* in, char* out, std::size_t len) {
  const auto* src = reinterpret_cast<const unsigned char*>(in);
  auto* dst = reinterpret_cast<unsigned char*>(out);
  // EVP takes an int length: one call per buffer below 1 GiB, which every caller is.
  while (len > 0) {
    const int chunk = static_cast<int>(std::min<std::size_t>(len, 1u << 30));
    int n = 0;
    if (EVP_CipherUpdate(p_->ctx, dst, &n, src, chunk) != 1 || n != chunk) {
      throw std::runtime_error("RC4 failed");
    }
    src += chunk;
    dst += chunk;
    len -= static_cast<std::size_t>(chunk);
  }
}

}  // namespace shoal::net
