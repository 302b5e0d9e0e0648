#include "sim/policies.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "controller/policy.h"

namespace sluice::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::int64_t kStart = 1795737600;  // 2026-11-27T00:00:00Z
constexpr std::int64_t kStep = 300;
constexpr std::int64_t kMinute = 60;
constexpr std::int64_t kHour = 3600;

// One gmail pool ("p") starting at `start_setting`, with plenty of demand for its IPs' limits.
config::Scenario scenario(std::vector<std::int64_t> limits, std::int64_t start_setting,
                          std::int64_t days = 1) {
  config::Scenario s;
  s.name = "test";
  s.start = kStart;
  s.days = days;
  s.step_seconds = kStep;
  s.messages_per_connection = 10;
  config::SimPool pool;
  pool.name = "p";
  pool.isp = "gmail";
  pool.domain = "gmail.com";
  pool.start_setting = start_setting;
  pool.demand = 10000;
  for (std::size_t i = 0; i < limits.size(); ++i) {
    pool.ips.push_back(config::SimIp{"ip-" + std::to_string(i + 1),
                                     "198.51.100." + std::to_string(11 + i), limits[i]});
  }
  s.pools.push_back(pool);
  return s;
}

config::SimEvent event(config::SimEventKind kind, std::int64_t start, std::int64_t end,
                       double value, std::string vmta = "") {
  config::SimEvent e;
  e.kind = kind;
  e.start = start;
  e.end = end;
  e.pool = "p";
  e.vmta = std::move(vmta);
  e.value = value;
  return e;
}

// The IP refuses every connection in the steps starting at the given offsets (limit 10 else).
config::Scenario with_drops(std::vector<std::int64_t> offsets, std::int64_t start_setting) {
  config::Scenario s = scenario({10}, start_setting);
  for (const std::int64_t at : offsets) {
    s.events.push_back(event(config::SimEventKind::limit, at, at + kStep, 0.01));
  }
  return s;
}

// VMTA 0's setting in the step starting `offset` seconds after the start.
int setting_at(const Trace& trace, std::int64_t offset) {
  return trace.settings.at(static_cast<std::size_t>(offset / kStep)).at(0);
}

sim::Run run_named(const config::Scenario& s, const std::string& name) {
  std::unique_ptr<Policy> policy = make_baseline(name);
  return run_policy(s, *policy, true);
}

config::SimLimit limit(std::string policy, std::string metric) {
  config::SimLimit l;
  l.policy = std::move(policy);
  l.metric = std::move(metric);
  return l;
}

TEST(Policies, StartAtThePoolsSettingElseTheTiersStart) {
  config::Scenario s = scenario({10}, 7);
  config::SimPool other = s.pools[0];
  other.name = "q";
  other.isp = "outlook";
  other.tier = "high";
  other.start_setting = 0;
  s.pools.push_back(other);
  const World world(s);
  EXPECT_THAT(start_settings(world),
              ElementsAre(7, range_for(default_policy(), "outlook", Tier::high).start));
}

TEST(Policies, BaselinesByName) {
  for (const char* name : {"static", "pmta-backoff", "kumo-step", "aimd", "oracle"}) {
    const std::unique_ptr<Policy> policy = make_baseline(name);
    ASSERT_NE(policy, nullptr) << name;
    EXPECT_EQ(policy->name(), name);
  }
  EXPECT_EQ(make_baseline("sluice"), nullptr);
}

TEST(Policies, StaticNeverChanges) {
  const sim::Run run = run_named(with_drops({0, kHour}, 6), "static");
  for (const std::vector<int>& settings : run.trace.settings) EXPECT_THAT(settings, ElementsAre(6));
  EXPECT_EQ(run.metrics.changes, 0u);
  EXPECT_EQ(run.metrics.reloads, 0u);
}

TEST(Policies, PmtaBackoffHoldsTwoUntilAWholeHourWithoutA421) {
  const Trace trace = run_named(with_drops({0}, 6), "pmta-backoff").trace;
  EXPECT_EQ(setting_at(trace, 0), 6);
  EXPECT_EQ(setting_at(trace, kStep), 2);
  // The 421s may come until the step's end: the hour counts from there.
  EXPECT_EQ(setting_at(trace, kHour), 2);
  EXPECT_EQ(setting_at(trace, kStep + kHour), 6);
}

TEST(Policies, PmtaBackoffExtendsTheHourOnEachNew421) {
  const sim::Run run = run_named(with_drops({0, 2 * kStep}, 6), "pmta-backoff");
  EXPECT_EQ(setting_at(run.trace, kStep + kHour), 2);
  EXPECT_EQ(setting_at(run.trace, 3 * kStep + kHour - kStep), 2);
  EXPECT_EQ(setting_at(run.trace, 3 * kStep + kHour), 6);
  EXPECT_EQ(run.metrics.changes, 2u);
  EXPECT_EQ(run.metrics.reloads, 0u);
}

TEST(Policies, PmtaBackoffNeverRaisesALowerNormalValue) {
  const Trace trace = run_named(with_drops({0}, 1), "pmta-backoff").trace;
  for (const std::vector<int>& settings : trace.settings) EXPECT_THAT(settings, ElementsAre(1));
}

TEST(Policies, PmtaBackoffReactsToUncurableDeferrals) {
  config::Scenario s = scenario({10}, 6);
  s.events.push_back(event(config::SimEventKind::uncurable, 0, kStep, 0.1));
  const Trace trace = run_named(s, "pmta-backoff").trace;
  EXPECT_EQ(setting_at(trace, kStep), 2);
}

TEST(Policies, KumoStepHoldsOneConnectionForNinetyMinutes) {
  const sim::Run run = run_named(with_drops({0}, 6), "kumo-step");
  EXPECT_EQ(setting_at(run.trace, 0), 6);
  EXPECT_EQ(setting_at(run.trace, kStep), 1);
  EXPECT_EQ(setting_at(run.trace, 90 * kMinute), 1);
  EXPECT_EQ(setting_at(run.trace, kStep + 90 * kMinute), 6);
  EXPECT_EQ(run.metrics.changes, 2u);
}

TEST(Policies, KumoStepCountsTheNinetyMinutesFromTheLastDeferral) {
  const Trace trace = run_named(with_drops({0, 2 * kStep}, 6), "kumo-step").trace;
  EXPECT_EQ(setting_at(trace, kStep + 90 * kMinute), 1);
  EXPECT_EQ(setting_at(trace, 3 * kStep + 90 * kMinute), 6);
}

TEST(Policies, AimdHalvesOnRefusalsAndAddsOneOtherwise) {
  const sim::Run run = run_named(scenario({4}, 6), "aimd");
  std::vector<int> first;
  for (std::size_t k = 0; k < 9; ++k) first.push_back(run.trace.settings[k][0]);
  EXPECT_THAT(first, ElementsAre(6, 3, 4, 5, 2, 3, 4, 5, 2));
  EXPECT_EQ(run.metrics.reloads, run.trace.settings.size());
}

TEST(Policies, AimdHalvesOnUncurableDeferrals) {
  config::Scenario s = scenario({100}, 9);
  s.events.push_back(event(config::SimEventKind::uncurable, 0, kStep, 0.1));
  const Trace trace = run_named(s, "aimd").trace;
  EXPECT_EQ(setting_at(trace, kStep), 4);
  EXPECT_EQ(setting_at(trace, 2 * kStep), 5);
}

TEST(Policies, AimdNeverGoesBelowOneOrAboveAThousand) {
  config::Scenario low = scenario({1}, 1);
  low.events.push_back(event(config::SimEventKind::limit, 0, kHour, 0.01));
  EXPECT_EQ(setting_at(run_named(low, "aimd").trace, kHour), 1);

  config::Scenario high = scenario({1000}, 999);
  high.pools[0].demand = 20000;
  const sim::Run run = run_named(high, "aimd");
  EXPECT_EQ(setting_at(run.trace, kStep), 1000);
  EXPECT_EQ(setting_at(run.trace, 2 * kStep), 1000);
  EXPECT_EQ(run.metrics.reloads, 1u);
}

TEST(Policies, OracleRunsAtTheHiddenLimit) {
  config::Scenario s = scenario({10, 6}, 8);
  s.events.push_back(event(config::SimEventKind::limit, kHour, 2 * kHour, 0.5, "ip-1"));
  const sim::Run run = run_named(s, "oracle");
  for (std::size_t k = 0; k < run.trace.settings.size(); ++k) {
    EXPECT_EQ(run.trace.settings[k], run.trace.limits[k]);
  }
  EXPECT_EQ(setting_at(run.trace, kHour), 5);
  EXPECT_EQ(run.metrics.overrun, 0u);
}

TEST(Policies, OracleNeverOverrunsAndDeliversAtLeastAsMuchAsStaticWhenTheLimitDrops) {
  config::Scenario s = scenario({8, 8}, 8, 2);
  s.events.push_back(event(config::SimEventKind::limit, 2 * kHour, 20 * kHour, 0.5));
  const sim::Run oracle = run_named(s, "oracle");
  const sim::Run fixed = run_named(s, "static");
  EXPECT_EQ(oracle.metrics.overrun, 0u);
  EXPECT_GT(fixed.metrics.overrun, 0u);
  EXPECT_GE(oracle.metrics.delivered, fixed.metrics.delivered);
  EXPECT_LT(oracle.metrics.deferred, fixed.metrics.deferred);
}

// --- Metrics ---

TEST(Policies, MetricsSumTheSteps) {
  const sim::Run run = run_named(scenario({5}, 8), "static");
  const std::uint64_t steps = run.trace.at.size();
  EXPECT_EQ(steps, 288u);
  // Reputation lowers the limit as the run goes on, so only the first step is known exactly.
  EXPECT_EQ(run.trace.limits[0][0], 5);
  EXPECT_GE(run.metrics.overrun, 3 * steps);
  EXPECT_EQ(run.trace.at[1], kStart + kStep);
  EXPECT_DOUBLE_EQ(run.trace.deferral_rate[0], 30.0 / 80.0);
  EXPECT_DOUBLE_EQ(run.metrics.deferral_rate,
                   static_cast<double>(run.metrics.deferred) /
                       static_cast<double>(run.metrics.delivered + run.metrics.deferred));
  EXPECT_EQ(run.metrics.delivered_share, 1.0);
}

TEST(Policies, NoTraceUnlessAsked) {
  const std::unique_ptr<Policy> policy = make_static();
  const sim::Run run = run_policy(scenario({5}, 3), *policy, false);
  EXPECT_THAT(run.trace.at, IsEmpty());
  EXPECT_GT(run.metrics.delivered, 0u);
}

// The limit drops to a tenth during the incident [1 h, 2 h).
config::Scenario incident_scenario(std::string vmta = "") {
  config::Scenario s = scenario({10, 10}, 6);
  config::SimEvent e = event(config::SimEventKind::limit, kHour, 2 * kHour, 0.1, std::move(vmta));
  e.incident = true;
  s.events.push_back(e);
  return s;
}

TEST(Policies, TimeToCutAndToRecoverFollowTheIncident) {
  const Metrics m = run_named(incident_scenario(), "pmta-backoff").metrics;
  // Refused in the incident's first step, cut for the next one.
  EXPECT_EQ(m.time_to_cut, kStep);
  // The last 421 comes in the incident's last step; the hour runs from its end.
  EXPECT_EQ(m.time_to_recover, kHour);
}

TEST(Policies, NoCutMeansNoTimes) {
  const Metrics m = run_named(incident_scenario(), "static").metrics;
  EXPECT_EQ(m.time_to_cut, std::nullopt);
  EXPECT_EQ(m.time_to_recover, std::nullopt);
}

TEST(Policies, NeverRecoveringMeansNoTimeToRecover) {
  config::Scenario s = incident_scenario();
  s.events.push_back(event(config::SimEventKind::limit, 2 * kHour, 24 * kHour, 0.01));
  const Metrics m = run_named(s, "kumo-step").metrics;
  EXPECT_EQ(m.time_to_cut, kStep);
  EXPECT_EQ(m.time_to_recover, std::nullopt);
}

TEST(Policies, AnIncidentOnOneVmtaWatchesOnlyThatVmta) {
  config::Scenario s = incident_scenario("ip-2");
  // ip-1 is cut when the incident ends and never recovers: it must not count.
  s.events.push_back(event(config::SimEventKind::limit, 2 * kHour, 24 * kHour, 0.01, "ip-1"));
  const Metrics m = run_named(s, "kumo-step").metrics;
  EXPECT_EQ(m.time_to_cut, kStep);
  // 90 minutes from the end of the incident's first step, where ip-2's only 421s came.
  EXPECT_EQ(m.time_to_recover, kHour + kStep + 90 * kMinute - 2 * kHour);
}

TEST(Policies, AnIncidentFromTheFirstStepComparesWithTheStartingSettings) {
  config::Scenario s = scenario({10}, 6);
  config::SimEvent e = event(config::SimEventKind::limit, 0, kHour, 0.1);
  e.incident = true;
  s.events.push_back(e);
  const Metrics m = run_named(s, "aimd").metrics;
  EXPECT_EQ(m.time_to_cut, kStep);
  EXPECT_TRUE(m.time_to_recover.has_value());
}

TEST(Policies, DeliveredShareIsOfTheOracles) {
  std::vector<Metrics> metrics(2);
  metrics[0].policy = "static";
  metrics[0].delivered = 500;
  metrics[1].policy = "oracle";
  metrics[1].delivered = 1000;
  compare_with_oracle(metrics);
  EXPECT_DOUBLE_EQ(metrics[0].delivered_share, 0.5);
  EXPECT_DOUBLE_EQ(metrics[1].delivered_share, 1.0);

  std::vector<Metrics> alone(1);
  alone[0].policy = "static";
  alone[0].delivered = 500;
  compare_with_oracle(alone);
  EXPECT_DOUBLE_EQ(alone[0].delivered_share, 1.0);
}

class PoliciesFailedLimits : public ::testing::Test {
 protected:
  PoliciesFailedLimits() {
    sluice_.policy = "sluice";
    sluice_.deferral_rate = 0.12;
    sluice_.overrun = 120;
    sluice_.delivered_share = 0.5;
    sluice_.time_to_cut = 600;
    backoff_.policy = "pmta-backoff";
    backoff_.deferral_rate = 0.2;
    backoff_.overrun = 100;
    oracle_.policy = "oracle";
    oracle_.delivered_share = 1;
  }
  std::vector<std::string> failed(std::vector<config::SimLimit> limits) const {
    config::Scenario s;
    s.limits = std::move(limits);
    return failed_limits(s, {sluice_, backoff_, oracle_});
  }

  Metrics sluice_;
  Metrics backoff_;
  Metrics oracle_;
};

TEST_F(PoliciesFailedLimits, AtMostAndAtLeast) {
  config::SimLimit most = limit("sluice", "overrun");
  most.at_most = 100;
  config::SimLimit least = limit("sluice", "delivered_share");
  least.at_least = 0.9;
  EXPECT_THAT(failed({most, least}), ElementsAre("sluice overrun 120 is not at most 100",
                                                 "sluice delivered_share 0.5 is not at least 0.9"));
  most.at_most = 120;
  least.at_least = 0.5;
  EXPECT_THAT(failed({most, least}), IsEmpty());
}

TEST_F(PoliciesFailedLimits, BelowAndAboveAnotherPolicy) {
  config::SimLimit below = limit("sluice", "deferral_rate");
  below.below = "pmta-backoff";
  below.factor = 0.5;
  config::SimLimit above = limit("sluice", "overrun");
  above.above = "pmta-backoff";
  above.factor = 1.5;
  EXPECT_THAT(failed({below, above}),
              ElementsAre("sluice deferral_rate 0.12 is not below 0.5 x pmta-backoff's 0.2",
                          "sluice overrun 120 is not above 1.5 x pmta-backoff's 100"));
  below.factor = 0.7;
  above.factor = 1.1;
  EXPECT_THAT(failed({below, above}), IsEmpty());
}

TEST_F(PoliciesFailedLimits, PoliciesThatDidNotRunAreSkipped) {
  config::SimLimit absent = limit("aimd", "overrun");
  absent.at_most = 0;
  config::SimLimit against_absent = limit("sluice", "overrun");
  against_absent.below = "kumo-step";
  EXPECT_THAT(failed({absent, against_absent}), IsEmpty());
}

TEST_F(PoliciesFailedLimits, AShareOfTheOraclesIsNotCheckedWithoutTheOracle) {
  config::SimLimit least = limit("sluice", "delivered_share");
  least.at_least = 0.9;
  config::Scenario s;
  s.limits = {least};
  EXPECT_THAT(failed_limits(s, {sluice_, backoff_}), IsEmpty());
  EXPECT_THAT(failed_limits(s, {sluice_, backoff_, oracle_}), ::testing::SizeIs(1));
}

TEST_F(PoliciesFailedLimits, ATimeThatNeverCameFailsAtMostAndBelow) {
  config::SimLimit most = limit("pmta-backoff", "time_to_cut");
  most.at_most = 3600;
  config::SimLimit below = limit("pmta-backoff", "time_to_recover");
  below.below = "sluice";
  config::SimLimit least = limit("pmta-backoff", "time_to_cut");
  least.at_least = 60;
  EXPECT_THAT(failed({most, below, least}),
              ElementsAre("pmta-backoff time_to_cut (never happened) is not at most 3600",
                          "pmta-backoff time_to_recover (never happened) is not below 1 x sluice's "
                          "(never happened)"));
  config::SimLimit faster = limit("sluice", "time_to_cut");
  faster.below = "pmta-backoff";
  EXPECT_THAT(failed({faster}), IsEmpty());
}

TEST_F(PoliciesFailedLimits, AnUnknownMetricIsReported) {
  config::SimLimit odd = limit("sluice", "happiness");
  odd.at_least = 1;
  EXPECT_THAT(failed({odd}), ElementsAre("sluice happiness: no such metric"));
}

}  // namespace
}  // namespace sluice::sim
