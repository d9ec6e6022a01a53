#include "net/rc4.hpp"

#include <openssl/evp.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>

namespace shoal::net {

namespace {

struct providers {
  OSSL_PROVIDER* legacy = nullptr;
  OSSL_PROVIDER* deflt = nullptr;
  std::atomic<EVP_CIPHER*> cipher{nullptr};
  std::mutex mu;
  std::chrono::steady_clock::time_point last_try{};
  bool tried = false;
};

providers& state() {
  static providers p;
  return p;
}

// Loaded for the process and never unloaded: the ciphers made from it live as long. A
// load can fail for a passing reason (out of file descriptors: the provider is a shared
// object dlopen()ed from disk), so a failure is tried again, at most once a second,
// instead of leaving the process without encryption for good.
EVP_CIPHER* load() {
  auto& p = state();
  if (auto* c = p.cipher.load(std::memory_order_acquire)) return c;
  std::lock_guard lk(p.mu);
  if (auto* c = p.cipher.load(std::memory_order_relaxed)) return c;
  const auto now = std::chrono::steady_clock::now();
  if (p.tried && now - p.last_try < std::chrono::seconds(1)) return nullptr;
  p.tried = true;
  p.last_try = now;
  // Loading any provider explicitly stops OpenSSL loading the default one implicitly,
  // and SHA-1/SHA-256 come from the default provider.
  if (!p.deflt) p.deflt = OSSL_PROVIDER_load(nullptr, "default");
  if (!p.legacy) p.legacy = OSSL_PROVIDER_load(nullptr, "legacy");
  if (p.legacy) {
    if (auto* c = EVP_CIPHER_fetch(nullptr, "RC4", nullptr)) p.cipher.store(c, std::memory_order_release);
  }
  return p.cipher.load(std::memory_order_relaxed);
}

}  // namespace

bool rc4_available() {
  return load() != nullptr;
}

struct rc4::impl {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~impl() { EVP_CIPHER_CTX_free(ctx); }
};

rc4::rc4(std::span<const std::uint8_t> key) : p_(std::make_unique<impl>()) {
  EVP_CIPHER* cipher = load();
  if (!cipher) throw std::runtime_error("RC4 is unavailable: OpenSSL's legacy provider did not load");
  p_->ctx = EVP_CIPHER_CTX_new();
  if (!p_->ctx || !EVP_CipherInit_ex2(p_->ctx, cipher, nullptr, nullptr, 1, nullptr) ||
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
