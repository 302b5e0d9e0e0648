#pragma once
// Prometheus metrics of the control loop in the text exposition format 0.0.4, written after each
// cycle of `once` and `run` to [metrics] textfile for node_exporter's textfile collector.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "controller/cycle.h"
#include "controller/ports.h"
#include "controller/read_stats.h"

namespace sluice::cli {

struct PairMetrics {
  std::string pool;
  std::string isp;
  std::optional<int> max_smtp_out;  // nullopt: no state yet (a new pair a freeze held)
  Tier tier = Tier::medium;
  int cap = 1;
  std::optional<Phase> phase;  // nullopt: no state yet
  // Deferrals of each class over attempts, over the last decision window's length; indexed by
  // DeferralClass (none is not shown).
  std::array<double, kDeferralClassCount> deferral_ratio{};
  bool override_in_force = false;  // a pin, freeze or bounds of the pair, or the kill switch
};

struct MetricsInput {
  std::vector<PairMetrics> pairs;
  // The audit trail's rows by (pool, ISP, rule): monotonic across cycles and restarts.
  std::map<std::tuple<std::string, std::string, Rule>, std::uint64_t> decisions;
  std::uint64_t reloads = 0;          // cycles whose change pmta reloaded
  std::uint64_t reload_failures = 0;  // cycles whose change was refused and put back
  double cycle_duration_seconds = 0;
  UnixSeconds last_cycle_at = 0;
  // Of the last cycle only: the reader keeps no running total across restarts.
  std::uint64_t records = 0;
  std::array<std::uint64_t, kMalformedReasonCount> malformed{};
};

std::string render_metrics(const MetricsInput& input);

// The metrics after the cycle `report` describes, from the state database it committed to.
Expected<MetricsInput> collect_metrics(const config::Config& config,
                                       const std::vector<ManagedPair>& pairs, StateStore& store,
                                       const CycleReport& report,
                                       std::chrono::steady_clock::duration took);

// Writes them to [metrics] textfile when it is set, and returns their text when a textfile or a
// listener wants it; a failure is a warning, never a failed cycle.
std::optional<std::string> export_metrics(const config::Config& config,
                                          const std::vector<ManagedPair>& pairs, StateStore& store,
                                          const CycleReport& report,
                                          std::chrono::steady_clock::duration took);

}  // namespace sluice::cli
