// A stream after the MSE/PE handshake: bytes already received and decrypted during the
// handshake come out first, then the inner stream's bytes, decrypted when RC4 was
// chosen. Also serves as a "put these bytes back" wrapper with no cipher at all (an
// incoming plaintext handshake whose first bytes were read to tell it from MSE).
#pragma once

#include <optional>
#include <string>

#include "net/rc4.hpp"
#include "net/stream.hpp"

namespace shoal::net {

class encrypted_stream final : public stream {
 public:
  // `enc`/`dec` both set (RC4) or both empty (plaintext after the handshake).
  encrypted_stream(std::unique_ptr<stream> inner, std::optional<rc4> enc, std::optional<rc4> dec,
                   std::string already_read);
  asio::awaitable<io_result> read_some(asio::mutable_buffer buf) override;
  asio::awaitable<io_result> write(asio::const_buffer buf) override;
  void close() override { inner_->close(); }
  [[nodiscard]] endpoint remote_endpoint() const override { return inner_->remote_endpoint(); }
  [[nodiscard]] endpoint local_endpoint() const override { return inner_->local_endpoint(); }
  [[nodiscard]] const char* transport() const override { return inner_->transport(); }
  [[nodiscard]] bool encrypted() const override { return enc_.has_value(); }

 private:
  std::unique_ptr<stream> inner_;
  std::optional<rc4> enc_, dec_;
  std::string pending_;
  std::size_t pending_pos_ = 0;
  std::string wbuf_;
};

}  // namespace shoal::net
