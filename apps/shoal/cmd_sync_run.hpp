// `shoal sync run DIR`: the folder kept in sync with its peers, in the foreground.
#pragma once

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace shoal::cli {

// Adds `run` under the `sync` command; the runner is called when it was parsed.
struct sync_run_command {
  CLI::App* app = nullptr;
  runner run;
};
sync_run_command add_sync_run(CLI::App& sync);

}  // namespace shoal::cli
