#pragma once
// The policies `sluice simulate` compares, and the figures it reports for each. The `sluice`
// policy itself (the real controller, through files) is in sim/sluice_policy.h.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/world.h"

namespace sluice::sim {

// Chooses each VMTA's setting before a step and sees the step's outcome.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  virtual std::vector<int> settings(const World& world) = 0;
  virtual void observe(const World& world, const StepResult& step) = 0;
  // Configuration reloads it needed (0 for policies PowerMTA or KumoMTA apply without one).
  virtual std::uint64_t reloads() const { return 0; }
};

// Each VMTA's starting value: the pool's start_setting, else the tier's starting value at the
// ISP in sluice's default policy.
std::vector<int> start_settings(const World& world);

// never changes
std::unique_ptr<Policy> make_static();
// PowerMTA's backoff mode: on a throttle 421 the queue runs at backoff-max-smtp-out 2 until
// backoff-to-normal-after (1 h) passes without one.
std::unique_ptr<Policy> make_pmta_backoff();
// KumoMTA's traffic-shaping automation: on a matching deferral, 1 connection for 90 minutes,
// then back.
std::unique_ptr<Policy> make_kumo_step();
// Halve on any 421 in a step, +1 per clean step, at least 1; a reload per change.
std::unique_ptr<Policy> make_aimd();
// Always the true limit: the upper bound of what any policy can deliver without overrun.
std::unique_ptr<Policy> make_oracle();
// By name: static, pmta-backoff, kumo-step, aimd, oracle; nullptr for another name.
std::unique_ptr<Policy> make_baseline(const std::string& name);

// What one policy did over the whole run.
struct Metrics {
  std::string policy;
  std::uint64_t delivered = 0;
  std::uint64_t deferred = 0;  // t and tq: every deferral written
  double deferral_rate = 0;    // deferred / (delivered + deferred)
  std::uint64_t overrun = 0;   // refused connection-steps: the reputation damage
  double delivered_share = 0;  // of the oracle's delivered (1 without an oracle run)
  std::uint64_t changes = 0;   // setting changes, over all VMTAs
  std::uint64_t reloads = 0;
  std::optional<std::int64_t> time_to_cut;      // seconds from the incident's start
  std::optional<std::int64_t> time_to_recover;  // seconds from the incident's end
};

// The series the charts draw, one point per step.
struct Trace {
  std::vector<std::int64_t> at;
  std::vector<std::vector<int>> settings;  // [step][vmta]
  std::vector<std::vector<int>> limits;    // [step][vmta]
  std::vector<double> deferral_rate;       // [step], over all VMTAs
};

// Runs one policy over a fresh world of the scenario; keeps the trace when asked.
struct Run {
  Metrics metrics;
  Trace trace;
};
Run run_policy(const config::Scenario& scenario, Policy& policy, bool keep_trace);

// Fills delivered_share from the oracle's run, when there is one.
void compare_with_oracle(std::vector<Metrics>& metrics);

// The scenario's pass limits that fail, one line each ("sluice deferral_rate 0.12 is not below
// 0.333 x pmta-backoff's 0.20").
std::vector<std::string> failed_limits(const config::Scenario& scenario,
                                       const std::vector<Metrics>& metrics);

}  // namespace sluice::sim
