#include "net/encrypted_stream.hpp"

#include <cstring>

namespace shoal::net {

encrypted_stream::encrypted_stream(std::unique_ptr<stream> inner, std::optional<rc4> enc, std::optional<rc4> dec,
                                   std::string already_read)
    : inner_(std::move(inner)), enc_(std::move(enc)), dec_(std::move(dec)), pending_(std::move(already_read)) {}

asio::awaitable<io_result> encrypted_stream::read_some(asio::mutable_buffer buf) {
  if (pending_pos_ < pending_.size()) {
    const std::size_t n = std::min(buf.size(), pending_.size() - pending_pos_);
    std::memcpy(buf.data(), pending_.data() + pending_pos_, n);
    pending_pos_ += n;
    if (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_.shrink_to_fit();
      pending_pos_ = 0;
    }
    co_return io_result{{}, n};
  }
  auto [ec, n] = co_await inner_->read_some(buf);
  if (dec_ && n > 0) dec_->apply(static_cast<char*>(buf.data()), n);
  co_return io_result{ec, n};
}

asio::awaitable<io_result> encrypted_stream::write(asio::const_buffer buf) {
  if (!enc_) co_return co_await inner_->write(buf);
  // RC4 is a stream cipher: the keystream advances as bytes are encrypted, so a write
  // is encrypted whole before it is handed on, in a buffer of our own.
  // The cipher reads the caller's bytes and writes straight into that buffer (one pass,
  // no copy first); the buffer only grows, so steady-state writes allocate nothing.
  if (wbuf_.size() < buf.size()) wbuf_.resize(buf.size());
  enc_->apply(static_cast<const char*>(buf.data()), wbuf_.data(), buf.size());
  co_return co_await inner_->write(asio::buffer(wbuf_.data(), buf.size()));
}

}  // namespace shoal::net
