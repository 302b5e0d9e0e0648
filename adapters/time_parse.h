#pragma once
// Timestamps as PowerMTA and operators write them.

#include <optional>
#include <string>
#include <string_view>

#include "controller/domain.h"
#include "controller/time_format.h"

namespace sluice::adapters {

// "2026-11-27 10:00:00+0000", "2026-11-27T10:00:00Z", "2026-11-27 10:00:00" (UTC),
// "+01:00" offsets and fractional seconds, or unix seconds ("1795774800").
std::optional<UnixSeconds> parse_time(std::string_view text);

// parse_time for a stream of timestamps in order: consecutive records share all but the seconds,
// so the date arithmetic is done once per minute.
class StreamTimeParser {
 public:
  std::optional<UnixSeconds> parse(std::string_view text);

 private:
  std::string minute_key_;  // the text without its two seconds digits
  UnixSeconds minute_start_ = 0;
};

// "90s", "15m", "2h", "7d", "1w2d12h" (PowerMTA's interval form).
std::optional<UnixSeconds> parse_duration(std::string_view text);

using sluice::format_time;

}  // namespace sluice::adapters
