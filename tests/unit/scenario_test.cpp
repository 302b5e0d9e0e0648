#include "config/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr const char* kSource = "reputation-drop.toml";
constexpr std::int64_t kNovemberSecond = 1793577600;  // 2026-11-02T00:00:00Z
constexpr std::int64_t kDay = 86400;

Scenario parsed(const std::string& text) {
  const ScenarioLoad load = parse_scenario(text, kSource);
  EXPECT_TRUE(load.scenario.has_value()) << load.error;
  EXPECT_EQ(load.error, "");
  return load.scenario.value_or(Scenario{});
}

std::string error_of(const std::string& text) {
  const ScenarioLoad load = parse_scenario(text, kSource);
  EXPECT_FALSE(load.scenario.has_value()) << text;
  EXPECT_FALSE(load.error.empty());
  return load.error;
}

// The smallest valid scenario is kHead (lines 1-2) and kPool (lines 3-7).
constexpr const char* kHead = "name = \"s\"\nstart = \"2026-11-02\"\n";
constexpr const char* kIps =
    "ips = [ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8 } ]\n";
const std::string kPool =
    std::string("[[pool]]\nname = \"p\"\nisp = \"gmail\"\ndemand = 100\n") + kIps;

// `line` at line 2, before the start and the pool.
std::string with_top(const std::string& line) {
  return "name = \"s\"\n" + line + "\nstart = \"2026-11-02\"\n" + kPool;
}

// `text` from line 8 on, after the smallest scenario.
std::string with_tail(const std::string& text) {
  return kHead + kPool + text;
}

// A [[pool]] on line 3 with `keys` from line 4 on.
std::string with_pool(const std::string& keys) {
  return kHead + std::string("[[pool]]\n") + keys;
}

// Pool "p" with `ips = ` and this text on line 7.
std::string with_ips(const std::string& ips) {
  return kHead + std::string("[[pool]]\nname = \"p\"\nisp = \"gmail\"\ndemand = 100\nips = ") +
         ips + "\n";
}

// An [[event]] on line 8 with `keys` from line 9 on.
std::string with_event(const std::string& keys) {
  return with_tail("[[event]]\n" + keys);
}

// A scenario of `days` days (line 3) whose limit event (line 9) has `start` on line 10 and `end`
// on line 11.
std::string event_between(const std::string& start, const std::string& end, int days = 7) {
  return kHead + ("days = " + std::to_string(days) + "\n") + kPool + "[[event]]\nstart = " + start +
         "\nend = " + end + "\nkind = \"limit\"\npool = \"p\"\nvalue = 0.5\n";
}

// A [[limit]] on line 8 with `keys` from line 9 on.
std::string with_limit(const std::string& keys) {
  return with_tail("[[limit]]\n" + keys);
}

// ---- a whole file ------------------------------------------------------------------------------

// The texts below are raw strings that start with a newline, so their first line is line 2.
constexpr const char* kFull = R"(
name = "reputation-drop"
description = "Gmail cuts the pool's IPs to a third of their limit for two days, then restores it"
start = "2026-11-02"
days = 7
step_minutes = 5
messages_per_connection = 12

[reputation]
overrun_tolerance = 0.2
overrun_steps = 4
overrun_penalty = 0.5
recovery_per_day = 2

[[pool]]
name = "high-rep-pool"
isp = "gmail"
domain = "googlemail.com"
tier = "high"
start_setting = 8
demand = 300
ips = [ { vmta = "gmail-ip-1", address = "198.51.100.11", limit = 8 },
        { vmta = "gmail-ip-2", address = "198.51.100.12", limit = 9 } ]

[[pool]]
name = "bulk"
isp = "gmx"
demand = 12.5
ips = [ { vmta = "gmx-ip-1", address = "203.0.113.1", limit = 4 } ]

[[event]]
kind = "limit"
pool = "high-rep-pool"
vmta = "gmail-ip-2"
start = "2d12h"
end = "4d12h30m"
value = 0.33
incident = true

[[event]]
kind = "noise"
pool = "bulk"
start = "0"
end = "7d"
value = 0.02

[[limit]]
policy = "sluice"
metric = "deferral_rate"
below = "pmta-backoff"
factor = 0.333

[[limit]]
policy = "sluice"
metric = "time_to_cut"
at_most = 1800

[[limit]]
policy = "oracle"
metric = "delivered"
above = "static"

[[limit]]
policy = "aimd"
metric = "overrun"
at_least = 0
)";

TEST(Scenario, FullFileIsReadFieldByField) {
  const Scenario s = parsed(kFull);
  EXPECT_EQ(s.source, kSource);
  EXPECT_EQ(s.name, "reputation-drop");
  EXPECT_EQ(s.description,
            "Gmail cuts the pool's IPs to a third of their limit for two days, then restores it");
  EXPECT_EQ(s.start, kNovemberSecond);
  EXPECT_EQ(s.days, 7);
  EXPECT_EQ(s.step_seconds, 300);
  EXPECT_EQ(s.messages_per_connection, 12);
  EXPECT_DOUBLE_EQ(s.overrun_tolerance, 0.2);
  EXPECT_EQ(s.overrun_steps, 4);
  EXPECT_DOUBLE_EQ(s.overrun_penalty, 0.5);
  EXPECT_EQ(s.recovery_per_day, 2);

  ASSERT_THAT(s.pools, SizeIs(2));
  const SimPool& high = s.pools[0];
  EXPECT_EQ(high.name, "high-rep-pool");
  EXPECT_EQ(high.isp, "gmail");
  EXPECT_EQ(high.domain, "googlemail.com");
  EXPECT_EQ(high.tier, "high");
  EXPECT_EQ(high.start_setting, 8);
  EXPECT_DOUBLE_EQ(high.demand, 300);
  EXPECT_EQ(high.line, 15);
  ASSERT_THAT(high.ips, SizeIs(2));
  EXPECT_EQ(high.ips[0].vmta, "gmail-ip-1");
  EXPECT_EQ(high.ips[0].address, "198.51.100.11");
  EXPECT_EQ(high.ips[0].limit, 8);
  EXPECT_EQ(high.ips[1].vmta, "gmail-ip-2");
  EXPECT_EQ(high.ips[1].address, "198.51.100.12");
  EXPECT_EQ(high.ips[1].limit, 9);
  const SimPool& bulk = s.pools[1];
  EXPECT_EQ(bulk.name, "bulk");
  EXPECT_EQ(bulk.isp, "gmx");
  EXPECT_EQ(bulk.domain, "gmx.de");
  EXPECT_EQ(bulk.tier, "medium");
  EXPECT_EQ(bulk.start_setting, 0);
  EXPECT_DOUBLE_EQ(bulk.demand, 12.5);
  EXPECT_EQ(bulk.line, 25);
  ASSERT_THAT(bulk.ips, SizeIs(1));
  EXPECT_EQ(bulk.ips[0].vmta, "gmx-ip-1");

  ASSERT_THAT(s.events, SizeIs(2));
  const SimEvent& drop = s.events[0];
  EXPECT_EQ(drop.kind, SimEventKind::limit);
  EXPECT_EQ(drop.pool, "high-rep-pool");
  EXPECT_EQ(drop.vmta, "gmail-ip-2");
  EXPECT_EQ(drop.start, 2 * kDay + 12 * 3600);
  EXPECT_EQ(drop.end, 4 * kDay + 12 * 3600 + 30 * 60);
  EXPECT_DOUBLE_EQ(drop.value, 0.33);
  EXPECT_TRUE(drop.incident);
  EXPECT_EQ(drop.line, 31);
  const SimEvent& noise = s.events[1];
  EXPECT_EQ(noise.kind, SimEventKind::noise);
  EXPECT_EQ(noise.pool, "bulk");
  EXPECT_EQ(noise.vmta, "");
  EXPECT_EQ(noise.start, 0);
  EXPECT_EQ(noise.end, 7 * kDay);
  EXPECT_DOUBLE_EQ(noise.value, 0.02);
  EXPECT_FALSE(noise.incident);
  EXPECT_EQ(noise.line, 40);

  ASSERT_THAT(s.limits, SizeIs(4));
  EXPECT_EQ(s.limits[0].policy, "sluice");
  EXPECT_EQ(s.limits[0].metric, "deferral_rate");
  EXPECT_EQ(s.limits[0].below, "pmta-backoff");
  EXPECT_EQ(s.limits[0].above, "");
  EXPECT_DOUBLE_EQ(s.limits[0].factor, 0.333);
  EXPECT_FALSE(s.limits[0].at_most.has_value());
  EXPECT_FALSE(s.limits[0].at_least.has_value());
  EXPECT_EQ(s.limits[0].line, 47);
  EXPECT_EQ(s.limits[1].metric, "time_to_cut");
  EXPECT_EQ(s.limits[1].at_most, 1800.0);
  EXPECT_EQ(s.limits[1].below, "");
  EXPECT_EQ(s.limits[2].policy, "oracle");
  EXPECT_EQ(s.limits[2].above, "static");
  EXPECT_DOUBLE_EQ(s.limits[2].factor, 1);
  EXPECT_EQ(s.limits[3].policy, "aimd");
  EXPECT_EQ(s.limits[3].at_least, 0.0);
  EXPECT_EQ(s.limits[3].line, 63);
}

TEST(Scenario, DefaultsFillWhatTheFileLeavesOut) {
  const Scenario s = parsed(kHead + kPool);
  EXPECT_EQ(s.name, "s");
  EXPECT_EQ(s.description, "");
  EXPECT_EQ(s.days, 1);
  EXPECT_EQ(s.step_seconds, 300);
  EXPECT_EQ(s.messages_per_connection, 10);
  EXPECT_DOUBLE_EQ(s.overrun_tolerance, 0.1);
  EXPECT_EQ(s.overrun_steps, 6);
  EXPECT_DOUBLE_EQ(s.overrun_penalty, 0.8);
  EXPECT_EQ(s.recovery_per_day, 1);
  ASSERT_THAT(s.pools, SizeIs(1));
  EXPECT_EQ(s.pools[0].domain, "gmail.com");
  EXPECT_EQ(s.pools[0].tier, "medium");
  EXPECT_EQ(s.pools[0].start_setting, 0);
  EXPECT_TRUE(s.events.empty());
  EXPECT_TRUE(s.limits.empty());
}

TEST(Scenario, ReputationTableMaySetSomeKeysOnly) {
  const Scenario s = parsed(with_tail("[reputation]\noverrun_steps = 12\n"));
  EXPECT_DOUBLE_EQ(s.overrun_tolerance, 0.1);
  EXPECT_EQ(s.overrun_steps, 12);
  EXPECT_DOUBLE_EQ(s.overrun_penalty, 0.8);
  EXPECT_EQ(s.recovery_per_day, 1);
}

TEST(Scenario, EachIspHasItsDefaultDomain) {
  for (const auto& [isp, domain] :
       std::vector<std::pair<std::string, std::string>>{{"gmail", "gmail.com"},
                                                        {"outlook", "outlook.com"},
                                                        {"yahoo", "yahoo.com"},
                                                        {"gmx", "gmx.de"},
                                                        {"orange", "orange.fr"}}) {
    const Scenario s =
        parsed(with_pool("name = \"p\"\nisp = \"" + isp + "\"\ndemand = 1\n" + kIps));
    ASSERT_THAT(s.pools, SizeIs(1));
    EXPECT_EQ(s.pools[0].domain, domain) << isp;
  }
}

TEST(Scenario, EventDefaultsToEveryIpAndNoIncident) {
  const Scenario s = parsed(
      with_event("kind = \"demand\"\npool = \"p\"\nstart = \"1h\"\nend = \"1d\"\nvalue = 2\n"));
  ASSERT_THAT(s.events, SizeIs(1));
  EXPECT_EQ(s.events[0].kind, SimEventKind::demand);
  EXPECT_EQ(s.events[0].vmta, "");
  EXPECT_FALSE(s.events[0].incident);
  EXPECT_DOUBLE_EQ(s.events[0].value, 2);
  EXPECT_EQ(s.events[0].line, 8);
}

TEST(Scenario, StepMinutesThatDivideADay) {
  for (const int minutes : {1, 2, 3, 5, 10, 15, 20, 30, 60}) {
    EXPECT_EQ(parsed(with_top("step_minutes = " + std::to_string(minutes))).step_seconds,
              minutes * 60);
  }
}

// ---- the start -------------------------------------------------------------------------------

TEST(ScenarioStart, ADateOrATimeAtMidnightUtc) {
  for (const char* start :
       {"\"2026-11-02\"", "2026-11-02", "\"2026-11-02T00:00:00Z\"", "2026-11-02T00:00:00Z",
        "\"2026-11-02 00:00:00Z\"", "\"2026-11-02T01:00:00+01:00\"", "2026-11-01T19:00:00-05:00",
        "\"2026-11-02T00:00:00.000Z\""}) {
    EXPECT_EQ(parsed(std::string("name = \"s\"\nstart = ") + start + "\n" + kPool).start,
              kNovemberSecond)
        << start;
  }
}

TEST(ScenarioStart, NotMidnightUtcIsRefused) {
  const auto error = [](const std::string& start) {
    return error_of("name = \"s\"\nstart = " + start + "\n" + kPool);
  };
  EXPECT_EQ(error("\"2026-11-02T06:00:00Z\""),
            "reputation-drop.toml:2: 'start' must be a whole UTC day (midnight UTC), not "
            "2026-11-02T06:00:00Z");
  EXPECT_EQ(error("2026-11-02T00:00:00+01:00"),
            "reputation-drop.toml:2: 'start' must be a whole UTC day (midnight UTC), not "
            "2026-11-02T00:00:00+01:00");
  EXPECT_THAT(error("\"2026-11-02T00:00:00.5Z\""),
              StartsWith("reputation-drop.toml:2: 'start' must be a whole UTC day"));
}

TEST(ScenarioStart, WithoutAnOffsetOrNotATimeIsRefused) {
  const std::string expected =
      "reputation-drop.toml:2: 'start' must be a date such as \"2026-11-02\" or a time with its "
      "offset such as \"2026-11-02T00:00:00Z\", not ";
  const auto error = [](const std::string& start) {
    return error_of("name = \"s\"\nstart = " + start + "\n" + kPool);
  };
  EXPECT_EQ(error("\"2026-11-02T00:00:00\""), expected + "'2026-11-02T00:00:00'");
  EXPECT_EQ(error("2026-11-02T00:00:00"), expected + "a date or time");
  EXPECT_EQ(error("00:00:00"), expected + "a date or time");
  EXPECT_EQ(error("\"tomorrow\""), expected + "'tomorrow'");
  EXPECT_EQ(error("\"\""), expected + "''");
  EXPECT_EQ(error("\"2026-13-02\""), expected + "'2026-13-02'");
  EXPECT_EQ(error("1793577600"), expected + "1793577600");
  // Only a date's characters reach the TOML parser: this is not read as a second key.
  EXPECT_EQ(error("\"2026-11-02\\nname = 1\""), expected + "'2026-11-02\\nname = 1'");
}

TEST(ScenarioStart, IsRequired) {
  EXPECT_EQ(error_of(std::string("name = \"s\"\n") + kPool),
            "reputation-drop.toml:1: the scenario needs 'start'");
}

// ---- durations ---------------------------------------------------------------------------------

TEST(ScenarioDurations, DaysHoursAndMinutesInThatOrder) {
  const auto start_of = [](const std::string& start) {
    const Scenario s = parsed(event_between(start, "\"7d\""));
    return s.events.empty() ? -1 : s.events[0].start;
  };
  EXPECT_EQ(start_of("\"0\""), 0);
  EXPECT_EQ(start_of("0"), 0);
  EXPECT_EQ(start_of("\"0d\""), 0);
  EXPECT_EQ(start_of("\"2d\""), 2 * kDay);
  EXPECT_EQ(start_of("\"12h\""), 12 * 3600);
  EXPECT_EQ(start_of("\"45m\""), 45 * 60);
  EXPECT_EQ(start_of("\"2d12h\""), 2 * kDay + 12 * 3600);
  EXPECT_EQ(start_of("\"2d30m\""), 2 * kDay + 30 * 60);
  EXPECT_EQ(start_of("\"2d12h30m\""), 2 * kDay + 12 * 3600 + 30 * 60);
  EXPECT_EQ(start_of("\"36h\""), 36 * 3600);
  EXPECT_EQ(start_of("\"90m\""), 90 * 60);
}

TEST(ScenarioDurations, OtherFormsAreRefused) {
  for (const char* start :
       {"\"\"", "\"2\"", "\"d\"", "\"2h1d\"", "\"1d1d\"", "\"1s\"", "\"-1h\"", "\"1.5h\"",
        "\"2d 12h\"", "\"2D\"", "\"1w\"", "\"1234567m\"", "5", "1.0", "true"}) {
    const std::string error = error_of(event_between(start, "\"7d\""));
    EXPECT_THAT(error, StartsWith("reputation-drop.toml:10: [[event]] 'start' must be a duration "
                                  "such as \"2d\", \"12h\", \"2d12h30m\" or \"0\", not "))
        << start;
  }
  EXPECT_EQ(error_of(event_between("\"1h\"", "\"1h1d\"")),
            "reputation-drop.toml:11: [[event]] 'end' must be a duration such as \"2d\", \"12h\", "
            "\"2d12h30m\" or \"0\", not '1h1d'");
}

// ---- events ------------------------------------------------------------------------------------

TEST(ScenarioEvents, OutsideTheScenarioAreRefused) {
  EXPECT_EQ(error_of(event_between("\"7d\"", "\"8d\"")),
            "reputation-drop.toml:10: [[event]] 'start' '7d' is not before the scenario's end "
            "(7 days)");
  EXPECT_EQ(error_of(event_between("\"6d\"", "\"7d1m\"")),
            "reputation-drop.toml:11: [[event]] 'end' '7d1m' is after the scenario's end (7 days)");
  EXPECT_EQ(error_of(event_between("\"0\"", "\"25h\"", 1)),
            "reputation-drop.toml:11: [[event]] 'end' '25h' is after the scenario's end (1 day)");
  // The last moment of the scenario is a valid end.
  EXPECT_EQ(parsed(event_between("\"6d23h\"", "\"7d\"")).events.at(0).end, 7 * kDay);
}

TEST(ScenarioEvents, EndMustBeAfterStart) {
  EXPECT_EQ(error_of(event_between("\"2d\"", "\"2d\"")),
            "reputation-drop.toml:11: [[event]] 'end' '2d' is not after its 'start' '2d'");
  EXPECT_EQ(error_of(event_between("\"2d\"", "\"1d\"")),
            "reputation-drop.toml:11: [[event]] 'end' '1d' is not after its 'start' '2d'");
  EXPECT_EQ(error_of(event_between("\"2d\"", "0")),
            "reputation-drop.toml:11: [[event]] 'end' 0 is not after its 'start' '2d'");
}

TEST(ScenarioEvents, TwoIncidentsAreRefused) {
  const std::string error = error_of(with_tail(R"(
[[event]]
kind = "limit"
pool = "p"
start = "1h"
end = "2h"
value = 0.5
incident = true

[[event]]
kind = "limit"
pool = "p"
start = "3h"
end = "4h"
value = 0.5
incident = true
)"));
  EXPECT_EQ(error, "reputation-drop.toml:23: a second incident [[event]] (the first is on line 9)");
}

TEST(ScenarioEvents, IncidentFalseDoesNotCount) {
  const Scenario s = parsed(with_tail(R"(
[[event]]
kind = "limit"
pool = "p"
start = "1h"
end = "2h"
value = 0.5
incident = false

[[event]]
kind = "limit"
pool = "p"
start = "3h"
end = "4h"
value = 0.5
incident = true
)"));
  ASSERT_THAT(s.events, SizeIs(2));
  EXPECT_FALSE(s.events[0].incident);
  EXPECT_TRUE(s.events[1].incident);
}

TEST(ScenarioEvents, PoolAndVmtaMustExist) {
  const std::string rest = "start = \"0\"\nend = \"1h\"\nvalue = 0.5\n";
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"q\"\n" + rest)),
            "reputation-drop.toml:10: [[event]] pool 'q' is not a [[pool]] of the scenario");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nvmta = \"ip-2\"\n" + rest)),
            "reputation-drop.toml:11: [[event]] vmta 'ip-2' is not one of pool 'p'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p q\"\n" + rest)),
            "reputation-drop.toml:10: [[event]] pool name 'p q' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nvmta = \"\"\n" + rest)),
            "reputation-drop.toml:11: [[event]] vmta name '' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of(with_event("kind = \"demand\"\npool = \"p\"\nvmta = \"ip-1\"\n" + rest)),
            "reputation-drop.toml:11: [[event]] a demand event changes the whole pool: it takes no "
            "'vmta'");
}

TEST(ScenarioEvents, EventMayComeBeforeItsPoolInTheFile) {
  const Scenario s = parsed(kHead +
                            std::string("[[event]]\nkind = \"noise\"\npool = \"p\"\nstart = \"0\"\n"
                                        "end = \"1d\"\nvalue = 0.1\n") +
                            kPool);
  ASSERT_THAT(s.events, SizeIs(1));
  EXPECT_EQ(s.events[0].pool, "p");
}

TEST(ScenarioEvents, KindAndValue) {
  const auto error = [](const std::string& kind, const std::string& value) {
    return error_of(with_event("kind = \"" + kind +
                               "\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\nvalue = " + value +
                               "\n"));
  };
  EXPECT_EQ(error("outage", "1"),
            "reputation-drop.toml:9: [[event]] 'kind' must be limit, noise, uncurable or demand, "
            "not 'outage'");
  for (const char* value : {"0", "-1", "100.5", "nan", "inf", "\"0.5\""}) {
    EXPECT_THAT(error("limit", value),
                StartsWith("reputation-drop.toml:13: [[event]] 'value' must be a number above 0 "
                           "and at most 100 for kind 'limit', not "))
        << value;
  }
  EXPECT_EQ(error("demand", "0"),
            "reputation-drop.toml:13: [[event]] 'value' must be a number above 0 and at most 100 "
            "for kind 'demand', not 0");
  EXPECT_EQ(error("noise", "1.5"),
            "reputation-drop.toml:13: [[event]] 'value' must be a number from 0 to 1 for kind "
            "'noise', not 1.5");
  EXPECT_EQ(error("uncurable", "-0.1"),
            "reputation-drop.toml:13: [[event]] 'value' must be a number from 0 to 1 for kind "
            "'uncurable', not -0.1");
  for (const auto& [kind, value] : std::vector<std::pair<std::string, double>>{
           {"limit", 100}, {"demand", 0.01}, {"noise", 0}, {"uncurable", 1}}) {
    const Scenario s = parsed(with_event("kind = \"" + kind +
                                         "\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\n"
                                         "value = " +
                                         std::to_string(value) + "\n"));
    ASSERT_THAT(s.events, SizeIs(1));
    EXPECT_DOUBLE_EQ(s.events[0].value, value) << kind;
  }
}

TEST(ScenarioEvents, RequiredKeysAndIncidentType) {
  EXPECT_EQ(error_of(with_event("pool = \"p\"\nstart = \"0\"\nend = \"1h\"\nvalue = 1\n")),
            "reputation-drop.toml:8: [[event]] needs 'kind'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\nstart = \"0\"\nend = \"1h\"\nvalue = 1\n")),
            "reputation-drop.toml:8: [[event]] needs 'pool'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nend = \"1h\"\nvalue = 1\n")),
            "reputation-drop.toml:8: [[event]] needs 'start'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nstart = \"0\"\nvalue = 1\n")),
            "reputation-drop.toml:8: [[event]] needs 'end'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\n")),
            "reputation-drop.toml:8: [[event]] needs 'value'");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\n"
                                "value = 1\nincident = \"yes\"\n")),
            "reputation-drop.toml:14: [[event]] 'incident' must be true or false, not 'yes'");
}

// ---- limits ------------------------------------------------------------------------------------

TEST(ScenarioLimits, TwoComparisonsAreRefused) {
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"delivered\"\nat_least = 1000\n"
                                "above = \"static\"\n")),
            "reputation-drop.toml:8: [[limit]] needs exactly one of at_most, at_least, below, "
            "above");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"overrun\"\nat_most = 1\n"
                                "at_least = 0\n")),
            "reputation-drop.toml:8: [[limit]] needs exactly one of at_most, at_least, below, "
            "above");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"overrun\"\n")),
            "reputation-drop.toml:8: [[limit]] needs exactly one of at_most, at_least, below, "
            "above");
}

TEST(ScenarioLimits, TimeToCutWithoutAnIncidentIsRefused) {
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"time_to_cut\"\nat_most = 600\n")),
            "reputation-drop.toml:10: [[limit]] metric 'time_to_cut' needs an [[event]] with "
            "incident = true");
  EXPECT_EQ(error_of(with_limit(
                "policy = \"sluice\"\nmetric = \"time_to_recover\"\nbelow = \"static\"\n")),
            "reputation-drop.toml:10: [[limit]] metric 'time_to_recover' needs an [[event]] with "
            "incident = true");
  // An event that is not the incident does not do.
  EXPECT_THAT(error_of(with_tail("[[event]]\nkind = \"noise\"\npool = \"p\"\nstart = \"0\"\n"
                                 "end = \"1h\"\nvalue = 0.1\n"
                                 "[[limit]]\npolicy = \"sluice\"\nmetric = \"time_to_cut\"\n"
                                 "at_most = 600\n")),
              StartsWith("reputation-drop.toml:16: [[limit]] metric 'time_to_cut' needs"));
}

TEST(ScenarioLimits, TimeToCutWithAnIncidentIsAccepted) {
  // The limit comes first in the file: the incident is looked for in the whole file.
  const Scenario s = parsed(with_tail(
      "[[limit]]\npolicy = \"sluice\"\nmetric = \"time_to_cut\"\nat_most = 600\n"
      "[[event]]\nkind = \"limit\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\nvalue = 0.5\n"
      "incident = true\n"));
  ASSERT_THAT(s.limits, SizeIs(1));
  EXPECT_EQ(s.limits[0].at_most, 600.0);
}

TEST(ScenarioLimits, PolicyMetricAndFactor) {
  EXPECT_EQ(error_of(with_limit("policy = \"smart\"\nmetric = \"delivered\"\nat_least = 1\n")),
            "reputation-drop.toml:9: [[limit]] 'policy' must be one of sluice, static, "
            "pmta-backoff, kumo-step, aimd, oracle, not 'smart'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"delivered\"\nbelow = \"best\"\n")),
            "reputation-drop.toml:11: [[limit]] 'below' must be one of sluice, static, "
            "pmta-backoff, kumo-step, aimd, oracle, not 'best'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"bounces\"\nat_most = 1\n")),
            "reputation-drop.toml:10: [[limit]] 'metric' must be one of delivered, deferred, "
            "deferral_rate, overrun, delivered_share, changes, reloads, time_to_cut, "
            "time_to_recover, not 'bounces'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"changes\"\nabove = \"sluice\"\n")),
            "reputation-drop.toml:11: [[limit]] 'above' names the limit's own policy 'sluice'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"changes\"\nat_most = 5\n"
                                "factor = 2\n")),
            "reputation-drop.toml:12: [[limit]] 'factor' goes only with 'below' or 'above'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"changes\"\nbelow = \"aimd\"\n"
                                "factor = 0\n")),
            "reputation-drop.toml:12: [[limit]] 'factor' must be a number above 0, not 0");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"changes\"\nat_most = \"5\"\n")),
            "reputation-drop.toml:11: [[limit]] 'at_most' must be a number, not '5'");
  EXPECT_EQ(error_of(with_limit("metric = \"changes\"\nat_most = 5\n")),
            "reputation-drop.toml:8: [[limit]] needs 'policy'");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nat_most = 5\n")),
            "reputation-drop.toml:8: [[limit]] needs 'metric'");
}

// ---- pools and IPs -----------------------------------------------------------------------------

TEST(ScenarioPools, RequiredKeys) {
  EXPECT_EQ(error_of(kHead), "reputation-drop.toml:1: the scenario needs at least one [[pool]]");
  EXPECT_EQ(error_of(with_pool(std::string("isp = \"gmail\"\ndemand = 1\n") + kIps)),
            "reputation-drop.toml:3: pool needs 'name'");
  EXPECT_EQ(error_of(with_pool(std::string("name = \"p\"\ndemand = 1\n") + kIps)),
            "reputation-drop.toml:3: pool 'p' needs 'isp'");
  EXPECT_EQ(error_of(with_pool(std::string("name = \"p\"\nisp = \"gmail\"\n") + kIps)),
            "reputation-drop.toml:3: pool 'p' needs 'demand'");
  EXPECT_EQ(error_of(with_pool("name = \"p\"\nisp = \"gmail\"\ndemand = 1\n")),
            "reputation-drop.toml:3: pool 'p' needs 'ips'");
}

TEST(ScenarioPools, Values) {
  const auto pool = [](const std::string& line) {
    return error_of(with_pool("name = \"p\"\nisp = \"gmail\"\ndemand = 1\n" + line + "\n" + kIps));
  };
  EXPECT_EQ(error_of(with_pool(std::string("name = \"p\"\nisp = \"aol\"\ndemand = 1\n") + kIps)),
            "reputation-drop.toml:5: pool 'p': isp 'aol' is not one of gmail, outlook, yahoo, gmx, "
            "orange");
  EXPECT_EQ(error_of(with_pool(std::string("name = \"p\"\nisp = \"gmail\"\ndemand = 0\n") + kIps)),
            "reputation-drop.toml:6: pool 'p': 'demand' must be a number above 0, not 0");
  EXPECT_EQ(
      error_of(with_pool(std::string("name = \"p\"\nisp = \"gmail\"\ndemand = inf\n") + kIps)),
      "reputation-drop.toml:6: pool 'p': 'demand' must be a number above 0, not inf");
  EXPECT_EQ(pool("tier = \"vip\""),
            "reputation-drop.toml:7: pool 'p': tier 'vip' is not one of high, medium, low, "
            "warming");
  EXPECT_EQ(pool("start_setting = 0"),
            "reputation-drop.toml:7: pool 'p': 'start_setting' must be an integer from 1 to 1000, "
            "not 0");
  EXPECT_EQ(pool("start_setting = 1001"),
            "reputation-drop.toml:7: pool 'p': 'start_setting' must be an integer from 1 to 1000, "
            "not 1001");
  EXPECT_EQ(pool("domain = \"gmail com\""),
            "reputation-drop.toml:7: pool 'p': domain 'gmail com' is not a domain name");
  EXPECT_EQ(pool("domain = \"localhost\""),
            "reputation-drop.toml:7: pool 'p': domain 'localhost' is not a domain name");
  EXPECT_EQ(pool("isps = [\"gmail\"]"), "reputation-drop.toml:7: unknown key 'isps' in [[pool]]");
  EXPECT_EQ(
      error_of(with_pool(std::string("name = \"a b\"\nisp = \"gmail\"\ndemand = 1\n") + kIps)),
      "reputation-drop.toml:4: pool name 'a b' is not [A-Za-z0-9._-]+");
}

TEST(ScenarioPools, DefinedTwice) {
  EXPECT_EQ(error_of(kHead + kPool + "[[pool]]\nname = \"p\"\n"),
            "reputation-drop.toml:9: pool 'p' is defined twice (first at line 3)");
}

TEST(ScenarioPools, IpsTable) {
  EXPECT_EQ(error_of(with_ips("[]")),
            "reputation-drop.toml:7: pool 'p': 'ips' must hold 1 to 64 "
            "IPs, not 0");
  std::string many = "[";
  for (int i = 1; i <= 65; ++i) {
    many += (i > 1 ? ", " : "") + std::string("{ vmta = \"ip-") + std::to_string(i) +
            "\", address = \"198.51.100." + std::to_string(i) + "\", limit = 1 }";
  }
  EXPECT_EQ(error_of(with_ips(many + "]")),
            "reputation-drop.toml:7: pool 'p': 'ips' must hold 1 to 64 IPs, not 65");
  many.replace(many.rfind(", {"), std::string::npos, "]");
  EXPECT_THAT(parsed(with_ips(many)).pools.at(0).ips, SizeIs(64));
  EXPECT_EQ(error_of(with_ips("[\"198.51.100.1\"]")),
            "reputation-drop.toml:7: pool 'p': 'ips' must be an array of tables such as { vmta = "
            "\"ip-1\", address = \"198.51.100.1\", limit = 8 }, not ['198.51.100.1']");
  EXPECT_EQ(error_of(with_ips("{ vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8 }")),
            "reputation-drop.toml:7: pool 'p': 'ips' must be an array of tables such as { vmta = "
            "\"ip-1\", address = \"198.51.100.1\", limit = 8 }, not a table");
}

TEST(ScenarioPools, IpsAsAnArrayOfTablesReadTheSame) {
  const Scenario s = parsed(kHead + std::string(R"([[pool]]
name = "p"
isp = "yahoo"
demand = 5
[[pool.ips]]
vmta = "y-1"
address = "192.0.2.1"
limit = 3
)"));
  ASSERT_THAT(s.pools, SizeIs(1));
  ASSERT_THAT(s.pools[0].ips, SizeIs(1));
  EXPECT_EQ(s.pools[0].ips[0].vmta, "y-1");
  EXPECT_EQ(s.pools[0].ips[0].limit, 3);
}

TEST(ScenarioPools, IpKeys) {
  EXPECT_EQ(error_of(with_ips("[ { address = \"198.51.100.1\", limit = 8 } ]")),
            "reputation-drop.toml:7: pool 'p': an IP needs 'vmta'");
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", limit = 8 } ]")),
            "reputation-drop.toml:7: pool 'p', vmta 'ip-1': needs 'address'");
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\" } ]")),
            "reputation-drop.toml:7: pool 'p', vmta 'ip-1': needs 'limit'");
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 0 } ]")),
            "reputation-drop.toml:7: pool 'p', vmta 'ip-1': 'limit' must be an integer from 1 to "
            "1000, not 0");
  EXPECT_EQ(
      error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 1001 } ]")),
      "reputation-drop.toml:7: pool 'p', vmta 'ip-1': 'limit' must be an integer from 1 to 1000, "
      "not 1001");
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8, "
                              "port = 25 } ]")),
            "reputation-drop.toml:7: pool 'p': unknown key 'port' in 'ips'");
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip 1\", address = \"198.51.100.1\", limit = 8 } ]")),
            "reputation-drop.toml:7: pool 'p': vmta name 'ip 1' is not [A-Za-z0-9._-]+");
}

TEST(ScenarioPools, ErrorsNameTheLineOfTheOffendingIp) {
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8 },\n"
                              "  { vmta = \"ip-2\", address = \"198.51.100.2\", limit = -1 } ]")),
            "reputation-drop.toml:8: pool 'p', vmta 'ip-2': 'limit' must be an integer from 1 to "
            "1000, not -1");
}

TEST(ScenarioPools, AddressMustBeAnIpv4DottedQuad) {
  for (const char* address : {"198.51.100", "198.51.100.1.2", "198.51.100.256", "198.51.100.01",
                              "198.51..1", "198.51.100.", ".198.51.100", "2001:db8::1",
                              "mx.example.com", "198.51.100.1 ", "", "1234.1.1.1", "+1.1.1.1"}) {
    EXPECT_EQ(error_of(with_ips(std::string("[ { vmta = \"ip-1\", address = \"") + address +
                                "\", limit = 8 } ]")),
              std::string("reputation-drop.toml:7: pool 'p', vmta 'ip-1': address '") + address +
                  "' is not an IPv4 address such as 198.51.100.11");
  }
  for (const char* address : {"0.0.0.0", "255.255.255.255", "10.0.0.1"}) {
    EXPECT_EQ(parsed(with_ips(std::string("[ { vmta = \"ip-1\", address = \"") + address +
                              "\", limit = 8 } ]"))
                  .pools.at(0)
                  .ips.at(0)
                  .address,
              address);
  }
}

TEST(ScenarioPools, VmtaNamesAreUniqueAcrossTheScenario) {
  EXPECT_EQ(error_of(with_ips("[ { vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8 },\n"
                              "  { vmta = \"ip-1\", address = \"198.51.100.2\", limit = 8 } ]")),
            "reputation-drop.toml:8: pool 'p': vmta 'ip-1' is listed twice");
  EXPECT_EQ(error_of(with_tail(
                std::string("[[pool]]\nname = \"q\"\nisp = \"yahoo\"\ndemand = 1\n") + kIps)),
            "reputation-drop.toml:12: vmta 'ip-1' is in two pools: 'p' and 'q'");
}

// ---- the top level -----------------------------------------------------------------------------

TEST(ScenarioErrors, UnknownKeysAndTablesAreNamed) {
  EXPECT_EQ(error_of(with_top("step = 5")), "reputation-drop.toml:2: unknown key 'step'");
  EXPECT_EQ(error_of(with_tail("[world]\nseed = 1\n")),
            "reputation-drop.toml:8: unknown key 'world'");
  EXPECT_EQ(error_of(with_tail("[reputation]\npenalty = 0.5\n")),
            "reputation-drop.toml:9: unknown key 'penalty' in [reputation]");
  EXPECT_EQ(error_of(with_event("kind = \"limit\"\npool = \"p\"\nstart = \"0\"\nend = \"1h\"\n"
                                "value = 1\nduration = \"1h\"\n")),
            "reputation-drop.toml:14: unknown key 'duration' in [[event]]");
  EXPECT_EQ(error_of(with_limit("policy = \"sluice\"\nmetric = \"changes\"\nat_most = 5\n"
                                "note = \"x\"\n")),
            "reputation-drop.toml:12: unknown key 'note' in [[limit]]");
}

TEST(ScenarioErrors, TopLevelValues) {
  EXPECT_EQ(error_of(std::string("start = \"2026-11-02\"\n") + kPool),
            "reputation-drop.toml:1: scenario needs 'name'");
  EXPECT_EQ(error_of(std::string("name = \"a/b\"\nstart = \"2026-11-02\"\n") + kPool),
            "reputation-drop.toml:1: scenario name 'a/b' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of(with_top("description = 5")),
            "reputation-drop.toml:2: 'description' must be a string");
  EXPECT_EQ(error_of(with_top("days = 0")),
            "reputation-drop.toml:2: 'days' must be an integer from 1 to 60, not 0");
  EXPECT_EQ(error_of(with_top("days = 61")),
            "reputation-drop.toml:2: 'days' must be an integer from 1 to 60, not 61");
  EXPECT_EQ(error_of(with_top("days = 7.0")),
            "reputation-drop.toml:2: 'days' must be an integer from 1 to 60, not 7.0");
  for (const char* minutes : {"0", "7", "61", "120", "\"5\""}) {
    EXPECT_THAT(error_of(with_top(std::string("step_minutes = ") + minutes)),
                StartsWith("reputation-drop.toml:2: 'step_minutes' must be an integer from 1 to "
                           "60 that divides a day, not "))
        << minutes;
  }
  EXPECT_EQ(error_of(with_top("messages_per_connection = 0")),
            "reputation-drop.toml:2: 'messages_per_connection' must be an integer from 1 to "
            "10000, not 0");
  EXPECT_EQ(error_of(with_top("reputation = 1")),
            "reputation-drop.toml:2: 'reputation' must be a table");
  EXPECT_EQ(error_of(std::string(kHead) + "pool = 1\n"),
            "reputation-drop.toml:3: 'pool' must be an array of tables ([[pool]])");
}

TEST(ScenarioErrors, ReputationValues) {
  const auto error = [](const std::string& line) {
    return error_of(with_tail("[reputation]\n" + line + "\n"));
  };
  EXPECT_EQ(error("overrun_tolerance = 1.5"),
            "reputation-drop.toml:9: [reputation] 'overrun_tolerance' must be a number from 0 to "
            "1, not 1.5");
  EXPECT_EQ(error("overrun_steps = 0"),
            "reputation-drop.toml:9: [reputation] 'overrun_steps' must be an integer from 1 to "
            "1000, not 0");
  EXPECT_EQ(error("overrun_penalty = 0"),
            "reputation-drop.toml:9: [reputation] 'overrun_penalty' must be a number above 0 and "
            "at most 1, not 0");
  EXPECT_EQ(error("recovery_per_day = -1"),
            "reputation-drop.toml:9: [reputation] 'recovery_per_day' must be an integer from 0 to "
            "1000, not -1");
  const Scenario s = parsed(with_tail(
      "[reputation]\noverrun_tolerance = 0\noverrun_penalty = 1\nrecovery_per_day = 0\n"));
  EXPECT_DOUBLE_EQ(s.overrun_tolerance, 0);
  EXPECT_DOUBLE_EQ(s.overrun_penalty, 1);
  EXPECT_EQ(s.recovery_per_day, 0);
}

TEST(ScenarioErrors, TomlSyntaxErrorNamesItsLine) {
  EXPECT_THAT(error_of(with_tail("[[event]]\nkind = limit\n")),
              StartsWith("reputation-drop.toml:9: "));
}

TEST(ScenarioErrors, MessagesStayOnOneLine) {
  const std::string error =
      error_of(with_pool("name = \"p\"\nisp = \"gm\\nail\"\ndemand = 1\n" + std::string(kIps)));
  EXPECT_EQ(error,
            "reputation-drop.toml:5: pool 'p': isp 'gm\\nail' is not one of gmail, outlook, yahoo, "
            "gmx, orange");
  EXPECT_THAT(error, Not(HasSubstr("\n")));
}

// ---- files
// ---------------------------------------------------------------------------------------

TEST(ScenarioFile, LoadsAFileAndNamesItInMessages) {
  std::string dir = (std::filesystem::temp_directory_path() / "sluice-scenario-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/reputation-drop.toml";
  std::ofstream(path) << kFull;
  const ScenarioLoad good = load_scenario(path);
  ASSERT_TRUE(good.scenario.has_value()) << good.error;
  EXPECT_EQ(good.scenario->source, path);
  EXPECT_THAT(good.scenario->pools, SizeIs(2));

  std::ofstream(path) << "name = \"s\"\nstart = \"2026-11-02\"\ndays = 0\n";
  EXPECT_EQ(load_scenario(path).error, path + ":3: 'days' must be an integer from 1 to 60, not 0");
  std::filesystem::remove_all(dir);
  const ScenarioLoad missing = load_scenario(path);
  EXPECT_FALSE(missing.scenario.has_value());
  EXPECT_EQ(missing.error, path + ": cannot be read");
}

}  // namespace
}  // namespace sluice::config
