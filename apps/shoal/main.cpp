// shoal: the command-line face of libshoal. Parses flags and calls the library.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "console.hpp"

int main(int argc, char** argv) {
  CLI::App app{"shoal: BitTorrent: create, inspect, download and seed torrents; run a tracker; publish a folder",
               "shoal"};
  app.set_version_flag("--version", "shoal 0.1.0");
  app.require_subcommand(0, 1);

  std::vector<std::pair<CLI::App*, shoal::cli::runner>> commands;
  auto* create = app.add_subcommand("create", "Make a .torrent (v1, v2 or hybrid) from a file or folder");
  commands.emplace_back(create, shoal::cli::add_create(*create));
  auto* info = app.add_subcommand("info", "Show what a .torrent file or magnet link holds");
  commands.emplace_back(info, shoal::cli::add_info(*info));
  auto* download = app.add_subcommand("download", "Download a torrent, then seed it (see --seed-ratio, --seed-time)");
  commands.emplace_back(download, shoal::cli::add_download(*download));
  auto* seed = app.add_subcommand("seed", "Check a torrent's data and seed it until stopped");
  commands.emplace_back(seed, shoal::cli::add_seed(*seed));
  auto* dht = app.add_subcommand("dht", "Run a DHT node, find peers, put and get BEP 44 items");
  commands.emplace_back(dht, shoal::cli::add_dht(*dht));
  auto* tracker = app.add_subcommand("tracker", "Run an HTTP and UDP BitTorrent tracker until stopped");
  commands.emplace_back(tracker, shoal::cli::add_tracker(*tracker));
  auto* publish =
      app.add_subcommand("publish", "Make a web-seeded torrent per entry of a served folder, and an RSS feed of them");
  commands.emplace_back(publish, shoal::cli::add_publish(*publish));

  auto* daemon = app.add_subcommand(
      "daemon", "Run in the background of a server: many torrents, the Transmission RPC and a web UI on port 9091");
  commands.emplace_back(daemon, shoal::cli::add_daemon(*daemon));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; exit code 2 means "wrong arguments".
    fmt::print(stderr, "shoal: error: {} (see shoal --help)\n", e.what());
    return shoal::cli::exit_usage;
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
