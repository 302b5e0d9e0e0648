#include "sim/world.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "controller/isp_catalog.h"

namespace sluice::sim {
namespace {

using ::testing::HasSubstr;
using C = DeferralClass;

constexpr std::int64_t kStart = 1795737600;  // 2026-11-27T00:00:00Z
constexpr std::int64_t kStep = 300;
constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kStepsPerDay = 86400 / kStep;

// One gmail pool of IPs with the given limits; 10 messages per connection, 5-minute steps.
config::Scenario scenario(std::vector<std::int64_t> limits, double demand, std::int64_t days = 1) {
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
  pool.demand = demand;
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

// Runs `steps` steps at the same settings; returns the last.
StepResult run(World& world, const std::vector<int>& settings, std::int64_t steps) {
  StepResult last;
  for (std::int64_t k = 0; k < steps; ++k) last = world.step(settings);
  return last;
}

TEST(World, TimeRunsInStepsFromTheStartForTheDays) {
  World world(scenario({5}, 100, 2));
  EXPECT_EQ(world.steps_total(), static_cast<std::size_t>(2 * kStepsPerDay));
  EXPECT_EQ(world.now(), kStart);
  const StepResult first = world.step({1});
  EXPECT_EQ(first.at, kStart);
  EXPECT_EQ(world.now(), kStart + kStep);
  run(world, {1}, 2 * kStepsPerDay - 1);
  EXPECT_TRUE(world.done());
}

TEST(World, ListsEveryIpAsAVmtaOfItsPool) {
  World world(scenario({5, 7}, 100));
  ASSERT_EQ(world.vmtas().size(), 2u);
  EXPECT_EQ(world.vmtas()[1].vmta, "ip-2");
  EXPECT_EQ(world.vmtas()[1].address, "198.51.100.12");
  EXPECT_EQ(world.vmtas()[1].pool_name, "p");
  EXPECT_EQ(world.vmtas()[1].isp, "gmail");
  EXPECT_EQ(world.vmtas()[1].domain, "gmail.com");
  EXPECT_EQ(world.limit(0), 5);
  EXPECT_EQ(world.limit(1), 7);
}

TEST(World, SettingUnderTheLimitRefusesNothing) {
  World world(scenario({5}, 1000));
  const VmtaStep s = world.step({3}).vmtas[0];
  EXPECT_EQ(s.setting, 3);
  EXPECT_EQ(s.limit, 5);
  EXPECT_EQ(s.needed, 100);
  EXPECT_EQ(s.opened, 3);
  EXPECT_EQ(s.refused, 0);
  EXPECT_EQ(s.delivered, 30u);
  EXPECT_EQ(s.deferred(), 0u);
  EXPECT_EQ(s.queued, 970u);
}

TEST(World, SettingOverTheLimitRefusesExactlyTheExcessAndDefersTheirMessages) {
  World world(scenario({5}, 1000));
  const VmtaStep s = world.step({8}).vmtas[0];
  EXPECT_EQ(s.opened, 8);
  EXPECT_EQ(s.refused, 3);
  EXPECT_EQ(s.delivered, 50u);
  EXPECT_EQ(s.throttled, 30u);
  EXPECT_EQ(s.queued, 950u);
  // The deferred messages stay queued: the next step sees them plus the new demand.
  EXPECT_EQ(world.step({8}).vmtas[0].queued, 950u + 1000u - 50u);
}

TEST(World, PowerMtaOpensOnlyTheConnectionsTheQueueNeeds) {
  World world(scenario({5}, 55));
  const VmtaStep s = world.step({8}).vmtas[0];
  EXPECT_EQ(s.needed, 6);
  EXPECT_EQ(s.opened, 6);
  EXPECT_EQ(s.refused, 1);
  EXPECT_EQ(s.delivered, 50u);
  EXPECT_EQ(s.throttled, 5u);  // what was left, not a whole connection's worth
}

TEST(World, ThePoolsVmtasShareItsBacklogEvenly) {
  World world(scenario({5, 5}, 15));
  const StepResult step = world.step({1, 1});
  EXPECT_EQ(step.vmtas[0].needed, 1);
  EXPECT_EQ(step.vmtas[0].delivered, 8u);
  EXPECT_EQ(step.vmtas[1].delivered, 7u);
  EXPECT_EQ(step.vmtas[0].queued + step.vmtas[1].queued, 0u);
}

TEST(World, FractionalDemandAccumulates) {
  World world(scenario({5}, 2.5));
  std::uint64_t delivered = 0;
  for (int k = 0; k < 4; ++k) delivered += world.step({1}).vmtas[0].delivered;
  EXPECT_EQ(delivered, 10u);
}

TEST(World, BacklogIsCappedAtOneDayOfDemand) {
  World world(scenario({5}, 100, 3));
  const VmtaStep s = run(world, {0}, 2 * kStepsPerDay).vmtas[0];
  EXPECT_EQ(s.opened, 0);
  EXPECT_EQ(s.queued, static_cast<std::uint64_t>(100 * kStepsPerDay));
}

TEST(World, DemandEventsMultiplyWhatThePoolGains) {
  config::Scenario s = scenario({100}, 100);
  s.events.push_back(event(config::SimEventKind::demand, kStep, 2 * kStep, 3));
  World world(s);
  EXPECT_EQ(world.step({100}).vmtas[0].delivered, 100u);
  EXPECT_EQ(world.step({100}).vmtas[0].delivered, 300u);
  EXPECT_EQ(world.step({100}).vmtas[0].delivered, 100u);
}

TEST(World, LimitEventsScaleTheLimitWhileActive) {
  config::Scenario s = scenario({10, 10}, 1000);
  s.events.push_back(event(config::SimEventKind::limit, kHour, 2 * kHour, 0.5));
  s.events.push_back(event(config::SimEventKind::limit, kHour, 2 * kHour, 0.5, "ip-2"));
  World world(s);
  run(world, {1, 1}, kHour / kStep);
  EXPECT_EQ(world.limit(0), 5);
  EXPECT_EQ(world.limit(1), 3);  // round(10 x 0.5 x 0.5)
  const StepResult during = world.step({6, 6});
  EXPECT_EQ(during.vmtas[0].limit, 5);
  EXPECT_EQ(during.vmtas[0].refused, 1);
  EXPECT_EQ(during.vmtas[1].refused, 3);
  run(world, {1, 1}, kHour / kStep - 1);
  EXPECT_EQ(world.limit(0), 10);
  EXPECT_EQ(world.limit(1), 10);
}

TEST(World, AnEventThatClosesTheIpRefusesEveryConnection) {
  config::Scenario s = scenario({10}, 1000);
  s.events.push_back(event(config::SimEventKind::limit, 0, kHour, 0.01));
  World world(s);
  EXPECT_EQ(world.limit(0), 0);
  const VmtaStep step = world.step({2}).vmtas[0];
  EXPECT_EQ(step.refused, 2);
  EXPECT_EQ(step.delivered, 0u);
  EXPECT_EQ(step.throttled, 20u);
}

TEST(World, OverrunStepsInARowLowerTheLimit) {
  config::Scenario s = scenario({10}, 1000);
  s.overrun_steps = 6;
  s.overrun_penalty = 0.8;
  World world(s);
  run(world, {20}, 5);
  EXPECT_EQ(world.limit(0), 10);
  run(world, {20}, 1);
  EXPECT_EQ(world.limit(0), 8);
  // The run count restarts after a penalty: six more steps for the next one.
  run(world, {20}, 5);
  EXPECT_EQ(world.limit(0), 8);
  run(world, {20}, 1);
  EXPECT_EQ(world.limit(0), 6);  // round(10 x 0.64)
}

TEST(World, AStepWithinToleranceBreaksTheRun) {
  config::Scenario s = scenario({10}, 1000);
  s.overrun_tolerance = 0.1;
  s.overrun_steps = 3;
  World world(s);
  run(world, {20}, 2);
  run(world, {11}, 1);  // 1 of 11 refused: within tolerance
  run(world, {20}, 2);
  EXPECT_EQ(world.limit(0), 10);
  run(world, {20}, 1);
  EXPECT_EQ(world.limit(0), 8);
}

TEST(World, ACleanDayRestoresRecoveryPerDayUpToTheScenarioLimit) {
  config::Scenario s = scenario({10}, 1000, 4);
  s.overrun_steps = 1;
  s.overrun_penalty = 0.8;
  s.recovery_per_day = 1;
  World world(s);
  run(world, {20}, 2);
  EXPECT_EQ(world.limit(0), 6);
  // The rest of the first day is clean, but the day had overrun steps: no recovery.
  run(world, {1}, kStepsPerDay - 2);
  EXPECT_EQ(world.limit(0), 6);
  run(world, {1}, kStepsPerDay - 1);
  EXPECT_EQ(world.limit(0), 6);  // recovery comes when the day ends
  run(world, {1}, 1);
  EXPECT_EQ(world.limit(0), 7);
  run(world, {1}, kStepsPerDay);
  EXPECT_EQ(world.limit(0), 8);
  run(world, {1}, kStepsPerDay);
  EXPECT_EQ(world.limit(0), 9);
}

TEST(World, RecoveryNeverGoesAboveTheScenarioLimit) {
  config::Scenario s = scenario({10}, 1000, 3);
  s.overrun_steps = 1;
  s.recovery_per_day = 5;
  World world(s);
  run(world, {20}, 1);
  EXPECT_EQ(world.limit(0), 8);
  run(world, {1}, 2 * kStepsPerDay - 1);
  EXPECT_EQ(world.limit(0), 10);
}

TEST(World, ReputationAloneNeverTakesTheLimitBelowOneConnection) {
  config::Scenario s = scenario({10}, 1000, 2);
  s.overrun_steps = 1;
  s.overrun_penalty = 0.1;
  World world(s);
  run(world, {20}, 10);
  EXPECT_EQ(world.limit(0), 1);
  // From one connection, not from far below it: a clean day is one more.
  run(world, {1}, 2 * kStepsPerDay - 10);
  EXPECT_EQ(world.limit(0), 2);
}

TEST(World, NoiseIsAShareOfTheAttemptedMessagesAndStaysQueued) {
  config::Scenario s = scenario({10}, 100);
  s.events.push_back(event(config::SimEventKind::noise, 0, kHour, 0.1));
  World world(s);
  const VmtaStep step = world.step({10}).vmtas[0];
  EXPECT_EQ(step.refused, 0);
  EXPECT_EQ(step.noise, 10u);
  EXPECT_EQ(step.delivered, 90u);
  EXPECT_EQ(step.queued, 10u);
}

TEST(World, UncurableIsAShareWhateverTheConcurrency) {
  config::Scenario s = scenario({10}, 100);
  s.events.push_back(event(config::SimEventKind::uncurable, 0, kHour, 0.2));
  s.events.push_back(event(config::SimEventKind::noise, 0, kHour, 0.1));
  World world(s);
  const VmtaStep high = world.step({10}).vmtas[0];
  EXPECT_EQ(high.uncurable, 20u);
  EXPECT_EQ(high.noise, 10u);
  EXPECT_EQ(high.delivered, 70u);
  const VmtaStep low = world.step({1}).vmtas[0];
  EXPECT_EQ(low.uncurable, 2u);
  EXPECT_EQ(low.noise, 1u);
  EXPECT_EQ(low.delivered, 7u);
}

TEST(World, SmallSharesAreCarriedOverSteps) {
  config::Scenario s = scenario({10}, 10);
  s.events.push_back(event(config::SimEventKind::noise, 0, 100 * kStep, 0.05));
  World world(s);
  std::uint64_t noise = 0;
  std::uint64_t attempted = 0;
  for (int k = 0; k < 100; ++k) {
    const VmtaStep step = world.step({1}).vmtas[0];
    noise += step.noise;
    attempted += step.noise + step.delivered;
  }
  EXPECT_EQ(noise, attempted / 20);
}

TEST(World, RunsAreReproducible) {
  config::Scenario s = scenario({7, 9}, 333.3, 2);
  s.events.push_back(event(config::SimEventKind::noise, 0, 86400, 0.03));
  s.events.push_back(event(config::SimEventKind::limit, 3 * kHour, 9 * kHour, 0.4));
  World a(s);
  World b(s);
  while (!a.done()) {
    const StepResult x = a.step({8, 8});
    const StepResult y = b.step({8, 8});
    ASSERT_EQ(x.vmtas[0].delivered, y.vmtas[0].delivered);
    ASSERT_EQ(x.vmtas[1].noise, y.vmtas[1].noise);
    ASSERT_EQ(x.vmtas[1].limit, y.vmtas[1].limit);
  }
}

TEST(World, RejectsSettingsForAnotherNumberOfVmtas) {
  World world(scenario({5, 5}, 100));
  EXPECT_THROW(world.step({1}), std::invalid_argument);
}

// --- The texts, through the real classifier ---

class WorldTexts : public ::testing::TestWithParam<const char*> {
 protected:
  DeferralClass classify(const std::string& diag) const {
    const auto catalog = IspCatalog::builtin();
    return catalog->classify_deferral(catalog->find(GetParam()).value_or(catalog->generic()), diag);
  }
};

TEST_P(WorldTexts, ClassifyAsIntended) {
  const std::string isp = GetParam();
  // Addresses that hold status codes ("4.7.26", "4.7.27") must not turn into other classes.
  for (const char* address : {"198.51.100.11", "10.194.7.26", "84.7.27.3"}) {
    const IspTexts texts = texts_for(isp, address);
    EXPECT_EQ(classify(texts.throttle), C::connection) << texts.throttle;
    EXPECT_EQ(classify(texts.noise), C::recipient) << texts.noise;
    const C uncurable = isp == "gmx" || isp == "generic" ? C::rate : C::reputation;
    EXPECT_EQ(classify(texts.uncurable), uncurable) << texts.uncurable;
    EXPECT_THAT(texts.throttle, HasSubstr(address));
    EXPECT_THAT(texts.uncurable, HasSubstr(address));
    EXPECT_TRUE(texts.throttle.starts_with("smtp;421") || texts.throttle.starts_with("smtp;451"))
        << texts.throttle;
    EXPECT_TRUE(texts.delivered.starts_with("smtp;250")) << texts.delivered;
  }
}

TEST_P(WorldTexts, MxHostBelongsToTheIsp) {
  const std::string isp = GetParam();
  const auto catalog = IspCatalog::builtin();
  const IspTexts texts = texts_for(isp, "198.51.100.11");
  const std::optional<IspId> id = catalog->match_mx_host(mx_host(texts.mx));
  EXPECT_EQ(id ? catalog->name(*id) : "generic", isp) << texts.mx;
}

INSTANTIATE_TEST_SUITE_P(WorldEveryIsp, WorldTexts,
                         ::testing::Values("gmail", "outlook", "yahoo", "gmx", "orange",
                                           "generic"));

TEST(World, AnUnknownIspGetsTheGenericTexts) {
  const IspTexts unknown = texts_for("example-isp", "198.51.100.11");
  const IspTexts generic = texts_for("generic", "198.51.100.11");
  EXPECT_EQ(unknown.throttle, generic.throttle);
  EXPECT_EQ(unknown.uncurable, generic.uncurable);
}

TEST(World, GmailThrottleTextReadsLikeGmails) {
  EXPECT_THAT(texts_for("gmail", "198.51.100.11").throttle,
              HasSubstr("smtp;421-4.7.0 [198.51.100.11 15] Try again later, closing connection."));
}

}  // namespace
}  // namespace sluice::sim
