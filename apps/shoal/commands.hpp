// The CLI's subcommands. Each registers its flags on the app and returns a runner.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace shoal::cli {

using runner = std::function<int()>;

// Numbers that must be >= 0 (times, ratios) or > 0 (counts, rates), with a short message.
inline CLI::Validator at_least(double low, bool inclusive) {
  return CLI::Validator(
      [low, inclusive](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v)) return "'" + in + "' is not a number";
        if (inclusive ? v >= low : v > low) return {};
        return "must be " + std::string(inclusive ? "0 or more" : "more than 0") + ", not " + in;
      },
      inclusive ? "NONNEGATIVE" : "POSITIVE");
}
inline CLI::Validator non_negative() {
  return at_least(0, true);
}
inline CLI::Validator positive() {
  return at_least(0, false);
}

runner add_create(CLI::App& app);
runner add_info(CLI::App& app);
runner add_download(CLI::App& app);
runner add_seed(CLI::App& app);
runner add_dht(CLI::App& app);
runner add_tracker(CLI::App& app);
runner add_scrape(CLI::App& app);
runner add_publish(CLI::App& app);
runner add_daemon(CLI::App& app);
runner add_sync(CLI::App& app);
runner add_stream(CLI::App& app);
runner add_fetch_metadata(CLI::App& app);
// Hidden: man pages, shell completions and docs/CLI.md from `root`'s definitions.
runner add_docs(CLI::App& root, CLI::App& app);

}  // namespace shoal::cli
