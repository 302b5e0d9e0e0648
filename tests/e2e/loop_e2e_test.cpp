// End-to-end: the control loop of the real build/sluice binary (once, plan, run, status,
// history, check, init), driven by --now, against a fake `pmta` script that records its calls.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "e2e_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::append_file;
using sluice::e2e::BackgroundProcess;
using sluice::e2e::eventually;
using sluice::e2e::lines_of;
using sluice::e2e::ProcessResult;
using sluice::e2e::replace_file;
using sluice::e2e::run_process;
using sluice::e2e::slurp;
using sluice::e2e::TempDir;
using sluice::e2e::write_file;
using namespace std::chrono_literals;

using Time = std::int64_t;
constexpr Time kNow = 1795780800;  // 2026-11-27T12:00:00Z, on an hour: buckets align with it
constexpr Time kMinute = 60;
constexpr Time kHour = 3600;
constexpr Time kDay = 86400;

constexpr fs::perms kExecutable = fs::perms::owner_all | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read |
                                  fs::perms::others_exec;

std::string format_utc(Time t, const char* format) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, format, &tm);
  return buffer;
}

std::string iso(Time t) {
  return format_utc(t, "%Y-%m-%dT%H:%M:%SZ");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- Accounting log lines, as PowerMTA writes them -------------------------------------------

constexpr const char* kHeader =
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
    "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,"
    "envId,queue,vmtaPool\n";
constexpr const char* kThrottleDiag =
    "smtp;421-4.7.0 [203.0.113.11 15] Try again later, closing connection. (EHLO) x - gsmtp";

std::string csv_quoted(const std::string& field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// One record for the vmta gmail-ip-1 of pool high-rep-pool (mapped by the configuration: the
// vmtaPool column is left empty). `n` makes recipients distinct.
std::string acct_line(char type, Time t, int n) {
  const std::string when = format_utc(t, "%Y-%m-%d %H:%M:%S+0000");
  const std::string rcpt = "user" + std::to_string(n) + "@gmail.com";
  const std::string mx = "gmail-smtp-in.l.google.com (142.250.102.27)";
  std::string action, status, diag, bounce_cat, recipient = rcpt, dlv = "smtp";
  switch (type) {
    case 'd':
      action = "relayed";
      status = "2.0.0 (success)";
      diag = "smtp;250 2.0.0 OK  1795780000 x - gsmtp";
      break;
    case 'b':
      action = "failed";
      status = "5.1.1 (bad destination mailbox address)";
      diag = "smtp;550-5.1.1 The email account that you tried to reach does not exist. x - gsmtp";
      bounce_cat = "bad-mailbox";
      break;
    case 't':
      action = "delayed";
      status = "4.7.0 (other or undefined protocol status)";
      diag = kThrottleDiag;
      break;
    case 'q':  // a tq record: the queue was throttled, no recipient
      action = "delayed";
      status = "4.7.0 (other or undefined protocol status)";
      diag = kThrottleDiag;
      recipient = "";
      break;
  }
  const std::string type_text = type == 'q' ? "tq" : std::string(1, type);
  return type_text + "," + when + "," + when + ",news@example.com," + recipient + ",," + action +
         "," + status + "," + csv_quoted(diag) + "," + mx + "," + bounce_cat + ",smtp,," + dlv +
         ",198.51.100.11,142.250.102.27,PIPELINING,2048,gmail-ip-1,job-1,,gmail.com/gmail-ip-1,\n";
}

// `attempts` records spread evenly over [from, to), `throttled` of them 421 deferrals (also
// spread evenly), the rest deliveries.
std::string traffic(Time from, Time to, int attempts, int throttled, int first_n = 0) {
  std::string out;
  for (int i = 0; i < attempts; ++i) {
    const Time t = from + (to - from) * i / attempts;
    const bool throttle = (static_cast<long>(i + 1) * throttled / attempts) >
                          (static_cast<long>(i) * throttled / attempts);
    out += acct_line(throttle ? 't' : 'd', t, first_n + i);
  }
  return out;
}

// ---- The sandbox: config, fake pmta, logs, fragments, database, all under one temp dir ------

enum class Pmta { ok, test_config_fails, reload_fails, reload_hangs };

struct SandboxOptions {
  std::string isps = R"(["gmail"])";
  std::string pmta_extra;  // more [pmta] keys
};

class Sandbox {
 public:
  explicit Sandbox(Pmta pmta = Pmta::ok, SandboxOptions options = {}) {
    fs::create_directories(work() / "bin");
    fs::create_directories(work() / "acct");
    fs::create_directories(fragments());
    fs::create_directories(work() / "state");
    set_pmta(pmta);
    const auto quoted = [](const fs::path& p) { return "\"" + p.string() + "\""; };
    std::string toml = "[pmta]\n";
    toml += "command = " + quoted(pmta_path()) + "\n";
    toml += "accounting = [" + quoted(work() / "acct" / "acct-*.csv") + "]\n";
    toml += "fragments = " + quoted(fragments()) + "\n";
    toml += "config = " + quoted(pmta_config()) + "\n";
    toml += options.pmta_extra;
    toml += "\n[state]\ndatabase = " + quoted(database()) + "\n";
    toml += "overrides = " + quoted(work() / "overrides.toml") + "\n";
    toml += "\n[[pool]]\nname = \"high-rep-pool\"\nvmtas = [\"gmail-ip-1\", \"gmail-ip-2\"]\n";
    toml += "tier = \"high\"\nisps = " + options.isps + "\n";
    write_file(config(), toml);
  }

  // Everything sluice may touch lives under work(); nothing else goes there.
  fs::path work() const { return tmp_.path() / "work"; }
  fs::path config() const { return work() / "sluice.toml"; }
  fs::path pmta_path() const { return work() / "bin" / "pmta"; }
  fs::path pmta_config() const { return work() / "pmta.conf"; }
  fs::path calls_path() const { return work() / "pmta-calls"; }
  fs::path log() const { return work() / "acct" / "acct-2026-11-27.csv"; }
  fs::path fragments() const { return work() / "fragments"; }
  fs::path fragment() const { return fragments() / "high-rep-pool" / "gmail.conf"; }
  fs::path database() const { return work() / "state" / "state.db"; }
  fs::path scratch() const { return tmp_.path(); }  // outside work(), for a daemon's output

  void set_pmta(Pmta mode) {
    std::string test = "exit 0";
    std::string reload = "echo 'Configuration reloaded.'; exit 0";
    if (mode == Pmta::test_config_fails) {
      test = "echo 'Error in line 11 of /etc/pmta/config: argument missing'; exit 1";
    }
    if (mode == Pmta::reload_fails) reload = "echo 'error: reload failed' >&2; exit 1";
    if (mode == Pmta::reload_hangs) reload = "sleep 60";
    std::string script = "#!/bin/sh\n";
    script += "# Stands in for PowerMTA's pmta: records each call, answers like the real one.\n";
    script += "printf '%s\\n' \"$*\" >> '" + calls_path().string() + "'\n";
    script += "case \"$*\" in\n";
    script += "  'test config') " + test + " ;;\n";
    script += "  reload) " + reload + " ;;\n";
    script += "esac\n";
    script += "echo \"pmta: unknown command $*\" >&2\nexit 2\n";
    replace_file(pmta_path(), script, kExecutable);
  }

  std::vector<std::string> calls() const { return lines_of(slurp(calls_path())); }

  ProcessResult sluice(Time now, std::vector<std::string> args) const {
    std::vector<std::string> argv = {SLUICE_BINARY, "--config", config().string(), "--now",
                                     iso(now)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  Json json(Time now, const std::string& command) const {
    const ProcessResult r = sluice(now, {"--json", command});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    return Json::parse(r.out);
  }

  Json decisions(Time now) const { return json(now, "history")["decisions"]; }

 private:
  TempDir tmp_;
};

// ---- A snapshot of every file and directory under a root -------------------------------------

struct FileFacts {
  bool directory = false;
  std::uintmax_t size = 0;
  std::uint64_t hash = 0;  // FNV-1a of the content
  std::int64_t mtime_ns = 0;
  bool operator==(const FileFacts&) const = default;
};

std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::map<std::string, FileFacts> snapshot(const fs::path& root) {
  std::map<std::string, FileFacts> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    FileFacts f;
    f.directory = S_ISDIR(st.st_mode);
    // A directory's mtime moves when an entry is created or removed, even a temp file.
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (!f.directory) {
      f.size = static_cast<std::uintmax_t>(st.st_size);
      f.hash = fnv1a(slurp(e.path()));
    }
    out[e.path().string()] = f;
  }
  return out;
}

// "" when equal, else one line per path that appeared, vanished or changed.
std::string snapshot_differences(const std::map<std::string, FileFacts>& before,
                                 const std::map<std::string, FileFacts>& after) {
  std::string out;
  for (const auto& [path, facts] : before) {
    const auto found = after.find(path);
    if (found == after.end()) {
      out += "removed " + path + "\n";
    } else if (!(found->second == facts)) {
      out += "changed " + path + "\n";
    }
  }
  for (const auto& [path, facts] : after) {
    if (!before.contains(path)) out += "created " + path + "\n";
  }
  return out;
}

// ---- The state database, read directly ------------------------------------------------------

struct Totals {
  std::int64_t delivered = 0, bounced = 0, deferred = 0, deferred_queue = 0;
  bool operator==(const Totals&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Totals& t) {
  return os << "{d " << t.delivered << ", b " << t.bounced << ", t " << t.deferred << ", tq "
            << t.deferred_queue << "}";
}

Totals bucket_totals(const fs::path& database) {
  Totals t;
  sqlite3* db = nullptr;
  const std::string uri = "file:" + database.string() + "?mode=ro";
  if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << database << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return t;
  }
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT TOTAL(delivered), TOTAL(bounced), TOTAL(deferred), TOTAL(deferred_queue) "
      "FROM signal_bucket";
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    t = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
         sqlite3_column_int64(st, 3)};
  } else {
    ADD_FAILURE() << "cannot sum signal_bucket: " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return t;
}

Totals count_records(const std::string& lines) {
  Totals t;
  for (const std::string& line : lines_of(lines)) {
    if (line.starts_with("d,")) ++t.delivered;
    if (line.starts_with("b,")) ++t.bounced;
    if (line.starts_with("t,")) ++t.deferred;
    if (line.starts_with("tq,")) ++t.deferred_queue;
  }
  return t;
}

// ---- 1. A 421 burst: one cut, one test config, one reload -----------------------------------

TEST(LoopE2E, A421BurstProducesOneCutAndOneReload) {
  Sandbox box;
  // 600 Gmail attempts in the hour before now, 60 of them 421s: a 10% throttle rate, above 5%
  // and under 15%, so a 30% cut: floor(6 * 0.7) = 4.
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out, "high-rep-pool/gmail cut 6 -> 4")) << once.out;
  EXPECT_TRUE(contains(once.out, "pmta: reloaded")) << once.out;
  EXPECT_EQ(box.calls(), (std::vector<std::string>{"test config", "reload"}));

  const std::string fragment = slurp(box.fragment());
  EXPECT_TRUE(contains(fragment, "\nmax-smtp-out 4\n")) << fragment;
  EXPECT_TRUE(contains(fragment, "\nbackoff-max-smtp-out 2\n")) << fragment;
  EXPECT_TRUE(contains(fragment, "\nmax-connect-rate 1/s\n")) << fragment;

  const Json decisions = box.decisions(kNow);
  std::vector<Json> cuts;
  for (const Json& d : decisions) {
    if (d["rule"] == "cut") cuts.push_back(d);
  }
  ASSERT_EQ(cuts.size(), 1u) << decisions.dump(2);
  // The cut is the whole story of this cycle: an "initial" entry beside it would record a
  // first value (4 -> 4) that the pair never had.
  EXPECT_EQ(decisions.size(), 1u) << decisions.dump(2);
  const std::size_t recorded = decisions.size();
  const Json& cut = cuts[0];
  EXPECT_EQ(cut["pool"], "high-rep-pool");
  EXPECT_EQ(cut["isp"], "gmail");
  EXPECT_EQ(cut["rule"], "cut");
  EXPECT_EQ(cut["old_value"], 6);
  EXPECT_EQ(cut["new_value"], 4);
  EXPECT_EQ(cut["trigger"], "connection");
  EXPECT_EQ(cut["applied"], true);
  EXPECT_EQ(cut["pmta"], "reloaded");
  EXPECT_EQ(cut["figures"]["attempts"], 600);
  EXPECT_EQ(cut["figures"]["throttle"], 60);
  EXPECT_EQ(cut["at"], iso(kNow));

  const Json pools = box.json(kNow, "status")["pools"];
  ASSERT_EQ(pools.size(), 1u) << pools.dump(2);
  EXPECT_EQ(pools[0]["max_smtp_out"], 4);
  EXPECT_EQ(pools[0]["phase"], "verifying");
  EXPECT_EQ(pools[0]["tier"], "high");
  EXPECT_DOUBLE_EQ(pools[0]["deferral_rate_1h"].get<double>(), 0.1);
  EXPECT_EQ(pools[0]["last_change"]["from"], 6);
  EXPECT_EQ(pools[0]["last_change"]["to"], 4);

  // 10 minutes later, inside the 30-minute window of a connection-class cut, more 421s arrive
  // (the cut's own tail, 50% of 100): no change, no pmta call.
  append_file(box.log(), traffic(kNow, kNow + 10 * kMinute, 100, 50, 600));
  const std::string before = slurp(box.fragment());
  const ProcessResult second = box.sluice(kNow + 10 * kMinute, {"once"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(contains(second.out, "no change (100 new records)")) << second.out;
  EXPECT_EQ(box.calls().size(), 2u);
  EXPECT_EQ(slurp(box.fragment()), before);
  EXPECT_EQ(box.decisions(kNow + 10 * kMinute).size(), recorded);
}

// ---- 2. A quiet week: one raise ------------------------------------------------------------

TEST(LoopE2E, AQuietWeekProducesOneRaise) {
  Sandbox box;
  // The operator's own value, written before sluice ever ran: the pair starts from it.
  const std::string operator_fragment = "# set by hand\nmax-smtp-out 6\n";
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), operator_fragment);
  // 8 days of clean traffic, 200 deliveries a day spread evenly over each day, and a busy last
  // hour: like any action, a raise needs 100 attempts in the decision window.
  std::string log = kHeader;
  for (int day = 0; day < 8; ++day) {
    const Time from = kNow - 8 * kDay + day * kDay;
    log += traffic(from, from + kDay, 200, 0, day * 200);
  }
  log += traffic(kNow - 3600, kNow, 120, 0, 1600);
  write_file(box.log(), log);

  const ProcessResult first = box.sluice(kNow, {"once"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // 15% of 6 is under 1 and a raise is at least +1: 6 -> 7, under the cap 10 of tier high.
  ASSERT_TRUE(contains(first.out, "high-rep-pool/gmail raise 6 -> 7")) << first.out;
  EXPECT_EQ(box.calls(), (std::vector<std::string>{"test config", "reload"}));
  const std::string raised = slurp(box.fragment());
  EXPECT_TRUE(contains(raised, "\nmax-smtp-out 7\n")) << raised;
  EXPECT_TRUE(contains(raised, "\nbackoff-max-smtp-out 3\n")) << raised;
  Json decisions = box.decisions(kNow);
  ASSERT_EQ(decisions.size(), 1u) << decisions.dump(2);
  EXPECT_EQ(decisions[0]["rule"], "raise");
  EXPECT_EQ(decisions[0]["old_value"], 6);
  EXPECT_EQ(decisions[0]["new_value"], 7);
  EXPECT_EQ(decisions[0]["applied"], true);

  // One more clean day: still quiet, but the last change is 1 day old, not 7.
  append_file(box.log(), traffic(kNow, kNow + kDay, 200, 0, 1720));
  const ProcessResult second = box.sluice(kNow + kDay, {"once"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(contains(second.out, "no change (200 new records)")) << second.out;
  EXPECT_EQ(box.calls().size(), 2u);
  EXPECT_EQ(slurp(box.fragment()), raised);
  EXPECT_EQ(box.decisions(kNow + kDay).size(), 1u);
}

// ---- 3. plan writes nothing at all ----------------------------------------------------------

void expect_plan_writes_nothing(const Sandbox& box, Time now, const std::string& from_line,
                                const std::string& removed_line) {
  const auto before = snapshot(box.work());
  const std::string calls_before = slurp(box.calls_path());
  const ProcessResult plan = box.sluice(now, {"plan"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(snapshot_differences(before, snapshot(box.work())), "");
  EXPECT_EQ(slurp(box.calls_path()), calls_before);

  // The proposed change, its reason, and a unified diff of the fragment.
  EXPECT_TRUE(contains(plan.out, "high-rep-pool/gmail cut 6 -> 4: throttle deferral rate"))
      << plan.out;
  EXPECT_TRUE(contains(plan.out, "(not applied)")) << plan.out;
  EXPECT_TRUE(contains(plan.out, "\n--- " + from_line + "\n")) << plan.out;
  EXPECT_TRUE(contains(plan.out, "\n+++ " + box.fragment().string() + "\n")) << plan.out;
  EXPECT_TRUE(contains(plan.out, "\n+max-smtp-out 4\n")) << plan.out;
  EXPECT_TRUE(contains(plan.out, "\n+backoff-max-smtp-out 2\n")) << plan.out;
  if (!removed_line.empty()) {
    EXPECT_TRUE(contains(plan.out, "\n" + removed_line + "\n")) << plan.out;
  }
}

TEST(LoopE2E, PlanWithoutADatabaseChangesNoByteOnDisk) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  ASSERT_FALSE(fs::exists(box.database()));
  expect_plan_writes_nothing(box, kNow, "/dev/null", "");
  EXPECT_FALSE(fs::exists(box.database()));
  EXPECT_FALSE(fs::exists(box.fragment()));
}

TEST(LoopE2E, PlanWithADatabaseChangesNoByteOnDisk) {
  Sandbox box;
  // A first cycle two hours ago, on clean traffic: it writes the tier's start, 6.
  write_file(box.log(), kHeader + traffic(kNow - 3 * kHour, kNow - 2 * kHour, 200, 0));
  const ProcessResult first = box.sluice(kNow - 2 * kHour, {"once"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 6\n"));
  ASSERT_EQ(box.calls().size(), 2u);
  ASSERT_TRUE(fs::exists(box.database()));

  append_file(box.log(), traffic(kNow - kHour, kNow, 600, 60, 200));
  expect_plan_writes_nothing(box, kNow, box.fragment().string(), "-max-smtp-out 6");

  // plan consumed nothing: the cycle it previewed still happens, with the same figures.
  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out, "high-rep-pool/gmail cut 6 -> 4")) << once.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 4\n"));
}

// ---- 4. pmta refuses the change: the old fragment stays -------------------------------------

struct FailureCase {
  const char* name;
  Pmta pmta;
  std::string pmta_extra;
  std::string message;  // in the one stderr line
  std::vector<std::string> calls;
};

class PmtaFailureE2E : public testing::TestWithParam<FailureCase> {};

TEST_P(PmtaFailureE2E, LeavesTheOldFragmentAndRetriesAfterFiveMinutes) {
  const FailureCase& c = GetParam();
  Sandbox box(c.pmta, {.isps = R"(["gmail"])", .pmta_extra = c.pmta_extra});
  const std::string operator_fragment = "# set by hand\nmax-smtp-out 6\nmax-connect-rate 1/s\n";
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), operator_fragment);
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_NE(once.exit_code, 0);
  const std::vector<std::string> err = lines_of(once.err);
  ASSERT_EQ(err.size(), 1u) << once.err;
  EXPECT_TRUE(contains(err[0], "not applied")) << err[0];
  EXPECT_TRUE(contains(err[0], c.message)) << err[0];
  EXPECT_EQ(slurp(box.fragment()), operator_fragment);
  // Nothing else left in the pool's directory (no temp file, no backup).
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(box.fragment().parent_path())) {
    entries.push_back(e.path().filename().string());
  }
  EXPECT_EQ(entries, std::vector<std::string>{"gmail.conf"});
  EXPECT_EQ(box.calls(), c.calls);

  const Json decisions = box.decisions(kNow);
  ASSERT_EQ(decisions.size(), 1u) << decisions.dump(2);
  EXPECT_EQ(decisions[0]["rule"], "cut");
  EXPECT_EQ(decisions[0]["old_value"], 6);
  EXPECT_EQ(decisions[0]["new_value"], 4);
  EXPECT_EQ(decisions[0]["applied"], false);
  EXPECT_TRUE(contains(decisions[0]["pmta"].get<std::string>(), c.message)) << decisions[0];
  const Json pools = box.json(kNow, "status")["pools"];
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0]["max_smtp_out"], 6);

  // A minute later: the same change is not retried yet.
  const std::size_t calls_after_failure = box.calls().size();
  const ProcessResult soon = box.sluice(kNow + kMinute, {"once"});
  EXPECT_EQ(soon.exit_code, 0) << soon.err;
  EXPECT_EQ(box.calls().size(), calls_after_failure);
  EXPECT_EQ(slurp(box.fragment()), operator_fragment);

  // Six minutes later it is, and with pmta fixed it goes through.
  box.set_pmta(Pmta::ok);
  const ProcessResult retry = box.sluice(kNow + 6 * kMinute, {"once"});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  std::vector<std::string> calls = box.calls();
  ASSERT_EQ(calls.size(), calls_after_failure + 2) << slurp(box.calls_path());
  EXPECT_EQ(calls[calls_after_failure], "test config");
  EXPECT_EQ(calls[calls_after_failure + 1], "reload");
  EXPECT_TRUE(contains(retry.out, "high-rep-pool/gmail cut 6 -> 4")) << retry.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 4\n"));
}

INSTANTIATE_TEST_SUITE_P(
    LoopE2E, PmtaFailureE2E,
    testing::Values(
        // The reload may or may not have taken the new fragment: the old one is reloaded.
        FailureCase{"ReloadFails",
                    Pmta::reload_fails,
                    "",
                    "pmta reload failed (exit 1)",
                    {"test config", "reload", "reload"}},
        // Nothing was reloaded: restoring the file is enough, no reload.
        FailureCase{"TestConfigFails",
                    Pmta::test_config_fails,
                    "",
                    "pmta test config failed (exit 1): Error in line 11 of /etc/pmta/config: "
                    "argument missing",
                    {"test config"}},
        FailureCase{"ReloadHangs",
                    Pmta::reload_hangs,
                    "timeout_seconds = 1\n",
                    "pmta reload hung and was killed",
                    {"test config", "reload", "reload"}}),
    [](const testing::TestParamInfo<FailureCase>& info) { return info.param.name; });

// ---- 5. A restart between cycles counts nothing twice --------------------------------------

TEST(LoopE2E, ARestartBetweenCyclesCountsNothingTwice) {
  Sandbox box;
  // A mix of every type, 2% throttled (no cut), spread over the hour before now.
  std::string lines;
  for (int i = 0; i < 300; ++i) {
    const char type = i % 50 == 7 ? 't' : i % 40 == 3 ? 'b' : i % 60 == 11 ? 'q' : 'd';
    lines += acct_line(type, kNow - kHour + i * 12, i);
  }
  const std::string text = kHeader + lines;
  // The first cycle sees the file as PowerMTA is writing it: cut in the middle of a record.
  const std::size_t record_150 = text.find("user150@");
  ASSERT_NE(record_150, std::string::npos);
  const std::size_t cut = record_150 + 3;
  write_file(box.log(), text.substr(0, cut));
  const Totals complete_in_part_one = count_records(text.substr(0, text.rfind('\n', cut) + 1));

  ProcessResult r = box.sluice(kNow, {"once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(bucket_totals(box.database()), complete_in_part_one);

  append_file(box.log(), text.substr(cut));
  r = box.sluice(kNow + kMinute, {"once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Totals whole = count_records(lines);
  ASSERT_EQ(whole.deferred_queue, 5);  // the mix has every type
  EXPECT_EQ(bucket_totals(box.database()), whole);

  // Nothing new: nothing added.
  r = box.sluice(kNow + 2 * kMinute, {"once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "(0 new records)")) << r.out;
  EXPECT_EQ(bucket_totals(box.database()), whole);
}

// ---- 6. One writer at a time ----------------------------------------------------------------

TEST(LoopE2E, OnceIsRefusedWhileAnotherProcessHoldsTheWriterLock) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 200, 0));
  const std::string lock_path = box.database().string() + ".lock";
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    // The child holds the lock as a running sluice would: flock, then its pid in the file.
    // Async-signal-safe calls only. Our copy of the release pipe's write end must go, or the
    // read below would never see its end.
    ::close(release[1]);
    ::close(ready[0]);
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0 || ::ftruncate(fd, 0) != 0) ::_exit(1);
    char digits[24];
    int n = 0;
    for (long pid = ::getpid(); pid > 0; pid /= 10) digits[n++] = static_cast<char>('0' + pid % 10);
    char text[24];
    for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
    text[n] = '\n';
    if (::write(fd, text, static_cast<std::size_t>(n + 1)) != n + 1) ::_exit(1);
    if (::write(ready[1], "x", 1) != 1) ::_exit(1);
    char c;
    while (::read(release[0], &c, 1) > 0) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the lock holder did not start";
  ::close(ready[0]);

  const ProcessResult refused = box.sluice(kNow, {"once"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "(pid " + std::to_string(holder) + ")")) << refused.err;
  EXPECT_TRUE(contains(refused.err, "another sluice")) << refused.err;
  EXPECT_EQ(lines_of(refused.err).size(), 1u) << refused.err;
  EXPECT_FALSE(fs::exists(box.calls_path()));
  EXPECT_FALSE(fs::exists(box.fragment()));

  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // Released: the next cycle runs.
  const ProcessResult after = box.sluice(kNow, {"once"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

TEST(LoopE2E, OnceAndASecondRunAreRefusedWhileRunIsRunning) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 200, 0));
  BackgroundProcess daemon({SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow),
                            "run", "--interval", "1s"},
                           box.scratch() / "run.out", box.scratch() / "run.err");
  ASSERT_TRUE(eventually([&] { return fs::exists(box.fragment()); }, 10s))
      << slurp(box.scratch() / "run.err");

  const std::string holder = "(pid " + std::to_string(daemon.pid()) + ")";
  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_EQ(once.exit_code, 1);
  EXPECT_TRUE(contains(once.err, holder)) << once.err;
  const ProcessResult second_run = box.sluice(kNow, {"run", "--interval", "1s"});
  EXPECT_EQ(second_run.exit_code, 1);
  EXPECT_TRUE(contains(second_run.err, holder)) << second_run.err;

  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  EXPECT_EQ(daemon.wait_for_exit(5s), std::optional<int>(0));
}

// ---- 7. check lists every problem -----------------------------------------------------------

TEST(LoopE2E, CheckListsEveryProblemThenPassesOnceFixed) {
  Sandbox box(Pmta::ok, {.isps = R"(["gmail", "yahoo"])", .pmta_extra = ""});
  fs::remove_all(box.fragments());
  fs::permissions(box.pmta_path(), fs::perms::owner_read | fs::perms::owner_write |
                                       fs::perms::group_read | fs::perms::others_read);
  write_file(box.pmta_config(),
             "<acct-file /var/log/pmta/acct.csv>\n    records d,b\n</acct-file>\n"
             "<virtual-mta-pool high-rep-pool>\n    <domain gmail.com>\n"
             "        max-smtp-out 6\n    </domain>\n</virtual-mta-pool>\n");

  const ProcessResult bad = box.sluice(kNow, {"check"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  std::vector<std::string> failures;
  for (const std::string& line : lines_of(bad.out)) {
    if (line.starts_with("FAIL ")) failures.push_back(line);
  }
  ASSERT_EQ(failures.size(), 5u) << bad.out;
  const std::string conf = box.pmta_config().string();
  const auto listed = [&](const std::string& a, const std::string& b) {
    return std::any_of(failures.begin(), failures.end(), [&](const std::string& line) {
      return contains(line, a) && contains(line, b);
    });
  };
  EXPECT_TRUE(listed("fragment directory " + box.fragments().string(), "does not exist"))
      << bad.out;
  EXPECT_TRUE(listed("pmta command " + box.pmta_path().string(), "not executable")) << bad.out;
  EXPECT_TRUE(listed(conf + " does not include", box.fragment().string())) << bad.out;
  EXPECT_TRUE(listed(conf + " does not include",
                     (box.fragments() / "high-rep-pool" / "yahoo.conf").string()))
      << bad.out;
  EXPECT_TRUE(listed(conf, "records t and tq")) << bad.out;

  // Fixed as the operator would: the directory, the mode, and init's lines in pmta's config.
  fs::create_directories(box.fragments());
  fs::permissions(box.pmta_path(), kExecutable);
  const ProcessResult init = box.sluice(kNow, {"init"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_TRUE(contains(init.out, "records d,b,t,tq")) << init.out;
  EXPECT_TRUE(contains(init.out, "include " + box.fragment().string())) << init.out;
  write_file(box.pmta_config(), init.out);

  const ProcessResult good = box.sluice(kNow, {"check"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_FALSE(contains(good.out, "FAIL")) << good.out;
}

// ---- 8. run stops cleanly on SIGTERM --------------------------------------------------------

TEST(LoopE2E, RunCyclesAndExitsZeroOnSigterm) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  BackgroundProcess daemon({SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow),
                            "run", "--interval", "1s"},
                           box.scratch() / "run.out", box.scratch() / "run.err");
  // The first cycle's effect: the burst's cut in the fragment.
  ASSERT_TRUE(
      eventually([&] { return contains(slurp(box.fragment()), "\nmax-smtp-out 4\n"); }, 10s))
      << slurp(box.scratch() / "run.err");
  std::this_thread::sleep_for(1500ms);  // at least one more cycle, which changes nothing
  ASSERT_TRUE(daemon.running());
  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  EXPECT_EQ(daemon.wait_for_exit(5s), std::optional<int>(0)) << slurp(box.scratch() / "run.err");
  EXPECT_EQ(box.calls(), (std::vector<std::string>{"test config", "reload"}));
  EXPECT_TRUE(contains(slurp(box.scratch() / "run.err"), "stopping on signal"));
}

}  // namespace
