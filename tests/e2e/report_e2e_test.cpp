// End-to-end: the real build/sluice binary on logs made by scripts/gen-acct.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "e2e_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using sluice::e2e::ProcessResult;
using sluice::e2e::run_process;
using sluice::e2e::slurp;
using sluice::e2e::TempDir;

ProcessResult sluice(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_BINARY);
  return run_process(std::move(args));
}

void generate(const fs::path& dir, const std::string& name, std::vector<std::string> flags) {
  std::vector<std::string> argv = {std::string(SLUICE_SOURCE_DIR) + "/scripts/gen-acct"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(),
              {"--out", (dir / name).string(), "--truth", (dir / (name + ".truth.json")).string()});
  const ProcessResult r = run_process(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(ReportE2E, FiguresMatchTheGeneratorsTruth) {
  TempDir tmp;
  generate(tmp.path(), "acct.csv",
           {"--lines", "20000", "--seed", "7", "--malformed", "15", "--multiline", "4", "--latin1",
            "3", "--remap-at", "9000"});
  const std::string log = (tmp.path() / "acct.csv").string();
  const ProcessResult r =
      sluice({"--config", "/nonexistent-ok", "report", "--format", "json", log});
  ASSERT_EQ(r.exit_code, 1) << "a named config that is missing is an error";

  const ProcessResult ok = sluice({"report", "--format", "json", log});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const Json report = Json::parse(ok.out);
  const Json truth = Json::parse(slurp(tmp.path() / "acct.csv.truth.json"));
  for (const char* key :
       {"delivered", "bounced", "deferred", "deferred_queue", "malformed", "repaired"}) {
    EXPECT_EQ(report["totals"][key], truth["totals"][key]) << key;
  }
  for (const auto& [reason, count] : truth["malformed"].items()) {
    EXPECT_EQ(report["malformed"][reason], count) << reason;
  }
  for (const Json& isp : report["isps"]) {
    const Json& expected = truth["isps"][isp["isp"].get<std::string>()];
    for (const char* key : {"delivered", "bounced", "deferred", "deferred_queue"}) {
      EXPECT_EQ(isp[key], expected[key]) << isp["isp"] << " " << key;
    }
    for (const auto& [cls, count] : expected["classes"].items()) {
      EXPECT_EQ(isp["deferrals_by_class"][cls], count) << isp["isp"] << " " << cls;
    }
  }
}

}  // namespace
