#pragma once
// The [notify] hook: the events of a cycle a person should hear about (a cut, a pair entering
// no-effect, a change pmta refused, an override that expired), each run through the command
// with the event as one JSON object on stdin.

#include <nlohmann/json.hpp>
#include <vector>

#include "adapters/command_runner.h"
#include "config/config.h"
#include "controller/cycle.h"

namespace sluice::cli {

// Only what was applied counts: a dry run or a plan has nothing to tell. An override counts as
// expired in the cycle that follows its expiry, within `interval` (the loop's period).
std::vector<nlohmann::ordered_json> notable_events(const CycleReport& report, UnixSeconds interval);

// One run per event; a failure or a timeout is a warning, never a failed cycle.
void send_events(const config::NotifyTable& hook, adapters::ProcessRunner& runner,
                 const std::vector<nlohmann::ordered_json>& events);

}  // namespace sluice::cli
