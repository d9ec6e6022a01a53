// `shoal stream`: one torrent in a session and an HTTP server on loopback that serves its
// files while they download (src/stream). Prints the stream URL as its first line on
// stdout, then progress on stderr; can start a player on the URL.
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <sstream>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "daemon/http_server.hpp"
#include "daemon/rpc_codec.hpp"
#include "session/session.hpp"
#include "source.hpp"
#include "stream/http.hpp"
#include "stream/http_codec.hpp"
#include "stream/reader.hpp"

extern char** environ;

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

struct stream_args {
  std::string target;
  std::string dir = ".";
  std::uint32_t file = 0;  // from 1, as `shoal info` numbers files; 0: the largest media file
  int http_port = 0;
  int port = 6881;
  std::vector<std::string> peers;
  std::string player;
  bool local = false;
  bool no_dht = false;
  bool no_lsd = false;
  std::vector<std::string> dht_bootstrap;
  bool verbose = false;
};

// The file to stream among `files` (as metainfo lists them, pad files included): the one
// numbered `number` (from 1, pad files not counted), or the largest media file, or the
// largest file. nullopt if `number` is past the last file.
std::optional<std::uint32_t> pick_file(const std::vector<stream::file_entry>& files, std::uint32_t number) {
  std::vector<const stream::file_entry*> real;
  for (const auto& f : files) {
    if (!f.pad) real.push_back(&f);
  }
  if (number > 0) {
    if (number > real.size()) return std::nullopt;
    return real[number - 1]->index;
  }
  const stream::file_entry* best = nullptr;
  for (const auto* f : real) {
    if (stream::is_media(f->path) && (!best || f->size > best->size)) best = f;
  }
  if (!best) {
    for (const auto* f : real) {
      if (!best || f->size > best->size) best = f;
    }
  }
  if (!best) return std::nullopt;
  return best->index;
}

std::size_t real_files(const std::vector<stream::file_entry>& files) {
  return static_cast<std::size_t>(std::count_if(files.begin(), files.end(), [](const auto& f) { return !f.pad; }));
}

// Starts CMD (split on spaces) with the URL as its last argument; 0 if it could not start.
pid_t start_player(const std::string& cmd, const std::string& url) {
  std::vector<std::string> words;
  std::istringstream in(cmd);
  for (std::string w; in >> w;)
    words.push_back(w);
  if (words.empty()) return 0;
  words.push_back(url);
  std::vector<char*> argv;
  for (auto& w : words)
    argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return 0;
  return pid;
}

int run_stream(const stream_args& a) {
  const char* cmd = "stream";
  torrent_params tp;
  std::optional<magnet_link> mag;
  if (is_magnet(a.target)) {
    auto m = parse_magnet(a.target);
    if (!m) return fail(m.err().message());
    mag = std::move(m).value();
  } else {
    fetch_options fetch;
    fetch.local = a.local || env_local();
    result<metainfo> loaded = load_torrent(a.target, fetch);
    if (!loaded) return fail(a.target + ": " + loaded.err().message());
    tp.info = std::move(loaded).value();
    for (const auto& w : tp.info.warnings)
      warn(a.target + ": " + w);
    std::size_t n = 0;
    for (const auto& f : tp.info.files)
      n += f.pad ? 0 : 1;
    if (a.file > n) {
      return usage_error(cmd, fmt::format("--file {}: the torrent has {} file{} (numbered from 1 as `shoal info` shows "
                                          "them)",
                                          a.file, n, n == 1 ? "" : "s"));
    }
  }

  session_settings st;
  st.listen_port = static_cast<std::uint16_t>(a.port);
  st.local = a.local || env_local();
  st.lsd = !a.no_lsd && !st.local;
  st.dht = !a.no_dht && (mag || !tp.info.is_private);
  st.dht_bootstrap = a.dht_bootstrap;
  st.dht_state_file = fs::path(a.dir) / ".shoal" / "dht.state";
  st.port_mapping = !st.local;
  if (a.verbose) st.log = [](const std::string& line) { fmt::print(stderr, "{}\n", printable(line)); };

  asio::io_context session_io;
  tcp::resolver resolver(session_io);
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
  if (mag) tp.magnet = *mag;
  tp.save_path = a.dir;
  const std::string key =
      mag ? (mag->info_hash_v1 ? to_hex(as_view(*mag->info_hash_v1)) : to_hex(as_view(*mag->info_hash_v2)))
          : (tp.info.info_hash_v1 ? to_hex(as_view(*tp.info.info_hash_v1)) : to_hex(as_view(*tp.info.info_hash_v2)));
  tp.resume_file = fs::path(a.dir) / ".shoal" / (key + ".resume");
  const auto info_files = tp.info.files;
  tp.settings_from_resume = false;
  std::error_code dec;
  fs::create_directories(a.dir, dec);
  if (dec) return fail(a.dir + ": cannot create the download folder: " + dec.message());
  if (::access(a.dir.c_str(), W_OK) != 0)
    return fail(a.dir + ": the download folder is not writable (choose another with -d)");

  // The session runs on a thread of its own: the HTTP side waits on it.
  session ses(session_io, st);
  ses.on_warning = [](const std::string& w) { warn(w); };
  if (auto ec = ses.listen()) {
    return fail("cannot listen on port " + std::to_string(a.port) + ": " + ec.message() +
                " (choose another with --port, or --port 0 for any)");
  }
  ses.start_thread();

  asio::io_context io;
  stream::http_service service(ses);
  daemon::http_server server(io, [&service](const daemon::request& req, const tcp::endpoint&, bool) -> daemon::reply {
    // DNS rebinding: a page elsewhere must not read the stream through a name of its own.
    auto host_it = req.find(daemon::http::field::host);
    const auto host = daemon::host_part(host_it == req.end() ? std::string_view{} : std::string_view(host_it->value()));
    if (host != "127.0.0.1" && host != "localhost" && host != "::1") {
      return {daemon::make_response(req, daemon::http::status::misdirected_request,
                                    "421: '" + host + "' is not a name of this server\n"),
              {}};
    }
    const std::string_view target(req.target().data(), req.target().size());
    if (target.rfind("/stream/", 0) == 0) return service.handle(req, false);
    return {daemon::make_response(req, daemon::http::status::not_found, "not found: try /stream/HASH/INDEX\n"), {}};
  });
  if (auto ec =
          server.listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(a.http_port)))) {
    ses.shutdown();
    return fail("cannot listen for HTTP on 127.0.0.1 port " + std::to_string(a.http_port) + ": " + ec.message() +
                " (choose another with --http-port, or 0 for any)");
  }

  if (!mag) {
    // Only the file streamed is downloaded (a reader of another one makes that one wanted).
    std::vector<stream::file_entry> entries;
    for (std::size_t i = 0; i < info_files.size(); ++i)
      entries.push_back({static_cast<std::uint32_t>(i), info_files[i].path, info_files[i].size, info_files[i].pad});
    if (auto index = pick_file(entries, a.file)) {
      tp.file_priorities.assign(entries.size(), 0);
      tp.file_priorities[*index] = 1;
    }
  }
  torrent_handle h = ses.add(std::move(tp));
  const torrent_id id = h.id();
  const bool tty = ::isatty(STDERR_FILENO) == 1;

  int exit_code = exit_ok;
  bool stopping = false;
  pid_t player = 0;
  asio::steady_timer ticker(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto shutdown = [&](int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    server.stop();
    ticker.cancel();
    signals.cancel();
    io.stop();
  };

  // Until the player's first request arrives, a reader at the file's start makes its first
  // pieces the ones asked for: without it the peers' queues fill with rarest-first pieces
  // in the moment between adding the torrent and the player's request, and the first byte
  // waits behind them. Dropped once the player reads (it then has a reader of its own).
  std::shared_ptr<stream::file_reader> first_reader;
  // Once the files are known: pick one, want only it, print its URL.
  bool announced = false;
  std::string name;
  auto announce = [&]() -> bool {
    if (announced) return true;
    auto files = stream::list_files(ses, id);
    if (!files) return false;
    announced = true;
    auto index = pick_file(*files, a.file);
    if (!index) {
      const auto n = real_files(*files);
      if (a.file > 0) {
        usage_error(cmd, fmt::format("--file {}: the torrent has {} file{}", a.file, n, n == 1 ? "" : "s"));
        shutdown(exit_usage);
      } else {
        fail("the torrent has no files");
        shutdown(exit_error);
      }
      return true;
    }
    std::vector<std::uint8_t> prio(files->size(), 0);
    for (std::size_t i = 0; i < files->size(); ++i) {
      if ((*files)[i].index == *index) prio[i] = 1;
    }
    h.set_file_priorities(std::move(prio));
    first_reader = stream::file_reader::open(ses, id, *index);
    const std::string url =
        fmt::format("http://127.0.0.1:{}/stream/{}/{}", server.port(), stream::url_hash(ses, id), *index);
    fmt::print("{}\n", url);
    std::fflush(stdout);
    for (const auto& f : *files) {
      if (f.index == *index) {
        name = f.path;
        fmt::print(stderr, "streaming {} ({}, {}); playlist: http://127.0.0.1:{}/stream/{}.m3u\n", printable(f.path),
                   human_size(f.size), stream::content_type_for(f.path), server.port(), stream::url_hash(ses, id));
      }
    }
    if (!a.player.empty()) {
      player = start_player(a.player, url);
      if (player == 0) {
        fail("cannot start the player '" + a.player + "'");
        shutdown(exit_error);
      }
    }
    return true;
  };

  // Events: the metadata of a magnet, a torrent that failed.
  std::atomic<bool> drain_posted{false};
  std::function<void()> drain = [&] {
    drain_posted = false;
    for (auto& e : ses.events().pop()) {
      if (e.torrent != id || stopping) continue;
      if (e.kind == event_kind::metadata_received) {
        announce();
      } else if (e.kind == event_kind::error) {
        auto s = h.status();
        if (s && s->state == torrent_state::error) {
          if (tty) fmt::print(stderr, "\n");
          fmt::print(stderr, "shoal: error: {}: {}\n", printable(name.empty() ? s->name : name), printable(e.message));
          shutdown(exit_error);
          return;
        }
      }
    }
  };
  ses.set_event_notify([&] {
    if (drain_posted.exchange(true)) return;
    asio::post(io, [&] { drain(); });
  });
  if (mag) {
    fmt::print(stderr, "fetching the metadata from peers...\n");
  }
  asio::post(io, [&] { announce(); });

  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int) {
    if (ec) return;
    if (tty) fmt::print(stderr, "\n");
    fmt::print(stderr, "shoal: stopping...\n");
    if (player > 0) ::kill(player, SIGTERM);
    shutdown(exit_ok);
  };
  signals.async_wait(on_signal);

  // Progress on stderr, and the player's exit.
  int ticks = 0;
  std::function<void(boost::system::error_code)> tick = [&](boost::system::error_code ec) {
    if (ec || stopping) return;
    ++ticks;
    if (first_reader && ses.call([&ses, id] {
          auto t = ses.find(id);
          return t ? t->stream_readers() : 0;
        }) > 1) {
      first_reader.reset();
    }
    if (player > 0) {
      int status = 0;
      if (::waitpid(player, &status, WNOHANG) == player) {
        player = 0;
        if (tty) fmt::print(stderr, "\n");
        fmt::print(stderr, "the player exited\n");
        shutdown(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? exit_ok : exit_error);
        return;
      }
    }
    if (announced && ticks % 5 == 0) {
      if (auto s = h.status()) {
        const double frac =
            s->total_wanted ? static_cast<double>(s->have_wanted) / static_cast<double>(s->total_wanted) : 1.0;
        const auto line = fmt::format("{} {:5.1f}%  {} / {}  down {}/s  up {}/s  peers {}", state_name(s->state),
                                      frac * 100, human_size(s->have_wanted), human_size(s->total_wanted),
                                      human_size(static_cast<std::uint64_t>(s->download_rate)),
                                      human_size(static_cast<std::uint64_t>(s->upload_rate)), s->peers);
        if (tty) {
          fmt::print(stderr, "\r{}   ", line);
        } else if (ticks % 25 == 0) {
          fmt::print(stderr, "{}\n", line);
        }
        std::fflush(stderr);
      }
    }
    ticker.expires_after(std::chrono::milliseconds(200));
    ticker.async_wait(tick);
  };
  ticker.expires_after(std::chrono::milliseconds(200));
  ticker.async_wait(tick);

  io.run();
  if (tty) fmt::print(stderr, "\n");
  ses.shutdown();
  // Bodies still waiting on reads end now that the session stopped.
  io.restart();
  io.poll();
  return exit_code;
}

}  // namespace

runner add_stream(CLI::App& app) {
  auto a = std::make_shared<stream_args>();
  app.add_option("TORRENT", a->target, "A .torrent file, its http(s):// URL, or a magnet link")->required();
  app.add_option("-d,--dir", a->dir, "Folder the torrent's files are saved in");
  app.add_option("--file", a->file,
                 "The file to stream, numbered from 1 as `shoal info` shows them (default: the largest audio or video "
                 "file, else the largest file)")
      ->check(CLI::Range(1u, 1000000000u))
      ->default_str("");
  app.add_option("--http-port", a->http_port, "Port of the HTTP server on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--port", a->port, "TCP port to listen on for peers (0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--peer", a->peers, "Connect to this peer (HOST:PORT); repeatable")->default_str("");
  app.add_option("--player", a->player,
                 "Run this player on the stream URL (split on spaces, the URL added last, e.g. \"mpv --fs\"); exit "
                 "when it exits");
  app.add_flag("--local", a->local, "Keep all traffic on loopback and the given addresses (also SHOAL_LOCAL=1)");
  app.add_flag("--no-dht", a->no_dht, "Do not use the DHT");
  app.add_flag("--no-lsd", a->no_lsd, "Do not look for peers on the local network (BEP 14 multicast)");
  app.add_option("--dht-bootstrap", a->dht_bootstrap,
                 "Join the DHT through this node (HOST:PORT; repeatable; default: the public routers)")
      ->default_str("");
  app.add_flag("-v,--verbose", a->verbose, "Log peer connections and tracker replies on stderr");
  return [a] { return run_stream(*a); };
}

}  // namespace shoal::cli
