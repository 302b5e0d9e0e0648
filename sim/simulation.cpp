#include "sim/simulation.h"

#include <algorithm>
#include <future>

#include "sim/sluice_policy.h"

namespace sluice::sim {

Expected<SimulationResult> simulate(config::Scenario scenario, const SimulationOptions& options) {
  if (options.days > 0) scenario.days = options.days;
  for (const std::string& name : options.policies) {
    if (std::find(kAllPolicies.begin(), kAllPolicies.end(), name) == kAllPolicies.end()) {
      return Error{"unknown policy '" + name +
                   "' (sluice, static, pmta-backoff, kumo-step, aimd, oracle)"};
    }
  }
  SimulationResult result;
  result.scenario = scenario;
  result.runs.resize(options.policies.size());

  // The sluice run goes through files and SQLite and takes most of the time: it gets its own
  // thread while the baselines run on this one.
  std::future<Expected<std::vector<Decision>>> sluice_run;
  for (std::size_t i = 0; i < options.policies.size(); ++i) {
    if (options.policies[i] != "sluice") continue;
    sluice_run = std::async(std::launch::async, [&, i]() -> Expected<std::vector<Decision>> {
      const World world(scenario);
      SluicePolicy policy(world, options.work_dir, options.sluice_policy);
      result.runs[i] = run_policy(scenario, policy, options.keep_traces);
      if (!policy.error().empty()) return Error{"the sluice policy's cycle: " + policy.error()};
      return policy.decisions();
    });
  }
  for (std::size_t i = 0; i < options.policies.size(); ++i) {
    if (options.policies[i] == "sluice") continue;
    std::unique_ptr<Policy> policy = make_baseline(options.policies[i]);
    result.runs[i] = run_policy(scenario, *policy, options.keep_traces);
  }
  if (sluice_run.valid()) {
    Expected<std::vector<Decision>> decisions = sluice_run.get();
    if (!decisions) return decisions.error();
    result.sluice_decisions = std::move(*decisions);
  }

  std::vector<Metrics> metrics;
  for (const Run& r : result.runs) metrics.push_back(r.metrics);
  compare_with_oracle(metrics);
  for (std::size_t i = 0; i < metrics.size(); ++i) result.runs[i].metrics = metrics[i];
  result.failed_limits = failed_limits(scenario, metrics);
  return result;
}

}  // namespace sluice::sim
