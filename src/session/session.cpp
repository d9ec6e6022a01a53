#include "session/session.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include "net/proxy.hpp"
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

session::~session() {
  if (utp_) utp_->set_accept_handler(nullptr);
}

std::error_code session::listen() {
  boost::system::error_code ec;
  auto open_on = [this](const asio::ip::address& addr, bool dual) {
    boost::system::error_code e;
    tcp::endpoint ep(addr, settings_.listen_port);
    acceptor_.open(ep.protocol(), e);
    if (!e && dual) acceptor_.set_option(asio::ip::v6_only(false), e);
    if (!e) acceptor_.set_option(tcp::acceptor::reuse_address(true), e);
    if (!e) acceptor_.bind(ep, e);
    if (!e) acceptor_.listen(asio::socket_base::max_listen_connections, e);
    if (e && acceptor_.is_open()) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    }
    return e;
  };
  if (settings_.listen_address.empty()) {
    // Dual stack: one socket takes IPv6 and IPv4 (as mapped addresses, which tcp_stream
    // turns back into IPv4 ones); IPv4 alone where IPv6 is off.
    ec = open_on(asio::ip::address_v6::any(), true);
    if (ec) ec = open_on(asio::ip::address_v4::any(), false);
  } else {
    auto addr = asio::ip::make_address(settings_.listen_address, ec);
    if (ec) return std::make_error_code(std::errc::invalid_argument);
    ec = open_on(addr, false);
  }
  if (ec) return std::error_code(ec.value(), std::system_category());
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  if (settings_.transport != peer_transport::tcp) {
    if (!utp_) {
      // uTP on UDP at the TCP listener's port number: IPv4, and IPv6 where there is one.
      utp_ = std::make_shared<net::utp_socket_manager>(io_);
      boost::system::error_code uec;
      if (settings_.listen_address.empty()) {
        uec = utp_->listen(asio::ip::udp::endpoint(asio::ip::address_v4::any(), port_));
        if (!uec) (void)utp_->listen(asio::ip::udp::endpoint(asio::ip::address_v6::any(), port_));
      } else {
        uec = utp_->listen(asio::ip::udp::endpoint(asio::ip::make_address(settings_.listen_address), port_));
      }
      if (uec) {
        if (settings_.log) settings_.log("utp: off (" + uec.message() + ")");
        utp_.reset();
      }
    }
    if (utp_) {
      utp_->set_accept_handler([this](std::unique_ptr<net::stream> s) {
        if (stopping_) return;
        auto p = std::make_shared<peer_connection>(*this, std::move(s), false);
        p->start_incoming();
      });
    }
  }
  if (settings_.lsd) {
    lsd::service_settings ls;
    ls.peer_port = port_;
    ls.log = settings_.log;
    ls.on_peer = [this](const sha1_digest& h, const tcp::endpoint& peer) {
      auto t = find_torrent(h);
      if (!t || t->info().is_private || t->ended() || is_self(peer)) return;
      if (settings_.log) {
        settings_.log("lsd: peer " + peer.address().to_string() + ":" + std::to_string(peer.port()));
      }
      t->add_peer(peer);
    };
    lsd_ = std::make_shared<lsd::service>(io_, ls);
    if (auto lec = lsd_->start()) {
      if (settings_.log) settings_.log("lsd: off (" + lec.message() + ")");
      lsd_.reset();
    }
  }
  return {};
}

asio::awaitable<void> session::accept_loop() {
  // Out of descriptors or memory, accept fails at once and keeps failing: wait (longer
  // each time, up to a second) instead of spinning on it.
  asio::steady_timer backoff(io_);
  std::chrono::milliseconds wait{0};
  while (!stopping_) {
    auto [ec, sock] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      const int e = ec.value();
      if (ec.category() == boost::system::system_category() &&
          (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
        // Out of descriptors: the oldest connection that has not handshaked gives its
        // own up, so a real peer still gets in while silent ones hold the rest.
        if ((e == EMFILE || e == ENFILE) && close_oldest_unauthenticated()) continue;
        wait = std::clamp(wait * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
        if (settings_.log && wait == std::chrono::milliseconds(50)) settings_.log("accept: " + ec.message());
        backoff.expires_after(wait);
        co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      continue;
    }
    wait = std::chrono::milliseconds(0);
    auto p = std::make_shared<peer_connection>(*this, std::make_unique<net::tcp_stream>(std::move(sock)), false);
    p->start_incoming();
  }
}

bool session::close_oldest_unauthenticated() {
  // One that has waited a moment: one accepted just now has not had the chance to read
  // its handshake yet (closing those would starve every connection, real ones too).
  const auto now = std::chrono::steady_clock::now();
  while (!limits_.unauthenticated.empty()) {
    auto p = limits_.unauthenticated.front().conn.lock();
    if (p && !p->closed()) {
      if (now - limits_.unauthenticated.front().since < std::chrono::seconds(1)) break;
      p->close("handshake: out of file descriptors, the oldest waiting connection goes");
      return true;
    }
    limits_.unauthenticated.pop_front();
  }
  // None waiting: an idle handshaked connection (nothing exchanged, no interest) goes;
  // with no descriptor left, idle for a few seconds is idle enough.
  const auto idle = std::min<std::chrono::steady_clock::duration>(settings_.idle_eviction, std::chrono::seconds(3));
  for (auto& [h, t] : torrents_) {
    for (auto& p : t->peers()) {
      if (p->evictable(now, idle)) {
        p->close("evicted: out of file descriptors, idle");
        return true;
      }
    }
  }
  return false;
}

std::shared_ptr<torrent> session::add_torrent(torrent_params p) {
  auto t = std::make_shared<torrent>(*this, std::move(p));
  torrents_[t->wire_hash()] = t;
  // A hybrid is in two swarms: peers may come for either info-hash (BEP 52).
  if (t->v2_wire_hash()) aliases_[*t->v2_wire_hash()] = t->wire_hash();
  t->start();
  if (dht_ && !t->info().is_private) {
    asio::co_spawn(io_, dht_loop(t, t->wire_hash()), asio::detached);
    if (t->v2_wire_hash()) asio::co_spawn(io_, dht_loop(t, *t->v2_wire_hash()), asio::detached);
  }
  if (lsd_ && !t->info().is_private) {
    lsd_->add(t->wire_hash());
    if (t->v2_wire_hash()) lsd_->add(*t->v2_wire_hash());
  }
  return t;
}

std::shared_ptr<torrent> session::find_torrent(const sha1_digest& h) {
  auto it = torrents_.find(h);
  if (it != torrents_.end()) return it->second;
  auto a = aliases_.find(h);
  if (a == aliases_.end()) return nullptr;
  it = torrents_.find(a->second);
  return it == torrents_.end() ? nullptr : it->second;
}

asio::awaitable<void> session::dht_loop(std::weak_ptr<torrent> w, sha1_digest hash) {
  asio::steady_timer timer(io_);
  int quiet_rounds = 0;
  while (!stopping_ && dht_ && dht_->running()) {
    auto t = w.lock();
    if (!t || t->ended()) co_return;
    if (!t->accepting_peers()) {
      // Still checking: announce once the data is known.
      t.reset();
      timer.expires_after(std::chrono::milliseconds(500));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    dht::node::lookup_options opt;
    opt.announce_port = port_;
    opt.seed = t->finished();
    t.reset();  // a lookup takes seconds: do not keep a stopped torrent alive
    auto node = dht_;
    const bool local = settings_.local;
    // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
    std::function<void(const std::vector<tcp::endpoint>&)> on_peers = [this, w,
                                                                       local](const std::vector<tcp::endpoint>& peers) {
      auto tt = w.lock();
      if (!tt || tt->ended()) return;
      for (const auto& ep : peers) {
        if (is_self(ep) || (local && !dht::is_local_address(ep.address()))) continue;
        tt->add_peer(ep);
      }
    };
    auto found = co_await node->get_peers(hash, opt, on_peers);
    if (settings_.log) settings_.log("dht: " + std::to_string(found) + " peers from the DHT");
    // Nobody yet (a swarm just starting): ask again soon, backing off to the usual 15 min.
    std::chrono::seconds wait(15 * 60);
    if (found == 0 && quiet_rounds < 6) wait = std::chrono::seconds(5 << quiet_rounds++);
    timer.expires_after(wait);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<std::pair<net::error_code, std::unique_ptr<net::stream>>> session::connect_peer(tcp::endpoint ep) {
  using connected = std::pair<net::error_code, std::unique_ptr<net::stream>>;
  // uTP does not go through a proxy (its datagrams would leave from our own address).
  const bool utp_ok = utp_ && !settings_.proxy.enabled();
  if (settings_.transport == peer_transport::utp) {
    if (!utp_ok) co_return connected{net::error_code(asio::error::address_family_not_supported), nullptr};
    co_return co_await utp_->connect(ep,
                                     std::chrono::duration_cast<std::chrono::milliseconds>(settings_.connect_timeout));
  }
  // tcp, or both: TCP first (what every client listens on), uTP when TCP gets nowhere
  // within utp_connect_timeout (refused, unreachable, filtered).
  const bool fallback = settings_.transport == peer_transport::both && utp_ok;
  auto r = co_await connect_tcp(ep, fallback ? settings_.utp_connect_timeout : std::chrono::milliseconds(0));
  if (!r.first || !fallback) co_return r;
  if (settings_.log) {
    settings_.log("peer " + ep.address().to_string() + ":" + std::to_string(ep.port()) + ": TCP: " + r.first.message() +
                  "; trying uTP");
  }
  co_return co_await utp_->connect(ep, settings_.utp_connect_timeout);
}

asio::awaitable<std::pair<net::error_code, std::unique_ptr<net::stream>>> session::connect_tcp(
    tcp::endpoint ep, std::chrono::milliseconds limit) {
  using connected = std::pair<net::error_code, std::unique_ptr<net::stream>>;
  tcp::socket sock(io_);
  net::error_code ec;
  if (settings_.proxy.enabled()) {
    // Through the proxy (which the outgoing address does not apply to: the proxy dials),
    // within the connect timeout a direct connection gets.
    net::proxy_settings px = settings_.proxy;
    px.timeout = std::min<std::chrono::milliseconds>(px.timeout, settings_.connect_timeout);
    if (limit.count() > 0) px.timeout = std::min(px.timeout, limit);
    std::string why;
    ec = co_await net::connect_through(sock, px, ep.address().to_string(), ep.port(), &why);
    if (ec) {
      if (settings_.log)
        settings_.log("peer " + ep.address().to_string() + ":" + std::to_string(ep.port()) + ": " + why);
      co_return connected{ec, nullptr};
    }
    co_return connected{ec, std::make_unique<net::tcp_stream>(std::move(sock), ep)};
  }
  if (!settings_.outgoing_address.empty()) {
    auto addr = asio::ip::make_address(settings_.outgoing_address, ec);
    if (!ec && addr.is_v6() != ep.address().is_v6()) ec = asio::error::address_family_not_supported;
    if (!ec) sock.open(ep.protocol(), ec);
    if (!ec) sock.bind(tcp::endpoint(addr, 0), ec);
    if (ec) co_return connected{ec, nullptr};
  }
  // The timer's handler may run after this frame is gone (it had fired just as the connect
  // completed): it owns the socket and the flag it touches, never this frame's locals.
  struct dial {
    explicit dial(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    bool timed_out = false;
    bool done = false;
  };
  auto d = std::make_shared<dial>(std::move(sock));
  asio::steady_timer timer(io_);
  if (limit.count() > 0) {
    timer.expires_after(limit);
    timer.async_wait([d](boost::system::error_code tec) {
      if (tec || d->done) return;
      d->timed_out = true;
      boost::system::error_code ignored;
      d->sock.close(ignored);
    });
  }
  std::tie(ec) = co_await d->sock.async_connect(ep, asio::as_tuple(asio::use_awaitable));
  d->done = true;
  timer.cancel();
  if (d->timed_out) ec = asio::error::timed_out;
  if (ec) co_return connected{ec, nullptr};
  co_return connected{ec, std::make_unique<net::tcp_stream>(std::move(d->sock))};
}

std::optional<sha1_digest> session::find_by_obfuscated_hash(const sha1_digest& req2) const {
  auto matches = [&](const sha1_digest& h) {
    hasher x(hasher::algo::sha1);
    x.update("req2");
    x.update(as_view(h));
    sha1_digest d;
    x.final(d.data());
    return d == req2;
  };
  for (const auto& [h, t] : torrents_) {
    if (!t->accepting_peers()) continue;
    if (matches(h)) return h;
    if (t->v2_wire_hash() && matches(*t->v2_wire_hash())) return *t->v2_wire_hash();
  }
  return std::nullopt;
}

bool session::is_self(const tcp::endpoint& ep) const {
  if (self_endpoints_.count(ep)) return true;
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
  if (utp_) utp_->set_accept_handler(nullptr);
  if (dht_) dht_->stop();
  if (lsd_) lsd_->stop();
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
