#pragma once
// What a person told the loop: pins, freezes and bounds per pool, ISP or VMTA, tiers per pair,
// and the kill switch. Pure: which entry is in force at `now`, and what it does to a decision.

#include <optional>
#include <string>
#include <vector>

#include "controller/policy.h"

namespace sluice {

enum class OverrideKind : std::uint8_t { pin, freeze, bounds };
std::string_view to_string(OverrideKind kind);

struct Override {
  std::string pool;
  std::string isp;   // empty: every ISP of the pool
  std::string vmta;  // empty: the pool's setting
  OverrideKind kind = OverrideKind::pin;
  int value = 0;  // pin
  std::optional<int> floor;
  std::optional<int> ceiling;
  std::optional<UnixSeconds> until;
  std::string reason;
  int line = 0;  // in the override file
  bool in_force(UnixSeconds now) const { return !until || now < *until; }
  // "pin 4", "freeze", "floor 2, ceiling 6", with the reason and the expiry.
  std::string describe() const;
};

struct TierOverride {
  std::string pool;
  std::string isp;
  Tier tier = Tier::medium;
  std::string source;
  int line = 0;
};

struct Overrides {
  bool freeze_all = false;
  std::string freeze_reason;
  std::vector<Override> entries;
  std::vector<TierOverride> tiers;
  bool operator==(const Overrides&) const = default;

  // The entry in force for the pool's own setting at this ISP: an ISP's own entry before the
  // pool-wide one. VMTA entries never apply here.
  const Override* for_pair(const std::string& pool, const std::string& isp, UnixSeconds now) const;
  // The entry in force for one VMTA's setting at this ISP, likewise.
  const Override* for_vmta(const std::string& pool, const std::string& isp, const std::string& vmta,
                           UnixSeconds now) const;
  const TierOverride* tier_for(const std::string& pool, const std::string& isp) const;
};

bool operator==(const Override& a, const Override& b);
bool operator==(const TierOverride& a, const TierOverride& b);

// The decision for a pair under an override in force (none: the policy's own). A pin sets the
// value; a freeze keeps it and the pair's phase; bounds clamp the value and narrow the range
// the policy moves in. Decisions an override causes have the rule `override`.
Outcome decide_with_override(const PairState& state, const PairSignals& signals,
                             const PolicyParams& policy, UnixSeconds now, const Override* entry,
                             bool freeze_all, const std::string& freeze_reason);

// The value one VMTA's fragment holds under an entry: the pin, the value frozen (held, when
// there is one, else the pool's), or the pool's value clamped to the bounds.
int vmta_value(const Override& entry, int pool_value, std::optional<int> held);

}  // namespace sluice
