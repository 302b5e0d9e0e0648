#pragma once

#include "controller/ports.h"

namespace sluice::adapters {

class SystemClock : public Clock {
 public:
  UnixSeconds now() const override;
};

// For replays, simulations and tests (`--now`).
class FixedClock : public Clock {
 public:
  explicit FixedClock(UnixSeconds t) : t_(t) {}
  UnixSeconds now() const override { return t_; }
  void set(UnixSeconds t) { t_ = t; }

 private:
  UnixSeconds t_;
};

}  // namespace sluice::adapters
