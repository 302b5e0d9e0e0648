// The [notify] hook with the real binary: a cut runs the command once with the event as JSON on
// its stdin; a failing hook is a warning and the cycle still succeeds.

#include <string>
#include <vector>

#include "loop_support.h"

namespace sluice::e2e {
namespace {

// A hook that appends what it reads to `events`, one JSON object per line.
fs::path install_hook(const Sandbox& box, const std::string& body) {
  const fs::path hook = box.work() / "bin" / "notify";
  replace_file(hook, "#!/bin/sh\n" + body + "\n", kExecutable);
  append_file(box.config(),
              "\n[notify]\ncommand = [\"" + hook.string() + "\", \"--team\", \"mail\"]\n");
  return hook;
}

TEST(NotifyE2E, ACutRunsTheHookWithTheEventOnStdin) {
  Sandbox box;
  const fs::path events = box.scratch() / "events";
  install_hook(
      box, "printf '%s ' \"$@\" >> '" + events.string() + "'\ncat >> '" + events.string() + "'");
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), "max-smtp-out 6\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  const std::vector<std::string> lines = lines_of(slurp(events));
  ASSERT_EQ(lines.size(), 1u) << slurp(events);
  ASSERT_TRUE(lines[0].starts_with("--team mail {")) << lines[0];
  const Json event = Json::parse(lines[0].substr(lines[0].find('{')));
  EXPECT_EQ(event["event"], "cut");
  EXPECT_EQ(event["pool"], "high-rep-pool");
  EXPECT_EQ(event["isp"], "gmail");
  EXPECT_EQ(event["old_value"], 6);
  EXPECT_EQ(event["new_value"], 4);
  EXPECT_EQ(event["at"], iso(kNow));

  // A quiet cycle tells nothing.
  append_file(box.log(), traffic(kNow, kNow + 5 * kMinute, 50, 0, 600));
  ASSERT_EQ(box.sluice(kNow + 5 * kMinute, {"once"}).exit_code, 0);
  EXPECT_EQ(lines_of(slurp(events)).size(), 1u);
}

TEST(NotifyE2E, AFailingHookIsAWarningNotAFailedCycle) {
  Sandbox box;
  install_hook(box, "cat > /dev/null\nexit 3");
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), "max-smtp-out 6\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.err, "notify command exited 3 for cut")) << once.err;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 4\n"));
}

}  // namespace
}  // namespace sluice::e2e
