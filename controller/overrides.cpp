#include "controller/overrides.h"

#include <algorithm>
#include <tuple>

#include "controller/time_format.h"

namespace sluice {

namespace {

constexpr int kMaxValue = 1000;

const Override* most_specific(const std::vector<Override>& entries, const std::string& pool,
                              const std::string& isp, const std::string& vmta, UnixSeconds now) {
  const Override* pool_wide = nullptr;
  for (const Override& e : entries) {
    if (e.pool != pool || e.vmta != vmta || !e.in_force(now)) continue;
    if (e.isp == isp) return &e;
    if (e.isp.empty()) pool_wide = &e;
  }
  return pool_wide;
}

Decision override_decision(const PairState& state, UnixSeconds now, int new_value, Phase phase,
                           const SignalFigures& figures, std::string reason) {
  return make_decision(state, now, Rule::override, new_value, phase, figures, std::move(reason));
}

// A value a person set: the pair starts over from it, as from any change, outside an incident.
PairState set_by_hand(const PairState& state, int value, UnixSeconds now) {
  PairState next = state;
  next.max_smtp_out = value;
  next.phase = Phase::steady;
  next.verify_until = 0;
  next.verify_class = DeferralClass::none;
  next.last_safe = value;
  next.last_change_at = now;
  return next;
}

}  // namespace

std::string_view to_string(OverrideKind kind) {
  switch (kind) {
    case OverrideKind::pin:
      return "pin";
    case OverrideKind::freeze:
      return "freeze";
    case OverrideKind::bounds:
      return "bounds";
  }
  return "pin";
}

std::string Override::describe() const {
  std::string out;
  switch (kind) {
    case OverrideKind::pin:
      out = "pinned to " + std::to_string(value);
      break;
    case OverrideKind::freeze:
      out = "frozen";
      break;
    case OverrideKind::bounds:
      out = "bounded to " + (floor ? std::to_string(*floor) : std::string("1")) + ".." +
            (ceiling ? std::to_string(*ceiling) : std::to_string(kMaxValue));
      break;
  }
  out += " by override (" + reason;
  if (until) out += ", until " + format_time(*until);
  return out + ")";
}

bool operator==(const Override& a, const Override& b) {
  return std::tie(a.pool, a.isp, a.vmta, a.kind, a.value, a.floor, a.ceiling, a.until, a.reason,
                  a.line) == std::tie(b.pool, b.isp, b.vmta, b.kind, b.value, b.floor, b.ceiling,
                                      b.until, b.reason, b.line);
}

bool operator==(const TierOverride& a, const TierOverride& b) {
  return std::tie(a.pool, a.isp, a.tier, a.source, a.line) ==
         std::tie(b.pool, b.isp, b.tier, b.source, b.line);
}

const Override* Overrides::for_pair(const std::string& pool, const std::string& isp,
                                    UnixSeconds now) const {
  return most_specific(entries, pool, isp, "", now);
}

const Override* Overrides::for_vmta(const std::string& pool, const std::string& isp,
                                    const std::string& vmta, UnixSeconds now) const {
  return vmta.empty() ? nullptr : most_specific(entries, pool, isp, vmta, now);
}

const TierOverride* Overrides::tier_for(const std::string& pool, const std::string& isp) const {
  for (const TierOverride& t : tiers) {
    if (t.pool == pool && t.isp == isp) return &t;
  }
  return nullptr;
}

Outcome decide_with_override(const PairState& state, const PairSignals& signals,
                             const PolicyParams& policy, UnixSeconds now, const Override* entry,
                             bool freeze_all, const std::string& freeze_reason) {
  const std::string manual =
      freeze_all
          ? "frozen by the kill switch (" +
                (freeze_reason.empty() ? std::string("no reason given") : freeze_reason) + ")"
      : entry ? entry->describe()
              : std::string();
  Outcome out{state, std::nullopt};
  out.next.manual = manual;
  const int value = state.max_smtp_out;

  if (freeze_all || (entry && entry->kind == OverrideKind::freeze)) {
    if (state.manual != manual) {
      out.decision = override_decision(state, now, value, state.phase, signals.window, manual);
    }
    return out;
  }

  if (!entry) {
    out = decide(state, signals, policy, now);
    out.next.manual.clear();
    if (!state.manual.empty() && !out.decision) {
      out.decision = override_decision(
          state, now, value, out.next.phase, signals.window,
          "no longer " + state.manual + ": the policy resumes from " + std::to_string(value));
    }
    return out;
  }

  // pmta refused the last change: a pin waits like any change, or it would retry every cycle.
  if (state.last_failure_at != 0 &&
      now - state.last_failure_at < policy.retry_failed_change_seconds) {
    out.next.manual = state.manual;
    return out;
  }

  if (entry->kind == OverrideKind::pin) {
    if (value == entry->value && state.manual == manual) return out;
    out.next = set_by_hand(state, entry->value, now);
    out.next.manual = manual;
    out.decision =
        override_decision(state, now, entry->value, Phase::steady, signals.window, manual);
    return out;
  }

  // Bounds: a value outside them moves at once; inside, the policy decides within them.
  const int low = std::max(policy.floor, entry->floor.value_or(1));
  const int high = std::max(low, entry->ceiling.value_or(kMaxValue));
  if (value < low || value > high) {
    const int bounded = std::clamp(value, low, high);
    out.next = set_by_hand(state, bounded, now);
    out.next.manual = manual;
    out.decision = override_decision(state, now, bounded, Phase::steady, signals.window, manual);
    return out;
  }
  PolicyParams bounded = policy;
  bounded.floor = low;
  const TierRange range = range_for(policy, state.isp, state.tier);
  const int cap = std::clamp(range.cap, low, high);
  bounded.ranges[state.isp][state.tier] = TierRange{std::clamp(range.start, low, cap), cap};
  out = decide(state, signals, bounded, now);
  out.next.manual = manual;
  if (out.decision) {
    out.decision->reason += "; " + manual;
  } else if (state.manual != manual) {
    out.decision = override_decision(state, now, value, out.next.phase, signals.window, manual);
  }
  return out;
}

int vmta_value(const Override& entry, int pool_value, std::optional<int> held) {
  switch (entry.kind) {
    case OverrideKind::pin:
      return entry.value;
    case OverrideKind::freeze:
      return held.value_or(pool_value);
    case OverrideKind::bounds:
      return std::clamp(pool_value, entry.floor.value_or(1),
                        std::max(entry.floor.value_or(1), entry.ceiling.value_or(kMaxValue)));
  }
  return pool_value;
}

}  // namespace sluice
