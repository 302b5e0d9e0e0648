// End-to-end: the control loop of the real build/sluice binary (once, plan, run, status,
// history, check, init), driven by --now, against a fake `pmta` script that records its calls.

#include <gtest/gtest.h>
#include <sys/file.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "loop_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::acct_line;
using sluice::e2e::append_file;
using sluice::e2e::BackgroundProcess;
using sluice::e2e::bucket_totals;
using sluice::e2e::contains;
using sluice::e2e::count_records;
using sluice::e2e::eventually;
using sluice::e2e::iso;
using sluice::e2e::kDay;
using sluice::e2e::kExecutable;
using sluice::e2e::kHeader;
using sluice::e2e::kHour;
using sluice::e2e::kMinute;
using sluice::e2e::kNow;
using sluice::e2e::lines_of;
using sluice::e2e::Pmta;
using sluice::e2e::ProcessResult;
using sluice::e2e::Sandbox;
using sluice::e2e::slurp;
using sluice::e2e::snapshot;
using sluice::e2e::snapshot_differences;
using sluice::e2e::Time;
using sluice::e2e::Totals;
using sluice::e2e::traffic;
using sluice::e2e::write_file;
using namespace std::chrono_literals;

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
  // Last, each VMTA's own fragments, inside its <virtual-mta>'s <domain> blocks.
  const std::vector<std::pair<std::string, std::vector<std::string>>> domains_of = {
      {"gmail", {"gmail.com", "googlemail.com"}},
      {"yahoo", {"yahoo.*", "ymail.com", "aol.com", "rocketmail.com"}}};
  std::string vmtas =
      "# 3. Include each VMTA's fragment inside the <domain> blocks of its own <virtual-mta>.\n"
      "#    sluice writes them with the pool's first fragments, comments only until it diagnoses\n"
      "#    deferrals concentrated on that VMTA's IP (or an override names the VMTA).\n";
  for (const std::string vmta : {"gmail-ip-1", "gmail-ip-2"}) {
    vmtas += (vmta == "gmail-ip-1" ? "" : "\n") + std::string("<virtual-mta ") + vmta + ">\n";
    for (const auto& [isp, domains] : domains_of) {
      for (const std::string& domain : domains) {
        vmtas += "    <domain " + domain + ">\n        include " +
                 (box.fragments() / "high-rep-pool" / isp / (vmta + ".conf")).string() +
                 "\n    </domain>\n";
      }
    }
    vmtas += "</virtual-mta>\n";
  }
  const std::size_t third = init.out.find("# 3. ");
  ASSERT_NE(third, std::string::npos) << init.out;
  EXPECT_EQ(init.out.substr(third), vmtas);
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

// The clock going back by hours (a replay, a bad NTP step): the cycle runs, counts each record
// once, and changes nothing on a window that ends before the last change.
TEST(LoopE2E, AClockGoingBackChangesNothingAndCountsNothingTwice) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  ASSERT_EQ(box.sluice(kNow, {"once"}).exit_code, 0);
  const std::string cut = slurp(box.fragment());
  ASSERT_TRUE(contains(cut, "\nmax-smtp-out 4\n")) << cut;
  const Totals first = bucket_totals(box.database());
  ASSERT_EQ(first.delivered + first.deferred, 600) << first;

  // Three hours back, with heavy throttling logged "then": no decision on it.
  const Time back = kNow - 3 * kHour;
  append_file(box.log(), traffic(back - kHour, back, 600, 300, 600));
  const ProcessResult once = box.sluice(back, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_EQ(slurp(box.fragment()), cut);
  EXPECT_EQ(box.calls().size(), 2u) << "only the first cycle's test config and reload";
  const Totals after = bucket_totals(box.database());
  EXPECT_EQ(after.delivered + after.deferred, 1200) << after;

  // Back at the right time: nothing read twice, nothing decided on the old records.
  ASSERT_EQ(box.sluice(kNow + 5 * kMinute, {"once"}).exit_code, 0);
  EXPECT_EQ(bucket_totals(box.database()), after);
  EXPECT_EQ(box.decisions(kNow + 5 * kMinute).size(), 1u);
}

}  // namespace
