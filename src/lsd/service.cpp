// The LSD service: multicast I/O on the session's io_context.
#include <random>

#include "core/text.hpp"
#include "dht/krpc.hpp"
#include "lsd/lsd.hpp"

namespace shoal::lsd {

service::service(asio::io_context& io, service_settings s)
    : io_(io), s_(std::move(s)), sock_(io), group_(asio::ip::make_address(group_v4), lsd_port), timer_(io) {
  std::random_device rd;
  cookie_ = to_hex(
      std::string{static_cast<char>(rd()), static_cast<char>(rd()), static_cast<char>(rd()), static_cast<char>(rd())});
}

std::error_code service::start() {
  boost::system::error_code ec;
  sock_.open(udp::v4(), ec);
  if (!ec) sock_.set_option(udp::socket::reuse_address(true), ec);
  if (!ec) sock_.bind(udp::endpoint(asio::ip::address_v4::any(), lsd_port), ec);
  if (!ec) sock_.set_option(asio::ip::multicast::join_group(group_.address()), ec);
  if (!ec) sock_.set_option(asio::ip::multicast::enable_loopback(true), ec);
  if (!ec) sock_.set_option(asio::ip::multicast::hops(1), ec);  // the LAN only
  if (ec) {
    boost::system::error_code ignored;
    sock_.close(ignored);
    return std::error_code(ec.value(), std::system_category());
  }
  sock_.non_blocking(true, ec);
  auto self = shared_from_this();
  asio::co_spawn(io_, receive_loop(self), asio::detached);
  asio::co_spawn(io_, announce_loop(self), asio::detached);
  return {};
}

void service::stop() {
  boost::system::error_code ec;
  sock_.close(ec);
  timer_.cancel();
}

void service::add(const sha1_digest& h) {
  torrents_.emplace(h, std::chrono::steady_clock::time_point{});
  timer_.cancel();  // announce it now
}

void service::remove(const sha1_digest& h) {
  torrents_.erase(h);
}

void service::send_due(bool all) {
  if (!sock_.is_open()) return;
  const auto now = std::chrono::steady_clock::now();
  announce a;
  a.port = s_.peer_port;
  a.cookie = cookie_;
  auto flush = [&] {
    if (a.info_hashes.empty()) return;
    const std::string pkt = format_announce(a);
    boost::system::error_code ec;
    sock_.send_to(asio::buffer(pkt), group_, 0, ec);
    if (ec && s_.log) s_.log("lsd: announce failed: " + ec.message());
    a.info_hashes.clear();
  };
  for (auto& [h, last] : torrents_) {
    // No torrent more than once a minute (BEP 14), and each at least every interval.
    if (now - last < std::chrono::minutes(1)) continue;
    if (!all && last != std::chrono::steady_clock::time_point{} && now - last < s_.interval) continue;
    last = now;
    a.info_hashes.push_back(h);
    if (a.info_hashes.size() == max_hashes_per_announce) flush();
  }
  flush();
}

asio::awaitable<void> service::announce_loop(std::shared_ptr<service> self) {
  while (sock_.is_open()) {
    send_due(false);
    timer_.expires_after(std::chrono::seconds(5));
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  (void)self;
}

asio::awaitable<void> service::receive_loop(std::shared_ptr<service> self) {
  std::vector<char> buf(8192);
  udp::endpoint from;
  while (sock_.is_open()) {
    auto [ec, n] = co_await sock_.async_receive_from(asio::buffer(buf), from, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !sock_.is_open()) break;
    if (ec) continue;
    // Announces come from the LAN: anything else (a spoofed unicast datagram that would make
    // us dial a stranger) is dropped.
    if (!dht::is_local_address(from.address())) continue;
    // At most 10 announces per second from one address; the rest are dropped.
    const auto now = std::chrono::steady_clock::now();
    const std::string key = from.address().to_string();
    if (sources_.size() > 1000) sources_.clear();
    auto& [since, count] = sources_[key];
    if (now - since > std::chrono::seconds(1)) {
      since = now;
      count = 0;
    }
    if (++count > 10) continue;
    auto a = parse_announce(std::string_view(buf.data(), n));
    if (!a) {
      if (s_.log) s_.log("lsd: ignoring a datagram from " + key + ": " + a.err().message());
      continue;
    }
    if (a->cookie == cookie_) continue;  // our own, looped back
    for (const auto& h : a->info_hashes) {
      if (torrents_.count(h) && s_.on_peer) s_.on_peer(h, tcp::endpoint(from.address(), a->port));
    }
  }
  (void)self;
}

}  // namespace shoal::lsd
