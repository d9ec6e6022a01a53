// A load generator for BitTorrent trackers (shoal tracker, opentracker), on loopback.
//
//   tracker_load hashes --torrents N      the bench's info-hashes, hex, one a line (a whitelist)
//   tracker_load udp --port P [options]   BEP 15 announces, many in flight
//   tracker_load http --port P [options]  HTTP announces over keep-alive connections
//   tracker_load http --close ...         ... or one connection per announce
//
// Peers are distinct: peer k announces torrent k % T from source address 127.0.0.(10 + s)
// (one "lane" per source) with its own port and peer id, so `--fill` (every peer once,
// event=started, lost datagrams resent until each is answered) leaves exactly --peers peers
// in the tracker. Without --fill, the peers re-announce in turn for --seconds and the
// answered announces per second are reported as one JSON line on stdout.
//
// Single-threaded: epoll over non-blocking sockets, sendmmsg/recvmmsg for UDP, so the
// generator costs much less per announce than a tracker does.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "core/text.hpp"
#include "tracker/announce.hpp"

using namespace shoal;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string mode;
  std::uint16_t port = 0;
  double seconds = 10;
  std::uint32_t torrents = 1000;
  std::uint64_t peers = 100000;
  std::uint32_t window = 128;  // UDP announces in flight
  std::uint32_t sources = 16;  // source addresses 127.0.0.10 ...
  std::uint32_t numwant = 50;
  std::uint32_t connections = 32;  // HTTP
  bool fill = false;
  bool close = false;
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "tracker_load: %s\n", why.c_str());
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  if (argc < 2)
    die("usage: tracker_load hashes|udp|http [--port P] [--seconds S] [--torrents N] [--peers N] "
        "[--window W] [--sources S] [--numwant N] [--connections C] [--fill] [--close]");
  options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--port") {
      o.port = static_cast<std::uint16_t>(std::stoul(next()));
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--torrents") {
      o.torrents = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--peers") {
      o.peers = std::stoull(next());
    } else if (a == "--window") {
      o.window = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--sources") {
      o.sources = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--numwant") {
      o.numwant = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--connections") {
      o.connections = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (a == "--fill") {
      o.fill = true;
    } else if (a == "--close") {
      o.close = true;
    } else {
      die("unknown option " + a);
    }
  }
  if (o.torrents == 0 || o.sources == 0 || o.sources > 200 || o.window == 0 || o.window > 65535) die("bad sizes");
  // Ports 1024.. per lane and torrent must stay below 65536.
  const std::uint64_t per_lane_torrent =
      (o.peers + std::uint64_t{o.torrents} * o.sources - 1) / (std::uint64_t{o.torrents} * o.sources);
  if (per_lane_torrent > 64000) die("too many peers for these torrents and sources");
  return o;
}

sha1_digest info_hash(std::uint32_t t) {
  return sha1("shoal tracker bench " + std::to_string(t));
}

std::uint32_t source_addr(std::uint32_t lane) {
  return 0x7f000000u | (10u + lane);  // 127.0.0.10 + lane
}

// Peer k: torrent k % T, lane (k / T) % S, port 1024 + k / (T * S).
struct peer_ref {
  std::uint32_t torrent, lane;
  std::uint16_t port;
};
peer_ref peer_of(const options& o, std::uint64_t k) {
  const std::uint64_t j = k / o.torrents;
  return {static_cast<std::uint32_t>(k % o.torrents), static_cast<std::uint32_t>(j % o.sources),
          static_cast<std::uint16_t>(1024 + j / o.sources)};
}

// The n-th peer of a lane (peers of a lane are k = t + T * (lane + S * m)).
std::uint64_t lane_peer(const options& o, std::uint32_t lane, std::uint64_t n) {
  const std::uint64_t t = n % o.torrents, m = n / o.torrents;
  return t + std::uint64_t{o.torrents} * (lane + std::uint64_t{o.sources} * m);
}

// How many of the first --peers peers a lane has (lane_peer grows with n).
std::uint64_t lane_size(const options& o, std::uint32_t s) {
  const std::uint64_t full = o.peers / o.torrents, rest = o.peers % o.torrents;
  std::uint64_t count = s < full ? ((full - 1 - s) / o.sources + 1) * o.torrents : 0;
  if (rest && full % o.sources == s) count += rest;
  return count;
}

tracker::announce_request request_for(const options& o, std::uint64_t k, tracker::event ev,
                                      const std::vector<sha1_digest>& hashes) {
  const auto p = peer_of(o, k);
  tracker::announce_request r;
  r.info_hash = hashes[p.torrent];
  char id[21];
  std::snprintf(id, sizeof id, "-LD0001-%012llu", static_cast<unsigned long long>(k % 1000000000000ull));
  std::memcpy(r.peer_id.data(), id, 20);
  r.port = p.port;
  r.left = (k / o.torrents) % 4 == 0 ? 0 : 1000000;  // a quarter of each torrent's peers are seeders
  r.ev = ev;
  r.numwant = o.numwant;
  r.key = static_cast<std::uint32_t>(k);
  return r;
}

int bound_socket(int type, std::uint32_t lane) {
  const int fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(source_addr(lane));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die(std::string("bind: ") + std::strerror(errno));
  return fd;
}

sockaddr_in target_of(const options& o) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(o.port);
  a.sin_addr.s_addr = htonl(0x7f000001u);
  return a;
}

// CPU seconds this process has used (user + system): shows whether the generator or the
// tracker is the one at 100%.
double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// ---------------------------------------------------------------------------- UDP

struct udp_lane {
  int fd = -1;
  std::uint64_t conn = 0;
  clock_type::time_point connected_at;
  std::uint64_t cursor = 0;  // next n for lane_peer
};

struct slot {
  std::uint32_t gen = 0;
  bool busy = false;
  std::uint64_t k = 0;
  clock_type::time_point sent;
};

// Blocking-with-timeout connect exchange on a lane's socket.
void udp_connect(udp_lane& l, const sockaddr_in& to) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    const std::uint32_t tid = 0xc0000000u | static_cast<std::uint32_t>(attempt);
    const std::string pkt = tracker::udp_connect_request(tid);
    ::sendto(l.fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    const auto t0 = clock_type::now();
    while (since(t0) < 0.5) {
      unsigned char buf[2048];
      const ssize_t n = ::recv(l.fd, buf, sizeof buf, 0);
      if (n < 0) {
        ::usleep(1000);
        continue;
      }
      auto id =
          tracker::udp_connect_reply(std::string_view(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n)), tid);
      if (id) {
        l.conn = *id;
        l.connected_at = clock_type::now();
        return;
      }
    }
  }
  die("no answer to BEP 15 connect on port " + std::to_string(ntohs(to.sin_port)));
}

int run_udp(const options& o, const std::vector<sha1_digest>& hashes) {
  const sockaddr_in to = target_of(o);
  std::vector<udp_lane> lanes(o.sources);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::uint32_t s = 0; s < o.sources; ++s) {
    lanes[s].fd = bound_socket(SOCK_DGRAM, s);
    const int big = 4 << 20;
    ::setsockopt(lanes[s].fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    ::setsockopt(lanes[s].fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    udp_connect(lanes[s], to);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = s;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lanes[s].fd, &ev);
  }
  // In --fill mode each lane walks its own peers once; lost ones are resent.
  std::vector<std::uint64_t> lane_total(o.sources);
  for (std::uint32_t s = 0; s < o.sources; ++s)
    lane_total[s] = lane_size(o, s);
  std::vector<slot> slots(o.window);
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t i = 0; i < o.window; ++i)
    free_slots.push_back(o.window - 1 - i);
  std::deque<std::uint64_t> resend;
  std::uint64_t answered = 0, errors = 0, lost = 0, sent = 0;
  std::uint64_t fill_done = 0;
  const auto start = clock_type::now();
  const double cpu0 = cpu_seconds();
  const auto timeout = std::chrono::milliseconds(1000);
  std::uint32_t rr = 0;
  auto last_scan = start;

  constexpr std::size_t batch = 32;
  std::vector<std::string> pkts(batch);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  std::vector<std::array<unsigned char, 2048>> inbuf(64);
  std::vector<iovec> iniov(64);
  std::vector<mmsghdr> inmsgs(64);

  auto done = [&] { return o.fill ? fill_done >= o.peers : since(start) >= o.seconds; };
  while (!done()) {
    const auto now = clock_type::now();
    // Connection ids: fresh ones well within the 2 minutes trackers accept them for.
    for (auto& l : lanes) {
      if (now - l.connected_at > std::chrono::seconds(50)) udp_connect(l, to);
    }
    // Expire lost requests (a scan every 100 ms is enough for a 1 s timeout).
    if (now - last_scan > std::chrono::milliseconds(100)) last_scan = now;
    for (std::uint32_t i = 0; i < o.window && last_scan == now; ++i) {
      if (slots[i].busy && now - slots[i].sent > timeout) {
        slots[i].busy = false;
        ++lost;
        if (o.fill) resend.push_back(slots[i].k);
        free_slots.push_back(i);
      }
    }
    // Send: a batch per lane in turn, while the window has room.
    for (std::uint32_t tries = 0; tries < o.sources && !free_slots.empty(); ++tries) {
      const std::uint32_t s = rr++ % o.sources;
      udp_lane& l = lanes[s];
      std::size_t n = 0;
      while (n < batch && !free_slots.empty()) {
        std::uint64_t k;
        tracker::event ev = o.fill ? tracker::event::started : tracker::event::none;
        if (o.fill && !resend.empty() && peer_of(o, resend.front()).lane == s) {
          k = resend.front();
          resend.pop_front();
        } else if (o.fill) {
          if (l.cursor >= lane_total[s]) break;
          k = lane_peer(o, s, l.cursor++);
        } else {
          k = lane_peer(o, s, l.cursor++);
          if (k >= o.peers) {
            l.cursor = 0;
            k = lane_peer(o, s, l.cursor++);
          }
        }
        const std::uint32_t idx = free_slots.back();
        free_slots.pop_back();
        slot& sl = slots[idx];
        sl.busy = true;
        ++sl.gen;
        sl.k = k;
        sl.sent = now;
        const std::uint32_t tid = (sl.gen & 0xffff) << 16 | idx;
        pkts[n] = tracker::udp_announce_request(l.conn, tid, request_for(o, k, ev, hashes));
        iov[n] = {pkts[n].data(), pkts[n].size()};
        msgs[n] = {};
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        msgs[n].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
        msgs[n].msg_hdr.msg_namelen = sizeof to;
        ++n;
      }
      if (n) {
        const int r = ::sendmmsg(l.fd, msgs.data(), static_cast<unsigned>(n), 0);
        sent += r > 0 ? static_cast<std::uint64_t>(r) : 0;  // unsent ones time out and count as lost
      }
    }
    // Receive.
    epoll_event evs[256];
    const int ne = ::epoll_wait(ep, evs, 256, 5);
    for (int e = 0; e < ne; ++e) {
      udp_lane& l = lanes[evs[e].data.u32];
      for (;;) {
        for (std::size_t i = 0; i < inmsgs.size(); ++i) {
          iniov[i] = {inbuf[i].data(), inbuf[i].size()};
          inmsgs[i] = {};
          inmsgs[i].msg_hdr.msg_iov = &iniov[i];
          inmsgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int got = ::recvmmsg(l.fd, inmsgs.data(), static_cast<unsigned>(inmsgs.size()), MSG_DONTWAIT, nullptr);
        if (got <= 0) break;
        for (int i = 0; i < got; ++i) {
          if (inmsgs[i].msg_len < 8) continue;
          const unsigned char* p = inbuf[i].data();
          const std::uint32_t action = be32(p), tid = be32(p + 4);
          const std::uint32_t idx = tid & 0xffff;
          if (idx >= o.window || !slots[idx].busy || (slots[idx].gen & 0xffff) != tid >> 16) continue;
          slots[idx].busy = false;
          free_slots.push_back(idx);
          if (action == 1 && inmsgs[i].msg_len >= 20) {
            ++answered;
            if (o.fill) ++fill_done;
          } else {
            ++errors;
            if (o.fill) resend.push_back(slots[idx].k);  // e.g. an expired connection id
          }
        }
        if (static_cast<std::size_t>(got) < inmsgs.size()) break;
      }
    }
  }
  const double secs = since(start);
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "{\"mode\":\"udp%s\",\"load_cpu\":%.2f,\"announces\":%llu,\"seconds\":%.3f,\"per_second\":%.0f,\"errors\":%llu,"
      "\"lost\":%llu,"
      "\"sent\":%llu,\"window\":%u,\"sources\":%u,\"torrents\":%u,\"peers\":%llu,\"numwant\":%u}\n",
      o.fill ? "-fill" : "", cpu / secs, static_cast<unsigned long long>(answered), secs,
      static_cast<double>(answered) / secs, static_cast<unsigned long long>(errors),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(sent), o.window, o.sources, o.torrents,
      static_cast<unsigned long long>(o.peers), o.numwant);
  return 0;
}

// --------------------------------------------------------------------------- HTTP

struct http_conn {
  int fd = -1;
  std::uint32_t lane = 0;
  std::uint64_t cursor = 0;
  enum class phase { connecting, writing, reading } ph = phase::connecting;
  std::string out;
  std::size_t out_off = 0;
  std::string in;
  bool requested = false;
};

int run_http(const options& o, const std::vector<sha1_digest>& hashes) {
  const sockaddr_in to = target_of(o);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<http_conn> conns(o.connections);
  std::uint64_t answered = 0, errors = 0, connects = 0, server_closes = 0, connect_errors = 0;

  auto open_conn = [&](std::uint32_t c) {
    http_conn& h = conns[c];
    for (;;) {
      h.fd = bound_socket(SOCK_STREAM, h.lane);
      const int one = 1;
      ::setsockopt(h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const int r = ::connect(h.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      if (r == 0 || errno == EINPROGRESS) break;
      ++connect_errors;  // e.g. EADDRNOTAVAIL when the lane's ports are all in TIME_WAIT
      ::close(h.fd);
      h.lane = (h.lane + 1) % o.sources;
    }
    ++connects;
    h.ph = http_conn::phase::connecting;
    h.in.clear();
    h.requested = false;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, h.fd, &ev);
  };
  auto close_conn = [&](std::uint32_t c) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, conns[c].fd, nullptr);
    ::close(conns[c].fd);
    conns[c].fd = -1;
  };
  auto next_request = [&](http_conn& h) {
    std::uint64_t k = lane_peer(o, h.lane, h.cursor++);
    if (k >= o.peers) {
      h.cursor = 0;
      k = lane_peer(o, h.lane, h.cursor++);
    }
    const std::string target = tracker::announce_url("/announce", request_for(o, k, tracker::event::none, hashes));
    h.out = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            (o.close ? std::string("Connection: close\r\n") : std::string()) + "\r\n";
    h.out_off = 0;
    h.requested = true;
    h.ph = http_conn::phase::writing;
  };
  // A complete response in h.in: returns its length, 0 if more is needed.
  auto complete = [&](const std::string& in, bool eof) -> std::size_t {
    const auto hdr_end = in.find("\r\n\r\n");
    if (hdr_end == std::string::npos) return 0;
    std::size_t len = std::string::npos;
    for (std::size_t pos = in.find("\r\n"); pos < hdr_end; pos = in.find("\r\n", pos + 2)) {
      if (strncasecmp(in.c_str() + pos + 2, "content-length:", 15) == 0) {
        len = std::strtoull(in.c_str() + pos + 17, nullptr, 10);
      }
    }
    if (len == std::string::npos) return eof ? in.size() : 0;
    return in.size() >= hdr_end + 4 + len ? hdr_end + 4 + len : 0;
  };

  for (std::uint32_t c = 0; c < o.connections; ++c) {
    conns[c].lane = c % o.sources;
    conns[c].cursor = c / o.sources * 7919;  // connections of one lane start apart
    open_conn(c);
  }
  const auto start = clock_type::now();
  const double cpu0 = cpu_seconds();
  std::vector<char> buf(65536);
  while (since(start) < o.seconds) {
    epoll_event evs[512];
    const int ne = ::epoll_wait(ep, evs, 512, 5);
    for (int e = 0; e < ne; ++e) {
      const std::uint32_t c = evs[e].data.u32;
      http_conn& h = conns[c];
      if (h.fd < 0) continue;
      if (h.ph == http_conn::phase::connecting) {
        int err = 0;
        socklen_t el = sizeof err;
        ::getsockopt(h.fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
          ++connect_errors;
          close_conn(c);
          open_conn(c);
          continue;
        }
        next_request(h);
      }
      if (h.ph == http_conn::phase::writing) {
        const ssize_t n = ::send(h.fd, h.out.data() + h.out_off, h.out.size() - h.out_off, MSG_NOSIGNAL);
        if (n > 0) h.out_off += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) {
          ++errors;
          close_conn(c);
          open_conn(c);
          continue;
        }
        if (h.out_off == h.out.size()) {
          h.ph = http_conn::phase::reading;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u32 = c;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, h.fd, &ev);
        }
        continue;
      }
      // reading
      bool eof = false;
      for (;;) {
        const ssize_t n = ::recv(h.fd, buf.data(), buf.size(), 0);
        if (n > 0) {
          h.in.append(buf.data(), static_cast<std::size_t>(n));
          continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
        break;
      }
      const std::size_t len = complete(h.in, eof);
      if (len) {
        const bool ok = h.in.compare(0, 12, "HTTP/1.1 200") == 0 || h.in.compare(0, 12, "HTTP/1.0 200") == 0;
        const bool failure = h.in.find("failure reason") != std::string::npos;
        (ok && !failure) ? ++answered : ++errors;
        h.in.erase(0, len);
        h.requested = false;
        if (!eof && !o.close) {
          next_request(h);
          epoll_event ev{};
          ev.events = EPOLLOUT | EPOLLIN;
          ev.data.u32 = c;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, h.fd, &ev);
          continue;
        }
        if (eof && !o.close) ++server_closes;  // a server without keep-alive
      }
      if (eof) {
        if (h.requested) ++errors;  // closed before answering
        close_conn(c);
        open_conn(c);
      }
    }
  }
  const double secs = since(start);
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "{\"mode\":\"http-%s\",\"load_cpu\":%.2f,\"announces\":%llu,\"seconds\":%.3f,\"per_second\":%.0f,\"errors\":%llu,"
      "\"connections\":%u,\"connects\":%llu,\"server_closes\":%llu,\"connect_errors\":%llu,\"torrents\":%u,"
      "\"peers\":%llu,\"numwant\":%u}\n",
      o.close ? "close" : "keepalive", cpu / secs, static_cast<unsigned long long>(answered), secs,
      static_cast<double>(answered) / secs, static_cast<unsigned long long>(errors), o.connections,
      static_cast<unsigned long long>(connects), static_cast<unsigned long long>(server_closes),
      static_cast<unsigned long long>(connect_errors), o.torrents, static_cast<unsigned long long>(o.peers), o.numwant);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::vector<sha1_digest> hashes;
  hashes.reserve(o.torrents);
  for (std::uint32_t t = 0; t < o.torrents; ++t)
    hashes.push_back(info_hash(t));
  if (o.mode == "hashes") {
    for (const auto& h : hashes)
      std::printf("%s\n", to_hex(as_view(h)).c_str());
    return 0;
  }
  if (o.port == 0) die("--port is required");
  if (o.mode == "udp") return run_udp(o, hashes);
  if (o.mode == "http") return run_http(o, hashes);
  die("unknown mode " + o.mode);
}
