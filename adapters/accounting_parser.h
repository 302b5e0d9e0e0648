#pragma once
// The hand-written, streaming RFC 4180 parser for PowerMTA's accounting CSV. It maps columns by
// the header's names, skips and counts malformed lines, and never reads a record twice.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/read_stats.h"
#include "controller/record_sink.h"

namespace sluice::adapters {

inline constexpr std::size_t kMaxRecordBytes = 1 << 20;

// The accounting columns sluice reads; all others are ignored.
enum class Column : std::uint8_t {
  type,
  time_logged,
  rcpt,
  dsn_diag,
  dsn_mta,
  vmta,
  queue,
  vmta_pool,
  source_ip,
};
inline constexpr std::size_t kColumnCount = 9;

class ColumnMap {
 public:
  // PowerMTA v5's default record-fields, for a file read from its middle or without a header.
  static const ColumnMap& powermta_default();
  // From a header line's field names; nullopt unless it names at least `type` and `timeLogged`.
  static std::optional<ColumnMap> from_names(const std::vector<std::string_view>& names);
  // From a header line as a checkpoint stores it.
  static std::optional<ColumnMap> from_header_line(std::string_view line);

  std::size_t field_count() const { return by_field_.size(); }
  // The column a field position holds, or -1 when sluice does not read it.
  int column_at(std::size_t field) const { return by_field_[field]; }
  const std::int8_t* columns_by_field() const { return by_field_.data(); }
  int index_of(Column c) const { return index_[static_cast<int>(c)]; }
  const std::string& header_line() const { return header_line_; }
  bool operator==(const ColumnMap& o) const { return by_field_ == o.by_field_; }

 private:
  std::vector<std::int8_t> by_field_;
  std::array<int, kColumnCount> index_{};
  std::string header_line_;
};

struct ParserState {
  ColumnMap columns = ColumnMap::powermta_default();
  std::uint64_t line = 1;           // physical line number of the next unread byte
  bool at_file_start = true;        // a UTF-8 byte order mark may follow
  bool skipping_long_line = false;  // inside a line over kMaxRecordBytes, up to its end
};

struct ParseProgress {
  std::size_t consumed = 0;  // bytes fully handled; always ends at a record boundary
  bool need_more = false;    // stopped at a record that continues past the data
};

// Parses the records that start before `slice_end` in `data` (a record may run past
// slice_end up to data.size()). `at_eof`: no more bytes will follow now, so an unterminated
// quote that already swallowed complete lines is malformed, and a last line without its
// newline is left unread (a file still being written).
ParseProgress parse_accounting(std::string_view data, std::size_t slice_end, bool at_eof,
                               ParserState& state, RecordSink& sink, ReadStats& stats,
                               std::string_view file_name);

}  // namespace sluice::adapters
