// shoal: the command-line face of libshoal. Parses flags and calls the library.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "console.hpp"

namespace {

// The subcommand the parse reached last: its --help is the one that explains the error.
CLI::App* deepest(CLI::App* app) {
  for (auto* s : app->get_subcommands({})) {
    if (s->parsed()) return deepest(s);
  }
  return app;
}

// "download", "dht get"; empty for the top level.
std::string command_path(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a->get_parent() != nullptr; a = a->get_parent())
    path = path.empty() ? a->get_name() : a->get_name() + " " + path;
  return path;
}

// What the user probably meant by an unknown flag or subcommand: the nearest known name by
// edit distance, if it is near enough to be a typo.
std::string nearest(const std::string& typed, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& k : known) {
    const std::size_t d = shoal::cli::edit_distance(typed, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, typed.size() / 3);
  return best_d <= limit ? best : std::string();
}

std::string explain(const CLI::ParseError& e, CLI::App* at) {
  if (dynamic_cast<const CLI::ExtrasError*>(&e) == nullptr) return e.what();
  auto extra = at->remaining();
  if (extra.empty()) return e.what();
  // The first unknown flag if there is one; else a stray word.
  std::string word = extra.front();
  for (const auto& x : extra) {
    if (x.size() > 1 && x[0] == '-') {
      word = x;
      break;
    }
  }
  if (word.size() > 1 && word[0] == '-') {
    const std::string flag = word.substr(0, word.find('='));
    std::vector<std::string> names;
    for (const auto* o : at->get_options()) {
      for (const auto& l : o->get_lnames())
        names.push_back("--" + l);
      for (const auto& s : o->get_snames())
        names.push_back("-" + s);
    }
    auto near = nearest(flag, names);
    return "unknown flag " + flag + (near.empty() ? std::string() : "; did you mean " + near + "?");
  }
  std::vector<std::string> subs;
  for (const auto* s : at->get_subcommands({})) {
    if (!s->get_group().empty()) subs.push_back(s->get_name());
  }
  if (!subs.empty() && at->get_subcommands().empty()) {
    auto near = nearest(word, subs);
    return "unknown command '" + word + "'" + (near.empty() ? std::string() : "; did you mean " + near + "?");
  }
  return "unexpected argument '" + word + "'";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal: BitTorrent: create, inspect, download and seed torrents; run a tracker; publish a folder",
               "shoal"};
  // Every option's help shows its default (options whose default is a sentinel clear theirs).
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", shoal::cli::version_string(), "Print the version and the git commit, and exit");
  app.require_subcommand(0, 1);

  std::vector<std::pair<CLI::App*, shoal::cli::runner>> commands;
  auto* create = app.add_subcommand("create", "Make a .torrent (v1, v2 or hybrid) from a file or folder");
  commands.emplace_back(create, shoal::cli::add_create(*create));
  auto* info = app.add_subcommand("info", "Show what a .torrent file (or its URL) or magnet link holds");
  commands.emplace_back(info, shoal::cli::add_info(*info));
  auto* download = app.add_subcommand("download", "Download a torrent, then seed it (see --seed-ratio, --seed-time)");
  commands.emplace_back(download, shoal::cli::add_download(*download));
  auto* seed = app.add_subcommand("seed", "Check a torrent's data and seed it until stopped");
  commands.emplace_back(seed, shoal::cli::add_seed(*seed));
  auto* dht = app.add_subcommand("dht", "Run a DHT node, find peers, put and get BEP 44 items");
  commands.emplace_back(dht, shoal::cli::add_dht(*dht));
  auto* tracker = app.add_subcommand("tracker", "Run an HTTP and UDP BitTorrent tracker until stopped");
  commands.emplace_back(tracker, shoal::cli::add_tracker(*tracker));
  auto* scrape = app.add_subcommand(
      "scrape", "Ask a torrent's trackers (not the DHT) for its seeders, leechers and completed downloads");
  commands.emplace_back(scrape, shoal::cli::add_scrape(*scrape));
  auto* publish =
      app.add_subcommand("publish", "Make a web-seeded torrent per entry of a served folder, and an RSS feed of them");
  commands.emplace_back(publish, shoal::cli::add_publish(*publish));
  auto* sync = app.add_subcommand("sync", "Keep a folder in sync between devices: make, join, scan and inspect one");
  commands.emplace_back(sync, shoal::cli::add_sync(*sync));

  auto* daemon = app.add_subcommand(
      "daemon", "Run in the background of a server: many torrents, the Transmission RPC and a web UI on port 9091");
  commands.emplace_back(daemon, shoal::cli::add_daemon(*daemon));
  auto* stream = app.add_subcommand(
      "stream", "Play a video or song from a torrent while it downloads: an HTTP stream URL on 127.0.0.1, or a player");
  commands.emplace_back(stream, shoal::cli::add_stream(*stream));
  auto* fetch_md = app.add_subcommand("fetch-metadata", "Write a magnet link's .torrent, from peers or its xs= URL");
  commands.emplace_back(fetch_md, shoal::cli::add_fetch_metadata(*fetch_md));
  // Hidden (no group): what `make install` and docs/CLI.md are generated with.
  auto* docs = app.add_subcommand("gen-docs", "Write man pages, shell completions and the CLI reference")->group("");
  commands.emplace_back(docs, shoal::cli::add_docs(app, *docs));

  // An empty list or a sentinel is no default worth showing ("=[]").
  std::function<void(CLI::App*)> tidy = [&](CLI::App* at) {
    for (auto* o : at->get_options()) {
      if (o->get_default_str() == "[]") o->default_str("");
    }
    for (auto* s : at->get_subcommands({}))
      tidy(s);
  };
  tidy(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; exit code 2 means "wrong arguments".
    CLI::App* at = deepest(&app);
    return shoal::cli::usage_error(command_path(at), explain(e, at));
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) {
      try {
        return run();
      } catch (const std::exception& e) {
        return shoal::cli::fail(e.what());
      }
    }
  }
  fmt::print("{}", app.help());
  return shoal::cli::exit_ok;
}
