// The policy's verdicts end to end: deferrals that cuts do not cure put the pair in no-effect,
// status says so, and `sluice ack` ends it.

#include <gtest/gtest.h>

#include "tests/e2e/loop_support.h"

namespace sluice::e2e {
namespace {

TEST(PolicyE2E, CutsThatDoNotHelpEndInNoEffectAndAckEndsIt) {
  Sandbox box;
  // 10% 421s whatever the value: the first cut, then two cuts that change nothing.
  Time t = kNow;
  write_file(box.log(), kHeader + traffic(t - kHour, t, 600, 60));
  ProcessResult once = box.sluice(t, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out, "high-rep-pool/gmail cut 6 -> 4")) << once.out;
  int n = 600;
  for (int round = 0; round < 2; ++round) {
    append_file(box.log(), traffic(t, t + 30 * kMinute, 300, 30, n));
    n += 300;
    t += 30 * kMinute;
    once = box.sluice(t, {"once"});
    ASSERT_EQ(once.exit_code, 0) << once.err;
  }
  EXPECT_TRUE(contains(once.out,
                       "high-rep-pool/gmail no_effect: the change addressed the wrong "
                       "variable or something else is going on"))
      << once.out;

  const Json pools = box.json(t, "status")["pools"];
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0]["phase"], "no-effect");
  EXPECT_TRUE(contains(pools[0]["warning"].get<std::string>(), "wrong variable"))
      << pools[0].dump(2);
  const ProcessResult text = box.sluice(t, {"status"});
  EXPECT_TRUE(contains(text.out,
                       "high-rep-pool/gmail no-effect: the change addressed the wrong "
                       "variable"))
      << text.out;

  const ProcessResult ack = box.sluice(t, {"ack", "high-rep-pool", "gmail"});
  ASSERT_EQ(ack.exit_code, 0) << ack.err;
  EXPECT_TRUE(contains(ack.out, "high-rep-pool/gmail ack: acknowledged by")) << ack.out;
  EXPECT_EQ(box.json(t, "status")["pools"][0]["phase"], "steady");
  const Json history = box.decisions(t);
  EXPECT_EQ(history.back()["rule"], "ack");

  const ProcessResult again = box.sluice(t, {"ack", "high-rep-pool", "gmail"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err,
            "sluice: error: high-rep-pool/gmail is not in the no-effect phase (it is steady): "
            "nothing to acknowledge\n");
}

}  // namespace
}  // namespace sluice::e2e
