#pragma once
// The override file ([state] overrides): what a person tells the loop to do instead of deciding.
// Parsed and checked on its own here; that its pools, ISPs and VMTAs exist is checked against
// the configuration by the caller.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

inline constexpr std::int64_t kMaxSmtpOut = 1000;

enum class OverrideKind { pin, freeze, bounds };

// [[override]]: one of max_smtp_out (pin), freeze = true, or floor and/or ceiling (bounds).
struct OverrideEntry {
  std::string pool;
  std::string isp;   // empty: every ISP of the pool
  std::string vmta;  // empty: the pool's setting
  OverrideKind kind = OverrideKind::pin;
  std::int64_t max_smtp_out = 0;  // pin: 1..1000
  std::optional<std::int64_t> floor;
  std::optional<std::int64_t> ceiling;
  std::optional<std::int64_t> until;  // unix seconds; none: until removed
  std::string reason;
  std::int64_t line = 0;
};

// [[tier]]: the reputation tier of one (pool, ISP), in place of the pool's.
struct TierEntry {
  std::string pool;
  std::string isp;
  std::string tier;  // high, medium, low, warming
  std::string source;
  std::int64_t line = 0;
};

struct OverrideFile {
  std::string source;       // the file's path, for messages
  bool freeze_all = false;  // [global] freeze: the kill switch
  std::string freeze_reason;
  std::int64_t global_line = 0;
  std::vector<OverrideEntry> overrides;
  std::vector<TierEntry> tiers;
};

struct OverrideLoad {
  std::optional<OverrideFile> file;
  std::string error;  // "FILE:LINE: problem" when file is empty
};

// An empty text is a file without overrides. Two entries for the same pool, ISP and VMTA are an
// error, so that what is in force never depends on the order of the file.
OverrideLoad parse_overrides(std::string_view text, const std::string& source);

// "2026-12-01T00:00:00Z", "2026-12-01 00:00:00+01:00", "2026-12-01" (midnight UTC): unix
// seconds. A time without an offset is ambiguous and refused.
std::optional<std::int64_t> parse_utc_time(std::string_view text);

}  // namespace sluice::config
