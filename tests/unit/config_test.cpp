#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kSample = R"(
[pmta]
command = "/usr/sbin/pmta"
accounting = ["/var/log/pmta/acct-*.csv"]
fragments = "/etc/pmta/sluice"
[state]
database = "/var/lib/sluice/state.db"
overrides = "/etc/sluice/overrides.toml"
[[pool]]
name = "high-rep-pool"
vmtas = ["gmail-ip-1", "gmail-ip-2"]
tier = "high"
)";

// The raw string starts with a newline, so "[pmta]" is line 2 and "[[pool]]" line 9.
std::string error_of(const std::string& text) {
  const LoadResult result = load_string(text, "sluice.toml");
  EXPECT_FALSE(result.config.has_value()) << text;
  EXPECT_FALSE(result.error.empty());
  return result.error;
}

TEST(Config, SampleIsAcceptedAsIs) {
  const LoadResult result = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;
  EXPECT_EQ(c.source, "sluice.toml");
  EXPECT_EQ(c.pmta_command, "/usr/sbin/pmta");
  EXPECT_THAT(c.accounting, ElementsAre("/var/log/pmta/acct-*.csv"));
  EXPECT_EQ(c.fragments, "/etc/pmta/sluice");
  EXPECT_EQ(c.database, "/var/lib/sluice/state.db");
  EXPECT_EQ(c.overrides, "/etc/sluice/overrides.toml");
  EXPECT_EQ(c.bucket_seconds, 300);
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].name, "high-rep-pool");
  EXPECT_THAT(c.pools[0].vmtas, ElementsAre("gmail-ip-1", "gmail-ip-2"));
  EXPECT_EQ(c.pools[0].tier, "high");
  EXPECT_TRUE(c.pools[0].isps.empty());
  EXPECT_EQ(c.pools[0].line, 9);
  EXPECT_TRUE(c.isps.empty());
  EXPECT_TRUE(result.error.empty());
}

TEST(Config, EmptyFileGivesTheDefaults) {
  const LoadResult result = load_string("", "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->pmta_command, "/usr/sbin/pmta");
  EXPECT_EQ(result.config->database, "/var/lib/sluice/state.db");
  EXPECT_EQ(result.config->bucket_seconds, 300);
  EXPECT_TRUE(result.config->pools.empty());
}

TEST(Config, PoolDefaultsToMediumTierAndReadsItsIsps) {
  const LoadResult result = load_string(R"([[pool]]
name = "bulk"
vmtas = ["bulk-1"]
isps = ["gmail", "outlook"]
[reader]
bucket_seconds = 60
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->pools[0].tier, "medium");
  EXPECT_THAT(result.config->pools[0].isps, ElementsAre("gmail", "outlook"));
  EXPECT_EQ(result.config->bucket_seconds, 60);
}

TEST(Config, IspWithDeferralRules) {
  const LoadResult result = load_string(R"([[isp]]
name = "seznam"
domains = ["seznam.cz", "email.cz"]
mx_suffixes = [".seznam.cz"]
[[isp.deferral]]
pattern = '421 4\.7\.0 .*too many connections'
class = "connection"
[[isp.deferral]]
pattern = "spam score"
class = "reputation"
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  ASSERT_EQ(result.config->isps.size(), 1u);
  const IspTable& isp = result.config->isps[0];
  EXPECT_EQ(isp.name, "seznam");
  EXPECT_EQ(isp.line, 1);
  EXPECT_THAT(isp.domains, ElementsAre("seznam.cz", "email.cz"));
  EXPECT_THAT(isp.mx_suffixes, ElementsAre(".seznam.cz"));
  ASSERT_EQ(isp.deferrals.size(), 2u);
  EXPECT_EQ(isp.deferrals[0].pattern, R"(421 4\.7\.0 .*too many connections)");
  EXPECT_EQ(isp.deferrals[0].deferral_class, "connection");
  EXPECT_EQ(isp.deferrals[0].line, 5);
  EXPECT_EQ(isp.deferrals[1].pattern, "spam score");
  EXPECT_EQ(isp.deferrals[1].deferral_class, "reputation");
  EXPECT_EQ(isp.deferrals[1].line, 8);
}

// --- Errors name the file, the line and the key ---

TEST(ConfigErrors, UnknownKey) {
  const std::string error = error_of(R"([pmta]
command = "/usr/sbin/pmta"
acounting = ["/var/log/pmta/acct-*.csv"]
)");
  EXPECT_EQ(error, "sluice.toml:3: unknown key 'acounting' in [pmta]");
}

TEST(ConfigErrors, UnknownTableAndUnknownPoolKey) {
  EXPECT_EQ(error_of("[pmta]\ncommand = \"/usr/sbin/pmta\"\n[stat]\ndatabase = \"/x.db\"\n"),
            "sluice.toml:3: unknown key 'stat'");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\nvmta = [\"bulk-1\"]\n"),
            "sluice.toml:3: unknown key 'vmta' in [[pool]]");
  EXPECT_EQ(error_of("[[isp]]\nname = \"seznam\"\n[[isp.deferral]]\nregex = \"x\"\n"),
            "sluice.toml:4: unknown key 'regex' in [[isp.deferral]]");
}

TEST(ConfigErrors, WrongType) {
  EXPECT_EQ(error_of("[pmta]\ncommand = 5\n"), "sluice.toml:2: 'command' must be a string");
  EXPECT_EQ(error_of("[pmta]\naccounting = \"/var/log/pmta/acct-*.csv\"\n"),
            "sluice.toml:2: 'accounting' must be an array of strings");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\nvmtas = [\"bulk-1\", 2]\n"),
            "sluice.toml:3: 'vmtas' must hold only strings");
  EXPECT_EQ(error_of("pmta = \"/usr/sbin/pmta\"\n"), "sluice.toml:1: 'pmta' must be a table");
  EXPECT_EQ(error_of("\npool = { name = \"bulk\" }\n"),
            "sluice.toml:2: 'pool' must be an array of tables ([[pool]])");
  EXPECT_THAT(error_of("[reader]\nbucket_seconds = \"300\"\n"),
              StartsWith("sluice.toml:2: 'bucket_seconds' must be an integer"));
  EXPECT_THAT(error_of("[reader]\nbucket_seconds = 7\n"),
              StartsWith("sluice.toml:2: 'bucket_seconds' must be an integer"));
}

TEST(ConfigErrors, DuplicatePool) {
  const std::string error = error_of(R"([[pool]]
name = "bulk"
vmtas = ["bulk-1"]
[[pool]]
name = "bulk"
vmtas = ["bulk-2"]
)");
  EXPECT_EQ(error, "sluice.toml:5: pool 'bulk' is defined twice (first at line 1)");
}

TEST(ConfigErrors, DuplicateIsp) {
  EXPECT_EQ(error_of("[[isp]]\nname = \"seznam\"\n[[isp]]\nname = \"seznam\"\n"),
            "sluice.toml:4: ISP 'seznam' is defined twice");
}

TEST(ConfigErrors, VmtaInTwoPools) {
  const std::string error = error_of(R"([[pool]]
name = "high-rep-pool"
vmtas = ["gmail-ip-1", "gmail-ip-2"]
[[pool]]
name = "warmup-pool"
vmtas = ["gmail-ip-3", "gmail-ip-2"]
)");
  EXPECT_EQ(error,
            "sluice.toml:6: vmta 'gmail-ip-2' is in two pools: 'high-rep-pool' and 'warmup-pool'");
}

// Listing a vmta twice in one pool is an error, but it is not "in two pools".
TEST(ConfigErrors, VmtaListedTwiceInOnePool) {
  const std::string error =
      error_of("[[pool]]\nname = \"bulk\"\nvmtas = [\"bulk-1\", \"bulk-2\", \"bulk-1\"]\n");
  EXPECT_THAT(error, StartsWith("sluice.toml:3: "));
  EXPECT_THAT(error, HasSubstr("'bulk-1'"));
  EXPECT_THAT(error, Not(HasSubstr("two pools"))) << error;
}

TEST(ConfigErrors, PoolNameOutsideTheSafeCharacters) {
  // These names reach PowerMTA's configuration, where each would break or inject syntax.
  for (const char* name : {R"(high\nrep)", "high<rep", "high>rep", "high#rep", "high rep", "..",
                           ".", "", "pool/../etc"}) {
    const std::string error =
        error_of(std::string("[[pool]]\nname = \"") + name + "\"\nvmtas = [\"ip-1\"]\n");
    EXPECT_THAT(error, StartsWith("sluice.toml:2: pool name '")) << name;
    EXPECT_THAT(error, HasSubstr("is not [A-Za-z0-9._-]+")) << name;
  }
}

TEST(ConfigErrors, IspNameOutsideTheSafeCharacters) {
  for (const char* name : {R"(sez\nnam)", "sez<nam", "sez>nam", "sez#nam", "sez nam", ".."}) {
    const std::string error =
        error_of(std::string("\n[[isp]]\nname = \"") + name + "\"\ndomains = [\"seznam.cz\"]\n");
    EXPECT_THAT(error, StartsWith("sluice.toml:3: ISP name '")) << name;
    EXPECT_THAT(error, HasSubstr("is not [A-Za-z0-9._-]+")) << name;
  }
}

TEST(ConfigErrors, VmtaAndPoolIspNamesOutsideTheSafeCharacters) {
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\nvmtas = [\"ip 1\"]\n"),
            "sluice.toml:3: pool 'bulk': vmta name 'ip 1' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\nvmtas = [\"ip-1\"]\nisps = [\"g<mail\"]\n"),
            "sluice.toml:4: pool 'bulk': ISP name 'g<mail' is not [A-Za-z0-9._-]+");
}

TEST(ConfigErrors, PoolWithoutName) {
  EXPECT_EQ(error_of("[[pool]]\nvmtas = [\"ip-1\"]\n"), "sluice.toml:1: pool needs 'name'");
}

// Errors are one-line messages ("FILE:LINE: problem"): a name must not carry its newline into
// the log line that reports it.
TEST(ConfigErrors, MessageStaysOnOneLine) {
  const std::string error = error_of("[[pool]]\nname = \"high\\nrep\"\n");
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST(ConfigErrors, RelativePath) {
  EXPECT_EQ(error_of("[state]\ndatabase = \"state.db\"\n"),
            "sluice.toml:2: 'database' must be an absolute path, not 'state.db'");
  EXPECT_EQ(error_of("[pmta]\ncommand = \"pmta\"\n"),
            "sluice.toml:2: 'command' must be an absolute path, not 'pmta'");
  EXPECT_EQ(error_of("[state]\n\noverrides = \"\"\n"),
            "sluice.toml:3: 'overrides' must be an absolute path, not ''");
  EXPECT_EQ(error_of("[pmta]\naccounting = [\"/var/log/pmta/acct-*.csv\", \"acct-*.csv\"]\n"),
            "sluice.toml:2: 'accounting' must hold absolute paths, not 'acct-*.csv'");
}

TEST(ConfigErrors, BadTier) {
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\nvmtas = [\"ip-1\"]\ntier = \"platinum\"\n"),
            "sluice.toml:4: pool 'bulk': tier 'platinum' is not one of high, medium, low, warming");
}

TEST(ConfigErrors, DeferralRuleNeedsPatternAndKnownClass) {
  EXPECT_THAT(error_of(R"([[isp]]
name = "seznam"
[[isp.deferral]]
pattern = "spam score"
class = "throttle"
)"),
              StartsWith("sluice.toml:5: [[isp.deferral]] 'class' must be one of connection, "
                         "rate, reputation, recipient, config, other"));
  EXPECT_EQ(error_of("[[isp]]\nname = \"seznam\"\n[[isp.deferral]]\nclass = \"rate\"\n"),
            "sluice.toml:3: [[isp.deferral]] needs a 'pattern'");
  EXPECT_EQ(error_of("[[isp]]\nname = \"seznam\"\n[[isp.deferral]]\npattern = \"\"\nclass = "
                     "\"rate\"\n"),
            "sluice.toml:3: [[isp.deferral]] needs a 'pattern'");
  EXPECT_THAT(error_of("[[isp]]\nname = \"seznam\"\n[[isp.deferral]]\npattern = \"spam\"\n"),
              StartsWith("sluice.toml:3: [[isp.deferral]] 'class' must be one of"));
  EXPECT_EQ(error_of("[[isp]]\nname = \"seznam\"\n[[isp.deferral]]\npattern = 5\nclass = "
                     "\"rate\"\n"),
            "sluice.toml:4: 'pattern' must be a string");
}

TEST(ConfigErrors, TomlSyntaxErrorNamesItsLine) {
  const std::string error = error_of(R"([pmta]
command = "/usr/sbin/pmta"
fragments = "/etc/pmta/sluice
[state]
)");
  EXPECT_THAT(error, StartsWith("sluice.toml:3: "));
  EXPECT_GT(error.size(), std::string("sluice.toml:3: ").size());
}

TEST(ConfigErrors, DuplicateKeyIsASyntaxError) {
  EXPECT_THAT(error_of("[pmta]\ncommand = \"/a\"\ncommand = \"/b\"\n"),
              StartsWith("sluice.toml:3: "));
}

TEST(IsValidName, SafeCharactersOnly) {
  EXPECT_TRUE(is_valid_name("high-rep_pool.1"));
  EXPECT_TRUE(is_valid_name("A"));
  EXPECT_TRUE(is_valid_name(std::string(128, 'a')));
  EXPECT_FALSE(is_valid_name(std::string(129, 'a')));
  for (const char* bad : {"", ".", "..", "a b", "a\nb", "a<b", "a>b", "a#b", "a/b", "a;b", "é"}) {
    EXPECT_FALSE(is_valid_name(bad)) << bad;
  }
}

// --- Reading from a file ---

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigFile, ReadsTheSample) {
  const std::string path = write("sluice.toml", kSample);
  const LoadResult result = load_file(path);
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->source, path);
  EXPECT_EQ(result.config->pools.at(0).name, "high-rep-pool");
}

TEST_F(ConfigFile, ErrorsNameThePath) {
  const std::string path = write("sluice.toml", "[state]\ndatabase = \"state.db\"\n");
  EXPECT_EQ(load_file(path).error,
            path + ":2: 'database' must be an absolute path, not 'state.db'");
  const std::string missing = (dir_ / "missing.toml").string();
  const LoadResult result = load_file(missing);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.error, missing + ": cannot be read");
}

}  // namespace
}  // namespace sluice::config
