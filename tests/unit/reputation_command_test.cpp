#include "adapters/reputation_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr const char* kRep = "/usr/local/bin/rep";
constexpr std::chrono::milliseconds kTimeout{30000};

// Answers every run with one scripted result and records what it was asked to run.
class FakeRunner : public CommandRunner {
 public:
  CommandResult run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout) override {
    argvs.push_back(argv);
    timeouts.push_back(timeout);
    return answer;
  }

  CommandResult answer;
  std::vector<std::vector<std::string>> argvs;
  std::vector<std::chrono::milliseconds> timeouts;
};

class ReputationCommandTest : public ::testing::Test {
 protected:
  // The command printed `out` and exited with `exit_code`.
  Expected<ReputationRead> read(std::string out, int exit_code = 0, std::string err = "") {
    runner_.answer.exit_code = exit_code;
    runner_.answer.out = std::move(out);
    runner_.answer.err = std::move(err);
    return command_.read();
  }

  std::string error_of(std::string out) {
    Expected<ReputationRead> r = read(std::move(out));
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.error().message;
  }

  FakeRunner runner_;
  ReputationCommand command_{{kRep, "--since", "1d"},
                             runner_,
                             kTimeout,
                             {{"bulk-pool", "gmail"}, {"bulk-pool", "yahoo"}, {"warm", "gmail"}}};
};

TEST_F(ReputationCommandTest, RunsTheArgumentVectorWithTheTimeoutAndReadsEachLine) {
  Expected<ReputationRead> r = read(
      "{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"low\"}\n"
      "\n"
      "   \r\n"
      "{\"tier\": \"high\", \"isp\": \"yahoo\", \"pool\": \"bulk-pool\", \"score\": 97}\r\n"
      "{\"pool\": \"warm\", \"isp\": \"gmail\", \"tier\": \"warming\"}");  // no final newline
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(runner_.argvs, ElementsAre(std::vector<std::string>{kRep, "--since", "1d"}));
  EXPECT_THAT(runner_.timeouts, ElementsAre(kTimeout));
  EXPECT_THAT(r->tiers, ElementsAre(ReputationTier{"bulk-pool", "gmail", Tier::low},
                                    ReputationTier{"bulk-pool", "yahoo", Tier::high},
                                    ReputationTier{"warm", "gmail", Tier::warming}));
  EXPECT_THAT(r->warnings, IsEmpty());
}

TEST_F(ReputationCommandTest, AnEmptyAnswerIsNoTiers) {
  Expected<ReputationRead> r = read("");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(r->tiers, IsEmpty());
  r = read("\n\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(r->tiers, IsEmpty());
}

TEST_F(ReputationCommandTest, PairsNotManagedAreIgnoredWithAWarning) {
  Expected<ReputationRead> r = read(
      "{\"pool\": \"bulk-pool\", \"isp\": \"gmx\", \"tier\": \"low\"}\n"
      "{\"pool\": \"other\", \"isp\": \"gmail\", \"tier\": \"low\"}\n"
      "{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"medium\"}\n"
      "{\"pool\": \"new\\nline\", \"isp\": \"gmail\", \"tier\": \"low\"}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(r->tiers, ElementsAre(ReputationTier{"bulk-pool", "gmail", Tier::medium}));
  EXPECT_THAT(r->warnings,
              ElementsAre("reputation command /usr/local/bin/rep: line 1: pool 'bulk-pool' is "
                          "not managed at ISP 'gmx': ignored",
                          "reputation command /usr/local/bin/rep: line 2: pool 'other' is not "
                          "managed: ignored",
                          "reputation command /usr/local/bin/rep: line 4: pool 'new\\nline' is "
                          "not managed: ignored"));
}

TEST_F(ReputationCommandTest, AMalformedLineIsAnErrorNamingTheCommandAndTheLine) {
  const std::string good = "{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"low\"}\n";
  EXPECT_EQ(error_of(good + good.substr(0, 20) + "\n"),
            "reputation command /usr/local/bin/rep: line 2: not a JSON object");
  EXPECT_EQ(error_of("[\"bulk-pool\", \"gmail\", \"low\"]\n"),
            "reputation command /usr/local/bin/rep: line 1: not a JSON object");
  EXPECT_EQ(error_of("bulk-pool gmail low\n"),
            "reputation command /usr/local/bin/rep: line 1: not a JSON object");
  EXPECT_EQ(error_of(good + good + good),
            "reputation command /usr/local/bin/rep: line 2: a second tier for pool 'bulk-pool' "
            "at ISP 'gmail' (the first is on line 1)");
  EXPECT_EQ(error_of("\n\n{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"great\"}\n"),
            "reputation command /usr/local/bin/rep: line 3: tier 'great' is not high, medium, "
            "low or warming");
  EXPECT_EQ(error_of("{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"High\"}\n"),
            "reputation command /usr/local/bin/rep: line 1: tier 'High' is not high, medium, low "
            "or warming");
  EXPECT_EQ(error_of("{\"pool\": \"bulk-pool\", \"tier\": \"low\"}\n"),
            "reputation command /usr/local/bin/rep: line 1: no 'isp'");
  EXPECT_EQ(error_of("{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": 2}\n"),
            "reputation command /usr/local/bin/rep: line 1: 'tier' must be a string, not 2");
  EXPECT_EQ(error_of("{\"pool\": [\"bulk-pool\"], \"isp\": \"gmail\", \"tier\": \"low\"}\n"),
            "reputation command /usr/local/bin/rep: line 1: 'pool' must be a string, not "
            "[\"bulk-pool\"]");
  // Even for a pair not managed: the answer as a whole is not to be trusted.
  EXPECT_EQ(error_of(good + "{\"pool\": \"other\", \"isp\": \"gmail\", \"tier\": \"ok\"}\n"),
            "reputation command /usr/local/bin/rep: line 2: tier 'ok' is not high, medium, low "
            "or warming");
}

TEST_F(ReputationCommandTest, AFailingCommandIsAnError) {
  const std::string good = "{\"pool\": \"bulk-pool\", \"isp\": \"gmail\", \"tier\": \"low\"}\n";
  Expected<ReputationRead> r = read(good, 2, "\nrep: API quota exceeded\nretry later\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "reputation command /usr/local/bin/rep failed (exit 2): rep: API quota exceeded");
  r = read(good, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "reputation command /usr/local/bin/rep failed (exit 1): {\"pool\": \"bulk-pool\", "
            "\"isp\": \"gmail\", \"tier\": \"low\"}");

  runner_.answer = CommandResult{};
  runner_.answer.timed_out = true;
  runner_.answer.exit_code = 137;
  r = command_.read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "reputation command /usr/local/bin/rep hung and was killed after 30 s");

  runner_.answer = CommandResult{};
  runner_.answer.error = "/usr/local/bin/rep: No such file or directory";
  r = command_.read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "reputation command /usr/local/bin/rep could not run: /usr/local/bin/rep: No such "
            "file or directory");
}

}  // namespace
}  // namespace sluice::adapters
