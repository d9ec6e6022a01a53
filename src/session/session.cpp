#include "session/session.hpp"

#include <random>
#include <thread>

#include "session/peer_connection.hpp"

namespace shoal {

session::session(asio::io_context& io, session_settings s)
    : io_(io),
      settings_(std::move(s)),
      disk_pool_(settings_.disk_threads),
      hash_pool_(settings_.hash_threads ? settings_.hash_threads : std::max(1u, std::thread::hardware_concurrency())),
      down_limit_(settings_.max_download_rate),
      up_limit_(settings_.max_upload_rate),
      acceptor_(io) {
  // Azureus-style peer id: -SH0100- then 12 random bytes.
  const std::string prefix = "-SH0100-";
  std::copy(prefix.begin(), prefix.end(), id_.begin());
  std::random_device rd;
  for (std::size_t i = prefix.size(); i < id_.size(); ++i)
    id_[i] = static_cast<std::uint8_t>(rd());
}

session::~session() = default;

std::error_code session::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(settings_.listen_address, ec);
  if (ec) return std::make_error_code(std::errc::invalid_argument);
  tcp::endpoint ep(addr, settings_.listen_port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return std::error_code(ec.value(), std::system_category());
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

asio::awaitable<void> session::accept_loop() {
  while (!stopping_) {
    auto [ec, sock] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      continue;
    }
    auto p = std::make_shared<peer_connection>(*this, std::move(sock), false);
    p->start_incoming();
  }
}

std::shared_ptr<torrent> session::add_torrent(torrent_params p) {
  auto t = std::make_shared<torrent>(*this, std::move(p));
  torrents_[t->wire_hash()] = t;
  t->start();
  return t;
}

std::shared_ptr<torrent> session::find_torrent(const sha1_digest& h) {
  auto it = torrents_.find(h);
  return it == torrents_.end() ? nullptr : it->second;
}

bool session::is_self(const tcp::endpoint& ep) const {
  if (ep.port() != port_) return false;
  const auto a = ep.address();
  if (a.is_loopback() || a.is_unspecified()) return true;
  boost::system::error_code ec;
  auto listen = asio::ip::make_address(settings_.listen_address, ec);
  return !ec && listen == a;
}

void session::stop(std::function<void()> done) {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  auto remaining = std::make_shared<std::size_t>(torrents_.size());
  if (*remaining == 0) {
    done();
    return;
  }
  for (auto& [h, t] : torrents_) {
    t->stop([remaining, done] {
      if (--*remaining == 0) done();
    });
  }
}

}  // namespace shoal
