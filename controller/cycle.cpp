#include "controller/cycle.h"

#include <algorithm>

#include "controller/estimator.h"
#include "controller/fragment.h"

namespace sluice {

namespace {

constexpr UnixSeconds kWeek = 7 * 86400;
constexpr std::string_view kReloaded = "Configuration reloaded.";

std::string first_line(std::string_view text) {
  while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.remove_prefix(1);
  return std::string(text.substr(0, text.find('\n')));
}

// What a failed pmta run says, in one line.
std::string failure_text(const char* step, const CommandResult& r) {
  if (!r.error.empty()) return std::string(step) + " could not run: " + r.error;
  if (r.timed_out) return std::string(step) + " hung and was killed";
  std::string said = first_line(r.err.empty() ? r.out : r.err);
  return std::string(step) + " failed (exit " + std::to_string(r.exit_code) + ")" +
         (said.empty() ? "" : ": " + said);
}

}  // namespace

Controller::Controller(AccountingSource& source, StateStore& store, FragmentStore& fragments,
                       CommandRunner& runner, const Clock& clock,
                       std::shared_ptr<const IspCatalog> catalog,
                       std::shared_ptr<const PoolMap> pool_map, std::vector<ManagedPair> pairs,
                       LoopSettings settings)
    : source_(source),
      store_(store),
      fragments_(fragments),
      runner_(runner),
      clock_(clock),
      catalog_(std::move(catalog)),
      pool_map_(std::move(pool_map)),
      pairs_(std::move(pairs)),
      settings_(settings) {}

Controller::PmtaResult Controller::test_and_reload() {
  const CommandResult test =
      runner_.run({settings_.pmta_command, "test", "config"}, settings_.pmta_timeout);
  if (!test.succeeded()) return {false, false, false, failure_text("pmta test config", test)};
  const CommandResult reload =
      runner_.run({settings_.pmta_command, "reload"}, settings_.pmta_timeout);
  // Exit codes are not documented: success needs both the code and PowerMTA's words.
  if (!reload.succeeded() || reload.out.find(kReloaded) == std::string::npos) {
    PmtaResult r{false, false, true, failure_text("pmta reload", reload)};
    if (reload.succeeded()) r.outcome = "pmta reload said: " + first_line(reload.out);
    return r;
  }
  return {true, true, true, "reloaded"};
}

Controller::PmtaResult Controller::apply_changes(const std::vector<FragmentChange>& changes) {
  std::vector<const FragmentChange*> written;
  PmtaResult result;
  for (const FragmentChange& c : changes) {
    if (Status s = fragments_.write(c.decision.pool, c.decision.isp, c.after); !s) {
      result = {false, false, false, "fragment not written: " + s.error().message};
      break;
    }
    written.push_back(&c);
  }
  if (written.size() == changes.size()) result = test_and_reload();
  if (result.ok) return result;
  // Put every fragment back as it was; if a reload was tried, PowerMTA may hold the new ones:
  // reload the old ones.
  for (const FragmentChange* c : written) {
    if (Status s = fragments_.write(c->decision.pool, c->decision.isp, c->before); !s) {
      result.outcome += "; restoring " + c->path + " failed: " + s.error().message;
    }
  }
  if (result.reload_attempted) {
    const CommandResult again =
        runner_.run({settings_.pmta_command, "reload"}, settings_.pmta_timeout);
    if (!again.succeeded())
      result.outcome += "; " + failure_text("reload of the restored fragments", again);
  }
  return result;
}

Expected<CycleReport> Controller::run_cycle(CycleMode mode) {
  CycleReport report;
  report.mode = mode;
  report.now = clock_.now();
  const UnixSeconds now = report.now;

  Expected<std::vector<FileCheckpoint>> checkpoints = store_.load_checkpoints();
  if (!checkpoints) return checkpoints.error();
  SignalAggregator fresh(catalog_, pool_map_, settings_.bucket_seconds);
  Expected<ReadOutcome> read = source_.read_new(*checkpoints, fresh);
  if (!read) return read.error();
  report.read = read->stats;
  const std::vector<SignalBucket> new_buckets = fresh.buckets();

  // The decision windows need the last buckets; the raise rule only daily totals.
  UnixSeconds widest_window = 0;
  for (const ManagedPair& pair : pairs_) {
    widest_window = std::max(widest_window, pair.policy.window_seconds);
  }
  Expected<std::vector<SignalBucket>> stored = store_.buckets_since(now - widest_window);
  if (!stored) return stored.error();
  std::vector<SignalBucket> recent = std::move(*stored);
  recent.insert(recent.end(), new_buckets.begin(), new_buckets.end());
  const auto series = series_by_pair(recent);
  Expected<std::vector<PairDay>> stored_days = store_.pair_days_since(day_of(now) - kWeek);
  if (!stored_days) return stored_days.error();
  const auto days = days_by_pair(merge_days(std::move(*stored_days), daily_totals(new_buckets)));

  Expected<std::vector<PairState>> loaded = store_.load_pairs();
  if (!loaded) return loaded.error();
  std::map<PairKey, PairState> stored_states;
  for (PairState& s : *loaded) stored_states[{s.pool, s.isp}] = std::move(s);

  struct PairPlan {
    const ManagedPair* pair = nullptr;
    std::optional<PairState> stored;
    Outcome outcome;
    std::optional<Decision> initial;  // the pair gets its first fragment
    bool fragment_read = false;       // `fragment` holds what is on disk
    std::optional<std::string> fragment;
    const FragmentChange* change = nullptr;
  };
  std::vector<PairPlan> plans;
  plans.reserve(pairs_.size());
  for (const ManagedPair& pair : pairs_) {
    PairPlan plan;
    plan.pair = &pair;
    const PairKey key{pair.pool, pair.isp};
    if (auto found = stored_states.find(key); found != stored_states.end())
      plan.stored = found->second;
    // A pair's fragment is read when it is new, or when writing it failed before.
    const bool check_fragment = !plan.stored || plan.stored->last_failure_at != 0;
    std::optional<std::string>& current = plan.fragment;
    plan.fragment_read = check_fragment;
    if (check_fragment) {
      Expected<std::optional<std::string>> read_fragment = fragments_.read(pair.pool, pair.isp);
      if (!read_fragment) return read_fragment.error();
      current = std::move(*read_fragment);
    }
    PairState state = plan.stored ? *plan.stored
                                  : initial_state(pair.pool, pair.isp, pair.tier,
                                                  current ? fragment_max_smtp_out(*current)
                                                          : std::optional<int>(),
                                                  pair.policy);
    state.tier = pair.tier;  // the tier is an input: a drop lowers the cap at once
    static const std::vector<PairBucket> kNoBuckets;
    static const std::vector<PairDay> kNoDays;
    const auto found_series = series.find(key);
    const auto found_days = days.find(key);
    const PairSignals signals =
        summarize(found_series == series.end() ? kNoBuckets : found_series->second,
                  found_days == days.end() ? kNoDays : found_days->second,
                  window_start(state, pair.policy, now), now, pair.policy);
    plan.outcome = decide(state, signals, pair.policy, now);
    const bool waiting_after_failure =
        state.last_failure_at != 0 &&
        now - state.last_failure_at < pair.policy.retry_failed_change_seconds;
    const bool value_changes = plan.outcome.decision && plan.outcome.decision->changes_value();
    // A change writes the fragment anyway, and its decision says why.
    if (check_fragment && !current && !waiting_after_failure && !value_changes) {
      Decision d;
      d.pool = pair.pool;
      d.isp = pair.isp;
      d.at = now;
      d.rule = Rule::initial;
      d.old_value = d.new_value = state.max_smtp_out;
      d.phase = plan.outcome.next.phase;
      d.reason = "no fragment yet: writing it with the pair's value (tier " +
                 std::string(to_string(pair.tier)) + ")";
      plan.initial = d;
    }
    plans.push_back(std::move(plan));
  }

  report.changes.reserve(plans.size());
  for (PairPlan& plan : plans) {
    const std::optional<Decision>& decision = plan.outcome.decision;
    if (plan.initial) report.decisions.push_back(*plan.initial);
    if (decision) report.decisions.push_back(*decision);
    const Decision* cause = decision && decision->changes_value() ? &*decision
                            : plan.initial                        ? &*plan.initial
                                                                  : nullptr;
    if (cause == nullptr) continue;
    FragmentChange change;
    change.decision = *cause;
    change.path = fragments_.path(plan.pair->pool, plan.pair->isp);
    if (!plan.fragment_read) {
      Expected<std::optional<std::string>> before =
          fragments_.read(plan.pair->pool, plan.pair->isp);
      if (!before) return before.error();
      plan.fragment = std::move(*before);
    }
    change.before = plan.fragment;
    change.after = render_fragment(plan.outcome.next, plan.pair->policy, now,
                                   std::string(to_string(cause->rule)) + ": " + cause->reason);
    report.changes.push_back(std::move(change));
    plan.change = &report.changes.back();
  }

  if (mode == CycleMode::plan) return report;

  std::vector<PairState> next_states;
  std::vector<DecisionRecord> records;
  if (mode == CycleMode::dry_run) {
    // The pairs keep their state: nothing was applied.
    for (const PairPlan& plan : plans) {
      if (plan.stored) next_states.push_back(*plan.stored);
    }
    for (const Decision& d : report.decisions) records.push_back({d, false, "dry run"});
  } else {
    PmtaResult pmta{true, false, false, "no change"};
    if (!report.changes.empty()) pmta = apply_changes(report.changes);
    report.reloaded = pmta.reloaded;
    report.pmta_failed = !pmta.ok;
    report.pmta_outcome = pmta.outcome;
    for (const PairPlan& plan : plans) {
      const bool refused = plan.change != nullptr && !pmta.ok;
      if (refused) {
        // The value stays; the pair waits before the same change is tried again.
        PairState previous =
            plan.stored ? *plan.stored
                        : initial_state(plan.pair->pool, plan.pair->isp, plan.pair->tier,
                                        plan.change->decision.old_value, plan.pair->policy);
        previous.tier = plan.pair->tier;
        previous.last_failure_at = now;
        previous.last_failure = pmta.outcome;
        next_states.push_back(previous);
      } else {
        PairState next = plan.outcome.next;
        if (plan.change != nullptr) {
          next.last_failure_at = 0;
          next.last_failure.clear();
        }
        next_states.push_back(next);
      }
      const std::string outcome = plan.change != nullptr ? pmta.outcome : "no fragment change";
      if (plan.initial) records.push_back({*plan.initial, !refused, outcome});
      if (plan.outcome.decision) {
        const bool changes_value = plan.outcome.decision->changes_value();
        records.push_back({*plan.outcome.decision, !(changes_value && refused),
                           changes_value ? outcome : "no fragment change"});
      }
    }
  }

  if (Status s = store_.commit_cycle(read->checkpoints, new_buckets, next_states, records); !s) {
    return s.error();
  }
  if (Status s = store_.prune_buckets_before(now - settings_.bucket_retention_seconds); !s) {
    return s.error();
  }
  return report;
}

}  // namespace sluice
