// `sluice simulate` on every shipped scenario (its pass limits are the test), its HTML page, and
// `sluice replay`, which must not write a byte.

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/e2e/loop_support.h"

namespace sluice::e2e {
namespace {

const fs::path kScenarios = fs::path(SLUICE_SOURCE_DIR) / "examples" / "scenarios";

std::vector<std::string> scenario_names() {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(kScenarios)) {
    if (e.path().extension() == ".toml") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The built-in policy, whatever /etc/sluice holds on this machine.
class Simulation {
 public:
  Simulation() { write_file(config(), "# the built-in defaults\n"); }
  fs::path config() const { return tmp_.path() / "sluice.toml"; }
  fs::path path(const std::string& name) const { return tmp_.path() / name; }
  ProcessResult sluice(std::vector<std::string> args) const {
    std::vector<std::string> argv = {SLUICE_BINARY, "--config", config().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

 private:
  TempDir tmp_;
};

class ShippedScenario : public testing::TestWithParam<std::string> {};

TEST_P(ShippedScenario, MeetsItsPassLimits) {
  Simulation sim;
  const fs::path file = kScenarios / (GetParam() + ".toml");
  const ProcessResult r = sim.sluice({"--json", "simulate", file.string()});
  ASSERT_FALSE(r.out.empty()) << r.err;
  const Json out = Json::parse(r.out);
  EXPECT_EQ(out["failed_limits"], Json::array()) << out["failed_limits"].dump(2);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::vector<std::string> policies;
  for (const Json& p : out["policies"]) policies.push_back(p["policy"]);
  EXPECT_EQ(policies, (std::vector<std::string>{"sluice", "static", "pmta-backoff", "kumo-step",
                                                "aimd", "oracle"}));
  for (const Json& p : out["policies"]) {
    if (p["policy"] == "oracle") {
      EXPECT_EQ(p["overrun"], 0);
      EXPECT_DOUBLE_EQ(p["delivered_share"].get<double>(), 1.0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, ShippedScenario, testing::ValuesIn(scenario_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(SimulateE2E, EveryScenarioOfTheIssueIsShipped) {
  EXPECT_EQ(scenario_names(),
            (std::vector<std::string>{"bad-ip", "burst", "outlook", "recipient-noise",
                                      "reputation-drop", "steady", "uncurable", "warmup"}));
}

TEST(SimulateE2E, TheTextReportShowsTheTableTheDecisionsAndTheLimits) {
  Simulation sim;
  const ProcessResult r = sim.sluice({"simulate", (kScenarios / "burst.toml").string(), "--policy",
                                      "sluice", "--policy", "static", "--days", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 6u);
  EXPECT_EQ(lines[0], "scenario burst: 2 days in steps of 5 min, 1 pools, 4 IPs");
  EXPECT_TRUE(lines[3].starts_with("POLICY ")) << r.out;
  EXPECT_TRUE(lines[4].starts_with("sluice ")) << r.out;
  EXPECT_TRUE(lines[5].starts_with("static ")) << r.out;
  EXPECT_TRUE(contains(r.out, "high-rep-pool/gmail cut 8 -> 5: throttle deferral rate")) << r.out;
  // Without the oracle, the limit on the share of its deliveries is not checked.
  EXPECT_TRUE(contains(r.out, "pass limits: 4 of 4 met")) << r.out;
}

TEST(SimulateE2E, TheHtmlPageHasAChartPerPolicy) {
  Simulation sim;
  const fs::path page = sim.path("sim.html");
  const ProcessResult r = sim.sluice(
      {"simulate", (kScenarios / "burst.toml").string(), "--days", "2", "--html", page.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = slurp(page);
  EXPECT_TRUE(html.starts_with("<!doctype html>"));
  for (const char* policy : {"sluice", "static", "pmta-backoff", "kumo-step", "aimd", "oracle"}) {
    EXPECT_TRUE(contains(html, std::string("<h2>") + policy + "</h2>")) << policy;
  }
  std::size_t charts = 0;
  for (std::size_t at = html.find("<svg"); at != std::string::npos;
       at = html.find("<svg", at + 1)) {
    ++charts;
  }
  EXPECT_EQ(charts, 12u);  // setting against limit, and deferral rate, per policy
}

TEST(SimulateE2E, AFailedLimitExitsOneAndSaysWhich) {
  Simulation sim;
  std::string text = slurp(kScenarios / "recipient-noise.toml");
  text += "\n[[limit]]\npolicy = \"sluice\"\nmetric = \"deferral_rate\"\nat_most = 0.01\n";
  write_file(sim.path("strict.toml"), text);
  const ProcessResult r = sim.sluice(
      {"simulate", sim.path("strict.toml").string(), "--policy", "sluice", "--policy", "static"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "pass limits: 2 of 3 met")) << r.out;
  EXPECT_TRUE(contains(r.out, "  FAIL sluice deferral_rate")) << r.out;
}

TEST(SimulateE2E, ABrokenScenarioIsOneLineNamingFileAndLine) {
  Simulation sim;
  write_file(sim.path("broken.toml"), "name = \"x\"\nstart = \"2026-11-02\"\ndays = 99\n");
  const ProcessResult r = sim.sluice({"simulate", sim.path("broken.toml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(r.err.starts_with("sluice: error: " + sim.path("broken.toml").string() + ":3: "))
      << r.err;
}

TEST(ReplayE2E, ShowsTheDecisionsOfTheHistoryAndWritesNothing) {
  Sandbox box;
  // Two quiet hours, then an hour with 10% 421s: the configured policy cuts once.
  write_file(box.log(), kHeader + traffic(kNow - 3 * kHour, kNow - kHour, 1200, 0) +
                            traffic(kNow - kHour, kNow, 600, 60, 1200));
  const auto before = snapshot(box.work());

  const ProcessResult r = box.sluice(kNow + kHour, {"replay"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "high-rep-pool/gmail initial 6 -> 6: no fragment yet")) << r.out;
  EXPECT_TRUE(contains(r.out, "high-rep-pool/gmail cut 6 -> 4: throttle deferral rate")) << r.out;
  EXPECT_TRUE(contains(r.out, "replayed " + iso(kNow - 3 * kHour) + " .. " + iso(kNow) +
                                  ": 1800 records, 2 decisions would have been made"))
      << r.out;
  EXPECT_EQ(snapshot_differences(before, snapshot(box.work())), "");

  const ProcessResult json = box.sluice(kNow + kHour, {"--json", "replay", "--from", "2h"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Json out = Json::parse(json.out);
  EXPECT_EQ(out["from"], iso(kNow - kHour));
  EXPECT_EQ(snapshot_differences(before, snapshot(box.work())), "");
}

}  // namespace
}  // namespace sluice::e2e
