#include "adapters/accounting_parser.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace sluice::adapters {
namespace {

constexpr UnixSeconds k20261127_10 = 1795773600;  // 2026-11-27T10:00:00Z
constexpr std::string_view kFile = "acct-2026-11-27-0001.csv";
constexpr std::string_view kHeader = "type,timeLogged,rcpt,dsnDiag,vmta,queue\n";
constexpr std::string_view kTime = "2026-11-27 10:00:00+0000";

// An AccountingRecord that owns its text.
struct Rec {
  RecordType type = RecordType::delivered;
  UnixSeconds time = 0;
  std::string rcpt, dsn_diag, dsn_mta, vmta, queue, vmta_pool, source_ip;
  bool operator==(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{type=" << static_cast<int>(r.type) << " time=" << r.time << " rcpt=" << r.rcpt
            << " diag=" << r.dsn_diag << " mta=" << r.dsn_mta << " vmta=" << r.vmta
            << " queue=" << r.queue << " pool=" << r.vmta_pool << " ip=" << r.source_ip << "}";
}

class Collector : public RecordSink {
 public:
  void on_record(const AccountingRecord& r) override {
    records.push_back(Rec{r.type, r.time_logged, std::string(r.rcpt), std::string(r.dsn_diag),
                          std::string(r.dsn_mta), std::string(r.vmta), std::string(r.queue),
                          std::string(r.vmta_pool), std::string(r.source_ip)});
  }
  std::vector<Rec> records;
};

struct Parsed {
  std::vector<Rec> records;
  ReadStats stats;
  ParseProgress progress;
  ParserState state;
};

Parsed parse(std::string_view data, bool at_eof = true, ParserState state = {},
             std::size_t slice_end = std::string_view::npos) {
  Parsed p;
  p.state = std::move(state);
  Collector sink;
  p.progress = parse_accounting(data, slice_end, at_eof, p.state, sink, p.stats, kFile);
  p.records = std::move(sink.records);
  return p;
}

// A line under kHeader's columns.
std::string line(std::string_view type, std::string_view rcpt, std::string_view diag = "ok") {
  return std::string(type) + "," + std::string(kTime) + "," + std::string(rcpt) + "," +
         std::string(diag) + ",v1,x.com/v1\n";
}

Rec rec(RecordType type, std::string rcpt, std::string diag = "ok") {
  return Rec{type, k20261127_10, std::move(rcpt), std::move(diag), "", "v1", "x.com/v1", "", ""};
}

// "file:line reason" for each sample, in order.
std::vector<std::string> samples(const ReadStats& stats) {
  std::vector<std::string> out;
  for (const MalformedSample& s : stats.samples) {
    out.push_back(s.file + ":" + std::to_string(s.line) + " " + std::string(to_string(s.reason)));
  }
  return out;
}

std::string at(std::uint64_t line, std::string_view reason) {
  return std::string(kFile) + ":" + std::to_string(line) + " " + std::string(reason);
}

constexpr RecordType kD = RecordType::delivered;

// --- RFC 4180 ---------------------------------------------------------------------------------

TEST(AccountingParser, QuotedFieldKeepsCommasAndUnescapesDoubledQuotes) {
  const std::string data = std::string(kHeader) +
                           "b,2026-11-27 10:00:00+0000,a@x.com,"
                           R"("smtp;550 5.1.1 ""a@x.com"", unknown, user","v,1",x.com/v1)"
                           "\n";
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].dsn_diag, R"(smtp;550 5.1.1 "a@x.com", unknown, user)");
  EXPECT_EQ(p.records[0].vmta, "v,1");
  EXPECT_EQ(p.records[0].type, RecordType::bounced);
  EXPECT_EQ(p.stats.records, 1u);
  EXPECT_EQ(p.stats.header_lines, 1u);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
  EXPECT_EQ(p.progress.consumed, data.size());
  EXPECT_FALSE(p.progress.need_more);
}

TEST(AccountingParser, EmptyAndQuoteOnlyQuotedFields) {
  const std::string data = std::string(kHeader) + "d," + std::string(kTime) +
                           R"(,"","""",v1,"")"
                           "\n";
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].rcpt, "");
  EXPECT_EQ(p.records[0].dsn_diag, "\"");
  EXPECT_EQ(p.records[0].queue, "");
}

TEST(AccountingParser, LineBreaksInsideQuotesStayInTheField) {
  const std::string data = std::string(kHeader) +
                           line("t", "a@x.com", "\"421 first\nsecond\r\nthird\"") +
                           line("d", "b@x.com");
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0], rec(RecordType::deferred, "a@x.com", "421 first\nsecond\r\nthird"));
  EXPECT_EQ(p.records[1], rec(kD, "b@x.com"));
  EXPECT_EQ(p.state.line, 6u);  // header 1, record 2-4, record 5
}

TEST(AccountingParser, CrlfAndLfLineEndingsGiveTheSameRecords) {
  const std::string lf = std::string(kHeader) + line("d", "a@x.com") + "b," + std::string(kTime) +
                         ",b@x.com,no,v1,\"x.com/v1\"\n" +  //
                         "t," + std::string(kTime) + ",c@x.com,later,v1,\n";
  std::string crlf;
  for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);

  const Parsed a = parse(lf);
  const Parsed b = parse(crlf);
  ASSERT_EQ(a.records.size(), 3u);
  EXPECT_EQ(a.records, b.records);
  EXPECT_EQ(b.records[0], rec(kD, "a@x.com"));
  EXPECT_EQ(b.records[1].queue, "x.com/v1");
  EXPECT_EQ(b.records[2].queue, "");
  EXPECT_EQ(b.stats.malformed_total(), 0u);
  EXPECT_EQ(b.progress.consumed, crlf.size());
  EXPECT_EQ(b.state.line, 5u);
}

TEST(AccountingParser, Utf8ByteOrderMarkBeforeHeaderIsSkipped) {
  const std::string body = line("d", "a@x.com");
  const Parsed with = parse("\xEF\xBB\xBF" + std::string(kHeader) + body);
  const Parsed without = parse(std::string(kHeader) + body);
  ASSERT_EQ(with.records.size(), 1u);
  EXPECT_EQ(with.records[0], rec(kD, "a@x.com"));
  EXPECT_EQ(with.records, without.records);
  EXPECT_EQ(with.stats.header_lines, 1u);
  EXPECT_EQ(with.stats.malformed_total(), 0u);
  EXPECT_EQ(with.state.columns, *ColumnMap::from_header_line(kHeader));
}

// --- Columns by header name -------------------------------------------------------------------

TEST(AccountingParser, ColumnsAreMappedByHeaderNameInAnyOrder) {
  const Parsed p = parse(
      "queue,extra,rcpt,timeLogged,vmtaPool,type,dlvSourceIp,dsnMta\n"
      "x.com/v1,ignored,a@x.com,1795773600,pool1,tq,1.2.3.4,mx.x.com (5.6.7.8)\n");
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0], (Rec{RecordType::deferred_queue, k20261127_10, "a@x.com", "",
                               "mx.x.com (5.6.7.8)", "", "x.com/v1", "pool1", "1.2.3.4"}));
  EXPECT_EQ(p.stats.malformed_total(), 0u);
}

TEST(AccountingParser, WithoutHeaderUsesPowerMtaDefaultColumns) {
  std::vector<std::string> f(23, "-");
  f[0] = "b";
  f[1] = "2026-11-27 10:00:00+0000";
  f[4] = "a@gmail.com";
  f[8] = "\"smtp;550 5.7.1 blocked, see url\"";
  f[9] = "gmail-smtp-in.l.google.com (142.250.1.27)";
  f[14] = "10.0.0.1";
  f[18] = "vmta-1";
  f[21] = "gmail.com/vmta-1";
  f[22] = "pool-a";
  std::string data;
  for (std::size_t i = 0; i < f.size(); ++i) data += (i ? "," : "") + f[i];
  data += "\n";

  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0],
            (Rec{RecordType::bounced, k20261127_10, "a@gmail.com",
                 "smtp;550 5.7.1 blocked, see url", "gmail-smtp-in.l.google.com (142.250.1.27)",
                 "vmta-1", "gmail.com/vmta-1", "pool-a", "10.0.0.1"}));
  EXPECT_EQ(p.stats.header_lines, 0u);
}

TEST(AccountingParser, HeaderLineMidStreamRemapsColumns) {
  const std::string data = std::string(kHeader) + line("d", "a@x.com") +
                           "rcpt,type,timeLogged,vmta\n"
                           "b@x.com,b,1795773601,v2\n";
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0], rec(kD, "a@x.com"));
  EXPECT_EQ(p.records[1],
            (Rec{RecordType::bounced, k20261127_10 + 1, "b@x.com", "", "", "v2", "", "", ""}));
  EXPECT_EQ(p.stats.header_lines, 2u);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
  EXPECT_EQ(p.state.columns.header_line(), "rcpt,type,timeLogged,vmta");
}

// --- Record types and times -------------------------------------------------------------------

TEST(AccountingParser, UsedTypesAreReadAndPowerMtaOthersSkippedSilently) {
  std::string data(kHeader);
  for (const char* t : {"d", "r", "b", "f", "t", "rb", "tq", "rs"}) data += line(t, "a@x.com");
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 4u);
  EXPECT_EQ(p.records[0].type, RecordType::delivered);
  EXPECT_EQ(p.records[1].type, RecordType::bounced);
  EXPECT_EQ(p.records[2].type, RecordType::deferred);
  EXPECT_EQ(p.records[3].type, RecordType::deferred_queue);
  EXPECT_EQ(p.stats.records, 4u);
  EXPECT_EQ(p.stats.skipped_types, 4u);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
}

TEST(AccountingParser, TimeLoggedInIsoFormsOrUnixSeconds) {
  std::string data(kHeader);
  for (const char* t : {"2026-11-27 10:00:00+0000", "2026-11-27T10:00:00Z",
                        "2026-11-27 11:00:00+0100", "2026-11-27 10:00:00", "1795773600"}) {
    data += std::string("d,") + t + ",a@x.com,ok,v1,q\n";
  }
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 5u);
  for (const Rec& r : p.records) EXPECT_EQ(r.time, k20261127_10);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
}

TEST(AccountingParser, RepeatedTimestampsGiveTheSameTimesAsFreshOnes) {
  std::string data(kHeader);
  for (const char* t : {"2026-11-27 10:00:00+0000", "2026-11-27 10:00:00+0000",
                        "2026-11-27 10:00:05+0000", "2026-11-27 10:00:00+0000", "not a time",
                        "2026-11-27 10:00:00+0000", "1795773600", "1795773600"}) {
    data += std::string("d,") + t + ",a@x.com,ok,v1,q\n";
  }
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 7u);
  const std::vector<UnixSeconds> want = {k20261127_10, k20261127_10, k20261127_10 + 5, k20261127_10,
                                         k20261127_10, k20261127_10, k20261127_10};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(p.records[i].time, want[i]) << i;
  EXPECT_EQ(samples(p.stats), std::vector<std::string>{at(6, "bad_time")});
}

// Delimiters are found a few 64-byte blocks ahead of the record being read: records of every
// length and alignment, some quoted and some with Latin-1 bytes, must come out as written.
TEST(AccountingParser, RecordsAcrossScanBlocksKeepTheirFieldsAndRepairs) {
  std::string data(kHeader);
  std::vector<Rec> want;
  std::uint64_t latin1 = 0;
  for (std::size_t i = 0; i < 300; ++i) {
    std::string diag = "450 wait " + std::string(i % 97, 'x');
    std::string written = diag;
    if (i % 7 == 3) {
      written += "\xe9";
      diag += "\xc3\xa9";
      ++latin1;
    }
    if (i % 5 == 1) {
      written = "\"" + written + ", \"\"later\"\"\"";
      diag += ", \"later\"";
    }
    const std::string rcpt = "u" + std::to_string(i) + "@x.com";
    data += "t," + std::string(kTime) + "," + rcpt + "," + written + ",v1,x.com/v1\n";
    want.push_back(rec(RecordType::deferred, rcpt, diag));
  }
  const Parsed p = parse(data);
  EXPECT_EQ(p.records, want);
  EXPECT_EQ(p.stats.repaired, latin1);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
}

// --- Malformed lines --------------------------------------------------------------------------

TEST(AccountingParser, MalformedLinesAreCountedByReasonWithFileAndLine) {
  const std::string data = std::string(kHeader) + line("d", "a@x.com") +  // 2
                           "d," + std::string(kTime) + ",a@x.com,ok\n" +  // 3 column count
                           line("d", "a\"b@x.com") +                      // 4 quote in field
                           line("d", "c@x.com", "\"ok\"!") +              // 5 text after quote
                           "d,yesterday,a@x.com,ok,v1,q\n" +              // 6 bad time
                           line("x", "a@x.com") +                         // 7 bad type
                           line("b", "z@x.com");                          // 8
  const Parsed p = parse(data);
  EXPECT_EQ(p.records, (std::vector<Rec>{rec(kD, "a@x.com"), rec(RecordType::bounced, "z@x.com")}));
  EXPECT_EQ(p.stats.malformed_count(MalformedReason::column_count), 1u);
  EXPECT_EQ(p.stats.malformed_count(MalformedReason::bad_quoting), 2u);
  EXPECT_EQ(p.stats.malformed_count(MalformedReason::bad_time), 1u);
  EXPECT_EQ(p.stats.malformed_count(MalformedReason::bad_type), 1u);
  EXPECT_EQ(p.stats.malformed_count(MalformedReason::line_too_long), 0u);
  EXPECT_EQ(samples(p.stats),
            (std::vector<std::string>{at(3, "column_count"), at(4, "bad_quoting"),
                                      at(5, "bad_quoting"), at(6, "bad_time"), at(7, "bad_type")}));
  EXPECT_EQ(p.state.line, 9u);
  EXPECT_EQ(p.progress.consumed, data.size());
}

TEST(AccountingParser, SampleLinesCountEveryPhysicalLineOfMultiLineRecords) {
  const std::string data = std::string(kHeader) +                                  // 1
                           line("t", "a@x.com", "\"one\ntwo\nthree\"") +           // 2-4
                           "d,99:99,a@x.com,ok,v1,q\n" +                           // 5 bad time
                           "d," + std::string(kTime) + ",\"b\n@x.com\",ok,v1\n" +  // 6-7 count
                           line("zz", "c@x.com", "\"x\ny\"") +                     // 8-9 bad type
                           line("d", "d@x.com");                                   // 10
  const Parsed p = parse(data);
  EXPECT_EQ(p.records, (std::vector<Rec>{rec(RecordType::deferred, "a@x.com", "one\ntwo\nthree"),
                                         rec(kD, "d@x.com")}));
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(5, "bad_time"), at(6, "column_count"),
                                                        at(8, "bad_type")}));
  EXPECT_EQ(p.state.line, 11u);
}

TEST(AccountingParser, BlankLinesAreIgnoredButCountAsLines) {
  const std::string data =
      std::string(kHeader) + "\n" + line("d", "a@x.com") + "\r\n" + "d,later,a@x.com,ok,v1,q\n";
  const Parsed p = parse(data);
  EXPECT_EQ(p.records.size(), 1u);
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(5, "bad_time")}));
  EXPECT_EQ(p.stats.malformed_total(), 1u);
}

// A line of exactly `size` bytes, newline included.
std::string line_of_size(std::size_t size) {
  const std::string head = "d," + std::string(kTime) + ",big@x.com,";
  const std::string tail = ",v1,q\n";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

TEST(AccountingParser, LineOverOneMebibyteIsSkippedAsTooLong) {
  const std::string data = std::string(kHeader) + line_of_size(kMaxRecordBytes) +  // 2: kept
                           line_of_size(kMaxRecordBytes + 1) +                     // 3: too long
                           line("d", "a@x.com");                                   // 4
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].rcpt, "big@x.com");
  EXPECT_EQ(p.records[0].dsn_diag.size(), kMaxRecordBytes - 43);
  EXPECT_EQ(p.records[1], rec(kD, "a@x.com"));
  EXPECT_EQ(p.stats.malformed_total(), 1u);
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(3, "line_too_long")}));
  EXPECT_EQ(p.state.line, 5u);
}

TEST(AccountingParser, TooLongLineSpanningTwoCallsIsSkippedToItsEnd) {
  const std::string first = std::string(kHeader) + line("d", "a@x.com") + "d," +
                            std::string(kTime) + "," + std::string(kMaxRecordBytes + 1000, 'x');
  Parsed p = parse(first, /*at_eof=*/false);
  EXPECT_EQ(p.records.size(), 1u);
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(3, "line_too_long")}));
  EXPECT_EQ(p.progress.consumed, first.size());
  EXPECT_TRUE(p.state.skipping_long_line);

  const Parsed q = parse("more,of,the,long,line\n" + line("d", "b@x.com"), true, p.state);
  EXPECT_EQ(q.records, (std::vector<Rec>{rec(kD, "b@x.com")}));
  EXPECT_EQ(q.stats.malformed_total(), 0u);
  EXPECT_EQ(q.state.line, 5u);
}

// --- Repairs and damaged multi-line records ---------------------------------------------------

TEST(AccountingParser, InvalidUtf8IsRepairedAsLatin1AndCounted) {
  const std::string data = std::string(kHeader) + line("b", "a@x.com", "550 refus\xe9") + "b," +
                           std::string(kTime) + ",b@x.com,\"d\xe9j\xe0 vu\",v\xff,q\n" +
                           line("d", "c@x.com", "d\xc3\xa9j\xc3\xa0 ok");  // valid UTF-8
  const Parsed p = parse(data);
  ASSERT_EQ(p.records.size(), 3u);
  EXPECT_EQ(p.records[0].dsn_diag, "550 refus\xc3\xa9");  // "refusé"
  EXPECT_EQ(p.records[1].dsn_diag, "d\xc3\xa9j\xc3\xa0 vu");
  EXPECT_EQ(p.records[1].vmta, "v\xc3\xbf");
  EXPECT_EQ(p.records[2].dsn_diag, "d\xc3\xa9j\xc3\xa0 ok");
  EXPECT_EQ(p.stats.repaired, 2u);  // per record, not per field
  EXPECT_EQ(p.stats.malformed_total(), 0u);
}

TEST(AccountingParser, UnbalancedQuoteDropsOnlyItsFirstLine) {
  const std::string data = std::string(kHeader) + line("t", "a@x.com", "\"unclosed 421") +  // 2
                           line("d", "b@x.com", "\"smtp;250 ok\"") +                        // 3
                           line("d", "c@x.com") +                                           // 4
                           line("b", "d@x.com", R"("550 ""no""")");                         // 5
  const Parsed p = parse(data);
  EXPECT_EQ(p.records, (std::vector<Rec>{rec(kD, "b@x.com", "smtp;250 ok"), rec(kD, "c@x.com"),
                                         rec(RecordType::bounced, "d@x.com", "550 \"no\"")}));
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(2, "bad_quoting")}));
  EXPECT_EQ(p.stats.malformed_total(), 1u);
  EXPECT_EQ(p.state.line, 6u);
}

TEST(AccountingParser, UnbalancedQuoteRunningToEndOfDataDropsOnlyItsFirstLine) {
  const std::string data = std::string(kHeader) + line("t", "a@x.com", "\"unclosed") +
                           line("d", "b@x.com") + line("d", "c@x.com");
  const Parsed p = parse(data);
  EXPECT_EQ(p.records, (std::vector<Rec>{rec(kD, "b@x.com"), rec(kD, "c@x.com")}));
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(2, "bad_quoting")}));
  EXPECT_EQ(p.progress.consumed, data.size());
}

TEST(AccountingParser, UnbalancedQuoteSwallowingOverOneMebibyteIsBadQuotingNotTooLong) {
  std::string data = std::string(kHeader) + line("t", "a@x.com", "\"unclosed");
  std::size_t good = 0;
  while (data.size() < kMaxRecordBytes + (100 << 10)) {
    data += line("d", "u" + std::to_string(good++) + "@x.com");
  }
  const Parsed p = parse(data, /*at_eof=*/false);
  EXPECT_EQ(p.records.size(), good);
  EXPECT_EQ(p.records.back(), rec(kD, "u" + std::to_string(good - 1) + "@x.com"));
  EXPECT_EQ(samples(p.stats), (std::vector<std::string>{at(2, "bad_quoting")}));
  EXPECT_EQ(p.progress.consumed, data.size());
  EXPECT_EQ(p.state.line, good + 3);
}

// --- Partial data -----------------------------------------------------------------------------

TEST(AccountingParser, PartialLastLineIsLeftForTheNextCall) {
  const std::string done = std::string(kHeader) + line("d", "a@x.com");
  const std::string partial = done + "d," + std::string(kTime) + ",b@x.com,o";
  const Parsed p = parse(partial);
  EXPECT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.progress.consumed, done.size());
  EXPECT_TRUE(p.progress.need_more);
  EXPECT_EQ(p.stats.malformed_total(), 0u);
  EXPECT_EQ(p.state.line, 3u);

  const std::string completed = partial + "k,v1,x.com/v1\n";
  const Parsed q = parse(std::string_view(completed).substr(p.progress.consumed), true, p.state);
  EXPECT_EQ(q.records, (std::vector<Rec>{rec(kD, "b@x.com")}));
  EXPECT_EQ(q.progress.consumed, completed.size() - done.size());
  EXPECT_EQ(q.state.line, 4u);
}

// The record's quote is closed; only its final newline is missing (a file still being written).
TEST(AccountingParser, PartialMultiLineRecordIsLeftForTheNextCall) {
  const std::string done = std::string(kHeader) + line("d", "a@x.com");
  const std::string partial = done + "t," + std::string(kTime) + ",b@x.com,\"421 first\nsecond\"";
  const Parsed p = parse(partial);
  EXPECT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.stats.malformed_total(), 0u) << ::testing::PrintToString(samples(p.stats));
  EXPECT_EQ(p.progress.consumed, done.size());
  EXPECT_TRUE(p.progress.need_more);

  const std::string completed = partial + ",v1,x.com/v1\n";
  const Parsed q = parse(std::string_view(completed).substr(p.progress.consumed), true, p.state);
  EXPECT_EQ(q.records,
            (std::vector<Rec>{rec(RecordType::deferred, "b@x.com", "421 first\nsecond")}));
  EXPECT_EQ(q.stats.malformed_total(), 0u);
}

TEST(AccountingParser, ReadsWholeRecordsThatStartBeforeSliceEnd) {
  const std::string r1 = line("d", "a@x.com");
  const std::string r2 = line("t", "b@x.com", "\"multi\nline\"");
  const std::string data = std::string(kHeader) + r1 + r2 + line("d", "c@x.com");
  const std::size_t r2_start = kHeader.size() + r1.size();

  const Parsed p = parse(data, true, {}, r2_start + 3);
  EXPECT_EQ(p.records, (std::vector<Rec>{rec(kD, "a@x.com"),
                                         rec(RecordType::deferred, "b@x.com", "multi\nline")}));
  EXPECT_EQ(p.progress.consumed, r2_start + r2.size());
  EXPECT_FALSE(p.progress.need_more);
  EXPECT_EQ(p.state.line, 5u);
}

// --- ColumnMap --------------------------------------------------------------------------------

TEST(AccountingColumnMap, PowerMtaDefaultMapsV5RecordFields) {
  const ColumnMap& m = ColumnMap::powermta_default();
  EXPECT_EQ(m.field_count(), 23u);
  EXPECT_EQ(m.index_of(Column::type), 0);
  EXPECT_EQ(m.index_of(Column::time_logged), 1);
  EXPECT_EQ(m.index_of(Column::rcpt), 4);
  EXPECT_EQ(m.index_of(Column::dsn_diag), 8);
  EXPECT_EQ(m.index_of(Column::dsn_mta), 9);
  EXPECT_EQ(m.index_of(Column::source_ip), 14);
  EXPECT_EQ(m.index_of(Column::vmta), 18);
  EXPECT_EQ(m.index_of(Column::queue), 21);
  EXPECT_EQ(m.index_of(Column::vmta_pool), 22);
  EXPECT_EQ(m.column_at(2), -1);  // timeQueued
  EXPECT_EQ(m.column_at(4), static_cast<int>(Column::rcpt));
  EXPECT_TRUE(m.header_line().starts_with("type,timeLogged,timeQueued,orig,rcpt,"));
}

TEST(AccountingColumnMap, FromNamesNeedsTypeAndTimeLogged) {
  EXPECT_FALSE(ColumnMap::from_names({}).has_value());
  EXPECT_FALSE(ColumnMap::from_names({"type", "rcpt"}).has_value());
  EXPECT_FALSE(ColumnMap::from_names({"timeLogged", "rcpt"}).has_value());

  const std::optional<ColumnMap> m = ColumnMap::from_names({"rcpt", "timeLogged", "x", "type"});
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->field_count(), 4u);
  EXPECT_EQ(m->index_of(Column::rcpt), 0);
  EXPECT_EQ(m->index_of(Column::time_logged), 1);
  EXPECT_EQ(m->index_of(Column::type), 3);
  EXPECT_EQ(m->index_of(Column::vmta), -1);
  EXPECT_EQ(m->column_at(2), -1);
  EXPECT_EQ(m->header_line(), "rcpt,timeLogged,x,type");
}

TEST(AccountingColumnMap, FromHeaderLineStripsBomAndLineEndAndRoundTrips) {
  const std::optional<ColumnMap> m =
      ColumnMap::from_header_line("\xEF\xBB\xBFqueue,type,timeLogged\r\n");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->field_count(), 3u);
  EXPECT_EQ(m->index_of(Column::queue), 0);
  EXPECT_EQ(m->index_of(Column::type), 1);
  EXPECT_EQ(m->header_line(), "queue,type,timeLogged");
  EXPECT_EQ(*m, *ColumnMap::from_names({"queue", "type", "timeLogged"}));
  EXPECT_EQ(*ColumnMap::from_header_line(m->header_line()), *m);
  EXPECT_FALSE(ColumnMap::from_header_line("").has_value());
}

}  // namespace
}  // namespace sluice::adapters
