// `shoal sync run DIR`: runs a synced folder in the foreground on a session of its own:
// sync connections arrive on the session's port (sorted from BitTorrent by their first
// bytes) and --peer addresses are dialled. Prints "listening on PORT", then a line per
// change taken from a peer, conflict or refusal, until SIGINT or SIGTERM.
#include "cmd_sync_run.hpp"

#include <fmt/core.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "console.hpp"
#include "session/session.hpp"
#include "sync/discovery.hpp"
#include "sync/engine.hpp"
#include "sync/folder.hpp"
#include "sync/hub.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct run_args {
  std::string dir;
  int port = 0;
  std::vector<std::string> peers;
  std::vector<std::string> dht_bootstrap;
  std::vector<std::string> trackers;
  bool local = false;
  bool json = false;
  bool verbose = false;
};

result<tcp::endpoint> resolve(tcp::resolver& resolver, const std::string& p) {
  const auto colon = p.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return error{errc::invalid_argument, "peer '" + p + "': expected HOST:PORT"};
  std::string host = p.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, p.substr(colon + 1), ec);
  if (ec || results.empty())
    return error{errc::invalid_argument, "peer '" + p + "': " + (ec ? ec.message() : "no address")};
  return results.begin()->endpoint();
}

void print_event(const sync::engine_event& e, bool json) {
  if (json) {
    boost::json::object o;
    o["event"] = e.kind;
    if (!e.path.empty()) o["path"] = printable(e.path);
    if (!e.device.empty()) o["device"] = e.device;
    if (!e.detail.empty()) o["detail"] = printable(e.detail);
    fmt::print("{}\n", boost::json::serialize(o));
  } else if (e.kind == "sync" || e.kind == "delete") {
    fmt::print("{}: {} from {}\n", e.kind, printable(e.path), e.device);
  } else if (e.kind == "conflict") {
    fmt::print("conflict: {}: the version by {} is kept as {}\n", printable(e.path), e.device, printable(e.detail));
  } else if (e.kind == "refused" || e.kind == "rejected") {
    fmt::print("{}: {} from {}: {}\n", e.kind, printable(e.path), e.device, printable(e.detail));
  } else if (e.kind == "peer") {
    fmt::print("peer: {} connected ({})\n", e.device, e.detail);
  } else if (e.kind == "peer-lost") {
    fmt::print("peer: {} gone{}{}\n", e.device, e.detail.empty() ? "" : ": ", printable(e.detail));
  } else {
    fmt::print("{}: {}\n", e.kind, printable(e.detail));
  }
  std::fflush(stdout);
}

int run(const run_args& a) {
  auto f = sync::folder::open(a.dir);
  if (!f) return fail(f.err().message());

  session_settings st;
  st.listen_port = static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  st.lsd = false;
  // The DHT: on unless --local; with --local only through the --dht-bootstrap nodes given.
  st.dht = !st.local || !a.dht_bootstrap.empty();
  st.dht_bootstrap = a.dht_bootstrap;
  st.dht_state_file = f->paths().state / "dht.dat";
  st.port_mapping = false;
  st.transport = peer_transport::tcp;
  if (a.verbose) st.log = [](const std::string& line) { fmt::print(stderr, "{}\n", printable(line)); };

  asio::io_context io;
  tcp::resolver resolver(io);
  sync::engine_options opt;
  for (const auto& p : a.peers) {
    auto ep = resolve(resolver, p);
    if (!ep) return usage_error("sync run", "--" + ep.err().message());
    opt.peers.push_back(*ep);
  }
  opt.on_event = [json = a.json](const sync::engine_event& e) { print_event(e, json); };
  opt.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };

  session ses(io, st);
  ses.on_warning = [](const std::string& w) { warn(w); };
  if (auto ec = ses.listen()) {
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any)");
  }
  sync::hub hub(ses);
  if (auto s = hub.start(); !s) return fail(s.err().message());
  opt.via = &hub;
  sync::engine eng(ses, *f, std::move(opt));
  if (auto s = eng.start(); !s) return fail(s.err().message());
  // LAN and DHT discovery, unless only the hosts given are wanted (the DHT then only
  // through the --dht-bootstrap nodes given).
  sync::discovery_options dopt;
  dopt.local = st.local;
  dopt.trackers = a.trackers;
  dopt.on_found = [](const net::endpoint& ep, const std::string& device, const char* how) {
    if (device.empty()) return;
    boost::system::error_code ec;
    fmt::print(stderr, "shoal: found {} at {}:{} on the {}\n", device, ep.address().to_string(ec), ep.port(), how);
  };
  dopt.warn = [](const std::string& w) { warn(w); };
  sync::discovery disc(ses, *f, eng, std::move(dopt));
  disc.start();
  if (a.json) {
    boost::json::object o;
    o["event"] = "listening";
    o["port"] = ses.port();
    o["device"] = f->device().id();
    fmt::print("{}\n", boost::json::serialize(o));
  } else {
    fmt::print("listening on {}\n", ses.port());
  }
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    disc.stop();
    eng.stop();
    ses.stop([&io] { io.stop(); });
  });
  io.run();
  return exit_ok;
}

}  // namespace

sync_run_command add_sync_run(CLI::App& sync) {
  auto a = std::make_shared<run_args>();
  auto* app = sync.add_subcommand("run", "Keep DIR in sync with its peers, in the foreground, until SIGINT or SIGTERM");
  app->add_option("DIR", a->dir, "The folder (made by sync init or sync join)")->required();
  app->add_option("--port", a->port, "Port for incoming connections (0: any free port, printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app->add_option("--peer", a->peers,
                  "Dial this device (HOST:PORT); redialled while the connection is down; repeatable");
  app->add_flag("--local", a->local,
                "Only the hosts given: no LAN discovery, no DHT but through --dht-bootstrap (also SHOAL_LOCAL=1)");
  app->add_option("--dht-bootstrap", a->dht_bootstrap, "DHT node to start from, HOST:PORT (repeatable)");
  app->add_option("--tracker", a->trackers,
                  "Announce the folder's DHT id to this tracker (http://, https:// or udp:// URL) and dial the "
                  "devices it lists (repeatable, at most 16)")
      ->check([](const std::string& u) {
        return u.starts_with("http://") || u.starts_with("https://") || u.starts_with("udp://")
                   ? std::string()
                   : "a tracker is an http://, https:// or udp:// URL";
      });
  app->add_flag("--json", a->json, "Print JSON lines ({\"event\": ...}) instead of text");
  app->add_flag("-v,--verbose", a->verbose, "Log the session's diagnostics to stderr");
  app->footer(
      "Prints 'listening on PORT', then a line per change taken from a peer ('sync: PATH from DEVICE'), "
      "conflict (both versions are kept: the older change as NAME.sync-conflict-DATE-TIME-DEVICE.EXT) and "
      "refusal. Deleted and replaced files go to DIR/.shoal/archive/. Peers prove they hold the folder's key "
      "without sending it; traffic is encrypted. Devices of the same folder on the LAN are found by UDP multicast "
      "(239.192.76.79:21131: a hash of the share id, never a key, the port and the device id) and through the "
      "mainline DHT (announced and looked up under a 20-byte id derived from the share id, every 5 minutes) "
      "unless --local, and through each --tracker (the same id announced as an info-hash, at the tracker's "
      "interval; with --local only trackers at loopback or private addresses).");
  return {app, [a]() { return run(*a); }};
}

}  // namespace shoal::cli
