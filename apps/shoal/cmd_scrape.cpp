// `shoal scrape`: seeders, leechers and completed downloads of one torrent, per tracker
// (BEP 48 over HTTP(S), BEP 15 over UDP). One request per tracker, all at once, within one
// deadline.
#include <fmt/core.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <optional>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
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
  if (rows.empty()) return fail(a.target + ": lists no trackers to scrape (the DHT is not asked)");

  const std::vector<sha1_digest> hashes{hash};
  {
    asio::io_context io;
    for (auto& row : rows) {
      asio::co_spawn(
          io,
          [&io, &row, &hashes, &opt]() -> asio::awaitable<void> {
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
          },
          asio::detached);
    }
    io.run_for(deadline);
  }  // any request still out is dropped here
  for (auto& row : rows) {
    if (!row.done) row.error = fmt::format("no answer within {} s", a.timeout);
  }

  bool any = false;
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
      fmt::print("{}\n", boost::json::serialize(o));
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
  if (!any) fmt::print(stderr, "shoal: error: no tracker answered\n");
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
  app.footer(
      "Every tracker of the torrent is asked once (all tiers, in order), at the same time. The DHT is not asked "
      "(BEP 33). Exit code 0 if at least one tracker answered, 1 if none did.");
  return [a] { return run_scrape(*a); };
}

}  // namespace shoal::cli
