#include "net/stream.hpp"

namespace shoal::net {

asio::awaitable<io_result> read_exact(stream& s, asio::mutable_buffer buf) {
  std::size_t got = 0;
  auto* p = static_cast<char*>(buf.data());
  while (got < buf.size()) {
    auto [ec, n] = co_await s.read_some(asio::buffer(p + got, buf.size() - got));
    got += n;
    if (ec) co_return io_result{ec, got};
  }
  co_return io_result{{}, got};
}

endpoint unmapped(const endpoint& ep) {
  const auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()), ep.port());
  }
  return ep;
}

tcp_stream::tcp_stream(asio::ip::tcp::socket sock) : sock_(std::move(sock)) {
  error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  if (!ec) remote_ = unmapped(ep);
  sock_.set_option(asio::ip::tcp::no_delay(true), ec);
}

asio::awaitable<io_result> tcp_stream::read_some(asio::mutable_buffer buf) {
  auto [ec, n] = co_await sock_.async_read_some(buf, asio::as_tuple(asio::use_awaitable));
  co_return io_result{ec, n};
}

asio::awaitable<io_result> tcp_stream::write(asio::const_buffer buf) {
  auto [ec, n] = co_await asio::async_write(sock_, buf, asio::as_tuple(asio::use_awaitable));
  co_return io_result{ec, n};
}

void tcp_stream::close() {
  error_code ec;
  sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  sock_.close(ec);
}

endpoint tcp_stream::local_endpoint() const {
  error_code ec;
  auto ep = sock_.local_endpoint(ec);
  return ec ? endpoint{} : unmapped(ep);
}

}  // namespace shoal::net
