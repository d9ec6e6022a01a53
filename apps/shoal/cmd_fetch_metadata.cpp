// `shoal fetch-metadata MAGNET -o FILE.torrent`: the magnet's info dictionary from peers
// (BEP 9: the DHT, the link's trackers, x.pe, --peer) or its xs= URL, written as a .torrent
// whose info dictionary is byte for byte the one that hashes to the link's info-hash, with
// the link's trackers as announce-list and its web seeds as url-list. The torrent is
// stopped as soon as the metadata is in (in a scratch folder, removed at the end).
#include <fmt/core.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>

#include "commands.hpp"
#include "console.hpp"
#include "core/bencode.hpp"
#include "core/magnet.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "session/session.hpp"
#include "source.hpp"
#include "storage/resume.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

struct fetch_metadata_args {
  std::string magnet;
  std::string output;
  std::vector<std::string> peers;
  std::vector<std::string> dht_bootstrap;
  int port = 0;
  std::uint32_t timeout = 120;
  bool no_dht = false;
  bool local = false;
  bool force = false;
  bool json = false;
  bool verbose = false;
};

// The .torrent: announce and announce-list from the link's trackers (a tier each, in the
// link's order), the info dictionary as received, url-list from its web seeds. Keys sorted.
std::string torrent_bytes(const std::string& info, const magnet_link& m) {
  std::string t = torrent_from_metadata(info, m.trackers);
  if (!m.web_seeds.empty()) {
    bencode::list seeds;
    for (const auto& w : m.web_seeds)
      seeds.emplace_back(w);
    t.insert(t.size() - 1, "8:url-list" + bencode::encode(seeds));
  }
  return t;
}

fs::path scratch_dir() {
  std::random_device rd;
  return fs::temp_directory_path() / fmt::format("shoal-fetch-metadata-{:016x}", (std::uint64_t{rd()} << 32) | rd());
}

int run_fetch_metadata(const fetch_metadata_args& a) {
  const char* cmd = "fetch-metadata";
  if (!is_magnet(a.magnet)) return usage_error(cmd, "'" + printable(a.magnet) + "' is not a magnet link");
  auto parsed = parse_magnet(a.magnet);
  if (!parsed) return usage_error(cmd, parsed.err().message());
  const magnet_link mag = std::move(parsed).value();
  const std::string key =
      mag.info_hash_v1 ? to_hex(as_view(*mag.info_hash_v1)) : to_hex(as_view(*mag.info_hash_v2)).substr(0, 40);
  const fs::path out = a.output.empty() ? fs::path(key + ".torrent") : fs::path(a.output);
  std::error_code fec;
  if (!a.force && fs::exists(out, fec)) return fail(out.string() + ": already exists (add -f to overwrite it)");

  session_settings st;
  st.listen_port = static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  st.lsd = false;
  st.port_mapping = false;
  st.dht = !a.no_dht;
  st.dht_bootstrap = a.dht_bootstrap;
  if (a.verbose) st.log = [](const std::string& line) { fmt::print(stderr, "{}\n", printable(line)); };

  asio::io_context io;
  tcp::resolver resolver(io);
  torrent_params tp;
  for (const auto& p : a.peers) {
    auto ep = resolve_peer(resolver, p);
    if (!ep) return usage_error(cmd, "--" + ep.err().message());
    tp.peers.push_back(*ep);
  }
  for (const auto& p : mag.peers) {
    auto ep = resolve_peer(resolver, p);
    if (!ep) return fail("x.pe " + ep.err().message());
    tp.peers.push_back(*ep);
  }
  // The torrent never gets to its data (it is removed once the metadata is in), but the
  // session wants a folder: one of its own, removed at the end.
  const fs::path scratch = scratch_dir();
  std::error_code sec;
  fs::create_directories(scratch, sec);
  if (sec) return fail_errno(scratch.string() + ": cannot create a scratch folder", sec.value());
  struct remove_scratch {
    fs::path p;
    ~remove_scratch() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{scratch};
  st.dht_state_file = scratch / "dht.state";
  tp.magnet = mag;
  tp.save_path = scratch;
  tp.metadata_timeout = std::chrono::seconds(a.timeout);
  tp.settings_from_resume = false;

  session ses(io, st);
  ses.on_warning = [](const std::string& w) { warn(w); };
  if (auto ec = ses.listen()) {
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any)");
  }
  if (!a.json) fmt::print(stderr, "fetching the metadata of {} (port {})...\n", key, ses.port());
  const auto id = ses.add(tp).id();

  int rc = exit_error;
  std::string info;
  std::string why = "no answer";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.timeout) + std::chrono::seconds(5);
  asio::steady_timer guard(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool done = false;
  auto finish = [&] {
    if (done) return;
    done = true;
    guard.cancel();
    signals.cancel();
    ses.stop([&io] { io.stop(); });
  };
  // Events are read after the call that queued them returns (posted), never inside it.
  bool drain_posted = false;
  std::function<void()> drain = [&] {
    drain_posted = false;
    for (auto& e : ses.events().pop()) {
      if (e.torrent != id || done) continue;
      if (e.kind == event_kind::metadata_received) {
        if (auto t = ses.find(id)) info = t->info().info_bytes;
        rc = exit_ok;
        finish();
      } else if (e.kind == event_kind::error) {
        why = e.message;
        finish();
      }
    }
  };
  ses.set_event_notify([&] {
    if (drain_posted) return;
    drain_posted = true;
    asio::post(io, [&] { drain(); });
  });
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    why = "interrupted";
    finish();
  });
  // The torrent gives up at --timeout; this is a backstop should no event come.
  guard.expires_at(deadline);
  guard.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    why = "no metadata within " + std::to_string(a.timeout) + " s";
    finish();
  });
  io.run();

  if (rc != exit_ok) return fail("could not fetch the metadata of " + key + ": " + printable(why));
  const std::string bytes = torrent_bytes(info, mag);
  auto check = parse_metainfo(bytes);
  if (!check || (mag.info_hash_v1 && check->info_hash_v1 != mag.info_hash_v1) ||
      (mag.info_hash_v2 && check->info_hash_v2 != mag.info_hash_v2)) {
    return fail("the metadata received does not make a .torrent of " + key);  // never: the session checked it
  }
  if (auto ec = write_file_atomically(out, bytes)) return fail_errno(out.string() + ": cannot write it", ec.value());
  if (a.json) {
    boost::json::object o;
    o["event"] = "metadata";
    o["info_hash"] = key;
    o["name"] = check->name;
    o["file"] = out.string();
    o["size"] = bytes.size();
    fmt::print("{}\n", plain_json(o));
  } else {
    fmt::print("{}: {} ({} bytes)\n", out.string(), printable(check->name), bytes.size());
  }
  return exit_ok;
}

}  // namespace

runner add_fetch_metadata(CLI::App& app) {
  auto a = std::make_shared<fetch_metadata_args>();
  app.add_option("MAGNET", a->magnet, "Magnet link (btih, btmh or both; tr, ws, xs, x.pe are used)")->required();
  app.add_option("-o,--output", a->output, "Where to write the .torrent (default: INFOHASH.torrent)")->default_str("");
  app.add_flag("-f,--force", a->force, "Overwrite the output file if it exists");
  app.add_option("--peer", a->peers, "Ask this peer (HOST:PORT); repeatable")->default_str("");
  app.add_option("--timeout", a->timeout, "Give up (exit 1) after this many seconds without the metadata (default 120)")
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--port", a->port, "Port to listen on for peers (TCP and uTP; default 0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_flag("--no-dht", a->no_dht, "Do not look for peers on the DHT");
  app.add_option("--dht-bootstrap", a->dht_bootstrap,
                 "Join the DHT through this node (HOST:PORT; repeatable; default: the public routers)")
      ->default_str("");
  app.add_flag("--local", a->local, "Loopback and private addresses only (also SHOAL_LOCAL=1)");
  app.add_flag("--json", a->json, "Print one JSON line (event, info_hash, name, file, size) when written");
  app.add_flag("-v,--verbose", a->verbose, "Log peers, trackers and the DHT to stderr");
  return [a] { return run_fetch_metadata(*a); };
}

}  // namespace shoal::cli
