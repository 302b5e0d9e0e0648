// A warming pool end to end: six weeks of `sluice once` against an ISP that grants new IPs two
// connections at first and more as their reputation builds. The pool climbs through the warm-up
// stages to its cap without ever going above what the ISP grants.

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "tests/e2e/loop_support.h"

namespace sluice::e2e {
namespace {

// What the ISP grants the pool's IP as its reputation builds: 2 connections in its first week,
// 3 until the fifth, then 5.
int granted(Time since_start) {
  if (since_start < 7 * kDay) return 2;
  if (since_start < 35 * kDay) return 3;
  return 5;
}

// 12 hours of traffic before `t`, the last hour busiest (enough attempts for a decision window,
// as a pool sending all day has), `throttled` of them 421s.
std::string half_day(Time t, int throttled, int& n) {
  std::string out = traffic(t - 12 * kHour, t - kHour, 200, throttled / 2, n);
  out += traffic(t - kHour, t, 120, throttled - throttled / 2, n + 200);
  n += 320;
  return out;
}

Time parse_iso(const std::string& text) {
  std::tm tm{};
  strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return timegm(&tm);
}

// The number after `name` on its directive line (the comment lines never start with it).
std::optional<int> directive(const std::string& fragment, const std::string& name) {
  const std::size_t at = fragment.find("\n" + name + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::atoi(fragment.c_str() + at + name.size() + 2);
}

// The sandbox's pool in tier warming, with an empty log.
void make_warming(const Sandbox& box) {
  std::string config = slurp(box.config());
  config.replace(config.find("tier = \"high\""), 13, "tier = \"warming\"");
  write_file(box.config(), config);
  write_file(box.log(), kHeader);
}

TEST(WarmupE2E, AWarmingPoolClimbsItsStagesToTheCapWithoutAnOverrun) {
  Sandbox box;
  make_warming(box);

  const Time start = kNow;
  std::vector<int> rates;  // max-msg-rate per hour, as each stage was written
  int overruns = 0;
  int n = 0;
  for (Time t = start; t <= start + 43 * kDay; t += 12 * kHour) {
    // The last 12 hours: clean while the pool stays within the grant.
    if (t > start) {
      const std::string fragment = slurp(box.fragment());
      const int value = directive(fragment, "max-smtp-out").value_or(0);
      const bool over = value > granted(t - start);
      overruns += over ? 1 : 0;
      append_file(box.log(), half_day(t, over ? 60 : 0, n));
    }
    const ProcessResult once = box.sluice(t, {"once"});
    ASSERT_EQ(once.exit_code, 0) << iso(t) << ": " << once.err;
    const std::string fragment = slurp(box.fragment());
    const int rate = directive(fragment, "max-msg-rate").value_or(0);
    if (rates.empty() || rates.back() != rate) rates.push_back(rate);
  }

  EXPECT_EQ(overruns, 0);
  // 50/h for the first week, one stage up per clean week, then no limit.
  EXPECT_EQ(rates, (std::vector<int>{50, 100, 200, 400, 800, 0}));
  const std::string fragment = slurp(box.fragment());
  EXPECT_EQ(directive(fragment, "max-smtp-out"), 5) << fragment;
  EXPECT_FALSE(contains(fragment, "\nretry-after")) << fragment;

  const Json pools = box.json(start + 43 * kDay, "status")["pools"];
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0]["tier"], "medium");
  EXPECT_EQ(pools[0]["tier_source"], "configuration (warm-up complete)");
  EXPECT_EQ(pools[0]["cap"], 5);
  EXPECT_EQ(pools[0]["max_smtp_out"], 5);

  // Every change went by the schedule or the weekly rule: no cut, and the stages a week apart.
  std::vector<Time> stages;
  for (const Json& d : box.decisions(start + 43 * kDay)) {
    const std::string rule = d["rule"];
    EXPECT_TRUE(rule == "initial" || rule == "warmup" || rule == "raise") << d.dump();
    if (rule == "warmup") stages.push_back(parse_iso(d["at"]));
  }
  ASSERT_EQ(stages.size(), 5u);
  for (std::size_t i = 1; i < stages.size(); ++i) {
    EXPECT_GE(stages[i] - stages[i - 1], 7 * kDay);
    EXPECT_LE(stages[i] - stages[i - 1], 7 * kDay + 12 * kHour);
  }
}

TEST(WarmupE2E, ThrottleSignalsStepTheScheduleBack) {
  Sandbox box;
  make_warming(box);

  // Two clean weeks: stage 3 (200/h).
  const Time start = kNow;
  int n = 0;
  Time t = start;
  for (; t <= start + 14 * kDay; t += 12 * kHour) {
    if (t > start) append_file(box.log(), half_day(t, 0, n));
    ASSERT_EQ(box.sluice(t, {"once"}).exit_code, 0);
  }
  ASSERT_EQ(directive(slurp(box.fragment()), "max-msg-rate"), 200);
  const int value = directive(slurp(box.fragment()), "max-smtp-out").value();

  // Then an hour of 421s: the value is cut and the schedule goes back a stage.
  t += kHour;
  append_file(box.log(), traffic(t - kHour, t, 200, 40, n));
  const ProcessResult once = box.sluice(t, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  const std::string fragment = slurp(box.fragment());
  EXPECT_EQ(directive(fragment, "max-msg-rate"), 100) << fragment;
  EXPECT_LT(directive(fragment, "max-smtp-out").value(), value) << fragment;
  EXPECT_TRUE(contains(once.out, "warm-up back to stage 2: max-msg-rate 100/h")) << once.out;
  EXPECT_TRUE(contains(fragment, "\nretry-after 30m\n")) << fragment;
}

}  // namespace
}  // namespace sluice::e2e
