#include "net/utp.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

namespace shoal::net {

using udp = asio::ip::udp;

namespace detail {

struct conn_key {
  udp::endpoint ep;
  std::uint16_t id = 0;
  bool operator==(const conn_key&) const = default;
};
struct conn_key_hash {
  std::size_t operator()(const conn_key& k) const noexcept {
    std::size_t h = std::hash<std::uint16_t>{}(k.id) ^ (std::size_t{k.ep.port()} << 16);
    if (k.ep.address().is_v4()) {
      h ^= std::hash<std::uint32_t>{}(k.ep.address().to_v4().to_uint()) * 0x9e3779b97f4a7c15ull;
    } else {
      auto b = k.ep.address().to_v6().to_bytes();
      for (auto c : b)
        h = h * 131 + c;
    }
    return h;
  }
};

struct utp_conn {
  utp_conn(utp_core* core, asio::io_context& io, const utp::connection_config& cfg, udp::endpoint remote);
  utp_core* core;  // null once the manager is gone
  udp::endpoint remote;
  utp::connection c;
  asio::steady_timer read_wait, write_wait, connect_wait;
  bool half_open = false;   // accepted, not yet confirmed
  bool accepted = false;    // made by an incoming SYN
  bool handed_out = false;  // a stream owns it
  bool in_map = true;
  bool dirty = false;
};

struct utp_core : std::enable_shared_from_this<utp_core> {
  utp_core(asio::io_context& i, utp_settings st) : io(i), s(st), sock4(i), sock6(i), ticker(i) {}

  asio::io_context& io;
  utp_settings s;
  udp::socket sock4, sock6;
  asio::steady_timer ticker;
  bool ticking = false;
  bool closed = false;
  std::unordered_map<conn_key, std::shared_ptr<utp_conn>, conn_key_hash> conns;
  std::vector<std::shared_ptr<utp_conn>> dirty;
  std::size_t half_open = 0;
  utp_socket_manager::accept_fn on_accept;
  utp_socket_manager::fallback_fn fallback;
  std::mt19937 rng{std::random_device{}()};
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  utp_manager_stats stats;

  utp::time_us now() const {
    return static_cast<utp::time_us>(
               std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - origin)
                   .count()) +
           1;
  }
  udp::socket& sock_for(const udp::endpoint& ep) { return ep.address().is_v6() ? sock6 : sock4; }

  // Outgoing datagrams are batched and leave in one sendmmsg at the end of the handler
  // that made them (or when the batch is full): one system call per burst, not per packet.
  static constexpr std::size_t batch = 64;
  static constexpr std::size_t tx_slot = 1500;
  struct tx_queue {
    std::vector<char> bufs = std::vector<char>(batch * tx_slot);
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    std::array<sockaddr_storage, batch> addrs{};
    std::size_t n = 0;
    int fd = -1;
  } tx;
  bool flush_posted = false;

  void send(std::span<const char> d, const udp::endpoint& to) {
    auto& sk = sock_for(to);
    if (!sk.is_open()) return;
    const int fd = sk.native_handle();
    if (d.size() > tx_slot) {
      flush_tx();
      error_code ec;
      sk.send_to(asio::buffer(d.data(), d.size()), to, 0, ec);
      ++(ec ? stats.send_drops : stats.datagrams_out);
      return;
    }
    if (tx.n == batch || (tx.n > 0 && tx.fd != fd)) flush_tx();
    const std::size_t i = tx.n++;
    tx.fd = fd;
    char* buf = tx.bufs.data() + i * tx_slot;
    std::memcpy(buf, d.data(), d.size());
    tx.iov[i] = iovec{buf, d.size()};
    std::memcpy(&tx.addrs[i], to.data(), to.size());
    auto& h = tx.msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &tx.addrs[i];
    h.msg_namelen = static_cast<socklen_t>(to.size());
    h.msg_iov = &tx.iov[i];
    h.msg_iovlen = 1;
    if (!flush_posted) {
      flush_posted = true;
      asio::post(io, [w = weak_from_this()] {
        if (auto self = w.lock()) self->flush_tx();
      });
    }
  }

  // With UDP GSO (Linux 4.18+), consecutive datagrams to one address that have the same
  // size (the last may be shorter) leave as one message the kernel cuts up: far fewer
  // trips through the network stack. Off when the kernel refuses it once.
  bool gso = true;
  static constexpr std::size_t gso_max_bytes = 65000;
  struct gso_queue {
    std::array<mmsghdr, batch> msgs{};
    std::array<std::size_t, batch> first{};  // the tx index each message starts at
    std::array<std::array<char, CMSG_SPACE(sizeof(std::uint16_t))>, batch> ctrl{};
  } gq;

  bool same_destination(std::size_t a, std::size_t b) const {
    return tx.msgs[a].msg_hdr.msg_namelen == tx.msgs[b].msg_hdr.msg_namelen &&
           std::memcmp(&tx.addrs[a], &tx.addrs[b], tx.msgs[a].msg_hdr.msg_namelen) == 0;
  }

  // Sends tx[from, n) as GSO messages; returns false (GSO now off) if the kernel refused
  // it, with tx[*resume, n) still to send.
  bool flush_gso(std::size_t& resume) {
    std::size_t m = 0;
    for (std::size_t i = 0; i < tx.n;) {
      const std::size_t seg = tx.iov[i].iov_len;
      std::size_t j = i + 1, total = seg;
      while (j < tx.n && same_destination(i, j) && tx.iov[j].iov_len <= seg &&
             total + tx.iov[j].iov_len <= gso_max_bytes) {
        total += tx.iov[j].iov_len;
        if (tx.iov[j++].iov_len < seg) break;  // a shorter one ends the train
      }
      auto& h = gq.msgs[m].msg_hdr;
      h = tx.msgs[i].msg_hdr;
      h.msg_iov = &tx.iov[i];
      h.msg_iovlen = j - i;
      if (j - i > 1) {
        h.msg_control = gq.ctrl[m].data();
        h.msg_controllen = gq.ctrl[m].size();
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = IPPROTO_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto size = static_cast<std::uint16_t>(seg);
        std::memcpy(CMSG_DATA(c), &size, sizeof size);
      }
      gq.first[m++] = i;
      i = j;
    }
    std::size_t k = 0;
    while (k < m) {
      const int r = ::sendmmsg(tx.fd, gq.msgs.data() + k, static_cast<unsigned>(m - k), 0);
      if (r > 0) {
        for (int x = 0; x < r; ++x)
          stats.datagrams_out += gq.msgs[k + static_cast<std::size_t>(x)].msg_hdr.msg_iovlen;
        k += static_cast<std::size_t>(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        for (std::size_t x = k; x < m; ++x)
          stats.send_drops += gq.msgs[x].msg_hdr.msg_iovlen;
        break;
      } else if (gq.msgs[k].msg_hdr.msg_iovlen > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
        gso = false;
        resume = gq.first[k];
        return false;
      } else {
        stats.send_drops += gq.msgs[k].msg_hdr.msg_iovlen;
        ++k;
      }
    }
    return true;
  }

  void flush_tx() {
    flush_posted = false;
    std::size_t i = 0;
    if (gso && tx.n > 1) {
      if (flush_gso(i)) {
        tx.n = 0;
        return;
      }
    }
    while (i < tx.n) {
      const int r = ::sendmmsg(tx.fd, tx.msgs.data() + i, static_cast<unsigned>(tx.n - i), 0);
      if (r > 0) {
        i += static_cast<std::size_t>(r);
        stats.datagrams_out += static_cast<std::uint64_t>(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        stats.send_drops += tx.n - i;  // a full socket buffer drops them, as a network would
        break;
      } else {
        ++stats.send_drops;  // this one datagram failed (unreachable address, ...): skip it
        ++i;
      }
    }
    tx.n = 0;
  }

  void send_reset(const udp::endpoint& to, std::uint16_t conn_id, std::uint16_t ack_nr) {
    utp::header h;
    h.type = utp::packet_type::reset;
    h.connection_id = conn_id;
    h.timestamp_us = static_cast<std::uint32_t>(now());
    h.ack_nr = ack_nr;
    std::array<char, utp::header_size> b{};
    utp::write_header(b.data(), h);
    ++stats.resets_sent;
    send(b, to);
  }

  utp::connection_config config_for(const udp::endpoint& ep) const {
    auto cfg = s.conn;
    if (ep.address().is_v6() && cfg.max_datagram > 1380) cfg.max_datagram = 1380;
    return cfg;
  }

  std::shared_ptr<utp_conn> make_conn(const udp::endpoint& remote) {
    return std::make_shared<utp_conn>(this, io, config_for(remote), remote);
  }

  void mark(const std::shared_ptr<utp_conn>& c) {
    if (!c->dirty) {
      c->dirty = true;
      dirty.push_back(c);
    }
  }

  // Wakes whoever waits on what changed; hands out confirmed incoming connections.
  void process_events(const std::shared_ptr<utp_conn>& c) {
    const unsigned ev = c->c.take_events();
    if (ev & utp::ev_connected) {
      c->connect_wait.cancel();
      if (c->half_open) {
        c->half_open = false;
        --half_open;
        if (on_accept) {
          c->handed_out = true;
          ++stats.connections_accepted;
          auto st = std::make_unique<utp_stream>(c);
          asio::post(io, [fn = on_accept, st = std::move(st)]() mutable { fn(std::move(st)); });
        } else {
          c->c.abort(now());
        }
      }
    }
    if (ev & (utp::ev_readable | utp::ev_failed | utp::ev_done)) c->read_wait.cancel();
    if (ev & (utp::ev_writable | utp::ev_failed | utp::ev_done)) c->write_wait.cancel();
    if (ev & (utp::ev_failed | utp::ev_done)) c->connect_wait.cancel();
    if (c->c.done() && c->in_map) {
      if (c->half_open) {
        c->half_open = false;
        --half_open;
      }
      c->in_map = false;
      conns.erase(conn_key{c->remote, c->c.recv_id()});
    }
  }

  void flush_dirty() {
    const auto t = now();
    for (std::size_t i = 0; i < dirty.size(); ++i) {  // process_events may not add, but be safe
      auto c = dirty[i];
      c->dirty = false;
      c->c.flush(t);
      process_events(c);
    }
    dirty.clear();
  }

  std::shared_ptr<utp_conn> find(const udp::endpoint& from, std::uint16_t id) {
    auto it = conns.find(conn_key{from, id});
    return it == conns.end() ? nullptr : it->second;
  }

  void dispatch(std::span<const char> d, const udp::endpoint& from, utp::time_us t) {
    ++stats.datagrams_in;
    if (!d.empty() && d[0] == 'd') {  // a bencoded dictionary: KRPC
      ++stats.fallback_in;
      if (fallback) fallback(d, from);
      return;
    }
    if (utp::looks_like_utp(d)) {
      auto p = utp::parse_packet(d);
      if (p) {
        const auto type = p->h.type;
        const std::uint16_t id = p->h.connection_id;
        if (auto c = find(from, id)) {
          ++stats.utp_in;
          c->c.on_packet(*p, t);
          mark(c);
          return;
        }
        if (type == utp::packet_type::syn) {
          ++stats.utp_in;
          on_syn(*p, from, t);
          return;
        }
        if (type == utp::packet_type::reset) {
          // A RESET answering a packet of ours names the id we sent with: find the
          // connection whose send id it is.
          for (std::uint16_t cand : {static_cast<std::uint16_t>(id - 1), static_cast<std::uint16_t>(id + 1)}) {
            if (auto c = find(from, cand); c && c->c.send_id() == id) {
              ++stats.utp_in;
              c->c.on_packet(*p, t);
              mark(c);
              return;
            }
          }
        } else if (type == utp::packet_type::data || type == utp::packet_type::fin) {
          // Data for a connection we do not have: tell the sender (a reply no bigger than
          // the packet, so no amplification).
          ++stats.utp_in;
          send_reset(from, id, p->h.seq_nr);
          return;
        }
      }
    }
    ++stats.fallback_in;
    if (fallback) fallback(d, from);
  }

  void on_syn(const utp::packet& p, const udp::endpoint& from, utp::time_us t) {
    // A repeated SYN for a connection we accepted: it answers again.
    if (auto c = find(from, static_cast<std::uint16_t>(p.h.connection_id + 1))) {
      c->c.on_packet(p, t);
      mark(c);
      return;
    }
    if (!on_accept || closed || half_open >= s.max_half_open || conns.size() >= s.max_connections || from.port() == 0) {
      ++stats.syns_refused;
      return;  // silence: a RESET to a spoofed source would be reflection
    }
    auto c = make_conn(from);
    c->accepted = c->half_open = true;
    ++half_open;
    conns.emplace(conn_key{from, static_cast<std::uint16_t>(p.h.connection_id + 1)}, c);
    c->c.accept(p, static_cast<std::uint16_t>(rng()), t);
    mark(c);
    start_ticker();
  }

  // Incoming datagrams: recvmmsg, up to `batch` a call, until the socket is empty or
  // max_batch were read; then the ACKs owed go out, once per connection and batch.
  // With UDP GRO a message may hold many datagrams of one size (cut at gso_size), so a
  // slot holds the largest UDP payload.
  static constexpr std::size_t rx_batch = 16;
  static constexpr std::size_t rx_slot = 65536;
  struct rx_queue {
    std::vector<char> bufs = std::vector<char>(rx_batch * rx_slot);
    std::array<mmsghdr, rx_batch> msgs{};
    std::array<iovec, rx_batch> iov{};
    std::array<sockaddr_storage, rx_batch> addrs{};
    std::array<std::array<char, CMSG_SPACE(sizeof(int))>, rx_batch> ctrl{};
  } rxq;

  void drain(udp::socket& sk) {
    const int fd = sk.native_handle();
    std::size_t total = 0;
    while (total < s.max_batch && sk.is_open() && !closed) {
      for (std::size_t i = 0; i < rx_batch; ++i) {
        rxq.iov[i] = iovec{rxq.bufs.data() + i * rx_slot, rx_slot};
        auto& h = rxq.msgs[i].msg_hdr;
        h = msghdr{};
        h.msg_name = &rxq.addrs[i];
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_iov = &rxq.iov[i];
        h.msg_iovlen = 1;
        h.msg_control = rxq.ctrl[i].data();
        h.msg_controllen = rxq.ctrl[i].size();
      }
      const int r = ::recvmmsg(fd, rxq.msgs.data(), rx_batch, MSG_DONTWAIT, nullptr);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        ++total;  // an ICMP error reported on the socket: keep reading
        continue;
      }
      if (r == 0) break;
      const auto t = now();
      for (int i = 0; i < r; ++i) {
        auto& m = rxq.msgs[static_cast<std::size_t>(i)];
        if (m.msg_hdr.msg_flags & MSG_TRUNC) continue;  // bigger than any datagram we speak
        udp::endpoint from;
        if (m.msg_hdr.msg_namelen > from.capacity()) continue;
        std::memcpy(from.data(), &rxq.addrs[static_cast<std::size_t>(i)], m.msg_hdr.msg_namelen);
        from.resize(m.msg_hdr.msg_namelen);
        std::size_t seg = m.msg_len;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c; c = CMSG_NXTHDR(&m.msg_hdr, c)) {
          if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
            int size = 0;
            std::memcpy(&size, CMSG_DATA(c), sizeof size);
            if (size > 0) seg = static_cast<std::size_t>(size);
          }
        }
        const char* base = rxq.bufs.data() + static_cast<std::size_t>(i) * rx_slot;
        for (std::size_t off = 0; off < m.msg_len; off += seg) {
          dispatch(std::span<const char>(base + off, std::min<std::size_t>(seg, m.msg_len - off)), from, t);
          if (closed) return;
          ++total;
        }
      }
      if (static_cast<std::size_t>(r) < rx_batch) break;
    }
    flush_dirty();
    flush_tx();
  }

  void start_receive(udp::socket& sk) {
    sk.async_wait(udp::socket::wait_read, [w = weak_from_this(), &sk](error_code ec) {
      auto self = w.lock();
      if (!self || ec || self->closed || !sk.is_open()) return;
      self->drain(sk);
      self->start_receive(sk);
    });
  }

  void start_ticker() {
    if (ticking || closed) return;
    ticking = true;
    ticker.expires_after(s.tick);
    ticker.async_wait([w = weak_from_this()](error_code ec) {
      auto self = w.lock();
      if (!self) return;
      self->ticking = false;
      if (ec || self->closed) return;
      self->on_tick();
    });
  }

  void on_tick() {
    const auto t = now();
    std::vector<std::shared_ptr<utp_conn>> all;
    all.reserve(conns.size());
    for (auto& [k, c] : conns)
      all.push_back(c);
    for (auto& c : all) {
      c->c.tick(t);
      process_events(c);
    }
    flush_dirty();
    if (!conns.empty()) start_ticker();
  }

  void shutdown() {
    if (closed) return;
    closed = true;
    const auto t = now();
    for (auto& [k, c] : conns) {
      c->c.abort(t);
      c->core = nullptr;
      c->in_map = false;
      c->read_wait.cancel();
      c->write_wait.cancel();
      c->connect_wait.cancel();
    }
    conns.clear();
    dirty.clear();
    flush_tx();
    error_code ec;
    sock4.close(ec);
    sock6.close(ec);
    ticker.cancel();
  }
};

utp_conn::utp_conn(utp_core* co, asio::io_context& io, const utp::connection_config& cfg, udp::endpoint r)
    : core(co),
      remote(r),
      c(cfg,
        [this](std::span<const char> d) {
          if (core) core->send(d, remote);
        }),
      read_wait(io),
      write_wait(io),
      connect_wait(io) {}

}  // namespace detail

// --- manager ---------------------------------------------------------------------------

utp_socket_manager::utp_socket_manager(asio::io_context& io, utp_settings s)
    : core_(std::make_shared<detail::utp_core>(io, s)) {}

utp_socket_manager::~utp_socket_manager() {
  core_->shutdown();
}

void utp_socket_manager::close() {
  core_->shutdown();
}

error_code utp_socket_manager::listen(const udp::endpoint& ep) {
  auto& sk = ep.address().is_v6() ? core_->sock6 : core_->sock4;
  if (sk.is_open()) return asio::error::already_open;
  error_code ec;
  sk.open(ep.protocol(), ec);
  if (ec) return ec;
  if (ep.address().is_v6()) sk.set_option(asio::ip::v6_only(true), ec);
  sk.set_option(asio::socket_base::receive_buffer_size(core_->s.socket_buffer), ec);
  sk.set_option(asio::socket_base::send_buffer_size(core_->s.socket_buffer), ec);
  if (core_->s.gro) {
    const int on = 1;  // best effort: without it datagrams simply come one by one
    (void)::setsockopt(sk.native_handle(), IPPROTO_UDP, UDP_GRO, &on, sizeof on);
  }
  core_->gso = core_->gso && core_->s.gso;
  sk.bind(ep, ec);
  if (!ec) sk.non_blocking(true, ec);
  if (ec) {
    error_code ignored;
    sk.close(ignored);
    return ec;
  }
  core_->closed = false;
  core_->start_receive(sk);
  return {};
}

void utp_socket_manager::set_accept_handler(accept_fn fn) {
  core_->on_accept = std::move(fn);
}
void utp_socket_manager::set_fallback(fallback_fn fn) {
  core_->fallback = std::move(fn);
}
void utp_socket_manager::send_to(std::span<const char> d, const udp::endpoint& to) {
  core_->send(d, to);
}

udp::endpoint utp_socket_manager::local_endpoint(bool v6) const {
  error_code ec;
  auto ep = (v6 ? core_->sock6 : core_->sock4).local_endpoint(ec);
  return ec ? udp::endpoint{} : ep;
}

std::size_t utp_socket_manager::connection_count() const {
  return core_->conns.size();
}
const utp_manager_stats& utp_socket_manager::stats() const {
  return core_->stats;
}

asio::awaitable<std::pair<error_code, std::unique_ptr<stream>>> utp_socket_manager::connect(
    endpoint remote, std::chrono::milliseconds timeout) {
  using result_t = std::pair<error_code, std::unique_ptr<stream>>;
  auto core = core_;
  auto addr = remote.address();
  // An IPv4 peer seen through a dual-stack socket: dial it over IPv4.
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  const udp::endpoint to(addr, remote.port());
  if (core->closed || !core->sock_for(to).is_open())
    co_return result_t{error_code(asio::error::address_family_not_supported), std::unique_ptr<stream>()};
  // A receive id free for this remote (and its +1, the id it will send with).
  std::uint16_t id = 0;
  for (int tries = 0;; ++tries) {
    id = static_cast<std::uint16_t>(core->rng());
    if (!core->find(to, id) && !core->find(to, static_cast<std::uint16_t>(id + 1))) break;
    if (tries > 64) co_return result_t{error_code(asio::error::no_buffer_space), std::unique_ptr<stream>()};
  }
  auto c = core->make_conn(to);
  core->conns.emplace(detail::conn_key{to, id}, c);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  c->c.connect(id, static_cast<std::uint16_t>(core->rng()), core->now());
  core->start_ticker();
  while (c->c.state() == utp::conn_state::syn_sent && std::chrono::steady_clock::now() < deadline && c->core) {
    c->connect_wait.expires_at(deadline);
    co_await c->connect_wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (c->c.state() == utp::conn_state::connected && c->core) {
    c->handed_out = true;
    co_return result_t{error_code{}, std::unique_ptr<stream>(std::make_unique<utp_stream>(c))};
  }
  error_code ec = asio::error::timed_out;
  if (!c->core) ec = asio::error::operation_aborted;
  if (c->c.error() == utp::conn_error::refused || c->c.error() == utp::conn_error::reset) {
    ec = asio::error::connection_refused;
  }
  if (c->core) {
    c->c.close(core->now());
    core->process_events(c);
    if (c->in_map) {
      c->in_map = false;
      core->conns.erase(detail::conn_key{to, id});
    }
  }
  co_return result_t{error_code(ec), std::unique_ptr<stream>()};
}

// --- stream ----------------------------------------------------------------------------

namespace {
error_code error_of(const utp::connection& c) {
  switch (c.error()) {
    case utp::conn_error::reset:
      return asio::error::connection_reset;
    case utp::conn_error::timed_out:
      return asio::error::timed_out;
    case utp::conn_error::refused:
      return asio::error::connection_refused;
    case utp::conn_error::none:
      break;
  }
  return c.state() == utp::conn_state::closed ? error_code(asio::error::operation_aborted) : error_code{};
}
}  // namespace

utp_stream::utp_stream(std::shared_ptr<detail::utp_conn> c) : c_(std::move(c)) {}

utp_stream::~utp_stream() {
  close();
}

asio::awaitable<io_result> utp_stream::read_some(asio::mutable_buffer buf) {
  auto c = c_;
  if (buf.size() == 0) co_return io_result{{}, 0};
  for (;;) {
    if (closed_ || !c->core) co_return io_result{asio::error::operation_aborted, 0};
    const auto t = c->core->now();
    if (std::size_t n = c->c.read(std::span<char>(static_cast<char*>(buf.data()), buf.size()), t)) {
      c->core->process_events(c);
      co_return io_result{{}, n};
    }
    if (c->c.eof()) co_return io_result{asio::error::eof, 0};
    if (auto ec = error_of(c->c)) co_return io_result{ec, 0};
    c->read_wait.expires_at(std::chrono::steady_clock::time_point::max());
    co_await c->read_wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<io_result> utp_stream::write(asio::const_buffer buf) {
  auto c = c_;
  const auto* p = static_cast<const char*>(buf.data());
  std::size_t done = 0;
  for (;;) {
    if (closed_ || !c->core) co_return io_result{asio::error::operation_aborted, done};
    if (auto ec = error_of(c->c)) co_return io_result{ec, done};
    done += c->c.write(std::span<const char>(p + done, buf.size() - done), c->core->now());
    c->core->process_events(c);
    if (done == buf.size()) co_return io_result{{}, done};
    c->write_wait.expires_at(std::chrono::steady_clock::time_point::max());
    co_await c->write_wait.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void utp_stream::close() {
  if (closed_) return;
  closed_ = true;
  c_->read_wait.cancel();
  c_->write_wait.cancel();
  if (c_->core) {
    c_->c.close(c_->core->now());
    c_->core->process_events(c_);
  }
}

endpoint utp_stream::remote_endpoint() const {
  return endpoint(c_->remote.address(), c_->remote.port());
}

endpoint utp_stream::local_endpoint() const {
  if (!c_->core) return {};
  error_code ec;
  auto ep = c_->core->sock_for(c_->remote).local_endpoint(ec);
  return ec ? endpoint{} : endpoint(ep.address(), ep.port());
}

const utp::connection& utp_stream::connection() const {
  return c_->c;
}

}  // namespace shoal::net
