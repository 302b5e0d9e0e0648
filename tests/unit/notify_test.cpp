#include "cli/notify.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::cli {
namespace {

constexpr UnixSeconds kNow = 1795780800;  // 2026-11-27T12:00:00Z

Decision decision(Rule rule, int from, int to) {
  Decision d;
  d.pool = "pool-a";
  d.isp = "gmail";
  d.at = kNow;
  d.rule = rule;
  d.old_value = from;
  d.new_value = to;
  d.reason = "why";
  return d;
}

std::vector<std::string> kinds(const std::vector<nlohmann::ordered_json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["event"].get<std::string>());
  return out;
}

CycleReport applied() {
  CycleReport r;
  r.now = kNow;
  r.mode = CycleMode::apply;
  return r;
}

TEST(NotableEvents, AnAppliedCutAndAnEntryIntoNoEffect) {
  CycleReport r = applied();
  r.decisions = {decision(Rule::severe_cut, 8, 4), decision(Rule::raise, 4, 5),
                 decision(Rule::no_effect, 4, 4)};
  const auto events = notable_events(r, 300);
  EXPECT_EQ(kinds(events), (std::vector<std::string>{"cut", "no_effect"}));
  EXPECT_EQ(events[0]["pool"], "pool-a");
  EXPECT_EQ(events[0]["old_value"], 8);
  EXPECT_EQ(events[0]["new_value"], 4);
  EXPECT_EQ(events[0]["at"], "2026-11-27T12:00:00Z");
}

TEST(NotableEvents, ARefusedChangeIsNoCut) {
  CycleReport r = applied();
  r.decisions = {decision(Rule::cut, 8, 6)};
  r.pmta_failed = true;
  r.pmta_outcome = "pmta reload exited 1";
  const auto events = notable_events(r, 300);
  EXPECT_EQ(kinds(events), (std::vector<std::string>{"change_refused"}));
  EXPECT_EQ(events[0]["pmta"], "pmta reload exited 1");
}

TEST(NotableEvents, NothingFromADryRunOrAPlan) {
  for (CycleMode mode : {CycleMode::dry_run, CycleMode::plan}) {
    CycleReport r = applied();
    r.mode = mode;
    r.decisions = {decision(Rule::cut, 8, 6)};
    EXPECT_TRUE(notable_events(r, 300).empty());
  }
}

TEST(NotableEvents, AnOverrideThatExpiredSinceTheLastCycle) {
  CycleReport r = applied();
  Override just;
  just.pool = "pool-a";
  just.kind = OverrideKind::pin;
  just.value = 3;
  just.until = kNow - 60;
  just.reason = "incident 42";
  Override long_ago = just;
  long_ago.until = kNow - 300;  // expired one cycle earlier: told then
  Override later = just;
  later.until = kNow + 60;
  Override forever = just;
  forever.until.reset();
  r.overrides.entries = {just, long_ago, later, forever};
  const auto events = notable_events(r, 300);
  ASSERT_EQ(kinds(events), (std::vector<std::string>{"override_expired"}));
  EXPECT_EQ(events[0]["kind"], "pin");
  EXPECT_EQ(events[0]["until"], "2026-11-27T11:59:00Z");
  EXPECT_EQ(events[0]["reason"], "incident 42");
}

}  // namespace
}  // namespace sluice::cli
