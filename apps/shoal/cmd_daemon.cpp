// `shoal daemon`: the long-running client. Settings come from the defaults, then
// STATE/settings.json (or --config), then the flags given; it runs in the foreground until
// SIGINT or SIGTERM (graceful: announces stopped, saves resume data) and rereads its
// settings file on SIGHUP.
#include <fmt/core.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "commands.hpp"
#include "console.hpp"
#include "daemon/daemon.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the
// socket NOTIFY_SOCKET names ('@' for the abstract namespace). Nothing when unset.
void sd_notify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t n = std::strlen(path);
  if (n >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, n);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
  ::close(fd);
}

fs::path home() {
  const char* h = std::getenv("HOME");
  return h && *h ? fs::path(h) : fs::current_path();
}

fs::path default_state_dir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return fs::path(x) / "shoal";
  return home() / ".local" / "state" / "shoal";
}

struct daemon_args {
  std::string config, state_dir, download_dir, rpc_bind;
  int rpc_port = -1, port = -1;
  bool local = false, no_dht = false, no_lsd = false, set_password = false, verbose = false;
  std::vector<std::string> dht_bootstrap;
  std::string rpc_username;
  std::vector<std::string> allowed_dirs;
};

int run_daemon(const daemon_args& a) {
  daemon::daemon_config defaults;
  defaults.state_dir = a.state_dir.empty() ? default_state_dir() : fs::absolute(a.state_dir);
  defaults.download_dir = home() / "Downloads";
  defaults.config_file = a.config.empty() ? defaults.state_dir / "settings.json" : fs::absolute(a.config);
  auto loaded = daemon::load_config(defaults.config_file, defaults);
  if (!loaded) return fail(loaded.err().detail);
  auto cfg = std::move(*loaded);
  cfg.state_dir = defaults.state_dir;
  cfg.config_file = defaults.config_file;
  if (!a.download_dir.empty()) cfg.download_dir = fs::absolute(a.download_dir);
  if (!a.rpc_bind.empty()) cfg.rpc_bind = a.rpc_bind;
  if (a.rpc_port >= 0) cfg.rpc_port = static_cast<std::uint16_t>(a.rpc_port);
  if (a.port >= 0) cfg.peer_port = static_cast<std::uint16_t>(a.port);
  if (!a.rpc_username.empty()) cfg.rpc_username = a.rpc_username;
  for (const auto& d : a.allowed_dirs)
    cfg.allowed_dirs.push_back(fs::absolute(d));
  cfg.local = a.local || env_local();
  cfg.verbose = a.verbose;
  if (a.no_dht) cfg.dht = false;
  if (a.no_lsd) cfg.lsd = false;
  if (!a.dht_bootstrap.empty()) cfg.dht_bootstrap = a.dht_bootstrap;

  if (a.set_password) {
    // One line from stdin (never a flag: it would show in ps and the shell's history).
    if (isatty(STDIN_FILENO)) fmt::print(stderr, "New RPC password: ");
    std::string pw;
    std::getline(std::cin, pw);
    if (pw.empty()) return fail("an empty password: nothing changed");
    if (cfg.rpc_username.empty()) cfg.rpc_username = "shoal";
    cfg.rpc_password_hash = daemon::hash_password(pw);
    std::error_code ec;
    fs::create_directories(cfg.config_file.parent_path(), ec);
    if (auto sec = daemon::save_config(cfg.config_file, cfg))
      return fail(cfg.config_file.string() + ": " + sec.message());
    fmt::print("password set for user '{}' in {}\n", cfg.rpc_username, cfg.config_file.string());
    return exit_ok;
  }

  boost::system::error_code bec;
  auto bind = asio::ip::make_address(cfg.rpc_bind, bec);
  if (bec) return usage_error("daemon", "--rpc-bind '" + cfg.rpc_bind + "' is not an IP address");
  if (!bind.is_loopback() && cfg.rpc_password_hash.empty()) {
    warn("listening on " + cfg.rpc_bind +
         " without a password: only this machine's clients are served (set one with --set-password)");
  } else if (!bind.is_loopback() && !cfg.rpc_tls_enabled) {
    warn(
        "rpc-tls-enabled is false: remote clients are served over plain HTTP and the password crosses the network "
        "in clear (fine behind a TLS proxy, nowhere else)");
  }

  asio::io_context io;
  daemon::daemon d(io, cfg);
  auto started = d.start();
  if (!started) return fail(started.err().detail);
  const auto shown = bind.is_unspecified() ? std::string("127.0.0.1")
                     : bind.is_v6()        ? "[" + bind.to_string() + "]"
                                           : bind.to_string();
  fmt::print("shoal daemon: web UI and RPC on http://{}:{}/ (peers on port {}, state in {})\n", shown, d.rpc_port(),
             d.ses().port(), cfg.state_dir.string());
  std::fflush(stdout);
  sd_notify("READY=1\nSTATUS=RPC on port " + std::to_string(d.rpc_port()) + "\nMAINPID=" + std::to_string(getpid()));

  asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  asio::signal_set hup(io, SIGHUP);
  bool stopping = false;
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    stop_signals.cancel();
    hup.cancel();
    io.stop();
  };
  d.on_close = stop;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      sd_notify("RELOADING=1");
      auto again = daemon::load_config(cfg.config_file, d.config());
      if (!again) {
        warn("SIGHUP: " + again.err().detail + " (settings unchanged)");
      } else {
        d.set_config(*again);
        fmt::print("shoal daemon: settings reloaded from {}\n", cfg.config_file.string());
        std::fflush(stdout);
      }
      sd_notify("READY=1");
      wait_hup();
    });
  };
  wait_hup();
  io.run();
  sd_notify("STOPPING=1");
  fmt::print("shoal daemon: stopping (saving resume data)\n");
  std::fflush(stdout);
  d.shutdown();
  return exit_ok;
}

}  // namespace

runner add_daemon(CLI::App& app) {
  auto a = std::make_shared<daemon_args>();
  app.add_option("--config", a->config, "Settings file (default: STATE/settings.json)");
  app.add_option("--state-dir", a->state_dir, "Settings, torrents and resume data (default: $XDG_STATE_HOME/shoal)");
  app.add_option("--download-dir,-d", a->download_dir, "Where added torrents are saved (default: ~/Downloads)");
  app.add_option("--rpc-port", a->rpc_port, "Port of the web UI and RPC (default 9091)")
      ->check(CLI::Range(0, 65535))
      ->default_str("");
  app.add_option("--rpc-bind", a->rpc_bind, "Address of the web UI and RPC (default 127.0.0.1)");
  app.add_option("--port,-p", a->port, "Peer port, TCP and UDP (default 51413; 0: any)")
      ->check(CLI::Range(0, 65535))
      ->default_str("");
  app.add_option("--allowed-dir", a->allowed_dirs, "Another folder torrents may be saved in (repeatable)");
  app.add_option("--rpc-username", a->rpc_username, "User name for remote access (with --set-password)");
  app.add_flag("--set-password", a->set_password, "Read a new RPC password from stdin, save its hash, and exit");
  app.add_flag("--local", a->local, "Keep all traffic on loopback and the given addresses (also SHOAL_LOCAL=1)");
  app.add_flag("--verbose,-v", a->verbose, "Log peers, trackers and checks on stderr, each line naming its torrent");
  app.add_flag("--no-dht", a->no_dht, "Do not use the DHT");
  app.add_flag("--no-lsd", a->no_lsd, "Do not look for peers on the local network");
  app.add_option("--dht-bootstrap", a->dht_bootstrap, "DHT node to start from, HOST:PORT (repeatable)");
  return [a] { return run_daemon(*a); };
}

}  // namespace shoal::cli
