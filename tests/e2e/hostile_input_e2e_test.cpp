// End-to-end, hostile input (issue 7): the real build/sluice binary on a file of random bytes, a
// file holding one line of 100 MiB, and a log of a million distinct deferral texts (through both
// `report` and the control loop's `once`). Each run is a child process: it must exit 0, say what
// it skipped, and keep its peak RSS (wait4's ru_maxrss) under 128 MiB.
//
// Sizes: 1 GiB, 100 MiB and 1,000,000 texts by default. In a sanitized build (SLUICE_SANITIZE)
// RSS means nothing and everything runs 3-5x slower: 64 MiB, 16 MiB and 100,000, and no RSS
// assertion. SLUICE_HOSTILE_SCALE, a fraction in (0, 1], shrinks every size further for a quick
// local run (SLUICE_HOSTILE_SCALE=0.05 ctest -R HostileInput); the long line stays over 1 MiB.
//
// The inputs are generated here, streamed to disk in 4 MiB blocks (never held in memory), from a
// seeded std::mt19937_64 so that every run sees the same bytes; they live in a temporary
// directory that is removed however the test ends.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "e2e_support.h"
#include "loop_support.h"

#if defined(SLUICE_HOSTILE_SANITIZED) && SLUICE_HOSTILE_SANITIZED
#define HOSTILE_SANITIZED 1
#elif defined(__SANITIZE_ADDRESS__)
#define HOSTILE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOSTILE_SANITIZED 1
#endif
#endif
#ifndef HOSTILE_SANITIZED
#define HOSTILE_SANITIZED 0
#endif

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::acct_line;
using sluice::e2e::bucket_totals;
using sluice::e2e::iso;
using sluice::e2e::kHeader;
using sluice::e2e::kHour;
using sluice::e2e::kNow;
using sluice::e2e::Sandbox;
using sluice::e2e::SandboxOptions;
using sluice::e2e::slurp;
using sluice::e2e::TempDir;
using sluice::e2e::Time;

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kGiB = 1 << 30;
constexpr long kRssLimitKiB = 128 * 1024;        // 128 MiB, as ru_maxrss counts
constexpr std::size_t kBlockBytes = 4 * kMiB;    // one write(2) per block
constexpr std::uint64_t kMaxRecordBytes = kMiB;  // the reader's line limit (accounting_parser.h)
constexpr bool kSanitized = HOSTILE_SANITIZED != 0;

struct Sizes {
  std::uint64_t random_bytes = 0;
  std::uint64_t long_line_bytes = 0;
  std::uint64_t distinct_texts = 0;
};

// The sizes for this build and SLUICE_HOSTILE_SCALE.
Sizes sizes() {
  Sizes s = kSanitized ? Sizes{64 * kMiB, 16 * kMiB, 100000} : Sizes{kGiB, 100 * kMiB, 1000000};
  double scale = 1;
  if (const char* text = std::getenv("SLUICE_HOSTILE_SCALE"); text != nullptr && *text != '\0') {
    char* end = nullptr;
    scale = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(scale > 0 && scale <= 1)) {
      throw std::runtime_error("SLUICE_HOSTILE_SCALE must be a fraction in (0, 1], not " +
                               std::string(text));
    }
  }
  const auto scaled = [scale](std::uint64_t n, std::uint64_t least) {
    return std::max(least, static_cast<std::uint64_t>(static_cast<double>(n) * scale));
  };
  s.random_bytes = scaled(s.random_bytes, kMiB);
  s.long_line_bytes = scaled(s.long_line_bytes, 2 * kMaxRecordBytes);  // still too long
  s.distinct_texts = scaled(s.distinct_texts, 1000);
  return s;
}

// ---- Streaming to disk ------------------------------------------------------------------------

// Appends to a file through one buffer of kBlockBytes: a write(2) per block.
class BlockWriter {
 public:
  explicit BlockWriter(const fs::path& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)), path_(path) {
    if (fd_ < 0) throw std::runtime_error("cannot create " + path.string());
    buffer_.reserve(kBlockBytes);
  }
  ~BlockWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  void append(std::string_view bytes) {
    while (!bytes.empty()) {
      const std::size_t n = std::min(bytes.size(), kBlockBytes - buffer_.size());
      buffer_.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      if (buffer_.size() == kBlockBytes) flush();
    }
  }

  // Writes a whole block, bypassing the buffer (which must be empty or is flushed first).
  void write_block(const char* data, std::size_t size) {
    flush();
    write_all(data, size);
  }

  void close() {
    flush();
    if (::close(fd_) != 0) throw std::runtime_error("cannot close " + path_.string());
    fd_ = -1;
  }

 private:
  void flush() {
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  void write_all(const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("cannot write " + path_.string());
      data += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  int fd_;
  fs::path path_;
  std::string buffer_;
};

// ---- Running the binary, measured -------------------------------------------------------------

struct Measured {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  long peak_rss_kib = 0;
  double seconds = 0;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path; no shell) to completion with stdout and stderr in files under
// `dir`, and reaps it with wait4 for its peak RSS. That figure is an upper bound of the child's
// own: Linux carries the forking process's high-water mark over fork and exec, so this process
// stays small (it streams its inputs) and prints its own peak beside it.
Measured run_measured(std::vector<std::string> argv, const fs::path& dir) {
  const std::string out_path = (dir / "child.out").string();
  const std::string err_path = (dir / "child.err").string();
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Between fork and exec, async-signal-safe calls only.
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
        ::dup2(err, 2) < 0) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) throw std::runtime_error("wait4 failed");
  }
  Measured m;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  m.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  m.peak_rss_kib = usage.ru_maxrss;  // KiB on Linux
  m.out = slurp(out_path);
  m.err = slurp(err_path);
  return m;
}

long own_peak_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

double mib(double bytes) {
  return bytes / static_cast<double>(kMiB);
}

// Prints one figure for the docs and records it in the test's XML output.
template <class T>
void figure(const std::string& name, const T& value) {
  std::cout << "[figure] " << name << " = " << value << std::endl;
  testing::Test::RecordProperty(name, testing::PrintToString(value));
}

// The checks every run shares: a clean exit, and the peak RSS (except under the sanitizers).
void expect_bounded(const Measured& m, const std::string& what) {
  EXPECT_EQ(m.exit_code, 0) << what << " (signal " << m.signal << "): " << m.err.substr(0, 2000);
  figure(what + ".seconds", m.seconds);
  figure(what + ".peak_rss_mib", static_cast<double>(m.peak_rss_kib) / 1024);
  figure(what + ".test_process_peak_rss_mib", static_cast<double>(own_peak_rss_kib()) / 1024);
  if (kSanitized) {
    std::cout << "[note] " << what
              << ": sanitized build, the peak RSS is not asserted (the shadow memory dominates it)"
              << std::endl;
  } else {
    EXPECT_LT(m.peak_rss_kib, kRssLimitKiB) << what << ": peak RSS " << m.peak_rss_kib << " KiB";
  }
}

Measured report(const fs::path& file, const fs::path& dir) {
  return run_measured({SLUICE_BINARY, "report", "--format", "json", file.string()}, dir);
}

void print_skipped(const std::string& what, const Json& report) {
  for (const auto& [reason, count] : report["malformed"].items()) {
    figure(what + ".malformed." + reason, count.get<std::uint64_t>());
  }
  figure(what + ".skipped_types", report["totals"]["skipped_types"].get<std::uint64_t>());
}

// ---- 1. A file of random bytes ----------------------------------------------------------------

// What the generator knows of the random file's physical lines.
struct RandomFacts {
  std::uint64_t newlines = 0;
  std::uint64_t blank_lines = 0;  // "\n" or "\r\n" alone: the reader counts nothing for them
  std::uint64_t longest_line = 0;
};

RandomFacts write_random_file(const fs::path& path, std::uint64_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> words(kBlockBytes / sizeof(std::uint64_t));
  BlockWriter out(path);
  RandomFacts facts;
  std::uint64_t line_start = 0;  // file offset of the current line's first byte
  std::uint64_t offset = 0;
  char last_byte = '\n';  // of the block before
  while (offset < size) {
    for (std::uint64_t& w : words) w = rng();
    const char* bytes = reinterpret_cast<const char*>(words.data());
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kBlockBytes, size - offset));
    const char* const end = bytes + n;
    for (const char* p = bytes;;) {
      const auto* nl =
          static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (nl == nullptr) break;
      const std::uint64_t at = offset + static_cast<std::uint64_t>(nl - bytes);
      const std::uint64_t length = at - line_start;  // without the newline
      const char before = nl > bytes ? nl[-1] : last_byte;
      if (length == 0 || (length == 1 && before == '\r')) ++facts.blank_lines;
      facts.longest_line = std::max(facts.longest_line, length + 1);
      ++facts.newlines;
      line_start = at + 1;
      p = nl + 1;
    }
    last_byte = end[-1];
    out.write_block(bytes, n);
    offset += n;
  }
  facts.longest_line = std::max(facts.longest_line, size - line_start);
  out.close();
  return facts;
}

TEST(HostileInput, AGibibyteOfRandomBytesIsSkippedLineByLineInBoundedMemory) {
  const Sizes s = sizes();
  TempDir tmp;
  const fs::path file = tmp.path() / "random.bin";
  const auto generating = std::chrono::steady_clock::now();
  const RandomFacts facts = write_random_file(file, s.random_bytes, 20261127);
  figure("random.bytes", s.random_bytes);
  figure("random.generate_seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - generating).count());
  figure("random.newlines", facts.newlines);
  figure("random.blank_lines", facts.blank_lines);
  figure("random.longest_line_bytes", facts.longest_line);
  // The seed is fixed: these are facts of the input, checked so that the bounds below hold.
  ASSERT_GT(facts.newlines, s.random_bytes / 512);  // about one byte in 256 is a newline
  ASSERT_LT(facts.longest_line, kMaxRecordBytes);

  const Measured m = report(file, tmp.path());
  expect_bounded(m, "random");
  ASSERT_EQ(m.exit_code, 0);
  const Json r = Json::parse(m.out);
  print_skipped("random", r);
  const Json& totals = r["totals"];
  const Json& malformed = r["malformed"];
  figure("random.malformed_total", totals["malformed"].get<std::uint64_t>());

  // A record needs 23 fields (22 commas), a known type and a time: never in these bytes.
  EXPECT_EQ(totals["attempts"], 0);
  EXPECT_EQ(totals["files"], 1);
  EXPECT_EQ(r["isps"].size(), 0u);
  // No physical line reaches the 1 MiB limit.
  EXPECT_EQ(malformed["line_too_long"], 0);
  // The summary adds up: the reasons make the total.
  std::uint64_t by_reason = 0;
  for (const auto& [reason, count] : malformed.items()) by_reason += count.get<std::uint64_t>();
  EXPECT_EQ(by_reason, totals["malformed"].get<std::uint64_t>());
  // Each skipped line or type is at least one physical line of its own: never more of them than
  // newlines (a last line without one is left for the next read, as a growing file's is).
  const std::uint64_t counted =
      totals["malformed"].get<std::uint64_t>() + totals["skipped_types"].get<std::uint64_t>();
  EXPECT_LE(counted, facts.newlines);
  // And nearly every non-blank line is counted: only a quoted field that happens to close
  // cleanly several lines later makes one count of those lines. A reader that lost its way
  // after a bad line (skipping a window, say) would count far fewer.
  const std::uint64_t non_blank = facts.newlines - facts.blank_lines;
  EXPECT_GE(counted, non_blank - non_blank / 50) << "counted " << counted << " of " << non_blank;
  // Random bytes hold unbalanced quotes and wrong field counts in about equal measure.
  EXPECT_GT(malformed["column_count"].get<std::uint64_t>(), non_blank / 4);
  EXPECT_GT(malformed["bad_quoting"].get<std::uint64_t>(), non_blank / 4);
}

// ---- 2. One line of 100 MiB -------------------------------------------------------------------

TEST(HostileInput, OneLineOf100MiBIsSkippedAsTooLongAndTheRecordsAroundItCount) {
  const Sizes s = sizes();
  TempDir tmp;
  const fs::path file = tmp.path() / "long-line.csv";
  constexpr int kAround = 1000;  // records before and after the long line, half of them `t`
  const auto generating = std::chrono::steady_clock::now();
  {
    BlockWriter out(file);
    out.append(kHeader);
    for (int i = 0; i < kAround; ++i) out.append(acct_line(i % 2 ? 't' : 'd', kNow + i, i));
    // A deferral whose reply text is the whole 100 MiB: a record in every other way, so only its
    // length is wrong. Letters and spaces, no comma, quote or newline.
    const std::string when = "2026-11-27 12:30:00+0000";
    const std::string head = "t," + when + "," + when +
                             ",news@example.com,huge@gmail.com,,delayed,4.7.0 (other),\"smtp;421 ";
    const std::string tail =
        "\",gmail-smtp-in.l.google.com,,smtp,,smtp,198.51.100.11,142.250.102.27,PIPELINING,2048,"
        "gmail-ip-1,job-1,,gmail.com/gmail-ip-1,\n";
    out.append(head);
    std::uint64_t filler = s.long_line_bytes - head.size() - tail.size();
    std::mt19937_64 rng(7);
    std::string block(kBlockBytes, ' ');
    constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyz      ";  // 32 symbols
    while (filler > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(filler, block.size()));
      for (std::size_t i = 0; i + 8 <= n; i += 8) {
        std::uint64_t w = rng();
        for (int k = 0; k < 8; ++k, w >>= 8) block[i + k] = kLetters[w & 31];
      }
      out.append(std::string_view(block.data(), n));
      filler -= n;
    }
    out.append(tail);
    for (int i = 0; i < kAround; ++i) {
      out.append(acct_line(i % 2 ? 't' : 'd', kNow + 3600 + i, kAround + i));
    }
    out.close();
  }
  figure("long_line.line_bytes", s.long_line_bytes);
  figure("long_line.file_bytes", fs::file_size(file));
  figure("long_line.generate_seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - generating).count());

  const Measured m = report(file, tmp.path());
  expect_bounded(m, "long_line");
  ASSERT_EQ(m.exit_code, 0);
  const Json r = Json::parse(m.out);
  print_skipped("long_line", r);
  // The long line alone is skipped, as too long; every record before and after it counts.
  EXPECT_EQ(r["malformed"]["line_too_long"], 1);
  EXPECT_EQ(r["totals"]["malformed"], 1);
  EXPECT_EQ(r["totals"]["attempts"], 2 * kAround);
  EXPECT_EQ(r["totals"]["delivered"], kAround);
  EXPECT_EQ(r["totals"]["deferred"], kAround);
  // Its line number, in the log: header, kAround records, then it.
  const std::string sample = file.string() + ":" + std::to_string(kAround + 2) +
                             ": malformed line skipped (line_too_long)";
  EXPECT_NE(m.err.find(sample), std::string::npos) << m.err;
}

// ---- 3. A million distinct deferral texts -----------------------------------------------------

// `count` t records over the hour before `end`, each with its own deferral text (a unique id in
// its first 60 characters), spread over three pools of two IPs each and three ISPs (Gmail's to
// a recipient domain each, hosted by Google). Pool high-rep-pool is the sandbox's managed one.
void write_distinct_texts(const fs::path& path, std::uint64_t count, Time end) {
  struct Isp {
    const char* domain;
    const char* mx;
    const char* before_id;
    const char* after_id;
    bool hosted;
  };
  static constexpr std::array<Isp, 3> kIsps = {{
      {"gmail.com", "gmail-smtp-in.l.google.com (142.250.102.27)", "421-4.7.0 [",
       "] Try again later, closing connection. (EHLO) - gsmtp", true},
      {"outlook.com", "outlook-com.olc.protection.outlook.com (52.101.40.1)",
       "451 4.7.650 The mail server [", "] has been temporarily rate limited due to IP reputation.",
       false},
      {"yahoo.com", "mta5.am0.yahoodns.net (67.195.204.72)", "421 4.7.0 [TSS04] Messages from ",
       " temporarily deferred due to unexpected volume or user complaints", false},
  }};
  static constexpr std::array<const char*, 3> kPools = {"high-rep-pool", "bulk-pool",
                                                        "transactional-pool"};
  BlockWriter out(path);
  out.append(kHeader);
  std::string line;
  std::string when;
  Time when_for = -1;
  char number[24];
  const auto digits = [&number](std::uint64_t n) {
    const auto r = std::to_chars(number, number + sizeof number, n);
    return std::string_view(number, static_cast<std::size_t>(r.ptr - number));
  };
  for (std::uint64_t i = 0; i < count; ++i) {
    const Time t = end - kHour + static_cast<Time>(i * kHour / count);
    if (t != when_for) {
      when = sluice::e2e::format_utc(t, "%Y-%m-%d %H:%M:%S+0000");
      when_for = t;
    }
    const Isp& isp = kIsps[(i / 3) % 3];
    const std::size_t pool = i % 3;
    const std::size_t ip = pool * 2 + (i / 9) % 2;  // two IPs per pool
    const std::string vmta = std::string(kPools[pool]) + "-ip-" + std::to_string(ip % 2 + 1);
    line.clear();
    line += "t,";
    line += when;
    line += ',';
    line += when;
    line += ",news@example.com,u";
    line += digits(i);
    line += '@';
    if (isp.hosted) {
      // A domain of its own, hosted at the ISP (found by its MX): the domain caches see a
      // million names too.
      line += 'h';
      line += digits(i);
      line += ".example.org";
    } else {
      line += isp.domain;
    }
    line += ",,delayed,4.7.0 (other or undefined protocol status),\"smtp;";
    line += isp.before_id;
    line += "id-";
    line += digits(i);
    line += isp.after_id;
    line += "\",";
    line += isp.mx;
    line += ",,smtp,,smtp,198.51.100.";
    line += digits(10 + ip);
    line += ",192.0.2.1,PIPELINING,2048,";
    line += vmta;
    line += ",job-1,,";
    line += isp.domain;
    line += '/';
    line += vmta;
    line += ',';
    line += kPools[pool];
    line += '\n';
    out.append(line);
  }
  out.close();
}

TEST(HostileInput, AMillionDistinctDeferralTextsKeepReportAndCycleInBoundedMemory) {
  const Sizes s = sizes();
  SandboxOptions options;
  options.isps = R"(["gmail", "outlook", "yahoo"])";
  Sandbox box(sluice::e2e::Pmta::ok, options);
  const auto generating = std::chrono::steady_clock::now();
  write_distinct_texts(box.log(), s.distinct_texts, kNow);
  figure("texts.count", s.distinct_texts);
  figure("texts.file_mib", mib(static_cast<double>(fs::file_size(box.log()))));
  figure("texts.generate_seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - generating).count());

  // report: every record counted; the text groups, one per record, pruned to a bounded set.
  const Measured m = report(box.log(), box.scratch());
  expect_bounded(m, "texts.report");
  ASSERT_EQ(m.exit_code, 0);
  const Json r = Json::parse(m.out);
  print_skipped("texts.report", r);
  EXPECT_EQ(r["totals"]["deferred"], s.distinct_texts);
  EXPECT_EQ(r["totals"]["attempts"], s.distinct_texts);
  EXPECT_EQ(r["totals"]["malformed"], 0);
  EXPECT_EQ(r["totals"]["text_groups_pruned"], true);
  ASSERT_EQ(r["isps"].size(), 3u) << r["isps"].dump();
  std::uint64_t deferred = 0;
  for (const Json& isp : r["isps"]) {
    deferred += isp["deferred"].get<std::uint64_t>();
    // --top's default: five texts per ISP, whatever the number of distinct ones.
    EXPECT_LE(isp["top_deferrals"].size(), 5u) << isp["isp"];
    EXPECT_GE(isp["top_deferrals"].size(), 1u) << isp["isp"];
  }
  EXPECT_EQ(deferred, s.distinct_texts);
  EXPECT_EQ(r["pools"].size(), 9u);  // three pools at three ISPs

  // once: the control loop's caches (deferral classes, domains, buckets) on the same log, its
  // records all in the decision window before now.
  const Measured once = run_measured(
      {SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow), "--json", "once"},
      box.scratch());
  expect_bounded(once, "texts.once");
  ASSERT_EQ(once.exit_code, 0);
  const Json cycle = Json::parse(once.out);
  EXPECT_EQ(cycle["records_read"], s.distinct_texts);
  // Every record is in the state's buckets, the unmanaged pools' too.
  EXPECT_EQ(bucket_totals(box.database()).deferred, static_cast<std::int64_t>(s.distinct_texts));
  // Throttling on every managed pair: each is cut, under one reload.
  std::size_t cuts = 0;
  for (const Json& d : cycle["decisions"]) {
    if (d["rule"] == "severe_cut") ++cuts;
  }
  EXPECT_EQ(cuts, 3u) << cycle["decisions"].dump(2);
  EXPECT_EQ(cycle["reloaded"], true);
}

// A log spanning years (an archive given to a first run): one record per 5 minutes, each in a
// bucket of its own. The loop keeps only its retention (35 days), so memory does not follow the
// span, and it says how many older records it did not keep.
TEST(HostileInput, YearsOfRecordsOnePerBucketKeepTheCycleInBoundedMemory) {
  const Sizes s = sizes();
  const std::uint64_t count = s.distinct_texts;  // 1,000,000: about 9.5 years
  Sandbox box;
  {
    std::ofstream out(box.log(), std::ios::binary);
    out << kHeader;
    std::string block;
    for (std::uint64_t i = 0; i < count; ++i) {
      const Time t = kNow - static_cast<Time>(count - i) * 300;
      block += acct_line('d', t, static_cast<int>(i));
      if (block.size() >= kBlockBytes) {
        out << block;
        block.clear();
      }
    }
    out << block;
    ASSERT_TRUE(out.flush());
  }
  const Measured once = run_measured(
      {SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow), "--json", "once"},
      box.scratch());
  expect_bounded(once, "years.once");
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_EQ(Json::parse(once.out)["records_read"], count);
  const std::uint64_t kept = 35 * 288;  // 35 days of one record per 5 minutes
  EXPECT_EQ(bucket_totals(box.database()).delivered, static_cast<std::int64_t>(kept));
  EXPECT_NE(once.err.find(std::to_string(count - kept) + " records logged before"),
            std::string::npos)
      << once.err;
}

}  // namespace
