#pragma once
// What the accounting reader saw besides records: malformed lines by reason, repairs, samples.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class MalformedReason : std::uint8_t {
  column_count,   // not as many fields as the header names
  bad_quoting,    // a quote inside an unquoted field, text after a closing quote, unbalanced
  bad_time,       // timeLogged neither ISO-8601 nor unix seconds
  bad_type,       // a record type PowerMTA does not write
  line_too_long,  // over 1 MiB
};
inline constexpr int kMalformedReasonCount = 5;
std::string_view to_string(MalformedReason reason);

struct MalformedSample {
  std::string file;
  std::uint64_t line = 0;
  MalformedReason reason = MalformedReason::column_count;
};

struct ReadStats {
  static constexpr std::size_t kSamplesPerReason = 5;

  std::uint64_t records = 0;        // d, b, t, tq records delivered to the sink
  std::uint64_t skipped_types = 0;  // r, f, rb, rs: PowerMTA's, not needed
  std::uint64_t header_lines = 0;
  std::uint64_t repaired = 0;  // records kept after replacing invalid UTF-8
  std::uint64_t bytes = 0;
  std::uint64_t files = 0;
  std::array<std::uint64_t, kMalformedReasonCount> malformed{};
  std::vector<MalformedSample> samples;  // the first few of each reason
  std::vector<std::string> warnings;     // files that vanished, were truncated or replaced

  std::uint64_t malformed_total() const;
  std::uint64_t malformed_count(MalformedReason r) const { return malformed[static_cast<int>(r)]; }
  // Counts a malformed line; keeps it as a sample while its reason has few.
  void add_malformed(MalformedReason reason, std::string_view file, std::uint64_t line);
  void merge(const ReadStats& other);
};

}  // namespace sluice
