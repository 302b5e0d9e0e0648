// End-to-end: overrides and the kill switch with the real build/sluice binary. `sluice override`
// edits the override file, the next `once` (driven by --now, against the fake `pmta` of the
// Sandbox) applies it, and status, history and check show it.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.h"
#include "loop_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::append_file;
using sluice::e2e::bucket_totals;
using sluice::e2e::contains;
using sluice::e2e::count_records;
using sluice::e2e::iso;
using sluice::e2e::kHeader;
using sluice::e2e::kHour;
using sluice::e2e::kMinute;
using sluice::e2e::kNow;
using sluice::e2e::lines_of;
using sluice::e2e::ProcessResult;
using sluice::e2e::run_process;
using sluice::e2e::Sandbox;
using sluice::e2e::slurp;
using sluice::e2e::snapshot;
using sluice::e2e::snapshot_differences;
using sluice::e2e::TempDir;
using sluice::e2e::Time;
using sluice::e2e::traffic;
using sluice::e2e::write_file;

const fs::perms kFile = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read;  // 0644
const std::vector<std::string> kOneReload = {"test config", "reload"};
const std::vector<std::string> kTwoReloads = {"test config", "reload", "test config", "reload"};

// The Sandbox's [state] overrides.
fs::path overrides_path(const Sandbox& box) {
  return box.work() / "overrides.toml";
}

fs::path vmta_fragment(const Sandbox& box, const std::string& vmta) {
  return box.fragments() / "high-rep-pool" / "gmail" / (vmta + ".conf");
}

// A first cycle on clean traffic: the pair gets its fragment with the tier's start, 6.
void first_cycle_at_six(const Sandbox& box, Time at) {
  write_file(box.log(), kHeader + traffic(at - kHour, at, 200, 0));
  const ProcessResult first = box.sluice(at, {"once"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 6\n")) << slurp(box.fragment());
  ASSERT_EQ(box.calls(), kOneReload);
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : lines_of(text)) {
    if (line.starts_with(prefix)) out.push_back(line);
  }
  return out;
}

Json last(const Json& array) {
  EXPECT_FALSE(array.empty());
  return array.empty() ? Json() : array.back();
}

// `sluice --json override list`.
Json override_list(const Sandbox& box, Time now) {
  const ProcessResult r = box.sluice(now, {"--json", "override", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out);
}

// ---- A pin ---------------------------------------------------------------------------------

TEST(OverrideE2E, APinAppliesInTheNextCycleAndShowsInStatus) {
  Sandbox box;
  first_cycle_at_six(box, kNow - 10 * kMinute);
  const std::string pin_reason =
      "pinned to 3 by override (incident 4711, until " + iso(kNow + 2 * kHour) + ")";

  const ProcessResult pin =
      box.sluice(kNow, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out", "3",
                        "--reason", "incident 4711", "--until", "2h"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(lines_of(pin.out),
            (std::vector<std::string>{
                "added the [[override]] for pool 'high-rep-pool', ISP 'gmail' (line 1)",
                overrides_path(box).string() + " written: it takes effect at the next cycle"}));
  EXPECT_EQ(slurp(overrides_path(box)),
            "[[override]]\npool = \"high-rep-pool\"\nisp = \"gmail\"\nmax_smtp_out = 3\n"
            "until = \"" +
                iso(kNow + 2 * kHour) + "\"\nreason = \"incident 4711\"\n");
  // Nothing happens before the next cycle.
  EXPECT_EQ(box.calls(), kOneReload);
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 6\n"));

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out, "high-rep-pool/gmail override 6 -> 3: " + pin_reason)) << once.out;
  const std::string fragment = slurp(box.fragment());
  EXPECT_TRUE(contains(fragment, "\nmax-smtp-out 3\n")) << fragment;
  EXPECT_TRUE(contains(fragment, "\nbackoff-max-smtp-out 1\n")) << fragment;
  EXPECT_EQ(box.calls(), kTwoReloads);

  const Json history = box.json(kNow, "history");
  const Json decision = last(history["decisions"]);
  EXPECT_EQ(decision["rule"], "override");
  EXPECT_EQ(decision["old_value"], 6);
  EXPECT_EQ(decision["new_value"], 3);
  EXPECT_EQ(decision["reason"], pin_reason);
  EXPECT_EQ(decision["applied"], true);
  EXPECT_EQ(decision["pmta"], "reloaded");

  const Json status = box.json(kNow, "status");
  ASSERT_EQ(status["pools"].size(), 1u) << status.dump(2);
  const Json& row = status["pools"][0];
  EXPECT_EQ(row["max_smtp_out"], 3);
  EXPECT_EQ(row["override"], pin_reason);
  EXPECT_EQ(row["last_change"]["rule"], "override");
  const Json& entries = status["overrides"]["entries"];
  ASSERT_EQ(entries.size(), 1u) << status.dump(2);
  EXPECT_EQ(entries[0]["pool"], "high-rep-pool");
  EXPECT_EQ(entries[0]["isp"], "gmail");
  EXPECT_EQ(entries[0]["vmta"], nullptr);
  EXPECT_EQ(entries[0]["kind"], "pin");
  EXPECT_EQ(entries[0]["max_smtp_out"], 3);
  EXPECT_EQ(entries[0]["until"], iso(kNow + 2 * kHour));
  EXPECT_EQ(entries[0]["in_force"], true);
  EXPECT_EQ(entries[0]["reason"], "incident 4711");
  EXPECT_EQ(status["overrides"]["error"], nullptr);

  // The pin holds: the next cycle changes nothing.
  const ProcessResult next = box.sluice(kNow + kMinute, {"once"});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_TRUE(contains(next.out, "no change")) << next.out;
  EXPECT_EQ(box.calls(), kTwoReloads);
}

TEST(OverrideE2E, ExplainShowsThePinWithItsReasonAndExpiry) {
  Sandbox box;
  first_cycle_at_six(box, kNow - 10 * kMinute);
  ASSERT_EQ(box.sluice(kNow, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out", "3",
                              "--reason", "incident 4711", "--until", "2h"})
                .exit_code,
            0);
  ASSERT_EQ(box.sluice(kNow, {"once"}).exit_code, 0);
  const std::string pin_reason =
      "pinned to 3 by override (incident 4711, until " + iso(kNow + 2 * kHour) + ")";

  const ProcessResult text = box.sluice(kNow, {"explain", "high-rep-pool", "gmail"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "override: " + pin_reason + "\n")) << text.out;
  EXPECT_TRUE(contains(text.out, "next: nothing while " + pin_reason + "\n")) << text.out;

  const ProcessResult json = box.sluice(kNow, {"--json", "explain", "high-rep-pool", "gmail"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Json explained = Json::parse(json.out);
  EXPECT_EQ(explained["max_smtp_out"], 3);
  EXPECT_EQ(explained["override"], pin_reason);
  EXPECT_EQ(explained["last_decision"]["rule"], "override");

  const ProcessResult unknown = box.sluice(kNow, {"explain", "high-rep-pool", "yahoo"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err,
            "sluice: error: pool 'high-rep-pool' with ISP 'yahoo' is not managed (see sluice "
            "status)\n");
}

TEST(OverrideE2E, AnExpiredPinResumesControlFromThePinnedValue) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 200, 0));
  ASSERT_EQ(box.sluice(kNow, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out", "3",
                              "--reason", "incident 4711", "--until", "2h"})
                .exit_code,
            0);
  const ProcessResult pinned = box.sluice(kNow, {"once"});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.err;
  ASSERT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 3\n"));
  ASSERT_EQ(box.calls(), kOneReload);
  const std::string fragment = slurp(box.fragment());

  // Three hours later the pin has expired: the loop takes over from 3, with no jump back to 6.
  const Time expired = kNow + 3 * kHour;
  const ProcessResult resumed = box.sluice(expired, {"once"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const std::string end = "no longer pinned to 3 by override (incident 4711, until " +
                          iso(kNow + 2 * kHour) + "): the policy resumes from 3";
  EXPECT_TRUE(contains(resumed.out, "high-rep-pool/gmail override: " + end)) << resumed.out;
  EXPECT_EQ(box.calls(), kOneReload);
  EXPECT_EQ(slurp(box.fragment()), fragment);

  const Json history = box.json(expired, "history");
  ASSERT_EQ(history["decisions"].size(), 2u) << history.dump(2);
  const Json& ended = history["decisions"][1];
  EXPECT_EQ(ended["rule"], "override");
  EXPECT_EQ(ended["old_value"], 3);
  EXPECT_EQ(ended["new_value"], 3);
  EXPECT_EQ(ended["reason"], end);
  EXPECT_EQ(ended["pmta"], "no fragment change");
  ASSERT_EQ(history["overrides"]["entries"].size(), 1u);
  EXPECT_EQ(history["overrides"]["entries"][0]["in_force"], false);
  const Json status = box.json(expired, "status");
  EXPECT_EQ(status["pools"][0]["override"], nullptr);
  EXPECT_EQ(status["pools"][0]["max_smtp_out"], 3);

  // A 421 burst (10% throttled: a 30% cut) cuts from 3: floor(3 * 0.7) = 2, not 6 -> 4.
  append_file(box.log(), traffic(expired, expired + kHour, 600, 60, 200));
  const ProcessResult cut = box.sluice(expired + kHour, {"once"});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_TRUE(contains(cut.out, "high-rep-pool/gmail cut 3 -> 2")) << cut.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 2\n")) << slurp(box.fragment());
  EXPECT_EQ(box.calls(), kTwoReloads);
  const Json decision = last(box.decisions(expired + kHour));
  EXPECT_EQ(decision["rule"], "cut");
  EXPECT_EQ(decision["old_value"], 3);
  EXPECT_EQ(decision["new_value"], 2);
}

// ---- The kill switch ---------------------------------------------------------------------

TEST(OverrideE2E, FreezeAllStopsEveryChangeWhileSignalsAccumulate) {
  Sandbox box;
  first_cycle_at_six(box, kNow - 2 * kHour);
  const std::string clean = slurp(box.log()).substr(std::string(kHeader).size());

  const ProcessResult freeze =
      box.sluice(kNow, {"override", "freeze", "--all", "--reason", "migration"});
  ASSERT_EQ(freeze.exit_code, 0) << freeze.err;
  EXPECT_EQ(slurp(overrides_path(box)), "[global]\nfreeze = true\nreason = \"migration\"\n");

  const std::string burst = traffic(kNow - kHour, kNow, 600, 60, 200);
  append_file(box.log(), burst);
  const auto fragments_before = snapshot(box.fragments());
  const ProcessResult frozen = box.sluice(kNow, {"once"});
  ASSERT_EQ(frozen.exit_code, 0) << frozen.err;
  EXPECT_TRUE(
      contains(frozen.out, "high-rep-pool/gmail override: frozen by the kill switch (migration)"))
      << frozen.out;
  EXPECT_FALSE(contains(frozen.out, " cut ")) << frozen.out;
  EXPECT_EQ(box.calls(), kOneReload);
  EXPECT_EQ(snapshot_differences(fragments_before, snapshot(box.fragments())), "");
  // The burst is recorded all the same.
  EXPECT_EQ(bucket_totals(box.database()), count_records(clean + burst));
  const Json status = box.json(kNow, "status");
  EXPECT_EQ(status["pools"][0]["max_smtp_out"], 6);
  EXPECT_EQ(status["pools"][0]["override"], "frozen by the kill switch (migration)");
  EXPECT_EQ(status["overrides"]["freeze_all"], true);
  EXPECT_EQ(status["overrides"]["freeze_reason"], "migration");

  // Released, the next cycle acts on the signals recorded while frozen.
  const ProcessResult unfreeze = box.sluice(kNow + kMinute, {"override", "unfreeze", "--all"});
  ASSERT_EQ(unfreeze.exit_code, 0) << unfreeze.err;
  EXPECT_EQ(slurp(overrides_path(box)), "[global]\nfreeze = false\n");
  const ProcessResult released = box.sluice(kNow + kMinute, {"once"});
  ASSERT_EQ(released.exit_code, 0) << released.err;
  EXPECT_TRUE(contains(released.out, "high-rep-pool/gmail cut 6 -> 4")) << released.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 4\n")) << slurp(box.fragment());
  EXPECT_EQ(box.calls(), kTwoReloads);
  EXPECT_EQ(bucket_totals(box.database()), count_records(clean + burst));
}

// ---- A broken override file ----------------------------------------------------------------

// A pin of 3 in force, then a hand edit that would pin 5, broken on line `broken_line`.
struct BrokenFile {
  const char* name;
  std::string text;
  int broken_line;
  std::string problem;  // what follows "FILE:LINE: " in the error
};

class BrokenOverrideFileE2E : public testing::TestWithParam<BrokenFile> {};

TEST_P(BrokenOverrideFileE2E, KeepsThePreviousOverridesAndFailsOnlyCheck) {
  const BrokenFile& c = GetParam();
  Sandbox box;
  const std::string path = overrides_path(box).string();
  write_file(box.log(), kHeader + traffic(kNow - 2 * kHour, kNow - kHour, 200, 0));
  ASSERT_EQ(box.sluice(kNow - kHour, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out",
                                      "3", "--reason", "incident 4711"})
                .exit_code,
            0);
  const std::string valid = slurp(overrides_path(box));
  ASSERT_EQ(box.sluice(kNow - kHour, {"once"}).exit_code, 0);
  ASSERT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 3\n"));
  ASSERT_EQ(box.calls(), kOneReload);
  const std::string fragment = slurp(box.fragment());

  write_file(overrides_path(box), c.text);
  const std::string error = path + ":" + std::to_string(c.broken_line) + ": " + c.problem;
  const std::string burst = traffic(kNow - kHour, kNow, 600, 60, 200);
  append_file(box.log(), burst);
  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_EQ(lines_of(once.err),
            std::vector<std::string>{"sluice: warning: override file rejected, the last valid "
                                     "overrides stay in force: " +
                                     error})
      << once.err;
  // The pin of 3 is still in force: neither the burst's cut nor the broken file's 5.
  EXPECT_TRUE(contains(once.out, "no change (600 new records)")) << once.out;
  EXPECT_EQ(slurp(box.fragment()), fragment);
  EXPECT_EQ(box.calls(), kOneReload);
  EXPECT_EQ(bucket_totals(box.database()),
            count_records(slurp(box.log()).substr(std::string(kHeader).size())));

  const Json status = box.json(kNow, "status");
  EXPECT_EQ(status["pools"][0]["max_smtp_out"], 3);
  EXPECT_EQ(status["pools"][0]["override"], "pinned to 3 by override (incident 4711)");
  EXPECT_EQ(status["overrides"]["error"], error);
  ASSERT_EQ(status["overrides"]["entries"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["overrides"]["entries"][0]["max_smtp_out"], 3);
  EXPECT_EQ(box.json(kNow, "history")["overrides"]["error"], error);

  const ProcessResult check = box.sluice(kNow, {"check"});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_EQ(lines_starting(check.out, "FAIL override file"),
            std::vector<std::string>{"FAIL override file: " + error})
      << check.out;

  // The same file made valid again: check has nothing to say about it.
  write_file(overrides_path(box), valid);
  const ProcessResult fixed = box.sluice(kNow, {"check"});
  EXPECT_EQ(lines_starting(fixed.out, "FAIL override file"), std::vector<std::string>{})
      << fixed.out;
  EXPECT_EQ(lines_starting(fixed.out, "ok   override file"),
            std::vector<std::string>{"ok   override file " + path +
                                     ": 1 overrides in force, 0 expired, 0 tiers"})
      << fixed.out;
}

INSTANTIATE_TEST_SUITE_P(
    OverrideE2E, BrokenOverrideFileE2E,
    testing::Values(
        BrokenFile{"UnknownIsp",
                   "[[override]]\npool = \"high-rep-pool\"\nisp = \"gmail\"\nmax_smtp_out = 5\n"
                   "reason = \"incident 4711\"\n\n"
                   "[[override]]\npool = \"high-rep-pool\"\nisp = \"yahoo\"\nmax_smtp_out = 2\n"
                   "reason = \"yahoo too\"\n",
                   7, "pool 'high-rep-pool' has no ISP 'yahoo' (its ISPs: gmail)"},
        BrokenFile{"TomlSyntaxError",
                   "[[override]]\npool = \"high-rep-pool\"\nisp = \"gmail\"\nmax_smtp_out = = 5\n"
                   "reason = \"incident 4711\"\n",
                   4, "Error while parsing value: could not determine value type"}),
    [](const testing::TestParamInfo<BrokenFile>& info) { return info.param.name; });

// ---- Files that group or others may write --------------------------------------------------

const fs::perms kGroupOrOthersWrite = fs::perms::group_write | fs::perms::others_write;

std::string refused(const std::string& path) {
  return path +
         ": writable by group or others (mode 0666); sluice refuses it because it steers "
         "PowerMTA's configuration: chmod go-w " +
         path;
}

// Refused like a broken file: the last valid overrides stay in force, with a warning every cycle.
TEST(OverrideE2E, AnOverrideFileOthersMayWriteIsRefusedLikeABrokenOne) {
  Sandbox box;
  const std::string path = overrides_path(box).string();
  write_file(box.log(), kHeader + traffic(kNow - 2 * kHour, kNow - kHour, 200, 0));
  ASSERT_EQ(box.sluice(kNow - kHour, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out",
                                      "3", "--reason", "incident 4711"})
                .exit_code,
            0);
  ASSERT_EQ(box.sluice(kNow - kHour, {"once"}).exit_code, 0);
  ASSERT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 3\n"));
  const std::string fragment = slurp(box.fragment());

  // A valid file that would pin 5, but anyone may write it.
  write_file(overrides_path(box),
             "[[override]]\npool = \"high-rep-pool\"\nisp = \"gmail\"\nmax_smtp_out = 5\n"
             "reason = \"incident 4711\"\n");
  fs::permissions(overrides_path(box), kGroupOrOthersWrite, fs::perm_options::add);
  const std::string error = refused(path);
  for (const Time at : {kNow, kNow + kMinute}) {
    const ProcessResult once = box.sluice(at, {"once"});
    EXPECT_EQ(once.exit_code, 0) << once.err;
    EXPECT_EQ(lines_of(once.err),
              std::vector<std::string>{"sluice: warning: override file rejected, the last valid "
                                       "overrides stay in force: " +
                                       error})
        << once.err;
  }
  EXPECT_EQ(slurp(box.fragment()), fragment);
  EXPECT_EQ(box.calls(), kOneReload);
  const Json status = box.json(kNow + kMinute, "status");
  EXPECT_EQ(status["pools"][0]["override"], "pinned to 3 by override (incident 4711)");
  EXPECT_EQ(status["overrides"]["error"], error);
  const ProcessResult check = box.sluice(kNow + kMinute, {"check"});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_EQ(lines_starting(check.out, "FAIL override file"),
            std::vector<std::string>{"FAIL override file: " + error})
      << check.out;

  // chmod go-w, as the message says: the file is in force at the next cycle.
  fs::permissions(overrides_path(box), kGroupOrOthersWrite, fs::perm_options::remove);
  const ProcessResult fixed = box.sluice(kNow + 2 * kMinute, {"once"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_EQ(fixed.err, "");
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 5\n")) << slurp(box.fragment());
}

// `sluice override` sets the mode itself: never writable by group or others, whatever the umask
// or the mode it found; a mode without those bits is kept.
TEST(OverrideE2E, OverrideLeavesTheFileWritableByItsOwnerOnlyWhateverTheUmask) {
  Sandbox box;
  const std::string path = overrides_path(box).string();
  const mode_t saved = ::umask(0);  // inherited by the command
  const ProcessResult created =
      box.sluice(kNow, {"override", "freeze", "high-rep-pool", "--reason", "audit"});
  ::umask(saved);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(fs::status(path).permissions(), kFile);

  fs::permissions(path, kGroupOrOthersWrite, fs::perm_options::add);
  const ProcessResult rewritten = box.sluice(
      kNow, {"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out", "3", "--reason", "x"});
  ASSERT_EQ(rewritten.exit_code, 0) << rewritten.err;
  EXPECT_TRUE(contains(rewritten.out,
                       path + ": was writable by group or others (mode 0666), now mode 0644\n"))
      << rewritten.out;
  EXPECT_EQ(fs::status(path).permissions(), kFile);
  EXPECT_EQ(override_list(box, kNow)["error"], nullptr);

  const fs::perms owner_only = fs::perms::owner_read | fs::perms::owner_write;
  fs::permissions(path, owner_only);
  const ProcessResult cleared = box.sluice(kNow, {"override", "clear", "high-rep-pool"});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
  EXPECT_FALSE(contains(cleared.out, "was writable")) << cleared.out;
  EXPECT_EQ(fs::status(path).permissions(), owner_only);
}

// The configuration, wherever it is loaded: one line, exit 1, nothing done.
TEST(OverrideE2E, AConfigOthersMayWriteIsRefusedByEveryCommand) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  fs::permissions(box.config(), kGroupOrOthersWrite, fs::perm_options::add);
  const std::string error = "sluice: error: " + refused(box.config().string());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"once"},
        std::vector<std::string>{"report", "--format", "json", box.log().string()},
        std::vector<std::string>{"override", "freeze", "--all"}}) {
    const ProcessResult r = box.sluice(kNow, args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.out << r.err;
    EXPECT_EQ(lines_of(r.err), std::vector<std::string>{error}) << args[0];
    EXPECT_EQ(r.out, "") << args[0];
  }
  EXPECT_FALSE(fs::exists(box.fragment()));
  EXPECT_FALSE(fs::exists(box.calls_path()));
  EXPECT_FALSE(fs::exists(overrides_path(box)));
}

// ---- Tiers and VMTAs -----------------------------------------------------------------------

TEST(OverrideE2E, ATierEntryLowersTheCapAtOnce) {
  Sandbox box;
  // The operator's own value, 8, under the cap 10 of tier high at gmail.
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), "# set by hand\nmax-smtp-out 8\n");
  write_file(box.log(), kHeader + traffic(kNow - 2 * kHour, kNow - kHour, 200, 0));
  const ProcessResult first = box.sluice(kNow - kHour, {"once"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(box.json(kNow - kHour, "status")["pools"][0]["max_smtp_out"], 8);
  const std::size_t calls_before = box.calls().size();

  const ProcessResult tier = box.sluice(
      kNow, {"override", "tier", "high-rep-pool", "gmail", "low", "--source", "postmaster tools"});
  ASSERT_EQ(tier.exit_code, 0) << tier.err;
  EXPECT_EQ(slurp(overrides_path(box)),
            "[[tier]]\npool = \"high-rep-pool\"\nisp = \"gmail\"\ntier = \"low\"\n"
            "source = \"postmaster tools\"\n");

  // Tier low at gmail is [1, 2]: 8 is above its cap, so it goes to 2 in this cycle.
  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out,
                       "high-rep-pool/gmail tier_cap 8 -> 2: above the cap 2 of tier "
                       "low at gmail"))
      << once.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 2\n")) << slurp(box.fragment());
  const std::vector<std::string> calls = box.calls();
  ASSERT_EQ(calls.size(), calls_before + 2) << slurp(box.calls_path());
  EXPECT_EQ(calls[calls_before], "test config");
  EXPECT_EQ(calls[calls_before + 1], "reload");
  const Json decision = last(box.decisions(kNow));
  EXPECT_EQ(decision["rule"], "tier_cap");
  EXPECT_EQ(decision["old_value"], 8);
  EXPECT_EQ(decision["new_value"], 2);

  const Json status = box.json(kNow, "status");
  const Json& row = status["pools"][0];
  EXPECT_EQ(row["tier"], "low");
  EXPECT_EQ(row["tier_source"], "postmaster tools");
  EXPECT_EQ(row["cap"], 2);
  EXPECT_EQ(row["max_smtp_out"], 2);
  ASSERT_EQ(status["overrides"]["tiers"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["overrides"]["tiers"][0]["tier"], "low");
}

TEST(OverrideE2E, AVmtaPinWritesItsOwnFragmentAndItsClearLeavesCommentsOnly) {
  Sandbox box;
  first_cycle_at_six(box, kNow - kHour);
  const std::string pool_fragment = slurp(box.fragment());
  const fs::path vmta = vmta_fragment(box, "gmail-ip-2");

  const ProcessResult pin =
      box.sluice(kNow, {"override", "pin", "high-rep-pool", "gmail", "--vmta", "gmail-ip-2",
                        "--max-smtp-out", "2", "--reason", "blocklist"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  // Written with the pool's first fragment, so that PowerMTA's include finds it: comments only.
  ASSERT_TRUE(fs::exists(vmta));
  EXPECT_FALSE(contains(slurp(vmta), "\nmax-smtp-out")) << slurp(vmta);

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  ASSERT_TRUE(fs::exists(vmta)) << once.out;
  const std::string pinned = slurp(vmta);
  EXPECT_TRUE(contains(pinned, "\nmax-smtp-out 2\n")) << pinned;
  EXPECT_TRUE(contains(pinned, "\nbackoff-max-smtp-out 1\n")) << pinned;
  EXPECT_EQ(slurp(box.fragment()), pool_fragment);
  EXPECT_FALSE(contains(slurp(vmta_fragment(box, "gmail-ip-1")), "\nmax-smtp-out"));
  EXPECT_EQ(box.calls(), kTwoReloads);
  const Json decision = last(box.decisions(kNow));
  EXPECT_EQ(decision["vmta"], "gmail-ip-2");
  EXPECT_EQ(decision["rule"], "override");
  EXPECT_EQ(decision["old_value"], 6);
  EXPECT_EQ(decision["new_value"], 2);
  EXPECT_EQ(decision["reason"], "VMTA gmail-ip-2 pinned to 2 by override (blocklist)");
  const Json status = box.json(kNow, "status");
  EXPECT_EQ(status["pools"][0]["max_smtp_out"], 6);
  EXPECT_EQ(status["pools"][0]["override"], nullptr);
  EXPECT_EQ(status["pools"][0]["vmta_overrides"],
            Json({{"gmail-ip-2", "pinned to 2 by override (blocklist)"}}));

  const ProcessResult clear = box.sluice(
      kNow + kMinute, {"override", "clear", "high-rep-pool", "gmail", "--vmta", "gmail-ip-2"});
  ASSERT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(slurp(overrides_path(box)), "");

  const ProcessResult cleared = box.sluice(kNow + 2 * kMinute, {"once"});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
  ASSERT_TRUE(fs::exists(vmta));
  const std::string inherited = slurp(vmta);
  EXPECT_FALSE(contains(inherited, "max-smtp-out")) << inherited;
  const std::vector<std::string> lines = lines_of(inherited);
  EXPECT_FALSE(lines.empty());
  for (const std::string& line : lines) EXPECT_TRUE(line.starts_with("#")) << inherited;
  EXPECT_EQ(slurp(box.fragment()), pool_fragment);
  EXPECT_EQ(box.calls().size(), 6u) << slurp(box.calls_path());
  const Json ended = last(box.decisions(kNow + 2 * kMinute));
  EXPECT_EQ(ended["vmta"], "gmail-ip-2");
  EXPECT_EQ(ended["rule"], "override");
  EXPECT_EQ(ended["old_value"], 2);
  EXPECT_EQ(ended["new_value"], 6);
  EXPECT_EQ(ended["reason"],
            "VMTA gmail-ip-2: no override in force any more; it inherits the pool's 6");
  EXPECT_EQ(ended["pmta"], "reloaded");
  EXPECT_EQ(box.json(kNow + 2 * kMinute, "status")["pools"][0]["vmta_overrides"], Json::object());
}

// ---- sluice override edits the file in place -----------------------------------------------

constexpr const char* kFileHead =
    "# Overrides for the gmail incident, kept by the on-call.\n"
    "# Ask #mail-ops before removing one.\n"
    "\n"
    "[global]\n"
    "freeze = false   # flipped in emergencies only\n"
    "\n"
    "# Gmail throttles the whole pool since 09:00.\n"
    "[[override]]  # set by alice\n";
constexpr const char* kFileGmailBody =
    "pool = \"high-rep-pool\"\n"
    "isp = \"gmail\"\n"
    "max_smtp_out = 4\n"
    "reason = \"incident 4711\"\n";
constexpr const char* kFileTail =
    "\n"
    "# One IP on a blocklist; delisting requested.\n"
    "[[override]]\n"
    "pool   = \"high-rep-pool\"\n"
    "isp    = \"gmail\"\n"
    "vmta   = \"gmail-ip-2\"   # the listed one\n"
    "max_smtp_out = 2\n"
    "reason = 'blocklist'\n"
    "\n"
    "# end of file\n";

TEST(OverrideE2E, OverrideReplacesOnlyItsEntryAndKeepsEveryOtherByte) {
  Sandbox box;
  write_file(overrides_path(box), std::string(kFileHead) + kFileGmailBody + kFileTail);

  const ProcessResult pin = box.sluice(kNow, {"override", "pin", "high-rep-pool", "gmail",
                                              "--max-smtp-out", "3", "--reason", "incident 4712"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(lines_of(pin.out),
            (std::vector<std::string>{
                "replaced the [[override]] for pool 'high-rep-pool', ISP 'gmail' (line 8)",
                overrides_path(box).string() + " written: it takes effect at the next cycle"}));
  EXPECT_EQ(slurp(overrides_path(box)),
            std::string(kFileHead) +
                "pool = \"high-rep-pool\"\nisp = \"gmail\"\nmax_smtp_out = 3\n"
                "reason = \"incident 4712\"\n" +
                kFileTail);
  const Json entries = override_list(box, kNow)["entries"];
  ASSERT_EQ(entries.size(), 2u) << entries.dump(2);
  EXPECT_EQ(entries[0]["max_smtp_out"], 3);
  EXPECT_EQ(entries[0]["reason"], "incident 4712");
  EXPECT_EQ(entries[1]["vmta"], "gmail-ip-2");
  EXPECT_EQ(entries[1]["max_smtp_out"], 2);
}

struct RefusedEdit {
  const char* name;
  std::vector<std::string> args;  // after "override"
  int exit_code;
  std::string message;  // the one stderr line
};

class OverrideRefusedE2E : public testing::TestWithParam<RefusedEdit> {};

TEST_P(OverrideRefusedE2E, WritesNothingAndSaysWhyInOneLine) {
  const RefusedEdit& c = GetParam();
  Sandbox box;
  const std::string text = std::string(kFileHead) + kFileGmailBody + kFileTail;
  write_file(overrides_path(box), text);
  const auto mtime = fs::last_write_time(overrides_path(box));

  std::vector<std::string> args = {"override"};
  args.insert(args.end(), c.args.begin(), c.args.end());
  const ProcessResult r = box.sluice(kNow, args);
  EXPECT_EQ(r.exit_code, c.exit_code) << r.out << r.err;
  std::string message = c.message;
  if (const std::size_t at = message.find("FILE"); at != std::string::npos) {
    message.replace(at, 4, overrides_path(box).string());
  }
  EXPECT_EQ(lines_of(r.err), std::vector<std::string>{message}) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(slurp(overrides_path(box)), text);
  EXPECT_EQ(fs::last_write_time(overrides_path(box)), mtime);
}

INSTANTIATE_TEST_SUITE_P(
    OverrideE2E, OverrideRefusedE2E,
    testing::Values(
        RefusedEdit{"UnknownPool",
                    {"pin", "no-such-pool", "gmail", "--max-smtp-out", "3", "--reason", "x"},
                    1,
                    "sluice: error: FILE:24: unknown pool 'no-such-pool' (the configuration's "
                    "pools: high-rep-pool) (nothing was written)"},
        RefusedEdit{"ValueZero",
                    {"pin", "high-rep-pool", "gmail", "--max-smtp-out", "0", "--reason", "x"},
                    2,
                    "sluice: usage error: --max-smtp-out: Value 0 not in range 1 to 1000 (see "
                    "sluice --help)"},
        RefusedEdit{"UntilInThePast",
                    {"pin", "high-rep-pool", "gmail", "--max-smtp-out", "3", "--reason", "x",
                     "--until", "2026-11-27T11:00:00Z"},
                    2,
                    "sluice: error: --until: 2026-11-27T11:00:00Z is not after now "
                    "(2026-11-27T12:00:00Z)"}),
    [](const testing::TestParamInfo<RefusedEdit>& info) { return info.param.name; });

// ---- The shipped examples ------------------------------------------------------------------

TEST(OverrideE2E, TheShippedExamplesAgree) {
  TempDir tmp;
  const fs::path source = SLUICE_SOURCE_DIR;
  const fs::path overrides = tmp.path() / "overrides.toml";
  fs::copy_file(source / "examples" / "overrides.toml", overrides);
  // A checkout made under umask 002 leaves it group-writable, which sluice refuses.
  fs::permissions(overrides, kFile);
  fs::create_directories(tmp.path() / "fragments");
  const auto quoted = [](const fs::path& p) { return "\"" + p.string() + "\""; };
  // The example's pools and ISPs as shipped; its /etc and /var paths moved under tmp.
  const std::vector<std::pair<std::string, std::string>> moved = {
      {"command = ", quoted(tmp.path() / "pmta")},
      {"accounting = ", "[" + quoted(tmp.path() / "acct-*.csv") + "]"},
      {"fragments = ", quoted(tmp.path() / "fragments")},
      {"config = ", quoted(tmp.path() / "pmta.conf")},
      {"database = ", quoted(tmp.path() / "state.db")},
      {"overrides = ", quoted(overrides)}};
  std::string config;
  std::size_t replaced = 0;
  for (std::string line : lines_of(slurp(source / "examples" / "sluice.toml"))) {
    for (const auto& [key, value] : moved) {
      if (line.starts_with(key)) {
        line = key + value;
        ++replaced;
      }
    }
    config += line + "\n";
  }
  ASSERT_EQ(replaced, moved.size());
  const fs::path config_path = tmp.path() / "sluice.toml";
  write_file(config_path, config);

  const ProcessResult list = run_process({SLUICE_BINARY, "--config", config_path.string(), "--now",
                                          iso(kNow), "--json", "override", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const Json shown = Json::parse(list.out);
  EXPECT_EQ(shown["error"], nullptr);
  EXPECT_EQ(shown["freeze_all"], false);
  const Json& entries = shown["entries"];
  ASSERT_EQ(entries.size(), 4u) << shown.dump(2);
  std::vector<std::string> described;
  for (const Json& e : entries) {
    described.push_back(e["pool"].get<std::string>() + "/" +
                        (e["isp"].is_null() ? "*" : e["isp"].get<std::string>()) + "/" +
                        (e["vmta"].is_null() ? "-" : e["vmta"].get<std::string>()) + " " +
                        e["kind"].get<std::string>() + " " + e["reason"].get<std::string>());
  }
  EXPECT_EQ(described,
            (std::vector<std::string>{
                "high-rep-pool/gmail/- pin incident 4711",
                "high-rep-pool/gmail/gmail-ip-2 pin IP listed on a blocklist, delisting requested",
                "bulk-pool/*/- freeze campaign audit",
                "bulk-pool/yahoo/- bounds Yahoo asked us to stay under 5 connections"}));
  // Each entry is listed with the line of its header in the file.
  std::vector<int> override_lines, tier_lines;
  const std::vector<std::string> file_lines = lines_of(slurp(overrides));
  for (std::size_t i = 0; i < file_lines.size(); ++i) {
    if (file_lines[i] == "[[override]]") override_lines.push_back(static_cast<int>(i + 1));
    if (file_lines[i] == "[[tier]]") tier_lines.push_back(static_cast<int>(i + 1));
  }
  ASSERT_EQ(override_lines.size(), 4u);
  ASSERT_EQ(tier_lines.size(), 1u);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i]["line"], override_lines[i]) << entries[i];
  }
  EXPECT_EQ(entries[0]["max_smtp_out"], 4);
  EXPECT_EQ(entries[0]["until"], "2026-12-01T00:00:00Z");
  EXPECT_EQ(entries[0]["in_force"], true);
  EXPECT_EQ(entries[1]["max_smtp_out"], 2);
  EXPECT_EQ(entries[3]["floor"], 2);
  EXPECT_EQ(entries[3]["ceiling"], 4);
  ASSERT_EQ(shown["tiers"].size(), 1u) << shown.dump(2);
  EXPECT_EQ(shown["tiers"][0], Json({{"pool", "high-rep-pool"},
                                     {"isp", "gmail"},
                                     {"tier", "medium"},
                                     {"source", "postmaster tools, 2026-11-27"},
                                     {"line", tier_lines[0]}}));
}

}  // namespace
