// End-to-end: tiers from `[reputation] command` with the real build/sluice binary and a script
// standing in for the operator's reputation command.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "loop_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::append_file;
using sluice::e2e::contains;
using sluice::e2e::kExecutable;
using sluice::e2e::kHour;
using sluice::e2e::kMinute;
using sluice::e2e::kNow;
using sluice::e2e::lines_of;
using sluice::e2e::ProcessResult;
using sluice::e2e::replace_file;
using sluice::e2e::Sandbox;
using sluice::e2e::slurp;
using sluice::e2e::write_file;

// Prints the answer file; fails while the file `fails` exists. Records each call's arguments.
void install_reputation_command(const Sandbox& box) {
  const std::string work = box.work().string();
  replace_file(box.work() / "bin" / "rep",
               "#!/bin/sh\n"
               "printf '%s\\n' \"$*\" >> '" +
                   work +
                   "/rep-calls'\n"
                   "if [ -e '" +
                   work +
                   "/fails' ]; then echo 'rep: API quota exceeded' >&2; exit 3; fi\n"
                   "cat '" +
                   work + "/rep-answer'\n",
               kExecutable);
  append_file(box.config(), "\n[reputation]\ncommand = [\"" + work +
                                "/bin/rep\", \"--all\"]\ninterval_minutes = 60\n");
}

TEST(ReputationE2E, TheCommandsTierAppliesIsShownAndSurvivesAFailure) {
  Sandbox box;  // high-rep-pool at gmail, tier high in the configuration
  install_reputation_command(box);
  const std::string rep = (box.work() / "bin" / "rep").string();
  write_file(box.work() / "rep-answer",
             "{\"pool\": \"high-rep-pool\", \"isp\": \"gmail\", \"tier\": \"medium\"}\n"
             "{\"pool\": \"other-pool\", \"isp\": \"gmail\", \"tier\": \"low\"}\n");

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.err, "reputation command " + rep +
                                     ": line 2: pool 'other-pool' is not managed: ignored"))
      << once.err;
  EXPECT_TRUE(contains(once.out, "(tier medium)")) << once.out;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 3\n"));  // gmail medium: 3-5
  EXPECT_EQ(lines_of(slurp(box.work() / "rep-calls")), std::vector<std::string>{"--all"});

  const auto shown = [&](std::int64_t now) {
    const Json status = box.json(now, "status");
    EXPECT_EQ(status["pools"][0]["tier"], "medium") << status.dump(2);
    EXPECT_EQ(status["pools"][0]["tier_source"], "reputation command") << status.dump(2);
    EXPECT_EQ(status["pools"][0]["cap"], 5) << status.dump(2);
    const ProcessResult explain = box.sluice(now, {"explain", "high-rep-pool", "gmail"});
    EXPECT_TRUE(contains(explain.out, "tier medium (reputation command), cap 5")) << explain.out;
  };
  shown(kNow);

  // Within the interval the command does not run again.
  ASSERT_EQ(box.sluice(kNow + 30 * kMinute, {"once"}).exit_code, 0);
  EXPECT_EQ(lines_of(slurp(box.work() / "rep-calls")).size(), 1u);

  // A failing run is a warning; the last known tier stays.
  write_file(box.work() / "fails", "");
  const ProcessResult failed = box.sluice(kNow + kHour, {"once"});
  ASSERT_EQ(failed.exit_code, 0) << failed.err;
  EXPECT_TRUE(contains(failed.err,
                       "reputation command failed, the last known tiers stay in force: "
                       "reputation command " +
                           rep + " failed (exit 3): rep: API quota exceeded"))
      << failed.err;
  EXPECT_EQ(lines_of(slurp(box.work() / "rep-calls")).size(), 2u);
  shown(kNow + kHour);
}

}  // namespace
