#pragma once
// The simulated world of `sluice simulate`: per source IP a hidden connection limit that the
// scenario and reputation dynamics move, a demand queue per pool, PowerMTA opening
// min(setting, needed) connections per VMTA. The model is described in docs/simulator.md.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/scenario.h"

namespace sluice::sim {

// One VMTA (one source IP) of the scenario, in the order the policies' settings use.
struct VmtaRef {
  std::size_t pool = 0;  // index into Scenario::pools
  std::string pool_name;
  std::string isp;
  std::string domain;
  std::string vmta;
  std::string address;
};

// What one VMTA did in one step.
struct VmtaStep {
  int setting = 0;  // max-smtp-out in force
  int limit = 0;    // the hidden limit during the step
  int needed = 0;   // connections the queue could have used
  int opened = 0;   // min(setting, needed)
  int refused = 0;  // opened connections beyond the limit
  std::uint64_t delivered = 0;
  std::uint64_t throttled = 0;  // messages deferred on refused connections (throttle text)
  std::uint64_t noise = 0;      // recipient-level deferrals (no pool action is right)
  std::uint64_t uncurable = 0;  // throttle deferrals whatever the concurrency
  std::uint64_t queued = 0;     // left in the VMTA's share of the queue after the step
  std::uint64_t deferred() const { return throttled + noise + uncurable; }
};

struct StepResult {
  std::int64_t at = 0;  // unix seconds of the step's start
  std::vector<VmtaStep> vmtas;
};

class World {
 public:
  explicit World(const config::Scenario& scenario);

  const config::Scenario& scenario() const { return scenario_; }
  const std::vector<VmtaRef>& vmtas() const { return vmtas_; }
  std::int64_t now() const;  // unix seconds of the next step's start
  std::size_t step_index() const { return step_; }
  std::size_t steps_total() const;
  bool done() const { return step_ >= steps_total(); }
  // The hidden limit of a VMTA for the next step (what the oracle uses).
  int limit(std::size_t vmta) const;
  // Runs one step with each VMTA's setting (in vmtas() order) and advances time.
  StepResult step(const std::vector<int>& settings);

 private:
  int limit_at(std::size_t vmta, std::int64_t offset) const;
  double event_factor(std::size_t vmta, config::SimEventKind kind, std::int64_t offset) const;
  double event_share(std::size_t vmta, config::SimEventKind kind, std::int64_t offset) const;
  double demand_factor(std::size_t pool, std::int64_t offset) const;
  void end_of_day();

  config::Scenario scenario_;
  std::vector<VmtaRef> vmtas_;
  std::size_t step_ = 0;
  std::vector<std::size_t> first_vmta_;  // per pool: its VMTAs are vmtas_[first, first + ips)
  std::vector<std::vector<std::size_t>> vmta_events_;  // per VMTA: limit/noise/uncurable events
  std::vector<std::vector<std::size_t>> pool_demand_events_;  // per pool
  std::vector<double> base_limit_;                            // per VMTA: the scenario's limit
  std::vector<double> reputation_;   // per VMTA: the multiplier reputation dynamics apply
  std::vector<int> overrun_run_;     // per VMTA: overrun steps in a row
  std::vector<bool> overrun_today_;  // per VMTA
  // Per VMTA: fractions of a message owed to the noise and uncurable shares, carried from step
  // to step so that small shares still show up, deterministically.
  std::vector<double> noise_carry_;
  std::vector<double> uncurable_carry_;
  std::vector<double> backlog_;  // per pool: messages waiting
};

// The deferral texts an ISP returns (as PowerMTA logs them in dsnDiag), so that the real
// classifier reads them: refused connections, recipient-level noise, and reputation blocks.
struct IspTexts {
  std::string throttle;   // connection class
  std::string noise;      // recipient class
  std::string uncurable;  // reputation class (rate at gmx and generic: no reputation rule there)
  std::string delivered;  // the 250 reply
  std::string mx;         // dsnMta
};
IspTexts texts_for(const std::string& isp, const std::string& address);

}  // namespace sluice::sim
