#pragma once
// One cycle of the loop: read new accounting records (estimator), decide per pair (policy),
// rewrite fragments and reload PowerMTA (actuator), and remember it all in one transaction.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/estimator.h"
#include "controller/isp_catalog.h"
#include "controller/overrides.h"
#include "controller/policy.h"
#include "controller/ports.h"
#include "controller/signals.h"

namespace sluice {

struct ManagedPair {
  std::string pool;
  std::string isp;
  Tier tier = Tier::medium;
  PolicyParams policy;
};

struct LoopSettings {
  std::string pmta_command = "/usr/sbin/pmta";
  std::chrono::milliseconds pmta_timeout{30000};
  UnixSeconds bucket_seconds = 300;
  UnixSeconds bucket_retention_seconds = 35 * 86400;
};

enum class CycleMode {
  apply,    // decide, write fragments, test and reload
  dry_run,  // record the signals and the decisions it would make; no fragment, no pmta
  plan,     // decide only: no byte written anywhere, no pmta call
};

struct FragmentChange {
  Decision decision;
  std::string path;
  std::optional<std::string> before;  // nullopt: no fragment yet
  std::string after;
};

struct CycleReport {
  UnixSeconds now = 0;
  CycleMode mode = CycleMode::apply;
  ReadStats read;
  Overrides overrides;         // in force this cycle
  std::string override_error;  // the file is broken: the last valid overrides stay in force
  // The reputation command failed: the last known tiers stay in force.
  std::string reputation_error;
  std::vector<std::string> reputation_warnings;  // lines of its answer it ignored
  std::vector<Decision> decisions;
  std::vector<FragmentChange> changes;  // decisions that rewrite a fragment
  // Changes the guard rails held back, one line each: not written, not recorded, and decided
  // again next cycle.
  std::vector<std::string> held;
  // A cycle stopped between writing fragments and its commit: what this one did about it.
  std::string interrupted;
  bool reloaded = false;
  bool pmta_failed = false;  // a change was refused; the previous fragments are back
  std::string pmta_outcome;
};

// What a cycle reads: the accounting source's new records, aggregated, with where it stopped.
struct NewSignals {
  std::vector<FileCheckpoint> checkpoints;
  ReadStats stats;
  std::vector<SignalBucket> buckets;
  std::vector<IpVmta> ip_vmtas;  // the VMTA each new (pool, source IP) was seen with
};

// A pair's tier in force and where it comes from: the override file's [[tier]] (its source),
// else the reputation command's last good answer, else the configuration.
struct TierChoice {
  Tier tier = Tier::medium;
  std::string source;  // "configuration", "reputation command", or the [[tier]]'s source
};
// A pair whose warm-up is complete (`warmed_up`) counts a configured tier warming as medium.
TierChoice choose_tier(const ManagedPair& pair, const Overrides& overrides,
                       const std::map<PairKey, Tier>& reputation, bool warmed_up);

// The reputation tiers by pair.
std::map<PairKey, Tier> tiers_by_pair(const std::vector<ReputationTier>& tiers);

class Controller {
 public:
  Controller(AccountingSource& source, StateStore& store, FragmentStore& fragments,
             OverrideSource& overrides, CommandRunner& runner, const Clock& clock,
             std::shared_ptr<const IspCatalog> catalog, std::shared_ptr<const PoolMap> pool_map,
             std::vector<ManagedPair> pairs, LoopSettings settings);

  // Tiers from `source` (nullptr: none), read again once `interval` has passed since its last
  // run, failed or not; in between, the stored answer is used.
  void set_reputation(ReputationSource* source, UnixSeconds interval) {
    reputation_ = source;
    reputation_interval_ = interval;
  }

  Expected<CycleReport> run_cycle(CycleMode mode);
  // A cycle on signals aggregated elsewhere (a replay of history); the source is not read.
  Expected<CycleReport> run_cycle_on(NewSignals input, CycleMode mode);

 private:
  struct PairPlan;
  struct Guards;
  Expected<CycleReport> run_cycle_at(NewSignals input, CycleMode mode, UnixSeconds now);
  struct PmtaResult {
    bool ok = false;
    bool reloaded = false;
    bool reload_attempted = false;  // PowerMTA may hold the new fragments
    std::string outcome;
  };

  PmtaResult apply_changes(const std::vector<FragmentChange>& changes);
  PmtaResult test_and_reload();
  // A cycle that died between its first fragment write and its commit: its fragments go back to
  // what the state knows, and pmta reloads them. An error leaves the record for the next cycle.
  Status put_back_interrupted(const PendingApply& pending, CycleReport& report);
  // The overrides of this cycle: the file's, else the last valid ones. Sets `text` when the
  // file was valid (to be remembered), and the report's error when it was not.
  Expected<Overrides> current_overrides(CycleReport& report, std::optional<std::string>& text);
  // The reputation tiers of this cycle. Sets `run` when the source was read, and the report's
  // error when that failed.
  Expected<std::map<PairKey, Tier>> current_reputation(CycleReport& report,
                                                       std::optional<ReputationRun>& run);
  // The VMTA fragments overrides set, or set before and must hand back to the pool's value:
  // their changes go into the report; returns the settings once they are applied.
  Expected<std::vector<VmtaSetting>> plan_vmta_fragments(
      std::vector<PairPlan>& plans, const std::vector<VmtaSetting>& stored,
      const std::map<std::pair<std::string, std::string>, std::string>& vmta_of_ip,
      const Overrides& overrides, const Guards& guards, UnixSeconds now, CycleReport& report);
  // What the guard rails go by this cycle: the audit trail since the start of the UTC day (or of
  // the longest reload interval), and the pairs' decisions.
  Expected<Guards> guards_for(const std::vector<PairPlan>& plans, UnixSeconds now);
  // Holds the pairs' own changes that the daily limit or the raise hold stop.
  static void hold_pair_changes(std::vector<PairPlan>& plans, const Guards& guards,
                                CycleReport& report);
  // Holds the changes of the pairs whose reload interval has not passed since the last reload.
  static void hold_for_reload_interval(std::vector<PairPlan>& plans, const Guards& guards,
                                       const std::vector<VmtaSetting>& stored_vmtas,
                                       std::vector<VmtaSetting>& next_vmtas, UnixSeconds now,
                                       CycleReport& report);

  AccountingSource& source_;
  StateStore& store_;
  FragmentStore& fragments_;
  OverrideSource& overrides_;
  CommandRunner& runner_;
  const Clock& clock_;
  std::shared_ptr<const IspCatalog> catalog_;
  std::shared_ptr<const PoolMap> pool_map_;
  // The configured VMTAs of each pool, sorted: their files come with the pool's first fragment.
  std::map<std::string, std::vector<std::string>> vmtas_by_pool_;
  std::vector<ManagedPair> pairs_;
  LoopSettings settings_;
  ReputationSource* reputation_ = nullptr;
  UnixSeconds reputation_interval_ = 3600;
};

}  // namespace sluice
