#include "adapters/system_clock.h"

#include <chrono>

namespace sluice::adapters {

UnixSeconds SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::adapters
