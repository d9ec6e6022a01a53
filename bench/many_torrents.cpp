// 10,000 torrents in one session: how long until all are loaded (seeding, checks skipped)
// and have announced to a tracker, the peak RSS, the CPU used while idle, and how long a
// status of every torrent takes. Prints one JSON object.
//
// Usage: many_torrents [--torrents N] [--tracker URL] [--dir DIR] [--idle-seconds S]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "core/bencode.hpp"
#include "core/metainfo.hpp"
#include "session/session.hpp"

using namespace shoal;
using clk = std::chrono::steady_clock;

namespace {

long rss_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
  }
  return 0;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// A one-piece torrent of 16 KiB whose piece hash is random (its data is never read).
metainfo make(int i, const std::string& tracker, std::mt19937_64& rng) {
  bencode::dict info;
  info["name"] = "t" + std::to_string(i);
  info["piece length"] = 16384;
  info["length"] = 16384;
  std::string pieces(20, '\0');
  for (auto& c : pieces)
    c = static_cast<char>(rng());
  info["pieces"] = pieces;
  bencode::dict top;
  if (!tracker.empty()) top["announce"] = tracker;
  top["info"] = std::move(info);
  auto mi = parse_metainfo(bencode::encode(top));
  if (!mi) {
    std::cerr << mi.err().message() << "\n";
    std::exit(1);
  }
  return *mi;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 10000;
  std::string tracker;
  std::string dir = "/tmp/shoal-many";
  int idle_seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--torrents") n = std::stoi(argv[i + 1]);
    if (a == "--tracker") tracker = argv[i + 1];
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--idle-seconds") idle_seconds = std::stoi(argv[i + 1]);
  }
  std::mt19937_64 rng(1);
  const long rss_before = rss_kib("VmRSS:");

  asio::io_context io;
  session_settings st;
  st.listen_address = "127.0.0.1";
  st.listen_port = 0;
  st.local = true;
  st.transport = peer_transport::tcp;
  session ses(io, st);
  if (auto ec = ses.listen()) {
    std::cerr << "listen: " << ec.message() << "\n";
    return 1;
  }
  ses.start_thread();
  const auto t0 = clk::now();
  // As a daemon loads its torrents at start: read (here: made) and added in batches of
  // 500, each batch one trip to the network thread. The clock includes making them.
  for (int at = 0; at < n; at += 500) {
    std::vector<torrent_params> batch;
    for (int i = at; i < std::min(n, at + 500); ++i) {
      torrent_params p;
      p.info = make(i, tracker, rng);
      p.save_path = dir;
      p.skip_check = true;
      batch.push_back(std::move(p));
    }
    (void)ses.add_many(std::move(batch));
  }
  // Loaded: every torrent seeding. Announced: every torrent had a tracker reply.
  int seeding = 0, announced = 0;
  double loaded_s = -1, announced_s = -1;
  const auto deadline = t0 + std::chrono::seconds(600);
  while (clk::now() < deadline && (loaded_s < 0 || (!tracker.empty() && announced_s < 0))) {
    for (const auto& e : ses.events().pop(std::chrono::milliseconds(100))) {
      if (e.kind == event_kind::state_changed && e.state == static_cast<std::uint8_t>(torrent_state::seeding))
        ++seeding;
      if (e.kind == event_kind::tracker_reply && e.message.rfind("error", 0) != 0) ++announced;
    }
    const double secs = std::chrono::duration<double>(clk::now() - t0).count();
    if (loaded_s < 0 && seeding >= n) loaded_s = secs;
    if (announced_s < 0 && announced >= n) announced_s = secs;
  }
  // Idle: nothing happens but the session's own timers.
  const double cpu0 = cpu_seconds();
  const auto i0 = clk::now();
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  const double idle_cpu = (cpu_seconds() - cpu0) / std::chrono::duration<double>(clk::now() - i0).count();
  // A status of every torrent, from another thread (as an RPC server would ask).
  std::vector<double> times;
  std::size_t got = 0;
  for (int k = 0; k < 21; ++k) {
    const auto s0 = clk::now();
    got = ses.status_all().size();
    times.push_back(std::chrono::duration<double, std::milli>(clk::now() - s0).count());
  }
  std::sort(times.begin(), times.end());
  const long hwm = rss_kib("VmHWM:");
  std::printf(
      "{\"torrents\": %d, \"loaded_seconds\": %.3f, \"announced_seconds\": %.3f, \"announced\": %d, "
      "\"rss_before_session_mib\": %.1f, \"peak_rss_mib\": %.1f, \"idle_cpu_fraction\": %.4f, "
      "\"status_all_ms_median\": %.2f, \"status_all_count\": %zu}\n",
      n, loaded_s, announced_s, announced, static_cast<double>(rss_before) / 1024.0, static_cast<double>(hwm) / 1024.0,
      idle_cpu, times[times.size() / 2], got);
  ses.shutdown();
  return 0;
}
