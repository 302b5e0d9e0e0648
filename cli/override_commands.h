#pragma once
// `sluice override`: edits of the override file, and how the overrides in force are shown by
// status, history and check.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "adapters/override_file.h"
#include "cli/setup.h"
#include "config/config.h"
#include "controller/overrides.h"
#include "controller/ports.h"

namespace sluice::cli {

struct OverrideArgs {
  std::string action;  // pin, freeze, unfreeze, bound, tier, clear, list
  std::string pool;
  std::string isp;
  std::string vmta;
  std::string tier;
  std::string reason;
  std::string source;
  std::string until;
  std::optional<int> max_smtp_out;
  std::optional<int> floor;
  std::optional<int> ceiling;
  bool all = false;
};

int run_override(const GlobalOptions& global, const OverrideArgs& args);

// The overrides a person sees: the file's, or while it is broken the last valid ones (as the
// loop uses them), with the file's error.
struct ShownOverrides {
  Overrides overrides;
  std::string error;
};
ShownOverrides overrides_for_display(const config::Config& config,
                                     const adapters::KnownPools& known, StateStore* store);

nlohmann::ordered_json overrides_json(const ShownOverrides& shown, UnixSeconds now);
// One line per entry, with its state (in force, expired), reason and expiry.
std::string overrides_text(const ShownOverrides& shown, UnixSeconds now);

}  // namespace sluice::cli
