// `shoal download` and `shoal seed`: one torrent in a session, with a progress line. A thin
// client of the library: flags become settings and an add, then it waits on events.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "dht/node.hpp"
#include "live_display.hpp"
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
  std::vector<std::string> targets;  // .torrent files, their URLs, magnet links
  std::string input_file;            // -i: one source a line; "-": stdin
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

// One torrent of the run: a source as given, what was added for it, and how it ended.
struct job {
  std::size_t index = 0;  // 1-based, in the order the sources were given
  std::string source;
  torrent_params tp;
  std::optional<magnet_link> mag;
  std::string key;  // the info-hash in hex
  std::shared_ptr<torrent> t;
  torrent_id id = 0;
  std::string name;
  enum class outcome { running, completed, failed } end = outcome::running;
  int code = exit_ok;     // failed: the exit code it asks for
  std::string why;        // failed: what went wrong
  bool started = false;   // the start event (and any "resuming" line) printed
  bool finished = false;  // every wanted piece verified
  std::chrono::steady_clock::time_point started_at, finished_at;
  std::uint64_t last_have = 0;
  std::chrono::steady_clock::time_point last_progress;
  std::string last_tracker;
  std::uint32_t most_peers = 0;
};

// Exit code for a run: 0 when every torrent completed; interrupted (3) when Ctrl-C stopped
// any before it did; else the code the failed ones share, or 1 when they differ.
int run_exit_code(const std::vector<job>& jobs, bool interrupted) {
  bool all = true;
  std::optional<int> failed;
  bool mixed = false;
  for (const auto& j : jobs) {
    if (j.end == job::outcome::completed || (j.end == job::outcome::running && j.finished)) continue;
    all = false;
    if (j.end == job::outcome::failed) {
      if (failed && *failed != j.code) mixed = true;
      failed = j.code;
    }
  }
  if (all) return exit_ok;
  if (interrupted) return exit_interrupted;
  if (!failed) return exit_interrupted;
  return mixed ? exit_error : *failed;
}

double ratio_of(const torrent_status& s) {
  return static_cast<double>(s.total_uploaded) / static_cast<double>(std::max<std::uint64_t>(s.total_wanted, 1));
}

std::string rate(double bytes_per_s) {
  return human_size(static_cast<std::uint64_t>(std::max(0.0, bytes_per_s))) + "/s";
}

// The fields of a torrent's live line, most useful first to keep (drop: higher goes first).
std::vector<line_field> line_fields(const job& j, const torrent_status& s, const transfer_args& a) {
  std::vector<line_field> f;
  if (j.end == job::outcome::failed) {
    f.push_back({"failed: " + printable(j.why), 0});
    return f;
  }
  if (j.end == job::outcome::completed) {
    f.push_back({"done", 0});
    f.push_back({human_size(s.total_wanted), 1});
    f.push_back({fmt::format("uploaded {}", human_size(s.uploaded)), 2});
    return f;
  }
  switch (s.state) {
    case torrent_state::checking:
      f.push_back({fmt::format("checking {:.1f}%", s.check_progress * 100), 0});
      return f;
    case torrent_state::fetching_metadata:
      f.push_back({"fetching metadata", 0});
      f.push_back({fmt::format("peers {}", s.peers), 1});
      return f;
    case torrent_state::seeding: {
      f.push_back({"seeding", 0});
      f.push_back({"up " + rate(s.upload_rate), 0});
      f.push_back({"uploaded " + human_size(s.total_uploaded), 2});
      std::string ratio = fmt::format("ratio {:.2f}", ratio_of(s));
      if (!a.seed_mode && a.seed_time < 0) ratio += fmt::format("/{:.2f}", a.seed_ratio);
      f.push_back({ratio, 1});
      if (!a.seed_mode && a.seed_time >= 0)
        f.push_back({fmt::format("time {}/{}", format_eta(static_cast<double>(s.seeding_seconds)),
                                 format_eta(static_cast<double>(a.seed_time))),
                     3});
      f.push_back({fmt::format("peers {}", s.peers), 4});
      return f;
    }
    case torrent_state::downloading: {
      const double frac =
          s.total_wanted ? static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 1.0;
      const double eta =
          s.download_rate > 0 ? static_cast<double>(s.total_wanted - s.have_wanted) / s.download_rate : -1;
      constexpr int bar_width = 20;
      const int filled = std::clamp(static_cast<int>(frac * bar_width), 0, bar_width);
      f.push_back({fmt::format("downloading {:5.1f}%", frac * 100), 0});
      f.push_back({"[" + std::string(static_cast<std::size_t>(filled), '#') +
                       std::string(static_cast<std::size_t>(bar_width - filled), '.') + "]",
                   7});
      f.push_back({human_size(s.have_wanted) + " / " + human_size(s.total_wanted), 3});
      f.push_back({"down " + rate(s.download_rate), 1});
      f.push_back({"up " + rate(s.upload_rate), 5});
      f.push_back({fmt::format("peers {}", s.peers), 4});
      f.push_back({"ETA " + format_eta(eta), 6});
      return f;
    }
    default:
      f.push_back({std::string(state_name(s.state)), 0});
      if (!s.error.empty()) f.push_back({printable(s.error), 1});
      return f;
  }
}

// One line for many torrents: how many are where, and the sums.
std::string aggregate_line(const std::vector<job>& jobs, const std::vector<torrent_status>& st, std::size_t cols) {
  std::size_t done = 0, down = 0, seed = 0, failed = 0, other = 0;
  std::uint64_t have = 0, total = 0;
  double dr = 0, ur = 0;
  std::uint32_t peers = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& s = st[i];
    if (jobs[i].end == job::outcome::failed) {
      ++failed;
      continue;
    }
    if (jobs[i].end == job::outcome::completed) {
      ++done;
    } else if (s.state == torrent_state::downloading) {
      ++down;
    } else if (s.state == torrent_state::seeding) {
      ++seed;
    } else {
      ++other;
    }
    have += s.have_wanted;
    total += s.total_wanted;
    dr += s.download_rate;
    ur += s.upload_rate;
    peers += s.peers;
  }
  std::vector<line_field> f;
  f.push_back(
      {fmt::format("{:.1f}%", total ? 100.0 * static_cast<double>(have) / static_cast<double>(total) : 0.0), 0});
  f.push_back(
      {fmt::format("{} done, {} downloading, {} seeding, {} waiting, {} failed", done, down, seed, other, failed), 0});
  f.push_back({human_size(have) + " / " + human_size(total), 3});
  f.push_back({"down " + rate(dr), 1});
  f.push_back({"up " + rate(ur), 2});
  f.push_back({fmt::format("peers {}", peers), 4});
  return fit_line(fmt::format("{} torrents:", jobs.size()), f, cols);
}

// Files (pad files and empty ones aside) with a piece not verified: what `seed` lacks.
std::size_t incomplete_files(torrent& t) {
  const auto& fs = t.files();
  const auto& have = t.picker().have_bits();
  std::size_t n = 0;
  for (std::uint32_t f = 0; f < fs.files().size(); ++f) {
    const auto& fe = fs.files()[f];
    if (fe.pad || fe.size == 0) continue;
    auto [lo, hi] = fs.file_pieces(f);
    for (std::uint32_t p = lo; p < hi; ++p) {
      if (!have.get(p)) {
        ++n;
        break;
      }
    }
  }
  return n;
}

// The sources of a run: the arguments, then -i FILE's lines (`-` reads stdin; blank lines
// and lines starting with # skipped), at most max_sources.
constexpr std::size_t max_sources = 1000;

result<std::vector<std::string>> gather_sources(const transfer_args& a) {
  std::vector<std::string> out = a.targets;
  if (!a.input_file.empty()) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (a.input_file != "-") {
      file.open(a.input_file);
      if (!file) {
        return error{errc::io, "-i " + a.input_file + ": " + std::strerror(errno), no_offset};
      }
      in = &file;
    }
    std::string line;
    while (std::getline(*in, line)) {
      const auto b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos || line[b] == '#') continue;
      const auto e = line.find_last_not_of(" \t\r");
      out.push_back(line.substr(b, e - b + 1));
      if (out.size() > max_sources) break;
    }
  }
  if (out.size() > max_sources) {
    return error{errc::invalid_argument, fmt::format("more than {} torrents in one run", max_sources), no_offset};
  }
  return out;
}

std::string clock_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

void print_json(const boost::json::object& o) {
  fmt::print("{}\n", plain_json(o));
  std::fflush(stdout);
}

int run_transfer(const transfer_args& in) {
  transfer_args a = in;
  const char* cmd = a.seed_mode ? "seed" : "download";
  if (!a.proxy_url.empty()) {
    auto px = net::parse_proxy_url(a.proxy_url);
    if (!px) return usage_error(cmd, "--" + px.err().message());
    a.proxy = *px;
  }
  auto sources = gather_sources(a);
  if (!sources) {
    return sources.err().code == errc::io ? fail(sources.err().message()) : usage_error(cmd, sources.err().message());
  }
  if (sources->empty()) {
    return usage_error(cmd, a.input_file.empty() ? "no torrent given (a .torrent file, its URL or a magnet link)"
                                                 : "-i " + a.input_file + " lists no torrent");
  }
  if (sources->size() > 1 && !a.select.empty()) {
    return usage_error(cmd, "--select-file numbers the files of one torrent: give one torrent with it, not " +
                                std::to_string(sources->size()));
  }
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  live_display display(tty && !a.json_progress);
  asio::io_context io;
  std::function<void(const std::string&)> log;
  if (a.verbose) {
    log = [&display](const std::string& line) {
      display.message(fmt::format("[{}] {}", clock_now(), printable(line)));
    };
  }

  // What to add per source: a magnet link (the session fetches its metadata), or .torrent
  // bytes from a file or an http(s):// URL. With several sources one that cannot be read
  // fails alone; the others still run.
  std::vector<job> jobs;
  const bool several = sources->size() > 1;
  std::map<std::string, std::size_t> seen;  // info-hash -> the job that has it
  for (const auto& src : *sources) {
    job j;
    j.index = jobs.size() + 1;
    j.source = src;
    j.name = src;
    auto failed = [&](const std::string& why) {
      j.end = job::outcome::failed;
      j.code = exit_error;
      j.why = why;
      fmt::print(stderr, "shoal: error: {}\n", printable(why));
    };
    if (is_magnet(src)) {
      auto m = parse_magnet(src);
      if (!m) {
        if (!several) return fail(m.err().message());
        failed(src + ": " + m.err().message());
      } else {
        j.mag = std::move(m).value();
        j.key = j.mag->info_hash_v1 ? to_hex(as_view(*j.mag->info_hash_v1)) : to_hex(as_view(*j.mag->info_hash_v2));
        j.name = j.mag->name.empty() ? j.key : j.mag->name;
      }
    } else {
      // A file, or a .torrent by URL (fetched once, at most max_torrent_size bytes, certificates verified).
      fetch_options fetch;
      fetch.proxy = a.proxy;
      fetch.bind = a.bind;
      fetch.local = a.local || env_local();
      result<metainfo> loaded = load_torrent(src, fetch);
      if (!loaded) {
        if (!several) return fail(src + ": " + loaded.err().message());
        failed(src + ": " + loaded.err().message());
      } else {
        j.tp.info = std::move(loaded).value();
        for (const auto& w : j.tp.info.warnings)
          warn(src + ": " + w);
        j.key = j.tp.info.info_hash_v1 ? to_hex(as_view(*j.tp.info.info_hash_v1))
                                       : to_hex(as_view(*j.tp.info.info_hash_v2));
        j.name = j.tp.info.name;
        auto prio = priorities_for(j.tp.info, a.select, {});
        if (!prio) return usage_error(cmd, prio.err().message());
        j.tp.file_priorities = std::move(prio).value();
      }
    }
    if (!j.key.empty()) {
      if (auto it = seen.find(j.key); it != seen.end()) {
        warn(fmt::format("{} is the same torrent as {}: taken once", src, jobs[it->second].source));
        continue;
      }
      seen[j.key] = jobs.size();
    }
    jobs.push_back(std::move(j));
  }

  bool any_dht = false;
  for (const auto& j : jobs) {
    if (j.end == job::outcome::running && (j.mag || !j.tp.info.is_private)) any_dht = true;
  }
  session_settings st;
  st.listen_port = static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  // LSD multicasts on the LAN: under --local only inside a test's network namespace.
  st.lsd = !a.no_lsd && (!st.local || lsd::in_network_namespace());
  // BEP 27: a private torrent gets its peers from its trackers only: no DHT node for a run
  // of private torrents only.
  st.dht = !a.no_dht && any_dht;
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

  tcp::resolver resolver(io);
  std::vector<tcp::endpoint> given;
  for (const auto& p : a.peers) {
    auto ep = resolve_peer(resolver, p);
    if (!ep) return usage_error(cmd, "--" + ep.err().message());
    given.push_back(*ep);
  }
  for (auto& j : jobs) {
    if (j.end != job::outcome::running) continue;
    auto& tp = j.tp;
    tp.magnet = j.mag;
    tp.save_path = a.dir;
    tp.resume_file = fs::path(a.dir) / ".shoal" / (j.key + ".resume");
    if (j.mag) {
      tp.metadata_file = fs::path(a.dir) / ".shoal" / (j.key + ".torrent");
      tp.metadata_timeout = std::chrono::seconds(a.stop_timeout > 0 ? a.stop_timeout : 120);
    }
    tp.force_check = a.check;
    tp.skip_check = a.skip_check;
    tp.seed_only = a.seed_mode;  // `seed` never downloads: it seeds what it has
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
    tp.peers = given;
    if (j.mag) {
      for (const auto& p : j.mag->peers) {
        auto ep = resolve_peer(resolver, p);
        if (!ep) {
          if (!several) return fail("x.pe " + ep.err().message());
          warn(j.source + ": x.pe " + ep.err().message());
          continue;
        }
        tp.peers.push_back(*ep);
      }
    }
    // BEP 19: the torrent's url-list (a magnet link's `ws`), then --web-seed; none with --no-web-seeds.
    if (a.no_web_seeds) {
      tp.web_seeds.emplace();
    } else if (!a.web_seeds.empty()) {
      tp.web_seeds = j.mag ? j.mag->web_seeds : tp.info.web_seeds;
      tp.web_seeds->insert(tp.web_seeds->end(), a.web_seeds.begin(), a.web_seeds.end());
    }
    // After every argument was read (an argument error says so first, with exit 2).
    if (a.seed_mode && !j.mag) {
      if (auto why = seed_data_problem(tp.info, a.dir, a.skip_check)) {
        if (!several) return fail(*why);
        fmt::print(stderr, "shoal: error: {}\n", printable(*why));
        j.end = job::outcome::failed;
        j.code = exit_error;
        j.why = *why;
      }
    }
  }
  std::error_code dec;
  fs::create_directories(a.dir, dec);
  if (dec) return fail(a.dir + ": cannot create the download folder: " + dec.message());
  if (::access(a.dir.c_str(), W_OK) != 0 && !a.seed_mode) {
    return fail(a.dir + ": the download folder is not writable (choose another with -d)");
  }

  session ses(io, st);
  ses.on_warning = [&display](const std::string& w) { display.message("shoal: warning: " + printable(w)); };
  if (auto ec = ses.listen()) {
    if (a.json_progress) {
      print_json({{"event", "error"},
                  {"message", "cannot listen on port " + std::to_string(a.port) + ": " + ec.message()},
                  {"port", a.port}});
    }
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any free port)");
  }
  // The port in use, always: with --port 0 the system chose it.
  if (a.json_progress) {
    print_json({{"event", "listening"}, {"port", ses.port()}});
  } else {
    display.message(fmt::format("listening on port {}", ses.port()));
  }
  const bool dht_contacts = ses.dht_node() && ses.dht_node()->has_contacts();
  for (auto& j : jobs) {
    if (j.end != job::outcome::running || !j.mag) continue;
    if (j.tp.peers.empty() && j.mag->trackers.empty() && j.mag->exact_sources.empty() && !dht_contacts) {
      const std::string why =
          "the magnet link has no trackers, no exact source (xs) and no peers (x.pe), no --peer was given and the "
          "DHT is off or has no "
          "node to start from (--dht-bootstrap): nobody to ask for the metadata";
      if (!several) return fail(why);
      fmt::print(stderr, "shoal: error: {}: {}\n", printable(j.source), why);
      j.end = job::outcome::failed;
      j.code = exit_error;
      j.why = "no trackers, no peers and no DHT to ask for the metadata";
    }
  }
  net::port_mapper* mapper = ses.port_mapper();
  if (mapper && a.json_progress) {
    mapper->on_change([](const net::port_mapping_status& s) {
      auto o = mapping_json(s);
      o["event"] = "port_mapping";
      print_json(o);
    });
  }
  const auto started = std::chrono::steady_clock::now();
  std::map<torrent_id, std::size_t> by_id;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto& j = jobs[i];
    j.started_at = j.last_progress = started;
    if (j.end != job::outcome::running) continue;
    if (!j.mag && j.tp.info.tracker_tiers.empty() && j.tp.peers.empty() &&
        (j.tp.web_seeds ? j.tp.web_seeds->empty() : j.tp.info.web_seeds.empty())) {
      warn(j.name + ": the torrent lists no trackers and no --peer was given: waiting for peers to connect to port " +
           std::to_string(ses.port()));
    }
    if (j.mag && !a.json_progress) {
      display.message(fmt::format("fetching the metadata of {} from peers...", printable(j.name)));
    }
    j.t = ses.add_torrent(std::move(j.tp));
    j.id = j.t->id();
    by_id[j.id] = i;
  }

  auto json_head = [&](const job& j, const char* event) {
    boost::json::object o;
    o["event"] = event;
    o["torrent"] = j.index;
    o["name"] = j.name;
    return o;
  };
  // What a torrent starts from (resume data, or a check done), once.
  auto print_start = [&](job& j) {
    if (j.started) return;
    j.started = true;
    auto s0 = j.t->status(false);
    if (a.json_progress) {
      auto o = json_head(j, "start");
      o["state"] = std::string(state_name(s0.state));
      o["pieces"] = s0.pieces_have;
      o["num_pieces"] = s0.num_pieces;
      o["have_bytes"] = s0.have_wanted;
      o["total_bytes"] = s0.total_wanted;
      o["size"] = s0.total_size;
      o["port"] = ses.port();
      if (a.seed_mode) o["files_incomplete"] = incomplete_files(*j.t);
      print_json(o);
      return;
    }
    if (a.seed_mode) {
      if (s0.have_wanted < s0.total_size) {
        const auto n = incomplete_files(*j.t);
        display.message(fmt::format("seeding {:.1f}% of {}: {} file{} incomplete in {} (seed never downloads)",
                                    100.0 * static_cast<double>(s0.have_wanted) /
                                        static_cast<double>(std::max<std::uint64_t>(s0.total_size, 1)),
                                    printable(j.name), n, n == 1 ? "" : "s", a.dir));
      }
    } else if (s0.have_wanted > 0 && s0.have_wanted < s0.total_wanted) {
      display.message(fmt::format("{}: resuming: {:.1f}% verified", printable(j.name),
                                  100.0 * static_cast<double>(s0.have_wanted) / static_cast<double>(s0.total_wanted)));
    }
  };

  bool stopping = false;
  bool interrupted = false;
  auto shutdown = [&] {
    if (stopping) return;
    stopping = true;
    ses.stop([&io] { io.stop(); });
  };
  // The run ends when every torrent has: `download` at its goal, or failed.
  auto maybe_done = [&] {
    for (const auto& j : jobs) {
      if (j.end == job::outcome::running) return;
    }
    shutdown();
  };
  auto fail_job = [&](job& j, int code, const std::string& why) {
    j.end = job::outcome::failed;
    j.code = code;
    j.why = why;
    if (a.json_progress) {
      auto o = json_head(j, "error");
      o["message"] = why;
      o["exit_code"] = code;
      print_json(o);
    }
  };

  // Events: what the session says happened, read as soon as it is queued.
  bool drain_posted = false;
  bool usage_failed = false;
  std::function<void()> drain = [&] {
    drain_posted = false;
    for (auto& e : ses.events().pop()) {
      auto it = by_id.find(e.torrent);
      if (it == by_id.end() || stopping) continue;
      job& j = jobs[it->second];
      if (j.end == job::outcome::failed) continue;
      switch (e.kind) {
        case event_kind::metadata_received: {
          j.name = j.t->info().name;
          for (const auto& w : j.t->info().warnings)
            warn(j.name + ": " + w);
          if (!a.select.empty() || !j.mag->select_only.empty()) {
            auto prio = priorities_for(j.t->info(), a.select, j.mag->select_only);
            if (!prio) {
              display.finish();
              usage_error(cmd, prio.err().message());
              usage_failed = true;
              shutdown();
              return;
            }
            j.t->set_file_priorities(std::move(prio).value());
          }
          if (j.t->info().is_private && ses.dht_node() && jobs.size() == 1) ses.dht_node()->stop();  // BEP 27
          break;
        }
        case event_kind::state_changed: {
          const auto s = static_cast<torrent_state>(e.state);
          if (s == torrent_state::downloading || s == torrent_state::seeding || s == torrent_state::paused)
            print_start(j);
          break;
        }
        case event_kind::torrent_finished:
          if (!j.finished) {
            j.finished = true;
            j.finished_at = std::chrono::steady_clock::now();
            if (a.json_progress) {
              auto o = json_head(j, "done");
              o["total_bytes"] = j.t->status(false).total_wanted;
              o["seconds"] = std::chrono::duration<double>(j.finished_at - j.started_at).count();
              print_json(o);
            }
          }
          break;
        case event_kind::goal_reached:
          if (!a.seed_mode) {
            j.end = job::outcome::completed;
            maybe_done();
          }
          break;
        case event_kind::error: {
          const auto s = j.t->status(false);
          if (s.state != torrent_state::error) {
            if (a.verbose) log(e.message);  // not fatal (a resume write that failed)
            break;
          }
          display.message(fmt::format("shoal: error: {}: {}", printable(j.name), printable(e.message)));
          // Nobody gave the metadata in time: the same as a download that got no data.
          fail_job(j, s.error_type == error_kind::metadata ? exit_stalled : exit_error, e.message);
          maybe_done();
          break;
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

  // The live view: a line per torrent, or one for them all when they would not fit.
  std::vector<torrent_status> statuses(jobs.size());
  auto redraw = [&] {
    if (!display.tty()) return;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].t) statuses[i] = jobs[i].t->status(false);
    }
    std::vector<std::string> lines;
    const std::size_t cols = display.columns();
    if (jobs.size() > 8 || jobs.size() + 2 > display.rows()) {
      lines.push_back(aggregate_line(jobs, statuses, cols));
    } else {
      for (std::size_t i = 0; i < jobs.size(); ++i)
        lines.push_back(fit_line(printable(jobs[i].name), line_fields(jobs[i], statuses[i], a), cols));
    }
    display.draw(lines);
  };

  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int) {
    if (ec) return;
    if (stopping) {
      // A second Ctrl-C: leave at once. Resume data only ever lists synced pieces.
      fmt::print(stderr, "shoal: stopped without waiting\n");
      std::_Exit(exit_interrupted);
    }
    display.message("shoal: stopping (saving resume data); Ctrl-C again to quit at once...");
    interrupted = true;
    shutdown();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  // A resized terminal: the lines are fitted again and redrawn at once.
  asio::signal_set winch(io, SIGWINCH);
  std::function<void(boost::system::error_code, int)> on_winch = [&](boost::system::error_code ec, int) {
    if (ec) return;
    display.refresh_size();
    if (!stopping) redraw();
    winch.async_wait(on_winch);
  };
  if (display.tty()) winch.async_wait(on_winch);

  // Progress: the live lines on a terminal, a plain line every 5 s otherwise, or JSON lines.
  asio::steady_timer progress(io);
  int ticks = 0;
  std::function<void()> report = [&] {
    progress.expires_after(std::chrono::milliseconds(500));
    progress.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      ++ticks;
      const auto now = std::chrono::steady_clock::now();
      for (auto& j : jobs) {
        if (!j.t || j.end == job::outcome::failed) continue;
        const auto s = j.t->status();
        j.most_peers = std::max(j.most_peers, s.peers);
        // Tracker news goes to stderr once per change (errors matter to a user waiting for peers).
        if (s.tracker_message != j.last_tracker) {
          j.last_tracker = s.tracker_message;
          if (!j.last_tracker.empty() && !a.json_progress) {
            display.message((several ? printable(j.name) + ": " : std::string()) +
                            "tracker: " + printable(j.last_tracker));
          }
        }
        if (s.state == torrent_state::fetching_metadata) continue;
        if (a.json_progress && ticks % 2 == 0) {
          auto o = json_head(j, "progress");
          o["state"] = std::string(state_name(s.state));
          o["progress"] =
              s.total_wanted ? static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 1.0;
          o["pieces"] = s.pieces_have;
          o["have_bytes"] = s.have_wanted;
          o["total_bytes"] = s.total_wanted;
          o["download_rate"] = static_cast<std::uint64_t>(std::max(0.0, s.download_rate));
          o["upload_rate"] = static_cast<std::uint64_t>(std::max(0.0, s.upload_rate));
          o["peers"] = s.peers;
          o["seeds"] = s.seeds;
          o["web_seeds"] = s.web_seeds;
          o["downloaded"] = s.downloaded;
          o["web_seed_downloaded"] = s.web_seed_downloaded;
          o["uploaded"] = s.uploaded;
          o["ratio"] = ratio_of(s);
          o["hash_failures"] = s.hash_failures;
          if (mapper) o["port_mapping"] = mapping_json(mapper->status());
          print_json(o);
        } else if (!display.tty() && !a.json_progress && ticks % 10 == 0 && j.end == job::outcome::running) {
          const double frac =
              s.total_wanted ? static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 1.0;
          fmt::print(stderr, "{}{} {:.1f}% {} / {} down {} up {} peers {}{}\n",
                     several ? printable(j.name) + ": " : std::string(), state_name(s.state), frac * 100,
                     human_size(s.have_wanted), human_size(s.total_wanted), rate(s.download_rate), rate(s.upload_rate),
                     s.peers,
                     s.state == torrent_state::seeding
                         ? fmt::format(" uploaded {} ratio {:.2f}", human_size(s.total_uploaded), ratio_of(s))
                         : std::string());
        }
        if (j.end != job::outcome::running) continue;
        if (s.have_wanted != j.last_have || s.state != torrent_state::downloading) {
          j.last_have = s.have_wanted;
          j.last_progress = now;
        } else if (a.stop_timeout > 0 && !a.seed_mode &&
                   now - j.last_progress >= std::chrono::seconds(a.stop_timeout)) {
          const std::string why = fmt::format(
              "no data for {} s ({}{}); giving up", a.stop_timeout,
              s.peers                     ? fmt::format("{} peers connected, none sending", s.peers)
              : s.tracker_message.empty() ? std::string("no peers")
                                          : "no peers; last tracker reply: " + printable(s.tracker_message),
              s.web_seeds ? fmt::format("; {} web seeds sending nothing (-v says why)", s.web_seeds) : std::string());
          display.message(fmt::format("shoal: error: {}: {}", printable(j.name), why));
          fail_job(j, exit_stalled, why);
          j.t->pause();
        }
      }
      redraw();
      maybe_done();
      if (!stopping) report();
    });
  };
  report();
  io.run();
  display.finish();
  if (usage_failed) return exit_usage;

  const int exit_code = run_exit_code(jobs, interrupted);
  const auto end = std::chrono::steady_clock::now();
  std::size_t completed = 0;
  for (auto& j : jobs) {
    const bool ok = j.end == job::outcome::completed || (j.end == job::outcome::running && j.finished);
    completed += ok ? 1 : 0;
  }
  for (auto& j : jobs) {
    torrent_status s;
    if (j.t) s = j.t->status();
    const double secs = std::chrono::duration<double>((j.finished ? j.finished_at : end) - j.started_at).count();
    const bool complete = s.have_wanted == s.total_wanted && s.num_pieces > 0;
    if (a.json_progress) {
      auto o = json_head(j, "summary");
      o["source"] = j.source;
      o["complete"] = complete;
      o["have_bytes"] = s.have_wanted;
      o["total_bytes"] = s.total_wanted;
      o["size"] = s.total_size;
      o["downloaded"] = s.downloaded;
      o["web_seeds"] = s.web_seeds;
      o["web_seed_downloaded"] = s.web_seed_downloaded;
      o["uploaded"] = s.uploaded;
      o["ratio"] = ratio_of(s);
      o["wasted"] = s.wasted;
      o["hash_failures"] = s.hash_failures;
      o["banned_peers"] = s.banned;
      o["seconds"] = secs;
      o["exit_code"] = j.end == job::outcome::failed ? j.code : complete ? exit_ok : exit_code;
      o["error"] = j.end == job::outcome::failed         ? j.why
                   : s.error_type == error_kind::tracker ? std::string()
                                                         : s.error;
      o["tracker"] = s.tracker_message;
      if (mapper) o["port_mapping"] = mapping_json(mapper->status());
      print_json(o);
    } else if (a.seed_mode && j.t) {
      const double up_secs = std::chrono::duration<double>(end - j.started_at).count();
      fmt::print(stderr, "{}: seeded {} of {}: uploaded {}, ratio {:.2f}, for {}, {} peers at most\n",
                 printable(j.name), human_size(s.have_wanted), human_size(s.total_size), human_size(s.uploaded),
                 ratio_of(s), format_eta(up_secs), j.most_peers);
    } else if (!a.seed_mode && !several && s.num_pieces > 0) {
      fmt::print(
          stderr, "{}: {} of {} ({:.1f}%), downloaded {} in {:.1f} s ({}/s){}, uploaded {}{}\n", printable(j.name),
          human_size(s.have_wanted), human_size(s.total_wanted),
          s.total_wanted ? 100.0 * static_cast<double>(s.have_wanted) / static_cast<double>(s.total_wanted) : 100.0,
          human_size(s.downloaded), secs,
          human_size(static_cast<std::uint64_t>(secs > 0 ? static_cast<double>(s.downloaded) / secs : 0)),
          s.web_seed_downloaded ? fmt::format(" ({} from web seeds)", human_size(s.web_seed_downloaded))
                                : std::string(),
          human_size(s.uploaded),
          s.hash_failures
              ? fmt::format(", {} pieces failed their hash check, {} peers banned", s.hash_failures, s.banned)
              : std::string());
    }
    if (!several && !a.json_progress && j.end == job::outcome::failed && j.code == exit_stalled && j.t) {
      // Said when it happened; the summary line above has the numbers.
    }
  }
  if (several && !a.json_progress && !a.seed_mode) {
    // The table: a row per torrent, the name cut to what the widest terminal line allows.
    const std::size_t name_w = std::clamp<std::size_t>(display.columns() > 60 ? display.columns() - 50 : 10, 10, 60);
    fmt::print(stderr, "{:<{}}  {:>10}  {:<12}  {:>8}  {:>11}\n", "NAME", name_w, "SIZE", "STATE", "TIME", "AVG RATE");
    for (auto& j : jobs) {
      torrent_status s;
      if (j.t) s = j.t->status(false);
      const double secs = std::chrono::duration<double>((j.finished ? j.finished_at : end) - j.started_at).count();
      const bool ok = j.end == job::outcome::completed || (j.end == job::outcome::running && j.finished);
      const std::string state =
          ok ? "complete"
          : j.end == job::outcome::failed
              ? (j.code == exit_stalled ? "stalled" : "failed")
              : fmt::format("{:.1f}%", s.total_wanted ? 100.0 * static_cast<double>(s.have_wanted) /
                                                            static_cast<double>(s.total_wanted)
                                                      : 0.0);
      const std::string nm = abbreviate(printable(j.name), name_w);
      fmt::print(stderr, "{}{}  {:>10}  {:<12}  {:>8}  {:>11}\n", nm,
                 std::string(name_w - std::min(name_w, display_width(nm)), ' '), human_size(s.total_wanted), state,
                 format_eta(secs), rate(secs > 0 ? static_cast<double>(s.downloaded) / secs : 0));
    }
    fmt::print(stderr, "{} of {} torrents completed", completed, jobs.size());
    std::string failed_list;
    for (const auto& j : jobs) {
      const bool ok = j.end == job::outcome::completed || (j.end == job::outcome::running && j.finished);
      if (ok) continue;
      failed_list += fmt::format("\n  {}: {}", printable(j.source),
                                 j.end == job::outcome::failed ? printable(j.why) : std::string("interrupted"));
    }
    fmt::print(stderr, "{}\n", failed_list.empty() ? "" : "; not completed:" + failed_list);
  }
  if (a.json_progress) {
    print_json({{"event", "exit"}, {"exit_code", exit_code}, {"completed", completed}, {"torrents", jobs.size()}});
  }
  return exit_code;
}

void add_common(CLI::App& app, transfer_args& a) {
  app.add_option("-d,--dir", a.dir, "Folder the torrent's files are in");
  app.add_option("--port", a.port, "TCP port to listen on (0: any free port)")->check(CLI::Range(0, 65535));
  // One value per flag (repeat the flag): the torrents after it stay torrents.
  app.add_option("--peer", a.peers, "Connect to this peer (HOST:PORT); repeatable")
      ->default_str("")
      ->allow_extra_args(false);
  app.add_flag("--local", a.local, "Keep all traffic on loopback and the given addresses (also SHOAL_LOCAL=1)");
  app.add_flag("--no-dht", a.no_dht, "Do not use the DHT");
  app.add_flag("--no-lsd", a.no_lsd, "Do not look for peers on the local network (BEP 14 multicast)");
  app.add_option("--dht-bootstrap", a.dht_bootstrap,
                 "Join the DHT through this node (HOST:PORT; repeatable; default: the public routers)")
      ->default_str("")
      ->allow_extra_args(false);
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
  app.add_flag("--json-progress", a.json_progress,
               "Print progress as JSON lines on stdout, each with an \"event\" field (docs/JSON.md)");
  app.add_flag("-v,--verbose", a.verbose,
               "Log peer connections, disconnections (with the reason) and tracker replies, each line with the time "
               "and the torrent's name");
}

}  // namespace

runner add_download(CLI::App& app) {
  auto a = std::make_shared<transfer_args>();
  app.add_option("TORRENT", a->targets,
                 "Torrents to download in one session: .torrent files, their http(s):// URLs, magnet links")
      ->default_str("");
  app.add_option("-i,--input-file", a->input_file,
                 "Also download the torrents listed in this file, one a line (# comments and blank lines skipped; "
                 "- reads stdin)");
  add_common(app, *a);
  app.add_option("--seed-ratio", a->seed_ratio,
                 "After completing, seed until uploaded/size reaches this (0: exit at once)")
      ->check(non_negative());
  app.add_option("--seed-time", a->seed_time,
                 "After completing, seed this many seconds instead of to a ratio (0: exit at once)")
      ->check(non_negative())
      ->default_str("");
  app.add_option("--select-file", a->select,
                 "Download only these files (numbered as `shoal info` shows them, from 1: e.g. 1,3-5; one torrent "
                 "only)");
  app.add_flag("--sequential", a->sequential, "Download pieces in order");
  app.add_option("--web-seed", a->web_seeds,
                 "Also download from this HTTP(S) web seed (BEP 19; besides the torrent's url-list); repeatable")
      ->default_str("")
      ->allow_extra_args(false);
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
  app.add_option("TORRENT", a->targets, "The .torrent files to seed (seed never downloads: it seeds what it has)")
      ->required();
  add_common(app, *a);
  app.add_flag("--skip-check", a->skip_check, "Trust that the data is complete instead of hashing it");
  return [a] { return run_transfer(*a); };
}

}  // namespace shoal::cli
