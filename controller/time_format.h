#pragma once

#include <string>

#include "controller/domain.h"

namespace sluice {

// "2026-11-27T10:00:00Z".
std::string format_time(UnixSeconds t);

}  // namespace sluice
