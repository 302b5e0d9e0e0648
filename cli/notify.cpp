#include "cli/notify.h"

#include <spdlog/spdlog.h>

#include "cli/decision_format.h"
#include "controller/time_format.h"

namespace sluice::cli {

using Json = nlohmann::ordered_json;

std::vector<Json> notable_events(const CycleReport& report, UnixSeconds interval) {
  std::vector<Json> events;
  if (report.mode != CycleMode::apply) return events;
  const auto event = [&](const char* kind, Json fields) {
    fields["event"] = kind;
    fields["at"] = format_time(report.now);
    events.push_back(std::move(fields));
  };
  for (const Decision& d : report.decisions) {
    const bool cut = d.rule == Rule::cut || d.rule == Rule::severe_cut;
    if (cut && !report.pmta_failed) event("cut", decision_json(d));
    if (d.rule == Rule::no_effect) event("no_effect", decision_json(d));
  }
  if (report.pmta_failed) event("change_refused", Json{{"pmta", report.pmta_outcome}});
  for (const Override& o : report.overrides.entries) {
    if (!o.until || *o.until > report.now || *o.until <= report.now - interval) continue;
    event("override_expired", Json{{"pool", o.pool},
                                   {"isp", o.isp},
                                   {"vmta", o.vmta},
                                   {"kind", to_string(o.kind)},
                                   {"until", format_time(*o.until)},
                                   {"reason", o.reason}});
  }
  return events;
}

void send_events(const config::NotifyTable& hook, adapters::ProcessRunner& runner,
                 const std::vector<Json>& events) {
  for (const Json& e : events) {
    const CommandResult r = runner.run_with_input(hook.command, e.dump() + "\n",
                                                  std::chrono::seconds(hook.timeout_seconds));
    if (!r.error.empty()) {
      spdlog::warn("notify command not run for {}: {}", e["event"].get<std::string>(), r.error);
    } else if (r.timed_out) {
      spdlog::warn("notify command timed out after {} s for {}", hook.timeout_seconds,
                   e["event"].get<std::string>());
    } else if (r.exit_code != 0) {
      spdlog::warn("notify command exited {} for {}", r.exit_code, e["event"].get<std::string>());
    }
  }
}

}  // namespace sluice::cli
