// The command line (cli/app.cpp) with the real binary: a mistyped time, duration or option is a
// usage error (exit 2, one line naming the option) before any file is opened.

#include <algorithm>
#include <string>
#include <vector>

#include "loop_support.h"

namespace sluice::e2e {
namespace {

struct UsageCase {
  std::vector<std::string> args;
  std::string message;  // a part of the one line on stderr
};

TEST(AppE2E, MistypedTimesDurationsAndOptionsAreUsageErrorsBeforeAnythingRuns) {
  Sandbox box;
  const std::vector<UsageCase> cases = {
      {{"report", "--since", "garbage"}, "--since: 'garbage' is neither a time"},
      {{"report", "--until", "2026-13-45"}, "--until: '2026-13-45' is neither a time"},
      {{"--now", "yesterday", "status"}, "--now: 'yesterday' is not a time"},
      {{"run", "--interval", "xyz"}, "--interval: 'xyz' is not a duration"},
      {{"run", "--interval", "0s"}, "--interval: '0s' is not a duration"},
      {{"history", "--since", "nope"}, "--since: 'nope' is neither a time"},
      {{"replay", "--from", "nope"}, "--from: 'nope' is neither a time"},
      {{"replay", "--to", "later"}, "--to: 'later' is neither a time"},
      {{"override", "pin", "high-rep-pool", "gmail", "--max-smtp-out", "5", "--until", "soon"},
       "--until: 'soon' is neither a time"},
      {{"override", "tier", "high-rep-pool", "gmail", "high", "--source", "x", "--vmta", "v1"},
       "not expected"},
  };
  for (const UsageCase& c : cases) {
    std::string line;
    for (const std::string& a : c.args) line += a + " ";
    SCOPED_TRACE(line);
    std::vector<std::string> argv = {SLUICE_BINARY, "--config", box.config().string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const ProcessResult r = run_process(argv);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, c.message)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(box.database())) << "the state database was opened";
  }
}

TEST(AppE2E, TimesAndDurationsInEveryFormStillWork) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 60, 0));
  for (const char* since : {"2h", "2026-11-27T09:00:00Z", "1795770000"}) {
    SCOPED_TRACE(since);
    const ProcessResult r =
        box.sluice(kNow, {"report", "--format", "json", "--since", since, box.log().string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

}  // namespace
}  // namespace sluice::e2e
