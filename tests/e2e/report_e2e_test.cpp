// End-to-end: the real build/sluice binary on logs made by scripts/gen-acct.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sluice-e2e-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Arguments are quoted for /bin/sh by the test itself: they are the test's own fixed strings.
CommandResult run_shell(const std::string& command, const fs::path& dir) {
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string full = command + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

CommandResult sluice(const std::string& args, const fs::path& dir) {
  return run_shell(std::string(SLUICE_BINARY) + " " + args, dir);
}

void generate(const fs::path& dir, const std::string& name, const std::string& flags) {
  const std::string cmd = std::string(SLUICE_SOURCE_DIR) + "/scripts/gen-acct " + flags +
                          " --out " + (dir / name).string() + " --truth " +
                          (dir / (name + ".truth.json")).string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(ReportE2E, FiguresMatchTheGeneratorsTruth) {
  TempDir tmp;
  generate(tmp.path(), "acct.csv",
           "--lines 20000 --seed 7 --malformed 15 --multiline 4 --latin1 3 --remap-at 9000");
  const CommandResult r = sluice("--config /nonexistent-ok report --format json " +
                           (tmp.path() / "acct.csv").string(), tmp.path());
  ASSERT_EQ(r.exit_code, 1) << "a named config that is missing is an error";

  const CommandResult ok = sluice("report --format json " + (tmp.path() / "acct.csv").string(), tmp.path());
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const Json report = Json::parse(ok.out);
  const Json truth = Json::parse(slurp(tmp.path() / "acct.csv.truth.json"));
  for (const char* key : {"delivered", "bounced", "deferred", "deferred_queue", "malformed", "repaired"}) {
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
