#pragma once
// The text of a generated fragment: directive lines only, to be included inside the operator's
// <domain> block of the pool.

#include <optional>
#include <string>
#include <string_view>

#include "controller/policy.h"

namespace sluice {

// max-smtp-out paired with a connect rate (no connection storms) and backoff-max-smtp-out at
// half the value (at least 1), so that a queue in backoff mode is throttled too; then the
// warm-up's max-msg-rate and the warm-up's or recovery's retry-after when they apply.
std::string render_fragment(const PairState& state, const PolicyParams& policy, UnixSeconds now,
                            std::string_view why);

// The max-smtp-out value a fragment holds (the operator's, before sluice manages the pair).
std::optional<int> fragment_max_smtp_out(std::string_view content);

int backoff_value(int max_smtp_out);

// "max-msg-rate 50/h, retry-after 30m": the settings beside max-smtp-out, for reasons.
std::string fragment_settings_text(const PairState& state, const PolicyParams& policy);

}  // namespace sluice
