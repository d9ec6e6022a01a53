#include "session/session.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "net/proxy.hpp"
#include "net/rc4.hpp"
#include "session/peer_connection.hpp"
#include "session/peer_internal.hpp"

namespace shoal {

session::session(asio::io_context& io, session_settings s)
    : io_(io),
      settings_(std::move(s)),
      disk_pool_(settings_.disk_threads),
      hash_pool_(settings_.hash_threads ? settings_.hash_threads : std::max(1u, std::thread::hardware_concurrency())),
      down_limit_(settings_.max_download_rate),
      up_limit_(settings_.max_upload_rate),
      acceptor_(io),
      events_(settings_.event_queue_capacity),
      tick_timer_(io),
      queue_timer_(io) {
  // Azureus-style peer id: -SH0100- then 12 random bytes.
  const std::string prefix = "-SH0100-";
  std::copy(prefix.begin(), prefix.end(), id_.begin());
  std::random_device rd;
  for (std::size_t i = prefix.size(); i < id_.size(); ++i)
    id_[i] = static_cast<std::uint8_t>(rd());
  // A job that throws (out of memory, say) is reported and skipped, not the process's end.
  auto report = [log = settings_.log](const char* pool) {
    return [log, pool](const std::string& what) {
      if (log) log(std::string(pool) + " job failed: " + what);
    };
  };
  files_ = std::make_shared<file_pool>(settings_.max_open_files);
  disk_pool_.set_error_handler(report("disk"));
  hash_pool_.set_error_handler(report("hash"));
  // OpenSSL's RC4 comes from a provider loaded from disk: load it now, while descriptors
  // are free, not on the first encrypted peer (which may come when an attack has used
  // them all up).
  (void)net::rc4_available();
}

session::~session() {
  *alive_ = false;
  for (auto* t : loop_timers_)
    t->cancel();
  if (utp_) utp_->set_accept_handler(nullptr);
  if (thread_.joinable()) {
    work_.reset();
    io_.stop();
    thread_.join();
  }
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
  {
    boost::system::error_code pec;
    auto la = asio::ip::make_address(settings_.listen_address, pec);
    if (!pec) listen_addr_ = la;  // parsed once: is_self runs for every contact
  }
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
      utp_->set_fallback(
          [this](std::span<const char> d, const asio::ip::udp::endpoint& from) { route_datagram(d, from); });
      utp_->set_accept_handler([this](std::unique_ptr<net::stream> s) {
        if (stopping_) return;
        auto p = std::make_shared<peer_connection>(*this, std::move(s), false);
        p->start_incoming();
      });
    }
  }
  if (settings_.dht && !dht_) start_dht();
  if (settings_.port_mapping && !mapper_) {
    net::port_mapping_settings pm;
    pm.tcp_port = port_;
    pm.udp_port = port_;  // the DHT (and uTP) use the same number over UDP
    pm.local = settings_.local;
    pm.upnp_url = settings_.upnp_url;
    pm.natpmp_gateway = settings_.natpmp_gateway;
    // Under --local only the gateways named are asked: no SSDP, no default gateway.
    pm.upnp = !settings_.local || !settings_.upnp_url.empty();
    pm.natpmp = !settings_.local || !settings_.natpmp_gateway.empty();
    if (settings_.port_mapping_lease.count() > 0) pm.lease = settings_.port_mapping_lease;
    pm.log = settings_.log;
    if (pm.upnp || pm.natpmp) {
      mapper_ = std::make_unique<net::port_mapper>(io_, pm);
      mapper_->start();
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

void session::start_dht() {
  dht::settings ds;
  ds.port = port_;
  ds.bootstrap = settings_.dht_bootstrap;
  ds.local = settings_.local;
  // Bound to one address, the node stays on it (no IPv6 twin on [::]).
  if (!settings_.listen_address.empty()) ds.listen_address = settings_.listen_address;
  ds.ipv6 = settings_.listen_address.empty();
  ds.state_file = settings_.dht_state_file;
  ds.log = settings_.log;
  auto node = std::make_shared<dht::node>(io_, ds);
  if (utp_) {
    // uTP's socket has the port: the node shares it (KRPC comes in through the fallback).
    auto u = utp_;
    auto sent = [u](std::span<const char> d, const asio::ip::udp::endpoint& to) { u->send_to(d, to); };
    if (auto ec = node->start_external(sent, port_)) {
      if (settings_.log) settings_.log("the DHT cannot start: " + ec.message());
      if (on_warning) on_warning("the DHT cannot start: " + ec.message());
      return;
    }
    // KRPC comes in through route_datagram (uTP's fallback), which hands it to dht_.
    utp_->set_fallback(
        [this](std::span<const char> d, const asio::ip::udp::endpoint& from) { route_datagram(d, from); });
  } else if (auto ec = node->start()) {
    const std::string why =
        "the DHT cannot listen on UDP port " + std::to_string(port_) + ": " + ec.message() + "; going on without it";
    if (settings_.log) settings_.log(why);
    if (on_warning) on_warning(why);
    return;
  }
  dht_ = std::move(node);
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

std::error_code session::add_protocol(protocol p) {
  static constexpr std::string_view bt(
      "\x13"
      "BitTorrent protocol",
      20);
  const std::string& m = p.magic;
  const auto first = m.empty() ? 0u : static_cast<unsigned char>(m[0]);
  if (m.size() < 4 || m.size() > 20 || first == 'd' || (first & 0x0f) == 1 || bt.starts_with(m) ||
      std::string_view(m).starts_with(bt.substr(0, 1))) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  for (const auto& q : protocols_) {
    if (q.magic.starts_with(m) || m.starts_with(q.magic)) return std::make_error_code(std::errc::address_in_use);
  }
  protocols_.push_back(std::move(p));
  return {};
}

const session::protocol* session::protocol_for(std::string_view first) const {
  for (const auto& p : protocols_) {
    if (first.starts_with(p.magic)) return &p;
  }
  return nullptr;
}

bool session::send_datagram(std::span<const char> d, const asio::ip::udp::endpoint& to) {
  if (!utp_) return false;
  utp_->send_to(d, to);
  return true;
}

void session::route_datagram(std::span<const char> d, const asio::ip::udp::endpoint& from) {
  const std::string_view v(d.data(), d.size());
  for (const auto& p : protocols_) {
    if (v.starts_with(p.magic)) {
      if (p.on_datagram) p.on_datagram(d, from);
      return;
    }
  }
  if (dht_) dht_->deliver(d, from);
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
  return make_room(std::min<std::chrono::steady_clock::duration>(settings_.idle_eviction, std::chrono::seconds(3)));
}

std::uint64_t session::send_share() const {
  constexpr std::uint64_t floor = 256u << 10;
  const auto cap = settings_.max_send_backlog_total;
  if (cap == 0) return peer_detail::max_send_backlog;
  return std::clamp<std::uint64_t>(cap / std::max<std::uint32_t>(1, limits_.peers), floor,
                                   peer_detail::max_send_backlog);
}

bool session::make_room(std::chrono::steady_clock::duration idle) {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [h, t] : torrents_) {
    for (auto& p : t->peers()) {
      if (p->evictable(now, idle)) {
        p->close("evicted for a new connection: idle");
        return true;
      }
    }
  }
  return false;
}

std::shared_ptr<torrent> session::add_torrent(torrent_params p) {
  // The same info-hash again: the torrent we have, with the new trackers, seeds and peers.
  sha1_digest key{};
  std::optional<sha1_digest> v2key;
  auto truncate = [](const sha256_digest& h) {
    sha1_digest d{};
    std::copy_n(h.begin(), 20, d.begin());
    return d;
  };
  if (p.magnet) {
    key = p.magnet->info_hash_v1 ? *p.magnet->info_hash_v1 : truncate(*p.magnet->info_hash_v2);
    if (p.magnet->info_hash_v2) v2key = truncate(*p.magnet->info_hash_v2);
  } else {
    key = p.info.info_hash_v1 ? *p.info.info_hash_v1 : truncate(*p.info.info_hash_v2);
    if (p.info.info_hash_v2) v2key = truncate(*p.info.info_hash_v2);
  }
  auto existing = find_torrent(key);
  if (!existing && v2key) existing = find_torrent(*v2key);
  if (existing) {
    existing->merge(p);
    return existing;
  }
  auto t = std::make_shared<torrent>(*this, std::move(p), next_id_++);
  torrents_[t->wire_hash()] = t;
  by_id_[t->id()] = t;
  t->set_queue_position(static_cast<std::uint32_t>(queue_.size()));
  t->set_queue_key(static_cast<std::uint32_t>(queue_.size()));
  queue_.push_back(t);
  // A hybrid is in two swarms: peers may come for either info-hash (BEP 52).
  if (t->v2_wire_hash()) aliases_[*t->v2_wire_hash()] = t->wire_hash();
  session_event e;
  e.kind = event_kind::added;
  e.torrent = t->id();
  e.info_hash = t->wire_hash();
  e.message = t->status().name;
  post_event(std::move(e));
  if (!tick_running_) {
    tick_running_ = true;
    tick();
  }
  t->start();
  return t;
}

std::shared_ptr<torrent> session::find(torrent_id id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

void session::remove_torrent(torrent_id id, bool delete_data, std::function<void()> done) {
  auto t = find(id);
  if (!t) {
    if (done) done();
    return;
  }
  // Forgotten at once (handles and lookups no longer find it); it finishes stopping on its own.
  by_id_.erase(id);
  torrents_.erase(t->wire_hash());
  if (t->v2_wire_hash()) aliases_.erase(*t->v2_wire_hash());
  queue_.erase(std::remove(queue_.begin(), queue_.end(), t), queue_.end());
  renumber_queue();
  torrent_deactivated(*t);
  removing_.insert(t);
  std::weak_ptr<torrent> w = t;
  t->stop([this, w, delete_data, done = std::move(done)] {
    auto t = w.lock();
    if (!t) return;
    auto finish = [this, w, done] {
      auto t = w.lock();
      if (t) {
        session_event e;
        e.kind = event_kind::removed;
        e.torrent = t->id();
        e.info_hash = t->wire_hash();
        post_event(std::move(e));
        removing_.erase(t);
      }
      if (done) done();
      if (removing_.empty() && removals_done_) {
        auto f = std::move(removals_done_);
        removals_done_ = nullptr;
        f();
      }
    };
    t->delete_files(delete_data, [finish](std::error_code) { finish(); });
  });
  queue_changed();
}

void session::renumber_queue() {
  for (std::size_t i = 0; i < queue_.size(); ++i)
    queue_[i]->set_queue_position(static_cast<std::uint32_t>(i));
}

void session::queue_move(torrent_id id, std::uint32_t position) {
  call([this, id, position] {
    auto t = find(id);
    if (!t) return;
    queue_.erase(std::remove(queue_.begin(), queue_.end(), t), queue_.end());
    const auto at = std::min<std::size_t>(position, queue_.size());
    queue_.insert(queue_.begin() + static_cast<std::ptrdiff_t>(at), t);
    save_queue_order();
  });
}

void session::queue_move(const std::vector<torrent_id>& ids, queue_step step) {
  call([this, &ids, step] {
    std::set<torrent_id> want(ids.begin(), ids.end());
    auto moving = [&](const std::shared_ptr<torrent>& t) { return want.count(t->id()) != 0; };
    if (step == queue_step::top || step == queue_step::bottom) {
      // A stable partition keeps the order within each group.
      if (step == queue_step::top) {
        std::stable_partition(queue_.begin(), queue_.end(), moving);
      } else {
        std::stable_partition(queue_.begin(), queue_.end(), [&](const auto& t) { return !moving(t); });
      }
    } else if (step == queue_step::up) {
      for (std::size_t i = 1; i < queue_.size(); ++i)
        if (moving(queue_[i]) && !moving(queue_[i - 1])) std::swap(queue_[i], queue_[i - 1]);
    } else {
      for (std::size_t i = queue_.size(); i-- > 1;)
        if (moving(queue_[i - 1]) && !moving(queue_[i])) std::swap(queue_[i], queue_[i - 1]);
    }
    save_queue_order();
  });
}

void session::save_queue_order() {
  // The torrents whose place changed keep it across a restart: their resume data is
  // written now (the queue is rebuilt from it at the next start).
  // The user's order is the order from now on: every key becomes its place.
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    queue_[i]->set_queue_position(static_cast<std::uint32_t>(i));
    if (queue_[i]->queue_key() == i) continue;
    queue_[i]->set_queue_key(static_cast<std::uint32_t>(i));
    queue_[i]->save_settings();
  }
  queue_changed();
}

void session::queue_changed() {
  if (queue_update_posted_ || stopping_) return;
  queue_update_posted_ = true;
  // Coalesced over a few milliseconds: thousands of torrents loading at once cost one pass
  // over the queue per burst, not one per torrent.
  queue_timer_.expires_after(std::chrono::milliseconds(2));
  queue_timer_.async_wait([this](boost::system::error_code ec) {
    queue_update_posted_ = false;
    if (!ec) update_queue();
  });
}

void session::update_queue() {
  if (stopping_) return;
  // Positions restored from resume data: keep the queue in that order.
  if (!std::is_sorted(queue_.begin(), queue_.end(),
                      [](const auto& a, const auto& b) { return a->queue_key() < b->queue_key(); })) {
    std::stable_sort(queue_.begin(), queue_.end(),
                     [](const auto& a, const auto& b) { return a->queue_key() < b->queue_key(); });
  }
  renumber_queue();
  // One torrent checks at a time (checks of several at once only make the disk seek).
  bool checking = false;
  for (const auto& t : queue_)
    checking = checking || t->state() == torrent_state::checking;
  if (!checking) {
    for (const auto& t : queue_) {
      if (t->wants_check()) {
        t->begin_check();
        break;
      }
    }
  }
  std::uint32_t downloads = 0, seeds = 0;
  for (const auto& t : queue_) {
    if (!t->active()) continue;
    (t->state() == torrent_state::seeding ? seeds : downloads) += 1;
  }
  const auto max_down = settings_.max_active_downloads, max_seed = settings_.max_active_seeds;
  for (const auto& t : queue_) {
    if (!t->wants_slot()) continue;
    if (t->would_seed()) {
      if (max_seed == 0 || seeds < max_seed) {
        ++seeds;
        t->activate();
      }
    } else if (max_down == 0 || downloads < max_down) {
      ++downloads;
      t->activate();
    }
  }
  // Over a limit (lowered, or a seed that wants files again): the last in the queue wait.
  for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
    const auto& t = *it;
    if (!t->active()) continue;
    if (t->state() == torrent_state::seeding && max_seed && seeds > max_seed) {
      --seeds;
      t->deactivate();
    } else if (t->state() == torrent_state::downloading && max_down && downloads > max_down) {
      --downloads;
      t->deactivate();
    }
  }
}

void session::tick() {
  if (stopping_) return;
  // One timer for the whole session: each running torrent's second (connections, choker,
  // flushes, goals), however many torrents there are.
  for (const auto& t : std::vector(queue_)) {
    if (t->active() || t->metadata_phase()) t->tick();
  }
  if (++ticks_ % 5 == 1) scrape_tick();
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

void session::torrent_activated(const std::shared_ptr<torrent>& t) {
  if (t->info().is_private) return;
  if (dht_) {
    asio::co_spawn(io_, dht_loop(t, t->wire_hash(), t->run_generation()), asio::detached);
    if (t->v2_wire_hash()) asio::co_spawn(io_, dht_loop(t, *t->v2_wire_hash(), t->run_generation()), asio::detached);
  }
  if (lsd_) {
    lsd_->add(t->wire_hash());
    if (t->v2_wire_hash()) lsd_->add(*t->v2_wire_hash());
  }
}

void session::torrent_deactivated(const torrent& t) {
  if (lsd_) {
    lsd_->remove(t.wire_hash());
    if (t.v2_wire_hash()) lsd_->remove(*t.v2_wire_hash());
  }
}

std::chrono::steady_clock::time_point session::next_announce_slot() {
  const auto now = std::chrono::steady_clock::now();
  // Never further ahead than one slot per torrent: a client pausing and resuming in a loop
  // cannot push everyone's announces into the far future.
  const auto horizon = now + settings_.announce_spacing * static_cast<long>(queue_.size() + 1);
  announce_slot_ = std::min(std::max(announce_slot_ + settings_.announce_spacing, now), horizon);
  return announce_slot_;
}

void session::post_event(session_event e) {
  if ((settings_.event_mask & event_bit(e.kind)) == 0) return;
  events_.push(std::move(e));
  if (event_notify_) event_notify_();
}

torrent_handle session::add(torrent_params p) {
  return call([this, p = std::move(p)]() mutable { return torrent_handle(this, add_torrent(std::move(p))->id()); });
}

std::vector<torrent_handle> session::add_many(std::vector<torrent_params> ps) {
  return call([this, ps = std::move(ps)]() mutable {
    std::vector<torrent_handle> out;
    out.reserve(ps.size());
    for (auto& p : ps)
      out.emplace_back(this, add_torrent(std::move(p))->id());
    return out;
  });
}

void session::remove(torrent_id id, bool delete_data) {
  call([this, id, delete_data] { remove_torrent(id, delete_data); });
}

std::vector<torrent_status> session::status_all() {
  return call([this] {
    std::vector<torrent_status> out;
    out.reserve(queue_.size());
    for (const auto& t : queue_)
      out.push_back(t->status());
    return out;
  });
}

std::vector<std::shared_ptr<torrent>> session::find_named(const std::vector<torrent_id>& ids,
                                                          const std::vector<sha1_digest>& hashes) {
  std::vector<std::shared_ptr<torrent>> pick;
  pick.reserve(ids.size() + hashes.size());
  for (auto id : ids)
    if (auto t = find(id)) pick.push_back(std::move(t));
  for (const auto& h : hashes)
    if (auto t = find_torrent(h)) pick.push_back(std::move(t));
  std::sort(pick.begin(), pick.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });
  pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
  return pick;
}

std::vector<torrent_status> session::status_of(const std::vector<torrent_id>& ids,
                                               const std::vector<sha1_digest>& hashes) {
  return call([&] {
    const auto pick = find_named(ids, hashes);
    std::vector<torrent_status> out;
    out.reserve(pick.size());
    for (const auto& t : pick)
      out.push_back(t->status());
    return out;
  });
}

std::vector<torrent_handle> session::torrents() {
  return call([this] {
    std::vector<torrent_handle> out;
    for (const auto& [id, t] : by_id_)
      out.emplace_back(this, id);
    return out;
  });
}

void session::start_thread() {
  if (thread_.joinable()) return;
  work_.emplace(asio::make_work_guard(io_));
  thread_ = std::thread([this] { io_.run(); });
}

void session::shutdown() {
  if (!thread_.joinable()) return;
  std::promise<void> stopped;
  auto fut = stopped.get_future();
  asio::post(io_, [this, &stopped] { stop([&stopped] { stopped.set_value(); }); });
  fut.wait();
  work_.reset();
  io_.stop();
  thread_.join();
}

// --- torrent_handle -------------------------------------------------------------------------

std::optional<torrent_status> torrent_handle::status() const {
  if (!s_) return std::nullopt;
  return s_->call([s = s_, id = id_]() -> std::optional<torrent_status> {
    auto t = s->find(id);
    if (!t) return std::nullopt;
    return t->status();
  });
}
void torrent_handle::pause() const {
  with([](torrent& t) { t.pause(); });
}
void torrent_handle::resume() const {
  with([](torrent& t) { t.resume(); });
}
void torrent_handle::force_recheck() const {
  with([](torrent& t) { t.force_recheck(); });
}
void torrent_handle::reannounce() const {
  with([](torrent& t) { t.reannounce(); });
}
void torrent_handle::set_file_priorities(std::vector<std::uint8_t> prio) const {
  with([prio = std::move(prio)](torrent& t) mutable { t.set_file_priorities(std::move(prio)); });
}
void torrent_handle::set_sequential(bool on) const {
  with([on](torrent& t) { t.set_sequential(on); });
}
void torrent_handle::set_limits(std::uint64_t down, std::uint64_t up) const {
  with([down, up](torrent& t) { t.set_limits(down, up); });
}
void torrent_handle::set_goals(seed_goals g) const {
  with([g](torrent& t) { t.set_goals(g); });
}
void torrent_handle::set_labels(std::vector<std::string> labels) const {
  with([labels = std::move(labels)](torrent& t) mutable { t.set_labels(std::move(labels)); });
}
void torrent_handle::move_storage(std::filesystem::path to, bool move_data) const {
  with([to = std::move(to), move_data](torrent& t) { t.move_storage(to, move_data); });
}
void torrent_handle::set_display_name(std::string name) const {
  with([name = std::move(name)](torrent& t) mutable { t.set_display_name(std::move(name)); });
}
std::pair<std::error_code, std::string> torrent_handle::rename_path(std::string from, std::string to) const {
  using answer = std::pair<std::error_code, std::string>;
  if (!s_) return {std::make_error_code(std::errc::invalid_argument), "no session"};
  if (s_->io().get_executor().running_in_this_thread()) {
    return {std::make_error_code(std::errc::resource_deadlock_would_occur),
            "rename_path waits: not on the session's thread"};
  }
  auto promise = std::make_shared<std::promise<answer>>();
  auto fut = promise->get_future();
  const bool found = s_->call([&] {
    auto t = s_->find(id_);
    if (!t) return false;
    t->rename_path(std::move(from), std::move(to), [promise](std::error_code ec, std::string why) {
      promise->set_value({ec, std::move(why)});
    });
    return true;
  });
  if (!found) return {std::make_error_code(std::errc::no_such_file_or_directory), "no such torrent"};
  try {
    return fut.get();
  } catch (const std::future_error&) {  // the session stopped first
    return {std::make_error_code(std::errc::operation_canceled), "the session stopped"};
  }
}

std::shared_ptr<torrent> session::find_torrent(const sha1_digest& h) {
  auto it = torrents_.find(h);
  if (it != torrents_.end()) return it->second;
  auto a = aliases_.find(h);
  if (a == aliases_.end()) return nullptr;
  it = torrents_.find(a->second);
  return it == torrents_.end() ? nullptr : it->second;
}

asio::awaitable<void> session::dht_loop(std::weak_ptr<torrent> w, sha1_digest hash, std::uint64_t gen) {
  // After any wait the session may be gone (an io_context that outlives it): `alive`
  // says so before `this` is touched. stop() cancels the registered timer.
  auto alive = alive_;
  asio::steady_timer timer(io_);
  loop_timers_.insert(&timer);
  struct unregister {
    std::shared_ptr<bool> alive;
    std::set<asio::steady_timer*>& timers;
    asio::steady_timer* t;
    ~unregister() {
      if (*alive) timers.erase(t);
    }
  } guard{alive, loop_timers_, &timer};
  // Spread: torrents that start together do not all look up at once.
  const auto now = std::chrono::steady_clock::now();
  dht_slot_ = std::min(std::max(dht_slot_ + settings_.dht_announce_spacing, now),
                       now + settings_.dht_announce_spacing * static_cast<long>(queue_.size() + 1));
  if (dht_slot_ > now) {
    timer.expires_at(dht_slot_);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return;
  }
  int quiet_rounds = 0;
  auto running = [gen](const std::shared_ptr<torrent>& t) {
    return t && t->active() && t->run_generation() == gen && !t->ended();
  };
  while (!stopping_ && dht_ && dht_->running()) {
    auto t = w.lock();
    if (!running(t)) co_return;
    dht::node::lookup_options opt;
    opt.announce_port = port_;
    opt.seed = t->finished();
    t.reset();  // a lookup takes seconds: do not keep a stopped torrent alive
    auto node = dht_;
    const bool local = settings_.local;
    // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
    std::function<void(const std::vector<tcp::endpoint>&)> on_peers =
        [this, alive, w, local, running](const std::vector<tcp::endpoint>& peers) {
          if (!*alive) return;
          auto tt = w.lock();
          if (!running(tt)) return;
          for (const auto& ep : peers) {
            if (is_self(ep) || (local && !dht::is_local_address(ep.address()))) continue;
            tt->add_peer(ep);
          }
        };
    auto found = co_await node->get_peers(hash, opt, on_peers);
    if (!*alive) co_return;
    if (settings_.log) settings_.log("dht: " + std::to_string(found) + " peers from the DHT");
    // Nobody yet (a swarm just starting): ask again soon, backing off to the usual 15 min.
    std::chrono::seconds wait(15 * 60);
    if (found == 0 && quiet_rounds < 6) wait = std::chrono::seconds(5 << quiet_rounds++);
    timer.expires_after(wait);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return;
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
  // within utp_connect_timeout (refused, unreachable, filtered), or when the peer turned a
  // TCP connection away before its handshake (learned_tcp_refused).
  const bool fallback = settings_.transport == peer_transport::both && utp_ok;
  if (fallback && tcp_refused(ep)) {
    // TCP was turned away before: uTP first. A peer that was only full at the time, with
    // no uTP, gets TCP again (and is forgotten here) rather than never again.
    auto u = co_await utp_->connect(ep, settings_.utp_connect_timeout);
    if (!u.first) co_return u;
    tcp_refused_peers_.erase(ep);
  }
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
  return listen_addr_ && *listen_addr_ == a;
}

void session::stop(std::function<void()> done) {
  if (done) stop_waiters_.push_back(std::move(done));
  if (stopping_) return;  // the first call tells every waiter when it is over
  stopping_ = true;
  tick_timer_.cancel();
  queue_timer_.cancel();
  for (auto* t : loop_timers_)
    t->cancel();  // the DHT loops' waits (up to 15 minutes) end now
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (utp_) utp_->set_accept_handler(nullptr);
  if (dht_) dht_->stop();
  if (lsd_) lsd_->stop();
  auto all_done = [this] {
    // Mappings are removed after the torrents said goodbye to trackers and peers.
    auto finish = [this] {
      auto waiters = std::move(stop_waiters_);
      stop_waiters_.clear();
      for (auto& w : waiters)
        w();
    };
    if (mapper_) {
      mapper_->stop(finish);
    } else {
      finish();
    }
  };
  auto remaining = std::make_shared<std::size_t>(torrents_.size() + (removing_.empty() ? 0 : 1));
  if (*remaining == 0) {
    all_done();
    return;
  }
  auto one_done = [remaining, all_done] {
    if (--*remaining == 0) all_done();
  };
  if (!removing_.empty()) removals_done_ = one_done;  // removals under way finish first
  for (auto& [h, t] : torrents_)
    t->stop(one_done);
}

}  // namespace shoal
