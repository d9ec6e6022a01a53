// `shoal download` and `shoal seed`: one torrent in a session, with a progress line. A thin
// client of the library: flags become settings and an add, then it waits on events.
#include <fmt/core.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "dht/node.hpp"
#include "lsd/lsd.hpp"
#include "net/port_mapping.hpp"
#include "net/proxy_codec.hpp"
#include "session/session.hpp"
#include "source.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;

// Exit code for a download stopped (Ctrl-C) before it completed.
constexpr int exit_interrupted = 3;
// Exit code when --stop-timeout passes with no data arriving.
constexpr int exit_stalled = 4;

struct transfer_args {
  bool seed_mode = false;
  std::string target;
  std::string dir = ".";
  int port = 6881;
  std::vector<std::string> peers;
  std::vector<std::string> web_seeds;  // --web-seed, besides the torrent's url-list
  bool no_web_seeds = false;
  double seed_ratio = 1.0;
  long seed_time = -1;  // seconds; -1: use the ratio
  std::string select;
  bool sequential = false;
  bool no_dht = false;
  bool no_lsd = false;
  std::vector<std::string> dht_bootstrap;
  std::string dht_state;  // empty: DIR/.shoal/dht.state
  bool json_progress = false;
  bool local = false;
  bool check = false;
  bool verbose = false;
  bool skip_check = false;
  std::string max_down, max_up;
  std::uint32_t max_peers = 80;
  std::string encryption = "preferred";
  std::string bind;                // listen on and connect from this address
  std::string transport = "both";  // tcp, utp or both
  long stop_timeout = 0;           // seconds without download progress before giving up; 0: never
  std::string proxy_url;           // --proxy; parsed into `proxy` before anything connects
  net::proxy_settings proxy;
  bool no_port_mapping = false;
  std::string upnp_url;         // skips SSDP discovery (and allowed under --local)
  std::string natpmp_gateway;   // instead of the default gateway (and allowed under --local)
  long port_mapping_lease = 0;  // seconds; 0: the default (hidden, for tests)
};

boost::json::object mapping_json(const net::mapping_protocol_status& s) {
  boost::json::object o;
  o["enabled"] = s.enabled;
  o["mapped"] = s.mapped;
  o["external_address"] = s.external_address;
  o["tcp_port"] = s.external_tcp;
  o["udp_port"] = s.external_udp;
  o["lease"] = s.lease_seconds;
  o["refreshes"] = s.refreshes;
  o["error"] = s.last_error;
  return o;
}

boost::json::object mapping_json(const net::port_mapping_status& s) {
  boost::json::object o;
  o["protocols"] = s.protocols();
  o["external_address"] = s.external_address();
  o["upnp"] = mapping_json(s.upnp);
  o["natpmp"] = mapping_json(s.natpmp);
  return o;
}

// "1,3-5" (1-based, like aria2) -> per-file priorities.
std::optional<std::vector<std::uint8_t>> parse_select(const std::string& s, std::size_t nfiles, std::string& err) {
  std::vector<std::uint8_t> prio(nfiles, 0);
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? s.size() + 1 : comma + 1;
    if (item.empty()) continue;
    auto dash = item.find('-');
    unsigned long a = 0, b = 0;
    try {
      std::size_t used = 0;
      a = std::stoul(item.substr(0, dash), &used);
      if (used != item.substr(0, dash).size()) throw std::invalid_argument("x");
      b = a;
      if (dash != std::string::npos) {
        b = std::stoul(item.substr(dash + 1), &used);
        if (used != item.substr(dash + 1).size()) throw std::invalid_argument("x");
      }
    } catch (const std::exception&) {
      err = "--select-file '" + s + "': expected indices like 1,3-5";
      return std::nullopt;
    }
    if (a < 1 || b < a || b > nfiles) {
      err = "--select-file '" + s + "': file indices run from 1 to " + std::to_string(nfiles);
      return std::nullopt;
    }
    for (unsigned long i = a; i <= b; ++i)
      prio[i - 1] = 1;
  }
  return prio;
}

std::string format_eta(double secs) {
  if (!std::isfinite(secs) || secs < 0 || secs > 360000) return "--:--";
  const auto s = static_cast<long>(secs);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

// "host:port" or "[v6]:port" -> an endpoint.
result<tcp::endpoint> resolve_peer(tcp::resolver& resolver, const std::string& p) {
  auto colon = p.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return error{errc::invalid_argument, "peer '" + p + "': expected HOST:PORT", no_offset};
  }
  std::string host = p.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, p.substr(colon + 1), ec);
  if (ec || results.empty()) {
    return error{errc::invalid_argument, "peer '" + p + "': " + (ec ? ec.message() : "no address"), no_offset};
  }
  return results.begin()->endpoint();
}

// The progress line, plain lines and JSON lines: what the user sees while the session runs.
struct progress_printer {
  const transfer_args& a;
  bool tty;
  int ticks = 0;
  std::string last_tracker;

  void print(const torrent_status& s, const net::port_mapper* mapper) {
    ++ticks;
    const double frac = s.total_wanted ? static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 1.0;
    const double eta = s.download_rate > 0 ? static_cast<double>(s.total_wanted - s.have_wanted) / s.download_rate : -1;
    if (a.json_progress) {
      if (ticks % 2 == 0) {
        boost::json::object o;
        o["state"] = std::string(state_name(s.state));
        o["progress"] = frac;
        o["pieces"] = s.pieces_have;
        o["have_bytes"] = s.have_wanted;
        o["total_bytes"] = s.total_wanted;
        o["download_rate"] = s.download_rate;
        o["upload_rate"] = s.upload_rate;
        o["peers"] = s.peers;
        o["seeds"] = s.seeds;
        o["web_seeds"] = s.web_seeds;
        o["downloaded"] = s.downloaded;
        o["web_seed_downloaded"] = s.web_seed_downloaded;
        o["uploaded"] = s.uploaded;
        o["hash_failures"] = s.hash_failures;
        if (mapper) o["port_mapping"] = mapping_json(mapper->status());
        fmt::print("{}\n", boost::json::serialize(o));
        std::fflush(stdout);
      }
    } else if (tty) {
      const int width = 24;
      const int filled = static_cast<int>(frac * width);
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.append(static_cast<std::size_t>(width - filled), '.');
      std::string head = s.state == torrent_state::checking
                             ? fmt::format("checking {:5.1f}%", s.check_progress * 100)
                             : fmt::format("{} [{}] {:5.1f}%", state_name(s.state), bar, frac * 100);
      fmt::print(stderr, "\r{}  {} / {}  down {}/s  up {}/s  peers {}  ETA {}   ", head, human_size(s.have_wanted),
                 human_size(s.total_wanted), human_size(static_cast<std::uint64_t>(s.download_rate)),
                 human_size(static_cast<std::uint64_t>(s.upload_rate)), s.peers, format_eta(eta));
      std::fflush(stderr);
    } else if (ticks % 10 == 0) {
      fmt::print(stderr, "{} {:.1f}% {} / {} down {}/s up {}/s peers {}\n", state_name(s.state), frac * 100,
                 human_size(s.have_wanted), human_size(s.total_wanted),
                 human_size(static_cast<std::uint64_t>(s.download_rate)),
                 human_size(static_cast<std::uint64_t>(s.upload_rate)), s.peers);
    }
    // Tracker news goes to stderr once per change (errors matter to a user waiting for peers).
    if (s.tracker_message != last_tracker) {
      last_tracker = s.tracker_message;
      if (!last_tracker.empty() && !a.json_progress) {
        if (tty) fmt::print(stderr, "\n");
        fmt::print(stderr, "tracker: {}\n", printable(last_tracker));
      }
    }
  }
};

// File priorities for --select-file ("1,3-5", numbers as `shoal info` shows them: pad files
// are not numbered) or a magnet link's `so` (0-based, same numbering); empty: every file.
result<std::vector<std::uint8_t>> priorities_for(const metainfo& mi, const std::string& select,
                                                 const std::vector<std::pair<std::uint32_t, std::uint32_t>>& so) {
  std::vector<std::size_t> real;
  for (std::size_t i = 0; i < mi.files.size(); ++i) {
    if (!mi.files[i].pad) real.push_back(i);
  }
  std::vector<std::uint8_t> prio;
  if (!select.empty()) {
    std::string err;
    auto sel = parse_select(select, real.size(), err);
    if (!sel) return error{errc::invalid_argument, err, no_offset};
    prio.assign(mi.files.size(), 0);
    for (std::size_t i = 0; i < real.size(); ++i)
      prio[real[i]] = (*sel)[i];
  } else if (!so.empty()) {
    prio.assign(mi.files.size(), 0);
    for (auto [lo, hi] : so) {
      for (std::uint64_t i = lo; i <= hi && i < real.size(); ++i)
        prio[real[i]] = 1;
    }
  }
  return prio;
}

// `seed` never downloads, so the data must be in DIR: none of the torrent's files there is
// an error; with --skip-check (nothing is hashed) every file must be there at its size.
std::optional<std::string> seed_data_problem(const metainfo& mi, const std::string& dir, bool skip_check) {
  std::size_t present = 0, files = 0;
  std::optional<std::string> first_wrong;
  for (const auto& f : mi.files) {
    if (f.pad || f.symlink) continue;
    ++files;
    std::error_code ec;
    const auto size = fs::file_size(fs::path(dir) / f.path, ec);
    if (!ec) ++present;
    if (ec) {
      if (!first_wrong) first_wrong = f.path + " is missing";
    } else if (size != f.size && !first_wrong) {
      first_wrong = fmt::format("{} has {} bytes, the torrent says {}", f.path, size, f.size);
    }
  }
  if (files > 0 && present == 0) return fmt::format("no data for {} in {}: is -d right?", mi.name, dir);
  if (skip_check && first_wrong) {
    return fmt::format("--skip-check trusts the data, but {} in {}: run without --skip-check to check it", *first_wrong,
                       dir);
  }
  return std::nullopt;
}

int run_transfer(const transfer_args& in) {
  transfer_args a = in;
  const char* cmd = a.seed_mode ? "seed" : "download";
  if (!a.proxy_url.empty()) {
    auto px = net::parse_proxy_url(a.proxy_url);
    if (!px) return usage_error(cmd, "--" + px.err().message());
    a.proxy = *px;
  }
  asio::io_context io;
  std::function<void(const std::string&)> log;
  if (a.verbose) {
    log = [](const std::string& line) {
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      fmt::print(stderr, "[{:.3f}] {}\n", std::fmod(t, 1000.0), printable(line));
    };
  }

  // What to add: a magnet link (the session fetches its metadata), or .torrent bytes from
  // a file or an http(s):// URL.
  torrent_params tp;
  std::optional<magnet_link> mag;
  std::string key;
  if (is_magnet(a.target)) {
    auto m = parse_magnet(a.target);
    if (!m) return fail(m.err().message());
    mag = std::move(m).value();
    key = mag->info_hash_v1 ? to_hex(as_view(*mag->info_hash_v1)) : to_hex(as_view(*mag->info_hash_v2));
  } else {
    // A file, or a .torrent by URL (fetched once, at most max_torrent_size bytes, certificates verified).
    fetch_options fetch;
    fetch.proxy = a.proxy;
    fetch.bind = a.bind;
    fetch.local = a.local || env_local();
    result<metainfo> loaded = load_torrent(a.target, fetch);
    if (!loaded) return fail(a.target + ": " + loaded.err().message());
    tp.info = std::move(loaded).value();
    for (const auto& w : tp.info.warnings)
      warn(a.target + ": " + w);
    key = tp.info.info_hash_v1 ? to_hex(as_view(*tp.info.info_hash_v1)) : to_hex(as_view(*tp.info.info_hash_v2));
    auto prio = priorities_for(tp.info, a.select, {});
    if (!prio) return usage_error(cmd, prio.err().message());
    tp.file_priorities = std::move(prio).value();
  }

  session_settings st;
  st.listen_port = static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  // LSD multicasts on the LAN: under --local only inside a test's network namespace.
  st.lsd = !a.no_lsd && (!st.local || lsd::in_network_namespace());
  // BEP 27: a private torrent gets its peers from its trackers only: no DHT node at all.
  st.dht = !a.no_dht && (mag || !tp.info.is_private);
  st.dht_bootstrap = a.dht_bootstrap;
  st.dht_state_file = a.dht_state.empty() ? fs::path(a.dir) / ".shoal" / "dht.state" : fs::path(a.dht_state);
  st.port_mapping = !a.no_port_mapping && (!st.local || !a.upnp_url.empty() || !a.natpmp_gateway.empty());
  st.upnp_url = a.upnp_url;
  st.natpmp_gateway = a.natpmp_gateway;
  st.port_mapping_lease = std::chrono::seconds(a.port_mapping_lease);
  st.max_peers_per_torrent = a.max_peers;
  st.proxy = a.proxy;
  st.log = log;
  if (a.proxy.enabled() && (st.dht || st.lsd)) {
    warn(
        "--proxy: the DHT and local peer discovery do not go through the proxy (add --no-dht --no-lsd to keep "
        "every outgoing connection on it)");
  }
  if (auto pol = wire::mse::parse_policy(a.encryption)) {
    st.encryption = *pol;
  } else {
    return usage_error(cmd, "--encryption '" + a.encryption + "': use allowed, tolerated, preferred or required");
  }
  st.transport = a.transport == "utp"    ? peer_transport::utp
                 : a.transport == "both" ? peer_transport::both
                                         : peer_transport::tcp;
  if (!a.bind.empty()) {
    boost::system::error_code bec;
    (void)asio::ip::make_address(a.bind, bec);
    if (bec) return usage_error(cmd, "--bind '" + a.bind + "' is not an IP address");
    st.listen_address = a.bind;
    st.outgoing_address = a.bind;
  }
  if (!a.max_down.empty()) {
    auto v = parse_size(a.max_down);
    if (!v || *v == 0) {
      return usage_error(cmd, "--max-download-rate '" + a.max_down +
                                  "' is not a rate above zero (try 500KiB or 10MiB; leave it out for no limit)");
    }
    st.max_download_rate = *v;
  }
  if (!a.max_up.empty()) {
    auto v = parse_size(a.max_up);
    if (!v || *v == 0) {
      return usage_error(cmd, "--max-upload-rate '" + a.max_up +
                                  "' is not a rate above zero (try 500KiB or 10MiB; leave it out for no limit)");
    }
    st.max_upload_rate = *v;
  }

  tp.magnet = mag;
  tp.save_path = a.dir;
  tp.resume_file = fs::path(a.dir) / ".shoal" / (key + ".resume");
  if (mag) {
    tp.metadata_file = fs::path(a.dir) / ".shoal" / (key + ".torrent");
    tp.metadata_timeout = std::chrono::seconds(a.stop_timeout > 0 ? a.stop_timeout : 120);
  }
  tp.force_check = a.check;
  tp.skip_check = a.skip_check;
  tp.sequential = a.sequential;
  tp.settings_from_resume = false;  // this run's flags win over what an earlier run saved
  // Seeding goals after completion (download only; `seed` runs until stopped).
  if (!a.seed_mode) {
    if (a.seed_time >= 0) {
      tp.goals.seeding_time = std::chrono::seconds(a.seed_time);
    } else {
      tp.goals.ratio = a.seed_ratio;
    }
  }
  tcp::resolver resolver(io);
  std::vector<tcp::endpoint> given;
  if (mag) {
    for (const auto& p : mag->peers) {
      auto ep = resolve_peer(resolver, p);
      if (!ep) return fail("x.pe " + ep.err().message());
      given.push_back(*ep);
    }
  }
  for (const auto& p : a.peers) {
    auto ep = resolve_peer(resolver, p);
    if (!ep) return usage_error(cmd, "--" + ep.err().message());
    given.push_back(*ep);
  }
  tp.peers = given;
  // BEP 19: the torrent's url-list (a magnet link's `ws`), then --web-seed; none with --no-web-seeds.
  if (a.no_web_seeds) {
    tp.web_seeds.emplace();
  } else if (!a.web_seeds.empty()) {
    tp.web_seeds = mag ? mag->web_seeds : tp.info.web_seeds;
    tp.web_seeds->insert(tp.web_seeds->end(), a.web_seeds.begin(), a.web_seeds.end());
  }
  // After every argument was read (an argument error says so first, with exit 2).
  if (a.seed_mode && !mag) {
    if (auto why = seed_data_problem(tp.info, a.dir, a.skip_check)) return fail(*why);
  }
  std::error_code dec;
  fs::create_directories(a.dir, dec);
  if (dec) return fail(a.dir + ": cannot create the download folder: " + dec.message());
  if (::access(a.dir.c_str(), W_OK) != 0 && !a.seed_mode) {
    return fail(a.dir + ": the download folder is not writable (choose another with -d)");
  }

  session ses(io, st);
  ses.on_warning = [](const std::string& w) { warn(w); };
  if (auto ec = ses.listen()) {
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any)");
  }
  if (mag && given.empty() && mag->trackers.empty() && (!ses.dht_node() || !ses.dht_node()->has_contacts())) {
    return fail(
        "the magnet link has no trackers and no peers (x.pe), no --peer was given and the DHT is off or has no "
        "node to start from (--dht-bootstrap): nobody to ask for the metadata");
  }
  net::port_mapper* mapper = ses.port_mapper();
  if (mapper && a.json_progress) {
    mapper->on_change([](const net::port_mapping_status& s) {
      auto o = mapping_json(s);
      o["event"] = "port_mapping";
      fmt::print("{}\n", boost::json::serialize(o));
      std::fflush(stdout);
    });
  }
  if (!mag && tp.info.tracker_tiers.empty() && tp.peers.empty() &&
      (tp.web_seeds ? tp.web_seeds->empty() : tp.info.web_seeds.empty())) {
    warn("the torrent lists no trackers and no --peer was given: waiting for peers to connect to port " +
         std::to_string(ses.port()));
  }
  if (mag && !a.json_progress) fmt::print(stderr, "fetching the metadata of {} from peers...\n", key);
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto t = ses.add_torrent(std::move(tp));
  const torrent_id id = t->id();
  std::string name = mag ? key : t->info().name;
  bool announced_start = false;
  auto print_start = [&] {
    if (announced_start || !a.json_progress) return;
    // What the torrent starts from (resume data, or a check to come).
    announced_start = true;
    auto s0 = t->status();
    boost::json::object o;
    o["event"] = "start";
    o["state"] = std::string(state_name(s0.state));
    o["pieces"] = s0.pieces_have;
    o["num_pieces"] = s0.num_pieces;
    o["port"] = ses.port();
    fmt::print("{}\n", boost::json::serialize(o));
    std::fflush(stdout);
  };

  int exit_code = exit_ok;
  bool stopping = false;
  bool stalled = false;
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> finished_at;
  auto shutdown = [&](int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    ses.stop([&io] { io.stop(); });
  };

  // Events: what the session says happened, read as soon as it is queued.
  bool drain_posted = false;
  std::function<void()> drain = [&] {
    drain_posted = false;
    for (auto& e : ses.events().pop()) {
      if (e.torrent != id || stopping) continue;
      switch (e.kind) {
        case event_kind::metadata_received: {
          name = t->info().name;
          for (const auto& w : t->info().warnings)
            warn(name + ": " + w);
          if (!a.select.empty() || !mag->select_only.empty()) {
            auto prio = priorities_for(t->info(), a.select, mag->select_only);
            if (!prio) {
              usage_error(cmd, prio.err().message());
              shutdown(exit_usage);
              return;
            }
            t->set_file_priorities(std::move(prio).value());
          }
          if (t->info().is_private && ses.dht_node()) ses.dht_node()->stop();  // BEP 27
          break;
        }
        case event_kind::state_changed: {
          // Resume data read and any check done: what the transfer starts from.
          const auto st = static_cast<torrent_state>(e.state);
          if (st == torrent_state::downloading || st == torrent_state::seeding || st == torrent_state::paused)
            print_start();
          break;
        }
        case event_kind::torrent_finished:
          finished_at = std::chrono::steady_clock::now();
          break;
        case event_kind::goal_reached:
          shutdown(exit_ok);
          return;
        case event_kind::error: {
          const auto s = t->status();
          if (s.state != torrent_state::error) {
            if (a.verbose) log(e.message);  // not fatal (a resume write that failed)
            break;
          }
          if (tty) fmt::print(stderr, "\n");
          fmt::print(stderr, "shoal: error: {}: {}\n", printable(name), printable(e.message));
          // Nobody gave the metadata in time: the same as a download that got no data.
          shutdown(s.error_type == error_kind::metadata ? exit_stalled : exit_error);
          return;
        }
        default:
          break;
      }
    }
  };
  ses.set_event_notify([&] {
    if (drain_posted) return;
    drain_posted = true;
    asio::post(io, [&] { drain(); });
  });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int) {
    if (ec) return;
    if (stopping) {
      // A second Ctrl-C: leave at once. Resume data only ever lists synced pieces.
      fmt::print(stderr, "shoal: stopped without waiting\n");
      std::_Exit(exit_interrupted);
    }
    if (tty) fmt::print(stderr, "\n");
    fmt::print(stderr, "shoal: stopping (saving resume data); Ctrl-C again to quit at once...\n");
    shutdown(t->finished() ? exit_ok : exit_interrupted);
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  // Progress: a live line on a terminal, a plain line every 5 s otherwise, or JSON lines.
  asio::steady_timer progress(io);
  progress_printer printer{a, tty, 0, {}};
  std::uint64_t last_have = 0;
  auto last_progress = std::chrono::steady_clock::now();
  std::function<void()> report = [&] {
    progress.expires_after(std::chrono::milliseconds(500));
    progress.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      const auto s = t->status();
      if (s.state != torrent_state::fetching_metadata) printer.print(s, mapper);
      if (s.have_wanted != last_have || s.state != torrent_state::downloading) {
        last_have = s.have_wanted;
        last_progress = std::chrono::steady_clock::now();
      } else if (a.stop_timeout > 0 && !a.seed_mode &&
                 std::chrono::steady_clock::now() - last_progress >= std::chrono::seconds(a.stop_timeout)) {
        stalled = true;
        shutdown(exit_stalled);
        return;
      }
      report();
    });
  };
  report();
  io.run();
  if (tty && !a.json_progress) fmt::print(stderr, "\n");

  auto s = t->status();
  if (stalled && !t->finished()) {
    fmt::print(stderr, "shoal: error: {}: no data for {} s ({}{}); giving up\n", printable(name), a.stop_timeout,
               s.peers                     ? fmt::format("{} peers connected, none sending", s.peers)
               : s.tracker_message.empty() ? std::string("no peers")
                                           : "no peers; last tracker reply: " + printable(s.tracker_message),
               s.web_seeds ? fmt::format("; {} web seeds sending nothing (-v says why)", s.web_seeds) : std::string());
  }
  const double secs =
      std::chrono::duration<double>((finished_at ? *finished_at : std::chrono::steady_clock::now()) - started).count();
  if (exit_code == exit_usage) return exit_code;
  if (a.json_progress) {
    boost::json::object o;
    o["event"] = "summary";
    o["name"] = name;
    o["complete"] = s.have_wanted == s.total_wanted && s.num_pieces > 0;
    o["have_bytes"] = s.have_wanted;
    o["total_bytes"] = s.total_wanted;
    o["downloaded"] = s.downloaded;
    o["web_seeds"] = s.web_seeds;
    o["web_seed_downloaded"] = s.web_seed_downloaded;
    o["uploaded"] = s.uploaded;
    o["wasted"] = s.wasted;
    o["hash_failures"] = s.hash_failures;
    o["banned_peers"] = s.banned;
    o["seconds"] = secs;
    o["exit_code"] = exit_code;
    o["error"] = s.error_type == error_kind::tracker ? std::string() : s.error;
    o["tracker"] = s.tracker_message;
    if (mapper) o["port_mapping"] = mapping_json(mapper->status());
    fmt::print("{}\n", boost::json::serialize(o));
  } else if (!a.seed_mode && s.num_pieces > 0) {
    fmt::print(
        stderr, "{}: {} of {} ({:.1f}%), downloaded {} in {:.1f} s ({}/s){}, uploaded {}{}\n", printable(name),
        human_size(s.have_wanted), human_size(s.total_wanted),
        s.total_wanted ? 100.0 * static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 100.0,
        human_size(s.downloaded), secs,
        human_size(static_cast<std::uint64_t>(secs > 0 ? static_cast<double>(s.downloaded) / secs : 0)),
        s.web_seed_downloaded ? fmt::format(" ({} from web seeds)", human_size(s.web_seed_downloaded)) : std::string(),
        human_size(s.uploaded),
        s.hash_failures ? fmt::format(", {} pieces failed their hash check, {} peers banned", s.hash_failures, s.banned)
                        : std::string());
  }
  return exit_code;
}

void add_common(CLI::App& app, transfer_args& a) {
  app.add_option("-d,--dir", a.dir, "Folder the torrent's files are in");
  app.add_option("--port", a.port, "TCP port to listen on (0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--peer", a.peers, "Connect to this peer (HOST:PORT); repeatable")->default_str("");
  app.add_flag("--local", a.local, "Keep all traffic on loopback and the given addresses (also SHOAL_LOCAL=1)");
  app.add_flag("--no-dht", a.no_dht, "Do not use the DHT");
  app.add_flag("--no-lsd", a.no_lsd, "Do not look for peers on the local network (BEP 14 multicast)");
  app.add_option("--dht-bootstrap", a.dht_bootstrap,
                 "Join the DHT through this node (HOST:PORT; repeatable; default: the public routers)")
      ->default_str("");
  app.add_option("--dht-state", a.dht_state,
                 "Where the DHT node id and routing table are kept (default DIR/.shoal/dht.state)")
      ->default_str("");
  app.add_option("--encryption", a.encryption,
                 "Protocol encryption (MSE/PE): allowed (plaintext first, encrypted when the peer asks; "
                 "tolerated is the same, as Transmission calls it), preferred (try encrypted, fall back to "
                 "plaintext) or required (refuse plaintext peers)")
      ->check(CLI::IsMember({"allowed", "preferred", "required", "tolerated"}));
  app.add_option("--transport", a.transport,
                 "Peer transport: tcp, utp (BEP 29 only) or both (TCP first, uTP when TCP gets "
                 "nowhere or the peer resets it unanswered); with utp or both, uTP is also accepted on UDP at --port, "
                 "which the DHT then shares")
      ->check(CLI::IsMember({"tcp", "utp", "both"}));
  app.add_option("--bind", a.bind, "Listen on and connect from this address only (e.g. 192.168.1.5 or ::1)");
  app.add_option("--max-download-rate", a.max_down, "Global download limit, e.g. 5MiB (per second; default: none)");
  app.add_option("--max-upload-rate", a.max_up, "Global upload limit, e.g. 1MiB (per second; default: none)");
  app.add_option("--max-peers", a.max_peers, "Most peers connected at once")->check(CLI::Range(1u, 100000u));
  app.add_option(
      "--proxy", a.proxy_url,
      "Make peer connections and HTTP(S) tracker announces through this proxy: socks5://[USER:PASS@]HOST:PORT "
      "or http://HOST:PORT (UDP trackers: through SOCKS5 only)");
  app.add_flag("--no-port-mapping", a.no_port_mapping,
               "Do not ask the router to forward the listen port (UPnP IGD and NAT-PMP)");
  app.add_option("--upnp-url", a.upnp_url,
                 "Use the UPnP gateway described at this URL (its rootDesc.xml) instead of discovering one");
  app.add_option("--natpmp-gateway", a.natpmp_gateway,
                 "Ask this NAT-PMP gateway (IPv4) instead of the default gateway");
  // Hidden: tests shorten the lease to see renewals.
  app.add_option("--port-mapping-lease", a.port_mapping_lease, "")
      ->group("")
      ->check(CLI::Range(1L, 86400L))
      ->default_str("");
  app.add_flag("--json-progress", a.json_progress, "Print progress as JSON lines on stdout, and a JSON summary");
  app.add_flag("-v,--verbose", a.verbose, "Log peer connections, disconnections (with the reason) and tracker replies");
}

}  // namespace

runner add_download(CLI::App& app) {
  auto a = std::make_shared<transfer_args>();
  app.add_option("TORRENT", a->target, "A .torrent file, its http(s):// URL, or a magnet link")->required();
  add_common(app, *a);
  app.add_option("--seed-ratio", a->seed_ratio,
                 "After completing, seed until uploaded/size reaches this (0: exit at once)")
      ->check(non_negative());
  app.add_option("--seed-time", a->seed_time,
                 "After completing, seed this many seconds instead of to a ratio (0: exit at once)")
      ->check(non_negative())
      ->default_str("");
  app.add_option("--select-file", a->select,
                 "Download only these files (numbered as `shoal info` shows them, from 1: e.g. 1,3-5)");
  app.add_flag("--sequential", a->sequential, "Download pieces in order");
  app.add_option("--web-seed", a->web_seeds,
                 "Also download from this HTTP(S) web seed (BEP 19; besides the torrent's url-list); repeatable")
      ->default_str("");
  app.add_flag("--no-web-seeds", a->no_web_seeds, "Do not use web seeds, not even the torrent's url-list");
  app.add_flag("--check", a->check, "Hash the files on disk first, ignoring resume data");
  app.add_option("--stop-timeout", a->stop_timeout,
                 "Give up (exit code 4) after this many seconds without any data arriving (0: never)")
      ->check(non_negative());
  return [a] { return run_transfer(*a); };
}

runner add_seed(CLI::App& app) {
  auto a = std::make_shared<transfer_args>();
  a->seed_mode = true;
  app.add_option("TORRENT", a->target, "A .torrent file")->required();
  add_common(app, *a);
  app.add_flag("--skip-check", a->skip_check, "Trust that the data is complete instead of hashing it");
  return [a] { return run_transfer(*a); };
}

}  // namespace shoal::cli
