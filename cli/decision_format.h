#pragma once
// How decisions are shown: one line for a terminal or a log, or JSON.

#include <nlohmann/json.hpp>
#include <string>

#include "controller/policy.h"

namespace sluice::cli {

// "2026-11-27T10:00:00Z pool/isp[/vmta] rule old -> new: reason"
std::string decision_line(const Decision& d);
nlohmann::ordered_json figures_json(const SignalFigures& f);
nlohmann::ordered_json decision_json(const Decision& d);

}  // namespace sluice::cli
