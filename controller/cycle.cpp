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

bool writes_fragment(const Decision& d) { return d.changes_value() || d.rule == Rule::initial; }

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
  if (!test.succeeded()) return {false, false, failure_text("pmta test config", test)};
  const CommandResult reload = runner_.run({settings_.pmta_command, "reload"}, settings_.pmta_timeout);
  // Exit codes are not documented: success needs both the code and PowerMTA's words.
  if (!reload.succeeded() || reload.out.find(kReloaded) == std::string::npos) {
    PmtaResult r{false, false, failure_text("pmta reload", reload)};
    if (reload.succeeded()) r.outcome = "pmta reload said: " + first_line(reload.out);
    return r;
  }
  return {true, true, "reloaded"};
}

Controller::PmtaResult Controller::apply_changes(const std::vector<FragmentChange>& changes) {
  std::vector<const FragmentChange*> written;
  PmtaResult result;
  for (const FragmentChange& c : changes) {
    if (Status s = fragments_.write(c.decision.pool, c.decision.isp, c.after); !s) {
      result = {false, false, "fragment not written: " + s.error().message};
      break;
    }
    written.push_back(&c);
  }
  if (written.size() == changes.size()) result = test_and_reload();
  if (result.ok) return result;
  // Put every fragment back as it was; if a reload went through, reload the old ones.
  for (const FragmentChange* c : written) {
    if (Status s = fragments_.write(c->decision.pool, c->decision.isp, c->before); !s) {
      result.outcome += "; restoring " + c->path + " failed: " + s.error().message;
    }
  }
  if (!written.empty()) {
    const CommandResult again = runner_.run({settings_.pmta_command, "reload"}, settings_.pmta_timeout);
    if (!again.succeeded()) result.outcome += "; " + failure_text("reload of the restored fragments", again);
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

  Expected<std::vector<SignalBucket>> stored = store_.buckets_since(now - kWeek);
  if (!stored) return stored.error();
  std::vector<SignalBucket> all = std::move(*stored);
  all.insert(all.end(), new_buckets.begin(), new_buckets.end());
  const auto series = series_by_pair(all);

  Expected<std::vector<PairState>> loaded = store_.load_pairs();
  if (!loaded) return loaded.error();
  std::map<PairKey, PairState> states;
  for (PairState& s : *loaded) states[{s.pool, s.isp}] = std::move(s);

  std::vector<PairState> next_states;
  std::vector<std::pair<const ManagedPair*, Outcome>> outcomes;
  for (const ManagedPair& pair : pairs_) {
    const PairKey key{pair.pool, pair.isp};
    PairState state;
    bool without_fragment = false;
    if (auto found = states.find(key); found != states.end()) {
      state = found->second;
    } else {
      Expected<std::optional<std::string>> current = fragments_.read(pair.pool, pair.isp);
      if (!current) return current.error();
      const std::optional<int> value =
          *current ? fragment_max_smtp_out(**current) : std::optional<int>();
      state = initial_state(pair.pool, pair.isp, pair.tier, value, pair.policy);
      without_fragment = !*current;
    }
    state.tier = pair.tier;  // the tier is an input: a drop lowers the cap at once
    static const std::vector<PairBucket> kNone;
    const auto found_series = series.find(key);
    const PairSignals signals =
        summarize(found_series == series.end() ? kNone : found_series->second,
                  window_start(state, pair.policy, now), now, pair.policy);
    Outcome outcome = decide(state, signals, pair.policy, now);
    if (without_fragment && !outcome.decision) {
      Decision d;
      d.pool = pair.pool;
      d.isp = pair.isp;
      d.at = now;
      d.rule = Rule::initial;
      d.old_value = d.new_value = state.max_smtp_out;
      d.phase = state.phase;
      d.reason = "first cycle for this pair and no fragment yet: the start of tier " +
                 std::string(to_string(pair.tier));
      outcome.decision = d;
    }
    outcomes.emplace_back(&pair, std::move(outcome));
  }

  for (auto& [pair, outcome] : outcomes) {
    if (!outcome.decision) continue;
    report.decisions.push_back(*outcome.decision);
    if (!writes_fragment(*outcome.decision)) continue;
    FragmentChange change;
    change.decision = *outcome.decision;
    change.path = fragments_.path(pair->pool, pair->isp);
    Expected<std::optional<std::string>> before = fragments_.read(pair->pool, pair->isp);
    if (!before) return before.error();
    change.before = *before;
    change.after = render_fragment(outcome.next, pair->policy, now,
                                   std::string(to_string(outcome.decision->rule)) + ": " +
                                       outcome.decision->reason);
    report.changes.push_back(std::move(change));
  }

  if (mode == CycleMode::plan) return report;

  std::vector<DecisionRecord> records;
  if (mode == CycleMode::dry_run) {
    // The pairs keep their state: nothing was applied.
    for (const auto& [pair, outcome] : outcomes) {
      auto found = states.find({pair->pool, pair->isp});
      if (found != states.end()) next_states.push_back(found->second);
    }
    for (const Decision& d : report.decisions) records.push_back({d, false, "dry run"});
  } else {
    PmtaResult pmta{true, false, "no change"};
    if (!report.changes.empty()) pmta = apply_changes(report.changes);
    report.reloaded = pmta.reloaded;
    report.pmta_failed = !pmta.ok;
    report.pmta_outcome = pmta.outcome;
    for (auto& [pair, outcome] : outcomes) {
      const bool changes_value = outcome.decision && writes_fragment(*outcome.decision);
      if (changes_value && !pmta.ok) {
        auto found = states.find({pair->pool, pair->isp});
        PairState previous = found != states.end()
                                 ? found->second
                                 : initial_state(pair->pool, pair->isp, pair->tier,
                                                 outcome.decision->old_value, pair->policy);
        previous.tier = pair->tier;
        previous.last_failure_at = now;
        previous.last_failure = pmta.outcome;
        next_states.push_back(previous);
      } else {
        PairState next = outcome.next;
        if (changes_value) {
          next.last_failure_at = 0;
          next.last_failure.clear();
        }
        next_states.push_back(next);
      }
      if (outcome.decision) {
        records.push_back({*outcome.decision, changes_value ? pmta.ok : true,
                           changes_value ? pmta.outcome : "no fragment change"});
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
