#pragma once
// A whole `sluice simulate` run: every chosen policy over its own fresh world of the scenario.

#include <string>
#include <vector>

#include "controller/expected.h"
#include "controller/policy.h"
#include "sim/policies.h"

namespace sluice::sim {

inline const std::vector<std::string> kAllPolicies = {"sluice",    "static", "pmta-backoff",
                                                      "kumo-step", "aimd",   "oracle"};

struct SimulationOptions {
  std::vector<std::string> policies = kAllPolicies;
  std::int64_t days = 0;  // 0: the scenario's
  bool keep_traces = false;
  PolicyParams sluice_policy = default_policy();
  std::string work_dir;  // for the sluice policy's files; must exist and be empty
};

struct SimulationResult {
  config::Scenario scenario;  // as run (days adjusted)
  std::vector<Run> runs;      // in the order of the options' policies
  std::vector<Decision> sluice_decisions;
  std::vector<std::string> failed_limits;
};

Expected<SimulationResult> simulate(config::Scenario scenario, const SimulationOptions& options);

}  // namespace sluice::sim
