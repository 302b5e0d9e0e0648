// Fuzzes the time parsers: PowerMTA's and the operator's timestamps (parse_time and its streaming
// form), the override file's until (parse_utc_time) and durations. A parsed time formatted back
// by format_time must parse to the same value, within the years format_time writes as four digits;
// and a text both parse_time and parse_utc_time accept must mean the same instant to both.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/time_parse.h"
#include "config/overrides.h"
#include "controller/time_format.h"

namespace {

constexpr std::int64_t kFirst = -62167219200;  // 0000-01-01T00:00:00Z
constexpr std::int64_t kLast = 253402300799;   // 9999-12-31T23:59:59Z

void require(bool ok) {
  if (!ok) std::abort();
}

void require_round_trip(std::int64_t t) {
  if (t < kFirst || t > kLast) return;
  const std::string text = sluice::format_time(t);
  require(sluice::adapters::parse_time(text) == t);
  require(sluice::config::parse_utc_time(text) == t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::optional<std::int64_t> loose = sluice::adapters::parse_time(input);
  const std::optional<std::int64_t> strict = sluice::config::parse_utc_time(input);
  if (loose) require_round_trip(*loose);
  if (strict) require_round_trip(*strict);
  require(!loose || !strict || *loose == *strict);
  if (const auto d = sluice::adapters::parse_duration(input)) require(*d >= 0);
  // The streaming parser reuses the last minute's arithmetic: line by line, it must agree with
  // parse_time on every line.
  sluice::adapters::StreamTimeParser stream;
  std::string_view rest = input;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    require(stream.parse(line) == sluice::adapters::parse_time(line));
  }
  return 0;
}
