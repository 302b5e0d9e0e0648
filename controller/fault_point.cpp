#include "controller/fault_point.h"

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>

namespace sluice {

namespace {

struct Plan {
  std::string name;
  long nth = 1;
  int error = 0;  // 0: kill
  long reached = 0;
};

// An unreadable $SLUICE_FAULT must not pass for "no fault": the test relying on it would prove
// nothing. It is a test build's setting, so stopping loudly is the right answer.
Plan parse(std::string_view spec) {
  Plan plan;
  std::string_view action = "kill";
  if (const auto eq = spec.find('='); eq != std::string_view::npos) {
    action = spec.substr(eq + 1);
    spec = spec.substr(0, eq);
  }
  if (const auto colon = spec.find(':'); colon != std::string_view::npos) {
    plan.nth = std::strtol(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
    spec = spec.substr(0, colon);
  }
  plan.name = spec;
  if (action == "ENOSPC") {
    plan.error = ENOSPC;
  } else if (action == "EROFS") {
    plan.error = EROFS;
  } else if (action == "EIO") {
    plan.error = EIO;
  } else if (action != "kill" || plan.name.empty() || plan.nth < 1) {
    std::abort();
  }
  return plan;
}

}  // namespace

int fault_point(std::string_view name) {
  static std::mutex mutex;
  static const char* spec = std::getenv("SLUICE_FAULT");
  if (spec == nullptr || *spec == '\0') return 0;
  static Plan plan = parse(spec);
  std::lock_guard lock(mutex);
  if (name != plan.name || ++plan.reached != plan.nth) return 0;
  if (plan.error == 0) ::raise(SIGKILL);
  return plan.error;
}

}  // namespace sluice
