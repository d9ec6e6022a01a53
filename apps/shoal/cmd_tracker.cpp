// `shoal tracker`: an HTTP and UDP BitTorrent tracker on one port, until stopped.
#include <fmt/core.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "console.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "tracker/server.hpp"
#include "tracker/server_codec.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;

struct tracker_args {
  int port = 6969;
  std::string bind;
  std::uint32_t interval = 1800;
  std::uint32_t peer_timeout = 0;
  std::uint32_t max_numwant = 200;
  std::string whitelist;
  std::size_t max_torrents = 1'000'000;
  std::size_t max_swarm_peers = 100'000;
  std::size_t max_total_peers = 20'000'000;
  std::size_t max_connections = 2048;
  std::uint32_t idle_timeout = 15;
  bool json = false;
  bool local = false;
};

int run_tracker(const tracker_args& a) {
  // Peers re-announce every --interval seconds: one dropped sooner would vanish between announces.
  if (a.peer_timeout != 0 && a.peer_timeout <= a.interval) {
    return usage_error("tracker", fmt::format("--peer-timeout {} must be longer than --interval {}: peers announce "
                                              "only every --interval seconds",
                                              a.peer_timeout, a.interval));
  }
  tracker::server_options o;
  o.port = static_cast<std::uint16_t>(a.port);
  o.bind = a.bind;
  // --local: loopback only, unless an address was given.
  if (o.bind.empty() && (a.local || env_local())) o.bind = "127.0.0.1";
  o.max_connections = a.max_connections;
  o.idle_timeout = std::chrono::seconds(a.idle_timeout);
  o.service.interval = a.interval;
  o.service.peer_timeout = a.peer_timeout;
  o.service.max_numwant = a.max_numwant;
  o.service.default_numwant = std::min<std::uint32_t>(50, a.max_numwant);
  o.service.limits.max_torrents = a.max_torrents;
  o.service.limits.max_peers_per_torrent = a.max_swarm_peers;
  o.service.limits.max_peers = a.max_total_peers;
  if (!a.whitelist.empty()) {
    errno = 0;
    std::ifstream f(a.whitelist, std::ios::binary);
    if (!f) return fail_errno(a.whitelist + ": cannot read the whitelist", errno ? errno : EIO);
    std::ostringstream text;
    text << f.rdbuf();
    auto list = tracker::parse_whitelist(text.str());
    if (!list) return fail(a.whitelist + ": " + list.err().message());
    o.service.whitelist = std::move(list).value();
  }

  asio::io_context io;
  tracker::server srv(io, o);
  auto port = srv.listen();
  if (!port) return fail(port.err().message() + " (choose another with --port, or --port 0 for any)");
  srv.start();
  if (a.json) {
    boost::json::object j;
    j["event"] = "listening";
    j["address"] = srv.address();
    j["port"] = *port;
    j["http_port"] = *port;
    j["udp_port"] = *port;
    j["interval"] = a.interval;
    j["peer_timeout"] = srv.svc().peer_timeout();
    j["whitelist"] = srv.svc().whitelist_size();
    fmt::print("{}\n", plain_json(j));
    std::fflush(stdout);
  } else {
    const std::string addr = srv.address();
    const std::string host = addr.find(':') != std::string::npos ? "[" + addr + "]" : addr;
    fmt::print(stderr,
               "shoal tracker: listening on {} port {}: http://{}:{}/announce, udp://{}:{}/announce, /stats{}\n", addr,
               *port, host, *port, host, *port,
               o.service.whitelist ? fmt::format(" ({} whitelisted torrents)", srv.svc().whitelist_size()) : "");
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    srv.stop();
  });
  io.run();
  if (!a.json) {
    const auto& s = srv.svc().stats();
    fmt::print(stderr, "shoal tracker: stopped after {} HTTP and {} UDP announces, {} peers in {} torrents\n",
               s.announces_http, s.announces_udp, srv.svc().store().peers(), srv.svc().store().torrents());
  }
  return exit_ok;
}

}  // namespace

runner add_tracker(CLI::App& app) {
  auto a = std::make_shared<tracker_args>();
  app.add_option("--port", a->port, "TCP and UDP port (default 6969; 0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--bind", a->bind, "Address to listen on (default: every address, IPv6 and IPv4)");
  app.add_option("--interval", a->interval, "Seconds between a peer's announces (default 1800)")
      ->check(CLI::Range(1u, 10800u));
  app.add_option(
         "--peer-timeout", a->peer_timeout,
         "Drop a peer after this many seconds without an announce; longer than --interval (default: 2 x interval)")
      ->check(CLI::Range(1u, tracker::max_peer_timeout))
      ->default_str("");
  app.add_option("--max-peers", a->max_numwant, "Most peers in one reply, whatever numwant asks (default 200)")
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--whitelist", a->whitelist, "Track only the info-hashes in FILE (40 hex digits a line)");
  app.add_option("--max-torrents", a->max_torrents, "Most torrents tracked at once (default 1000000)")
      ->check(positive());
  app.add_option("--max-swarm-peers", a->max_swarm_peers, "Most peers kept per torrent (default 100000)")
      ->check(positive());
  app.add_option("--max-total-peers", a->max_total_peers, "Most peers kept in all (default 20000000)")
      ->check(positive());
  app.add_option("--max-connections", a->max_connections, "Most HTTP connections open at once (default 2048)")
      ->check(positive());
  app.add_option("--idle-timeout", a->idle_timeout,
                 "Close an HTTP connection after this many seconds without a complete request (default 15)")
      ->check(CLI::Range(1u, 3600u));
  app.add_flag("--local", a->local, "Listen on 127.0.0.1 unless --bind says otherwise (also SHOAL_LOCAL=1)");
  app.add_flag("--json", a->json, "Print one JSON line with the address and ports once listening");
  return [a] { return run_tracker(*a); };
}

}  // namespace shoal::cli
