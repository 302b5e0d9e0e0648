#pragma once
// Tells systemd how the daemon is doing (sd_notify): ready, alive (the watchdog), reloading,
// stopping, and a one-line status for `systemctl status`. Outside systemd every call does nothing.

#include <chrono>
#include <optional>
#include <string>

namespace sluice::adapters {

class ServiceNotifier {
 public:
  void ready(const std::string& status);
  void alive();
  void status(const std::string& text);
  void reloading();
  void stopping();
  // How often alive() must be called: half the unit's WatchdogSec=, nullopt without a watchdog.
  std::optional<std::chrono::milliseconds> watchdog_period() const;
};

}  // namespace sluice::adapters
