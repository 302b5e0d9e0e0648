#include "controller/domain.h"

#include <array>

namespace sluice {

namespace {
constexpr std::array<std::string_view, kDeferralClassCount> kClassNames = {
    "none", "connection", "rate", "reputation", "recipient", "config", "other"};
}

std::string_view to_string(DeferralClass c) {
  return kClassNames[static_cast<int>(c)];
}

std::optional<DeferralClass> parse_deferral_class(std::string_view name) {
  for (int i = 0; i < kDeferralClassCount; ++i) {
    if (kClassNames[i] == name) return static_cast<DeferralClass>(i);
  }
  return std::nullopt;
}

bool is_throttle_signal(DeferralClass c) {
  return c == DeferralClass::connection || c == DeferralClass::rate ||
         c == DeferralClass::reputation;
}

}  // namespace sluice
