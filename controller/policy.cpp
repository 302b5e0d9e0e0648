#include "controller/policy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>

namespace sluice {

namespace {

constexpr std::array<std::string_view, 4> kTierNames = {"high", "medium", "low", "warming"};
constexpr std::array<std::string_view, 4> kPhaseNames = {"steady", "verifying", "investigate",
                                                         "no-effect"};
constexpr std::array<std::string_view, 13> kRuleNames = {
    "cut",      "severe_cut", "tier_cap", "raise", "investigate", "settle", "initial",
    "override", "no_effect",  "undo",     "ack",   "recover",     "warmup"};

template <class E, std::size_t N>
std::optional<E> parse_enum(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

double ratio(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::string percent(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", rate * 100);
  return buf;
}

// "12.3% (123 of 1000 attempts; connection 100, reputation 23; 40 refused connections)".
std::string describe(const SignalFigures& f, std::uint64_t part) {
  std::string out = percent(ratio(part, f.attempts)) + " (" + std::to_string(part) + " of " +
                    std::to_string(f.attempts) + " attempts";
  std::string classes;
  for (int c = 1; c < kDeferralClassCount; ++c) {
    if (f.by_class[c] == 0) continue;
    classes += (classes.empty() ? "; " : ", ") +
               std::string(to_string(static_cast<DeferralClass>(c))) + " " +
               std::to_string(f.by_class[c]);
  }
  out += classes;
  if (f.throttle_tq > 0) out += "; " + std::to_string(f.throttle_tq) + " refused connections";
  return out + ")";
}

// The clean time before the first recovery probe: soon after connection trouble, a day after
// reputation or rate trouble (the ISPs' data moves daily).
UnixSeconds recovery_wait(DeferralClass incident, const PolicyParams& policy) {
  return incident == DeferralClass::connection ? policy.recovery_connection_seconds
                                               : policy.recovery_slow_seconds;
}

// Enough evidence to act on a window: attempts, or refused connections (which make few).
bool enough_sample(const SignalFigures& w, const PolicyParams& policy) {
  return w.attempts >= policy.min_attempts || w.throttle_tq >= policy.min_tq_events;
}

// Persistence, when asked for: one stray 421 does nothing.
bool persistent(const PairSignals& signals, const PolicyParams& policy) {
  return policy.trigger_events <= 1 || signals.recent_throttle >= policy.trigger_events;
}

// The weekly rule's step: raise_fraction of the value, within the configured steps.
int raise_step(int value, const PolicyParams& policy) {
  return std::clamp(static_cast<int>(std::floor(value * policy.raise_fraction)),
                    policy.raise_min_step, policy.raise_max_step);
}

bool quiet_since_change(const PairState& state, const PolicyParams& policy, UnixSeconds now) {
  return state.last_change_at == 0 || now - state.last_change_at >= policy.raise_quiet_seconds;
}

// A cut from `value` to `new_value` against `trigger` signals at `rate`, verified in its window.
Outcome cut(const PairState& state, const SignalFigures& w, const PolicyParams& policy,
            UnixSeconds now, Rule rule, int new_value, double rate, std::string why) {
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  const DeferralClass trigger = w.dominant_throttle_class();
  const UnixSeconds verify = trigger == DeferralClass::reputation
                                 ? policy.verify_reputation_seconds
                                 : policy.verify_connection_seconds;
  if (state.phase != Phase::verifying) next.last_safe = state.max_smtp_out;
  next.max_smtp_out = new_value;
  next.phase = Phase::verifying;
  next.last_change_at = now;
  next.last_cut_at = now;
  next.verify_until = now + verify;
  next.verify_class = trigger;
  next.cut_rate = rate;
  out.decision = make_decision(state, now, rule, new_value, Phase::verifying, w,
                               why + ", verify within " + std::to_string(verify / 60) + " minutes");
  out.decision->trigger = trigger;
  return out;
}

// The verdict on a cut once its verification window is over: it worked, worked too little (cut
// again, sized by how much is still refused), or showed no effect (twice: stop cutting, undo).
Outcome judge_cut(const PairState& state, const SignalFigures& w, const PolicyParams& policy,
                  UnixSeconds now) {
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  const int value = state.max_smtp_out;
  const double rate = w.throttle_rate();
  const double before = state.cut_rate;
  const bool reputation = state.verify_class == DeferralClass::reputation;
  const bool worked = rate <= policy.cut_threshold || (reputation && rate <= before / 2);
  if (worked) {
    next.phase = Phase::steady;
    next.verify_until = 0;
    next.verify_class = DeferralClass::none;
    next.no_effect_cuts = 0;
    // Back towards the safe level by probes.
    next.probe_interval = recovery_wait(state.verify_class, policy);
    next.probe_from = 0;
    out.decision = make_decision(state, now, Rule::settle, value, Phase::steady, w,
                                 "the cut worked: throttle deferral rate " +
                                     describe(w, w.throttle) + ", before it " + percent(before));
    return out;
  }
  const bool no_effect = rate > before * (1 - policy.no_effect_fall);
  const int no_effect_cuts = no_effect ? state.no_effect_cuts + 1 : 0;
  if (no_effect_cuts >= 2 || (no_effect && value <= policy.floor)) {
    next.phase = Phase::no_effect;
    next.verify_until = 0;
    next.no_effect_cuts = no_effect_cuts;
    out.decision = make_decision(
        state, now, Rule::no_effect, value, Phase::no_effect, w,
        "the change addressed the wrong variable or something else is going on: throttle "
        "deferral rate " +
            describe(w, w.throttle) + " after the cut, " + percent(before) +
            " before it; no more cuts for this incident, the cuts are undone step by step back "
            "to " +
            std::to_string(state.last_safe));
    return out;
  }
  if (value <= policy.floor) {
    next.phase = Phase::steady;
    next.verify_until = 0;
    next.verify_class = DeferralClass::none;
    next.no_effect_cuts = 0;
    // Recovery probes still lead it back up once the throttling is over.
    next.probe_interval = recovery_wait(state.verify_class, policy);
    next.probe_from = 0;
    out.decision = make_decision(state, now, Rule::settle, value, Phase::steady, w,
                                 "the cut worked too little but the value is at the floor " +
                                     std::to_string(policy.floor) + ": throttle deferral rate " +
                                     describe(w, w.throttle));
    return out;
  }
  // Refused connections stand for the share of opened ones the ISP turns away: a value that
  // much lower is what it accepts now. A cut that showed no effect says nothing of the kind:
  // the next one is never deeper than an ordinary cut, the last before the no-effect phase.
  const double ordinary =
      rate > policy.severe_threshold ? policy.severe_cut_fraction : policy.cut_fraction;
  const double fraction = no_effect ? std::min(rate, ordinary) : rate;
  const int sized = static_cast<int>(std::floor(value * (1.0 - fraction)));
  const int new_value = std::max(policy.floor, std::min(value - 1, sized));
  Outcome again =
      cut(state, w, policy, now, Rule::cut, new_value, rate,
          std::string(no_effect ? "the cut showed no effect" : "the cut worked too little") +
              ": throttle deferral rate " + describe(w, w.throttle) + ", before it " +
              percent(before) + "; cut to what the ISP accepts");
  again.next.no_effect_cuts = no_effect_cuts;
  return again;
}

// No more cuts for this incident: back towards the value before it, half the distance (at least
// one) per verification window; over when a window is free of throttle signals.
Outcome undo_ineffective_cuts(const PairState& state, const SignalFigures& w,
                              const PolicyParams& policy, UnixSeconds now) {
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  const int value = state.max_smtp_out;
  if (w.throttle == 0) {
    next.phase = Phase::steady;
    next.no_effect_cuts = 0;
    out.decision = make_decision(state, now, Rule::settle, value, Phase::steady, w,
                                 "no throttle signals for a whole window: no-effect phase over");
    return out;
  }
  const UnixSeconds verify = state.verify_class == DeferralClass::reputation
                                 ? policy.verify_reputation_seconds
                                 : policy.verify_connection_seconds;
  if (value >= state.last_safe || now < state.last_change_at + verify) return out;
  const int step = std::max(1, (state.last_safe - value + 1) / 2);
  const int back =
      std::min({state.last_safe, value + step, range_for(policy, state.isp, state.tier).cap});
  if (back <= value) return out;  // a tier dropped below the value before the incident
  next.max_smtp_out = back;
  next.last_change_at = now;
  out.decision = make_decision(state, now, Rule::undo, next.max_smtp_out, Phase::no_effect, w,
                               "undoing a cut that showed no effect, towards " +
                                   std::to_string(state.last_safe) + ": throttle deferral rate " +
                                   describe(w, w.throttle));
  return out;
}

// Cuts, verdicts and the investigate flag: what the last window's figures call for, if anything.
std::optional<Outcome> act_on_window(const PairState& state, const PairSignals& signals,
                                     const PolicyParams& policy, UnixSeconds now) {
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  const SignalFigures& w = signals.window;
  const int value = state.max_smtp_out;
  const double throttle_rate = w.throttle_rate();
  if (state.phase == Phase::verifying) return judge_cut(state, w, policy, now);
  if (state.phase == Phase::no_effect) return undo_ineffective_cuts(state, w, policy, now);
  if (state.probe_from > 0 && throttle_rate > policy.cut_threshold && w.throttle > 0) {
    // The probe brought the throttling back: back to where it was, not a new cut, and the next
    // probe waits twice as long.
    const int back = std::min(state.probe_from, range_for(policy, state.isp, state.tier).cap);
    next.max_smtp_out = back;
    next.probe_from = 0;
    next.probe_interval = std::min(policy.probe_max_seconds, 2 * state.probe_interval);
    next.last_change_at = now;
    out.decision =
        make_decision(state, now, Rule::undo, back, next.phase, w,
                      "the recovery probe brought the throttling back (" + describe(w, w.throttle) +
                          "): back to " + std::to_string(back) + ", next probe after " +
                          std::to_string(next.probe_interval / 3600) + " clean hours");
    return out;
  }
  if (throttle_rate > policy.cut_threshold && w.throttle > 0 && persistent(signals, policy)) {
    if (value <= policy.floor) return out;  // nothing left to cut; the signals stay recorded
    // A few IPs' trouble: their VMTAs get the remedy (in the cycle), the pool keeps its value.
    if (signals.diagnosis.concentrated) return out;
    const bool severe = throttle_rate > policy.severe_threshold;
    const double fraction = severe ? policy.severe_cut_fraction : policy.cut_fraction;
    const int new_value = std::max(
        policy.floor, std::min(value - 1, static_cast<int>(std::floor(value * (1.0 - fraction)))));
    const SignalFigures& incident = signals.incident.attempts > 0 ? signals.incident : w;
    return cut(state, w, policy, now, severe ? Rule::severe_cut : Rule::cut, new_value,
               incident.throttle_rate(),
               "throttle deferral rate " + describe(w, w.throttle) + " above " +
                   percent(severe ? policy.severe_threshold : policy.cut_threshold) + ": cut " +
                   std::to_string(static_cast<int>(std::lround(fraction * 100))) + "%");
  }

  // Deferrals that concurrency does not cause: flag, never cut, never raise.
  if (w.other_rate() > policy.investigate_threshold) {
    if (state.phase != Phase::investigate) {
      next.phase = Phase::investigate;
      out.decision = make_decision(state, now, Rule::investigate, value, Phase::investigate, w,
                                   "deferral rate " + describe(w, w.deferrals - w.throttle) +
                                       " above " + percent(policy.investigate_threshold) +
                                       " without throttle signals: not a concurrency problem; "
                                       "no change, raises held");
    }
    return out;
  }
  if (state.phase == Phase::investigate) {
    next.phase = Phase::steady;
    out.decision = make_decision(state, now, Rule::settle, value, Phase::steady, w,
                                 "deferral rate back to " + describe(w, w.deferrals));
    return out;
  }

  return std::nullopt;
}

}  // namespace

Decision make_decision(const PairState& state, UnixSeconds now, Rule rule, int new_value,
                       Phase phase, const SignalFigures& figures, std::string reason) {
  Decision d;
  d.pool = state.pool;
  d.isp = state.isp;
  d.at = now;
  d.rule = rule;
  d.old_value = state.max_smtp_out;
  d.new_value = new_value;
  d.phase = phase;
  d.figures = figures;
  d.reason = std::move(reason);
  return d;
}

std::string_view to_string(Tier tier) {
  return kTierNames[static_cast<int>(tier)];
}
std::optional<Tier> parse_tier(std::string_view name) {
  return parse_enum<Tier>(kTierNames, name);
}
std::string_view to_string(Phase phase) {
  return kPhaseNames[static_cast<int>(phase)];
}
std::optional<Phase> parse_phase(std::string_view name) {
  return parse_enum<Phase>(kPhaseNames, name);
}
std::string_view to_string(Rule rule) {
  return kRuleNames[static_cast<int>(rule)];
}
std::optional<Rule> parse_rule(std::string_view name) {
  return parse_enum<Rule>(kRuleNames, name);
}

PolicyParams default_policy() {
  PolicyParams p;
  const auto ranges = [](TierRange high, TierRange medium, TierRange low, TierRange warming) {
    return std::map<Tier, TierRange>{
        {Tier::high, high}, {Tier::medium, medium}, {Tier::low, low}, {Tier::warming, warming}};
  };
  p.ranges["gmail"] = ranges({6, 10}, {3, 5}, {1, 2}, {1, 3});
  p.ranges["outlook"] = ranges({4, 6}, {2, 4}, {1, 2}, {1, 2});
  p.ranges["yahoo"] = ranges({5, 8}, {3, 5}, {1, 2}, {1, 3});
  p.ranges["gmx"] = ranges({2, 4}, {1, 2}, {1, 1}, {1, 1});
  p.ranges["orange"] = ranges({2, 3}, {1, 2}, {1, 1}, {1, 1});
  p.ranges["generic"] = ranges({2, 4}, {1, 2}, {1, 1}, {1, 1});
  p.warmup_rates["generic"] = {50, 100, 200, 400, 800};
  return p;
}

TierRange range_for(const PolicyParams& policy, std::string_view isp, Tier tier) {
  auto found = policy.ranges.find(std::string(isp));
  if (found == policy.ranges.end() || !found->second.contains(tier)) {
    found = policy.ranges.find("generic");
  }
  if (found != policy.ranges.end()) {
    if (auto r = found->second.find(tier); r != found->second.end()) return r->second;
  }
  return TierRange{1, 1};
}

double SignalFigures::deferral_rate() const {
  return ratio(deferrals, attempts);
}
double SignalFigures::throttle_rate() const {
  return ratio(throttle, attempts);
}
double SignalFigures::other_rate() const {
  return ratio(deferrals - throttle, attempts);
}

DeferralClass SignalFigures::dominant_throttle_class() const {
  DeferralClass best = DeferralClass::none;
  std::uint64_t most = 0;
  // On a tie the slower verdict wins: reputation, then rate, then connection.
  for (DeferralClass c :
       {DeferralClass::reputation, DeferralClass::rate, DeferralClass::connection}) {
    if (by_class[static_cast<int>(c)] > most) {
      most = by_class[static_cast<int>(c)];
      best = c;
    }
  }
  return best;
}

UnixSeconds day_of(UnixSeconds t) {
  UnixSeconds q = t / 86400;
  if (t % 86400 < 0) --q;
  return q * 86400;
}

UnixSeconds window_start(const PairState& state, const PolicyParams& policy, UnixSeconds now) {
  return std::max(now - policy.window_seconds, state.last_change_at);
}

PairState initial_state(std::string pool, std::string isp, Tier tier,
                        std::optional<int> current_value, const PolicyParams& policy) {
  PairState s;
  s.pool = std::move(pool);
  s.isp = std::move(isp);
  s.tier = tier;
  const TierRange range = range_for(policy, s.isp, tier);
  int value = current_value.value_or(range.start);
  if (tier == Tier::warming && (!current_value || value < range.start || value > range.cap)) {
    value = std::clamp(2, range.start, range.cap);
  }
  s.max_smtp_out = std::max(policy.floor, value);
  s.last_safe = s.max_smtp_out;
  return s;
}

IpDiagnosis diagnose_ips(const std::map<std::string, SignalFigures>& window_by_ip,
                         const PolicyParams& policy) {
  IpDiagnosis d;
  std::vector<std::pair<std::string, const SignalFigures*>> ips;
  for (const auto& [ip, f] : window_by_ip) {
    if (f.attempts > 0) ips.emplace_back(ip, &f);
  }
  if (ips.size() < 2) return d;
  // The minimum sample that guards the pool's first cut guards a VMTA's too.
  std::uint64_t attempts = 0, refused = 0;
  for (const auto& [ip, f] : ips) {
    attempts += f->attempts;
    refused += f->throttle_tq;
  }
  if (attempts < policy.min_attempts && refused < policy.min_tq_events) return d;
  std::stable_sort(ips.begin(), ips.end(), [](const auto& a, const auto& b) {
    return a.second->throttle_rate() > b.second->throttle_rate();
  });
  // The fewest worst IPs that explain the throttling: the rest clean, these far worse.
  for (std::size_t k = 1; k < ips.size(); ++k) {
    SignalFigures rest;
    for (std::size_t i = k; i < ips.size(); ++i) {
      rest.attempts += ips[i].second->attempts;
      rest.throttle += ips[i].second->throttle;
    }
    const double rest_rate = rest.throttle_rate();
    const double weakest = ips[k - 1].second->throttle_rate();
    if (rest_rate < policy.cut_threshold && weakest > policy.cut_threshold &&
        weakest >= policy.concentration_factor * rest_rate) {
      d.concentrated = true;
      SignalFigures affected;
      for (std::size_t i = 0; i < k; ++i) {
        d.ips.push_back(ips[i].first);
        affected.attempts += ips[i].second->attempts;
        affected.throttle += ips[i].second->throttle;
      }
      d.affected_rate = affected.throttle_rate();
      d.rest_rate = rest_rate;
      return d;
    }
  }
  return d;
}

namespace {

// Where recovery probes lead back to: the safe level, else the value before the incident.
int recovery_target(const PairState& state, const PolicyParams& policy) {
  return std::min(range_for(policy, state.isp, state.tier).cap,
                  state.safe_level > 0 ? state.safe_level : state.last_safe);
}

std::string rate_text(int per_hour) {
  return per_hour > 0 ? std::to_string(per_hour) + "/h" : std::string("no limit");
}

// A warming pair one stage further after a clean stage period; past the last stage the
// schedule is over: no message rate limit, and tier medium.
std::optional<Outcome> warmup_step_up(const PairState& state, const PairSignals& signals,
                                      const PolicyParams& policy, UnixSeconds now) {
  const std::vector<int>& rates = warmup_rates_for(policy, state.isp);
  const int stages = static_cast<int>(rates.size());
  const std::optional<UnixSeconds> due = next_warmup_stage_at(state, policy);
  if (!due || state.phase != Phase::steady) return std::nullopt;
  const UnixSeconds clean_since = std::max(state.warmup_stage_at, state.last_throttle_at);
  if (now < *due || signals.window.throttle > 0 || signals.week.throttle > 0 ||
      signals.busy_days < policy.raise_min_busy_days ||
      signals.window.other_rate() > policy.investigate_threshold) {
    return std::nullopt;
  }
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  next.warmup_stage = state.warmup_stage + 1;
  next.warmup_stage_at = now;
  const int days = static_cast<int>((now - clean_since) / 86400);
  std::string why = "warm-up: " + std::to_string(days) + " clean days at max-msg-rate " +
                    rate_text(warmup_rate(state, policy)) + ", ";
  if (next.warmup_stage >= stages) {
    next.tier = Tier::medium;
    next.warmed_up = true;
    why += "schedule complete: no message rate limit, tier medium from now on";
  } else {
    why += "stage " + std::to_string(next.warmup_stage + 1) + " of " + std::to_string(stages) +
           ": max-msg-rate " + rate_text(rates[static_cast<std::size_t>(next.warmup_stage)]);
  }
  // A warming pool's concurrency grows with its stages, by the weekly rule's step.
  const int value = state.max_smtp_out;
  const int cap = range_for(policy, next.isp, next.tier).cap;
  if (value < cap && state.probe_interval == 0 && quiet_since_change(state, policy, now)) {
    next.max_smtp_out = std::min(cap, value + raise_step(value, policy));
    next.last_change_at = now;
    next.last_raise_at = now;
    next.last_safe = std::max(state.last_safe, value);
    why += "; max-smtp-out " + std::to_string(value) + " -> " + std::to_string(next.max_smtp_out) +
           " (cap " + std::to_string(cap) + ")";
  }
  out.decision = make_decision(state, now, Rule::warmup, next.max_smtp_out, state.phase,
                               signals.week, std::move(why));
  return out;
}

// Throttle signals on a warming pair: its warm-up goes back one stage (at most once per
// window) with the cut, or alone when max-smtp-out is at the floor, and its clean period starts
// again.
void warmup_step_back(const PairState& state, const PairSignals& signals,
                      const PolicyParams& policy, UnixSeconds now, Outcome& out) {
  if (state.tier != Tier::warming) return;
  const SignalFigures& w = signals.window;
  const bool cut =
      out.decision && (out.decision->rule == Rule::cut || out.decision->rule == Rule::severe_cut);
  // The same evidence a cut needs, when there is nothing left to cut.
  const bool at_floor_throttled =
      !out.decision && state.phase == Phase::steady && state.max_smtp_out <= policy.floor &&
      (state.last_failure_at == 0 ||
       now - state.last_failure_at >= policy.retry_failed_change_seconds) &&
      w.throttle > 0 && w.throttle_rate() > policy.cut_threshold && enough_sample(w, policy) &&
      persistent(signals, policy) && !signals.diagnosis.concentrated;
  if (!cut && !at_floor_throttled) return;
  const bool recently =
      state.warmup_stage_at != 0 && now - state.warmup_stage_at < policy.window_seconds;
  if (state.warmup_stage == 0 || recently) {
    if (cut) out.next.warmup_stage_at = now;
    return;
  }
  out.next.warmup_stage = state.warmup_stage - 1;
  out.next.warmup_stage_at = now;
  const std::string back = "warm-up back to stage " + std::to_string(out.next.warmup_stage + 1) +
                           ": max-msg-rate " + rate_text(warmup_rate(out.next, policy));
  if (cut) {
    out.decision->reason += "; " + back;
    return;
  }
  out.decision = make_decision(state, now, Rule::warmup, state.max_smtp_out, out.next.phase, w,
                               "throttle deferral rate " + describe(w, w.throttle) + ": " + back);
}

Outcome decide_rules(const PairState& state, const PairSignals& signals, const PolicyParams& policy,
                     UnixSeconds now) {
  Outcome out{state, std::nullopt};
  PairState& next = out.next;
  const SignalFigures& w = signals.window;
  const int value = state.max_smtp_out;
  const TierRange range = range_for(policy, state.isp, state.tier);

  // What the signals say about the past, whatever is decided now.
  if (w.throttle > 0 && (state.probe_interval > 0 || state.tier == Tier::warming)) {
    next.last_throttle_at = now;
  }
  if (state.tier == Tier::warming && state.warmup_stage_at == 0) next.warmup_stage_at = now;
  if (state.last_change_at <= day_of(now) - 86400 && signals.yesterday.attempts > 0 &&
      signals.yesterday.throttle == 0) {
    next.safe_level = std::max(state.safe_level, value);
  }

  // pmta refused the last change: do not retry it more often than this.
  if (state.last_failure_at != 0 &&
      now - state.last_failure_at < policy.retry_failed_change_seconds) {
    return out;
  }

  // A tier below the current value lowers it at once.
  if (value > range.cap) {
    next.max_smtp_out = range.cap;
    next.last_change_at = now;
    out.decision = make_decision(state, now, Rule::tier_cap, range.cap, next.phase, w,
                                 "above the cap " + std::to_string(range.cap) + " of tier " +
                                     std::string(to_string(state.tier)) + " at " + state.isp);
    return out;
  }

  // Inside a verification window the signals are the cut's own tail, not a new incident.
  if (state.phase == Phase::verifying && now < state.verify_until) return out;

  // A warm-up stage goes by the week: a warming pool sends too little for a full window.
  if (std::optional<Outcome> stepped = warmup_step_up(next, signals, policy, now)) return *stepped;

  // No action on a thin window, raises included (refused connections make few attempts, so
  // enough of them count on their own). A verdict on a change is never delayed by it, but needs
  // a window with traffic: an empty one (a clock that jumped past the records logged since the
  // change, a pool that stopped sending) says nothing of the change, so the pair waits for some.
  const bool enough = enough_sample(w, policy);
  const bool verdict_due =
      (state.phase == Phase::verifying || state.phase == Phase::no_effect) && w.attempts > 0;
  if (!enough && !verdict_due) return out;
  if (std::optional<Outcome> acted = act_on_window(state, signals, policy, now)) return *acted;

  // Recovering: probes back towards the safe level; below it, no weekly raise.
  const int target = recovery_target(state, policy);
  if (state.probe_interval > 0) {
    const UnixSeconds quiet_since = std::max(state.last_change_at, state.last_throttle_at);
    const bool held = w.throttle == 0 && now - quiet_since >= state.probe_interval;
    if (held) next.probe_from = 0;  // the last probe held for its interval
    if (value >= target) {
      if (held) next.probe_interval = 0;
    } else {
      if (!held) return out;
      const int new_value = std::min(target, value + std::max(1, (target - value + 1) / 2));
      next.max_smtp_out = new_value;
      next.probe_from = value;
      next.last_change_at = now;
      out.decision =
          make_decision(state, now, Rule::recover, new_value, Phase::steady, w,
                        "clean for " + std::to_string((now - quiet_since) / 3600) +
                            " hours: half way back to the safe level " + std::to_string(target) +
                            " (a probe: taken back if the throttling returns)");
      return out;
    }
  }

  // Raise while stable, slowly, within the cap.
  const SignalFigures& week = signals.week;
  // A warming pool grows with its warm-up stages instead.
  const bool warming = warmup_rate(state, policy) > 0;
  if (!warming && value < range.cap && quiet_since_change(state, policy, now) &&
      week.throttle == 0 && week.deferral_rate() < policy.raise_max_deferral_rate &&
      signals.busy_days >= policy.raise_min_busy_days) {
    const int new_value = std::min(range.cap, value + raise_step(value, policy));
    next.max_smtp_out = new_value;
    next.last_change_at = now;
    next.last_raise_at = now;
    next.last_safe = std::max(state.last_safe, value);
    out.decision = make_decision(
        state, now, Rule::raise, new_value, Phase::steady, week,
        "stable for " + std::to_string(policy.raise_quiet_seconds / 86400) +
            " days: no throttle signals, deferral rate " + describe(week, week.deferrals) + " on " +
            std::to_string(signals.busy_days) + " busy days; cap " + std::to_string(range.cap));
  }
  return out;
}

}  // namespace

Outcome decide(const PairState& state, const PairSignals& signals, const PolicyParams& policy,
               UnixSeconds now) {
  Outcome out = decide_rules(state, signals, policy, now);
  warmup_step_back(state, signals, policy, now, out);
  if (out.decision && !same_fragment_settings(state, out.next, policy)) {
    out.decision->settings_change = true;
  }
  return out;
}

bool same_fragment_settings(const PairState& a, const PairState& b, const PolicyParams& policy) {
  return warmup_rate(a, policy) == warmup_rate(b, policy) &&
         retry_after_minutes(a, policy) == retry_after_minutes(b, policy);
}

std::optional<UnixSeconds> next_warmup_stage_at(const PairState& state,
                                                const PolicyParams& policy) {
  if (warmup_rate(state, policy) == 0 || state.warmup_stage_at == 0) return std::nullopt;
  return std::max(state.warmup_stage_at, state.last_throttle_at) + policy.warmup_stage_seconds;
}

const std::vector<int>& warmup_rates_for(const PolicyParams& policy, std::string_view isp) {
  static const std::vector<int> kNone;
  auto found = policy.warmup_rates.find(std::string(isp));
  if (found == policy.warmup_rates.end()) found = policy.warmup_rates.find("generic");
  return found == policy.warmup_rates.end() ? kNone : found->second;
}

int warmup_rate(const PairState& state, const PolicyParams& policy) {
  if (state.tier != Tier::warming || state.warmup_stage < 0) return 0;
  const std::vector<int>& rates = warmup_rates_for(policy, state.isp);
  const auto stage = static_cast<std::size_t>(state.warmup_stage);
  return stage < rates.size() ? rates[stage] : 0;
}

int retry_after_minutes(const PairState& state, const PolicyParams& policy) {
  if (state.tier == Tier::warming) return policy.warming_retry_after_minutes;
  const bool after_cut = state.phase == Phase::verifying || state.phase == Phase::no_effect ||
                         state.probe_interval > 0;
  if (after_cut && state.max_smtp_out < recovery_target(state, policy)) {
    return policy.recovering_retry_after_minutes;
  }
  return 0;
}

}  // namespace sluice
