#pragma once
// The interfaces (ports) the controller's cycle needs; adapters/ and state/ implement them.

#include <cstdint>
#include <string>
#include <vector>

#include "controller/domain.h"
#include "controller/expected.h"
#include "controller/read_stats.h"
#include "controller/record_sink.h"

namespace sluice {

// A file is the same file across renames (rotation's move-to) by device, inode and first line.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t head_hash = 0;  // of the first line; tells a replaced file that reuses an inode
  bool operator==(const FileIdentity&) const = default;
};

// Where reading a file stopped: the next unread byte, always at the start of a record.
struct FileCheckpoint {
  std::string path;  // where it was last seen (informative; identity decides)
  FileIdentity identity;
  std::uint64_t offset = 0;
  std::uint64_t line = 1;  // physical line number at `offset`
  std::string header;      // the header line in force at `offset` (columns map by name)
  // Of the bytes just before `offset`: a file rewritten in place under the same identity no
  // longer holds them.
  std::uint64_t tail_hash = 0;
  bool inside_long_line = false;  // `offset` is inside a line over 1 MiB, already counted
};

struct ReadOutcome {
  std::vector<FileCheckpoint> checkpoints;  // one per file that exists now
  ReadStats stats;
};

class AccountingSource {
 public:
  virtual ~AccountingSource() = default;
  // Reads what was added since `known` and returns the new checkpoints. Each record reaches
  // `sink` once as long as the caller persists the returned checkpoints with what it derived.
  virtual Expected<ReadOutcome> read_new(const std::vector<FileCheckpoint>& known,
                                         PartitionedSink& sink) = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixSeconds now() const = 0;
};

}  // namespace sluice

#include <chrono>
#include <optional>

#include "controller/overrides.h"
#include "controller/policy.h"
#include "controller/signals.h"

namespace sluice {

struct SignalBucket;

// Persistent memory of the loop. Reading is idempotent because the checkpoints and the buckets
// counted from the same bytes commit in one transaction.
class SignalStore {
 public:
  virtual ~SignalStore() = default;
  virtual Expected<std::vector<FileCheckpoint>> load_checkpoints() = 0;
  virtual Status commit_read(const std::vector<FileCheckpoint>& checkpoints,
                             const std::vector<SignalBucket>& buckets) = 0;
  virtual Expected<std::vector<SignalBucket>> buckets_since(UnixSeconds start) = 0;
  // Daily totals per (pool, ISP) of the buckets committed, for days at or after `day`.
  virtual Expected<std::vector<PairDay>> pair_days_since(UnixSeconds day) = 0;
  virtual Status prune_buckets_before(UnixSeconds start) = 0;
};

// A finished command. `error` is set when it could not run at all (missing, not executable).
struct CommandResult {
  int exit_code = -1;
  bool timed_out = false;  // killed after the timeout
  std::string out;
  std::string err;
  std::string error;
  bool succeeded() const { return error.empty() && !timed_out && exit_code == 0; }
};

// Runs a program with an argument vector, never through a shell.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual CommandResult run(const std::vector<std::string>& argv,
                            std::chrono::milliseconds timeout) = 0;
};

// Which fragment: the pool's, <fragments>/<pool>/<isp>.conf, or one VMTA's that an override
// sets, <fragments>/<pool>/<isp>/<vmta>.conf (included in that VMTA's own <domain> block).
struct FragmentKey {
  std::string pool;
  std::string isp;
  std::string vmta;  // empty: the pool's
};

class FragmentStore {
 public:
  virtual ~FragmentStore() = default;
  // The fragment's content, nullopt when there is none.
  virtual Expected<std::optional<std::string>> read(const FragmentKey& key) = 0;
  // Replaces it atomically; nullopt removes it (to restore "there was none").
  virtual Status write(const FragmentKey& key, const std::optional<std::string>& content) = 0;
  virtual std::string path(const FragmentKey& key) const = 0;

  // The pool's own fragment.
  Expected<std::optional<std::string>> read(const std::string& pool, const std::string& isp) {
    return read(FragmentKey{pool, isp, {}});
  }
  Status write(const std::string& pool, const std::string& isp,
               const std::optional<std::string>& content) {
    return write(FragmentKey{pool, isp, {}}, content);
  }
  std::string path(const std::string& pool, const std::string& isp) const {
    return path(FragmentKey{pool, isp, {}});
  }
};

// One entry of the audit trail.
struct DecisionRecord {
  Decision decision;
  bool applied = false;      // false: dry run
  std::string pmta_outcome;  // "reloaded", "not needed", "test config failed: ...", ...
};

struct HistoryFilter {
  std::optional<std::string> pool;
  std::optional<std::string> isp;
  std::optional<UnixSeconds> since;
};

// The override file, read at the start of every cycle.
struct OverrideRead {
  std::optional<Overrides> overrides;  // nullopt: not usable now (error says why)
  std::string text;                    // the text that gave `overrides`
  std::string error;                   // one line: "FILE:LINE: problem"
};

class OverrideSource {
 public:
  virtual ~OverrideSource() = default;
  // A missing or empty file is no overrides; a broken one, or one changing while it is read,
  // is an error.
  virtual OverrideRead read() = 0;
  // A text read from the file before (the last valid one), checked again.
  virtual OverrideRead parse(const std::string& text) = 0;
};

// A pool's reputation tier at an ISP, as the reputation command reports it.
struct ReputationTier {
  std::string pool;
  std::string isp;
  Tier tier = Tier::medium;
  bool operator==(const ReputationTier&) const = default;
};

struct ReputationRead {
  std::vector<ReputationTier> tiers;  // the whole answer: a pair left out has no reputation tier
  std::vector<std::string> warnings;  // lines ignored (a pool or ISP not managed)
};

class ReputationSource {
 public:
  virtual ~ReputationSource() = default;
  // A failed or malformed answer is an error, one line naming the source.
  virtual Expected<ReputationRead> read() = 0;
};

// The reputation command's last good answer, and when it last ran, good or not.
struct KnownReputation {
  UnixSeconds last_run = 0;  // 0: never
  std::vector<ReputationTier> tiers;
};

// A run of the reputation command in this cycle.
struct ReputationRun {
  UnixSeconds at = 0;
  std::optional<std::vector<ReputationTier>> tiers;  // nullopt: it failed; the last ones stay
};

// What an override holds a VMTA's fragment at (absent: the VMTA inherits the pool's value).
// What a VMTA's own fragment holds: set by an override, or by the per-IP diagnosis (deferrals
// concentrated on that VMTA's IP), which then holds it until `hold_until` before its next step.
struct VmtaSetting {
  std::string pool;
  std::string isp;
  std::string vmta;
  int value = 0;
  UnixSeconds since = 0;
  bool diagnosis = false;
  UnixSeconds hold_until = 0;
  UnixSeconds last_throttle_at = 0;  // its IP's last throttle signal: recovery waits for quiet
  bool operator==(const VmtaSetting&) const = default;
};

// The side of a cycle beyond the pair states, committed with the rest.
// A fragment a cycle is about to rewrite, recorded before it is touched: what to put back if
// the cycle dies before its commit.
struct PendingFragment {
  FragmentKey key;
  std::optional<std::string> before;  // nullopt: there was none
  std::string after;
  bool operator==(const PendingFragment& o) const {
    return key.pool == o.key.pool && key.isp == o.key.isp && key.vmta == o.key.vmta &&
           before == o.before && after == o.after;
  }
};

struct PendingApply {
  UnixSeconds at = 0;  // the cycle's now
  std::vector<PendingFragment> fragments;
  bool operator==(const PendingApply&) const = default;
};

struct ManualCommit {
  bool clear_pending_apply = false;          // this cycle began an apply: its commit ends it
  std::optional<std::string> override_text;  // the override file, when it was valid
  std::optional<std::vector<VmtaSetting>> vmta_settings;  // the whole set, when it changed
  std::vector<IpVmta> ip_vmtas;                           // learned from this cycle's records
  std::optional<ReputationRun> reputation;                // the reputation command ran
};

// Everything the loop remembers, in one database.
class StateStore : public SignalStore {
 public:
  virtual Expected<std::vector<PairState>> load_pairs() = 0;
  // One transaction: what was read (checkpoints and buckets), the pairs' new states and the
  // decisions of the cycle. A crash leaves either all of it or none.
  virtual Status commit_cycle(const std::vector<FileCheckpoint>& checkpoints,
                              const std::vector<SignalBucket>& buckets,
                              const std::vector<PairState>& pairs,
                              const std::vector<DecisionRecord>& decisions,
                              const ManualCommit& manual) = 0;
  virtual Expected<std::vector<VmtaSetting>> load_vmta_settings() = 0;
  // Every (pool, source IP) -> VMTA learned so far.
  virtual Expected<std::vector<IpVmta>> load_ip_vmtas() = 0;
  // The override file's text as of the last cycle that found it valid (nullopt: never).
  virtual Expected<std::optional<std::string>> last_override_text() = 0;
  virtual Expected<KnownReputation> load_reputation() = 0;
  virtual Expected<std::vector<DecisionRecord>> history(const HistoryFilter& filter) = 0;

  // Committed before the first fragment of a cycle is written, ended by that cycle's commit: one
  // found when a cycle starts belongs to a cycle that died in between, whose fragments PowerMTA
  // may run while the state does not know them.
  virtual Status begin_apply(const PendingApply& pending) = 0;
  virtual Expected<std::optional<PendingApply>> pending_apply() = 0;
  virtual Status end_pending_apply() = 0;
};

}  // namespace sluice
