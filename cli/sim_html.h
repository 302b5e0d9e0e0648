#pragma once
// `sluice simulate --html`: one self-contained page, per policy the setting against the hidden
// limit and the deferral rate over time.

#include <string>

#include "sim/simulation.h"

namespace sluice::cli {

std::string simulation_html(const sim::SimulationResult& result);

}  // namespace sluice::cli
