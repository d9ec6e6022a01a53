#include "sync/discovery.hpp"

#include <boost/asio.hpp>
#include <vector>

#include "dht/node.hpp"
#include "session/session.hpp"
#include "sync/engine.hpp"
#include "sync/folder.hpp"
#include "sync/lan_discovery.hpp"

namespace shoal::sync {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct discovery::impl : std::enable_shared_from_this<discovery::impl> {
  impl(session& s, folder& fo, engine& e, discovery_options o)
      : ses(s), f(fo), eng(e), opt(std::move(o)), timer(s.io()) {}
  session& ses;
  folder& f;
  engine& eng;
  discovery_options opt;
  asio::steady_timer timer;
  std::unique_ptr<lan_discovery> lan;
  bool stopped = false;

  void found(const net::endpoint& ep, const std::string& device, const char* how) {
    if (stopped) return;
    if (opt.on_found) opt.on_found(ep, device, how);
    eng.add_peer(ep);
  }
  asio::awaitable<void> dht_loop();
};

discovery::discovery(session& ses, folder& f, engine& eng, discovery_options o)
    : p_(std::make_shared<impl>(ses, f, eng, std::move(o))) {}

discovery::~discovery() {
  stop();
}

void discovery::start() {
  auto& p = *p_;
  if (!p.opt.local) {
    lan_announcement self{lan_id_of(p.f.key().share()), p.ses.port(), p.f.device().id()};
    auto on_lan = [w = std::weak_ptr<impl>(p_)](const net::endpoint& ep, const std::string& device) {
      if (auto s = w.lock()) s->found(ep, device, "LAN");
    };
    p.lan = std::make_unique<lan_discovery>(p.ses.io(), self, on_lan);
    if (auto s = p.lan->start(); !s) {
      if (p.opt.warn) p.opt.warn(s.err().message() + ": no LAN discovery");
      p.lan.reset();
    }
  }
  if (p.ses.dht_node()) asio::co_spawn(p.ses.io(), p.dht_loop(), asio::detached);
}

void discovery::stop() {
  auto& p = *p_;
  if (p.stopped) return;
  p.stopped = true;
  p.timer.cancel();
  if (p.lan) p.lan->stop();
}

// Announces this device under the folder's DHT id and dials the devices found there;
// again every dht_interval.
asio::awaitable<void> discovery::impl::dht_loop() {
  auto self = shared_from_this();
  const auto node = ses.dht_node();
  const auto id = f.key().dht();
  const std::uint16_t own = ses.port();
  while (!stopped) {
    co_await node->wait_ready(std::chrono::seconds(10));
    if (stopped) break;
    dht::node::lookup_options lo;
    lo.announce_port = own;
    auto on_peers = [w = weak_from_this(), own](const std::vector<tcp::endpoint>& found) {
      auto s = w.lock();
      if (!s) return;
      for (const auto& ep : found) {
        if (ep.port() == own && ep.address().is_loopback()) continue;  // ourselves
        s->found(ep, "", "DHT");
      }
    };
    co_await node->get_peers(id, lo, on_peers);
    if (stopped) break;
    timer.expires_after(opt.dht_interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace shoal::sync
