#pragma once
// The decision: a pure function of a pair's state, its signals, the policy and now. It never
// reads a file, a process or the clock.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/domain.h"

namespace sluice {

enum class Tier : std::uint8_t { high, medium, low, warming };
std::string_view to_string(Tier tier);
std::optional<Tier> parse_tier(std::string_view name);

// steady: normal; verifying: a cut is being watched for its effect; investigate: deferrals
// above the threshold that concurrency does not cause (no cuts, no raises, flagged);
// no_effect: two cuts in a row changed nothing: the cuts are undone step by step, no more cuts
// for this incident, until the throttle signals are gone for a window or a person acknowledges.
enum class Phase : std::uint8_t { steady, verifying, investigate, no_effect };
std::string_view to_string(Phase phase);
std::optional<Phase> parse_phase(std::string_view name);

// A safe max-smtp-out range for a reputation tier at an ISP: start at `start`, never above `cap`.
struct TierRange {
  int start = 1;
  int cap = 1;
};

struct PolicyParams {
  double cut_threshold = 0.05;     // throttle deferral rate above which to cut
  double severe_threshold = 0.15;  // above which the cut is the larger one
  double cut_fraction = 0.30;
  double severe_cut_fraction = 0.50;
  double investigate_threshold = 0.05;  // non-throttle deferral rate that flags the pair
  int floor = 1;
  UnixSeconds window_seconds = 3600;
  std::uint64_t min_attempts = 100;
  std::uint64_t min_tq_events = 20;              // refused connections make few attempts
  UnixSeconds verify_connection_seconds = 1800;  // after a cut for connection or rate signals
  UnixSeconds verify_reputation_seconds = 7200;  // after a cut for reputation signals
  UnixSeconds raise_quiet_seconds = 7 * 86400;   // stable period before a raise, and since a change
  double raise_max_deferral_rate = 0.02;
  double raise_fraction = 0.15;
  int raise_min_step = 1;
  int raise_max_step = 2;
  std::uint64_t raise_min_daily_attempts = 100;
  int raise_min_busy_days = 4;  // of the 7: "enough traffic that the limit was used"
  std::string connect_rate = "1/s";
  UnixSeconds retry_failed_change_seconds = 300;
  double no_effect_fall = 0.2;  // a cut after which the rate fell by less showed no effect
  // Recovery after a cut that worked: probes back towards the safe level, the first after this
  // much clean time (connection incidents; reputation and rate ones take the slow one), each
  // failed probe doubling the wait up to the longest.
  UnixSeconds recovery_connection_seconds = 6 * 3600;
  UnixSeconds recovery_slow_seconds = 24 * 3600;
  UnixSeconds probe_max_seconds = 24 * 3600;
  // Persistence: a cut needs this many throttle deferrals within the last trigger_seconds.
  std::uint64_t trigger_events = 1;
  UnixSeconds trigger_seconds = 3600;
  double concentration_factor = 3;               // affected IPs' throttle rate against the rest's
  UnixSeconds vmta_recovery_seconds = 6 * 3600;  // clean time before a VMTA's value steps up
  // Guard rails, applied by the cycle: changes by the policy's own rules per pair per UTC day,
  // the shortest time between two reloads, and the share of pairs with traffic cutting or
  // verifying above which raises wait (many pools cut at once: the problem is local).
  int max_changes_per_day = 4;
  UnixSeconds min_reload_interval_seconds = 300;
  double raise_hold_share = 0.5;
  // Warm-up of pools in tier warming: max-msg-rate per hour by stage, per ISP ("generic" for
  // the rest), one stage up per clean stage period, one back on throttle signals; past the last
  // stage, no limit and tier medium. retry-after while warming and while recovering (0: none).
  std::map<std::string, std::vector<int>> warmup_rates;
  UnixSeconds warmup_stage_seconds = 7 * 86400;
  int warming_retry_after_minutes = 30;
  int recovering_retry_after_minutes = 20;
  // Per ISP, then tier; "generic" applies to ISPs without their own entry.
  std::map<std::string, std::map<Tier, TierRange>> ranges;
};

// The defaults of the domain brief (start: the low end of the range, cap: the high end).
PolicyParams default_policy();
TierRange range_for(const PolicyParams& policy, std::string_view isp, Tier tier);

// Counts over a span of buckets for one (pool, ISP).
struct SignalFigures {
  std::uint64_t attempts = 0;
  std::uint64_t deferrals = 0;  // t + tq, every class
  std::uint64_t throttle = 0;   // t + tq of connection, rate and reputation
  std::uint64_t throttle_tq = 0;
  std::array<std::uint64_t, kDeferralClassCount> by_class{};  // t + tq

  double deferral_rate() const;
  double throttle_rate() const;
  double other_rate() const;  // recipient, config and other
  // The throttle class with the most deferrals (none when there are none).
  DeferralClass dominant_throttle_class() const;
};

// One UTC day of a (pool, ISP): what the raise rule reads, kept apart from the 5-minute buckets
// so that a cycle reads 7 rows per pair instead of a week of buckets.
struct PairDay {
  UnixSeconds day = 0;  // 00:00 UTC
  std::string pool;
  std::string isp;
  SignalFigures figures;  // by_class is not kept per day
};

UnixSeconds day_of(UnixSeconds t);

// Whether a pair's throttle deferrals are concentrated on a few source IPs (their rate at least
// `concentration_factor` times the rest's, the rest under the cut threshold): then the remedy is
// those IPs' VMTAs, not the pool.
struct IpDiagnosis {
  bool concentrated = false;
  std::vector<std::string> ips;  // the affected source IPs, worst first
  double affected_rate = 0;
  double rest_rate = 0;
};

struct PairSignals {
  UnixSeconds window_start = 0;  // the decision window: [window_start, now)
  SignalFigures window;
  SignalFigures week;  // today and the 6 UTC days before, for raises
  int busy_days = 0;   // of those 7, days with at least raise_min_daily_attempts
  // The window from its first bucket with throttle signals on: an incident's own rate, not
  // diluted by the clean time before it.
  SignalFigures incident;
  IpDiagnosis diagnosis;              // of the window
  SignalFigures yesterday;            // the UTC day before now's
  std::uint64_t recent_throttle = 0;  // throttle deferrals within the last trigger_seconds
};

IpDiagnosis diagnose_ips(const std::map<std::string, SignalFigures>& window_by_ip,
                         const PolicyParams& policy);

struct PairState {
  std::string pool;
  std::string isp;
  int max_smtp_out = 1;
  Tier tier = Tier::medium;
  Phase phase = Phase::steady;
  int last_safe = 0;               // the value before the current incident's first cut
  UnixSeconds last_change_at = 0;  // 0: never
  UnixSeconds last_cut_at = 0;
  UnixSeconds last_raise_at = 0;
  UnixSeconds verify_until = 0;  // while verifying: no change before this
  DeferralClass verify_class = DeferralClass::none;
  UnixSeconds last_failure_at = 0;  // pmta refused the last change
  std::string last_failure;
  std::string manual;      // the override in force at the last decision (Override::describe())
  double cut_rate = 0;     // the throttle rate the last cut was made against
  int no_effect_cuts = 0;  // cuts in a row after which the rate did not fall by a fifth
  int safe_level = 0;      // the highest value that ran a whole UTC day without throttle signals
  UnixSeconds probe_interval = 0;  // recovering: clean time a probe step needs; 0: not recovering
  int probe_from = 0;              // the value before a probe step still being watched
  UnixSeconds last_throttle_at = 0;
  // Warm-up (tier warming): the stage of warmup_rates in force and when it began (0: not yet);
  // warmed_up once past the last stage, when the configured tier warming counts as medium.
  int warmup_stage = 0;
  UnixSeconds warmup_stage_at = 0;
  bool warmed_up = false;
  bool operator==(const PairState&) const = default;
};

// initial: a pair seen for the first time without a fragment gets one with its starting value.
// override: a person's pin, bounds or their end (see overrides.h).
// no_effect: two cuts changed nothing; undo: a step back towards the value before them, or a
// failed recovery probe taken back; ack: a person ended the no-effect phase; recover: a probe
// step back towards the safe level after a cut that worked; warmup: a warm-up stage up or back,
// or the settings of a tier change (max-msg-rate, retry-after).
enum class Rule : std::uint8_t {
  cut,
  severe_cut,
  tier_cap,
  raise,
  investigate,
  settle,
  initial,
  override,
  no_effect,
  undo,
  ack,
  recover,
  warmup
};
std::string_view to_string(Rule rule);
std::optional<Rule> parse_rule(std::string_view name);

struct Decision {
  std::string pool;
  std::string isp;
  std::string vmta;  // empty: the pool's setting; else one VMTA's, set by an override
  UnixSeconds at = 0;
  Rule rule = Rule::cut;
  int old_value = 0;
  int new_value = 0;
  Phase phase = Phase::steady;  // the pair's phase after the decision
  DeferralClass trigger = DeferralClass::none;
  SignalFigures figures;  // the window that triggered it
  std::string reason;     // one line, with the figures
  // The fragment's other settings change: the warm-up's max-msg-rate, retry-after.
  bool settings_change = false;
  bool changes_value() const { return old_value != new_value; }
  bool rewrites_fragment() const { return changes_value() || settings_change; }
};

// A decision of `rule` moving `state` to `new_value` (or keeping it), with its figures and reason.
Decision make_decision(const PairState& state, UnixSeconds now, Rule rule, int new_value,
                       Phase phase, const SignalFigures& figures, std::string reason);

struct Outcome {
  PairState next;
  std::optional<Decision> decision;  // a change of value or of phase worth recording
};

// Where the decision window starts: the last hour, never before the last change took effect.
UnixSeconds window_start(const PairState& state, const PolicyParams& policy, UnixSeconds now);

Outcome decide(const PairState& state, const PairSignals& signals, const PolicyParams& policy,
               UnixSeconds now);

// What a pair's fragment sets beside max-smtp-out. max-msg-rate per hour: the warm-up stage's
// while the tier is warming (0: no limit). retry-after in minutes: the warm-up's while warming,
// the recovery's while below the value before a cut (0: PowerMTA's own).
int warmup_rate(const PairState& state, const PolicyParams& policy);
int retry_after_minutes(const PairState& state, const PolicyParams& policy);
const std::vector<int>& warmup_rates_for(const PolicyParams& policy, std::string_view isp);
// Whether two states' fragments set the same max-msg-rate and retry-after.
bool same_fragment_settings(const PairState& a, const PairState& b, const PolicyParams& policy);
// When a warming pair's next stage is due: a clean stage period after the later of its stage's
// start and its last throttle signal (nullopt: not warming, not started, or past the last stage).
std::optional<UnixSeconds> next_warmup_stage_at(const PairState& state, const PolicyParams& policy);

// A pair seen for the first time: the operator's current value if a fragment holds one,
// else the tier's starting value (a value above the cap is lowered by decide()). A warming
// pair starts at 2 where its range allows, unless the operator's value lies inside the range.
PairState initial_state(std::string pool, std::string isp, Tier tier,
                        std::optional<int> current_value, const PolicyParams& policy);

}  // namespace sluice
