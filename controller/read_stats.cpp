#include "controller/read_stats.h"

#include <algorithm>
#include <numeric>

namespace sluice {

std::string_view to_string(MalformedReason reason) {
  switch (reason) {
    case MalformedReason::column_count:
      return "column_count";
    case MalformedReason::bad_quoting:
      return "bad_quoting";
    case MalformedReason::bad_time:
      return "bad_time";
    case MalformedReason::bad_type:
      return "bad_type";
    case MalformedReason::line_too_long:
      return "line_too_long";
  }
  return "unknown";
}

std::uint64_t ReadStats::malformed_total() const {
  return std::accumulate(malformed.begin(), malformed.end(), std::uint64_t{0});
}

void ReadStats::add_malformed(MalformedReason reason, std::string_view file, std::uint64_t line) {
  if (malformed[static_cast<int>(reason)]++ < kSamplesPerReason) {
    samples.push_back(MalformedSample{std::string(file), line, reason});
  }
}

void ReadStats::merge(const ReadStats& other) {
  records += other.records;
  skipped_types += other.skipped_types;
  header_lines += other.header_lines;
  repaired += other.repaired;
  bytes += other.bytes;
  files += other.files;
  for (const MalformedSample& s : other.samples) {
    const auto same_reason =
        std::count_if(samples.begin(), samples.end(),
                      [&](const MalformedSample& m) { return m.reason == s.reason; });
    if (static_cast<std::size_t>(same_reason) < kSamplesPerReason) samples.push_back(s);
  }
  warnings.insert(warnings.end(), other.warnings.begin(), other.warnings.end());
  for (int i = 0; i < kMalformedReasonCount; ++i) malformed[i] += other.malformed[i];
}

}  // namespace sluice
