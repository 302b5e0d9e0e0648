#include "adapters/accounting_reader.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/accounting_parser.h"
#include "adapters/time_parse.h"

namespace sluice::adapters {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds k20261127_10 = 1795773600;  // 2026-11-27T10:00:00Z
constexpr std::string_view kHeader = "type,timeLogged,rcpt,dsnDiag,vmta,queue\n";
constexpr std::string_view kTime = "2026-11-27 10:00:00+0000";
const ReaderOptions kOneThread{1, 64 << 10};

// --- Helpers ----------------------------------------------------------------------------------

// An AccountingRecord that owns its text.
struct Rec {
  RecordType type = RecordType::delivered;
  UnixSeconds time = 0;
  std::string rcpt, dsn_diag, dsn_mta, vmta, queue, vmta_pool, source_ip;
  auto operator<=>(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{type=" << static_cast<int>(r.type) << " time=" << r.time << " rcpt=" << r.rcpt
            << " diag=" << r.dsn_diag << " mta=" << r.dsn_mta << " vmta=" << r.vmta
            << " queue=" << r.queue << " pool=" << r.vmta_pool << " ip=" << r.source_ip << "}";
}

class Collector : public PartitionedSink {
 public:
  void on_record(const AccountingRecord& r) override {
    records.push_back(Rec{r.type, r.time_logged, std::string(r.rcpt), std::string(r.dsn_diag),
                          std::string(r.dsn_mta), std::string(r.vmta), std::string(r.queue),
                          std::string(r.vmta_pool), std::string(r.source_ip)});
  }
  std::unique_ptr<PartitionedSink> make_partial(std::size_t) override {
    return std::make_unique<Collector>();
  }
  void absorb(PartitionedSink& partial) override {
    auto& p = dynamic_cast<Collector&>(partial);
    records.insert(records.end(), p.records.begin(), p.records.end());
    p.records.clear();
  }
  std::vector<Rec> records;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-acct-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), text.size());
}

void append_file(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::app).write(text.data(), text.size());
}

// A new file (new inode) in place of `path`.
void replace_file(const std::string& path, std::string_view text) {
  write_file(path + ".new", text);
  fs::rename(path + ".new", path);
}

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

struct ReadResult {
  FileCheckpoint checkpoint;
  std::vector<Rec> records;
  ReadStats stats;
};

ReadResult read_acct(const std::string& path, const FileCheckpoint* resume = nullptr,
                     const ReaderOptions& options = kOneThread) {
  ReadResult r;
  Collector sink;
  Expected<FileCheckpoint> cp = read_accounting_file(path, resume, sink, r.stats, options);
  EXPECT_TRUE(cp.ok()) << (cp.ok() ? "" : cp.error().message);
  if (cp.ok()) r.checkpoint = cp.value();
  r.records = std::move(sink.records);
  return r;
}

// A line under kHeader's columns.
std::string line(std::string_view type, std::string_view rcpt, std::string_view diag = "ok") {
  return std::string(type) + "," + std::string(kTime) + "," + std::string(rcpt) + "," +
         std::string(diag) + ",v1,x.com/v1\n";
}

Rec rec(std::string rcpt, std::string diag = "ok", RecordType type = RecordType::delivered) {
  return Rec{type, k20261127_10, std::move(rcpt), std::move(diag), "", "v1", "x.com/v1", "", ""};
}

std::vector<std::string> rcpts(const std::vector<Rec>& records) {
  std::vector<std::string> out;
  for (const Rec& r : records) out.push_back(r.rcpt);
  return out;
}

// "" when equal, else where `got` first differs from `want`.
std::string first_difference(const std::vector<Rec>& got, const std::vector<Rec>& want) {
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (got[i] != want[i]) {
      std::ostringstream os;
      os << "record " << i << ": got " << got[i] << " want " << want[i];
      return os.str();
    }
  }
  if (got.size() == want.size()) return "";
  return "got " + std::to_string(got.size()) + " records, want " + std::to_string(want.size());
}

// Every figure of `s`, one sample or warning a line, for readable comparisons.
std::string describe(const ReadStats& s) {
  std::ostringstream os;
  os << "records=" << s.records << " skipped_types=" << s.skipped_types
     << " header_lines=" << s.header_lines << " repaired=" << s.repaired << " bytes=" << s.bytes
     << " files=" << s.files << " malformed=";
  for (std::uint64_t m : s.malformed) os << m << ",";
  for (const MalformedSample& m : s.samples) {
    os << "\n  " << m.file << ":" << m.line << " " << to_string(m.reason);
  }
  for (const std::string& w : s.warnings) os << "\n  warning: " << w;
  return os.str();
}

std::vector<std::string> sample_lines(const ReadStats& s) {
  std::vector<std::string> out;
  for (const MalformedSample& m : s.samples) {
    out.push_back(std::to_string(m.line) + " " + std::string(to_string(m.reason)));
  }
  return out;
}

// --- A generated accounting log and what reading it must give ---------------------------------

std::vector<std::string> split(std::string_view csv) {
  std::vector<std::string> out(1);
  for (char c : csv) {
    if (c == ',') {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

const std::vector<std::string> kPmtaNames = split(
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
    "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,"
    "envId,queue,vmtaPool");
// Another order, a subset (no dsnMta) and an extra column.
const std::vector<std::string> kOtherNames =
    split("vmtaPool,queue,type,dlvSourceIp,timeLogged,rcpt,jobId,dsnDiag,vmta");

std::string encode(const std::string& v, bool force_quotes) {
  if (v.empty() || (!force_quotes && v.find_first_of(",\"\r\n") == std::string::npos)) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct Row {
  std::string type, time, rcpt, diag, mta, vmta, queue, pool, ip;
};

class LogBuilder {
 public:
  LogBuilder(std::string file, std::uint32_t seed) : file_(std::move(file)), rng_(seed) {}

  std::string text;
  std::vector<Rec> records;  // what a reader must deliver
  ReadStats stats;           // and report
  // (lo, hi): a read of a file still being written must not end strictly in between (a
  // multi-line record after its first line break; an unbalanced quote up to the next quote).
  std::vector<std::pair<std::size_t, std::size_t>> unsafe;

  // `straddle`: offsets that should fall inside the first line of a multi-line record.
  void generate(std::size_t target, bool long_line, std::vector<std::size_t> straddle = {}) {
    text = "\xEF\xBB\xBF";
    header(kPmtaNames);
    bool remapped = false, restored = false;
    std::sort(straddle.rbegin(), straddle.rend());
    for (int i = 0; text.size() < target; ++i) {
      if (!remapped && text.size() > target * 4 / 10) {
        header(kOtherNames);
        remapped = true;
      }
      if (long_line && text.size() > target * 55 / 100) {
        too_long_line();
        long_line = false;
      }
      if (!restored && text.size() > target * 7 / 10) {
        header(kPmtaNames);
        restored = true;
      }
      while (!straddle.empty() && straddle.back() < text.size()) straddle.pop_back();
      if (!straddle.empty() && straddle.back() < text.size() + 400) {
        straddle.pop_back();
        record(i, std::string(600, 'L') + "\nnext line, " + std::to_string(i));
        continue;
      }
      const unsigned dice = rng_() % 1000;
      if (dice < 3) {
        malformed(i, static_cast<int>(rng_() % 5));
      } else if (dice < 25) {
        skipped(i);
      } else if (dice < 35) {
        append_row("");
      } else {
        record(i);
      }
    }
    stats.bytes = text.size();
    stats.files = 1;
  }

 private:
  void header(const std::vector<std::string>& names) {
    names_ = names;
    std::string row;
    for (const std::string& n : names) row += (row.empty() ? "" : ",") + n;
    append_row(row);
    ++stats.header_lines;
  }

  std::string time_text(UnixSeconds t) {
    std::string iso = format_time(t);  // 2026-11-27T10:00:00Z
    switch (rng_() % 5) {
      case 0:
        return iso;
      case 1:
        return iso.replace(10, 1, " ").substr(0, 19) + "+0000";
      case 2:
        return format_time(t + 3600).replace(10, 1, " ").substr(0, 19) + "+0100";
      case 3:
        return iso.replace(10, 1, " ").substr(0, 19);
      default:
        return std::to_string(t);
    }
  }

  // Values for line i and the record they must give; `diag` overrides the random one.
  std::pair<Row, Rec> values(int i, std::optional<std::string> diag = std::nullopt) {
    static const char* kTypes[] = {"d", "b", "t", "tq"};
    const auto type = static_cast<RecordType>(rng_() % 4);
    const UnixSeconds t = k20261127_10 + i;
    const std::string n = std::to_string(i);
    Row row{kTypes[static_cast<int>(type)],
            time_text(t),
            type == RecordType::deferred_queue
                ? ""
                : "user" + n + "@example" + std::to_string(i % 13) + ".com",
            "",
            "mx" + std::to_string(i % 5) + ".example.com (10.0." + std::to_string(i % 200) + ".1)",
            "vmta-" + std::to_string(i % 7),
            "example" + std::to_string(i % 13) + ".com/vmta-" + std::to_string(i % 7),
            "pool-" + std::to_string(i % 3),
            "10.1." + std::to_string(i % 50) + "." + std::to_string(i % 250)};
    std::string expected_diag;
    if (diag) {
      row.diag = expected_diag = *diag;
    } else {
      switch (rng_() % 8) {
        case 2:
          row.diag = "smtp;421 4.7.0 [10.1.2.3] Try again later, closing connection.";
          break;
        case 3:
          row.diag = "smtp;550 5.1.1 \"user" + n + "\" unknown";
          break;
        case 4:
        case 5:
          row.diag = "smtp;451 4.3.0 first " + n + (rng_() % 2 ? "\n" : "\r\n") + "second, line";
          break;
        case 6:
          row.diag = "smtp;550 5.7.1 refus\xe9 " + n;
          expected_diag = "smtp;550 5.7.1 refus\xc3\xa9 " + n;
          break;
        case 7:
          row.diag = "smtp;452 4.2.2 over quota";
          break;
        default:
          row.diag = "smtp;250 2.0.0 OK id=" + n;
          break;
      }
      if (expected_diag.empty()) expected_diag = row.diag;
    }
    const bool other = names_ == kOtherNames;
    Rec r{type,     t,         row.rcpt, expected_diag, other ? "" : row.mta,
          row.vmta, row.queue, row.pool, row.ip};
    return {row, r};
  }

  // The row under the current header; `raw` replaces one field's text verbatim.
  std::string line_of(const Row& r, bool may_quote, const std::string& raw_name = "",
                      const std::string& raw_text = "") {
    std::string out;
    for (std::size_t k = 0; k < names_.size(); ++k) {
      const std::string& n = names_[k];
      const std::string v = n == "type"          ? r.type
                            : n == "timeLogged"  ? r.time
                            : n == "rcpt"        ? r.rcpt
                            : n == "dsnDiag"     ? r.diag
                            : n == "dsnMta"      ? r.mta
                            : n == "vmta"        ? r.vmta
                            : n == "queue"       ? r.queue
                            : n == "vmtaPool"    ? r.pool
                            : n == "dlvSourceIp" ? r.ip
                            : n == "jobId"       ? "job-" + r.time
                                                 : "";
      if (k > 0) out += ',';
      out += n == raw_name ? raw_text : encode(v, may_quote && rng_() % 10 == 0);
    }
    return out;
  }

  void record(int i, std::optional<std::string> diag = std::nullopt) {
    const auto [row, expected] = values(i, std::move(diag));
    append_row(line_of(row, true));
    records.push_back(expected);
    ++stats.records;
    if (row.diag != expected.dsn_diag) ++stats.repaired;
  }

  void skipped(int i) {
    static const char* kSkipped[] = {"r", "f", "rb", "rs"};
    Row row = values(i).first;
    row.type = kSkipped[rng_() % 4];
    append_row(line_of(row, true));
    ++stats.skipped_types;
  }

  void malformed(int i, int kind) {
    Row row = values(i, "smtp;250 ok " + std::to_string(i)).first;
    const std::uint64_t first_line = line_;
    const std::size_t start = text.size();
    MalformedReason reason;
    switch (kind) {
      case 0:
        reason = MalformedReason::column_count;
        append_row(line_of(row, true) + ",extra");
        break;
      case 1:
        reason = MalformedReason::bad_quoting;
        append_row(line_of(row, true, "rcpt", "bad\"quote" + std::to_string(i) + "@x.com"));
        break;
      case 2:  // an unbalanced quote: the next record's quote closes it, too late
        reason = MalformedReason::bad_quoting;
        append_row(line_of(row, false, "dsnDiag", "\"unclosed " + std::to_string(i)));
        record(i, "smtp;421 4.7.0 try later, " + std::to_string(i));  // holds the next quote
        unsafe.emplace_back(start, text.size());
        break;
      case 3:
        reason = MalformedReason::bad_time;
        row.time = "2026-11-27 25:00:00+0000";
        row.diag = "smtp;451 two\nlines";
        append_row(line_of(row, true));
        break;
      default:
        reason = MalformedReason::bad_type;
        row.type = "x";
        row.diag = "smtp;451 two\nlines";
        append_row(line_of(row, true));
        break;
    }
    stats.add_malformed(reason, file_, first_line);
  }

  void too_long_line() {
    stats.add_malformed(MalformedReason::line_too_long, file_, line_);
    append_row("d," + std::string(kTime) + "," + std::string(kMaxRecordBytes + (200 << 10), 'a'));
  }

  void append_row(const std::string& row) {
    const std::size_t start = text.size();
    text += row;
    text += rng_() % 5 == 0 ? "\r\n" : "\n";
    if (const std::size_t nl = row.find('\n'); nl != std::string::npos) {
      unsafe.emplace_back(start + nl, text.size());
    }
    line_ += 1 + static_cast<std::uint64_t>(std::count(row.begin(), row.end(), '\n'));
  }

  std::string file_;
  std::mt19937 rng_;
  std::vector<std::string> names_;
  std::uint64_t line_ = 1;
};

// --- read_accounting_file ---------------------------------------------------------------------

TEST(AccountingReader, ReadsToTheEndAndReturnsACheckpoint) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  const std::string text = std::string(kHeader) + line("d", "a@x.com") + line("b", "b@x.com") +
                           line("t", "c@x.com", "\"421 try\nlater\"");
  write_file(path, text);

  const ReadResult r = read_acct(path);
  EXPECT_EQ(r.records, (std::vector<Rec>{rec("a@x.com"), rec("b@x.com", "ok", RecordType::bounced),
                                         rec("c@x.com", "421 try\nlater", RecordType::deferred)}));
  EXPECT_EQ(r.checkpoint.path, path);
  EXPECT_EQ(r.checkpoint.offset, text.size());
  EXPECT_EQ(r.checkpoint.line, 6u);
  EXPECT_EQ(r.checkpoint.header, "type,timeLogged,rcpt,dsnDiag,vmta,queue");
  EXPECT_EQ(r.checkpoint.identity.inode, inode_of(path));
  EXPECT_NE(r.checkpoint.identity.head_hash, 0u);
  EXPECT_EQ(r.stats.files, 1u);
  EXPECT_EQ(r.stats.bytes, text.size());
  EXPECT_EQ(r.stats.records, 3u);
  EXPECT_TRUE(r.stats.warnings.empty());
}

TEST(AccountingReader, MissingPathOrDirectoryIsAnError) {
  TempDir dir;
  Collector sink;
  ReadStats stats;
  EXPECT_FALSE(read_accounting_file(dir.path("nope.csv"), nullptr, sink, stats).ok());
  EXPECT_FALSE(read_accounting_file(dir.path(""), nullptr, sink, stats).ok());
  EXPECT_EQ(stats.records, 0u);
}

TEST(AccountingReader, PartialLastLineIsReadOnceWhenComplete) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  const std::string done = std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com");
  write_file(path, done + "b," + std::string(kTime) + ",c@x.com,550 no");

  const ReadResult first = read_acct(path);
  EXPECT_EQ(rcpts(first.records), (std::vector<std::string>{"a@x.com", "b@x.com"}));
  EXPECT_EQ(first.checkpoint.offset, done.size());
  EXPECT_EQ(first.checkpoint.line, 4u);
  EXPECT_EQ(first.stats.malformed_total(), 0u);

  append_file(path, "pe,v1,x.com/v1\n");
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(second.records, (std::vector<Rec>{rec("c@x.com", "550 nope", RecordType::bounced)}));
  EXPECT_EQ(second.checkpoint.line, 5u);
  EXPECT_EQ(second.checkpoint.offset, fs::file_size(path));

  const ReadResult third = read_acct(path, &second.checkpoint);
  EXPECT_TRUE(third.records.empty());
  EXPECT_EQ(third.checkpoint.offset, second.checkpoint.offset);
  EXPECT_EQ(third.stats.bytes, 0u);
}

// The quote is closed; only the record's final newline has not been written yet.
TEST(AccountingReader, PartialMultiLineRecordIsReadOnceWhenComplete) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  const std::string done = std::string(kHeader) + line("d", "a@x.com");
  write_file(path, done + "t," + std::string(kTime) + ",b@x.com,\"421 first\nsecond\"");

  const ReadResult first = read_acct(path);
  EXPECT_EQ(rcpts(first.records), (std::vector<std::string>{"a@x.com"}));
  EXPECT_EQ(first.checkpoint.offset, done.size());
  EXPECT_EQ(first.stats.malformed_total(), 0u) << describe(first.stats);

  append_file(path, ",v1,x.com/v1\n");
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(second.records,
            (std::vector<Rec>{rec("b@x.com", "421 first\nsecond", RecordType::deferred)}));
  EXPECT_EQ(second.stats.malformed_total(), 0u) << describe(second.stats);
  EXPECT_EQ(second.checkpoint.offset, fs::file_size(path));
}

TEST(AccountingReader, ResumeKeepsTheHeaderMappingOfAnotherColumnOrder) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  const std::string header = "queue,rcpt,timeLogged,type,dsnDiag,vmta";
  write_file(path, header + "\nq1,a@x.com,1795773600,d,ok,v1\nq2,b@x.com,1795773601,b,no,v2\n");
  const ReadResult first = read_acct(path);
  ASSERT_EQ(first.records.size(), 2u);
  EXPECT_EQ(first.checkpoint.header, header);
  EXPECT_EQ(first.checkpoint.line, 4u);

  append_file(path,
              "q3,c@x.com,1795773602,t,\"421, later\",v3\n"
              "q4,d@x.com,noon,t,x,v4\n"
              "q5,e@x.com,1795773604,tq,y,v5\n");
  FileCheckpoint stored;  // as a store would give it back
  stored.path = path;
  stored.identity = first.checkpoint.identity;
  stored.offset = first.checkpoint.offset;
  stored.line = first.checkpoint.line;
  stored.header = first.checkpoint.header;
  stored.tail_hash = first.checkpoint.tail_hash;
  stored.inside_long_line = first.checkpoint.inside_long_line;
  const ReadResult second = read_acct(path, &stored);
  EXPECT_EQ(second.records, (std::vector<Rec>{Rec{RecordType::deferred, k20261127_10 + 2, "c@x.com",
                                                  "421, later", "", "v3", "q3", "", ""},
                                              Rec{RecordType::deferred_queue, k20261127_10 + 4,
                                                  "e@x.com", "y", "", "v5", "q5", "", ""}}));
  EXPECT_EQ(sample_lines(second.stats), (std::vector<std::string>{"5 bad_time"}));
  EXPECT_EQ(second.stats.header_lines, 0u);
  EXPECT_EQ(second.checkpoint.line, 7u);
  EXPECT_EQ(second.checkpoint.header, header);
}

struct Accumulated {
  std::vector<Rec> records;
  ReadStats stats;
  FileCheckpoint checkpoint;
};

// Writes `log` to `path` in pieces, resuming from the checkpoint after each; all that was read.
Accumulated read_while_written(const std::string& path, const LogBuilder& log,
                               std::size_t min_piece, std::size_t max_piece,
                               const ReaderOptions& options) {
  std::mt19937 rng(7);
  Accumulated acc;
  Collector sink;
  std::optional<FileCheckpoint> checkpoint;
  write_file(path, "");
  std::size_t written = 0;
  while (written < log.text.size()) {
    std::size_t end =
        std::min(log.text.size(), written + min_piece + rng() % (max_piece - min_piece));
    // Pauses inside a multi-line record or an unbalanced quote are left to dedicated tests.
    for (bool moved = true; moved;) {
      moved = false;
      for (const auto& [lo, hi] : log.unsafe) {
        if (end > lo && end < hi) {
          end = lo > written ? lo : hi;
          moved = true;
        }
      }
    }
    append_file(path, std::string_view(log.text).substr(written, end - written));
    written = end;
    Expected<FileCheckpoint> cp =
        read_accounting_file(path, checkpoint ? &*checkpoint : nullptr, sink, acc.stats, options);
    EXPECT_TRUE(cp.ok());
    if (!cp.ok()) break;
    EXPECT_LE(cp->offset, written);
    checkpoint = cp.value();
  }
  acc.records = std::move(sink.records);
  if (checkpoint) acc.checkpoint = *checkpoint;
  return acc;
}

TEST(AccountingReader, ReadingAfterEveryAppendGivesEachRecordOnce) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  LogBuilder log(path, 11);
  log.generate(600 << 10, /*long_line=*/false);

  const Accumulated acc = read_while_written(path, log, 1, 20 << 10, kOneThread);
  EXPECT_EQ(first_difference(acc.records, log.records), "");
  ReadStats expected = log.stats;
  expected.files = acc.stats.files;
  EXPECT_EQ(describe(acc.stats), describe(expected));
  EXPECT_EQ(acc.checkpoint.offset, log.text.size());
  EXPECT_EQ(acc.checkpoint.header,
            "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,"
            "dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,dlvType,"
            "dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,"
            "jobId,envId,queue,vmtaPool");
}

TEST(AccountingReader, ReadingLargeAppendsOnFourThreadsGivesEachRecordOnce) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  LogBuilder log(path, 12);
  log.generate(3 << 20, /*long_line=*/false);

  const Accumulated acc = read_while_written(path, log, 100 << 10, 400 << 10, {4, 64 << 10});
  EXPECT_EQ(first_difference(acc.records, log.records), "");
  ReadStats expected = log.stats;
  expected.files = acc.stats.files;
  EXPECT_EQ(describe(acc.stats), describe(expected));
  EXPECT_EQ(acc.checkpoint.offset, log.text.size());
}

TEST(AccountingReader, LineOverOneMebibyteIsSkippedWithItsLineNumber) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  const std::string text = std::string(kHeader) + line("d", "a@x.com") +
                           line("d", "big@x.com", std::string(3 << 19, 'x')) +  // 1.5 MiB
                           line("d", "b@x.com") + "d,soon,c@x.com,ok,v1,q\n";
  write_file(path, text);

  const ReadResult r = read_acct(path);
  EXPECT_EQ(rcpts(r.records), (std::vector<std::string>{"a@x.com", "b@x.com"}));
  EXPECT_EQ(sample_lines(r.stats), (std::vector<std::string>{"3 line_too_long", "5 bad_time"}));
  EXPECT_EQ(r.checkpoint.offset, text.size());
  EXPECT_EQ(r.checkpoint.line, 6u);
}

TEST(AccountingReader, LineOverOneMebibyteStillBeingWrittenIsCountedOnce) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com") + "d," + std::string(kTime) +
                       ",big@x.com," + std::string(kMaxRecordBytes + 1000, 'x'));
  const ReadResult first = read_acct(path);
  EXPECT_EQ(rcpts(first.records), (std::vector<std::string>{"a@x.com"}));
  EXPECT_EQ(sample_lines(first.stats), (std::vector<std::string>{"3 line_too_long"}));

  append_file(path, "xxxx,v1,q\n" + line("d", "b@x.com"));
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(rcpts(second.records), (std::vector<std::string>{"b@x.com"}));
  EXPECT_EQ(second.stats.malformed_total(), 0u) << describe(second.stats);
  EXPECT_EQ(second.checkpoint.line, 5u);
}

// A new file seen just after PowerMTA wrote its byte order mark and part of the header.
TEST(AccountingReader, NewFileWithByteOrderMarkGrowingIsNotTakenForAReplacement) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, "\xEF\xBB\xBFtype,timeLo");
  const ReadResult first = read_acct(path);
  EXPECT_TRUE(first.records.empty());
  EXPECT_TRUE(first.stats.warnings.empty());

  append_file(path, "gged,rcpt,dsnDiag,vmta,queue\n" + line("d", "a@x.com"));
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(second.records, (std::vector<Rec>{rec("a@x.com")}));
  EXPECT_EQ(second.stats.header_lines, 1u);
  EXPECT_TRUE(second.stats.warnings.empty()) << describe(second.stats);
  EXPECT_EQ(second.checkpoint.offset, fs::file_size(path));
}

// --- Truncation and replacement ---------------------------------------------------------------

TEST(AccountingReader, TruncatedFileIsReadFromTheStartWithAWarning) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com") +
                       line("d", "c@x.com"));
  const ReadResult first = read_acct(path);
  const std::uint64_t inode = inode_of(path);

  write_file(path, std::string(kHeader) + line("b", "new@x.com"));  // same inode, shorter
  ASSERT_EQ(inode_of(path), inode);
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(second.records, (std::vector<Rec>{rec("new@x.com", "ok", RecordType::bounced)}));
  EXPECT_EQ(second.checkpoint.offset, fs::file_size(path));
  EXPECT_EQ(second.checkpoint.line, 3u);
  ASSERT_EQ(second.stats.warnings.size(), 1u);
  EXPECT_NE(second.stats.warnings[0].find(path), std::string::npos);
}

TEST(AccountingReader, FileRewrittenWithAnotherFirstLineIsReadFromTheStartWithAWarning) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com"));
  const ReadResult first = read_acct(path);

  write_file(path,
             "rcpt,type,timeLogged\nn1@x.com,d,1795773600\nn2@x.com,d,1795773600\n"
             "n3@x.com,d,1795773600\nn4@x.com,d,1795773600\n");
  ASSERT_GT(fs::file_size(path), first.checkpoint.offset);
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(rcpts(second.records),
            (std::vector<std::string>{"n1@x.com", "n2@x.com", "n3@x.com", "n4@x.com"}));
  EXPECT_EQ(second.stats.warnings.size(), 1u);
}

// PowerMTA's files all start with the same header line; new content must still be noticed.
TEST(AccountingReader, FileRewrittenWithTheSameHeaderIsReadFromTheStartWithAWarning) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com"));
  const ReadResult first = read_acct(path);

  write_file(path, std::string(kHeader) + line("b", "n1@x.com") + line("b", "n2@x.com") +
                       line("b", "n3@x.com") + line("b", "n4@x.com"));
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(rcpts(second.records),
            (std::vector<std::string>{"n1@x.com", "n2@x.com", "n3@x.com", "n4@x.com"}));
  EXPECT_EQ(second.stats.warnings.size(), 1u) << describe(second.stats);
}

TEST(AccountingReader, FileReplacedByANewOneIsReadFromTheStartWithAWarning) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com"));
  const ReadResult first = read_acct(path);

  replace_file(path, std::string(kHeader) + line("b", "n1@x.com") + line("b", "n2@x.com") +
                         line("b", "n3@x.com"));
  ASSERT_NE(inode_of(path), first.checkpoint.identity.inode);
  const ReadResult second = read_acct(path, &first.checkpoint);
  EXPECT_EQ(rcpts(second.records), (std::vector<std::string>{"n1@x.com", "n2@x.com", "n3@x.com"}));
  EXPECT_EQ(second.checkpoint.offset, fs::file_size(path));
  EXPECT_EQ(second.stats.warnings.size(), 1u) << describe(second.stats);
}

// --- Parallel reading -------------------------------------------------------------------------

// Where the first window's slices of `threads` start (see WindowParser), to place records there.
std::vector<std::size_t> first_window_bounds(std::size_t threads, std::size_t slice) {
  const std::size_t window = threads * slice + kMaxRecordBytes + (64 << 10);
  std::vector<std::size_t> out;
  for (std::size_t i = 1; i < threads; ++i) out.push_back(i * window / threads);
  return out;
}

TEST(AccountingReaderParallel, AnyThreadCountGivesTheRecordsAndStatsOfOneThread) {
  TempDir dir;
  const std::string path = dir.path("acct-2026-11-27-0001.csv");
  std::vector<std::size_t> straddle;
  for (std::size_t t : {2, 3, 4, 8}) {
    for (std::size_t b : first_window_bounds(t, 64 << 10)) straddle.push_back(b);
  }
  LogBuilder log(path, 2026);
  log.generate(4 << 20, /*long_line=*/true, straddle);
  write_file(path, log.text);
  ASSERT_GT(log.records.size(), 15000u);
  ASSERT_EQ(log.stats.samples.size(), 21u);  // 5 of each reason, 1 line too long

  const ReadResult one = read_acct(path, nullptr, kOneThread);
  EXPECT_EQ(first_difference(one.records, log.records), "");
  EXPECT_EQ(describe(one.stats), describe(log.stats));
  EXPECT_EQ(one.checkpoint.offset, log.text.size());

  for (unsigned threads : {2u, 3u, 4u, 8u}) {
    SCOPED_TRACE("threads=" + std::to_string(threads));
    const ReadResult many = read_acct(path, nullptr, {threads, 64 << 10});
    std::vector<Rec> a = one.records, b = many.records;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_TRUE(a == b);
    EXPECT_EQ(first_difference(many.records, one.records), "") << "file order";
    EXPECT_EQ(describe(many.stats), describe(one.stats));
    EXPECT_EQ(many.checkpoint.offset, one.checkpoint.offset);
    EXPECT_EQ(many.checkpoint.line, one.checkpoint.line);
    EXPECT_EQ(many.checkpoint.header, one.checkpoint.header);
  }
}

// The first slice's unbalanced quote finds no closing quote in the data read.
TEST(AccountingReaderParallel, UnbalancedQuoteInTheFirstSliceDoesNotStopReading) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  std::string text = std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com") +
                     line("d", "c@x.com") + line("t", "d@x.com", "\"unclosed");
  std::size_t good = 3;
  while (text.size() < (300 << 10)) text += line("d", "u" + std::to_string(good++) + "@x.com");
  write_file(path, text);

  const ReadResult one = read_acct(path, nullptr, kOneThread);
  EXPECT_EQ(one.records.size(), good);
  EXPECT_EQ(sample_lines(one.stats), (std::vector<std::string>{"5 bad_quoting"}));
  EXPECT_EQ(one.checkpoint.offset, text.size());

  const ReadResult two = read_acct(path, nullptr, {2, 64 << 10});
  EXPECT_EQ(two.records.size(), good);
  EXPECT_EQ(describe(two.stats), describe(one.stats));
  EXPECT_EQ(two.checkpoint.offset, text.size());
}

// --- Mapped and buffered reads -----------------------------------------------------------------

TEST(AccountingReaderMapped, MappedAndBufferedReadsGiveTheSameRecordsStatsAndCheckpoint) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  LogBuilder log(path, 4242);
  log.generate(2 << 20, /*long_line=*/true);
  write_file(path, log.text);
  for (unsigned threads : {1u, 2u}) {
    SCOPED_TRACE("threads=" + std::to_string(threads));
    const ReadResult mapped = read_acct(path, nullptr, {threads, 64 << 10, true});
    const ReadResult buffered = read_acct(path, nullptr, {threads, 64 << 10, false});
    EXPECT_EQ(first_difference(mapped.records, log.records), "");
    EXPECT_EQ(first_difference(buffered.records, log.records), "");
    EXPECT_EQ(describe(mapped.stats), describe(buffered.stats));
    EXPECT_EQ(mapped.checkpoint.offset, log.text.size());
    EXPECT_EQ(buffered.checkpoint.offset, log.text.size());
    EXPECT_EQ(mapped.checkpoint.line, buffered.checkpoint.line);
    EXPECT_EQ(mapped.checkpoint.tail_hash, buffered.checkpoint.tail_hash);
  }
}

TEST(AccountingReaderMapped, ReadingAfterEveryAppendWithoutMappingGivesEachRecordOnce) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  LogBuilder log(path, 12);
  log.generate(300 << 10, /*long_line=*/false);
  const Accumulated acc = read_while_written(path, log, 1, 20 << 10, {1, 64 << 10, false});
  EXPECT_EQ(first_difference(acc.records, log.records), "");
  EXPECT_EQ(acc.checkpoint.offset, log.text.size());
}

// Cuts the file short at its first record, while the reader still has it mapped.
class TruncatingCollector : public Collector {
 public:
  explicit TruncatingCollector(std::string path) : path_(std::move(path)) {}
  void on_record(const AccountingRecord& r) override {
    if (!done_) {
      done_ = true;
      EXPECT_EQ(::truncate(path_.c_str(), 100), 0);
    }
    Collector::on_record(r);
  }

 private:
  std::string path_;
  bool done_ = false;
};

TEST(AccountingReaderMapped, FileCutShortWhileBeingReadStopsWithAWarningNotACrash) {
  TempDir dir;
  const std::string path = dir.path("acct.csv");
  std::string text(kHeader);
  for (int i = 0; text.size() < (1 << 20); ++i)
    text += line("d", "r" + std::to_string(i) + "@x.com");
  write_file(path, text);

  TruncatingCollector sink(path);
  ReadStats stats;
  Expected<FileCheckpoint> cp = read_accounting_file(path, nullptr, sink, stats, kOneThread);
  ASSERT_TRUE(cp.ok()) << cp.error().message;
  ASSERT_EQ(stats.warnings.size(), 1u) << describe(stats);
  EXPECT_NE(stats.warnings[0].find(path + ": became shorter while being read"), std::string::npos)
      << stats.warnings[0];
  // Only what the first window held before the cut: records after it were never there to read.
  EXPECT_LT(sink.records.size(), 1000u);
  EXPECT_LE(cp->offset, 64u << 10);

  // The next read sees a shorter file than its checkpoint and starts over.
  ReadStats again;
  Collector next;
  Expected<FileCheckpoint> resumed = read_accounting_file(path, &*cp, next, again, kOneThread);
  ASSERT_TRUE(resumed.ok());
  EXPECT_LE(resumed->offset, 100u);
}

// --- expand_globs -----------------------------------------------------------------------------

TEST(AccountingExpandGlobs, SortsEachGlobsMatchesAndListsEachFileOnce) {
  TempDir dir;
  for (const char* name : {"acct-3.csv", "acct-1.csv", "acct-2.csv", "other.txt"}) {
    write_file(dir.path(name), "");
  }
  const Expected<std::vector<std::string>> paths =
      expand_globs({dir.path("acct-*.csv"), dir.path("acct-2.csv"), dir.path("*")});
  ASSERT_TRUE(paths.ok()) << paths.error().message;
  EXPECT_EQ(paths.value(),
            (std::vector<std::string>{dir.path("acct-1.csv"), dir.path("acct-2.csv"),
                                      dir.path("acct-3.csv"), dir.path("other.txt")}));
}

TEST(AccountingExpandGlobs, MissingLiteralPathIsAnError) {
  TempDir dir;
  write_file(dir.path("acct-1.csv"), "");
  const Expected<std::vector<std::string>> paths =
      expand_globs({dir.path("acct-1.csv"), dir.path("acct-9.csv")});
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.error().message.find(dir.path("acct-9.csv")), std::string::npos);
}

TEST(AccountingExpandGlobs, GlobMatchingNothingIsNotAnError) {
  TempDir dir;
  write_file(dir.path("acct-1.csv"), "");
  const Expected<std::vector<std::string>> paths =
      expand_globs({dir.path("none-*.csv"), dir.path("acct-1.csv")});
  ASSERT_TRUE(paths.ok()) << paths.error().message;
  EXPECT_EQ(paths.value(), (std::vector<std::string>{dir.path("acct-1.csv")}));
}

// --- AccountingFiles --------------------------------------------------------------------------

struct NewRead {
  std::vector<Rec> records;
  ReadOutcome outcome;
};

NewRead read_new(AccountingFiles& files, const std::vector<FileCheckpoint>& known) {
  NewRead r;
  Collector sink;
  Expected<ReadOutcome> outcome = files.read_new(known, sink);
  EXPECT_TRUE(outcome.ok()) << (outcome.ok() ? "" : outcome.error().message);
  if (outcome.ok()) r.outcome = std::move(outcome.value());
  r.records = std::move(sink.records);
  return r;
}

std::vector<std::string> sorted_rcpts(const std::vector<Rec>& records) {
  std::vector<std::string> out = rcpts(records);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AccountingFilesRotation, FollowsAMovedFileByIdentityAndReadsTheNewOne) {
  TempDir dir;
  fs::create_directory(dir.path("old"));
  const std::string first = dir.path("acct-2026-11-27-0001.csv");
  write_file(first, std::string(kHeader) + line("d", "a1@x.com") + line("d", "a2@x.com"));
  AccountingFiles files({dir.path("acct-*.csv"), dir.path("old/acct-*.csv")}, kOneThread);
  const NewRead r1 = read_new(files, {});
  EXPECT_EQ(rcpts(r1.records), (std::vector<std::string>{"a1@x.com", "a2@x.com"}));
  ASSERT_EQ(r1.outcome.checkpoints.size(), 1u);

  // Rotation: the old file gets its last lines, a new file starts, the old one is moved.
  append_file(first, line("d", "a3@x.com"));
  write_file(dir.path("acct-2026-11-27-0002.csv"),
             std::string(kHeader) + line("d", "b1@x.com") + line("d", "b2@x.com"));
  const std::string moved = dir.path("old/acct-2026-11-27-0001.csv");
  fs::rename(first, moved);

  const NewRead r2 = read_new(files, r1.outcome.checkpoints);
  EXPECT_EQ(sorted_rcpts(r2.records),
            (std::vector<std::string>{"a3@x.com", "b1@x.com", "b2@x.com"}));
  EXPECT_TRUE(r2.outcome.stats.warnings.empty()) << describe(r2.outcome.stats);
  ASSERT_EQ(r2.outcome.checkpoints.size(), 2u);
  const auto old_cp = std::find_if(r2.outcome.checkpoints.begin(), r2.outcome.checkpoints.end(),
                                   [&](const FileCheckpoint& c) { return c.path == moved; });
  ASSERT_NE(old_cp, r2.outcome.checkpoints.end());
  EXPECT_EQ(old_cp->identity, r1.outcome.checkpoints[0].identity);
  EXPECT_EQ(old_cp->offset, fs::file_size(moved));
  EXPECT_EQ(old_cp->line, 5u);

  const NewRead r3 = read_new(files, r2.outcome.checkpoints);
  EXPECT_TRUE(r3.records.empty());
  EXPECT_EQ(r3.outcome.checkpoints.size(), 2u);
}

TEST(AccountingFilesRotation, ReadsAFileListedUnderTwoNamesOnce) {
  TempDir dir;
  fs::create_directory(dir.path("links"));
  write_file(dir.path("acct-1.csv"), std::string(kHeader) + line("d", "a@x.com"));
  fs::create_hard_link(dir.path("acct-1.csv"), dir.path("links/acct-1.csv"));
  AccountingFiles files({dir.path("acct-*.csv"), dir.path("links/*.csv")}, kOneThread);

  const NewRead r = read_new(files, {});
  EXPECT_EQ(rcpts(r.records), (std::vector<std::string>{"a@x.com"}));
  EXPECT_EQ(r.outcome.checkpoints.size(), 1u);
  EXPECT_EQ(r.outcome.stats.files, 1u);
}

TEST(AccountingFilesRotation, FileGoneBeforeReadingIsSkippedWithAWarning) {
  TempDir dir;
  write_file(dir.path("acct-1.csv"), std::string(kHeader) + line("d", "a@x.com"));
  write_file(dir.path("acct-2.csv"), std::string(kHeader) + line("d", "gone@x.com"));
  // Listed by the glob but gone by the time it is opened: a name whose target was deleted.
  fs::create_symlink(dir.path("acct-2.csv"), dir.path("acct-3.csv"));
  fs::remove(dir.path("acct-2.csv"));
  AccountingFiles files({dir.path("acct-*.csv")}, kOneThread);

  const NewRead r = read_new(files, {});
  EXPECT_EQ(rcpts(r.records), (std::vector<std::string>{"a@x.com"}));
  ASSERT_EQ(r.outcome.checkpoints.size(), 1u);
  EXPECT_EQ(r.outcome.checkpoints[0].path, dir.path("acct-1.csv"));
  ASSERT_EQ(r.outcome.stats.warnings.size(), 1u);
  EXPECT_NE(r.outcome.stats.warnings[0].find(dir.path("acct-3.csv")), std::string::npos);
}

TEST(AccountingFilesRotation, TruncatedFileIsReadFromTheStartWithAWarning) {
  TempDir dir;
  const std::string path = dir.path("acct-1.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com") + line("d", "b@x.com"));
  AccountingFiles files({dir.path("acct-*.csv")}, kOneThread);
  const NewRead r1 = read_new(files, {});
  ASSERT_EQ(r1.records.size(), 2u);

  write_file(path, std::string(kHeader) + line("d", "n@x.com"));
  const NewRead r2 = read_new(files, r1.outcome.checkpoints);
  EXPECT_EQ(rcpts(r2.records), (std::vector<std::string>{"n@x.com"}));
  EXPECT_EQ(r2.outcome.stats.warnings.size(), 1u);
  ASSERT_EQ(r2.outcome.checkpoints.size(), 1u);
  EXPECT_EQ(r2.outcome.checkpoints[0].offset, fs::file_size(path));
}

TEST(AccountingFilesRotation, NoMatchingFileIsNotAnErrorAndDeletedFilesAreForgotten) {
  TempDir dir;
  const std::string path = dir.path("acct-1.csv");
  write_file(path, std::string(kHeader) + line("d", "a@x.com"));
  AccountingFiles files({dir.path("acct-*.csv"), dir.path("missing.csv")}, kOneThread);
  const NewRead r1 = read_new(files, {});
  ASSERT_EQ(r1.outcome.checkpoints.size(), 1u);

  fs::remove(path);
  const NewRead r2 = read_new(files, r1.outcome.checkpoints);
  EXPECT_TRUE(r2.records.empty());
  EXPECT_TRUE(r2.outcome.checkpoints.empty());
  EXPECT_TRUE(r2.outcome.stats.warnings.empty());
}

}  // namespace
}  // namespace sluice::adapters
