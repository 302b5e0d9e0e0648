#include "controller/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "controller/estimator.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using C = DeferralClass;

constexpr UnixSeconds kNow = 1795773600;  // 2026-11-27T10:00:00Z
constexpr UnixSeconds kMinute = 60;
constexpr UnixSeconds kHour = 3600;
constexpr UnixSeconds kDay = 86400;

// Figures as the estimator sums them: every deferral in its class, the throttle classes also
// in `throttle`; `tq` of the throttle deferrals were refused connections.
SignalFigures figures(std::uint64_t attempts,
                      std::initializer_list<std::pair<C, std::uint64_t>> deferrals = {},
                      std::uint64_t tq = 0) {
  SignalFigures f;
  f.attempts = attempts;
  for (const auto& [c, n] : deferrals) {
    f.by_class[static_cast<int>(c)] += n;
    f.deferrals += n;
    if (is_throttle_signal(c)) f.throttle += n;
  }
  f.throttle_tq = tq;
  return f;
}

// A pair whose last change is long past, so that neither a window nor a raise depends on it.
PairState pair(int value, Tier tier = Tier::high, std::string isp = "gmail") {
  PairState s;
  s.pool = "high-rep-pool";
  s.isp = std::move(isp);
  s.tier = tier;
  s.max_smtp_out = value;
  s.last_safe = value;
  s.last_change_at = kNow - 30 * kDay;
  return s;
}

// The decision window only; a week without traffic, so no raise can interfere.
PairSignals in_window(const SignalFigures& window) {
  PairSignals s;
  s.window_start = kNow - kHour;
  s.window = window;
  s.week = window;
  return s;
}

// A stable week: busy every day, 1% deferrals of class `other`, no throttle signal.
PairSignals stable_week() {
  PairSignals s;
  s.window_start = kNow - kHour;
  s.window = figures(1000);
  s.week = figures(50000, {{C::other, 500}});
  s.busy_days = 7;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Cuts: thresholds, sizes, the floor and the minimum evidence.

struct CutCase {
  const char* name;
  int value;
  SignalFigures window;
  std::optional<Rule> rule;  // nullopt: no decision
  int expected;
};

class PolicyCut : public ::testing::TestWithParam<CutCase> {};

TEST_P(PolicyCut, Decides) {
  const CutCase& c = GetParam();
  const PairState state = pair(c.value);
  const Outcome out = decide(state, in_window(c.window), default_policy(), kNow);
  EXPECT_EQ(out.next.max_smtp_out, c.expected);
  if (!c.rule) {
    EXPECT_FALSE(out.decision) << to_string(out.decision->rule);
    EXPECT_EQ(out.next, state);
    return;
  }
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, *c.rule);
  EXPECT_EQ(out.decision->old_value, c.value);
  EXPECT_EQ(out.decision->new_value, c.expected);
  EXPECT_EQ(out.decision->at, kNow);
  EXPECT_EQ(out.decision->phase, Phase::verifying);
  EXPECT_EQ(out.decision->figures.attempts, c.window.attempts);
  EXPECT_EQ(out.next.phase, Phase::verifying);
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_EQ(out.next.last_cut_at, kNow);
  EXPECT_EQ(out.next.last_safe, c.value);
  EXPECT_GT(out.next.verify_until, kNow);
}

// 1000 attempts make the rates exact: 50 is 5.0%, 150 is 15.0%.
INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyCut,
    ::testing::Values(
        CutCase{"Exactly5PercentIsNoCut", 8, figures(1000, {{C::connection, 50}}), {}, 8},
        CutCase{"Above5PercentCuts30", 8, figures(1000, {{C::connection, 51}}), Rule::cut, 5},
        CutCase{"Exactly15PercentStillCuts30", 8, figures(1000, {{C::connection, 150}}), Rule::cut,
                5},
        CutCase{"Above15PercentCuts50", 8, figures(1000, {{C::connection, 151}}), Rule::severe_cut,
                4},
        CutCase{"ThirtyPercentOf10Is7", 10, figures(1000, {{C::rate, 100}}), Rule::cut, 7},
        CutCase{"FiftyPercentOf10Is5", 10, figures(1000, {{C::reputation, 300}}), Rule::severe_cut,
                5},
        CutCase{"TwoBecomesOne", 2, figures(1000, {{C::connection, 60}}), Rule::cut, 1},
        CutCase{"ThreeBecomesTwo", 3, figures(1000, {{C::connection, 60}}), Rule::cut, 2},
        CutCase{"ThreeSevereBecomesOne", 3, figures(1000, {{C::connection, 400}}), Rule::severe_cut,
                1},
        CutCase{"AtTheFloorNothingToCut", 1, figures(1000, {{C::connection, 500}}), {}, 1},
        CutCase{"ThrottleClassesAddUp", 8,
                figures(1000, {{C::connection, 20}, {C::rate, 20}, {C::reputation, 20}}), Rule::cut,
                5},
        CutCase{"NonThrottleDeferralsDoNotMakeACut",
                8,
                figures(1000, {{C::connection, 40}, {C::other, 40}}),
                {},
                8},
        CutCase{"Only99AttemptsNoAction", 8, figures(99, {{C::connection, 50}}), {}, 8},
        CutCase{"100AttemptsAct", 8, figures(100, {{C::connection, 50}}), Rule::severe_cut, 4},
        CutCase{"19RefusedConnectionsNoAction", 8, figures(19, {{C::connection, 19}}, 19), {}, 8},
        CutCase{"20RefusedConnectionsAct", 8, figures(20, {{C::connection, 20}}, 20),
                Rule::severe_cut, 4},
        // Deferrals of other classes, refused or not, are no evidence for acting at all.
        CutCase{"FewAttemptsNoInvestigateEither", 8, figures(50, {{C::other, 30}}), {}, 8}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PolicyCutFloor, NeverBelowAConfiguredFloor) {
  PolicyParams policy = default_policy();
  policy.floor = 2;
  const SignalFigures severe = figures(1000, {{C::connection, 400}});

  const Outcome from3 = decide(pair(3), in_window(severe), policy, kNow);
  ASSERT_TRUE(from3.decision);
  EXPECT_EQ(from3.next.max_smtp_out, 2);

  const PairState at_floor = pair(2);
  const Outcome from2 = decide(at_floor, in_window(severe), policy, kNow);
  EXPECT_FALSE(from2.decision);
  EXPECT_EQ(from2.next, at_floor);
}

TEST(PolicyCutFloor, TheReasonNamesTheFigures) {
  const Outcome out =
      decide(pair(8), in_window(figures(1000, {{C::connection, 80}}, 30)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->trigger, C::connection);
  EXPECT_THAT(out.decision->reason, HasSubstr("80 of 1000 attempts"));
  EXPECT_THAT(out.decision->reason, HasSubstr("connection 80"));
  EXPECT_THAT(out.decision->reason, HasSubstr("30 refused"));
}

// ---------------------------------------------------------------------------------------------
// Deferrals that concurrency does not cause.

TEST(PolicyInvestigate, OtherDeferralsAbove5PercentFlagWithoutCutting) {
  const PairState state = pair(8);
  const Outcome out =
      decide(state, in_window(figures(1000, {{C::recipient, 30}, {C::config, 11}, {C::other, 10}})),
             default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::investigate);
  EXPECT_EQ(out.decision->phase, Phase::investigate);
  EXPECT_FALSE(out.decision->changes_value());
  EXPECT_EQ(out.next.phase, Phase::investigate);
  EXPECT_EQ(out.next.max_smtp_out, 8);
  EXPECT_EQ(out.next.last_change_at, state.last_change_at);
}

TEST(PolicyInvestigate, Exactly5PercentIsNotFlagged) {
  const PairState state = pair(8);
  const Outcome out =
      decide(state, in_window(figures(1000, {{C::recipient, 50}})), default_policy(), kNow);
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next, state);
}

TEST(PolicyInvestigate, StaysWithoutRaisesWhileTheDeferralsLast) {
  PairState state = pair(5);
  state.phase = Phase::investigate;
  PairSignals signals = stable_week();  // everything a raise needs, but for the window
  signals.window = figures(1000, {{C::other, 80}});
  const Outcome out = decide(state, signals, default_policy(), kNow);
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next, state);
}

TEST(PolicyInvestigate, BackToSteadyWhenTheyDropAndNoRaiseInTheSameCycle) {
  PairState state = pair(5);
  state.phase = Phase::investigate;
  const Outcome out = decide(state, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::settle);
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.max_smtp_out, 5);

  // The next cycle may raise: the pair is steady again.
  const Outcome later = decide(out.next, stable_week(), default_policy(), kNow + 5 * kMinute);
  ASSERT_TRUE(later.decision);
  EXPECT_EQ(later.decision->rule, Rule::raise);
}

TEST(PolicyInvestigate, ThrottleSignalsStillCutWhileInvestigating) {
  PairState state = pair(8);
  state.phase = Phase::investigate;
  const Outcome out = decide(state, in_window(figures(1000, {{C::other, 80}, {C::rate, 80}})),
                             default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.phase, Phase::verifying);
}

// ---------------------------------------------------------------------------------------------
// Verification windows: one change per window, of the length the trigger class asks for.

struct VerifyCase {
  const char* name;
  SignalFigures burst;
  UnixSeconds window;
};

class PolicyVerify : public ::testing::TestWithParam<VerifyCase> {
 protected:
  // The first cut, at kNow.
  Outcome first_cut() const {
    const Outcome out = decide(pair(10), in_window(GetParam().burst), default_policy(), kNow);
    EXPECT_TRUE(out.decision);
    EXPECT_EQ(out.next.verify_until, kNow + GetParam().window);
    return out;
  }
};

TEST_P(PolicyVerify, NoChangeInsideTheWindow) {
  const PairState cut = first_cut().next;
  const SignalFigures severe = figures(1000, {{C::connection, 500}, {C::reputation, 500}}, 100);
  for (UnixSeconds t : {kNow + kMinute, kNow + 29 * kMinute, kNow + GetParam().window - 1}) {
    const Outcome out = decide(cut, in_window(severe), default_policy(), t);
    EXPECT_FALSE(out.decision) << "at +" << (t - kNow) << " s";
    EXPECT_EQ(out.next, cut);
  }
}

TEST_P(PolicyVerify, ASecondCutAtOnceWhenTheWindowEndsStillAbove) {
  const PairState cut = first_cut().next;
  const Outcome out =
      decide(cut, in_window(GetParam().burst), default_policy(), kNow + GetParam().window);
  ASSERT_TRUE(out.decision);
  EXPECT_TRUE(out.decision->rule == Rule::cut || out.decision->rule == Rule::severe_cut);
  EXPECT_LT(out.next.max_smtp_out, cut.max_smtp_out);
  EXPECT_EQ(out.next.last_safe, 10);  // the value before the incident's first cut
}

TEST_P(PolicyVerify, SettlesWhenTheWindowEndsBelow) {
  const PairState cut = first_cut().next;
  const Outcome out = decide(cut, in_window(figures(1000, {{C::connection, 50}})), default_policy(),
                             kNow + GetParam().window);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::settle);
  EXPECT_FALSE(out.decision->changes_value());
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.max_smtp_out, cut.max_smtp_out);
  EXPECT_EQ(out.next.last_change_at, kNow);  // settling is no change of value
}

INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyVerify,
    ::testing::Values(
        VerifyCase{"Connection30Minutes", figures(1000, {{C::connection, 200}}), 30 * kMinute},
        VerifyCase{"Rate30Minutes", figures(1000, {{C::rate, 80}}), 30 * kMinute},
        VerifyCase{"Reputation2Hours", figures(1000, {{C::reputation, 80}}), 2 * kHour},
        // On a tie the slower verdict decides the window.
        VerifyCase{"TieGoesToReputation", figures(1000, {{C::connection, 40}, {C::reputation, 40}}),
                   2 * kHour},
        VerifyCase{"MostlyConnection", figures(1000, {{C::connection, 60}, {C::reputation, 20}}),
                   30 * kMinute}),
    [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Raises.

struct RaiseCase {
  const char* name;
  int value;
  UnixSeconds since_change;  // 0: never changed
  PairSignals signals;
  std::optional<int> expected;  // nullopt: no raise
};

PairSignals week_with(std::initializer_list<std::pair<C, std::uint64_t>> deferrals,
                      int busy_days = 7) {
  PairSignals s = stable_week();
  s.week = figures(50000, deferrals);
  s.busy_days = busy_days;
  return s;
}

PairSignals quiet_window(std::uint64_t attempts) {
  PairSignals s = stable_week();
  s.window = figures(attempts);
  return s;
}

class PolicyRaise : public ::testing::TestWithParam<RaiseCase> {};

TEST_P(PolicyRaise, Decides) {
  const RaiseCase& c = GetParam();
  PairState state = pair(c.value);
  state.last_change_at = c.since_change == 0 ? 0 : kNow - c.since_change;
  const Outcome out = decide(state, c.signals, default_policy(), kNow);
  if (!c.expected) {
    EXPECT_FALSE(out.decision) << out.decision->reason;
    EXPECT_EQ(out.next, state);
    return;
  }
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::raise);
  EXPECT_EQ(out.decision->new_value, *c.expected);
  EXPECT_EQ(out.next.max_smtp_out, *c.expected);
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_EQ(out.next.last_raise_at, kNow);
}

// gmail at tier high: start 6, cap 10. 50,000 attempts a week: 1,000 deferrals are 2.0%.
INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyRaise,
    ::testing::Values(
        RaiseCase{"Exactly7DaysSinceTheChange", 5, 7 * kDay, stable_week(), 6},
        RaiseCase{"OneSecondShortOf7Days", 5, 7 * kDay - 1, stable_week(), {}},
        RaiseCase{"NeverChanged", 5, 0, stable_week(), 6},
        RaiseCase{"AThrottleSignalInTheWeek", 5, 8 * kDay, week_with({{C::rate, 1}}), {}},
        RaiseCase{"DeferralRateExactly2Percent", 5, 8 * kDay, week_with({{C::other, 1000}}), {}},
        RaiseCase{"DeferralRateJustUnder2Percent", 5, 8 * kDay, week_with({{C::other, 999}}), 6},
        RaiseCase{"ThreeBusyDays", 5, 8 * kDay, week_with({}, 3), {}},
        RaiseCase{"FourBusyDays", 5, 8 * kDay, week_with({}, 4), 6},
        // "No action on fewer than 100 attempts in the window" holds for raises too.
        RaiseCase{"FewAttemptsInTheWindow", 5, 8 * kDay, quiet_window(99), {}},
        RaiseCase{"AtLeastPlusOne", 1, 8 * kDay, stable_week(), 2},
        RaiseCase{"SevenIsPlusOne", 7, 8 * kDay, stable_week(), 8},
        RaiseCase{"NeverAboveTheCap", 9, 8 * kDay, stable_week(), 10},
        RaiseCase{"AtTheCapNoRaise", 10, 8 * kDay, stable_week(), {}}),
    [](const auto& info) { return std::string(info.param.name); });

struct StepCase {
  int value;
  int cap;
  int expected;
};

class PolicyRaiseStep : public ::testing::TestWithParam<StepCase> {};

// 10-15% a week, at least +1, at most +2, never above the cap.
TEST_P(PolicyRaiseStep, WithinTheBand) {
  const StepCase& c = GetParam();
  PolicyParams policy = default_policy();
  policy.ranges["gmail"][Tier::high] = TierRange{1, c.cap};
  const Outcome out = decide(pair(c.value), stable_week(), policy, kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.next.max_smtp_out, c.expected) << "from " << c.value << ", cap " << c.cap;
}

INSTANTIATE_TEST_SUITE_P(Policy, PolicyRaiseStep,
                         ::testing::Values(StepCase{1, 30, 2}, StepCase{2, 30, 3},
                                           StepCase{4, 30, 5}, StepCase{7, 30, 8},
                                           // 15% of 10 is 1.5: +2 would be a 20% raise.
                                           StepCase{10, 30, 11}, StepCase{14, 30, 16},
                                           StepCase{20, 30, 22}, StepCase{40, 100, 42},
                                           StepCase{14, 15, 15}, StepCase{29, 30, 30}),
                         [](const auto& info) {
                           return "From" + std::to_string(info.param.value) + "Cap" +
                                  std::to_string(info.param.cap);
                         });

TEST(PolicyRaiseCap, ACapOf1NeverRaisesNorCuts) {
  // gmx at tier low: 1..1.
  const PairState state = pair(1, Tier::low, "gmx");
  EXPECT_FALSE(decide(state, stable_week(), default_policy(), kNow).decision);
  EXPECT_FALSE(
      decide(state, in_window(figures(1000, {{C::connection, 500}})), default_policy(), kNow)
          .decision);
}

// ---------------------------------------------------------------------------------------------
// Tier caps.

TEST(PolicyTierCap, ALowerTierLowersAtOnce) {
  const PairState state = pair(8, Tier::medium);                             // gmail medium: cap 5
  const Outcome out = decide(state, PairSignals{}, default_policy(), kNow);  // no traffic at all
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::tier_cap);
  EXPECT_EQ(out.decision->old_value, 8);
  EXPECT_EQ(out.next.max_smtp_out, 5);
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_THAT(out.decision->reason, HasSubstr("medium"));
}

TEST(PolicyTierCap, EvenInsideAVerificationWindow) {
  PairState state = pair(8, Tier::low);  // gmail low: cap 2
  state.phase = Phase::verifying;
  state.verify_until = kNow + kHour;
  state.verify_class = C::reputation;
  const Outcome out = decide(state, PairSignals{}, default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::tier_cap);
  EXPECT_EQ(out.next.max_smtp_out, 2);
}

TEST(PolicyTierCap, ACapOf1) {
  const Outcome out = decide(pair(3, Tier::low, "gmx"), PairSignals{}, default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.next.max_smtp_out, 1);
}

TEST(PolicyTierCap, AHigherTierChangesNothingByItself) {
  const PairState state = pair(5, Tier::high);
  const Outcome out = decide(state, PairSignals{}, default_policy(), kNow);
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next, state);
}

// ---------------------------------------------------------------------------------------------
// Retry after a failed change.

TEST(PolicyRetry, NotBefore5MinutesAfterAPmtaFailure) {
  PairState state = pair(8);
  state.last_failure = "pmta reload failed (exit 1)";
  const PairSignals burst = in_window(figures(1000, {{C::connection, 200}}));

  state.last_failure_at = kNow - 299;
  const Outcome early = decide(state, burst, default_policy(), kNow);
  EXPECT_FALSE(early.decision);
  EXPECT_EQ(early.next, state);

  state.last_failure_at = kNow - 300;
  const Outcome retry = decide(state, burst, default_policy(), kNow);
  ASSERT_TRUE(retry.decision);
  EXPECT_EQ(retry.decision->rule, Rule::severe_cut);
}

// ---------------------------------------------------------------------------------------------
// The window and the initial state.

TEST(PolicyWindow, TheLastHourNeverBeforeTheLastChange) {
  const PolicyParams policy = default_policy();
  PairState state = pair(5);
  state.last_change_at = 0;
  EXPECT_EQ(window_start(state, policy, kNow), kNow - kHour);
  state.last_change_at = kNow - 10 * kMinute;
  EXPECT_EQ(window_start(state, policy, kNow), kNow - 10 * kMinute);
  state.last_change_at = kNow - 2 * kHour;
  EXPECT_EQ(window_start(state, policy, kNow), kNow - kHour);
  state.last_change_at = kNow;
  EXPECT_EQ(window_start(state, policy, kNow), kNow);

  PolicyParams longer = policy;
  longer.window_seconds = 2 * kHour;
  state.last_change_at = kNow - 90 * kMinute;
  EXPECT_EQ(window_start(state, longer, kNow), kNow - 90 * kMinute);
}

TEST(PolicyInitialState, TheFragmentValueWins) {
  const PairState s = initial_state("p", "gmail", Tier::high, 7, default_policy());
  EXPECT_EQ(s.pool, "p");
  EXPECT_EQ(s.isp, "gmail");
  EXPECT_EQ(s.tier, Tier::high);
  EXPECT_EQ(s.max_smtp_out, 7);
  EXPECT_EQ(s.last_safe, 7);
  EXPECT_EQ(s.phase, Phase::steady);
  EXPECT_EQ(s.last_change_at, 0);
  EXPECT_EQ(s.last_failure_at, 0);
}

TEST(PolicyInitialState, ElseTheTierStart) {
  const PolicyParams policy = default_policy();
  EXPECT_EQ(initial_state("p", "gmail", Tier::high, std::nullopt, policy).max_smtp_out, 6);
  EXPECT_EQ(initial_state("p", "gmail", Tier::medium, std::nullopt, policy).max_smtp_out, 3);
  EXPECT_EQ(initial_state("p", "outlook", Tier::high, std::nullopt, policy).max_smtp_out, 4);
  EXPECT_EQ(initial_state("p", "yahoo", Tier::high, std::nullopt, policy).max_smtp_out, 5);
  EXPECT_EQ(initial_state("p", "unknown-isp", Tier::high, std::nullopt, policy).max_smtp_out, 2);
}

TEST(PolicyInitialState, AnOperatorValueAboveTheCapIsLoweredByTheFirstDecision) {
  // The state mirrors what the fragment holds, so that the tier_cap rule rewrites it.
  const PairState s = initial_state("p", "gmx", Tier::low, 5, default_policy());
  EXPECT_EQ(s.max_smtp_out, 5);
  const Outcome out = decide(s, PairSignals{}, default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::tier_cap);
  EXPECT_EQ(out.next.max_smtp_out, 1);
}

TEST(PolicyInitialState, NeverBelowTheFloor) {
  EXPECT_EQ(initial_state("p", "gmail", Tier::high, 0, default_policy()).max_smtp_out, 1);
}

// ---------------------------------------------------------------------------------------------
// Defaults of the domain brief's table.

struct RangeCase {
  const char* isp;
  Tier tier;
  int start;
  int cap;
};

class PolicyDefaultRanges : public ::testing::TestWithParam<RangeCase> {};

TEST_P(PolicyDefaultRanges, MatchTheDomainBrief) {
  const RangeCase& c = GetParam();
  const TierRange r = range_for(default_policy(), c.isp, c.tier);
  EXPECT_EQ(r.start, c.start);
  EXPECT_EQ(r.cap, c.cap);
}

INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyDefaultRanges,
    ::testing::Values(
        RangeCase{"gmail", Tier::high, 6, 10}, RangeCase{"gmail", Tier::medium, 3, 5},
        RangeCase{"gmail", Tier::low, 1, 2}, RangeCase{"gmail", Tier::warming, 1, 3},
        RangeCase{"outlook", Tier::high, 4, 6}, RangeCase{"outlook", Tier::medium, 2, 4},
        RangeCase{"outlook", Tier::low, 1, 2}, RangeCase{"outlook", Tier::warming, 1, 2},
        RangeCase{"yahoo", Tier::high, 5, 8}, RangeCase{"yahoo", Tier::medium, 3, 5},
        RangeCase{"yahoo", Tier::low, 1, 2}, RangeCase{"yahoo", Tier::warming, 1, 3},
        RangeCase{"gmx", Tier::high, 2, 4}, RangeCase{"gmx", Tier::medium, 1, 2},
        RangeCase{"gmx", Tier::low, 1, 1}, RangeCase{"gmx", Tier::warming, 1, 1},
        RangeCase{"orange", Tier::high, 2, 3}, RangeCase{"orange", Tier::medium, 1, 2},
        RangeCase{"orange", Tier::low, 1, 1}, RangeCase{"orange", Tier::warming, 1, 1},
        RangeCase{"generic", Tier::high, 2, 4}, RangeCase{"generic", Tier::medium, 1, 2},
        RangeCase{"generic", Tier::low, 1, 1}, RangeCase{"generic", Tier::warming, 1, 1},
        // An ISP without its own entry is the table's "unknown ISP".
        RangeCase{"example-isp", Tier::high, 2, 4}, RangeCase{"example-isp", Tier::low, 1, 1}),
    [](const auto& info) {
      return std::string(info.param.isp == std::string("example-isp") ? "unknown"
                                                                      : info.param.isp) +
             "_" + std::string(to_string(info.param.tier));
    });

TEST(PolicyRanges, AnIspWithoutThatTierFallsBackToGeneric) {
  PolicyParams policy = default_policy();
  policy.ranges["custom"][Tier::high] = TierRange{3, 7};
  EXPECT_EQ(range_for(policy, "custom", Tier::high).cap, 7);
  EXPECT_EQ(range_for(policy, "custom", Tier::medium).cap, 2);
}

TEST(PolicyNames, RoundTrip) {
  for (Tier t : {Tier::high, Tier::medium, Tier::low, Tier::warming}) {
    EXPECT_EQ(parse_tier(to_string(t)), t);
  }
  for (Phase p : {Phase::steady, Phase::verifying, Phase::investigate}) {
    EXPECT_EQ(parse_phase(to_string(p)), p);
  }
  for (Rule r : {Rule::cut, Rule::severe_cut, Rule::tier_cap, Rule::raise, Rule::investigate,
                 Rule::settle, Rule::initial}) {
    EXPECT_EQ(parse_rule(to_string(r)), r);
  }
  EXPECT_FALSE(parse_tier("HIGH"));
  EXPECT_FALSE(parse_phase(""));
  EXPECT_FALSE(parse_rule("cut "));
}

// ---------------------------------------------------------------------------------------------
// Properties over random signal sequences. A simulated ISP's weather changes between regimes
// (quiet weeks, throttle bursts of each class, refused connections, recipient trouble, idle
// spells, tier changes); each cycle's traffic becomes one bucket, the estimator summarizes the
// series as the loop does, and decide()'s `next` state is fed back.

enum class Weather { quiet, connection, rate, reputation, refused, other, mixed, idle };

struct Step {
  UnixSeconds now = 0;
  PairState state;
  PairSignals signals;
  Outcome outcome;
};

struct Simulation {
  std::string isp;
  PolicyParams policy;
  std::vector<Step> steps;
};

std::string describe(const Decision& d) {
  return std::to_string(d.at) + " " + std::string(to_string(d.rule)) + " " +
         std::to_string(d.old_value) + "->" + std::to_string(d.new_value) + " " +
         std::string(to_string(d.phase)) + " " + std::string(to_string(d.trigger)) + " " +
         std::to_string(d.figures.attempts) + "/" + std::to_string(d.figures.deferrals) + " " +
         d.reason;
}

bool same(const Outcome& a, const Outcome& b) {
  if (!(a.next == b.next) || a.decision.has_value() != b.decision.has_value()) return false;
  return !a.decision || describe(*a.decision) == describe(*b.decision);
}

// A stormy simulation has no quiet spell longer than a day: many cuts, few raises.
Simulation simulate(std::uint32_t seed, int cycles, bool stormy = false) {
  static const std::vector<std::string> kIsps = {"gmail", "outlook", "yahoo", "gmx", "generic"};
  std::mt19937 rng(seed);
  const auto uniform = [&](auto lo, auto hi) {
    if constexpr (std::is_floating_point_v<decltype(lo)>) {
      return std::uniform_real_distribution<decltype(lo)>(lo, hi)(rng);
    } else {
      return std::uniform_int_distribution<decltype(lo)>(lo, hi)(rng);
    }
  };

  Simulation sim;
  sim.isp = kIsps[seed % kIsps.size()];
  sim.policy = default_policy();
  if (seed % 2 == 0) {
    // An operator's wider ranges: more room for a run of cuts before the floor.
    sim.policy.ranges[sim.isp] = {{Tier::high, {20, 40}},
                                  {Tier::medium, {10, 20}},
                                  {Tier::low, {4, 8}},
                                  {Tier::warming, {2, 6}}};
  }
  std::vector<PairBucket> series;
  const Tier first_tier = uniform(0, 1) == 0 ? Tier::high : static_cast<Tier>(uniform(0, 3));
  const int first_cap = range_for(sim.policy, sim.isp, first_tier).cap;
  PairState state = initial_state(
      "pool-" + std::to_string(seed), sim.isp, first_tier,
      uniform(0, 2) == 0 ? std::optional<int>() : uniform(1, first_cap + 4), sim.policy);
  UnixSeconds now = kNow;
  UnixSeconds regime_until = now;
  Weather weather = Weather::quiet;
  double traffic = 1.0;  // attempts per second
  double severity = 0;   // deferral share of the regime
  int grant = 1;         // what the ISP tolerates in this regime: above it, it throttles

  for (int i = 0; i < cycles; ++i) {
    const UnixSeconds prev = now;
    now += uniform(UnixSeconds{60}, UnixSeconds{600});
    if (now >= regime_until) {
      // Weight (of 100), and how long the regime lasts.
      struct Regime {
        int weight;
        Weather weather;
        UnixSeconds shortest;
        UnixSeconds longest;
      };
      static constexpr Regime kRegimes[] = {
          {30, Weather::quiet, kHour, 10 * kDay},
          {12, Weather::connection, 10 * kMinute, 8 * kHour},
          {8, Weather::rate, 10 * kMinute, 8 * kHour},
          {12, Weather::reputation, 30 * kMinute, 12 * kHour},
          {8, Weather::refused, 10 * kMinute, 3 * kHour},
          {10, Weather::other, 30 * kMinute, 2 * kDay},
          {8, Weather::mixed, 10 * kMinute, 8 * kHour},
          {12, Weather::idle, kHour, 2 * kDay},
      };
      int pick = uniform(0, 99);
      UnixSeconds lasts = 0;
      for (const Regime& r : kRegimes) {
        if (pick < r.weight) {
          weather = r.weather;
          lasts = uniform(r.shortest, stormy ? std::min(r.longest, kDay) : r.longest);
          break;
        }
        pick -= r.weight;
      }
      regime_until = now + lasts;
      traffic = uniform(0.05, 3.0);
      severity = uniform(0.02, 0.45);
      grant = uniform(1, std::max(1, state.max_smtp_out - 1));
      if (uniform(0, 19) == 0) state.tier = static_cast<Tier>(uniform(0, 3));  // rare
    }

    // This cycle's traffic, as one bucket starting where the last cycle ended.
    const UnixSeconds span = now - prev;
    const auto count = [&](double per_second) {
      return static_cast<std::uint64_t>(per_second * static_cast<double>(span) * uniform(0.5, 1.5));
    };
    PairBucket b;
    b.start = prev;
    SignalFigures& f = b.figures;
    f.attempts = count(weather == Weather::idle ? traffic / 200 : traffic);
    const auto defer = [&](C c, double share, bool refused = false) {
      const auto n = std::min<std::uint64_t>(
          f.attempts, static_cast<std::uint64_t>(static_cast<double>(f.attempts) * share));
      f.by_class[static_cast<int>(c)] += n;
      f.deferrals += n;
      if (is_throttle_signal(c)) {
        f.throttle += n;
        if (refused) f.throttle_tq += n;
      }
    };
    defer(C::other, uniform(0.0, 0.012));
    // Throttling eases once the pair is within what the ISP grants (a tail remains).
    const double throttle = state.max_smtp_out > grant ? severity : severity * uniform(0.0, 0.2);
    switch (weather) {
      case Weather::connection:
        defer(C::connection, throttle, uniform(0, 1) == 0);
        break;
      case Weather::rate:
        defer(C::rate, throttle);
        break;
      case Weather::reputation:
        defer(C::reputation, throttle);
        defer(C::connection, throttle / 3);
        break;
      case Weather::refused: {
        const auto refused = count(uniform(0.005, 0.05));
        f.attempts = count(0.01) + refused;
        f.by_class[static_cast<int>(C::connection)] += refused;
        f.deferrals += refused;
        f.throttle += refused;
        f.throttle_tq += refused;
        break;
      }
      case Weather::other:
        defer(C::recipient, severity / 2);
        defer(C::config, severity / 4);
        break;
      case Weather::mixed:
        defer(C::rate, throttle / 2);
        defer(C::other, severity / 2);
        break;
      case Weather::quiet:
      case Weather::idle:
        break;
    }
    series.push_back(b);
    // What the loop keeps: a week and a bit.
    if (series.front().start < now - 8 * kDay) {
      series.erase(series.begin(),
                   std::find_if(series.begin(), series.end(),
                                [&](const PairBucket& x) { return x.start >= now - 8 * kDay; }));
    }

    Step step;
    step.now = now;
    step.state = state;
    step.signals = summarize(series, window_start(state, sim.policy, now), now, sim.policy);
    step.outcome = decide(state, step.signals, sim.policy, now);
    state = step.outcome.next;
    sim.steps.push_back(std::move(step));
  }
  return sim;
}

constexpr int kCycles = 8000;

// Simulations shared by the property tests; each seed covers one ISP's defaults.
const std::vector<Simulation>& simulations() {
  static const std::vector<Simulation> sims = [] {
    std::vector<Simulation> out;
    for (std::uint32_t seed = 1; seed <= 12; ++seed) out.push_back(simulate(seed, kCycles));
    for (std::uint32_t seed = 101; seed <= 106; ++seed) {
      out.push_back(simulate(seed, kCycles, true));
    }
    return out;
  }();
  return sims;
}

TEST(PolicyProperty, TheSimulationsExerciseEveryRule) {
  std::map<Rule, int> seen;
  std::map<Phase, int> phases;
  int second_cuts = 0;
  for (const Simulation& sim : simulations()) {
    for (const Step& s : sim.steps) {
      if (s.outcome.decision) ++seen[s.outcome.decision->rule];
      ++phases[s.state.phase];
      if (s.state.phase == Phase::verifying && s.outcome.decision &&
          s.outcome.decision->changes_value() && s.outcome.decision->rule != Rule::tier_cap) {
        ++second_cuts;
      }
    }
  }
  for (Rule r : {Rule::cut, Rule::severe_cut, Rule::tier_cap, Rule::raise, Rule::investigate,
                 Rule::settle}) {
    EXPECT_GT(seen[r], 0) << to_string(r);
  }
  for (Phase p : {Phase::steady, Phase::verifying, Phase::investigate}) {
    EXPECT_GT(phases[p], 0) << to_string(p);
  }
  EXPECT_GT(second_cuts, 0) << "no cut when a verification window ended still above";
}

TEST(PolicyProperty, NeverAboveTheCapNorBelowTheFloor) {
  for (const Simulation& sim : simulations()) {
    for (const Step& s : sim.steps) {
      const int value = s.outcome.next.max_smtp_out;
      const int cap = range_for(sim.policy, sim.isp, s.outcome.next.tier).cap;
      ASSERT_LE(value, cap) << sim.isp << " at " << s.now;
      ASSERT_GE(value, 1) << sim.isp << " at " << s.now;
      ASSERT_GE(value, sim.policy.floor) << sim.isp << " at " << s.now;
    }
  }
}

TEST(PolicyProperty, AtMostOneChangePerVerificationWindow) {
  for (const Simulation& sim : simulations()) {
    std::optional<Decision> last_cut;
    for (const Step& s : sim.steps) {
      const auto& d = s.outcome.decision;
      // A tier drop lowers the value at once, by design, whatever the window.
      if (!d || !d->changes_value() || d->rule == Rule::tier_cap) continue;
      if (last_cut) {
        const UnixSeconds window = last_cut->trigger == C::reputation
                                       ? sim.policy.verify_reputation_seconds
                                       : sim.policy.verify_connection_seconds;
        ASSERT_GE(d->at, last_cut->at + window)
            << sim.isp << ": " << describe(*d) << " inside the window of " << describe(*last_cut);
      }
      if (d->rule == Rule::cut || d->rule == Rule::severe_cut) last_cut = *d;
    }
  }
}

TEST(PolicyProperty, NoRaiseWithin7DaysOfAChange) {
  for (const Simulation& sim : simulations()) {
    std::optional<UnixSeconds> last_change;
    for (const Step& s : sim.steps) {
      const auto& d = s.outcome.decision;
      if (!d || !d->changes_value()) continue;
      const bool raise =
          d->rule == Rule::raise || (d->rule == Rule::warmup && d->new_value > d->old_value);
      if (raise && last_change) {
        ASSERT_GE(d->at - *last_change, 7 * kDay) << sim.isp << ": " << describe(*d);
      }
      last_change = d->at;
    }
  }
}

// A pair driven cycle by cycle as the loop does, each 5-minute bucket made by `weather` from the
// cycle's index and the pair's state.
template <class Weather>
std::vector<Step> drive(PairState state, const PolicyParams& policy, int cycles, Weather weather) {
  std::vector<PairBucket> series;
  std::vector<Step> steps;
  UnixSeconds now = kNow;
  for (int i = 0; i < cycles; ++i) {
    PairBucket b;
    b.start = now;
    b.figures = weather(i, state);
    now += 5 * kMinute;
    series.push_back(b);
    if (series.front().start < now - 8 * kDay) series.erase(series.begin());
    Step step;
    step.now = now;
    step.state = state;
    step.signals = summarize(series, window_start(state, policy, now), now, policy);
    step.outcome = decide(state, step.signals, policy, now);
    state = step.outcome.next;
    steps.push_back(std::move(step));
  }
  return steps;
}

bool is_cut(const Decision& d) {
  return d.rule == Rule::cut || d.rule == Rule::severe_cut;
}

TEST(PolicyProperty, DeferralsOfOtherClassesNeverCut) {
  static const std::vector<std::string> kIsps = {"gmail", "outlook", "yahoo", "gmx", "generic"};
  for (std::uint32_t seed = 1; seed <= 10; ++seed) {
    std::mt19937 rng(seed);
    const std::string isp = kIsps[seed % kIsps.size()];
    const PolicyParams policy = default_policy();
    const Tier tier = static_cast<Tier>(seed % 4);
    const PairState start =
        initial_state("pool", isp, tier, range_for(policy, isp, tier).cap, policy);
    // Up to 60% recipient, config and other deferrals, changing every few hours, for two weeks.
    double share = 0;
    const auto steps = drive(start, policy, 4032, [&](int i, const PairState&) {
      if (i % 36 == 0) share = std::uniform_real_distribution<double>(0, 0.6)(rng);
      const auto attempts = std::uniform_int_distribution<std::uint64_t>(20, 600)(rng);
      const auto deferred = static_cast<std::uint64_t>(share * static_cast<double>(attempts));
      return figures(attempts, {{C::recipient, deferred / 2},
                                {C::config, deferred / 4},
                                {C::other, deferred - deferred / 2 - deferred / 4}});
    });
    int investigated = 0;
    for (const Step& s : steps) {
      ASSERT_GE(s.outcome.next.max_smtp_out, start.max_smtp_out) << isp << " at " << s.now;
      if (!s.outcome.decision) continue;
      ASSERT_FALSE(is_cut(*s.outcome.decision)) << isp << ": " << describe(*s.outcome.decision);
      investigated += s.outcome.decision->rule == Rule::investigate;
    }
    EXPECT_GT(investigated, 0) << isp;
  }
}

TEST(PolicyProperty, ThrottlingCutsDoNotCureGetAtMostTwoCutsPerIncident) {
  for (std::uint32_t seed = 1; seed <= 10; ++seed) {
    std::mt19937 rng(seed);
    const PolicyParams policy = default_policy();
    const PairState start = initial_state("pool", "gmail", Tier::high, 10, policy);
    // Incidents of 2 to 12 hours at a throttle rate of 8% to 40% whatever the value (with 10%
    // jitter), each after 1 to 3 quiet days.
    struct Incident {
      int from = 0;
      int to = 0;
      double rate = 0;
    };
    std::vector<Incident> incidents;
    for (int at = 0; at < 4032;) {
      Incident in;
      in.from = at + std::uniform_int_distribution<int>(288, 864)(rng);
      in.to = in.from + std::uniform_int_distribution<int>(24, 144)(rng);
      in.rate = std::uniform_real_distribution<double>(0.08, 0.4)(rng);
      incidents.push_back(in);
      at = in.to;
    }
    const auto steps = drive(start, policy, 4032, [&](int i, const PairState&) {
      double rate = 0;
      for (const Incident& in : incidents) {
        if (i >= in.from && i < in.to) rate = in.rate;
      }
      rate *= std::uniform_real_distribution<double>(0.9, 1.1)(rng);
      const std::uint64_t attempts = 300;
      return figures(attempts, {{C::connection, static_cast<std::uint64_t>(rate * attempts)}});
    });
    int no_effect = 0;
    for (const Incident& in : incidents) {
      // The incident and the hour after it, when its last verdict may fall.
      int cuts = 0;
      for (const Step& s : steps) {
        const int cycle = static_cast<int>((s.now - kNow) / (5 * kMinute)) - 1;
        if (cycle < in.from || cycle >= in.to + 12 || !s.outcome.decision) continue;
        ASSERT_FALSE(s.state.phase == Phase::no_effect && is_cut(*s.outcome.decision))
            << describe(*s.outcome.decision);
        cuts += is_cut(*s.outcome.decision);
        no_effect += s.outcome.decision->rule == Rule::no_effect;
      }
      EXPECT_LE(cuts, 2) << "seed " << seed << ", incident at cycle " << in.from;
    }
    for (const Step& s : steps) ASSERT_GE(s.outcome.next.max_smtp_out, 1);
    EXPECT_GT(no_effect, 0) << "seed " << seed;
  }
}

TEST(PolicyProperty, EveryChangeOfValueOrPhaseIsADecision) {
  for (const Simulation& sim : simulations()) {
    for (const Step& s : sim.steps) {
      const Outcome& o = s.outcome;
      if (!o.decision) {
        ASSERT_EQ(o.next.max_smtp_out, s.state.max_smtp_out) << s.now;
        ASSERT_EQ(o.next.phase, s.state.phase) << s.now;
        continue;
      }
      ASSERT_EQ(o.decision->at, s.now);
      ASSERT_EQ(o.decision->old_value, s.state.max_smtp_out) << describe(*o.decision);
      ASSERT_EQ(o.decision->new_value, o.next.max_smtp_out) << describe(*o.decision);
      ASSERT_EQ(o.decision->phase, o.next.phase) << describe(*o.decision);
    }
  }
}

TEST(PolicyProperty, TheSameInputsGiveTheSameDecisions) {
  // decide() again on every recorded input, and a whole second run from the same seed.
  for (const Simulation& sim : simulations()) {
    for (const Step& s : sim.steps) {
      ASSERT_TRUE(same(decide(s.state, s.signals, sim.policy, s.now), s.outcome)) << s.now;
    }
  }
  const Simulation again = simulate(3, kCycles);
  const Simulation& first = simulations()[2];
  ASSERT_EQ(again.steps.size(), first.steps.size());
  for (std::size_t i = 0; i < first.steps.size(); ++i) {
    ASSERT_TRUE(same(again.steps[i].outcome, first.steps[i].outcome)) << "cycle " << i;
  }
}

// Single steps from random states: every phase, window and failure time, values above the
// cap, any mix of signals. What must hold whatever state the store hands back.
TEST(PolicyProperty, RandomStatesSingleSteps) {
  static const std::vector<std::string> kIsps = {"gmail",  "outlook", "yahoo",      "gmx",
                                                 "orange", "generic", "example-isp"};
  std::mt19937 rng(20261127);
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const auto share = [&](std::uint64_t n, double most) {
    return static_cast<std::uint64_t>(static_cast<double>(n) *
                                      std::uniform_real_distribution<double>(0, most)(rng));
  };
  std::map<Rule, int> seen;
  for (int i = 0; i < 200000; ++i) {
    PolicyParams policy = default_policy();
    policy.floor = pick(0, 9) == 0 ? 2 : 1;
    const UnixSeconds now = kNow + pick(0, 90 * 86400);

    PairState st;
    st.pool = "p";
    st.isp = kIsps[static_cast<std::size_t>(pick(0, static_cast<int>(kIsps.size()) - 1))];
    st.tier = static_cast<Tier>(pick(0, 3));
    const int cap = range_for(policy, st.isp, st.tier).cap;
    st.max_smtp_out = std::max(policy.floor, pick(1, cap + 3));
    st.phase = static_cast<Phase>(pick(0, 2));
    st.last_change_at = pick(0, 4) == 0 ? 0 : now - pick(0, 10 * 86400);
    st.last_cut_at = st.last_change_at;
    st.verify_class = static_cast<C>(pick(1, 3));
    if (st.phase == Phase::verifying) {
      st.verify_until = st.last_change_at + (st.verify_class == C::reputation ? 7200 : 1800);
    }
    st.last_failure_at = pick(0, 3) == 0 ? now - pick(0, 900) : 0;

    PairSignals sig;
    sig.window.attempts = static_cast<std::uint64_t>(pick(0, 3000));
    const bool calm = pick(0, 2) == 0;  // the only inputs that can raise
    for (C c : {C::connection, C::rate, C::reputation, C::recipient, C::config, C::other}) {
      const std::uint64_t n = calm && is_throttle_signal(c)
                                  ? 0
                                  : share(sig.window.attempts, calm              ? 0.003
                                                               : pick(0, 1) == 0 ? 0.02
                                                                                 : 0.25);
      sig.window.by_class[static_cast<int>(c)] = n;
      sig.window.deferrals += n;
      if (is_throttle_signal(c)) sig.window.throttle += n;
    }
    sig.window.throttle_tq = share(sig.window.throttle, 1.0);
    sig.week = sig.window;
    sig.week.attempts += static_cast<std::uint64_t>(pick(0, 100000));
    if (calm || pick(0, 1) == 0) {
      sig.week.throttle = 0;
      sig.week.deferrals = sig.window.deferrals - sig.window.throttle;
    }
    sig.busy_days = pick(0, 7);

    const Outcome out = decide(st, sig, policy, now);
    ASSERT_TRUE(same(out, decide(st, sig, policy, now)));
    const int before = st.max_smtp_out;
    const int after = out.next.max_smtp_out;
    if (!out.decision) {
      ASSERT_EQ(after, before);
      ASSERT_EQ(out.next.phase, st.phase);
      continue;
    }
    const Decision& d = *out.decision;
    ++seen[d.rule];
    ASSERT_EQ(d.old_value, before);
    ASSERT_EQ(d.new_value, after);
    ASSERT_LE(after, cap) << describe(d);
    // A floor above the cap (floor 2, cap 1) is a contradiction; the cap wins.
    ASSERT_GE(after, std::min(policy.floor, cap)) << describe(d);
    ASSERT_GE(after, 1) << describe(d);
    if (after > before && d.rule == Rule::undo) {
      // Undoing cuts that showed no effect: never past the value before them.
      ASSERT_EQ(st.phase, Phase::no_effect) << describe(d);
      ASSERT_LE(after, std::max(before, st.last_safe)) << describe(d);
    } else if (after > before) {
      ASSERT_EQ(d.rule, Rule::raise) << describe(d);
      ASSERT_TRUE(st.last_change_at == 0 || now - st.last_change_at >= 7 * 86400) << describe(d);
      ASSERT_LE(after - before, 2) << describe(d);
      ASSERT_EQ(sig.week.throttle, 0u) << describe(d);
    }
    if (after < before) {
      ASSERT_TRUE(d.rule == Rule::cut || d.rule == Rule::severe_cut || d.rule == Rule::tier_cap)
          << describe(d);
      // Inside a verification window only a tier drop may change the value.
      if (st.phase == Phase::verifying && now < st.verify_until) {
        ASSERT_EQ(d.rule, Rule::tier_cap) << describe(d);
      }
    }
    // 30% and 50% cuts (one less for rounding), never deeper; a cut after a verdict that it
    // worked too little is sized by the share of connections still refused.
    const bool no_effect = d.reason.starts_with("the cut showed no effect");
    if (d.rule == Rule::cut && st.phase == Phase::verifying && no_effect) {
      const double fraction = std::min(sig.window.throttle_rate(), 0.5);
      ASSERT_GE(after, std::max(policy.floor, static_cast<int>(before * (1 - fraction)) - 1))
          << describe(d);
    } else if (d.rule == Rule::cut && st.phase == Phase::verifying) {
      ASSERT_GE(after, std::max(policy.floor,
                                static_cast<int>(before * (1 - sig.window.throttle_rate())) - 1))
          << describe(d);
    } else if (d.rule == Rule::cut) {
      ASSERT_GE(after, std::max(policy.floor, static_cast<int>(before * 0.7) - 1)) << describe(d);
    }
    if (d.rule == Rule::severe_cut) {
      ASSERT_GE(after, std::max(policy.floor, static_cast<int>(before * 0.5) - 1)) << describe(d);
    }
    if (st.last_failure_at != 0) {
      ASSERT_GE(now - st.last_failure_at, 300) << describe(d);
    }
  }
  for (Rule r : {Rule::cut, Rule::severe_cut, Rule::tier_cap, Rule::raise, Rule::investigate,
                 Rule::settle}) {
    EXPECT_GT(seen[r], 100) << to_string(r);
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts on a cut once its verification window is over: worked, worked too little (a cut
// sized by the share still refused), or showed no effect (twice in a row: phase no_effect).

// A pair cut from 10 to `value` against an incident whose throttle rate was `cut_rate`; the
// verification window for `trigger` signals ends at kNow.
PairState after_cut(int value, double cut_rate, C trigger = C::connection, int no_effect_cuts = 0) {
  const UnixSeconds window = trigger == C::reputation ? 2 * kHour : 30 * kMinute;
  PairState s = pair(value);
  s.phase = Phase::verifying;
  s.last_safe = 10;
  s.last_change_at = kNow - window;
  s.last_cut_at = kNow - window;
  s.verify_until = kNow;
  s.verify_class = trigger;
  s.cut_rate = cut_rate;
  s.no_effect_cuts = no_effect_cuts;
  return s;
}

// The throttle rate of `n` deferrals of class `c` in 1000 attempts: n / 1000.
SignalFigures per_mille(C c, std::uint64_t n) {
  return figures(1000, {{c, n}});
}

void expect_settled(const PairState& before, const Outcome& out) {
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::settle);
  EXPECT_EQ(out.decision->phase, Phase::steady);
  EXPECT_EQ(out.decision->old_value, before.max_smtp_out);
  EXPECT_EQ(out.decision->new_value, before.max_smtp_out);
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.max_smtp_out, before.max_smtp_out);
  EXPECT_EQ(out.next.verify_until, 0);
  EXPECT_EQ(out.next.verify_class, C::none);
  EXPECT_EQ(out.next.no_effect_cuts, 0);
  EXPECT_EQ(out.next.last_change_at, before.last_change_at);  // a verdict is no change of value
  EXPECT_EQ(out.next.last_safe, before.last_safe);
}

TEST(PolicyVerdict, AConnectionCutWorkedWhenTheRateFellUnder5Percent) {
  const PairState state = after_cut(7, 0.20, C::connection, 1);
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 40)), default_policy(), kNow);
  expect_settled(state, out);
  EXPECT_THAT(out.decision->reason, HasSubstr("the cut worked"));
  EXPECT_THAT(out.decision->reason, HasSubstr("before it 20.00%"));
}

TEST(PolicyVerdict, AConnectionCutWorkedAtExactly5Percent) {
  // Like the cut threshold: 5.0% is not above it.
  const PairState state = after_cut(7, 0.20);
  expect_settled(state,
                 decide(state, in_window(per_mille(C::connection, 50)), default_policy(), kNow));
}

TEST(PolicyVerdict, AnEmptyWindowGivesNoVerdictAndTheFirstTrafficDoes) {
  // Nothing logged in the window: right after a clock jumped forward past the records logged
  // since the cut, or while the pool sends nothing. "The cut worked" on 0 of 0 attempts would be
  // a guess, and would start recovery probes; the pair stays verifying instead.
  const PairState state = after_cut(7, 0.20);
  for (UnixSeconds now : {kNow, kNow + 6 * kHour, kNow + 3 * kDay}) {
    SCOPED_TRACE(now - kNow);
    const Outcome out = decide(state, in_window(figures(0)), default_policy(), now);
    EXPECT_FALSE(out.decision) << out.decision->reason;
    EXPECT_EQ(out.next, state);
  }
  // The first records give the verdict, however few (a cut makes fewer attempts).
  expect_settled(state, decide(state, in_window(figures(40)), default_policy(), kNow + 3 * kDay));
  const Outcome again =
      decide(state, in_window(figures(40, {{C::connection, 20}})), default_policy(), kNow);
  ASSERT_TRUE(again.decision);
  EXPECT_EQ(again.decision->rule, Rule::cut);
}

TEST(PolicyVerdict, AReputationCutWorkedWhenTheRateFellByHalfWhileStillAbove5Percent) {
  for (std::uint64_t n : {150u, 140u, 60u}) {  // 15.0% is exactly half of 30%
    const PairState state = after_cut(5, 0.30, C::reputation);
    const Outcome out =
        decide(state, in_window(per_mille(C::reputation, n)), default_policy(), kNow);
    SCOPED_TRACE(n);
    expect_settled(state, out);
  }
}

TEST(PolicyVerdict, AConnectionCutThatHalvedTheRateAbove5PercentWorkedTooLittle) {
  // Halving counts for reputation only: a connection cut must bring the rate under 5%.
  const PairState state = after_cut(8, 0.30, C::connection);
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 150)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.max_smtp_out, 6);  // floor(8 x 0.85)
  EXPECT_EQ(out.next.no_effect_cuts, 0);
}

TEST(PolicyVerdict, AReputationCutThatFellByLessThanHalfIsCutAgainAndVerifiedFor2Hours) {
  const PairState state = after_cut(6, 0.30, C::reputation);
  const Outcome out =
      decide(state, in_window(per_mille(C::reputation, 160)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.decision->old_value, 6);
  EXPECT_EQ(out.decision->new_value, 5);  // floor(6 x 0.84)
  EXPECT_EQ(out.decision->trigger, C::reputation);
  EXPECT_EQ(out.next.max_smtp_out, 5);
  EXPECT_EQ(out.next.phase, Phase::verifying);
  EXPECT_EQ(out.next.verify_until, kNow + 2 * kHour);
  EXPECT_EQ(out.next.verify_class, C::reputation);
  EXPECT_DOUBLE_EQ(out.next.cut_rate, 0.16);
  EXPECT_EQ(out.next.no_effect_cuts, 0);
  EXPECT_EQ(out.next.last_safe, 10);
}

TEST(PolicyVerdict, WorkedTooLittleCutsAgainSizedByTheShareStillRefused) {
  const PairState state = after_cut(8, 0.50);
  const Outcome out =
      decide(state, in_window(figures(1000, {{C::connection, 300}}, 300)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.decision->old_value, 8);
  EXPECT_EQ(out.decision->new_value, 5);  // floor(8 x (1 - 0.30))
  EXPECT_EQ(out.decision->phase, Phase::verifying);
  EXPECT_EQ(out.decision->trigger, C::connection);
  EXPECT_THAT(out.decision->reason, HasSubstr("the cut worked too little"));
  EXPECT_THAT(out.decision->reason, HasSubstr("before it 50.00%"));
  EXPECT_EQ(out.next.max_smtp_out, 5);
  EXPECT_EQ(out.next.phase, Phase::verifying);
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_EQ(out.next.last_cut_at, kNow);
  EXPECT_EQ(out.next.verify_until, kNow + 30 * kMinute);
  EXPECT_EQ(out.next.verify_class, C::connection);
  EXPECT_DOUBLE_EQ(out.next.cut_rate, 0.30);  // the next verdict compares with this rate
  EXPECT_EQ(out.next.no_effect_cuts, 0);
  EXPECT_EQ(out.next.last_safe, 10);  // still the value before the incident's first cut
}

struct SizedCase {
  const char* name;
  int value;
  double cut_rate;
  std::uint64_t throttle;  // of 1000 attempts
  int expected;
};

class PolicyVerdictSized : public ::testing::TestWithParam<SizedCase> {};

TEST_P(PolicyVerdictSized, CutsToWhatTheIspAccepts) {
  const SizedCase& c = GetParam();
  const Outcome out =
      decide(after_cut(c.value, c.cut_rate), in_window(per_mille(C::connection, c.throttle)),
             default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.max_smtp_out, c.expected);
  EXPECT_EQ(out.next.no_effect_cuts, 0);  // each of these fell by at least a fifth
}

INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyVerdictSized,
    ::testing::Values(SizedCase{"TenAt25PercentIs7", 10, 0.40, 250, 7},
                      SizedCase{"EightAt6PercentIs7", 8, 0.50, 60, 7},
                      SizedCase{"ThreeAt60PercentIs1", 3, 0.90, 600, 1},
                      // floor(2 x 0.3) is 0: never below the floor.
                      SizedCase{"TwoAt70PercentIsTheFloor", 2, 0.90, 700, 1},
                      // 25% to 20% fell by exactly a fifth: too little, not "no effect".
                      SizedCase{"ExactlyAFifthWorkedTooLittle", 6, 0.25, 200, 4}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PolicyVerdict, ASizedCutNeverGoesBelowAConfiguredFloor) {
  PolicyParams policy = default_policy();
  policy.floor = 2;
  const Outcome out = decide(after_cut(3, 0.90), in_window(per_mille(C::connection, 700)), policy,
                             kNow);  // floor(3 x 0.3) is 0
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.max_smtp_out, 2);
}

TEST(PolicyVerdict, NoEffectOnceCutsAgainAndCountsIt) {
  const PairState state = after_cut(8, 0.20);
  // 18% after 20%: fell by a tenth, less than a fifth.
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 180)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.decision->new_value, 6);  // floor(8 x 0.82)
  EXPECT_THAT(out.decision->reason, HasSubstr("the cut showed no effect"));
  EXPECT_EQ(out.next.phase, Phase::verifying);
  EXPECT_EQ(out.next.max_smtp_out, 6);
  EXPECT_EQ(out.next.no_effect_cuts, 1);
  EXPECT_DOUBLE_EQ(out.next.cut_rate, 0.18);
  EXPECT_EQ(out.next.verify_until, kNow + 30 * kMinute);
}

TEST(PolicyVerdict, AfterNoEffectTheNextCutIsNeverDeeperThanAnOrdinaryOne) {
  // 68% still refused after a cut from 8: not a sign of what the ISP accepts; 50% at most.
  const Outcome out =
      decide(after_cut(5, 0.70), in_window(per_mille(C::connection, 680)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.max_smtp_out, 2);  // floor(5 x 0.5), not floor(5 x 0.32)
}

TEST(PolicyVerdict, NoEffectTwiceInARowStopsCuttingWithAWarning) {
  const PairState state = after_cut(6, 0.18, C::connection, 1);
  // The rate even rose: no effect.
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 200)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::no_effect);
  EXPECT_EQ(out.decision->phase, Phase::no_effect);
  EXPECT_EQ(out.decision->old_value, 6);
  EXPECT_EQ(out.decision->new_value, 6);
  EXPECT_FALSE(out.decision->changes_value());
  EXPECT_THAT(out.decision->reason, HasSubstr("wrong variable or something else is going on"));
  EXPECT_THAT(out.decision->reason, HasSubstr("no more cuts for this incident"));
  EXPECT_THAT(out.decision->reason, HasSubstr("back to 10"));
  EXPECT_EQ(out.next.phase, Phase::no_effect);
  EXPECT_EQ(out.next.max_smtp_out, 6);
  EXPECT_EQ(out.next.no_effect_cuts, 2);
  EXPECT_EQ(out.next.verify_until, 0);
  EXPECT_EQ(out.next.last_safe, 10);
  EXPECT_EQ(out.next.last_change_at, state.last_change_at);
}

TEST(PolicyVerdict, ACutThatWorkedTooLittleBreaksARunOfNoEffect) {
  // One cut showed no effect; the next fell by a third: the run starts over.
  const Outcome second = decide(after_cut(6, 0.30, C::connection, 1),
                                in_window(per_mille(C::connection, 200)), default_policy(), kNow);
  ASSERT_TRUE(second.decision);
  EXPECT_EQ(second.decision->rule, Rule::cut);
  EXPECT_EQ(second.next.max_smtp_out, 4);  // floor(6 x 0.8)
  EXPECT_EQ(second.next.no_effect_cuts, 0);

  // A cut without effect after it is the first of a new run: cut again, not phase no_effect.
  const Outcome third = decide(second.next, in_window(per_mille(C::connection, 190)),
                               default_policy(), kNow + 30 * kMinute);
  ASSERT_TRUE(third.decision);
  EXPECT_EQ(third.decision->rule, Rule::cut);
  EXPECT_EQ(third.next.max_smtp_out, 3);  // floor(4 x 0.81)
  EXPECT_EQ(third.next.no_effect_cuts, 1);
  EXPECT_EQ(third.next.phase, Phase::verifying);
}

TEST(PolicyVerdict, NoEffectAtTheFloorStopsAtOnce) {
  // Nothing left to cut: one cut without effect is enough.
  const PairState state = after_cut(1, 0.20);
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 200)), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::no_effect);
  EXPECT_EQ(out.next.phase, Phase::no_effect);
  EXPECT_EQ(out.next.max_smtp_out, 1);
  EXPECT_EQ(out.next.no_effect_cuts, 1);
}

TEST(PolicyVerdict, WorkedTooLittleAtTheFloorSettles) {
  const PairState state = after_cut(1, 0.50);
  const Outcome out =
      decide(state, in_window(per_mille(C::connection, 200)), default_policy(), kNow);
  expect_settled(state, out);
  EXPECT_THAT(out.decision->reason, HasSubstr("at the floor 1"));
  // Recovery probes lead it back up once the throttling is over.
  EXPECT_EQ(out.next.probe_interval, 6 * kHour);
}

TEST(PolicyVerdict, AThinWindowDoesNotDelayTheVerdict) {
  // 30, 50 and 10 attempts, no refused connection: a steady pair would not act on any of them.
  const PairState worked = after_cut(7, 0.20);
  expect_settled(
      worked, decide(worked, in_window(figures(30, {{C::connection, 1}})), default_policy(), kNow));

  const Outcome again = decide(after_cut(8, 0.20), in_window(figures(50, {{C::connection, 10}})),
                               default_policy(), kNow);
  ASSERT_TRUE(again.decision);
  EXPECT_EQ(again.decision->rule, Rule::cut);
  EXPECT_EQ(again.next.max_smtp_out, 6);  // floor(8 x 0.8)
  EXPECT_EQ(again.next.no_effect_cuts, 1);

  const Outcome stop = decide(after_cut(6, 0.18, C::connection, 1),
                              in_window(figures(10, {{C::connection, 5}})), default_policy(), kNow);
  ASSERT_TRUE(stop.decision);
  EXPECT_EQ(stop.decision->rule, Rule::no_effect);
  EXPECT_EQ(stop.next.phase, Phase::no_effect);

  // The same thin window for a steady pair: no action.
  EXPECT_FALSE(
      decide(pair(8), in_window(figures(50, {{C::connection, 10}})), default_policy(), kNow)
          .decision);
}

// ---------------------------------------------------------------------------------------------
// Phase no_effect: the cuts are undone step by step, nothing cuts, a clean window ends it.

// Two cuts from 10 to `value` showed no effect; the last of them `since` ago.
PairState in_no_effect(int value, int last_safe = 10, UnixSeconds since = 30 * kMinute) {
  PairState s = pair(value);
  s.phase = Phase::no_effect;
  s.last_safe = last_safe;
  s.last_change_at = kNow - since;
  s.last_cut_at = kNow - since;
  s.verify_class = C::connection;
  s.cut_rate = 0.20;
  s.no_effect_cuts = 2;
  return s;
}

const SignalFigures kHeavyThrottle = figures(1000, {{C::connection, 500}}, 200);

TEST(PolicyNoEffect, UndoesHalfWayBackToLastSafeOneStepPerVerificationWindow) {
  PairState state = in_no_effect(2);
  UnixSeconds t = kNow;
  // 2 -> 6 (+4 of 8), -> 8 (+2 of 4), -> 9 (+1 of 2), -> 10 (at least +1).
  for (int expected : {6, 8, 9, 10}) {
    SCOPED_TRACE(expected);
    const Outcome step = decide(state, in_window(kHeavyThrottle), default_policy(), t);
    ASSERT_TRUE(step.decision);
    EXPECT_EQ(step.decision->rule, Rule::undo);
    EXPECT_EQ(step.decision->phase, Phase::no_effect);
    EXPECT_EQ(step.decision->old_value, state.max_smtp_out);
    EXPECT_EQ(step.decision->new_value, expected);
    EXPECT_THAT(step.decision->reason, HasSubstr("towards 10"));
    EXPECT_EQ(step.next.max_smtp_out, expected);
    EXPECT_EQ(step.next.phase, Phase::no_effect);
    EXPECT_EQ(step.next.last_change_at, t);
    EXPECT_EQ(step.next.last_safe, 10);
    state = step.next;

    // No second step inside the window.
    const Outcome early =
        decide(state, in_window(kHeavyThrottle), default_policy(), t + 30 * kMinute - 1);
    EXPECT_FALSE(early.decision);
    EXPECT_EQ(early.next, state);
    t += 30 * kMinute;
  }
  // Back at last_safe: never past it.
  for (int i = 0; i < 3; ++i, t += 30 * kMinute) {
    const Outcome out = decide(state, in_window(kHeavyThrottle), default_policy(), t);
    EXPECT_FALSE(out.decision);
    EXPECT_EQ(out.next, state);
  }
}

struct UndoCase {
  int value;
  int last_safe;
  std::optional<int> expected;  // nullopt: no step
};

class PolicyUndoStep : public ::testing::TestWithParam<UndoCase> {};

TEST_P(PolicyUndoStep, NeverPastLastSafe) {
  const UndoCase& c = GetParam();
  const PairState state = in_no_effect(c.value, c.last_safe);
  const Outcome out = decide(state, in_window(kHeavyThrottle), default_policy(), kNow);
  if (!c.expected) {
    EXPECT_FALSE(out.decision);
    EXPECT_EQ(out.next, state);
    return;
  }
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::undo);
  EXPECT_EQ(out.next.max_smtp_out, *c.expected);
}

INSTANTIATE_TEST_SUITE_P(Policy, PolicyUndoStep,
                         ::testing::Values(UndoCase{1, 10, 6}, UndoCase{7, 10, 9},
                                           UndoCase{9, 10, 10}, UndoCase{1, 2, 2},
                                           UndoCase{4, 5, 5}, UndoCase{5, 5, std::nullopt},
                                           UndoCase{6, 5, std::nullopt}),
                         [](const auto& info) {
                           return "From" + std::to_string(info.param.value) + "LastSafe" +
                                  std::to_string(info.param.last_safe);
                         });

TEST(PolicyNoEffect, AfterAReputationIncidentOneStepPerReputationWindow) {
  // The incident's verification window is 2 hours: so is the wait between undo steps.
  PairState state = in_no_effect(2, 10, 2 * kHour);
  state.verify_class = C::reputation;
  const PairSignals heavy = in_window(figures(1000, {{C::reputation, 500}}));
  const Outcome first = decide(state, heavy, default_policy(), kNow);
  ASSERT_TRUE(first.decision);
  EXPECT_EQ(first.next.max_smtp_out, 6);

  const Outcome early = decide(first.next, heavy, default_policy(), kNow + 2 * kHour - 1);
  EXPECT_FALSE(early.decision) << early.decision->reason;
  EXPECT_EQ(early.next.max_smtp_out, 6);

  const Outcome second = decide(first.next, heavy, default_policy(), kNow + 2 * kHour);
  ASSERT_TRUE(second.decision);
  EXPECT_EQ(second.next.max_smtp_out, 8);
}

TEST(PolicyNoEffect, NothingCutsEvenUnderHeavyThrottling) {
  // Four hours of 5-minute cycles at 50% throttle deferrals, severe enough for a 50% cut.
  PairState state = in_no_effect(2, 10, 0);
  for (UnixSeconds t = kNow; t < kNow + 4 * kHour; t += 5 * kMinute) {
    PairSignals signals = in_window(kHeavyThrottle);
    signals.incident = kHeavyThrottle;
    const Outcome out = decide(state, signals, default_policy(), t);
    ASSERT_GE(out.next.max_smtp_out, state.max_smtp_out) << "at +" << (t - kNow) << " s";
    ASSERT_EQ(out.next.phase, Phase::no_effect);
    if (out.decision) {
      ASSERT_EQ(out.decision->rule, Rule::undo);
    }
    state = out.next;
  }
  EXPECT_EQ(state.max_smtp_out, 10);
}

TEST(PolicyNoEffect, AWindowWithoutThrottleSignalsEndsIt) {
  // Even inside an undo step's wait: the signals are gone.
  const PairState state = in_no_effect(4, 10, 5 * kMinute);
  const Outcome out =
      decide(state, in_window(figures(1000, {{C::other, 10}})), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::settle);
  EXPECT_EQ(out.decision->phase, Phase::steady);
  EXPECT_FALSE(out.decision->changes_value());
  EXPECT_THAT(out.decision->reason, HasSubstr("no-effect phase over"));
  EXPECT_EQ(out.next.phase, Phase::steady);
  EXPECT_EQ(out.next.max_smtp_out, 4);
  EXPECT_EQ(out.next.no_effect_cuts, 0);
  EXPECT_EQ(out.next.last_change_at, state.last_change_at);

  // A later incident is a new one: cut again, from the value it settled at.
  const Outcome cut = decide(out.next, in_window(per_mille(C::connection, 100)), default_policy(),
                             kNow + 5 * kMinute);
  ASSERT_TRUE(cut.decision);
  EXPECT_EQ(cut.decision->rule, Rule::cut);
  EXPECT_EQ(cut.next.max_smtp_out, 2);  // floor(4 x 0.7)
  EXPECT_EQ(cut.next.last_safe, 4);
}

TEST(PolicyNoEffect, AnEmptyWindowDoesNotEndIt) {
  // No throttle signal in a window without traffic is no evidence that the incident is over.
  const PairState state = in_no_effect(4, 10, 3 * kDay);
  const Outcome out = decide(state, in_window(figures(0)), default_policy(), kNow);
  EXPECT_FALSE(out.decision) << out.decision->reason;
  EXPECT_EQ(out.next, state);
}

// ---------------------------------------------------------------------------------------------
// The incident's own rate: from its first throttled bucket on.

// 5-minute buckets over the last hour, `n` of each kind in turn: clean (100 attempts) or
// throttled (100 attempts, 20 connection deferrals).
std::vector<PairBucket> hour_of(std::initializer_list<std::pair<bool, int>> runs) {
  std::vector<PairBucket> series;
  UnixSeconds start = kNow - kHour;
  for (const auto& [throttled, n] : runs) {
    for (int i = 0; i < n; ++i, start += 5 * kMinute) {
      series.push_back({start, throttled ? figures(100, {{C::connection, 20}}) : figures(100)});
    }
  }
  return series;
}

TEST(PolicyIncident, AThrottledHalfHourAfterACleanOneIsMeasuredOnItsOwn) {
  const std::vector<PairBucket> series = hour_of({{false, 6}, {true, 6}});
  const PairSignals signals = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(signals.window.attempts, 1200u);
  EXPECT_EQ(signals.window.throttle, 120u);
  EXPECT_EQ(signals.incident.attempts, 600u);
  EXPECT_EQ(signals.incident.throttle, 120u);
  EXPECT_DOUBLE_EQ(signals.incident.throttle_rate(), 0.20);

  // The cut is sized by the window (10%: 30%), and remembers the incident's rate.
  const Outcome cut = decide(pair(10), signals, default_policy(), kNow);
  ASSERT_TRUE(cut.decision);
  EXPECT_EQ(cut.decision->rule, Rule::cut);
  EXPECT_EQ(cut.next.max_smtp_out, 7);
  EXPECT_DOUBLE_EQ(cut.next.cut_rate, 0.20);

  // 15% after it fell by a quarter of 20% (against the diluted 10% it would have risen): the
  // cut worked too little, it did not show "no effect".
  const Outcome verdict = decide(cut.next, in_window(per_mille(C::connection, 150)),
                                 default_policy(), kNow + 30 * kMinute);
  ASSERT_TRUE(verdict.decision);
  EXPECT_THAT(verdict.decision->reason, HasSubstr("the cut worked too little"));
  EXPECT_EQ(verdict.next.no_effect_cuts, 0);
  EXPECT_EQ(verdict.next.max_smtp_out, 5);  // floor(7 x 0.85)
}

TEST(PolicyIncident, CleanBucketsAfterItsStartStayInTheIncident) {
  const PairSignals signals =
      summarize(hour_of({{false, 4}, {true, 4}, {false, 4}}), kNow - kHour, kNow, default_policy());
  EXPECT_EQ(signals.window.attempts, 1200u);
  EXPECT_EQ(signals.incident.attempts, 800u);
  EXPECT_EQ(signals.incident.throttle, 80u);
}

TEST(PolicyIncident, OnlyThrottleSignalsInsideTheWindowStartIt) {
  std::vector<PairBucket> series = {{kNow - 2 * kHour, figures(100, {{C::connection, 50}})}};
  const std::vector<PairBucket> clean = hour_of({{false, 12}});
  series.insert(series.end(), clean.begin(), clean.end());
  series[5].figures = figures(100, {{C::other, 30}});  // not a throttle signal
  const PairSignals signals = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(signals.window.attempts, 1200u);
  EXPECT_EQ(signals.incident.attempts, 0u);
}

TEST(PolicyIncident, WithoutIncidentFiguresTheCutRateIsTheWindows) {
  const Outcome cut =
      decide(pair(10), in_window(per_mille(C::connection, 100)), default_policy(), kNow);
  ASSERT_TRUE(cut.decision);
  EXPECT_DOUBLE_EQ(cut.next.cut_rate, 0.10);
}

// ---------------------------------------------------------------------------------------------
// Per-IP diagnosis: deferrals concentrated on a few IPs are those IPs' remedy, not the pool's.

TEST(PolicyDiagnosis, ConcentratedOnOneIpOfFour) {
  const IpDiagnosis d = diagnose_ips({{"203.0.113.1", per_mille(C::connection, 10)},
                                      {"203.0.113.2", per_mille(C::connection, 200)},
                                      {"203.0.113.3", per_mille(C::connection, 10)},
                                      {"203.0.113.4", figures(1000)}},
                                     default_policy());
  EXPECT_TRUE(d.concentrated);
  EXPECT_THAT(d.ips, ::testing::ElementsAre("203.0.113.2"));
  EXPECT_DOUBLE_EQ(d.affected_rate, 0.20);
  EXPECT_DOUBLE_EQ(d.rest_rate, 20.0 / 3000);
}

TEST(PolicyDiagnosis, ConcentratedOnTwoIpsOfFourWorstFirst) {
  // The worst alone is not enough: the rest (16 of 3000, 5.3%) is above the threshold.
  const IpDiagnosis d = diagnose_ips({{"203.0.113.1", per_mille(C::connection, 150)},
                                      {"203.0.113.2", per_mille(C::connection, 10)},
                                      {"203.0.113.3", per_mille(C::reputation, 250)},
                                      {"203.0.113.4", figures(1000)}},
                                     default_policy());
  EXPECT_TRUE(d.concentrated);
  EXPECT_THAT(d.ips, ::testing::ElementsAre("203.0.113.3", "203.0.113.1"));
  EXPECT_DOUBLE_EQ(d.affected_rate, 0.20);
  EXPECT_DOUBLE_EQ(d.rest_rate, 0.005);
}

struct NotConcentratedCase {
  const char* name;
  std::map<std::string, SignalFigures> by_ip;
};

class PolicyDiagnosisNot : public ::testing::TestWithParam<NotConcentratedCase> {};

TEST_P(PolicyDiagnosisNot, Concentrated) {
  const IpDiagnosis d = diagnose_ips(GetParam().by_ip, default_policy());
  EXPECT_FALSE(d.concentrated);
  EXPECT_THAT(d.ips, ::testing::IsEmpty());
  EXPECT_EQ(d.affected_rate, 0);
  EXPECT_EQ(d.rest_rate, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyDiagnosisNot,
    ::testing::Values(NotConcentratedCase{"SpreadEvenly",
                                          {{"203.0.113.1", per_mille(C::connection, 100)},
                                           {"203.0.113.2", per_mille(C::connection, 100)},
                                           {"203.0.113.3", per_mille(C::connection, 100)},
                                           {"203.0.113.4", per_mille(C::connection, 100)}}},
                      NotConcentratedCase{"SpreadUnevenlyAllAbove5Percent",
                                          {{"203.0.113.1", per_mille(C::connection, 80)},
                                           {"203.0.113.2", per_mille(C::connection, 120)},
                                           {"203.0.113.3", per_mille(C::connection, 90)},
                                           {"203.0.113.4", per_mille(C::connection, 100)}}},
                      NotConcentratedCase{"TheRestAbove5Percent",
                                          {{"203.0.113.1", per_mille(C::connection, 400)},
                                           {"203.0.113.2", per_mille(C::connection, 60)},
                                           {"203.0.113.3", per_mille(C::connection, 60)},
                                           {"203.0.113.4", per_mille(C::connection, 60)}}},
                      // 10% is not 3 x 4%.
                      NotConcentratedCase{"NotThreeTimesTheRest",
                                          {{"203.0.113.1", per_mille(C::connection, 100)},
                                           {"203.0.113.2", per_mille(C::connection, 40)},
                                           {"203.0.113.3", per_mille(C::connection, 40)},
                                           {"203.0.113.4", per_mille(C::connection, 40)}}},
                      NotConcentratedCase{"TheWorstUnder5Percent",
                                          {{"203.0.113.1", per_mille(C::connection, 40)},
                                           {"203.0.113.2", figures(1000)},
                                           {"203.0.113.3", figures(1000)}}},
                      NotConcentratedCase{"OtherDeferralsAreNoThrottle",
                                          {{"203.0.113.1", per_mille(C::other, 300)},
                                           {"203.0.113.2", figures(1000)}}},
                      NotConcentratedCase{"ASingleIp",
                                          {{"203.0.113.1", per_mille(C::connection, 300)}}},
                      NotConcentratedCase{"ASingleIpWithTraffic",
                                          {{"203.0.113.1", per_mille(C::connection, 300)},
                                           {"203.0.113.2", figures(0)}}},
                      NotConcentratedCase{"NoIps", {}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PolicyDiagnosis, DecideMakesNoPoolCutWhenConcentrated) {
  // One IP of four at 20%, the rest at 1%: 5.75% for the pool, above the cut threshold.
  const std::map<std::string, SignalFigures> by_ip = {
      {"203.0.113.1", per_mille(C::connection, 200)},
      {"203.0.113.2", per_mille(C::connection, 10)},
      {"203.0.113.3", per_mille(C::connection, 10)},
      {"203.0.113.4", per_mille(C::connection, 10)}};
  PairSignals signals = in_window(figures(4000, {{C::connection, 230}}));
  const PairState state = pair(8);
  ASSERT_TRUE(decide(state, signals, default_policy(), kNow).decision);  // undiagnosed: a cut

  signals.diagnosis = diagnose_ips(by_ip, default_policy());
  ASSERT_TRUE(signals.diagnosis.concentrated);
  const Outcome out = decide(state, signals, default_policy(), kNow);
  EXPECT_FALSE(out.decision);
  EXPECT_EQ(out.next, state);
}

// ---------------------------------------------------------------------------------------------
// Warm-up: max-msg-rate by stage, one up per clean week, one back on throttle signals.

// A warming Gmail pair (range 1-3) at `stage`, in it since `since`.
PairState warming(int value, int stage, UnixSeconds since) {
  PairState s = pair(value, Tier::warming);
  s.warmup_stage = stage;
  s.warmup_stage_at = since;
  return s;
}

TEST(PolicyWarmup, ANewWarmingPairStartsAt2WhereTheRangeAllows) {
  const PolicyParams policy = default_policy();
  EXPECT_EQ(initial_state("p", "gmail", Tier::warming, std::nullopt, policy).max_smtp_out, 2);
  EXPECT_EQ(initial_state("p", "gmx", Tier::warming, std::nullopt, policy).max_smtp_out, 1);
  // The operator's value inside the range stays; outside it, 2.
  EXPECT_EQ(initial_state("p", "gmail", Tier::warming, 3, policy).max_smtp_out, 3);
  EXPECT_EQ(initial_state("p", "gmail", Tier::warming, 1, policy).max_smtp_out, 1);
  EXPECT_EQ(initial_state("p", "gmail", Tier::warming, 8, policy).max_smtp_out, 2);
  EXPECT_EQ(initial_state("p", "gmail", Tier::medium, 8, policy).max_smtp_out, 8);
}

TEST(PolicyWarmup, TheStagesRatesAndRetryAfter) {
  const PolicyParams policy = default_policy();
  PairState s = warming(2, 0, kNow);
  const int expected[] = {50, 100, 200, 400, 800, 0};
  for (int stage = 0; stage <= 5; ++stage) {
    s.warmup_stage = stage;
    EXPECT_EQ(warmup_rate(s, policy), expected[stage]) << stage;
    EXPECT_EQ(retry_after_minutes(s, policy), 30) << stage;
  }
  s.tier = Tier::medium;
  s.warmup_stage = 0;
  EXPECT_EQ(warmup_rate(s, policy), 0);
  EXPECT_EQ(retry_after_minutes(s, policy), 0);
}

TEST(PolicyWarmup, AnIspOfItsOwnElseGeneric) {
  PolicyParams policy = default_policy();
  policy.warmup_rates["gmail"] = {20, 40};
  PairState s = warming(2, 1, kNow);
  EXPECT_EQ(warmup_rate(s, policy), 40);
  s.isp = "yahoo";
  EXPECT_EQ(warmup_rate(s, policy), 100);
}

TEST(PolicyWarmup, TheScheduleStartsAtTheFirstDecision) {
  const Outcome out = decide(warming(2, 0, 0), stable_week(), default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage_at, kNow);
  EXPECT_EQ(out.next.warmup_stage, 0);
  EXPECT_FALSE(out.decision && out.decision->rule == Rule::warmup);
}

TEST(PolicyWarmup, OneStageUpAfterACleanWeek) {
  const PairState s = warming(2, 0, kNow - 7 * kDay);
  const Outcome out = decide(s, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::warmup);
  EXPECT_TRUE(out.decision->rewrites_fragment());
  EXPECT_EQ(out.next.warmup_stage, 1);
  EXPECT_EQ(out.next.warmup_stage_at, kNow);
  EXPECT_EQ(out.next.max_smtp_out, 3);  // the weekly step comes with the stage
  EXPECT_EQ(out.next.last_change_at, kNow);
  EXPECT_EQ(out.next.tier, Tier::warming);
  EXPECT_THAT(out.decision->reason, HasSubstr("7 clean days at max-msg-rate 50/h"));
  EXPECT_THAT(out.decision->reason, HasSubstr("stage 2 of 5: max-msg-rate 100/h"));
  EXPECT_THAT(out.decision->reason, HasSubstr("max-smtp-out 2 -> 3 (cap 3)"));
}

TEST(PolicyWarmup, AtTheCapOrSoonAfterAChangeOnlyTheRateSteps) {
  PairState at_cap = warming(3, 1, kNow - 7 * kDay);
  Outcome out = decide(at_cap, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::warmup);
  EXPECT_FALSE(out.decision->changes_value());
  EXPECT_TRUE(out.decision->rewrites_fragment());
  EXPECT_EQ(out.next.warmup_stage, 2);

  PairState changed = warming(2, 1, kNow - 7 * kDay);
  changed.last_change_at = kNow - 3 * kDay;
  out = decide(changed, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.next.max_smtp_out, 2);
  EXPECT_EQ(out.next.warmup_stage, 2);
}

TEST(PolicyWarmup, NoWeeklyRaiseWhileWarmingButAfterwards) {
  PairState s = warming(2, 1, kNow - kDay);
  EXPECT_FALSE(decide(s, stable_week(), default_policy(), kNow).decision);
  s.warmup_stage = 5;  // a [[tier]] warming after the schedule: the weekly rule again
  const Outcome out = decide(s, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::raise);
}

TEST(PolicyWarmup, NotBeforeTheWeekIsOver) {
  const PairState s = warming(2, 0, kNow - 7 * kDay + kMinute);
  const Outcome out = decide(s, stable_week(), default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage, 0);
  EXPECT_FALSE(out.decision && out.decision->rule == Rule::warmup);
}

TEST(PolicyWarmup, AThrottleSignalRestartsTheWeek) {
  PairState s = warming(2, 1, kNow - 10 * kDay);
  s.last_throttle_at = kNow - 3 * kDay;
  EXPECT_FALSE(decide(s, stable_week(), default_policy(), kNow).decision &&
               decide(s, stable_week(), default_policy(), kNow).decision->rule == Rule::warmup);
  PairSignals throttled_week = stable_week();
  throttled_week.week = figures(50000, {{C::connection, 3}});
  s.last_throttle_at = 0;
  const Outcome out = decide(s, throttled_week, default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage, 1);
}

TEST(PolicyWarmup, AThinWindowDoesNotHoldAStageUp) {
  // 50 messages an hour: never the 100 attempts a window needs for a cut or a raise.
  PairSignals slow = stable_week();
  slow.window = figures(50);
  const Outcome out = decide(warming(2, 0, kNow - 7 * kDay), slow, default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::warmup);
}

TEST(PolicyWarmup, NoStageUpWhileOtherDeferralsAreHigh) {
  PairSignals troubled = stable_week();
  troubled.window = figures(1000, {{C::recipient, 80}});
  const Outcome out = decide(warming(2, 0, kNow - 7 * kDay), troubled, default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage, 0);
}

TEST(PolicyWarmup, NoStageUpWithoutTraffic) {
  PairSignals idle = stable_week();
  idle.busy_days = 1;
  const Outcome out = decide(warming(2, 0, kNow - 8 * kDay), idle, default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage, 0);
}

TEST(PolicyWarmup, PastTheLastStageNoLimitAndTierMedium) {
  const PairState s = warming(3, 4, kNow - 7 * kDay);
  const Outcome out = decide(s, stable_week(), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::warmup);
  EXPECT_EQ(out.next.warmup_stage, 5);
  EXPECT_EQ(out.next.tier, Tier::medium);
  EXPECT_TRUE(out.next.warmed_up);
  EXPECT_EQ(warmup_rate(out.next, default_policy()), 0);
  EXPECT_EQ(retry_after_minutes(out.next, default_policy()), 0);
  EXPECT_TRUE(out.decision->rewrites_fragment());
  EXPECT_THAT(out.decision->reason, HasSubstr("schedule complete"));
}

TEST(PolicyWarmup, ACutStepsTheScheduleBackOneStage) {
  const PairState s = warming(3, 2, kNow - 3 * kDay);
  const Outcome out =
      decide(s, in_window(figures(1000, {{C::connection, 100}})), default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::cut);
  EXPECT_EQ(out.next.max_smtp_out, 2);
  EXPECT_EQ(out.next.warmup_stage, 1);
  EXPECT_EQ(out.next.warmup_stage_at, kNow);
  EXPECT_THAT(out.decision->reason, HasSubstr("warm-up back to stage 2: max-msg-rate 100/h"));
}

TEST(PolicyWarmup, AtTheFloorTheScheduleAloneStepsBackOncePerWindow) {
  const PairSignals throttled = in_window(figures(1000, {{C::connection, 100}}));
  const PairState s = warming(1, 2, kNow - 3 * kDay);
  const Outcome out = decide(s, throttled, default_policy(), kNow);
  ASSERT_TRUE(out.decision);
  EXPECT_EQ(out.decision->rule, Rule::warmup);
  EXPECT_EQ(out.next.max_smtp_out, 1);
  EXPECT_EQ(out.next.warmup_stage, 1);
  EXPECT_TRUE(out.decision->rewrites_fragment());

  const Outcome again = decide(out.next, throttled, default_policy(), kNow + 10 * kMinute);
  EXPECT_FALSE(again.decision);
  EXPECT_EQ(again.next.warmup_stage, 1);
  // The first stage is as low as it goes.
  const Outcome first = decide(warming(1, 0, kNow - kDay), throttled, default_policy(), kNow);
  EXPECT_FALSE(first.decision);
  EXPECT_EQ(first.next.warmup_stage, 0);
}

TEST(PolicyWarmup, AStrayThrottleSignalBelowTheThresholdKeepsTheStage) {
  const Outcome out =
      decide(warming(1, 2, kNow - 3 * kDay), in_window(figures(1000, {{C::connection, 10}})),
             default_policy(), kNow);
  EXPECT_EQ(out.next.warmup_stage, 2);
  EXPECT_EQ(out.next.last_throttle_at, kNow);  // but the clean week starts again
}

// Recovering pairs retry sooner, until they are back at the value before the cut.
TEST(PolicyRetryAfter, TwentyMinutesWhileRecovering) {
  const PolicyParams policy = default_policy();
  PairState s = pair(4);
  s.last_safe = 6;
  EXPECT_EQ(retry_after_minutes(s, policy), 0);  // steady, not recovering
  s.phase = Phase::verifying;
  EXPECT_EQ(retry_after_minutes(s, policy), 20);
  s.phase = Phase::steady;
  s.probe_interval = 6 * kHour;
  EXPECT_EQ(retry_after_minutes(s, policy), 20);
  s.max_smtp_out = 6;
  EXPECT_EQ(retry_after_minutes(s, policy), 0);  // back at the safe level
}

TEST(PolicyRetryAfter, ACutThatStartsARecoveryRewritesTheFragment) {
  const Outcome cut =
      decide(pair(8), in_window(figures(1000, {{C::connection, 100}})), default_policy(), kNow);
  ASSERT_TRUE(cut.decision);
  EXPECT_TRUE(cut.decision->settings_change);
  EXPECT_EQ(retry_after_minutes(cut.next, default_policy()), 20);
}

}  // namespace
}  // namespace sluice
