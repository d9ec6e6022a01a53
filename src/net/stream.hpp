// A byte stream to a peer, whatever carries it: TCP, uTP, or either wrapped in MSE/PE
// encryption. peer_connection speaks the wire protocol over this and never learns which.
#pragma once

#include <boost/asio.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace shoal::net {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
// uTP peers are named by the same address+port pair as TCP ones; the transport is a
// property of the stream, not of the endpoint.
using endpoint = asio::ip::tcp::endpoint;
using io_result = std::pair<error_code, std::size_t>;

class stream {
 public:
  virtual ~stream() = default;
  // Reads at least one byte (or fails). `buf` must stay valid until it completes.
  virtual asio::awaitable<io_result> read_some(asio::mutable_buffer buf) = 0;
  // Writes all of `buf` (or fails). One write at a time; `buf` stays valid until done.
  virtual asio::awaitable<io_result> write(asio::const_buffer buf) = 0;
  // Closes at once; pending reads and writes complete with an error.
  virtual void close() = 0;
  [[nodiscard]] virtual endpoint remote_endpoint() const = 0;
  [[nodiscard]] virtual endpoint local_endpoint() const = 0;
  // "tcp" or "utp"; an encrypted stream reports what it wraps.
  [[nodiscard]] virtual const char* transport() const = 0;
  [[nodiscard]] virtual bool encrypted() const { return false; }
};

// An IPv4 peer seen through a dual-stack socket (::ffff:a.b.c.d) as the IPv4 endpoint it
// is, so bans, limits and comparisons see one address, not two spellings of it.
[[nodiscard]] endpoint unmapped(const endpoint& ep);

// Reads exactly buf.size() bytes.
asio::awaitable<io_result> read_exact(stream& s, asio::mutable_buffer buf);

class tcp_stream final : public stream {
 public:
  explicit tcp_stream(asio::ip::tcp::socket sock);
  asio::awaitable<io_result> read_some(asio::mutable_buffer buf) override;
  asio::awaitable<io_result> write(asio::const_buffer buf) override;
  void close() override;
  [[nodiscard]] endpoint remote_endpoint() const override { return remote_; }
  [[nodiscard]] endpoint local_endpoint() const override;
  [[nodiscard]] const char* transport() const override { return "tcp"; }
  asio::ip::tcp::socket& socket() { return sock_; }

 private:
  asio::ip::tcp::socket sock_;
  endpoint remote_;
};

}  // namespace shoal::net
