#pragma once
// `sluice simulate` (the policies side by side in a simulated world) and `sluice replay` (the
// configured policy over the configured accounting files, writing nothing).

#include <string>
#include <vector>

#include "cli/setup.h"

namespace sluice::cli {

struct SimulateArgs {
  std::string scenario;
  std::vector<std::string> policies;  // empty: all six
  std::int64_t days = 0;
  std::string html;
};

struct ReplayArgs {
  std::string from;
  std::string to;
};

int run_simulate(const GlobalOptions& global, const SimulateArgs& args);
int run_replay(const GlobalOptions& global, const ReplayArgs& args);

}  // namespace sluice::cli
