#include "cli/decision_format.h"

#include "controller/time_format.h"

namespace sluice::cli {

using Json = nlohmann::ordered_json;

std::string decision_line(const Decision& d) {
  std::string line = format_time(d.at) + " " + d.pool + "/" + d.isp +
                     (d.vmta.empty() ? "" : "/" + d.vmta) + " " + std::string(to_string(d.rule));
  if (d.changes_value() || d.rule == Rule::initial) {
    line += " " + std::to_string(d.old_value) + " -> " + std::to_string(d.new_value);
  }
  return line + ": " + d.reason;
}

Json figures_json(const SignalFigures& f) {
  Json by_class = Json::object();
  for (int c = 1; c < kDeferralClassCount; ++c) {
    by_class[std::string(to_string(static_cast<DeferralClass>(c)))] = f.by_class[c];
  }
  return {{"attempts", f.attempts},
          {"deferrals", f.deferrals},
          {"throttle", f.throttle},
          {"throttle_tq", f.throttle_tq},
          {"by_class", by_class}};
}

Json decision_json(const Decision& d) {
  return {{"at", format_time(d.at)},
          {"pool", d.pool},
          {"isp", d.isp},
          {"vmta", d.vmta},
          {"rule", to_string(d.rule)},
          {"old_value", d.old_value},
          {"new_value", d.new_value},
          {"phase", to_string(d.phase)},
          {"trigger", to_string(d.trigger)},
          {"reason", d.reason},
          {"figures", figures_json(d.figures)}};
}

}  // namespace sluice::cli
