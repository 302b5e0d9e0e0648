#include "adapters/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>

namespace sluice::adapters {

namespace {

// A status must stay on one line: sd_notify's message is newline-separated assignments.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

void notify(const std::string& message) {
  // 0: keep $NOTIFY_SOCKET, so that a restarted cycle can still reach systemd.
  sd_notify(0, message.c_str());
}

}  // namespace

void ServiceNotifier::ready(const std::string& status) {
  notify("READY=1\nSTATUS=" + one_line(status));
}

void ServiceNotifier::alive() {
  notify("WATCHDOG=1");
}

void ServiceNotifier::status(const std::string& text) {
  notify("STATUS=" + one_line(text));
}

void ServiceNotifier::reloading() {
  notify("RELOADING=1\nSTATUS=re-reading the configuration");
}

void ServiceNotifier::stopping() {
  notify("STOPPING=1\nSTATUS=stopping");
}

std::optional<std::chrono::milliseconds> ServiceNotifier::watchdog_period() const {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::milliseconds(usec / 2000);
}

}  // namespace sluice::adapters
