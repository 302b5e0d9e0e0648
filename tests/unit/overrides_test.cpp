#include "controller/overrides.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

constexpr UnixSeconds kNow = 1795773600;  // 2026-11-27T10:00:00Z

Override entry(std::string isp, OverrideKind kind, std::string vmta = "") {
  Override o;
  o.pool = "pool-a";
  o.isp = std::move(isp);
  o.vmta = std::move(vmta);
  o.kind = kind;
  o.reason = "incident 4711";
  return o;
}

PairState state(int value) {
  PairState s;
  s.pool = "pool-a";
  s.isp = "gmail";
  s.tier = Tier::high;  // gmail high: 6..10
  s.max_smtp_out = value;
  s.last_safe = value;
  s.last_change_at = kNow - 30 * 86400;
  return s;
}

// A window of 300 attempts with `throttle` connection deferrals.
PairSignals window(std::uint64_t throttle) {
  PairSignals s;
  s.window_start = kNow - 3600;
  s.window.attempts = 300;
  s.window.deferrals = throttle;
  s.window.throttle = throttle;
  s.window.by_class[static_cast<int>(DeferralClass::connection)] = throttle;
  return s;
}

TEST(Overrides, AnIspsOwnEntryComesBeforeThePoolWideOne) {
  Overrides o;
  o.entries = {entry("", OverrideKind::freeze), entry("gmail", OverrideKind::pin)};
  EXPECT_EQ(o.for_pair("pool-a", "gmail", kNow), &o.entries[1]);
  EXPECT_EQ(o.for_pair("pool-a", "yahoo", kNow), &o.entries[0]);
  EXPECT_EQ(o.for_pair("pool-b", "gmail", kNow), nullptr);
}

TEST(Overrides, VmtaEntriesApplyOnlyToTheirVmta) {
  Overrides o;
  o.entries = {entry("gmail", OverrideKind::pin, "ip-2")};
  EXPECT_EQ(o.for_pair("pool-a", "gmail", kNow), nullptr);
  EXPECT_EQ(o.for_vmta("pool-a", "gmail", "ip-2", kNow), &o.entries[0]);
  EXPECT_EQ(o.for_vmta("pool-a", "gmail", "ip-1", kNow), nullptr);
  EXPECT_EQ(o.for_vmta("pool-a", "gmail", "", kNow), nullptr);
}

TEST(Overrides, AnExpiredEntryIsNotInForceAndTheBroaderOneApplies) {
  Overrides o;
  o.entries = {entry("", OverrideKind::freeze), entry("gmail", OverrideKind::pin)};
  o.entries[1].until = kNow;
  EXPECT_FALSE(o.entries[1].in_force(kNow));
  EXPECT_TRUE(o.entries[1].in_force(kNow - 1));
  EXPECT_EQ(o.for_pair("pool-a", "gmail", kNow), &o.entries[0]);
}

TEST(Overrides, DescribeSaysWhatWhyAndUntilWhen) {
  Override pin = entry("gmail", OverrideKind::pin);
  pin.value = 4;
  pin.until = kNow + 86400;
  EXPECT_EQ(pin.describe(), "pinned to 4 by override (incident 4711, until 2026-11-28T10:00:00Z)");
  Override bounds = entry("gmail", OverrideKind::bounds);
  bounds.ceiling = 6;
  EXPECT_EQ(bounds.describe(), "bounded to 1..6 by override (incident 4711)");
  EXPECT_EQ(entry("", OverrideKind::freeze).describe(), "frozen by override (incident 4711)");
}

TEST(Overrides, APinSetsTheValueEndsVerificationAndRestartsTheRaiseClock) {
  PairState s = state(8);
  s.phase = Phase::verifying;
  s.verify_until = kNow + 600;
  Override pin = entry("gmail", OverrideKind::pin);
  pin.value = 12;  // above the tier's cap: the person's call
  const Outcome out = decide_with_override(s, window(0), default_policy(), kNow, &pin, false, "");
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::override);
  EXPECT_EQ(out.decision->new_value, 12);
  EXPECT_EQ(out.next.max_smtp_out, 12);
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.verify_until, 0);
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_EQ(out.next.manual, pin.describe());

  // In force and already applied: nothing to decide, whatever the signals say.
  const Outcome held =
      decide_with_override(out.next, window(150), default_policy(), kNow + 60, &pin, false, "");
  EXPECT_FALSE(held.decision);
  EXPECT_EQ(held.next, out.next);
}

TEST(Overrides, AFreezeRecordsItsStartOnceAndKeepsTheValue) {
  const Override freeze = entry("", OverrideKind::freeze);
  const Outcome first =
      decide_with_override(state(8), window(150), default_policy(), kNow, &freeze, false, "");
  ASSERT_TRUE(first.decision);
  EXPECT_FALSE(first.decision->changes_value());
  EXPECT_EQ(first.next.max_smtp_out, 8);
  const Outcome second =
      decide_with_override(first.next, window(150), default_policy(), kNow, &freeze, false, "");
  EXPECT_FALSE(second.decision);
  EXPECT_EQ(second.next.max_smtp_out, 8);
}

TEST(Overrides, TheKillSwitchWinsOverAPin) {
  Override pin = entry("gmail", OverrideKind::pin);
  pin.value = 3;
  const Outcome out =
      decide_with_override(state(8), window(0), default_policy(), kNow, &pin, true, "migration");
  EXPECT_EQ(out.next.max_smtp_out, 8);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->reason, "frozen by the kill switch (migration)");
}

TEST(Overrides, BoundsNarrowTheRangeThePolicyMovesIn) {
  Override bounds = entry("gmail", OverrideKind::bounds);
  bounds.floor = 7;
  bounds.ceiling = 9;
  // A severe burst would cut 8 to 4: the floor holds it at 7.
  const Outcome cut =
      decide_with_override(state(8), window(150), default_policy(), kNow, &bounds, false, "");
  ASSERT_TRUE(cut.decision);
  EXPECT_EQ(cut.decision->rule, Rule::severe_cut);
  EXPECT_EQ(cut.next.max_smtp_out, 7);
  // Outside the bounds: moved at once, by the override.
  const Outcome raised =
      decide_with_override(state(6), window(0), default_policy(), kNow, &bounds, false, "");
  ASSERT_TRUE(raised.decision);
  EXPECT_EQ(raised.decision->rule, Rule::override);
  EXPECT_EQ(raised.next.max_smtp_out, 7);
}

TEST(Overrides, AFloorAboveTheTierCapIsNotUndoneByTheCapRule) {
  Override bounds = entry("gmail", OverrideKind::bounds);
  bounds.floor = 12;  // gmail high caps at 10
  PairState s = state(12);
  s.manual = bounds.describe();
  const Outcome out =
      decide_with_override(s, window(0), default_policy(), kNow, &bounds, false, "");
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next.max_smtp_out, 12);
}

TEST(Overrides, TheEndOfAnOverrideIsRecordedOnceAndThePolicyResumes) {
  PairState s = state(4);
  s.manual = "pinned to 4 by override (incident 4711)";
  const Outcome out =
      decide_with_override(s, window(0), default_policy(), kNow, nullptr, false, "");
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::override);
  EXPECT_EQ(out.decision->new_value, 4);
  EXPECT_EQ(out.next.manual, "");
  const Outcome next =
      decide_with_override(out.next, window(0), default_policy(), kNow, nullptr, false, "");
  EXPECT_FALSE(next.decision);
}

TEST(Overrides, APinWaitsAfterPmtaRefusedAChange) {
  PairState s = state(8);
  s.last_failure_at = kNow - 60;
  Override pin = entry("gmail", OverrideKind::pin);
  pin.value = 4;
  const Outcome out = decide_with_override(s, window(0), default_policy(), kNow, &pin, false, "");
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next.max_smtp_out, 8);
  const Outcome later =
      decide_with_override(s, window(0), default_policy(), kNow + 300, &pin, false, "");
  ASSERT_TRUE(later.decision);
  EXPECT_EQ(later.next.max_smtp_out, 4);
}

TEST(Overrides, AVmtaTakesThePinTheHeldValueOrThePoolsValueWithinBounds) {
  Override pin = entry("gmail", OverrideKind::pin, "ip-2");
  pin.value = 3;
  EXPECT_EQ(vmta_value(pin, 8, std::nullopt), 3);
  const Override freeze = entry("gmail", OverrideKind::freeze, "ip-2");
  EXPECT_EQ(vmta_value(freeze, 8, 5), 5);
  EXPECT_EQ(vmta_value(freeze, 8, std::nullopt), 8);
  Override bounds = entry("gmail", OverrideKind::bounds, "ip-2");
  bounds.ceiling = 4;
  EXPECT_EQ(vmta_value(bounds, 8, std::nullopt), 4);
  EXPECT_EQ(vmta_value(bounds, 2, std::nullopt), 2);
}

}  // namespace
}  // namespace sluice
