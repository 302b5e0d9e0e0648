#include "cli/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/memory_state_store.h"
#include "tests/support/prometheus_format.h"

namespace sluice::cli {
namespace {

using prometheus::exposition_problems;
using prometheus::parse_sample;
using prometheus::ParsedSample;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr UnixSeconds kNow = 1795780800;  // 2026-11-27T12:00:00Z

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

MetricsInput small_input() {
  MetricsInput in;
  PairMetrics p;
  p.pool = "bulk";
  p.isp = "gmail";
  p.max_smtp_out = 4;
  p.tier = Tier::high;
  p.cap = 10;
  p.phase = Phase::verifying;
  p.deferral_ratio[static_cast<int>(DeferralClass::connection)] = 0.1;
  p.deferral_ratio[static_cast<int>(DeferralClass::recipient)] = 0.025;
  in.pairs.push_back(p);
  in.decisions[{"bulk", "gmail", Rule::initial}] = 1;
  in.decisions[{"bulk", "gmail", Rule::cut}] = 2;
  in.reloads = 3;
  in.reload_failures = 1;
  in.cycle_duration_seconds = 0.0125;
  in.last_cycle_at = kNow;
  in.records = 600;
  in.malformed[static_cast<int>(MalformedReason::bad_time)] = 2;
  return in;
}

TEST(Metrics, RendersTheExactTextOfASmallCase) {
  EXPECT_EQ(render_metrics(small_input()),
            R"(# HELP sluice_max_smtp_out max-smtp-out of the pool at the ISP, in force.
# TYPE sluice_max_smtp_out gauge
sluice_max_smtp_out{pool="bulk",isp="gmail"} 4
# HELP sluice_cap Highest max-smtp-out the pair's reputation tier allows.
# TYPE sluice_cap gauge
sluice_cap{pool="bulk",isp="gmail"} 10
# HELP sluice_tier The pair's reputation tier in force (1), the others (0).
# TYPE sluice_tier gauge
sluice_tier{pool="bulk",isp="gmail",tier="high"} 1
sluice_tier{pool="bulk",isp="gmail",tier="medium"} 0
sluice_tier{pool="bulk",isp="gmail",tier="low"} 0
sluice_tier{pool="bulk",isp="gmail",tier="warming"} 0
# HELP sluice_phase The pair's phase (1), the others (0).
# TYPE sluice_phase gauge
sluice_phase{pool="bulk",isp="gmail",phase="steady"} 0
sluice_phase{pool="bulk",isp="gmail",phase="verifying"} 1
sluice_phase{pool="bulk",isp="gmail",phase="investigate"} 0
sluice_phase{pool="bulk",isp="gmail",phase="no-effect"} 0
# HELP sluice_deferral_ratio Deferrals of the class over attempts in the last decision window (0..1).
# TYPE sluice_deferral_ratio gauge
sluice_deferral_ratio{pool="bulk",isp="gmail",class="connection"} 0.1
sluice_deferral_ratio{pool="bulk",isp="gmail",class="rate"} 0
sluice_deferral_ratio{pool="bulk",isp="gmail",class="reputation"} 0
sluice_deferral_ratio{pool="bulk",isp="gmail",class="recipient"} 0.025
sluice_deferral_ratio{pool="bulk",isp="gmail",class="config"} 0
sluice_deferral_ratio{pool="bulk",isp="gmail",class="other"} 0
# HELP sluice_override_in_force 1 while a pin, freeze or bounds of the override file (or the kill switch) holds the pair.
# TYPE sluice_override_in_force gauge
sluice_override_in_force{pool="bulk",isp="gmail"} 0
# HELP sluice_decisions_total Decisions recorded in the audit trail, by rule (dry runs and refused changes included).
# TYPE sluice_decisions_total counter
sluice_decisions_total{pool="bulk",isp="gmail",rule="cut"} 2
sluice_decisions_total{pool="bulk",isp="gmail",rule="initial"} 1
# HELP sluice_reloads_total Cycles whose change PowerMTA reloaded.
# TYPE sluice_reloads_total counter
sluice_reloads_total 3
# HELP sluice_reload_failures_total Cycles whose change was refused (fragment write, pmta test config or reload) and put back.
# TYPE sluice_reload_failures_total counter
sluice_reload_failures_total 1
# HELP sluice_cycle_duration_seconds How long the last cycle took: read, decide, apply, commit.
# TYPE sluice_cycle_duration_seconds gauge
sluice_cycle_duration_seconds 0.0125
# HELP sluice_last_cycle_timestamp_seconds When the last cycle ran (its clock), in unix seconds.
# TYPE sluice_last_cycle_timestamp_seconds gauge
sluice_last_cycle_timestamp_seconds 1795780800
# HELP sluice_last_cycle_records Accounting records the last cycle read (d, b, t, tq).
# TYPE sluice_last_cycle_records gauge
sluice_last_cycle_records 600
# HELP sluice_last_cycle_malformed_lines Malformed accounting lines the last cycle skipped, by reason.
# TYPE sluice_last_cycle_malformed_lines gauge
sluice_last_cycle_malformed_lines{reason="column_count"} 0
sluice_last_cycle_malformed_lines{reason="bad_quoting"} 0
sluice_last_cycle_malformed_lines{reason="bad_time"} 2
sluice_last_cycle_malformed_lines{reason="bad_type"} 0
sluice_last_cycle_malformed_lines{reason="line_too_long"} 0
)");
}

TEST(Metrics, OutputFollowsTheExpositionFormatAndSluiceNames) {
  MetricsInput in = small_input();
  PairMetrics fresh;  // no state yet: no value, no phase
  fresh.pool = "new-pool";
  fresh.isp = "outlook";
  fresh.override_in_force = true;
  in.pairs.push_back(fresh);
  in.decisions[{"new-pool", "outlook", Rule::override}] = 1;
  const std::string text = render_metrics(in);
  EXPECT_EQ(exposition_problems(text), "");
  for (const std::string& line : lines_of(text)) {
    if (line.starts_with("# ")) {
      EXPECT_TRUE(line.starts_with("# HELP sluice_") || line.starts_with("# TYPE sluice_")) << line;
    } else {
      EXPECT_TRUE(line.starts_with("sluice_")) << line;
    }
  }
  EXPECT_THAT(text, Not(HasSubstr("sluice_max_smtp_out{pool=\"new-pool\"")));
  EXPECT_THAT(text, Not(HasSubstr("phase{pool=\"new-pool\"")));
  EXPECT_THAT(text, HasSubstr("sluice_override_in_force{pool=\"new-pool\",isp=\"outlook\"} 1\n"));
  // Base units: seconds, never milliseconds.
  EXPECT_THAT(text, Not(HasSubstr("_ms")));
}

TEST(Metrics, LabelValuesAreEscaped) {
  MetricsInput in;
  PairMetrics p;
  p.pool = "a\"b\\c\nd";
  p.isp = "gmail";
  in.pairs.push_back(p);
  const std::string text = render_metrics(in);
  EXPECT_THAT(text, HasSubstr("sluice_cap{pool=\"a\\\"b\\\\c\\nd\",isp=\"gmail\"} 1\n"));
  EXPECT_EQ(exposition_problems(text), "");
  ParsedSample sample;
  ASSERT_EQ(parse_sample("sluice_cap{pool=\"a\\\"b\\\\c\\nd\",isp=\"gmail\"} 1", sample), "");
  EXPECT_EQ(sample.labels.at("pool"), p.pool);
}

TEST(Metrics, SpecialValuesUsePrometheusSpelling) {
  MetricsInput in;
  in.cycle_duration_seconds = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(render_metrics(in), HasSubstr("\nsluice_cycle_duration_seconds NaN\n"));
  in.cycle_duration_seconds = std::numeric_limits<double>::infinity();
  const std::string text = render_metrics(in);
  EXPECT_THAT(text, HasSubstr("\nsluice_cycle_duration_seconds +Inf\n"));
  EXPECT_EQ(exposition_problems(text), "");
}

// The checker finds what it is meant to: a test passing on it means something.
TEST(MetricsFormatChecker, RefusesBrokenExpositionText) {
  const std::string head = "# HELP x_total X.\n# TYPE x_total counter\n";
  EXPECT_EQ(exposition_problems(head + "x_total 1\n"), "");
  EXPECT_EQ(exposition_problems(head + "x_total{a=\"1\",b=\"q\\\"\"} -2.5e3 1700000000\n"), "");
  EXPECT_THAT(exposition_problems(head + "x_total 1"), HasSubstr("newline"));
  EXPECT_THAT(exposition_problems(head + "x_total{1a=\"1\"} 1\n"), HasSubstr("bad label name"));
  EXPECT_THAT(exposition_problems(head + "x_total{__a=\"1\"} 1\n"), HasSubstr("bad label name"));
  EXPECT_THAT(exposition_problems(head + "x_total{a=\"\\t\"} 1\n"), HasSubstr("bad escape"));
  EXPECT_THAT(exposition_problems(head + "x_total{a=\"1} 1\n"), HasSubstr("unterminated"));
  EXPECT_THAT(exposition_problems(head + "x_total{a=1} 1\n"), HasSubstr("not quoted"));
  EXPECT_THAT(exposition_problems(head + "x_total one\n"), HasSubstr("bad value"));
  EXPECT_THAT(exposition_problems(head + "x_total  1\n"), HasSubstr("more than one space"));
  EXPECT_THAT(exposition_problems(head + "x_total 1\nx_total 2\n"), HasSubstr("repeated"));
  EXPECT_THAT(exposition_problems("x_total 1\n"), HasSubstr("no TYPE"));
  EXPECT_THAT(exposition_problems("# HELP 1x X.\n"), HasSubstr("bad metric name"));
  EXPECT_THAT(exposition_problems("# HELP x X.\n# TYPE x counter\nx 1\n"),
              HasSubstr("does not end in _total"));
  EXPECT_THAT(exposition_problems(head + "# TYPE x_total counter\n"), HasSubstr("second TYPE"));
  EXPECT_THAT(exposition_problems("# HELP y Y.\n# TYPE y gauge\n" + head + "x_total 1\n" +
                                  "y{a=\"1\"} 1\n" + "x_total{b=\"2\"} 1\n"),
              HasSubstr("not together"));
  EXPECT_THAT(exposition_problems(head + "x_total 1\n# HELP x_total Again.\n"),
              HasSubstr("after its samples"));
}

// A cycle's rows share its time: counters count cycles, from the audit trail.
TEST(Metrics, CountersComeFromTheAuditTrail) {
  MemoryStateStore store;
  PairState state;
  state.pool = "bulk";
  state.isp = "gmail";
  state.max_smtp_out = 4;
  state.tier = Tier::high;
  state.phase = Phase::verifying;
  const auto decision = [](UnixSeconds at, Rule rule) {
    Decision d;
    d.pool = "bulk";
    d.isp = "gmail";
    d.at = at;
    d.rule = rule;
    return d;
  };
  const std::vector<DecisionRecord> records = {
      {decision(kNow - 300, Rule::initial), true, "reloaded"},
      {decision(kNow - 300, Rule::cut), true, "reloaded"},  // the same cycle: one reload
      {decision(kNow - 200, Rule::cut), false, "pmta test config failed: exit 1"},
      {decision(kNow - 100, Rule::cut), false, "dry run"},
      {decision(kNow, Rule::cut), true, "reloaded"},
  };
  // 200 attempts in the last hour: 20 throttled (connection), 10 recipient deferrals.
  std::vector<SignalBucket> buckets = {
      {kNow - 600, "bulk", "gmail", "198.51.100.1", DeferralClass::none, {170, 0, 0, 0}},
      {kNow - 600, "bulk", "gmail", "198.51.100.1", DeferralClass::connection, {0, 0, 20, 0}},
      {kNow - 600, "bulk", "gmail", "198.51.100.1", DeferralClass::recipient, {0, 0, 10, 0}},
      // Before the window: not counted.
      {kNow - 2 * 3600, "bulk", "gmail", "198.51.100.1", DeferralClass::rate, {0, 0, 50, 0}},
  };
  ASSERT_TRUE(store.commit_cycle({}, buckets, {state}, records, {}));
  ManagedPair pair{"bulk", "gmail", Tier::high, default_policy()};
  ManagedPair unseen{"bulk", "outlook", Tier::low, default_policy()};
  CycleReport report;
  report.now = kNow;
  report.read.records = 7;
  Expected<MetricsInput> in = collect_metrics(config::Config{}, {pair, unseen}, store, report,
                                              std::chrono::milliseconds(250));
  ASSERT_TRUE(in) << in.error().message;
  EXPECT_EQ(in->reloads, 2u);
  EXPECT_EQ(in->reload_failures, 1u);
  EXPECT_EQ((in->decisions[{"bulk", "gmail", Rule::cut}]), 4u);
  EXPECT_EQ((in->decisions[{"bulk", "gmail", Rule::initial}]), 1u);
  EXPECT_DOUBLE_EQ(in->cycle_duration_seconds, 0.25);
  EXPECT_EQ(in->last_cycle_at, kNow);
  EXPECT_EQ(in->records, 7u);
  ASSERT_EQ(in->pairs.size(), 2u);
  const PairMetrics& m = in->pairs[0];
  EXPECT_EQ(m.max_smtp_out, 4);
  EXPECT_EQ(m.phase, Phase::verifying);
  EXPECT_EQ(m.tier, Tier::high);
  EXPECT_EQ(m.cap, 10);  // gmail's high tier
  EXPECT_DOUBLE_EQ(m.deferral_ratio[static_cast<int>(DeferralClass::connection)], 0.1);
  EXPECT_DOUBLE_EQ(m.deferral_ratio[static_cast<int>(DeferralClass::recipient)], 0.05);
  EXPECT_DOUBLE_EQ(m.deferral_ratio[static_cast<int>(DeferralClass::rate)], 0);
  EXPECT_FALSE(m.override_in_force);
  EXPECT_EQ(in->pairs[1].max_smtp_out, std::nullopt);
  EXPECT_EQ(in->pairs[1].cap, 2);  // outlook's low tier
  report.overrides.freeze_all = true;
  in = collect_metrics(config::Config{}, {pair}, store, report, {});
  ASSERT_TRUE(in);
  EXPECT_TRUE(in->pairs[0].override_in_force);
  EXPECT_THAT(exposition_problems(render_metrics(*in)), IsEmpty());
}

}  // namespace
}  // namespace sluice::cli
