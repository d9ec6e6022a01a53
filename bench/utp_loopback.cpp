// uTP against TCP on loopback: one sender and one receiver, each on its own io_context and
// thread, move SIZE MiB through net::stream (tcp_stream, then utp_stream); prints MB/s.
//   utp_loopback [MiB=256] [runs=1]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "net/stream.hpp"
#include "net/utp.hpp"

using namespace shoal;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

namespace {

constexpr std::size_t chunk = 64 * 1024;

asio::awaitable<void> send_bytes(net::stream& s, std::size_t total) {
  std::vector<char> buf(chunk, 'x');
  for (std::size_t sent = 0; sent < total;) {
    const std::size_t n = std::min(chunk, total - sent);
    buf[0] = static_cast<char>(sent);
    auto [ec, w] = co_await s.write(asio::buffer(buf.data(), n));
    if (ec) {
      std::fprintf(stderr, "write: %s\n", ec.message().c_str());
      co_return;
    }
    sent += w;
  }
}

asio::awaitable<std::size_t> recv_bytes(net::stream& s, std::size_t total) {
  std::vector<char> buf(chunk);
  std::size_t got = 0;
  while (got < total) {
    auto [ec, n] = co_await s.read_some(asio::buffer(buf));
    got += n;
    if (ec) break;
  }
  co_return got;
}

double run_tcp(std::size_t total) {
  asio::io_context rio, sio;
  tcp::acceptor acc(rio, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  std::chrono::steady_clock::time_point start, end;
  std::size_t got = 0;
  asio::co_spawn(
      rio,
      [&]() -> asio::awaitable<void> {
        auto sock = co_await acc.async_accept(asio::use_awaitable);
        net::tcp_stream s(std::move(sock));
        got = co_await recv_bytes(s, total);
        end = std::chrono::steady_clock::now();
      },
      asio::detached);
  std::thread rt([&] { rio.run(); });
  asio::co_spawn(
      sio,
      [&]() -> asio::awaitable<void> {
        tcp::socket sock(sio);
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
        net::tcp_stream s(std::move(sock));
        start = std::chrono::steady_clock::now();
        co_await send_bytes(s, total);
      },
      asio::detached);
  sio.run();
  rt.join();
  if (got != total) std::fprintf(stderr, "tcp: got %zu of %zu\n", got, total);
  return static_cast<double>(total) / 1e6 / std::chrono::duration<double>(end - start).count();
}

struct utp_stats_out {
  net::utp::connection_stats sender;
  std::size_t cwnd = 0;
};

double run_utp(std::size_t total, utp_stats_out* out) {
  asio::io_context rio, sio;
  net::utp_socket_manager rm(rio), sm(sio);
  const auto lo = asio::ip::make_address("127.0.0.1");
  if (rm.listen(udp::endpoint(lo, 0)) || sm.listen(udp::endpoint(lo, 0))) {
    std::fprintf(stderr, "utp: cannot bind\n");
    std::exit(1);
  }
  const auto port = rm.local_endpoint().port();
  std::chrono::steady_clock::time_point start, end;
  std::size_t got = 0;
  std::unique_ptr<net::stream> accepted;
  rm.set_accept_handler([&](std::unique_ptr<net::stream> s) {
    accepted = std::move(s);
    asio::co_spawn(
        rio,
        [&]() -> asio::awaitable<void> {
          got = co_await recv_bytes(*accepted, total);
          end = std::chrono::steady_clock::now();
          rm.close();
        },
        asio::detached);
  });
  std::atomic<bool> done{false};
  std::thread rt([&] { rio.run(); });
  std::unique_ptr<net::stream> s;
  asio::co_spawn(
      sio,
      [&]() -> asio::awaitable<void> {
        auto [ec, st] = co_await sm.connect(net::endpoint(lo, port), std::chrono::seconds(5));
        if (ec) {
          std::fprintf(stderr, "utp connect: %s\n", ec.message().c_str());
          co_return;
        }
        s = std::move(st);
        start = std::chrono::steady_clock::now();
        co_await send_bytes(*s, total);
        // Wait for the receiver (it closes its manager when it has everything).
        while (!done) {
          asio::steady_timer t(sio, std::chrono::milliseconds(5));
          co_await t.async_wait(asio::use_awaitable);
        }
        if (out) {
          auto& us = static_cast<net::utp_stream&>(*s);
          out->sender = us.connection().stats();
          out->cwnd = us.connection().cwnd();
        }
        sm.close();
      },
      asio::detached);
  std::thread st([&] { sio.run(); });
  rt.join();
  done = true;
  st.join();
  if (got != total) std::fprintf(stderr, "utp: got %zu of %zu\n", got, total);
  return static_cast<double>(total) / 1e6 / std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 1;
  const std::size_t total = mib << 20;
  for (int r = 0; r < runs; ++r) {
    const double t = run_tcp(total);
    utp_stats_out so;
    const double u = run_utp(total, &so);
    std::printf(
        "%zu MiB on loopback: tcp %.1f MB/s, utp %.1f MB/s (%.0f%% of tcp; utp sender: %llu packets, %llu "
        "retransmits, %llu timeouts, cwnd %zu)\n",
        mib, t, u, 100 * u / t, static_cast<unsigned long long>(so.sender.packets_sent),
        static_cast<unsigned long long>(so.sender.retransmits), static_cast<unsigned long long>(so.sender.timeouts),
        so.cwnd);
  }
}
