#include "sync/discovery.hpp"

#include <sodium.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <vector>

#include "dht/node.hpp"
#include "session/session.hpp"
#include "sync/engine.hpp"
#include "sync/folder.hpp"
#include "sync/lan_discovery.hpp"
#include "tracker/client.hpp"

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
  asio::awaitable<void> tracker_loop(std::string url);
  std::vector<std::unique_ptr<asio::steady_timer>> tracker_timers;
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
  const auto n = std::min(p.opt.trackers.size(), discovery_options::max_trackers);
  for (std::size_t i = 0; i < n; ++i)
    asio::co_spawn(p.ses.io(), p.tracker_loop(p.opt.trackers[i]), asio::detached);
}

void discovery::stop() {
  auto& p = *p_;
  if (p.stopped) return;
  p.stopped = true;
  p.timer.cancel();
  for (auto& t : p.tracker_timers)
    t->cancel();
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

// Announces the folder's DHT id to one tracker as an info-hash (as a device that still
// wants data, so the tracker lists every device) and dials the devices it lists; again at
// the interval it asks for (at least a minute, at most an hour), or a minute after a failure.
asio::awaitable<void> discovery::impl::tracker_loop(std::string url) {
  auto self = shared_from_this();
  tracker_timers.push_back(std::make_unique<asio::steady_timer>(ses.io()));
  auto& wait = *tracker_timers.back();
  tracker::client_options co;
  co.local = opt.local;
  tracker::announce_request req;
  req.info_hash = f.key().dht();
  const std::string prefix = "-SH0100-";
  std::copy(prefix.begin(), prefix.end(), req.peer_id.begin());
  randombytes_buf(req.peer_id.data() + prefix.size(), req.peer_id.size() - prefix.size());
  req.key = randombytes_random();
  req.port = ses.port();
  req.left = 1;
  req.ev = tracker::event::started;
  const std::uint16_t own = ses.port();
  while (!stopped) {
    std::chrono::seconds next{60};
    try {
      auto r = co_await tracker::announce(ses.io(), url, req, co);
      if (stopped) break;
      if (r) {
        req.ev = tracker::event::none;
        for (const auto& ep : r->peers) {
          if (ep.port() == own && (ep.address().is_loopback() || ep.address().is_unspecified())) continue;
          found(ep, "", "tracker");
        }
        const auto asked = std::max<std::uint32_t>(r->interval, r->min_interval.value_or(0));
        next = std::chrono::seconds(std::clamp<std::uint32_t>(asked, 60, 3600));
      } else if (opt.warn) {
        opt.warn("tracker " + tracker::redact_url(url) + ": " + r.err().message());
      }
    } catch (const std::exception& e) {  // out of descriptors for a socket, say
      if (opt.warn) opt.warn("tracker " + tracker::redact_url(url) + ": " + e.what());
    }
    if (stopped) break;
    wait.expires_after(next);
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace shoal::sync
