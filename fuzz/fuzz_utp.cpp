// uTP (BEP 29): the packet codec and the connection state machine.
// Byte 0 picks a mode:
//  - even: the whole input is one datagram for the codec (a parsed packet re-encodes to
//    the same header, selective ACK and payload), then it and the rest of the input, cut
//    into datagrams, go to a connected state machine (as acceptor or initiator) with
//    writes, reads, ticks and time steps in between: it never crashes, keeps its buffers
//    within bounds, and everything it sends parses and fits in a datagram.
//  - odd: two connections exchange a byte stream over a link that the input controls
//    (drop, duplicate, reorder, delay): what arrives is a prefix of what was sent.
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "check.hpp"
#include "net/utp_connection.hpp"
#include "net/utp_packet.hpp"

using namespace shoal::net::utp;

namespace {

struct reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::span<const char> take(std::size_t k) {
    k = std::min(k, n);
    std::span<const char> s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
};

void check_sent(std::span<const char> d, const connection_config& cfg) {
  auto p = parse_packet(d);
  FUZZ_CHECK(p);
  FUZZ_CHECK(d.size() <= std::max<std::size_t>(cfg.max_datagram, header_size + 2 + max_sack_bytes));
  FUZZ_CHECK(p->payload.empty() || p->h.type == packet_type::data || p->h.type == packet_type::fin);
}

void codec_round_trip(std::span<const char> d) {
  auto p = parse_packet(d);
  if (!p) {
    FUZZ_CHECK(!p.err().detail.empty());
    return;
  }
  std::vector<char> out(header_size + 2 + p->sack.size() + p->payload.size());
  std::size_t n = write_header(out.data(), p->h, p->sack);
  if (!p->payload.empty()) std::memcpy(out.data() + n, p->payload.data(), p->payload.size());
  out.resize(n + p->payload.size());
  auto q = parse_packet(out);
  FUZZ_CHECK(q);
  FUZZ_CHECK(q->h.type == p->h.type && q->h.connection_id == p->h.connection_id &&
             q->h.timestamp_us == p->h.timestamp_us && q->h.timestamp_diff_us == p->h.timestamp_diff_us &&
             q->h.wnd_size == p->h.wnd_size && q->h.seq_nr == p->h.seq_nr && q->h.ack_nr == p->h.ack_nr);
  FUZZ_CHECK(std::equal(q->sack.begin(), q->sack.end(), p->sack.begin(), p->sack.end()));
  FUZZ_CHECK(std::equal(q->payload.begin(), q->payload.end(), p->payload.begin(), p->payload.end()));
  FUZZ_CHECK(looks_like_utp(d));
}

void single(reader in) {
  connection_config cfg;
  cfg.send_buffer = 64 * 1024;
  cfg.recv_buffer = 32 * 1024;
  cfg.max_datagram = 400 + in.byte();
  cfg.nagle = in.byte() & 1;
  connection c(cfg, [&](std::span<const char> d) { check_sent(d, cfg); });
  time_us now = 1'000'000;
  const bool acceptor = in.byte() & 1;
  const std::uint16_t seq0 = static_cast<std::uint16_t>(in.byte() << 8 | in.byte());
  if (acceptor) {
    header syn;
    syn.type = packet_type::syn;
    syn.connection_id = 10;
    syn.seq_nr = static_cast<std::uint16_t>(seq0 ^ 0x5555);
    syn.wnd_size = 1 << 20;
    char b[header_size];
    write_header(b, syn);
    c.accept(*parse_packet(std::span<const char>(b, header_size)), seq0, now);
  } else {
    c.connect(10, seq0, now);
  }
  std::string buf(4096, 'x');
  std::vector<char> rd(8192);
  while (in.n > 0) {
    const std::uint8_t op = in.byte();
    switch (op % 6) {
      case 0:
      case 1: {  // a datagram of up to 255 + 20 bytes
        auto d = in.take(in.byte() + header_size);
        if (auto p = parse_packet(d)) c.on_packet(*p, now);
        break;
      }
      case 2:
        c.write(std::span<const char>(buf.data(), std::min<std::size_t>(buf.size(), in.byte() * 16u)), now);
        break;
      case 3:
        c.read(rd, now);
        break;
      case 4:
        now += static_cast<time_us>(in.byte()) * 20'000;
        c.tick(now);
        break;
      case 5:
        if (op & 0x80) {
          c.close(now);
        } else {
          c.flush(now);
        }
        break;
    }
    FUZZ_CHECK(c.readable() <= cfg.recv_buffer);
    FUZZ_CHECK(c.send_space() <= cfg.send_buffer);
    (void)c.take_events();
  }
}

void pair(reader in) {
  connection_config cfg;
  cfg.send_buffer = 32 * 1024;
  cfg.recv_buffer = 16 * 1024;
  cfg.max_datagram = 300;
  struct pending {
    time_us due;
    std::vector<char> d;
  };
  std::deque<pending> to_a, to_b;
  time_us now = 1'000'000;
  auto link = [&](std::deque<pending>& q) {
    return [&](std::span<const char> d) {
      check_sent(d, cfg);
      q.push_back(pending{now + 1000, {d.begin(), d.end()}});
    };
  };
  connection a(cfg, link(to_b)), b(cfg, link(to_a));
  a.connect(100, static_cast<std::uint16_t>(in.byte() << 8 | in.byte()), now);
  std::string sent, got;
  std::vector<char> rd(4096);
  std::uint32_t counter = 0;
  auto deliver = [&](std::deque<pending>& q, connection& c, bool is_b) {
    while (!q.empty() && q.front().due <= now) {
      auto d = std::move(q.front().d);
      q.pop_front();
      auto p = parse_packet(d);
      FUZZ_CHECK(p);
      if (is_b && c.state() == conn_state::idle) {
        if (p->h.type == packet_type::syn) c.accept(*p, 0xFFF0, now);
      } else {
        c.on_packet(*p, now);
      }
    }
    c.flush(now);
  };
  for (int steps = 0; in.n > 0 && steps < 4000; ++steps) {
    const std::uint8_t op = in.byte();
    switch (op % 8) {
      case 0:  // drop the next packet each way
        if (!to_b.empty()) to_b.pop_front();
        break;
      case 1:
        if (!to_a.empty()) to_a.pop_front();
        break;
      case 2:  // duplicate
        if (!to_b.empty()) to_b.push_back(to_b.front());
        break;
      case 3:  // reorder
        if (to_b.size() > 1) std::swap(to_b[0], to_b[1]);
        if (to_a.size() > 1) std::swap(to_a[0], to_a[1]);
        break;
      case 4: {  // write
        std::string chunk(static_cast<std::size_t>(in.byte()) * 8, '\0');
        for (auto& ch : chunk)
          ch = static_cast<char>(counter++ * 2654435761u >> 24);
        const std::size_t n = a.write(chunk, now);
        sent.append(chunk, 0, n);
        counter -= static_cast<std::uint32_t>(chunk.size() - n);
        break;
      }
      case 5:
        while (std::size_t n = b.read(rd, now))
          got.append(rd.data(), n);
        break;
      default:
        now += 1000 + static_cast<time_us>(op) * 500;
        deliver(to_b, b, true);
        deliver(to_a, a, false);
        a.tick(now);
        b.tick(now);
        break;
    }
    FUZZ_CHECK(got.size() <= sent.size());
    FUZZ_CHECK(got.empty() || std::memcmp(got.data(), sent.data(), got.size()) == 0);
    FUZZ_CHECK(b.readable() <= cfg.recv_buffer);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  reader in{data + 1, size - 1};
  if (data[0] & 1) {
    pair(in);
  } else {
    codec_round_trip(std::span<const char>(reinterpret_cast<const char*>(data + 1), size - 1));
    single(in);
  }
  return 0;
}
