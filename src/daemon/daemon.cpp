// The daemon: settings and torrents in the state folder, the session, and the HTTP front
// (security checks, Transmission RPC, web UI files).
#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>

#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "daemon/feed.hpp"
#include "daemon/qbittorrent_api.hpp"
#include "daemon/sync_folders.hpp"
#include "daemon/tls.hpp"
#include "daemon/transmission_rpc.hpp"
#include "lsd/lsd.hpp"
#include "storage/resume.hpp"
#include "stream/http.hpp"
#include "tracker/client.hpp"
#include "tracker/http_connect.hpp"

#ifndef SHOAL_WEB_DIR
#define SHOAL_WEB_DIR "web"
#endif

namespace shoal::daemon {

namespace json = boost::json;

// --- the daemon ---------------------------------------------------------------------------

namespace {
std::string random_token(std::size_t n) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(n, 'x');
  for (auto& ch : s)
    ch = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
  return s;
}

std::string_view content_type_of(const fs::path& p) {
  const auto e = p.extension().string();
  if (e == ".html") return "text/html; charset=utf-8";
  if (e == ".js") return "text/javascript; charset=utf-8";
  if (e == ".css") return "text/css; charset=utf-8";
  if (e == ".svg") return "image/svg+xml";
  if (e == ".png") return "image/png";
  if (e == ".json") return "application/json";
  return "application/octet-stream";
}

struct fetched {
  bool ok = false;
  std::string body;  // or the error
};
asio::awaitable<fetched> fetch_url(asio::io_context& io, std::string url, tracker::client_options opt) {
  auto r = co_await tracker::http_get(io, url, 16u << 20, opt);
  if (!r) co_return fetched{false, r.err().message()};
  co_return fetched{true, std::move(*r)};
}
}  // namespace

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

daemon::daemon(asio::io_context& http_io, daemon_config c) : http_io_(http_io), cfg_(std::move(c)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to start");
  session_id_ = random_token(48);
  rpc_owner_ = std::make_unique<transmission_rpc>(*this);
  rpc_ = rpc_owner_.get();
  qb_ = std::make_unique<qbittorrent_api>(*this);
}

daemon::~daemon() {
  shutdown();
}

result<bool> daemon::start() {
  std::error_code ec;
  // The folders the server's owner named (flags, settings.json) are the allowed roots; RPC
  // clients may choose folders inside them only (session-set too).
  for (const auto& d : {cfg_.download_dir, cfg_.incomplete_dir}) {
    if (!d.empty() && std::find(cfg_.allowed_dirs.begin(), cfg_.allowed_dirs.end(), d) == cfg_.allowed_dirs.end())
      cfg_.allowed_dirs.push_back(d);
  }
  for (const auto& d : {cfg_.state_dir, torrents_dir(), resume_dir(), cfg_.download_dir}) {
    fs::create_directories(d, ec);
    if (ec) return error{errc::io, d.string() + ": cannot create the folder: " + ec.message()};
  }
  // Cumulative statistics of earlier runs.
  if (auto text = read_whole_file(cfg_.state_dir / "stats.json"); !text.empty()) {
    boost::system::error_code jec;
    auto v = json::parse(text, jec);
    if (!jec && v.is_object()) {
      auto& o = v.as_object();
      auto u = [&](const char* k) {
        auto it = o.find(k);
        if (it == o.end() || !it->value().is_number()) return std::uint64_t{0};
        const double d = it->value().to_number<double>();
        return d > 0 && d < 1e18 ? static_cast<std::uint64_t>(d) : std::uint64_t{0};
      };
      prior_ = {u("uploadedBytes"), u("downloadedBytes"), u("filesAdded"), u("secondsActive"), u("sessionCount")};
    }
  }
  ++prior_.session_count;
  load_feed_state();

  session_settings st;
  st.listen_port = cfg_.peer_port;
  st.local = cfg_.local;
  st.lsd = cfg_.lsd && (!st.local || lsd::in_network_namespace());
  st.dht = cfg_.dht;
  st.dht_bootstrap = cfg_.dht_bootstrap;
  st.dht_state_file = cfg_.state_dir / "dht.state";
  st.port_mapping = cfg_.port_mapping && !st.local;
  st.max_peers_per_torrent = cfg_.peer_limit_per_torrent;
  st.max_connections = cfg_.peer_limit_global;
  st.max_active_downloads = cfg_.download_queue_enabled ? cfg_.download_queue_size : 0;
  st.max_active_seeds = cfg_.seed_queue_enabled ? cfg_.seed_queue_size : 0;
  if (cfg_.verbose) st.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  if (auto p = wire::mse::parse_policy(cfg_.encryption == "tolerated" ? "allowed" : cfg_.encryption))
    st.encryption = *p;
  ses_ = std::make_unique<session>(session_io_, st);
  // Events are drained on the HTTP thread; one post covers every event queued meanwhile.
  ses_->set_event_notify([this] {
    if (!events_posted_.exchange(true)) {
      asio::post(http_io_, [this] {
        events_posted_ = false;
        if (!stopped_) drain_events();
      });
    }
  });
  if (auto lec = ses_->listen()) {
    return error{errc::io, "cannot listen for peers on port " + std::to_string(cfg_.peer_port) + ": " + lec.message() +
                               " (choose another with --port, or --port 0 for any)"};
  }
  // Synced folders: opened and run before the session's thread starts (so on its thread).
  sync_ = std::make_unique<sync_folders>(*ses_, sync_folders::options{cfg_.state_dir / "sync.json", cfg_.local});
  if (auto s = sync_->start(); !s) return error{errc::io, "sync: " + s.err().message()};
  ses_->start_thread();
  apply_limits();
  load_torrents();
  tick_timer_.emplace(http_io_);
  tick();

  stream_ = std::make_unique<stream::http_service>(*ses_);
  http_ = std::make_unique<http_server>(
      http_io_, [this](const request& r, const tcp::endpoint& p, bool tls) { return handle_http(r, p, tls); });
  if (cfg_.rpc_tls_enabled) {
    auto t = load_tls(cfg_.state_dir, cfg_.rpc_tls_cert, cfg_.rpc_tls_key);
    if (!t) {
      return error{t.err().code,
                   t.err().detail + " (set rpc-tls-cert and rpc-tls-key in settings.json, or rpc-tls-enabled false)"};
    }
    tls_cert_ = t->cert;
    tls_fingerprint_ = t->fingerprint;
    http_->set_tls(t->context);
    std::fprintf(stderr, "shoal daemon: HTTPS on the same port%s: certificate %s, SHA-256 %s\n",
                 t->generated ? " (certificate made now)" : "", t->cert.c_str(), t->fingerprint.c_str());
  }
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(cfg_.rpc_bind, aec);
  if (aec) return error{errc::invalid_argument, "--rpc-bind '" + cfg_.rpc_bind + "' is not an IP address"};
  if (auto hec = http_->listen(tcp::endpoint(addr, cfg_.rpc_port))) {
    return error{errc::io, "cannot listen for RPC on " + cfg_.rpc_bind + " port " + std::to_string(cfg_.rpc_port) +
                               ": " + hec.message() + " (choose another with --rpc-port)"};
  }
  return true;
}

void daemon::shutdown() {
  stopped_ = true;
  if (tick_timer_) tick_timer_->cancel();
  if (http_) http_->stop();
  stream_.reset();  // bodies still being sent drop their readers while the session exists
  if (ses_) {
    auto secs = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count());
    auto all = ses_->status_all();
    std::uint64_t up = 0, down = 0;
    for (const auto& s : all) {
      up += s.uploaded;
      down += s.downloaded;
    }
    json::object o;
    o["uploadedBytes"] = prior_.uploaded + up;
    o["downloadedBytes"] = prior_.downloaded + down;
    o["filesAdded"] = prior_.files_added + files_added_;
    o["secondsActive"] = prior_.seconds_active + secs;
    o["sessionCount"] = prior_.session_count;
    (void)write_file_atomically(cfg_.state_dir / "stats.json", json::serialize(o) + "\n");
    if (sync_) ses_->call([this] { sync_->stop(); });
    ses_->shutdown();
    sync_.reset();
    ses_.reset();
  }
}

daemon::totals daemon::cumulative() const {
  auto t = prior_;
  t.files_added += files_added_;
  return t;
}

void daemon::apply_limits() {
  const auto c = config();
  const std::uint64_t down = c.alt_speed_enabled          ? c.alt_speed_down
                             : c.speed_limit_down_enabled ? c.speed_limit_down
                                                          : 0;
  const std::uint64_t up = c.alt_speed_enabled ? c.alt_speed_up : c.speed_limit_up_enabled ? c.speed_limit_up : 0;
  const std::uint32_t dq = c.download_queue_enabled ? c.download_queue_size : 0;
  const std::uint32_t sq = c.seed_queue_enabled ? c.seed_queue_size : 0;
  ses_->call([&] {
    ses_->download_limit().set_rate(down);
    ses_->upload_limit().set_rate(up);
    ses_->set_queue_limits(dq, sq);
  });
}

void daemon::set_config(const daemon_config& c) {
  {
    std::lock_guard l(mu_);
    cfg_ = c;
  }
  (void)save_config(c.config_file.empty() ? c.state_dir / "settings.json" : c.config_file, c);
  apply_limits();
}

bool daemon::path_allowed(const fs::path& p) const {
  const auto c = config();
  auto inside = [](const fs::path& root, const fs::path& q) {
    auto r = root.lexically_normal(), n = q.lexically_normal();
    auto ri = r.begin(), ni = n.begin();
    for (; ri != r.end() && ni != n.end(); ++ri, ++ni) {
      if (ri->empty()) continue;  // trailing slash
      if (*ri != *ni) return false;
    }
    return ri == r.end() || (std::next(ri) == r.end() && ri->empty());
  };
  if (!p.is_absolute()) return false;
  return std::any_of(c.allowed_dirs.begin(), c.allowed_dirs.end(), [&](const auto& d) { return inside(d, p); });
}

torrent_params daemon::params_for(const std::string& key, const fs::path& save, bool paused) const {
  torrent_params tp;
  tp.save_path = save;
  tp.resume_file = resume_dir() / (key + ".resume");
  tp.paused = paused;
  tp.settings_from_resume = true;
  const auto c = config();
  if (c.seed_ratio_limited) tp.goals.ratio = c.seed_ratio_limit;
  if (c.idle_seeding_limit_enabled) tp.goals.idle_time = std::chrono::seconds(std::int64_t{c.idle_seeding_limit} * 60);
  return tp;
}

void daemon::load_torrents() {
  // STATE/torrents/KEY.add says how each was added (order, folder, paused, labels, the
  // magnet); KEY.torrent holds its metainfo once known. Resume data has the rest.
  struct entry {
    std::uint64_t order;
    std::string key;
    json::object add;
  };
  std::vector<entry> entries;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(torrents_dir(), ec)) {
    if (de.path().extension() != ".add") continue;
    boost::system::error_code jec;
    auto v = json::parse(read_whole_file(de.path()), jec);
    if (jec || !v.is_object()) continue;
    auto& o = v.as_object();
    std::uint64_t order = 0;
    if (auto it = o.find("order"); it != o.end() && it->value().is_number()) {
      const double d = it->value().to_number<double>();  // a damaged file must not throw here
      order = d > 0 && d < 1e15 ? static_cast<std::uint64_t>(d) : 0;
    }
    entries.push_back({order, de.path().stem().string(), o});
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<torrent_params> ps;
  std::vector<std::string> finals;  // per added params: where it goes once complete
  auto flush = [&] {
    if (ps.empty()) return;
    auto handles = ses_->add_many(std::move(ps));
    for (std::size_t i = 0; i < handles.size() && i < finals.size(); ++i)
      if (!finals[i].empty()) final_dirs_[handles[i].id()] = finals[i];
    ps.clear();
    finals.clear();
  };
  for (auto& e : entries) {
    next_order_ = std::max(next_order_, e.order + 1);
    auto s = [&](const char* k) {
      auto it = e.add.find(k);
      return it != e.add.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
    };
    const bool paused = e.add.contains("paused") && e.add.at("paused").is_bool() && e.add.at("paused").as_bool();
    auto tp = params_for(e.key, s("save_path").empty() ? cfg_.download_dir : fs::path(s("save_path")), paused);
    if (auto it = e.add.find("labels"); it != e.add.end() && it->value().is_array())
      for (const auto& l : it->value().as_array())
        if (l.is_string()) tp.labels.emplace_back(l.as_string());
    const auto tfile = torrents_dir() / (e.key + ".torrent");
    if (fs::exists(tfile, ec)) {
      auto m = load_metainfo(tfile);
      if (!m) continue;  // a damaged file: left in place, the rest still load
      tp.info = std::move(*m);
    } else if (auto uri = s("magnet"); !uri.empty()) {
      auto m = parse_magnet(uri);
      if (!m) continue;
      tp.magnet = std::move(*m);
      tp.metadata_file = tfile;
    } else {
      continue;
    }
    ps.push_back(std::move(tp));
    finals.push_back(s("final_dir"));
    e.add = {};
    // In batches: the parsed metainfo of 10,000 torrents never waits in memory all at once
    // beside the torrents made from it (the peak RSS of a start).
    if (ps.size() == 256) flush();
  }
  flush();
}

result<std::string> daemon::fetch_torrent_url(const std::string& url) {
  if (auto why = url_refused(url, rpc_port())) return error{errc::invalid_argument, *why};
  tracker::client_options opt;
  opt.local = cfg_.local;
  opt.cache = ses_->tracker_cache();
  auto fut = asio::co_spawn(ses_->io(), fetch_url(ses_->io(), url, opt), asio::use_future);
  auto got = fut.get();
  if (!got.ok) return error{errc::io, "cannot fetch " + url + ": " + got.body};
  return std::move(got.body);
}

result<add_outcome> daemon::add(add_request r) {
  const auto c = config();
  torrent_params tp;
  std::string key, name;
  sha1_digest wire{};
  std::optional<metainfo> mi;
  std::optional<magnet_link> mag;
  if (!r.metainfo.empty()) {
    auto m = parse_metainfo(r.metainfo);
    if (!m) return error{errc::bad_metainfo, "not a valid .torrent: " + m.err().message()};
    mi = std::move(*m);
    wire = mi->info_hash_v1 ? *mi->info_hash_v1 : sha1_digest{};
    if (!mi->info_hash_v1) std::copy_n(mi->info_hash_v2->begin(), 20, wire.begin());
    name = mi->name;
  } else {
    auto m = parse_magnet(r.magnet);
    if (!m) return error{errc::bad_magnet, "not a valid magnet link: " + m.err().message()};
    mag = std::move(*m);
    if (mag->info_hash_v1) {
      wire = *mag->info_hash_v1;
    } else {
      std::copy_n(mag->info_hash_v2->begin(), 20, wire.begin());
    }
    name = mag->name.empty() ? to_hex(as_view(wire)) : mag->name;
  }
  key = to_hex(as_view(wire));
  const fs::path target = r.save_path ? *r.save_path : c.download_dir;
  if (!path_allowed(target)) {
    return error{errc::invalid_argument, target.string() + " is outside the allowed download folders"};
  }
  // With an incomplete folder the data grows there and moves to `target` once complete.
  const bool staged = c.incomplete_dir_enabled && !c.incomplete_dir.empty() && target != c.incomplete_dir;
  const fs::path save = staged ? c.incomplete_dir : target;
  // A duplicate answers with the torrent already there.
  auto existing = ses_->call([&]() -> std::optional<add_outcome> {
    if (auto t = ses_->find_torrent(wire)) return add_outcome{t->id(), key, t->status().name, true};
    return std::nullopt;
  });
  if (existing) return *existing;

  const bool paused = r.paused.value_or(!c.start_added_torrents);
  tp = params_for(key, save, paused);
  tp.settings_from_resume = false;  // a new torrent: these params are its settings
  tp.labels = r.labels;
  tp.file_priorities = std::move(r.file_priorities);
  json::object add;
  add["order"] = next_order_++;
  add["save_path"] = save.string();
  if (staged) add["final_dir"] = target.string();
  add["paused"] = paused;
  json::array labels;
  for (const auto& l : r.labels)
    labels.emplace_back(l);
  add["labels"] = std::move(labels);
  std::error_code wec;
  if (mi) {
    wec = write_file_atomically(torrents_dir() / (key + ".torrent"), r.metainfo);
    tp.info = std::move(*mi);
  } else {
    add["magnet"] = r.magnet;
    tp.magnet = std::move(*mag);
    tp.metadata_file = torrents_dir() / (key + ".torrent");
  }
  if (!wec) wec = write_file_atomically(torrents_dir() / (key + ".add"), json::serialize(add) + "\n");
  if (wec) return error{errc::io, "cannot save the torrent in " + torrents_dir().string() + ": " + wec.message()};
  auto h = ses_->add(std::move(tp));
  ++files_added_;
  if (staged) final_dirs_[h.id()] = target;
  return add_outcome{h.id(), key, name, false};
}

void daemon::remove(torrent_id id, bool delete_data) {
  auto st = torrent_handle(ses_.get(), id).status();
  if (!st) return;
  const auto key = to_hex(as_view(st->info_hash));
  std::error_code ec;
  fs::remove(torrents_dir() / (key + ".add"), ec);  // first: a kill -9 from here on does not bring it back
  ses_->remove(id, delete_data);
  fs::remove(torrents_dir() / (key + ".torrent"), ec);
}

// --- housekeeping on the HTTP thread ------------------------------------------------------

void daemon::rewrite_add_file(const std::string& key, const std::function<void(json::object&)>& edit) {
  const auto file = torrents_dir() / (key + ".add");
  boost::system::error_code jec;
  auto v = json::parse(read_whole_file(file), jec);
  if (jec || !v.is_object()) return;
  edit(v.as_object());
  (void)write_file_atomically(file, json::serialize(v) + "\n");
}

void daemon::drain_events() {
  for (auto& e : ses_->events().pop()) {
    ++events_seen_;
    switch (e.kind) {
      case event_kind::torrent_finished:
        on_finished(e.torrent);
        break;
      case event_kind::storage_moved:
        if (moving_.erase(e.torrent)) {
          final_dirs_.erase(e.torrent);
          rewrite_add_file(to_hex(as_view(e.info_hash)), [](json::object& o) {
            if (auto it = o.find("final_dir"); it != o.end()) {
              o["save_path"] = it->value();
              o.erase("final_dir");
            }
          });
          if (program_pending_.erase(e.torrent)) {
            if (auto st = torrent_handle(ses_.get(), e.torrent).status()) run_done_program(*st);
          }
        }
        break;
      case event_kind::removed:
        final_dirs_.erase(e.torrent);
        moving_.erase(e.torrent);
        program_pending_.erase(e.torrent);
        break;
      default:
        break;
    }
  }
}

void daemon::on_finished(torrent_id id) {
  const auto c = config();
  const bool program = c.script_torrent_done_enabled && !c.script_torrent_done_filename.empty();
  if (auto it = final_dirs_.find(id); it != final_dirs_.end()) {
    if (!moving_.insert(id).second) return;  // already on its way
    if (program) program_pending_.insert(id);
    torrent_handle(ses_.get(), id).move_storage(it->second);
    return;
  }
  if (program) {
    if (auto st = torrent_handle(ses_.get(), id).status()) run_done_program(*st);
  }
}

void daemon::run_done_program(const torrent_status& st) {
  const auto c = config();
  // argv[0] alone and no shell: a name with spaces or ';' is one argument, never a command.
  const std::string prog = c.script_torrent_done_filename;
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "TR_", 3) != 0) env.emplace_back(*e);
  }
  char when[64] = "";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (localtime_r(&now, &tm)) std::strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm);
  std::string labels, trackers;
  for (const auto& l : st.labels)
    labels += (labels.empty() ? "" : ",") + l;
  for (const auto& t : st.trackers)
    trackers += (trackers.empty() ? "" : ",") + t;
  env.push_back("TR_APP_VERSION=shoal 0.1.0");
  env.push_back(std::string("TR_TIME_LOCALTIME=") + when);
  env.push_back("TR_TORRENT_BYTES_DOWNLOADED=" + std::to_string(st.total_downloaded));
  env.push_back("TR_TORRENT_DIR=" + st.save_path);
  env.push_back("TR_TORRENT_HASH=" + to_hex(as_view(st.info_hash)));
  env.push_back("TR_TORRENT_ID=" + std::to_string(st.id));
  env.push_back("TR_TORRENT_LABELS=" + labels);
  env.push_back("TR_TORRENT_NAME=" + st.name);
  env.push_back("TR_TORRENT_PRIORITY=0");
  env.push_back("TR_TORRENT_TRACKERS=" + trackers);
  std::vector<char*> envp;
  for (auto& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = prog;
  char* argv[] = {arg0.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, prog.c_str(), &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ++programs_run_;
  if (rc != 0) {
    ++program_failures_;
    std::fprintf(stderr, "shoal daemon: cannot run %s for %s: %s\n", prog.c_str(), st.name.c_str(), std::strerror(rc));
  }
}

void daemon::tick() {
  if (stopped_ || !tick_timer_) return;
  ++ticks_;
  // Finished programs: reaped here, their failures counted.
  int status = 0;
  while (waitpid(-1, &status, WNOHANG) > 0) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++program_failures_;
  }
  const auto c = config();
  if (c.watch_dir_enabled && !c.watch_dir.empty() && ticks_ % 2 == 0) scan_watch_dir();
  if (ticks_ % 10 == 1) check_turtle();
  if (!c.feeds.empty() || !rss_.feeds.empty()) poll_feeds();
  // A torrent that completed while the daemon was down still owes its move.
  if (ticks_ % 5 == 0 && !final_dirs_.empty()) {
    for (const auto& [id, dir] : std::map(final_dirs_)) {
      if (moving_.count(id)) continue;
      auto st = torrent_handle(ses_.get(), id).status();
      if (!st) {
        final_dirs_.erase(id);
      } else if (st->state == torrent_state::seeding || (st->total_wanted > 0 && st->have_wanted == st->total_wanted &&
                                                         st->state != torrent_state::checking)) {
        moving_.insert(id);
        torrent_handle(ses_.get(), id).move_storage(dir);
      }
    }
  }
  tick_timer_->expires_after(std::chrono::seconds(1));
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void daemon::scan_watch_dir() {
  const auto c = config();
  std::error_code ec;
  std::map<fs::path, std::pair<std::uintmax_t, fs::file_time_type>> now;
  std::size_t looked = 0;
  for (const auto& de : fs::directory_iterator(c.watch_dir, ec)) {
    if (++looked > 10000) break;  // a folder flooded with files: the rest next time
    if (de.path().extension() != ".torrent" || !de.is_regular_file(ec)) continue;
    const auto size = de.file_size(ec);
    const auto mtime = de.last_write_time(ec);
    if (ec) continue;
    now[de.path()] = {size, mtime};
    // Added only once it stopped changing between two scans (a copy still being written
    // is left for the next one).
    auto seen = watch_seen_.find(de.path());
    if (seen == watch_seen_.end() || seen->second != now[de.path()]) continue;
    now.erase(de.path());
    add_request r;
    bool ok = size <= (16u << 20);
    if (ok) {
      r.metainfo = read_whole_file(de.path());
      auto added = add(std::move(r));
      ok = added.ok();
      if (!ok) std::fprintf(stderr, "shoal daemon: %s: %s\n", de.path().c_str(), added.err().detail.c_str());
    }
    fs::rename(de.path(), de.path().string() + (ok ? ".added" : ".invalid"), ec);
  }
  watch_seen_ = std::move(now);
}

void daemon::check_turtle() {
  auto c = config();
  if (!c.alt_speed_time_enabled) {
    turtle_window_.reset();
    return;
  }
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  if (!localtime_r(&t, &tm)) return;
  const bool in = in_turtle_window(c, tm.tm_wday, static_cast<std::uint32_t>(tm.tm_hour * 60 + tm.tm_min));
  // At the window's edges only: between them the user may switch turtle mode by hand.
  if (turtle_window_ && *turtle_window_ == in) return;
  turtle_window_ = in;
  if (c.alt_speed_enabled != in) {
    c.alt_speed_enabled = in;
    set_config(c);
  }
}

struct daemon::event_stream {
  explicit event_stream(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  bool first = true;
};

asio::awaitable<std::optional<std::string>> daemon::next_event(std::shared_ptr<event_stream> s) {
  if (!s->first) {
    s->timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return std::nullopt;
  }
  s->first = false;
  if (stopped_) co_return std::nullopt;
  json::object args;
  args["fields"] = json::array{"id",         "name",      "status",      "percentDone",   "rateDownload",
                               "rateUpload", "eta",       "uploadRatio", "error",         "errorString",
                               "labels",     "totalSize", "downloadDir", "peersConnected"};
  std::string result;
  auto out = rpc_->call("torrent-get", args, result);
  co_return "event: torrents\ndata: " + json::serialize(out) + "\n\n";
}

std::string daemon::metrics() {
  struct counts {
    std::map<std::string, std::uint64_t> by_state;
    double down = 0, up = 0;
    std::uint64_t downloaded = 0, uploaded = 0, peers = 0, torrents = 0;
    std::size_t dht_nodes = 0, dht_nodes6 = 0;
  };
  auto k = ses_->call([this] {
    counts k;
    for (const char* st :
         {"queued", "checking", "fetching_metadata", "downloading", "seeding", "paused", "error", "stopped"})
      k.by_state[st] = 0;
    for (const auto& h : ses_->torrents()) {
      auto t = ses_->find(h.id());
      if (!t) continue;
      auto st = t->status();
      ++k.by_state[std::string(state_name(st.state))];
      k.down += st.download_rate;
      k.up += st.upload_rate;
      k.downloaded += st.downloaded;
      k.uploaded += st.uploaded;
      k.peers += st.peers;
      ++k.torrents;
    }
    if (const auto& d = ses_->dht_node()) {
      auto s = d->stats();
      k.dht_nodes = s.nodes;
      k.dht_nodes6 = s.nodes6;
    }
    return k;
  });
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& value,
                    const std::string& labels = {}) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    out += std::string(name) + labels + " " + value + "\n";
  };
  metric("shoal_download_rate_bytes", "gauge", "Payload download rate, bytes per second.",
         std::to_string(static_cast<std::uint64_t>(k.down)));
  metric("shoal_upload_rate_bytes", "gauge", "Payload upload rate, bytes per second.",
         std::to_string(static_cast<std::uint64_t>(k.up)));
  metric("shoal_downloaded_bytes_total", "counter", "Payload bytes downloaded since the daemon started.",
         std::to_string(k.downloaded));
  metric("shoal_uploaded_bytes_total", "counter", "Payload bytes uploaded since the daemon started.",
         std::to_string(k.uploaded));
  metric("shoal_peers", "gauge", "Connected peers, all torrents.", std::to_string(k.peers));
  out += "# HELP shoal_torrents Torrents by state.\n# TYPE shoal_torrents gauge\n";
  for (const auto& [st, n] : k.by_state)
    out += "shoal_torrents{state=\"" + st + "\"} " + std::to_string(n) + "\n";
  metric("shoal_disk_queue_jobs", "gauge", "Jobs waiting for the disk thread.",
         std::to_string(ses_->disk_pool().queued()));
  metric("shoal_dht_nodes", "gauge", "Nodes in the DHT routing tables (IPv4 and IPv6).",
         std::to_string(k.dht_nodes + k.dht_nodes6));
  if (http_) {
    const auto& h = http_->stats();
    metric("shoal_api_requests_total", "counter", "HTTP requests answered (RPC, web UI, metrics).",
           std::to_string(h.requests));
    metric("shoal_api_errors_total", "counter", "HTTP answers of 400 and above.", std::to_string(h.errors));
    metric("shoal_api_clients", "gauge", "Open HTTP connections.", std::to_string(http_->clients()));
  }
  metric("shoal_done_programs_total", "counter", "Completion programs started.", std::to_string(programs_run_));
  metric("shoal_done_program_failures_total", "counter", "Completion programs that could not start or failed.",
         std::to_string(program_failures_));
  return out;
}

bool daemon::host_allowed(std::string_view host) const {
  if (host == "localhost" || host == "127.0.0.1" || host == "::1") return true;
  const auto c = config();
  if (host == c.rpc_bind && c.rpc_bind != "0.0.0.0" && c.rpc_bind != "::") return true;
  return std::find(c.host_whitelist.begin(), c.host_whitelist.end(), host) != c.host_whitelist.end();
}

std::optional<response> daemon::refuse(const request& req, const tcp::endpoint& peer, bool tls) {
  const auto c = config();
  const auto addr = peer.address();
  const std::string_view target(req.target().data(), req.target().size());
  const bool qb_path = target.rfind("/api/v2/", 0) == 0;
  // 1. Who may connect: loopback, or anyone once a password is set.
  if (c.rpc_password_hash.empty() && !is_loopback(addr)) {
    return make_response(req, http::status::forbidden,
                         "remote access needs a password: run `shoal daemon --set-password` on the server\n");
  }
  // 1b. A password never crosses a network in clear: remote clients use HTTPS (the same
  // port), unless TLS was turned off (rpc-tls-enabled false, e.g. behind a TLS proxy).
  if (!tls && !is_loopback(addr) && c.rpc_tls_enabled) {
    return make_response(req, http::status::forbidden,
                         "remote clients must use HTTPS: https://HOST:" + std::to_string(c.rpc_port) +
                             "/ (the same port; certificate " + tls_cert_.string() + ", SHA-256 " + tls_fingerprint_ +
                             ")\n");
  }
  // 2. DNS rebinding: the Host a browser used must be one of ours.
  auto host_it = req.find(http::field::host);
  const auto host = host_part(host_it == req.end() ? std::string_view{} : std::string_view(host_it->value()));
  if (!host_allowed(host)) {
    return make_response(req, http::status::misdirected_request,
                         "421: '" + host + "' is not a name of this server; add it to rpc-host-whitelist in " +
                             (c.state_dir / "settings.json").string() + "\n");
  }
  // 3. Authentication, behind a brute-force guard: HTTP Basic, except for the qBittorrent
  // API, whose calls carry the SID cookie of auth/login instead (qbittorrent_api checks it).
  if (!c.rpc_password_hash.empty() && !qb_path) {
    std::chrono::seconds wait{};
    if (login_blocked(addr, wait)) {
      auto r = make_response(req, http::status::too_many_requests, "too many failed logins: wait and try again\n");
      r.set(http::field::retry_after, std::to_string(wait.count() + 1));
      return r;
    }
    bool ok = false;
    const bool tried = req.find(http::field::authorization) != req.end();
    if (auto a = req.find(http::field::authorization); a != req.end()) {
      std::string_view v(a->value());
      if (v.size() > 6 && v.substr(0, 6) == "Basic ") {
        if (auto dec = base64_decode(v.substr(6))) {
          auto colon = dec->find(':');
          if (colon != std::string::npos) ok = check_password(dec->substr(0, colon), dec->substr(colon + 1));
        }
      }
    }
    if (!ok) {
      // A request without credentials (a browser's first, to get the challenge) is no failure.
      if (tried) login_failed(addr);
      auto r = make_response(req, http::status::unauthorized, "401: wrong user name or password\n");
      r.set(http::field::www_authenticate, "Basic realm=\"shoal\"");
      return r;
    }
    login_ok(addr);
  }
  return std::nullopt;
}

bool daemon::check_password(std::string_view user, std::string_view pass) const {
  const auto c = config();
  if (c.rpc_password_hash.empty()) return true;
  return user == c.rpc_username && crypto_pwhash_str_verify(c.rpc_password_hash.c_str(), pass.data(), pass.size()) == 0;
}

bool daemon::login_blocked(const asio::ip::address& a, std::chrono::seconds& wait) {
  const auto now = std::chrono::steady_clock::now();
  auto it = failed_.find(a);
  if (it == failed_.end() || it->second.until <= now) return false;
  wait = std::chrono::duration_cast<std::chrono::seconds>(it->second.until - now);
  return true;
}

void daemon::login_failed(const asio::ip::address& a) {
  // Every failure past the third doubles the wait (1 s, 2 s, 4 s, ... an hour at most).
  if (failed_.size() >= 4096 && !failed_.count(a)) failed_.erase(failed_.begin());
  auto& f = failed_[a];
  ++f.count;
  if (f.count > 3)
    f.until = std::chrono::steady_clock::now() +
              std::chrono::seconds(std::min<std::uint64_t>(3600, 1ull << std::min(f.count - 4, 12u)));
}

void daemon::login_ok(const asio::ip::address& a) {
  failed_.erase(a);
}

reply daemon::handle_http(const request& req, const tcp::endpoint& peer, bool tls) {
  if (auto r = refuse(req, peer, tls)) return {std::move(*r), {}};
  std::string_view target(req.target().data(), req.target().size());
  const auto path = target.substr(0, target.find('?'));
  if (path == "/transmission/rpc" || path == "/transmission/rpc/") {
    if (req.method() != http::verb::post) {
      return {make_response(req, http::status::method_not_allowed, "POST a JSON request here\n"), {}};
    }
    // CSRF: a page elsewhere cannot read this header, so it cannot make a request with it.
    auto sid = req.find("X-Transmission-Session-Id");
    if (sid == req.end() || std::string_view(sid->value()) != session_id_) {
      auto r = make_response(req, http::status::conflict,
                             "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>"
                             "<p><code>X-Transmission-Session-Id: " +
                                 session_id_ + "</code></p>",
                             "text/html; charset=utf-8");
      r.set("X-Transmission-Session-Id", session_id_);
      r.set("X-Transmission-Rpc-Version", "6.0.0");  // JSON-RPC 2.0 is spoken too
      return {std::move(r), {}};
    }
    auto body = rpc_->handle(req.body());
    auto r = body ? make_response(req, http::status::ok, std::move(*body), "application/json; charset=UTF-8")
                  : make_response(req, http::status::no_content, "");
    if (rpc_->close_requested) {
      r.keep_alive(false);
      asio::post(http_io_, [this] {
        if (on_close) on_close();
      });
    }
    return {std::move(r), {}};
  }
  if (path.rfind("/api/v2/", 0) == 0) return {qb_->handle(req, path.substr(8), peer), {}};
  if (path.rfind("/stream/", 0) == 0 && stream_) return stream_->handle(req, tls);
  if (path == "/events" && req.method() == http::verb::get) {
    reply r{make_response(req, http::status::ok, ""), stream_reply{}};
    r.stream->head = make_response(req, http::status::ok, "", "text/event-stream");
    r.stream->head.set(http::field::cache_control, "no-cache");
    auto st = std::make_shared<event_stream>(http_io_);
    r.stream->next = [this, st] { return next_event(st); };
    return r;
  }
  if (path == "/metrics" && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    return {make_response(req, http::status::ok, metrics(), "text/plain; version=0.0.4; charset=utf-8"), {}};
  }
  if (req.method() == http::verb::get || req.method() == http::verb::head) return serve_file(req);
  return {make_response(req, http::status::not_found, "not found\n"), {}};
}

reply daemon::serve_file(const request& req) {
  std::string_view target(req.target().data(), req.target().size());
  std::string path(target.substr(0, target.find('?')));
  for (const char* prefix : {"/transmission/web", "/web"})
    if (path.rfind(prefix, 0) == 0) path = path.substr(std::strlen(prefix));
  if (path.empty() || path == "/") path = "/index.html";
  // Only plain names inside the web folder.
  if (path.find("..") != std::string::npos || path.find('\\') != std::string::npos ||
      path.find('\0') != std::string::npos) {
    return {make_response(req, http::status::not_found, "not found\n"), {}};
  }
  const fs::path dir = std::getenv("SHOAL_WEB_DIR") ? fs::path(std::getenv("SHOAL_WEB_DIR")) : fs::path(SHOAL_WEB_DIR);
  const fs::path file = dir / path.substr(1);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return {make_response(req, http::status::not_found, "not found\n"), {}};
  auto r = make_response(req, http::status::ok, read_whole_file(file), content_type_of(file));
  r.set(http::field::cache_control, "no-cache");
  r.set("X-Content-Type-Options", "nosniff");
  r.set("X-Frame-Options", "DENY");
  r.set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
  return {std::move(r), {}};
}

}  // namespace shoal::daemon
