// TLS for the daemon's RPC port: the user's certificate and key, or a self-signed pair made
// on first start (ECDSA P-256, ten years, names localhost, 127.0.0.1 and ::1 plus the
// machine's host name) and kept in the state folder, the key readable by its owner only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.hpp"

namespace shoal::daemon {

struct tls_setup {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::filesystem::path cert;  // the certificate file in use
  std::string fingerprint;     // SHA-256 of the certificate (DER), "AB:CD:..."
  bool generated = false;      // made just now
};

// cert and key empty: STATE/tls/cert.pem and key.pem, generated if either is missing.
// Given: both must exist and match (nothing is generated in their place).
result<tls_setup> load_tls(const std::filesystem::path& state_dir, const std::filesystem::path& cert,
                           const std::filesystem::path& key);

}  // namespace shoal::daemon
