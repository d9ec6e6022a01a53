// The CLI's subcommands. Each registers its flags on the app and returns a runner.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace shoal::cli {

using runner = std::function<int()>;

runner add_create(CLI::App& app);
runner add_info(CLI::App& app);
runner add_download(CLI::App& app);
runner add_seed(CLI::App& app);
runner add_dht(CLI::App& app);
runner add_tracker(CLI::App& app);
runner add_publish(CLI::App& app);
runner add_daemon(CLI::App& app);

}  // namespace shoal::cli
