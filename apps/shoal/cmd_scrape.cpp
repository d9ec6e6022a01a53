// `shoal scrape`: seeders, leechers and completed downloads of one torrent, per tracker
// (BEP 48 over HTTP(S), BEP 15 over UDP), and the DHT's count of seeds and downloaders
// (BEP 33: a lookup whose closest nodes return bloom filters of the addresses they hold).
// One request per tracker and the DHT lookup, all at once, within one deadline.
#include <fmt/core.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <optional>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "dht/krpc.hpp"
#include "dht/node.hpp"
#include "live_display.hpp"
#include "net/proxy_codec.hpp"
#include "source.hpp"
#include "tracker/announce.hpp"
#include "tracker/client.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;

struct scrape_args {
  std::string target;
  bool json = false;
  bool local = false;
  std::string proxy_url;
  std::string bind;
  double timeout = 15;
  bool no_dht = false;
  std::vector<std::string> dht_bootstrap;
};

// What the DHT said (BEP 33): estimates, as the filters count distinct addresses.
struct dht_row {
  bool asked = false;
  bool done = false;
  std::size_t nodes = 0;  // nodes that hold the torrent and returned filters
  double seeders = 0, leechers = 0;
  std::string error;
};

// One tracker of the torrent and what it said.
struct tracker_row {
  std::string url;
  std::size_t tier = 0;  // from 1
  bool done = false;
  std::optional<tracker::scrape_entry> entry;  // answered and listed the torrent
  std::string error;                           // empty: it answered
};

// The hash trackers know a torrent by: v1's info-hash, or a v2-only torrent's SHA-256
// truncated to 20 bytes (as the session announces it).
sha1_digest wire_hash(const std::optional<sha1_digest>& v1, const std::optional<sha256_digest>& v2) {
  if (v1) return *v1;
  sha1_digest d{};
  std::copy_n(v2->begin(), d.size(), d.begin());
  return d;
}

int run_scrape(const scrape_args& a) {
  tracker::client_options opt;
  opt.local = a.local || env_local();
  if (!a.proxy_url.empty()) {
    auto px = net::parse_proxy_url(a.proxy_url);
    if (!px) return usage_error("scrape", "--" + px.err().message());
    opt.proxy = *px;
  }
  if (!a.bind.empty()) {
    boost::system::error_code bec;
    (void)asio::ip::make_address(a.bind, bec);
    if (bec) return usage_error("scrape", "--bind '" + a.bind + "' is not an IP address");
    opt.bind_address = a.bind;
  }
  const auto deadline = std::chrono::milliseconds(static_cast<std::int64_t>(a.timeout * 1000));
  // Everything within the deadline: HTTP(S) gets all of it, UDP two tries (a third, then
  // two thirds: BEP 15's doubling).
  opt.http_timeout = std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(deadline));
  opt.udp_attempts = 2;
  opt.udp_base_timeout = std::max(std::chrono::milliseconds(100), deadline / 3);

  std::vector<tracker_row> rows;
  auto add_row = [&rows](const std::string& url, std::size_t tier) {
    for (const auto& r : rows) {
      if (r.url == url) return;  // each tracker once, at its first place
    }
    rows.push_back(tracker_row{url, tier, false, std::nullopt, {}});
  };
  sha1_digest hash{};
  if (is_magnet(a.target)) {
    auto m = parse_magnet(a.target);
    if (!m) return fail(m.err().message());
    hash = wire_hash(m->info_hash_v1, m->info_hash_v2);
    for (std::size_t i = 0; i < m->trackers.size(); ++i)
      add_row(m->trackers[i], i + 1);  // a magnet's trackers: a tier each
  } else {
    fetch_options fetch;
    fetch.proxy = opt.proxy;
    fetch.bind = a.bind;
    fetch.local = opt.local;
    auto loaded = load_torrent(a.target, fetch);
    if (!loaded) return fail(a.target + ": " + loaded.err().message());
    for (const auto& w : loaded->warnings)
      warn(a.target + ": " + w);
    hash = wire_hash(loaded->info_hash_v1, loaded->info_hash_v2);
    for (std::size_t i = 0; i < loaded->tracker_tiers.size(); ++i) {
      for (const auto& url : loaded->tracker_tiers[i])
        add_row(url, i + 1);
    }
  }
  // The DHT: asked unless --no-dht; with --local only through the --dht-bootstrap nodes given.
  dht_row dht_result;
  dht_result.asked = !a.no_dht && (!opt.local || !a.dht_bootstrap.empty());
  if (rows.empty() && !dht_result.asked) {
    return fail(a.target + ": lists no trackers to scrape" +
                (a.no_dht ? std::string(", and --no-dht leaves the DHT out")
                          : std::string(", and with --local the DHT needs --dht-bootstrap HOST:PORT")));
  }

  const std::vector<sha1_digest> hashes{hash};
  {
    asio::io_context io;
    // Everything done: the DHT node's timers would keep run_for() going to the deadline.
    std::size_t outstanding = rows.size() + (dht_result.asked ? 1 : 0);
    std::shared_ptr<dht::node> node;
    auto finished = [&io, &outstanding, &node] {
      if (--outstanding > 0) return;
      if (node) node->stop();
      io.stop();
    };
    if (dht_result.asked) {
      dht::settings ds;
      ds.listen_address = a.bind.empty() ? "0.0.0.0" : a.bind;
      ds.port = 0;
      ds.bootstrap = a.dht_bootstrap;
      ds.local = opt.local;
      // Not read-only (BEP 43): a node that has heard us answer its ping sends the filters,
      // which it leaves out of a reply to a stranger (no amplification).
      node = std::make_shared<dht::node>(io, ds);
      if (auto ec = node->start()) {
        dht_result.error = "cannot open a UDP socket for the DHT: " + ec.message();
        dht_result.done = true;
        node.reset();
        --outstanding;
      } else {
        const auto ready_wait = std::min<std::chrono::milliseconds>(deadline / 2, std::chrono::seconds(5));
        asio::co_spawn(
            io,
            [node, hash, ready_wait, &dht_result, finished]() -> asio::awaitable<void> {
              try {
                const bool ready = co_await node->wait_ready(ready_wait);
                if (!ready) {
                  dht_result.error = "no DHT node answered (is --dht-bootstrap right?)";
                } else {
                  const auto r = co_await node->scrape(hash);
                  dht_result.nodes = r.answered;
                  dht_result.seeders = dht::bloom_estimate(r.seeds);
                  dht_result.leechers = dht::bloom_estimate(r.peers);
                }
              } catch (const std::exception& e) {
                dht_result.error = e.what();
              }
              dht_result.done = true;
              finished();
            },
            asio::detached);
      }
    }
    for (auto& row : rows) {
      asio::co_spawn(
          io,
          [&io, &row, &hashes, &opt, finished]() -> asio::awaitable<void> {
            try {
              auto r = co_await tracker::scrape(io, row.url, hashes, opt);
              if (!r) {
                row.error = r.err().message();
              } else if (!r->empty()) {
                row.entry = r->front();
              }
            } catch (const std::exception& e) {  // out of descriptors for a socket, say
              row.error = e.what();
            }
            row.done = true;
            finished();
          },
          asio::detached);
    }
    if (outstanding > 0) io.run_for(deadline);
    if (node) node->stop();
  }  // any request still out is dropped here
  for (auto& row : rows) {
    if (!row.done) row.error = fmt::format("no answer within {} s", a.timeout);
  }
  if (dht_result.asked && !dht_result.done) dht_result.error = fmt::format("no lookup end within {} s", a.timeout);
  // Rounded: the filters give an estimate (exact for a few addresses).
  const auto dht_seeders = static_cast<std::uint64_t>(std::llround(dht_result.seeders));
  const auto dht_leechers = static_cast<std::uint64_t>(std::llround(dht_result.leechers));

  bool any = dht_result.asked && dht_result.error.empty();
  for (const auto& row : rows)
    any = any || row.error.empty();
  const std::string info_hash = to_hex(as_view(hash));
  if (a.json) {
    for (const auto& row : rows) {
      boost::json::object o;
      o["event"] = "scrape";
      o["info_hash"] = info_hash;
      o["tracker"] = tracker::redact_url(row.url);
      o["tier"] = row.tier;
      if (row.error.empty()) {
        o["listed"] = row.entry.has_value();
        o["seeders"] = row.entry ? row.entry->complete : 0;
        o["leechers"] = row.entry ? row.entry->incomplete : 0;
        o["completed"] = row.entry ? row.entry->downloaded : 0;
      } else {
        o["error"] = row.error;
      }
      fmt::print("{}\n", plain_json(o));
    }
    if (dht_result.asked) {
      boost::json::object o;
      o["event"] = "scrape";
      o["info_hash"] = info_hash;
      o["tracker"] = "dht";
      if (dht_result.error.empty()) {
        o["listed"] = dht_result.nodes > 0;
        o["nodes"] = dht_result.nodes;
        o["seeders"] = dht_seeders;
        o["leechers"] = dht_leechers;
      } else {
        o["error"] = dht_result.error;
      }
      fmt::print("{}\n", plain_json(o));
    }
    return any ? exit_ok : exit_error;
  }
  std::size_t width = std::string_view("TRACKER").size();
  std::vector<std::string> shown;
  for (const auto& row : rows) {
    shown.push_back(printable(tracker::redact_url(row.url)));
    width = std::max(width, shown.back().size());
  }
  fmt::print("{:<4}  {:<{}}  {:>8}  {:>8}  {:>9}\n", "TIER", "TRACKER", width, "SEEDERS", "LEECHERS", "COMPLETED");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (!row.error.empty()) {
      fmt::print("{:<4}  {:<{}}  error: {}\n", row.tier, shown[i], width, printable(row.error));
    } else if (!row.entry) {
      fmt::print("{:<4}  {:<{}}  {:>8}  {:>8}  {:>9}  (not listed by the tracker)\n", row.tier, shown[i], width, 0, 0,
                 0);
    } else {
      fmt::print("{:<4}  {:<{}}  {:>8}  {:>8}  {:>9}\n", row.tier, shown[i], width, row.entry->complete,
                 row.entry->incomplete, row.entry->downloaded);
    }
  }
  if (dht_result.asked) {
    const std::string name = "DHT";
    if (!dht_result.error.empty()) {
      fmt::print("{:<4}  {:<{}}  error: {}\n", "-", name, width, printable(dht_result.error));
    } else if (dht_result.nodes == 0) {
      fmt::print("{:<4}  {:<{}}  {:>8}  {:>8}  {:>9}  (no node holds it)\n", "-", name, width, 0, 0, "-");
    } else {
      fmt::print("{:<4}  {:<{}}  {:>8}  {:>8}  {:>9}  ({} node{}, BEP 33 estimate)\n", "-", name, width, dht_seeders,
                 dht_leechers, "-", dht_result.nodes, dht_result.nodes == 1 ? "" : "s");
    }
  }
  if (!any)
    fmt::print(stderr, "shoal: error: {}\n",
               dht_result.asked ? "neither a tracker nor the DHT answered" : "no tracker answered");
  return any ? exit_ok : exit_error;
}

}  // namespace

runner add_scrape(CLI::App& app) {
  auto a = std::make_shared<scrape_args>();
  app.add_option("TORRENT", a->target, "A .torrent file, its http(s):// URL, or a magnet link")->required();
  app.add_flag("--json", a->json,
               "Print one JSON line per tracker (\"event\": \"scrape\"; seeders, leechers, completed, or error)");
  app.add_option("--timeout", a->timeout, "Seconds to wait for all the trackers' answers")->check(positive());
  app.add_flag("--local", a->local,
               "Contact only loopback and private addresses, and look no name up (also SHOAL_LOCAL=1)");
  app.add_option("--proxy", a->proxy_url,
                 "Scrape HTTP(S) trackers through this proxy: socks5://[USER:PASS@]HOST:PORT or http://HOST:PORT "
                 "(UDP trackers: through SOCKS5 only)");
  app.add_option("--bind", a->bind, "Send the requests from this address (e.g. 192.168.1.5 or ::1)");
  app.add_flag("--no-dht", a->no_dht, "Ask only the trackers, not the DHT");
  app.add_option("--dht-bootstrap", a->dht_bootstrap, "Join the DHT through this node, HOST:PORT (repeatable)");
  app.footer(
      "Every tracker of the torrent is asked once (all tiers, in order), and the DHT (BEP 33: the nodes closest to "
      "the info-hash count the seeds and downloaders they hold, as estimates; completed downloads are not known "
      "there), all at the same time. With --local the DHT is asked only through --dht-bootstrap nodes. Exit code 0 "
      "if at least one tracker or the DHT answered, 1 if none did.");
  return [a] { return run_scrape(*a); };
}

}  // namespace shoal::cli
