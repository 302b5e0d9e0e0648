#include "adapters/accounting_parser.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "adapters/time_parse.h"
#include "controller/utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#include <immintrin.h>
#endif

namespace sluice::adapters {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::size_t kMaxFields = 1024;

constexpr std::array<std::string_view, kColumnCount> kColumnNames = {
    "type", "timeLogged", "rcpt", "dsnDiag", "dsnMta", "vmta", "queue", "vmtaPool", "dlvSourceIp"};

constexpr std::string_view kDefaultHeader =
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
    "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,"
    "envId,queue,vmtaPool";

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_HAS_AVX2_PATH 1
// The delimiter masks of four 64-byte blocks with AVX2 (half the instructions of SSE2, and one
// call for 256 bytes); chosen at run time, as Debian's baseline is plain x86-64. Returns a bit
// per block that holds a non-ASCII byte.
__attribute__((target("avx2"))) std::uint32_t avx2_delimiters(const char* p, std::uint64_t* masks) {
  const __m256i comma = _mm256_set1_epi8(',');
  const __m256i quote = _mm256_set1_epi8('"');
  const __m256i newline = _mm256_set1_epi8('\n');
  std::uint32_t non_ascii = 0;
  for (int i = 0; i < 4; ++i, p += 64) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const __m256i lo_hits =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(lo, comma), _mm256_cmpeq_epi8(lo, quote)),
                        _mm256_cmpeq_epi8(lo, newline));
    const __m256i hi_hits =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(hi, comma), _mm256_cmpeq_epi8(hi, quote)),
                        _mm256_cmpeq_epi8(hi, newline));
    masks[i] =
        static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(lo_hits))) |
        static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(hi_hits))) << 32;
    non_ascii |= static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_or_si256(lo, hi)) != 0)
                 << i;
  }
  return non_ascii;
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#endif

// Finds the CSV delimiters (',', '"', '\n') 64 bytes at a time: one bit mask per block, then
// each delimiter costs one count-trailing-zeros instead of a byte loop. The scanner holds the
// masks; the position within them is a Cursor the parser keeps in local variables, as members
// would be reloaded after every store into the field table.
class DelimiterScanner {
 public:
  struct Cursor {
    std::size_t block = 0;
    std::uint64_t remaining = 0;  // delimiters of the block not yet returned
    std::size_t size = 0;         // of the data
  };

  explicit DelimiterScanner(std::string_view data) : data_(data) {}

  // Whether every block scanned that reaches `pos` or beyond is ASCII: after a line was scanned,
  // tells that it needs no UTF-8 validation (conservatively: a false "no" only costs that).
  bool ascii_since(std::size_t pos) const {
    return last_non_ascii_block_ == kNone || last_non_ascii_block_ + 64 <= pos;
  }

  // A cursor whose next() returns the first delimiter at or after `pos`.
  Cursor seek(std::size_t pos) {
    const std::size_t block = pos & ~std::size_t{63};
    if (block >= data_.size()) return {block, 0, data_.size()};
    return {block, mask(block) & (~std::uint64_t{0} << (pos - block)), data_.size()};
  }

  // The next delimiter in order, or data.size() when there is none.
  [[gnu::always_inline]] std::size_t next(Cursor& c) {
    while (c.remaining == 0) {
      if (c.block + 64 >= c.size) return c.size;
      c.block += 64;
      c.remaining = mask(c.block);
    }
    const auto bit = static_cast<std::size_t>(std::countr_zero(c.remaining));
    c.remaining &= c.remaining - 1;
    return c.block + bit;
  }

 private:
  // Blocks are computed kBatch at a time: one call of the vector code per batch.
  static constexpr std::size_t kBatch = 4;

  std::uint64_t mask(std::size_t block) {
    const std::size_t offset = block - batch_;
    if (batch_ != kNone && block >= batch_ && offset < kBatch * 64) return masks_[offset / 64];
    load(block);
    return masks_[0];
  }

  void load(std::size_t block);

  void note_non_ascii(std::size_t block) {
    if (last_non_ascii_block_ == kNone || block > last_non_ascii_block_) {
      last_non_ascii_block_ = block;
    }
  }

  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  std::string_view data_;
  std::size_t batch_ = kNone;  // the first block of masks_
  std::array<std::uint64_t, kBatch> masks_{};
  std::size_t last_non_ascii_block_ = kNone;
};

#ifdef __SSE2__
std::uint64_t sse2_delimiters(const char* p, bool& non_ascii) {
  const __m128i comma = _mm_set1_epi8(',');
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i newline = _mm_set1_epi8('\n');
  const auto delimiters = [&](const __m128i v) {
    const __m128i hits =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                     _mm_cmpeq_epi8(v, newline));
    return static_cast<std::uint64_t>(static_cast<std::uint16_t>(_mm_movemask_epi8(hits)));
  };
  const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
  const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48));
  const __m128i high = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
  non_ascii = _mm_movemask_epi8(high) != 0;
  return delimiters(v0) | delimiters(v1) << 16 | delimiters(v2) << 32 | delimiters(v3) << 48;
}
#endif

void DelimiterScanner::load(std::size_t block) {
  batch_ = block;
  [[maybe_unused]] const std::size_t full = std::min(kBatch, (data_.size() - block) / 64);
  std::size_t i = 0;
#ifdef SLUICE_HAS_AVX2_PATH
  if (kHasAvx2 && full == kBatch) {
    std::uint32_t non_ascii = avx2_delimiters(data_.data() + block, masks_.data());
    for (; non_ascii != 0; non_ascii &= non_ascii - 1) {
      note_non_ascii(block + 64 * static_cast<std::size_t>(std::countr_zero(non_ascii)));
    }
    return;
  }
#endif
#ifdef __SSE2__
  for (; i < full; ++i) {
    bool non_ascii = false;
    masks_[i] = sse2_delimiters(data_.data() + block + 64 * i, non_ascii);
    if (non_ascii) note_non_ascii(block + 64 * i);
  }
#endif
  for (; i < kBatch; ++i) {
    const std::size_t at = block + 64 * i;
    masks_[i] = 0;
    if (at >= data_.size()) continue;
    const char* p = data_.data() + at;
    const std::size_t n = std::min<std::size_t>(64, data_.size() - at);
    for (std::size_t j = 0; j < n; ++j) {
      if (p[j] == ',' || p[j] == '"' || p[j] == '\n') masks_[i] |= std::uint64_t{1} << j;
      if (static_cast<unsigned char>(p[j]) >= 0x80) note_non_ascii(at);
    }
  }
}

// Splits a syntactically valid line into its unescaped fields (the slow path, for header lines).
std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r' && c != '\n') {
      fields.back().push_back(c);
    }
  }
  return fields;
}

std::optional<RecordType> used_type(std::string_view t) {
  if (t.size() == 1) {
    if (t[0] == 'd') return RecordType::delivered;
    if (t[0] == 'b') return RecordType::bounced;
    if (t[0] == 't') return RecordType::deferred;
  } else if (t == "tq") {
    return RecordType::deferred_queue;
  }
  return std::nullopt;
}

bool skipped_type(std::string_view t) {
  return t == "r" || t == "f" || t == "rb" || t == "rs";
}

enum class ScanResult { record, need_more, bad_quoting, too_long, too_many_fields };

class Parser {
 public:
  Parser(std::string_view data, bool at_eof, ParserState& state, RecordSink& sink, ReadStats& stats,
         std::string_view file)
      : data_(data),
        at_eof_(at_eof),
        state_(state),
        sink_(sink),
        stats_(stats),
        file_(file),
        scanner_(data) {}

  ParseProgress run(std::size_t slice_end) {
    std::size_t pos = 0;
    if (state_.skipping_long_line) {
      const void* nl = std::memchr(data_.data(), '\n', data_.size());
      if (nl == nullptr) return {data_.size(), false};
      pos = static_cast<const char*>(nl) - data_.data() + 1;
      state_.skipping_long_line = false;
      ++state_.line;
    }
    if (state_.at_file_start) {
      if (data_.size() - pos < kBom.size() && kBom.starts_with(data_.substr(pos))) {
        return {pos, !at_eof_ || pos < data_.size()};
      }
      if (data_.substr(pos).starts_with(kBom)) pos += kBom.size();
      state_.at_file_start = false;
    }
    while (pos < slice_end && pos < data_.size()) {
      const std::size_t next = step(pos);
      if (next == pos) return {pos, true};
      pos = next;
    }
    return {pos, false};
  }

 private:
  // Handles the record at `start`; returns where the next one starts (`start` if it needs more).
  std::size_t step(std::size_t start) {
    std::size_t end = 0;
    std::uint64_t lines = 0;
    switch (scan(start, end, lines)) {
      case ScanResult::record:
        finish_record(start, end);
        state_.line += lines;
        return end;
      case ScanResult::need_more:
        return at_eof_ ? unterminated_at_eof(start) : start;
      case ScanResult::bad_quoting:
        return skip_first_line(start, MalformedReason::bad_quoting);
      case ScanResult::too_long:
        // A long first line is line_too_long; short lines swallowed by a quote are bad quoting.
        return skip_first_line(start, MalformedReason::bad_quoting);
      case ScanResult::too_many_fields:
        return skip_first_line(start, MalformedReason::column_count);
    }
    return start;
  }

  // Splits the record at `start` into fields: remembers where each field ends.
  ScanResult scan(std::size_t start, std::size_t& end, std::uint64_t& lines) {
    // Locals throughout: the stores into field_ends_ would make the compiler reload members.
    const std::size_t size = data_.size();
    const std::size_t limit = std::min(size, start + kMaxRecordBytes);
    const auto incomplete = [&] {
      return limit < size || limit - start >= kMaxRecordBytes ? ScanResult::too_long
                                                              : ScanResult::need_more;
    };
    record_start_ = start;
    field_count_ = 0;
    quote_open_ = false;
    bool doubled_quotes = false;
    std::uint64_t line_count = 1;
    const char* base = data_.data();
    std::size_t* ends = field_ends_.data();
    std::size_t fields = 0;
    std::size_t pos = start;
    DelimiterScanner::Cursor cursor = scanner_.seek(start);
    while (true) {
      std::size_t stop;  // where the field's terminator is
      if (pos < limit && base[pos] == '"') {
        scanner_.next(cursor);  // the opening quote, at pos
        std::size_t q;
        while (true) {
          q = scanner_.next(cursor);
          if (q >= limit) {
            quote_open_ = true;
            return incomplete();
          }
          if (base[q] != '"') {
            if (base[q] == '\n') ++line_count;
            continue;
          }
          if (q + 1 >= limit) return incomplete();
          if (base[q + 1] != '"') break;
          doubled_quotes = true;
          scanner_.next(cursor);  // the second quote of a doubled pair
        }
        stop = q + 1;
        if (base[stop] == '\r') {
          if (stop + 1 >= limit) return incomplete();
          if (base[stop + 1] != '\n') return ScanResult::bad_quoting;
          ++stop;
        }
        if (base[stop] != ',' && base[stop] != '\n') return ScanResult::bad_quoting;
        scanner_.next(cursor);  // the terminator
      } else {
        stop = std::min(scanner_.next(cursor), limit);
        if (stop == limit) return incomplete();
        if (base[stop] == '"') return ScanResult::bad_quoting;
      }
      const bool last = base[stop] == '\n';
      ends[fields++] = stop;
      pos = stop + 1;
      if (last) break;
      if (fields >= kMaxFields) return ScanResult::too_many_fields;
    }
    record_has_doubled_quotes_ = doubled_quotes;
    field_count_ = fields;
    lines = line_count;
    end = pos;
    return ScanResult::record;
  }

  struct Field {
    std::string_view text;  // still with doubled quotes when `escaped`
    bool escaped = false;
  };

  // Where a column's text lies in the scanned record (empty when the record lacks it).
  Field field(Column c) const {
    const int k = state_.columns.index_of(c);
    if (k < 0 || static_cast<std::size_t>(k) >= field_count_) return {};
    const char* base = data_.data();
    std::size_t begin = k == 0 ? record_start_ : field_ends_[k - 1] + 1;
    std::size_t end = field_ends_[k];
    if (base[end] == '\n' && end > begin && base[end - 1] == '\r') --end;
    Field f;
    if (end > begin && base[begin] == '"') {
      ++begin;
      --end;  // the closing quote
      f.escaped =
          record_has_doubled_quotes_ && std::memchr(base + begin, '"', end - begin) != nullptr;
    }
    f.text = std::string_view(base + begin, end - begin);
    return f;
  }

  std::string_view raw(Column c) const { return field(c).text; }

  // A field's text with doubled quotes undone and invalid UTF-8 repaired.
  // Inlined: called for seven fields of every record, and almost always returns at once.
  [[gnu::always_inline]] std::string_view clean(Column c, bool& repaired) {
    const Field f = field(c);
    if (!f.escaped && line_is_ascii_) return f.text;
    return clean_slow(c, f, repaired);
  }

  [[gnu::noinline]] std::string_view clean_slow(Column c, const Field& f, bool& repaired) {
    std::string_view text = f.text;
    std::string& scratch = scratch_[static_cast<int>(c)];
    if (f.escaped) {
      scratch.clear();
      for (std::size_t i = 0; i < text.size(); ++i) {
        scratch.push_back(text[i]);
        if (text[i] == '"') ++i;
      }
      text = scratch;
    }
    if (!line_is_ascii_ && !is_valid_utf8(text)) {
      std::string& out = repair_[static_cast<int>(c)];
      out.clear();
      append_repaired_utf8(text, out);
      repaired = true;
      return out;
    }
    return text;
  }

  void finish_record(std::size_t start, std::size_t end) {
    const std::string_view line = data_.substr(start, end - start);
    if (line == "\n" || line == "\r\n") return;  // blank lines carry nothing
    const std::string_view type_text = raw(Column::type);
    const std::optional<RecordType> type = used_type(type_text);
    if (!type && skipped_type(type_text)) {
      ++stats_.skipped_types;
      return;
    }
    if (field_count_ != state_.columns.field_count() || !type) {
      if (remap_if_header(line)) return;
      malformed(field_count_ != state_.columns.field_count() ? MalformedReason::column_count
                                                             : MalformedReason::bad_type);
      return;
    }
    const std::optional<UnixSeconds> time = time_of(raw(Column::time_logged));
    if (!time) {
      malformed(MalformedReason::bad_time);
      return;
    }
    line_is_ascii_ = scanner_.ascii_since(start);
    bool repaired = false;
    AccountingRecord record;
    record.type = *type;
    record.time_logged = *time;
    record.rcpt = clean(Column::rcpt, repaired);
    record.dsn_diag = clean(Column::dsn_diag, repaired);
    record.dsn_mta = clean(Column::dsn_mta, repaired);
    record.vmta = clean(Column::vmta, repaired);
    record.queue = clean(Column::queue, repaired);
    record.vmta_pool = clean(Column::vmta_pool, repaired);
    record.source_ip = clean(Column::source_ip, repaired);
    if (repaired) ++stats_.repaired;
    ++stats_.records;
    sink_.on_record(record);
  }

  // Records come in bursts that share their timestamp: a repeat costs one comparison.
  std::optional<UnixSeconds> time_of(std::string_view text) {
    if (!text.empty() && text.size() == last_time_size_ &&
        std::memcmp(text.data(), last_time_text_.data(), text.size()) == 0) {
      return last_time_;
    }
    const std::optional<UnixSeconds> t = times_.parse(text);
    if (t && text.size() <= last_time_text_.size()) {
      std::memcpy(last_time_text_.data(), text.data(), text.size());
      last_time_size_ = text.size();
      last_time_ = *t;
    }
    return t;
  }

  bool remap_if_header(std::string_view line) {
    if (line.starts_with(kBom)) line.remove_prefix(kBom.size());
    const std::vector<std::string> owned = split_fields(line);
    const std::vector<std::string_view> names(owned.begin(), owned.end());
    std::optional<ColumnMap> map = ColumnMap::from_names(names);
    if (!map) return false;
    state_.columns = std::move(*map);
    ++stats_.header_lines;
    return true;
  }

  void malformed(MalformedReason reason) { stats_.add_malformed(reason, file_, state_.line); }

  // One damaged line never hides the good records behind it: only the first physical line of
  // a malformed record is dropped, and reading resumes at the next.
  std::size_t skip_first_line(std::size_t start, MalformedReason reason) {
    const void* nl = std::memchr(data_.data() + start, '\n', data_.size() - start);
    if (nl == nullptr) {
      if (data_.size() - start < kMaxRecordBytes) return start;  // the line's end is not here yet
      malformed(MalformedReason::line_too_long);
      state_.skipping_long_line = true;
      return data_.size();
    }
    const std::size_t next = static_cast<const char*>(nl) - data_.data() + 1;
    if (next - start > kMaxRecordBytes) reason = MalformedReason::line_too_long;
    malformed(reason);
    ++state_.line;
    return next;
  }

  // The data ends inside a record. A last line still being written stays unread; a quote
  // opened on an earlier, complete line and still open at the end is that line's damage.
  std::size_t unterminated_at_eof(std::size_t start) {
    if (!quote_open_) return start;
    const void* nl = std::memchr(data_.data() + start, '\n', data_.size() - start);
    if (nl == nullptr) return start;
    return skip_first_line(start, MalformedReason::bad_quoting);
  }

  std::string_view data_;
  bool at_eof_;
  ParserState& state_;
  RecordSink& sink_;
  ReadStats& stats_;
  std::string_view file_;
  DelimiterScanner scanner_;
  bool quote_open_ = false;  // the last scan ran out of data inside a quoted field
  bool line_is_ascii_ = true;
  StreamTimeParser times_;
  std::array<char, 32> last_time_text_{};  // the last timestamp parsed, when it fits
  std::size_t last_time_size_ = 0;
  UnixSeconds last_time_ = 0;
  std::size_t record_start_ = 0;
  bool record_has_doubled_quotes_ = false;            // else no field needs unescaping
  std::array<std::size_t, kMaxFields> field_ends_{};  // terminator positions
  std::size_t field_count_ = 0;
  std::array<std::string, kColumnCount> scratch_;
  std::array<std::string, kColumnCount> repair_;
};

}  // namespace

const ColumnMap& ColumnMap::powermta_default() {
  static const ColumnMap map = *from_header_line(kDefaultHeader);
  return map;
}

std::optional<ColumnMap> ColumnMap::from_names(const std::vector<std::string_view>& names) {
  if (names.empty() || names.size() > kMaxFields) return std::nullopt;
  ColumnMap map;
  map.index_.fill(-1);
  map.by_field_.assign(names.size(), -1);
  for (std::size_t field = 0; field < names.size(); ++field) {
    for (std::size_t c = 0; c < kColumnCount; ++c) {
      if (names[field] == kColumnNames[c] && map.index_[c] < 0) {
        map.index_[c] = static_cast<int>(field);
        map.by_field_[field] = static_cast<std::int8_t>(c);
      }
    }
  }
  if (map.index_of(Column::type) < 0 || map.index_of(Column::time_logged) < 0) return std::nullopt;
  for (std::size_t field = 0; field < names.size(); ++field) {
    if (field > 0) map.header_line_.push_back(',');
    map.header_line_.append(names[field]);
  }
  return map;
}

std::optional<ColumnMap> ColumnMap::from_header_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with(kBom)) line.remove_prefix(kBom.size());
  const std::vector<std::string> owned = split_fields(line);
  return from_names(std::vector<std::string_view>(owned.begin(), owned.end()));
}

ParseProgress parse_accounting(std::string_view data, std::size_t slice_end, bool at_eof,
                               ParserState& state, RecordSink& sink, ReadStats& stats,
                               std::string_view file_name) {
  Parser parser(data, at_eof, state, sink, stats, file_name);
  return parser.run(std::min(slice_end, data.size()));
}

}  // namespace sluice::adapters
