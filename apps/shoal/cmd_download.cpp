// `shoal download` and `shoal seed`: one torrent in a session, with a progress line.
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
#include "session/metadata_fetch.hpp"
#include "session/session.hpp"
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

// A magnet link's metadata (BEP 9): peers from x.pe, --peer and the link's trackers are
// asked for the info dictionary; the verified copy is kept in DIR/.shoal/ for next time.
result<std::string> magnet_torrent(asio::io_context& io, const std::shared_ptr<dht::node>& dht, const magnet_link& mag,
                                   const transfer_args& a, const std::vector<tcp::endpoint>& given,
                                   const std::string& key, const std::function<void(const std::string&)>& log,
                                   std::shared_ptr<std::vector<tcp::endpoint>> found) {
  const fs::path cached = fs::path(a.dir) / ".shoal" / (key + ".torrent");
  if (auto c = load_metainfo(cached);
      c && c->info_hash_v1 == mag.info_hash_v1 && (!mag.info_hash_v2 || c->info_hash_v2 == mag.info_hash_v2)) {
    return torrent_from_metadata(c->info_bytes, mag.trackers);
  }
  std::optional<result<std::string>> got;
  metadata_fetch_params p;
  if (mag.info_hash_v1) {
    p.wire_hash = *mag.info_hash_v1;
  } else {
    std::copy_n(mag.info_hash_v2->begin(), 20, p.wire_hash.begin());
  }
  p.v1 = mag.info_hash_v1;
  p.v2 = mag.info_hash_v2;
  std::random_device rd;
  const std::string prefix = "-SH0100-";
  std::copy(prefix.begin(), prefix.end(), p.id.begin());
  for (std::size_t i = prefix.size(); i < p.id.size(); ++i)
    p.id[i] = static_cast<std::uint8_t>(rd());
  p.peers = given;
  p.log = log;
  p.proxy = a.proxy;
  if (a.stop_timeout > 0) p.timeout = std::chrono::seconds(a.stop_timeout);
  // Peers given: ask them only. Otherwise the DHT and the link's trackers look for peers
  // while the fetch runs, and hand them over as they come.
  auto done = std::make_shared<bool>(false);
  const bool search = given.empty();
  if (search) p.incoming = std::make_shared<std::vector<tcp::endpoint>>();
  // The DHT found no node at all and there is no tracker: nothing more will come.
  auto dht_dead = std::make_shared<bool>(!dht);
  if (search && mag.trackers.empty()) p.finders_done = [dht_dead] { return *dht_dead; };
  const bool local = a.local || env_local();
  // The finders below may still be running when the fetch is over and this function has
  // returned (their lookups end later, in the transfer's own run): they own copies.
  const int own_port = a.port;
  auto wanted = [own_port, local](const tcp::endpoint& ep) {
    if (local && !dht::is_local_address(ep.address())) return false;
    return ep.port() != own_port || !ep.address().is_loopback();
  };
  const sha1_digest wire_hash = p.wire_hash;
  if (search && dht) {
    asio::co_spawn(
        io,
        [&io, dht, done, wanted, wire_hash, log, dht_dead, found, incoming = p.incoming]() -> asio::awaitable<void> {
          asio::steady_timer wait(io);
          const auto ready_wait = std::chrono::milliseconds(10000);
          const bool ready = co_await dht->wait_ready(ready_wait);
          if (!ready) {
            if (log) log("dht: no node answered");
            *dht_dead = true;
            co_return;
          }
          for (int round = 0; !*done && dht->running(); ++round) {
            const dht::node::lookup_options opt;
            // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
            std::function<void(const std::vector<tcp::endpoint>&)> on_peers =
                [wanted, incoming, done, found](const std::vector<tcp::endpoint>& peers) {
                  if (*done) return;
                  for (const auto& ep : peers) {
                    if (wanted(ep)) {
                      incoming->push_back(ep);
                      if (found->size() < 200 && std::find(found->begin(), found->end(), ep) == found->end())
                        found->push_back(ep);
                    }
                  }
                };
            auto n = co_await dht->get_peers(wire_hash, opt, on_peers);
            if (log) log("dht: " + std::to_string(n) + " peers found");
            if (*done) break;
            wait.expires_after(std::chrono::seconds(round < 3 ? 2 : 10));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  if (search && !mag.trackers.empty()) {
    asio::co_spawn(
        io,
        [&io, &a, done, wanted, log, incoming = p.incoming, trackers = mag.trackers, wire_hash, id = p.id, own_port,
         found]() -> asio::awaitable<void> {
          tracker::announce_request req;
          req.info_hash = wire_hash;
          req.peer_id = id;
          req.port = static_cast<std::uint16_t>(own_port);
          req.left = 1;
          req.ev = tracker::event::started;
          // Quick tries only: a dead UDP tracker must not cost minutes.
          tracker::client_options opt;
          opt.proxy = a.proxy;
          opt.bind_address = a.bind;
          opt.local = a.local || env_local();
          opt.http_timeout = std::chrono::seconds(5);
          opt.udp_attempts = 2;
          opt.udp_base_timeout = std::chrono::milliseconds(2000);
          // A tracker may not know any peer yet (a seeder that just started), or only peers that
          // are gone: ask again while the fetch runs, backing off from 2 s to 30 s.
          asio::steady_timer wait(io);
          for (int round = 0; !*done; ++round) {
            for (const auto& url : trackers) {
              auto r = co_await tracker::announce(io, url, req, opt);
              if (*done) co_return;
              if (!r) {
                if (log) log("tracker error: " + r.err().message());
                continue;
              }
              for (const auto& ep : r->peers) {
                if (wanted(ep)) {
                  incoming->push_back(ep);
                  if (found->size() < 200 && std::find(found->begin(), found->end(), ep) == found->end())
                    found->push_back(ep);
                }
              }
            }
            wait.expires_after(std::chrono::seconds(std::min(30, 2 << std::min(round, 4))));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        },
        asio::detached);
  }
  asio::co_spawn(
      io,
      [&, done]() -> asio::awaitable<void> {
        got = co_await fetch_metadata(io, p);
        *done = true;
        io.stop();
      },
      asio::detached);
  io.restart();
  io.run();
  *done = true;
  if (!got) return error{errc::io, "metadata fetch did not finish", no_offset};
  if (!*got) return got->err();
  std::error_code ec;
  fs::create_directories(cached.parent_path(), ec);
  const std::string bytes = torrent_from_metadata(**got, mag.trackers);
  if (!ec) (void)write_file_atomically(cached, bytes);  // atomic write; losing the cache only costs a refetch
  return bytes;
}

// The DHT node for a transfer, on the UDP port with the TCP listener's number; null (with a
// warning) when it cannot start: the transfer goes on without it.
std::shared_ptr<dht::node> start_dht(asio::io_context& io, const transfer_args& a,
                                     const std::function<void(const std::string&)>& log,
                                     net::utp_socket_manager* utp = nullptr) {
  dht::settings ds;
  ds.port = static_cast<std::uint16_t>(a.port);
  ds.bootstrap = a.dht_bootstrap;
  ds.local = a.local || env_local();
  // Bound to one address, the node stays on it (no IPv6 twin on [::]).
  if (!a.bind.empty()) ds.listen_address = a.bind;
  ds.ipv6 = a.bind.empty();
  ds.state_file = a.dht_state.empty() ? fs::path(a.dir) / ".shoal" / "dht.state" : fs::path(a.dht_state);
  ds.log = log;
  auto node = std::make_shared<dht::node>(io, ds);
  if (utp) {
    // uTP's socket has the port: the node shares it (KRPC comes in through the fallback).
    auto sent = [utp](std::span<const char> d, const udp::endpoint& to) { utp->send_to(d, to); };
    if (auto ec = node->start_external(sent, static_cast<std::uint16_t>(a.port))) {
      warn("the DHT cannot start: " + ec.message());
      return nullptr;
    }
    utp->set_fallback([node](std::span<const char> d, const udp::endpoint& from) { node->deliver(d, from); });
    return node;
  }
  if (auto ec = node->start()) {
    warn("the DHT cannot listen on UDP port " + std::to_string(a.port) + ": " + ec.message() +
         "; going on without it (--no-dht hides this)");
    return nullptr;
  }
  return node;
}

int run_transfer(const transfer_args& in) {
  transfer_args a = in;
  if (!a.proxy_url.empty()) {
    auto px = net::parse_proxy_url(a.proxy_url);
    if (!px) {
      fmt::print(stderr, "shoal: error: --{}\n", printable(px.err().message()));
      return exit_usage;
    }
    a.proxy = *px;
  }
  asio::io_context io;
  // uTP (--transport utp|both): its UDP socket comes first, so the DHT can share it and the
  // TCP listener takes its port number.
  std::shared_ptr<net::utp_socket_manager> utp;
  if (a.transport != "tcp") {
    utp = std::make_shared<net::utp_socket_manager>(io);
    boost::system::error_code uec;
    const auto any =
        a.bind.empty() ? asio::ip::address(asio::ip::address_v4::any()) : asio::ip::make_address(a.bind, uec);
    if (!uec) uec = utp->listen(udp::endpoint(any, static_cast<std::uint16_t>(a.port)));
    if (uec) return fail("uTP cannot listen on UDP port " + std::to_string(a.port) + ": " + uec.message());
    a.port = utp->local_endpoint(any.is_v6()).port();
    if (a.bind.empty())
      (void)utp->listen(udp::endpoint(asio::ip::address_v6::any(), static_cast<std::uint16_t>(a.port)));
  }
  std::shared_ptr<dht::node> dht;
  std::function<void(const std::string&)> dht_log;
  if (a.verbose) dht_log = [](const std::string& line) { fmt::print(stderr, "{}\n", printable(line)); };
  result<metainfo> loaded = error{};
  std::vector<tcp::endpoint> extra_peers;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> select_only;
  std::vector<std::string> link_web_seeds;  // a magnet link's `ws` (BEP 19 web seeds)
  if (is_magnet(a.target)) {
    auto mag = parse_magnet(a.target);
    if (!mag) return fail(mag.err().message());
    asio::io_context rio;
    tcp::resolver resolver(rio);
    std::vector<tcp::endpoint> given;
    for (const auto& p : mag->peers) {
      auto ep = resolve_peer(resolver, p);
      if (!ep) return fail("x.pe " + ep.err().message());
      given.push_back(*ep);
    }
    for (const auto& p : a.peers) {
      auto ep = resolve_peer(resolver, p);
      if (!ep) return fail("--" + ep.err().message());
      given.push_back(*ep);
    }
    if (!a.no_dht && given.empty()) dht = start_dht(io, a, dht_log, utp.get());
    if (given.empty() && mag->trackers.empty() && (!dht || !dht->has_contacts())) {
      return fail(
          "the magnet link has no trackers and no peers (x.pe), no --peer was given and the DHT is off or has no "
          "node to start from (--dht-bootstrap): nobody to ask for the metadata");
    }
    const std::string key =
        mag->info_hash_v1 ? to_hex(as_view(*mag->info_hash_v1)) : to_hex(as_view(*mag->info_hash_v2));
    std::function<void(const std::string&)> log;
    if (a.verbose) log = [](const std::string& line) { fmt::print(stderr, "{}\n", printable(line)); };
    if (!a.json_progress) fmt::print(stderr, "fetching the metadata of {} from peers...\n", key);
    // The peers the DHT and trackers found for the metadata are the torrent's first peers.
    auto found = std::make_shared<std::vector<tcp::endpoint>>();
    auto bytes = magnet_torrent(io, dht, *mag, a, given, key, log, found);
    if (!bytes) {
      // Nobody gave the metadata in time: the same as a download that got no data.
      fail(bytes.err().message());
      return exit_stalled;
    }
    loaded = parse_metainfo(*bytes);
    extra_peers = given;
    for (const auto& ep : *found) {
      if (std::find(extra_peers.begin(), extra_peers.end(), ep) == extra_peers.end()) extra_peers.push_back(ep);
    }
    select_only = mag->select_only;
    link_web_seeds = mag->web_seeds;
  } else if (a.target.rfind("http://", 0) == 0 || a.target.rfind("https://", 0) == 0) {
    // A .torrent by URL: fetched once, at most max_torrent_size bytes, certificates verified.
    asio::io_context fetch_io;
    std::optional<result<std::string>> body;
    asio::co_spawn(
        fetch_io,
        [&]() -> asio::awaitable<void> {
          // Named, not a default-argument temporary: GCC 12 mishandles temporaries around co_await.
          tracker::client_options opt;
          opt.proxy = a.proxy;
          opt.bind_address = a.bind;
          opt.local = a.local || env_local();
          body = co_await tracker::http_get(fetch_io, a.target, max_torrent_size, opt);
        },
        asio::detached);
    fetch_io.run();
    if (!body || !*body) return fail(body ? body->err().message() : a.target + ": fetch failed");
    loaded = parse_metainfo(**body);
  } else {
    loaded = load_metainfo(a.target);
  }
  if (!loaded) return fail(a.target + ": " + loaded.err().message());
  metainfo mi = std::move(loaded).value();
  for (const auto& w : mi.warnings)
    warn(a.target + ": " + w);
  // BEP 27: a private torrent gets its peers from its trackers only.
  if (mi.is_private && dht) {
    dht->stop();
    dht.reset();
  }
  if (!a.no_dht && !mi.is_private && !dht) dht = start_dht(io, a, dht_log, utp.get());

  session_settings st;
  // The TCP listener takes the DHT's UDP port number (when --port 0 let the OS pick it).
  st.listen_port = dht ? dht->port() : static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  // LSD multicasts on the LAN: under --local only inside a test's network namespace.
  st.lsd = !a.no_lsd && (!st.local || lsd::in_network_namespace());
  st.max_peers_per_torrent = a.max_peers;
  st.proxy = a.proxy;
  if (a.proxy.enabled() && (dht || st.lsd)) {
    warn(
        "--proxy: the DHT and local peer discovery do not go through the proxy (add --no-dht --no-lsd to keep "
        "every outgoing connection on it)");
  }
  if (auto pol = wire::mse::parse_policy(a.encryption)) {
    st.encryption = *pol;
  } else {
    return fail("--encryption '" + a.encryption + "': use allowed, preferred or required");
  }
  st.transport = a.transport == "utp"    ? peer_transport::utp
                 : a.transport == "both" ? peer_transport::both
                                         : peer_transport::tcp;
  if (!a.bind.empty()) {
    boost::system::error_code bec;
    (void)asio::ip::make_address(a.bind, bec);
    if (bec) return fail("--bind '" + a.bind + "' is not an IP address");
    st.listen_address = a.bind;
    st.outgoing_address = a.bind;
  }
  if (a.verbose) {
    st.log = [](const std::string& line) {
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      fmt::print(stderr, "[{:.3f}] {}\n", std::fmod(t, 1000.0), printable(line));
    };
  }
  if (!a.max_down.empty()) {
    auto v = parse_size(a.max_down);
    if (!v) return fail("--max-download-rate '" + a.max_down + "' is not a rate (try 500KiB or 10MiB)");
    st.max_download_rate = *v;
  }
  if (!a.max_up.empty()) {
    auto v = parse_size(a.max_up);
    if (!v) return fail("--max-upload-rate '" + a.max_up + "' is not a rate (try 500KiB or 10MiB)");
    st.max_upload_rate = *v;
  }

  torrent_params tp;
  tp.info = mi;
  tp.save_path = a.dir;
  const std::string key = mi.info_hash_v1 ? to_hex(as_view(*mi.info_hash_v1)) : to_hex(as_view(*mi.info_hash_v2));
  tp.resume_file = fs::path(a.dir) / ".shoal" / (key + ".resume");
  tp.force_check = a.check;
  tp.skip_check = a.skip_check;
  tp.sequential = a.sequential;
  if (!a.select.empty()) {
    std::string err;
    // Indices count the files a user sees: pad files are not numbered.
    std::vector<std::size_t> real;
    for (std::size_t i = 0; i < mi.files.size(); ++i) {
      if (!mi.files[i].pad) real.push_back(i);
    }
    auto sel = parse_select(a.select, real.size(), err);
    if (!sel) {
      fmt::print(stderr, "shoal: error: {}\n", err);
      return exit_usage;
    }
    tp.file_priorities.assign(mi.files.size(), 0);
    for (std::size_t i = 0; i < real.size(); ++i)
      tp.file_priorities[real[i]] = (*sel)[i];
  }
  tcp::resolver resolver(io);
  if (!extra_peers.empty()) {
    tp.peers = extra_peers;
  } else {
    for (const auto& p : a.peers) {
      auto ep = resolve_peer(resolver, p);
      if (!ep) return fail("--" + ep.err().message());
      tp.peers.push_back(*ep);
    }
  }
  // BEP 19: the torrent's url-list (a magnet link's `ws`), then --web-seed; none with --no-web-seeds.
  if (a.no_web_seeds) {
    tp.web_seeds.emplace();
  } else {
    tp.web_seeds = mi.web_seeds;
    tp.web_seeds->insert(tp.web_seeds->end(), link_web_seeds.begin(), link_web_seeds.end());
    tp.web_seeds->insert(tp.web_seeds->end(), a.web_seeds.begin(), a.web_seeds.end());
  }
  if (!select_only.empty() && tp.file_priorities.empty()) {
    // BEP 53 `so`: indices count the files a user sees (no pad files), from 0.
    std::vector<std::size_t> real;
    for (std::size_t i = 0; i < mi.files.size(); ++i) {
      if (!mi.files[i].pad) real.push_back(i);
    }
    tp.file_priorities.assign(mi.files.size(), 0);
    for (auto [lo, hi] : select_only) {
      for (std::uint64_t i = lo; i <= hi && i < real.size(); ++i)
        tp.file_priorities[real[i]] = 1;
    }
  }
  std::error_code dec;
  fs::create_directories(a.dir, dec);
  if (dec) return fail(a.dir + ": cannot create the download folder: " + dec.message());
  if (::access(a.dir.c_str(), W_OK) != 0 && !a.seed_mode) {
    return fail(a.dir + ": the download folder is not writable (choose another with -d)");
  }

  session ses(io, st);
  if (dht) ses.set_dht(dht);
  if (utp) ses.set_utp(utp);
  if (auto ec = ses.listen()) {
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any)");
  }
  // Port mapping: under --local only the gateways named on the command line are contacted.
  std::unique_ptr<net::port_mapper> mapper;
  if (!a.no_port_mapping && (!st.local || !a.upnp_url.empty() || !a.natpmp_gateway.empty())) {
    net::port_mapping_settings pm;
    pm.tcp_port = ses.port();
    pm.udp_port = ses.port();  // the DHT (and uTP) use the same number over UDP
    pm.local = st.local;
    pm.upnp_url = a.upnp_url;
    pm.natpmp_gateway = a.natpmp_gateway;
    pm.upnp = !st.local || !a.upnp_url.empty();
    pm.natpmp = !st.local || !a.natpmp_gateway.empty();
    if (a.port_mapping_lease > 0) pm.lease = std::chrono::seconds(a.port_mapping_lease);
    pm.log = st.log;
    mapper = std::make_unique<net::port_mapper>(io, pm);
    if (a.json_progress) {
      mapper->on_change([](const net::port_mapping_status& s) {
        auto o = mapping_json(s);
        o["event"] = "port_mapping";
        fmt::print("{}\n", boost::json::serialize(o));
        std::fflush(stdout);
      });
    }
    mapper->start();
  }
  if (mi.tracker_tiers.empty() && tp.peers.empty() && (!tp.web_seeds || tp.web_seeds->empty())) {
    warn("the torrent lists no trackers and no --peer was given: waiting for peers to connect to port " +
         std::to_string(ses.port()));
  }
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto t = ses.add_torrent(std::move(tp));
  if (a.json_progress) {
    // What the torrent starts from (resume data or a check in progress).
    auto s0 = t->status();
    boost::json::object o;
    o["event"] = "start";
    o["state"] = std::string(state_name(s0.state));
    o["pieces"] = s0.pieces_have;
    o["num_pieces"] = s0.num_pieces;
    o["port"] = ses.port();
    fmt::print("{}\n", boost::json::serialize(o));
    std::fflush(stdout);
  }
  int exit_code = exit_ok;
  bool stopping = false;
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> finished_at;

  auto shutdown = [&](int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    // Mappings are removed after the session said goodbye to trackers and peers.
    ses.stop([&io, &mapper] {
      if (mapper) {
        mapper->stop([&io] { io.stop(); });
      } else {
        io.stop();
      }
    });
  };
  t->on_error = [&](const std::string& why) {
    if (tty) fmt::print(stderr, "\n");
    fmt::print(stderr, "shoal: error: {}: {}\n", printable(mi.name), printable(why));
    shutdown(exit_error);
  };
  t->on_finished = [&] {
    finished_at = std::chrono::steady_clock::now();
    if (!a.seed_mode && a.seed_time == 0) shutdown(exit_ok);
  };
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
  int ticks = 0;
  bool stalled = false;
  std::uint64_t last_have = 0;
  auto last_progress = std::chrono::steady_clock::now();
  std::string last_tracker;
  std::function<void()> report = [&] {
    progress.expires_after(std::chrono::milliseconds(500));
    progress.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      ++ticks;
      auto s = t->status();
      const double frac =
          s.total_wanted ? static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 1.0;
      const double eta =
          s.download_rate > 0 ? static_cast<double>(s.total_wanted - s.have_wanted) / s.download_rate : -1;
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
      if (s.have_wanted != last_have || s.state != torrent_state::downloading) {
        last_have = s.have_wanted;
        last_progress = std::chrono::steady_clock::now();
      } else if (a.stop_timeout > 0 && !a.seed_mode &&
                 std::chrono::steady_clock::now() - last_progress >= std::chrono::seconds(a.stop_timeout)) {
        stalled = true;
        shutdown(exit_stalled);
        return;
      }
      // Seeding goals after completion (download only; `seed` runs until stopped).
      if (finished_at && !a.seed_mode) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - *finished_at).count();
        const bool time_done = a.seed_time >= 0 && secs >= static_cast<double>(a.seed_time);
        const bool ratio_done =
            a.seed_time < 0 && s.total_wanted > 0 &&
            static_cast<double>(t->total_uploaded()) >= a.seed_ratio * static_cast<double>(s.total_wanted);
        if (time_done || ratio_done) {
          shutdown(exit_ok);
          return;
        }
      }
      report();
    });
  };
  report();
  io.restart();
  io.run();
  if (tty && !a.json_progress) fmt::print(stderr, "\n");

  auto s = t->status();
  if (stalled && !t->finished()) {
    fmt::print(stderr, "shoal: error: {}: no data for {} s ({}{}); giving up\n", printable(mi.name), a.stop_timeout,
               s.peers                     ? fmt::format("{} peers connected, none sending", s.peers)
               : s.tracker_message.empty() ? std::string("no peers")
                                           : "no peers; last tracker reply: " + printable(s.tracker_message),
               s.web_seeds ? fmt::format("; {} web seeds sending nothing (-v says why)", s.web_seeds) : std::string());
  }
  const double secs =
      std::chrono::duration<double>((finished_at ? *finished_at : std::chrono::steady_clock::now()) - started).count();
  if (a.json_progress) {
    boost::json::object o;
    o["event"] = "summary";
    o["name"] = mi.name;
    o["complete"] = s.have_wanted == s.total_wanted;
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
    o["error"] = s.error;
    o["tracker"] = s.tracker_message;
    if (mapper) o["port_mapping"] = mapping_json(mapper->status());
    fmt::print("{}\n", boost::json::serialize(o));
  } else if (!a.seed_mode) {
    fmt::print(
        stderr, "{}: {} of {} ({:.1f}%), downloaded {} in {:.1f} s ({}/s){}, uploaded {}{}\n", printable(mi.name),
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
  app.add_option("-d,--dir", a.dir, "Folder the torrent's files are in (default: current folder)");
  app.add_option("--port", a.port, "TCP port to listen on (0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--peer", a.peers, "Connect to this peer (HOST:PORT); repeatable");
  app.add_flag("--local", a.local, "Keep all traffic on loopback and the given addresses (also SHOAL_LOCAL=1)");
  app.add_flag("--no-dht", a.no_dht, "Do not use the DHT");
  app.add_flag("--no-lsd", a.no_lsd, "Do not look for peers on the local network (BEP 14 multicast)");
  app.add_option("--dht-bootstrap", a.dht_bootstrap,
                 "Join the DHT through this node (HOST:PORT; repeatable; default: the public routers)");
  app.add_option("--dht-state", a.dht_state,
                 "Where the DHT node id and routing table are kept (default DIR/.shoal/dht.state)");
  app.add_option("--encryption", a.encryption,
                 "Protocol encryption (MSE/PE): allowed, preferred (default: try encrypted, fall back to "
                 "plaintext) or required (refuse plaintext peers)")
      ->check(CLI::IsMember({"allowed", "preferred", "required", "tolerated"}));
  app.add_option("--transport", a.transport,
                 "Peer transport: tcp, utp (BEP 29 only) or both (default: TCP first, uTP when TCP gets "
                 "nowhere); with utp or both, uTP is also accepted on UDP at --port, which the DHT then shares")
      ->check(CLI::IsMember({"tcp", "utp", "both"}));
  app.add_option("--bind", a.bind, "Listen on and connect from this address only (e.g. 192.168.1.5 or ::1)");
  app.add_option("--max-download-rate", a.max_down, "Global download limit, e.g. 5MiB (per second)");
  app.add_option("--max-upload-rate", a.max_up, "Global upload limit, e.g. 1MiB (per second)");
  app.add_option("--max-peers", a.max_peers, "Most peers connected at once");
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
  app.add_option("--port-mapping-lease", a.port_mapping_lease, "")->group("")->check(CLI::Range(1L, 86400L));
  app.add_flag("--json-progress", a.json_progress, "Print progress as JSON lines on stdout, and a JSON summary");
  app.add_flag("-v,--verbose", a.verbose, "Log peer connections, disconnections (with the reason) and tracker replies");
}

}  // namespace

runner add_download(CLI::App& app) {
  auto a = std::make_shared<transfer_args>();
  app.add_option("TORRENT", a->target, "A .torrent file, its http(s):// URL, or a magnet link")->required();
  add_common(app, *a);
  app.add_option("--seed-ratio", a->seed_ratio,
                 "After completing, seed until uploaded/size reaches this (default 1.0)");
  app.add_option("--seed-time", a->seed_time, "After completing, seed this many seconds (0: exit at once)");
  app.add_option("--select-file", a->select, "Download only these files (1-based, e.g. 1,3-5; see `shoal info`)");
  app.add_flag("--sequential", a->sequential, "Download pieces in order");
  app.add_option("--web-seed", a->web_seeds,
                 "Also download from this HTTP(S) web seed (BEP 19; besides the torrent's url-list); repeatable");
  app.add_flag("--no-web-seeds", a->no_web_seeds, "Do not use web seeds, not even the torrent's url-list");
  app.add_flag("--check", a->check, "Hash the files on disk first, ignoring resume data");
  app.add_option("--stop-timeout", a->stop_timeout,
                 "Give up (exit code 4) after this many seconds without any data arriving");
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
