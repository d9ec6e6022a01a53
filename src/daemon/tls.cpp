#include "daemon/tls.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <functional>
#include <memory>
#include <system_error>

#include "core/text.hpp"

namespace shoal::daemon {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_error(const std::string& what) {
  const unsigned long e = ERR_get_error();
  std::array<char, 256> buf{};
  if (e) ERR_error_string_n(e, buf.data(), buf.size());
  ERR_clear_error();
  return what + (e ? std::string(": ") + buf.data() : std::string());
}

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct file_close {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Writes through a fresh file of the given mode, then renames it into place: a crash
// leaves the old file or none, never half a key.
bool write_pem(const fs::path& to, mode_t mode, const std::function<int(FILE*)>& write) {
  const fs::path tmp = to.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return false;
  std::unique_ptr<FILE, file_close> f(::fdopen(fd, "w"));
  if (!f) {
    ::close(fd);
    return false;
  }
  if (write(f.get()) != 1 || std::fflush(f.get()) != 0 || ::fsync(fd) != 0) return false;
  f.reset();
  std::error_code ec;
  fs::rename(tmp, to, ec);
  return !ec;
}

result<bool> generate(const fs::path& cert_file, const fs::path& key_file) {
  std::unique_ptr<EVP_PKEY, pkey_free> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return error{errc::io, openssl_error("cannot make a TLS key"), no_offset};
  std::unique_ptr<X509, x509_free> x(X509_new());
  if (!x) return error{errc::io, openssl_error("cannot make a certificate"), no_offset};
  X509_set_version(x.get(), 2);  // v3
  std::array<unsigned char, 16> serial{};
  RAND_bytes(serial.data(), static_cast<int>(serial.size()));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -24 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') std::snprintf(host.data(), 16, "shoal");
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("shoal daemon"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(host.data()), -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  const std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:" + std::string(host.data());
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                                   {NID_basic_constraints, "critical,CA:FALSE"},
                                   {NID_key_usage, "critical,digitalSignature"},
                                   {NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) return error{errc::io, openssl_error("cannot make a certificate extension"), no_offset};
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) {
    return error{errc::io, openssl_error("cannot sign the certificate"), no_offset};
  }
  std::error_code ec;
  fs::create_directories(key_file.parent_path(), ec);
  if (ec) return error{errc::io, "cannot create " + key_file.parent_path().string() + ": " + ec.message(), no_offset};
  fs::permissions(key_file.parent_path(), fs::perms::owner_all, ec);
  if (!write_pem(key_file, 0600,
                 [&](FILE* f) { return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr); })) {
    return error{errc::io, "cannot write " + key_file.string(), no_offset};
  }
  if (!write_pem(cert_file, 0644, [&](FILE* f) { return PEM_write_X509(f, x.get()); })) {
    return error{errc::io, "cannot write " + cert_file.string(), no_offset};
  }
  return true;
}

std::string fingerprint_of(const fs::path& cert_file) {
  std::unique_ptr<FILE, file_close> f(std::fopen(cert_file.c_str(), "r"));
  if (!f) return {};
  std::unique_ptr<X509, x509_free> x(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!x) return {};
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int n = 0;
  if (X509_digest(x.get(), EVP_sha256(), md.data(), &n) != 1) return {};
  const std::string hex = to_hex(std::string_view(reinterpret_cast<const char*>(md.data()), n));
  std::string out;  // "AB:CD:...", as browsers show it
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    if (i) out += ':';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i + 1])));
  }
  return out;
}

}  // namespace

result<tls_setup> load_tls(const fs::path& state_dir, const fs::path& cert, const fs::path& key) {
  tls_setup out;
  fs::path cert_file = cert, key_file = key;
  if (cert.empty() != key.empty()) {
    return error{errc::invalid_argument, "rpc-tls-cert and rpc-tls-key go together: set both, or neither", no_offset};
  }
  if (cert.empty()) {
    cert_file = state_dir / "tls" / "cert.pem";
    key_file = state_dir / "tls" / "key.pem";
    std::error_code ec;
    if (!fs::exists(cert_file, ec) || !fs::exists(key_file, ec)) {
      auto g = generate(cert_file, key_file);
      if (!g) return g.err();
      out.generated = true;
    }
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file.string(), ec);
  if (ec)
    return error{errc::io, "cannot load the TLS certificate " + cert_file.string() + ": " + ec.message(), no_offset};
  ctx->use_private_key_file(key_file.string(), ssl::context::pem, ec);
  if (ec) {
    return error{errc::io,
                 "cannot use the TLS key " + key_file.string() + " with " + cert_file.string() +
                     " (a key that does not match the certificate, or not a PEM key): " + ec.message(),
                 no_offset};
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return error{errc::invalid_argument, "the TLS key " + key_file.string() + " does not match " + cert_file.string(),
                 no_offset};
  }
  out.context = std::move(ctx);
  out.cert = cert_file;
  out.fingerprint = fingerprint_of(cert_file);
  return out;
}

}  // namespace shoal::daemon
