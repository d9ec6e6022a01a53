#include "sync/lan_discovery.hpp"

#include <algorithm>

namespace shoal::sync {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {
constexpr std::string_view magic = "SHL1";
}

sha1_digest lan_id_of(const share_id& share) {
  std::string in = "shoal-sync-lan";
  in.append(reinterpret_cast<const char*>(share.data()), share.size());
  return sha1(in);
}

std::string encode_announcement(const lan_announcement& a) {
  std::string out(magic);
  out.append(reinterpret_cast<const char*>(a.folder.data()), a.folder.size());
  out.push_back(static_cast<char>(a.port >> 8));
  out.push_back(static_cast<char>(a.port & 0xff));
  const std::size_t n = std::min(a.device.size(), max_lan_device_bytes);
  out.push_back(static_cast<char>(n));
  out.append(a.device, 0, n);
  return out;
}

std::optional<lan_announcement> decode_announcement(std::string_view d) {
  constexpr std::size_t head = 4 + 20 + 2 + 1;
  if (d.size() < head + 1 || d.substr(0, 4) != magic) return std::nullopt;
  lan_announcement a;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(d.data()) + 4, 20, a.folder.begin());
  a.port = static_cast<std::uint16_t>(static_cast<unsigned char>(d[24]) << 8 | static_cast<unsigned char>(d[25]));
  const std::size_t n = static_cast<unsigned char>(d[26]);
  if (a.port == 0 || n == 0 || n > max_lan_device_bytes || d.size() != head + n) return std::nullopt;
  a.device = std::string(d.substr(head));
  for (char c : a.device)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return std::nullopt;
  return a;
}

lan_table::lan_table(std::size_t max_entries, std::chrono::seconds min_gap)
    : max_(std::max<std::size_t>(1, max_entries)), gap_(min_gap) {}

bool lan_table::heard(const std::string& device, const net::endpoint& ep, clock::time_point now) {
  boost::system::error_code ec;
  const std::string key = device + " " + ep.address().to_string(ec) + ":" + std::to_string(ep.port());
  auto it = last_.find(key);
  if (it != last_.end()) {
    if (now - it->second < gap_) return false;
    it->second = now;
    return true;
  }
  if (last_.size() >= max_) {
    auto oldest =
        std::min_element(last_.begin(), last_.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    last_.erase(oldest);
  }
  last_.emplace(key, now);
  return true;
}

struct lan_discovery::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, lan_announcement s, found_fn f, lan_options o)
      : io(io),
        self(std::move(s)),
        on_found(std::move(f)),
        opt(std::move(o)),
        sock(io),
        timer(io),
        table(256, opt.min_gap) {}

  asio::io_context& io;
  lan_announcement self;
  found_fn on_found;
  lan_options opt;
  udp::socket sock;
  asio::steady_timer timer;
  lan_table table;
  udp::endpoint group_ep;
  bool stopped = false;

  result<bool> start() {
    boost::system::error_code ec;
    const auto group = asio::ip::make_address_v4(opt.group, ec);
    if (ec || !group.is_multicast()) return error{errc::invalid_argument, "lan discovery: bad group " + opt.group};
    const auto iface = asio::ip::make_address_v4(opt.interface, ec);
    if (ec) return error{errc::invalid_argument, "lan discovery: bad interface " + opt.interface};
    group_ep = udp::endpoint(group, opt.port);
    auto fail = [&](const char* what) {
      return error{errc::io, std::string("lan discovery: ") + what + ": " + ec.message()};
    };
    sock.open(udp::v4(), ec);
    if (ec) return fail("socket");
    sock.set_option(asio::socket_base::reuse_address(true), ec);
    sock.bind(udp::endpoint(asio::ip::address_v4::any(), opt.port), ec);
    if (ec) return fail("bind");
    sock.set_option(asio::ip::multicast::join_group(group, iface), ec);
    if (ec) return fail("join group");
    sock.set_option(asio::ip::multicast::hops(1), ec);
    sock.set_option(asio::ip::multicast::enable_loopback(true), ec);
    if (!iface.is_unspecified()) sock.set_option(asio::ip::multicast::outbound_interface(iface), ec);
    if (ec) return fail("options");
    return true;
  }

  asio::awaitable<void> announce_loop() {
    auto keep = shared_from_this();
    const std::string datagram = encode_announcement(self);
    while (!stopped) {
      boost::system::error_code ec;
      co_await sock.async_send_to(asio::buffer(datagram), group_ep, asio::redirect_error(asio::use_awaitable, ec));
      if (stopped) break;
      timer.expires_after(opt.interval);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> receive_loop() {
    auto keep = shared_from_this();
    std::array<char, 128> buf{};
    while (!stopped) {
      udp::endpoint from;
      boost::system::error_code ec;
      const std::size_t n =
          co_await sock.async_receive_from(asio::buffer(buf), from, asio::redirect_error(asio::use_awaitable, ec));
      if (stopped || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
      if (ec) continue;
      auto a = decode_announcement(std::string_view(buf.data(), n));
      if (!a || a->folder != self.folder || a->device == self.device) continue;
      const net::endpoint ep(from.address(), a->port);
      if (table.heard(a->device, ep, lan_table::clock::now()) && on_found) on_found(ep, a->device);
    }
  }

  void stop() {
    stopped = true;
    boost::system::error_code ec;
    timer.cancel();
    sock.close(ec);
  }
};

lan_discovery::lan_discovery(asio::io_context& io, lan_announcement self, found_fn on_found, lan_options o)
    : p_(std::make_shared<impl>(io, std::move(self), std::move(on_found), std::move(o))) {}

lan_discovery::~lan_discovery() {
  p_->stop();
}

result<bool> lan_discovery::start() {
  auto r = p_->start();
  if (!r) return r;
  auto announce = [p = p_]() { return p->announce_loop(); };
  auto receive = [p = p_]() { return p->receive_loop(); };
  asio::co_spawn(p_->io, announce(), asio::detached);
  asio::co_spawn(p_->io, receive(), asio::detached);
  return true;
}

void lan_discovery::stop() {
  p_->stop();
}

}  // namespace shoal::sync
