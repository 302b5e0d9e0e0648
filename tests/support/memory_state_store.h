#pragma once
// An in-memory StateStore for tests of the cycle, with the semantics of the SQLite store:
// checkpoints replaced as a whole, buckets summed into the same (start, pool, isp, source_ip,
// class) key, pair states upserted, decisions appended; a commit is all or nothing.

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "controller/estimator.h"
#include "controller/ports.h"
#include "controller/signals.h"

namespace sluice {

class MemoryStateStore : public StateStore {
 public:
  using BucketKey = std::tuple<UnixSeconds, std::string, std::string, std::string, DeferralClass>;

  Expected<std::vector<FileCheckpoint>> load_checkpoints() override { return checkpoints_; }

  Status commit_read(const std::vector<FileCheckpoint>& checkpoints,
                     const std::vector<SignalBucket>& buckets) override {
    if (auto failed = fail()) return *failed;
    write_read(checkpoints, buckets);
    ++revision_;
    return ok_status();
  }

  Expected<std::vector<SignalBucket>> buckets_since(UnixSeconds start) override {
    std::vector<SignalBucket> out;
    for (const auto& [key, counts] : buckets_) {
      const auto& [at, pool, isp, ip, c] = key;
      if (at >= start) out.push_back(SignalBucket{at, pool, isp, ip, c, counts});
    }
    return out;
  }

  // Summed from the buckets, as the SQLite store keeps them while it adds buckets.
  Expected<std::vector<PairDay>> pair_days_since(UnixSeconds first_day) override {
    std::vector<PairDay> out;
    for (PairDay& d :
         daily_totals(buckets_since(std::numeric_limits<UnixSeconds>::min()).value())) {
      if (d.day >= first_day) out.push_back(std::move(d));
    }
    return out;
  }

  Status prune_buckets_before(UnixSeconds start) override {
    if (auto failed = fail()) return *failed;
    std::erase_if(buckets_, [&](const auto& entry) { return std::get<0>(entry.first) < start; });
    ++revision_;
    return ok_status();
  }

  Expected<std::vector<PairState>> load_pairs() override {
    std::vector<PairState> out;
    for (const auto& [key, state] : pairs_) out.push_back(state);
    return out;
  }

  Status commit_cycle(const std::vector<FileCheckpoint>& checkpoints,
                      const std::vector<SignalBucket>& buckets, const std::vector<PairState>& pairs,
                      const std::vector<DecisionRecord>& decisions,
                      const ManualCommit& manual) override {
    if (auto failed = fail()) return *failed;
    write_read(checkpoints, buckets);
    if (manual.clear_pending_apply) pending_.reset();
    if (manual.override_text) override_text_ = manual.override_text;
    if (manual.vmta_settings) vmta_settings_ = *manual.vmta_settings;
    if (manual.reputation) {
      reputation_.last_run = manual.reputation->at;
      if (manual.reputation->tiers) reputation_.tiers = *manual.reputation->tiers;
    }
    for (const IpVmta& v : manual.ip_vmtas) {
      std::erase_if(ip_vmtas_, [&](const IpVmta& o) {
        return o.pool == v.pool && o.source_ip == v.source_ip;
      });
      ip_vmtas_.push_back(v);
    }
    for (const PairState& p : pairs) pairs_[{p.pool, p.isp}] = p;
    decisions_.insert(decisions_.end(), decisions.begin(), decisions.end());
    ++revision_;
    ++cycles_committed_;
    return ok_status();
  }

  Expected<std::vector<VmtaSetting>> load_vmta_settings() override { return vmta_settings_; }
  Expected<std::vector<IpVmta>> load_ip_vmtas() override { return ip_vmtas_; }
  Expected<std::optional<std::string>> last_override_text() override { return override_text_; }
  Expected<KnownReputation> load_reputation() override { return reputation_; }

  Expected<std::vector<DecisionRecord>> history(const HistoryFilter& filter) override {
    std::vector<DecisionRecord> out;
    for (const DecisionRecord& r : decisions_) {
      if (filter.pool && r.decision.pool != *filter.pool) continue;
      if (filter.isp && r.decision.isp != *filter.isp) continue;
      if (filter.since && r.decision.at < *filter.since) continue;
      out.push_back(r);
    }
    std::stable_sort(out.begin(), out.end(), [](const DecisionRecord& a, const DecisionRecord& b) {
      return a.decision.at < b.decision.at;
    });
    return out;
  }

  Status begin_apply(const PendingApply& pending) override {
    if (auto failed = fail()) return *failed;
    pending_ = pending;
    ++revision_;
    return ok_status();
  }
  Expected<std::optional<PendingApply>> pending_apply() override { return pending_; }
  Status end_pending_apply() override {
    if (auto failed = fail()) return *failed;
    pending_.reset();
    ++revision_;
    return ok_status();
  }

  // Set-up and inspection.
  const std::optional<PendingApply>& pending() const { return pending_; }
  void put_pair(const PairState& state) { pairs_[{state.pool, state.isp}] = state; }
  std::optional<PairState> pair(const std::string& pool, const std::string& isp) const {
    auto found = pairs_.find({pool, isp});
    if (found == pairs_.end()) return std::nullopt;
    return found->second;
  }
  const std::map<std::pair<std::string, std::string>, PairState>& pairs() const { return pairs_; }
  const std::vector<DecisionRecord>& decisions() const { return decisions_; }
  const std::vector<FileCheckpoint>& checkpoints() const { return checkpoints_; }
  const std::map<BucketKey, BucketCounts>& buckets() const { return buckets_; }
  // Every successful write counts; tests compare it to tell "nothing was written".
  const std::vector<VmtaSetting>& vmta_settings() const { return vmta_settings_; }
  int revision() const { return revision_; }
  int cycles_committed() const { return cycles_committed_; }
  // The next writes fail with this message (until cleared with nullopt).
  void fail_writes(std::optional<std::string> message) { failure_ = std::move(message); }

 private:
  std::optional<PendingApply> pending_;

  std::optional<Error> fail() const {
    if (!failure_) return std::nullopt;
    return Error{*failure_};
  }

  void write_read(const std::vector<FileCheckpoint>& checkpoints,
                  const std::vector<SignalBucket>& buckets) {
    checkpoints_ = checkpoints;
    for (const SignalBucket& b : buckets) {
      buckets_[{b.start, b.pool, b.isp, b.source_ip, b.deferral_class}] += b.counts;
    }
  }

  std::vector<FileCheckpoint> checkpoints_;
  std::map<BucketKey, BucketCounts> buckets_;
  std::map<std::pair<std::string, std::string>, PairState> pairs_;
  std::vector<DecisionRecord> decisions_;
  std::vector<VmtaSetting> vmta_settings_;
  std::vector<IpVmta> ip_vmtas_;
  std::optional<std::string> override_text_;
  KnownReputation reputation_;
  std::optional<std::string> failure_;
  int revision_ = 0;
  int cycles_committed_ = 0;
};

}  // namespace sluice
