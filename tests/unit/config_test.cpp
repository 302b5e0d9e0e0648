#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/setup.h"
#include "controller/policy.h"

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

// --- [pmta], [run] and [policy] ---

TEST(Config, NewKeysDefaultWhenAbsent) {
  const LoadResult result = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;
  EXPECT_EQ(c.pmta_config, "/etc/pmta/config");
  EXPECT_EQ(c.pmta_timeout_seconds, 30);
  EXPECT_EQ(c.interval_seconds, 60);
  EXPECT_FALSE(c.dry_run);
  // Only what the file sets: the defaults live in the controller.
  EXPECT_EQ(c.policy, PolicyTable{});
  EXPECT_EQ(c.pools.at(0).policy, PolicyTable{});
}

TEST(Config, PmtaAndRunKeys) {
  const LoadResult result = load_string(R"([pmta]
config = "/opt/pmta/config"
timeout_seconds = 600
[run]
interval_seconds = 10
dry_run = true
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->pmta_config, "/opt/pmta/config");
  EXPECT_EQ(result.config->pmta_timeout_seconds, 600);
  EXPECT_EQ(result.config->interval_seconds, 10);
  EXPECT_TRUE(result.config->dry_run);
}

TEST(Config, EveryPolicyKey) {
  const LoadResult result = load_string(R"([policy]
cut_threshold = 0.04
severe_threshold = 0.2
cut_fraction = 0.25
severe_cut_fraction = 0.6
investigate_threshold = 0.07
floor = 2
window_minutes = 90
min_attempts = 0
min_tq_events = 15
verify_connection_minutes = 45
verify_reputation_minutes = 2880
raise_quiet_days = 14
raise_max_deferral_rate = 0.01
raise_fraction = 1
raise_min_step = 2
raise_max_step = 3
raise_min_daily_attempts = 500
raise_min_busy_days = 0
connect_rate = "100/5m"
retry_failed_change_minutes = 10
[policy.caps.gmail]
high = [8, 12]
warming = [1, 1]
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const PolicyTable& p = result.config->policy;
  EXPECT_EQ(p.cut_threshold, 0.04);
  EXPECT_EQ(p.severe_threshold, 0.2);
  EXPECT_EQ(p.cut_fraction, 0.25);
  EXPECT_EQ(p.severe_cut_fraction, 0.6);
  EXPECT_EQ(p.investigate_threshold, 0.07);
  EXPECT_EQ(p.floor, 2);
  EXPECT_EQ(p.window_minutes, 90);
  EXPECT_EQ(p.min_attempts, 0);
  EXPECT_EQ(p.min_tq_events, 15);
  EXPECT_EQ(p.verify_connection_minutes, 45);
  EXPECT_EQ(p.verify_reputation_minutes, 2880);
  EXPECT_EQ(p.raise_quiet_days, 14);
  EXPECT_EQ(p.raise_max_deferral_rate, 0.01);
  EXPECT_EQ(p.raise_fraction, 1.0);  // an integer where a float is meant
  EXPECT_EQ(p.raise_min_step, 2);
  EXPECT_EQ(p.raise_max_step, 3);
  EXPECT_EQ(p.raise_min_daily_attempts, 500);
  EXPECT_EQ(p.raise_min_busy_days, 0);
  EXPECT_EQ(p.connect_rate, "100/5m");
  EXPECT_EQ(p.retry_failed_change_minutes, 10);
  ASSERT_EQ(p.caps.size(), 1u);
  const IspCaps& gmail = p.caps.at("gmail");
  EXPECT_EQ(gmail.high, (CapRange{8, 12}));
  EXPECT_EQ(gmail.medium, std::nullopt);
  EXPECT_EQ(gmail.low, std::nullopt);
  EXPECT_EQ(gmail.warming, (CapRange{1, 1}));
}

TEST(Config, CapsInlineAndDottedForms) {
  const LoadResult result = load_string(R"([policy]
caps = { gmail = { high = [6, 10], medium = [3, 5] } }
[[pool]]
name = "bulk"
[pool.policy]
caps.outlook.low = [1, 2]
caps.outlook.warming = [1, 2]
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const IspCaps& gmail = result.config->policy.caps.at("gmail");
  EXPECT_EQ(gmail.high, (CapRange{6, 10}));
  EXPECT_EQ(gmail.medium, (CapRange{3, 5}));
  const IspCaps& outlook = result.config->pools.at(0).policy.caps.at("outlook");
  EXPECT_EQ(outlook.low, (CapRange{1, 2}));
  EXPECT_EQ(outlook.warming, (CapRange{1, 2}));
}

TEST(Config, PoolPolicyOverridesOnlyWhatItSets) {
  const LoadResult result = load_string(R"([policy]
cut_fraction = 0.4
floor = 2
connect_rate = "10/m"
[policy.caps.gmail]
high = [6, 10]
medium = [3, 5]
[[pool]]
name = "warm"
tier = "warming"
[pool.policy]
floor = 1
raise_max_step = 1
[pool.policy.caps.gmail]
medium = [2, 4]
[pool.policy.caps.yahoo]
warming = [1, 2]
[[pool]]
name = "bulk"
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;
  ASSERT_EQ(c.pools.size(), 2u);
  // The pool's table holds its own keys only.
  EXPECT_EQ(c.pools[0].policy.floor, 1);
  EXPECT_EQ(c.pools[0].policy.cut_fraction, std::nullopt);
  EXPECT_EQ(c.pools[1].policy, PolicyTable{});

  const PolicyTable warm = overlay(c.policy, c.pools[0].policy);
  EXPECT_EQ(warm.cut_fraction, 0.4);
  EXPECT_EQ(warm.floor, 1);
  EXPECT_EQ(warm.raise_max_step, 1);
  EXPECT_EQ(warm.connect_rate, "10/m");
  EXPECT_EQ(warm.cut_threshold, std::nullopt);  // set nowhere: the controller's default
  EXPECT_EQ(warm.caps.at("gmail").high, (CapRange{6, 10}));
  EXPECT_EQ(warm.caps.at("gmail").medium, (CapRange{2, 4}));
  EXPECT_EQ(warm.caps.at("yahoo").warming, (CapRange{1, 2}));
  EXPECT_EQ(warm.caps.at("yahoo").high, std::nullopt);

  EXPECT_EQ(overlay(c.policy, c.pools[1].policy), c.policy);
  EXPECT_EQ(overlay(PolicyTable{}, c.policy), c.policy);
}

TEST(Config, ConnectRateGrammar) {
  for (const char* rate : {"1/s", "10/m", "100/5m", "50/h", "1000/d", "3/30s", "7/1h"}) {
    const LoadResult result =
        load_string(std::string("[policy]\nconnect_rate = \"") + rate + "\"\n", "sluice.toml");
    ASSERT_TRUE(result.config.has_value()) << rate << ": " << result.error;
    EXPECT_EQ(result.config->policy.connect_rate, rate);
  }
  for (const char* rate : {"", "1", "/s", "1/", "0/s", "1/0m", "1/w", "1/ s", "1 /s", "-1/s",
                           "1.5/s", "1/s ", "s/1", "1//s", "1/5", "10000000000/s", "unlimited"}) {
    EXPECT_EQ(error_of(std::string("[policy]\nconnect_rate = \"") + rate + "\"\n"),
              std::string("sluice.toml:2: [policy] 'connect_rate' must be a rate "
                          "N/[M]{d|h|m|s} such as 1/s, 10/m or 100/5m, not '") +
                  rate + "'")
        << rate;
  }
}

TEST(Config, RangeBoundsAreAccepted) {
  const LoadResult result = load_string(R"([pmta]
timeout_seconds = 1
[run]
interval_seconds = 86400
[policy]
floor = 1000
window_minutes = 5
verify_connection_minutes = 1440
verify_reputation_minutes = 5
raise_quiet_days = 90
raise_min_step = 100
raise_max_step = 100
raise_min_busy_days = 7
retry_failed_change_minutes = 1440
[policy.caps.x]
high = [1000, 1000]
low = [1, 1]
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->policy.raise_max_step, 100);
}

// The example documents every key with its default: it loads, and its commented [policy], once
// uncommented, loads too and holds the documented defaults.
TEST(Config, ExampleFileLoadsAndDocumentsTheDefaults) {
  const std::string path = std::string(SLUICE_SOURCE_DIR) + "/examples/sluice.toml";
  // Its text, not the file: a checkout made under umask 002 leaves the file group-writable.
  std::ostringstream text;
  text << std::ifstream(path).rdbuf();
  const LoadResult example = load_string(text.str(), path);
  ASSERT_TRUE(example.config.has_value()) << example.error;
  EXPECT_EQ(example.config->pmta_config, "/etc/pmta/config");
  EXPECT_EQ(example.config->pmta_timeout_seconds, 30);
  EXPECT_EQ(example.config->interval_seconds, 60);
  EXPECT_FALSE(example.config->dry_run);
  EXPECT_EQ(example.config->policy, PolicyTable{});
  const auto warm = std::find_if(example.config->pools.begin(), example.config->pools.end(),
                                 [](const PoolTable& p) { return p.policy != PolicyTable{}; });
  ASSERT_NE(warm, example.config->pools.end());
  EXPECT_EQ(warm->name, "warmup-pool");

  std::ifstream in(path);
  std::string line;
  std::string policy;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "# [policy]") inside = true;
    if (!inside) continue;
    if (line.empty()) break;
    policy += (line == "#" ? "" : line.substr(2)) + "\n";
  }
  const LoadResult uncommented = load_string(policy, "policy");
  ASSERT_TRUE(uncommented.config.has_value()) << uncommented.error << "\n" << policy;
  const PolicyTable& p = uncommented.config->policy;
  EXPECT_EQ(p.cut_threshold, 0.05);
  EXPECT_EQ(p.severe_threshold, 0.15);
  EXPECT_EQ(p.cut_fraction, 0.30);
  EXPECT_EQ(p.severe_cut_fraction, 0.50);
  EXPECT_EQ(p.investigate_threshold, 0.05);
  EXPECT_EQ(p.floor, 1);
  EXPECT_EQ(p.window_minutes, 60);
  EXPECT_EQ(p.min_attempts, 100);
  EXPECT_EQ(p.min_tq_events, 20);
  EXPECT_EQ(p.verify_connection_minutes, 30);
  EXPECT_EQ(p.verify_reputation_minutes, 120);
  EXPECT_EQ(p.raise_quiet_days, 7);
  EXPECT_EQ(p.raise_max_deferral_rate, 0.02);
  EXPECT_EQ(p.raise_fraction, 0.15);
  EXPECT_EQ(p.raise_min_step, 1);
  EXPECT_EQ(p.raise_max_step, 2);
  EXPECT_EQ(p.raise_min_daily_attempts, 100);
  EXPECT_EQ(p.raise_min_busy_days, 4);
  EXPECT_EQ(p.connect_rate, "1/s");
  EXPECT_EQ(p.retry_failed_change_minutes, 5);
  ASSERT_TRUE(p.caps.contains("gmail"));
  EXPECT_EQ(p.caps.at("gmail"),
            (IspCaps{CapRange{6, 10}, CapRange{3, 5}, CapRange{1, 2}, CapRange{1, 3}}));
  // Against the controller's own defaults, so that the example cannot drift from them.
  const PolicyParams d = default_policy();
  EXPECT_EQ(p.no_effect_fall, d.no_effect_fall);
  EXPECT_EQ(p.trigger_events, static_cast<std::int64_t>(d.trigger_events));
  EXPECT_EQ(p.trigger_minutes.value_or(0) * 60, d.trigger_seconds);
  EXPECT_EQ(p.recovery_connection_hours.value_or(0) * 3600, d.recovery_connection_seconds);
  EXPECT_EQ(p.recovery_slow_hours.value_or(0) * 3600, d.recovery_slow_seconds);
  EXPECT_EQ(p.probe_max_hours.value_or(0) * 3600, d.probe_max_seconds);
  EXPECT_EQ(p.concentration_factor, d.concentration_factor);
  EXPECT_EQ(p.vmta_recovery_hours.value_or(0) * 3600, d.vmta_recovery_seconds);
  EXPECT_EQ(p.warmup_stage_days.value_or(0) * 86400, d.warmup_stage_seconds);
  EXPECT_EQ(p.warming_retry_after_minutes, d.warming_retry_after_minutes);
  EXPECT_EQ(p.recovering_retry_after_minutes, d.recovering_retry_after_minutes);
  ASSERT_EQ(p.warmup_rates.size(), 1u);
  ASSERT_TRUE(p.warmup_rates.contains("generic"));
  EXPECT_EQ(
      std::vector<int>(p.warmup_rates.at("generic").begin(), p.warmup_rates.at("generic").end()),
      d.warmup_rates.at("generic"));
}

// --- Errors in [pmta], [run] and [policy] ---

TEST(ConfigErrors, PmtaAndRunValues) {
  EXPECT_EQ(error_of("[pmta]\nconfig = \"pmta/config\"\n"),
            "sluice.toml:2: 'config' must be an absolute path, not 'pmta/config'");
  EXPECT_EQ(error_of("[pmta]\ntimeout_seconds = 0\n"),
            "sluice.toml:2: [pmta] 'timeout_seconds' must be an integer from 1 to 600, not 0");
  EXPECT_EQ(error_of("[pmta]\n\ntimeout_seconds = 601\n"),
            "sluice.toml:3: [pmta] 'timeout_seconds' must be an integer from 1 to 600, not 601");
  EXPECT_EQ(error_of("[pmta]\ntimeout_seconds = \"30s\"\n"),
            "sluice.toml:2: [pmta] 'timeout_seconds' must be an integer from 1 to 600, not '30s'");
  EXPECT_EQ(error_of("[run]\ninterval_seconds = 9\n"),
            "sluice.toml:2: [run] 'interval_seconds' must be an integer from 10 to 86400, not 9");
  EXPECT_EQ(error_of("[run]\ninterval_seconds = 60.0\n"),
            "sluice.toml:2: [run] 'interval_seconds' must be an integer from 10 to 86400, not "
            "60.0");
  EXPECT_EQ(error_of("[run]\ndry_run = \"yes\"\n"),
            "sluice.toml:2: [run] 'dry_run' must be true or false, not 'yes'");
  EXPECT_EQ(error_of("[run]\ndry_run = 0\n"),
            "sluice.toml:2: [run] 'dry_run' must be true or false, not 0");
  EXPECT_EQ(error_of("[run]\ninterval = 60\n"), "sluice.toml:2: unknown key 'interval' in [run]");
  EXPECT_EQ(error_of("run = 60\n"), "sluice.toml:1: 'run' must be a table");
}

TEST(ConfigErrors, PolicyFractionOutOfRange) {
  EXPECT_EQ(error_of(R"(
[policy]
cut_threshold = 0.05

cut_fraction = 1.5
)"),
            "sluice.toml:5: [policy] 'cut_fraction' must be a number between 0 and 1, not 1.5");
  for (const char* key :
       {"cut_threshold", "severe_threshold", "cut_fraction", "severe_cut_fraction",
        "investigate_threshold", "raise_max_deferral_rate"}) {
    for (const char* value : {"0", "1", "1.0", "-0.1", "nan", "inf", "\"0.3\"", "true", "[0.3]"}) {
      const std::string error = error_of(std::string("[policy]\n") + key + " = " + value + "\n");
      EXPECT_THAT(error, StartsWith(std::string("sluice.toml:2: [policy] '") + key +
                                    "' must be a number between 0 and 1, not "))
          << key << " = " << value;
    }
  }
  EXPECT_EQ(error_of("[policy]\nraise_fraction = 0\n"),
            "sluice.toml:2: [policy] 'raise_fraction' must be a number above 0 and at most 1, "
            "not 0");
  EXPECT_EQ(error_of("[policy]\nraise_fraction = 1.01\n"),
            "sluice.toml:2: [policy] 'raise_fraction' must be a number above 0 and at most 1, "
            "not 1.01");
  EXPECT_EQ(error_of("[policy]\ncut_fraction = \"0.3\"\n"),
            "sluice.toml:2: [policy] 'cut_fraction' must be a number between 0 and 1, not '0.3'");
  EXPECT_EQ(error_of("[policy]\ncut_fraction = [0.3]\n"),
            "sluice.toml:2: [policy] 'cut_fraction' must be a number between 0 and 1, not [0.3]");
}

TEST(ConfigErrors, PolicyIntegerOutOfRangeOrNotAnInteger) {
  struct Case {
    const char* key;
    const char* bad;
    const char* range;
  };
  for (const Case& c : {Case{"floor", "0", "from 1 to 1000"},
                        Case{"floor", "1001", "from 1 to 1000"},
                        Case{"floor", "1.0", "from 1 to 1000"},
                        Case{"window_minutes", "4", "from 5 to 1440"},
                        Case{"window_minutes", "1441", "from 5 to 1440"},
                        Case{"min_attempts", "-1", "of at least 0"},
                        Case{"min_tq_events", "-1", "of at least 0"},
                        Case{"min_tq_events", "\"20\"", "of at least 0"},
                        Case{"verify_connection_minutes", "4", "from 5 to 1440"},
                        Case{"verify_connection_minutes", "1441", "from 5 to 1440"},
                        Case{"verify_reputation_minutes", "4", "from 5 to 2880"},
                        Case{"verify_reputation_minutes", "2881", "from 5 to 2880"},
                        Case{"raise_quiet_days", "0", "from 1 to 90"},
                        Case{"raise_quiet_days", "91", "from 1 to 90"},
                        Case{"raise_min_step", "0", "from 1 to 100"},
                        Case{"raise_min_step", "101", "from 1 to 100"},
                        Case{"raise_max_step", "0", "from 1 to 1000"},
                        Case{"raise_max_step", "1001", "from 1 to 1000"},
                        Case{"raise_min_daily_attempts", "-5", "of at least 0"},
                        Case{"raise_min_busy_days", "-1", "from 0 to 7"},
                        Case{"raise_min_busy_days", "8", "from 0 to 7"},
                        Case{"retry_failed_change_minutes", "0", "from 1 to 1440"},
                        Case{"retry_failed_change_minutes", "1441", "from 1 to 1440"}}) {
    const std::string shown_value = std::string(c.bad) == "\"20\"" ? "'20'" : c.bad;
    EXPECT_EQ(error_of(std::string("[policy]\n") + c.key + " = " + c.bad + "\n"),
              std::string("sluice.toml:2: [policy] '") + c.key + "' must be an integer " + c.range +
                  ", not " + shown_value)
        << c.key << " = " << c.bad;
  }
}

TEST(ConfigErrors, PolicyUnknownKeys) {
  EXPECT_EQ(error_of("[policy]\ncut_threshold = 0.05\ncut_percent = 30\n"),
            "sluice.toml:3: unknown key 'cut_percent' in [policy]");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\n[pool.policy]\nflor = 2\n"),
            "sluice.toml:4: pool 'bulk': unknown key 'flor' in [pool.policy]");
  EXPECT_EQ(error_of("[policy.caps.gmail]\nhigh = [6, 10]\nplatinum = [1, 2]\n"),
            "sluice.toml:3: unknown key 'platinum' in [policy.caps.gmail]");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\n[pool.policy.caps.gmail]\nhi = [1, 2]\n"),
            "sluice.toml:4: pool 'bulk': unknown key 'hi' in [pool.policy.caps.gmail]");
}

TEST(ConfigErrors, PolicyWrongTableTypes) {
  EXPECT_EQ(error_of("policy = 5\n"), "sluice.toml:1: 'policy' must be a table");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\npolicy = \"strict\"\n"),
            "sluice.toml:3: 'policy' must be a table");
  EXPECT_EQ(error_of("[policy]\ncaps = [6, 10]\n"),
            "sluice.toml:2: [policy] 'caps' must be a table of ISPs, not [6, 10]");
  EXPECT_EQ(error_of("[policy]\ncaps = { gmail = [6, 10] }\n"),
            "sluice.toml:2: [policy.caps] 'gmail' must be a table of tiers, not [6, 10]");
}

TEST(ConfigErrors, PoolPolicyErrorsNameThePool) {
  EXPECT_EQ(error_of(R"([[pool]]
name = "bulk"
vmtas = ["bulk-1"]
[pool.policy]
floor = 0
)"),
            "sluice.toml:5: pool 'bulk': [pool.policy] 'floor' must be an integer from 1 to "
            "1000, not 0");
  // The second pool's table is its own: the error names it, at its line.
  EXPECT_EQ(error_of(R"([[pool]]
name = "a"
[pool.policy]
cut_fraction = 0.4
[[pool]]
name = "b"
[pool.policy]
cut_fraction = 0
)"),
            "sluice.toml:8: pool 'b': [pool.policy] 'cut_fraction' must be a number between 0 "
            "and 1, not 0");
  EXPECT_EQ(error_of("[[pool]]\nname = \"a\"\n[pool.policy.caps.gmail]\nhigh = [0, 3]\n"),
            "sluice.toml:4: pool 'a': [pool.policy.caps.gmail] 'high' must be [start, cap] with "
            "1 <= start <= cap <= 1000, not [0, 3]");
}

TEST(ConfigErrors, SevereThresholdMustBeAboveCutThreshold) {
  EXPECT_EQ(error_of("[policy]\ncut_threshold = 0.1\nsevere_threshold = 0.1\n"),
            "sluice.toml:3: [policy] 'severe_threshold' must be above 'cut_threshold' (0.1), "
            "not 0.1");
  // One side set: checked against the other side's default (cut 0.05, severe 0.15).
  EXPECT_EQ(error_of("[policy]\ncut_threshold = 0.2\n"),
            "sluice.toml:2: [policy] 'cut_threshold' must be below 'severe_threshold' (0.15), "
            "not 0.2");
  EXPECT_EQ(error_of("[policy]\nsevere_threshold = 0.04\n"),
            "sluice.toml:2: [policy] 'severe_threshold' must be above 'cut_threshold' (0.05), "
            "not 0.04");
  // A pool is checked on top of [policy]; the key it sets is the one named.
  EXPECT_EQ(error_of(R"([policy]
severe_threshold = 0.3
cut_threshold = 0.2
[[pool]]
name = "bulk"
[pool.policy]
severe_threshold = 0.15
)"),
            "sluice.toml:7: pool 'bulk': [pool.policy] 'severe_threshold' must be above "
            "'cut_threshold' (0.2), not 0.15");
  const LoadResult fine = load_string(R"([policy]
severe_threshold = 0.3
cut_threshold = 0.2
[[pool]]
name = "bulk"
[pool.policy]
cut_threshold = 0.25
)",
                                      "sluice.toml");
  EXPECT_TRUE(fine.config.has_value()) << fine.error;
}

TEST(ConfigErrors, RaiseMaxStepMustNotBeBelowRaiseMinStep) {
  EXPECT_EQ(error_of("[policy]\nraise_min_step = 3\nraise_max_step = 2\n"),
            "sluice.toml:3: [policy] 'raise_max_step' must be at least 'raise_min_step' (3), "
            "not 2");
  EXPECT_EQ(error_of("[policy]\nraise_min_step = 3\n"),
            "sluice.toml:2: [policy] 'raise_min_step' must be at most 'raise_max_step' (2), "
            "not 3");
  EXPECT_EQ(error_of(R"([policy]
raise_max_step = 5
[[pool]]
name = "bulk"
[pool.policy]
raise_min_step = 6
)"),
            "sluice.toml:6: pool 'bulk': [pool.policy] 'raise_min_step' must be at most "
            "'raise_max_step' (5), not 6");
  const LoadResult equal =
      load_string("[policy]\nraise_min_step = 2\nraise_max_step = 2\n", "sluice.toml");
  EXPECT_TRUE(equal.config.has_value()) << equal.error;
}

TEST(ConfigErrors, CapsValidation) {
  const std::string where = "sluice.toml:3: [policy.caps.gmail] 'high' must be ";
  const std::string range = "[start, cap] with 1 <= start <= cap <= 1000, not ";
  const std::string shape = "[start, cap], two integers, not ";
  const auto caps_error = [](const std::string& value) {
    return error_of("[policy]\n[policy.caps.gmail]\nhigh = " + value + "\n");
  };
  EXPECT_EQ(caps_error("[10, 6]"), where + range + "[10, 6]");
  EXPECT_EQ(caps_error("[0, 6]"), where + range + "[0, 6]");
  EXPECT_EQ(caps_error("[6, 1001]"), where + range + "[6, 1001]");
  EXPECT_EQ(caps_error("[-1, -1]"), where + range + "[-1, -1]");
  EXPECT_EQ(caps_error("[6]"), where + shape + "[6]");
  EXPECT_EQ(caps_error("[6, 10, 12]"), where + shape + "[6, 10, 12]");
  EXPECT_EQ(caps_error("[6.0, 10]"), where + shape + "[6.0, 10]");
  EXPECT_EQ(caps_error("[\"6\", \"10\"]"), where + shape + "['6', '10']");
  EXPECT_EQ(caps_error("10"), where + shape + "10");
  EXPECT_EQ(caps_error("{ start = 6, cap = 10 }"), where + shape + "a table");
  EXPECT_EQ(caps_error("[]"), where + shape + "[]");
}

TEST(ConfigErrors, CapsIspNameOutsideTheSafeCharacters) {
  EXPECT_EQ(error_of("[policy.caps.\"g mail\"]\nhigh = [6, 10]\n"),
            "sluice.toml:1: [policy.caps] ISP name 'g mail' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of("[policy]\ncaps = { \"g<mail\" = { high = [6, 10] } }\n"),
            "sluice.toml:2: [policy.caps] ISP name 'g<mail' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of("[[pool]]\nname = \"a\"\n[pool.policy.caps.\"x\\ny\"]\nlow = [1, 1]\n"),
            "sluice.toml:3: pool 'a': [pool.policy.caps] ISP name 'x\\ny' is not "
            "[A-Za-z0-9._-]+");
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
  // Mode 0644 whatever the umask: a file group or others may write is refused.
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                  std::filesystem::perms::group_read | std::filesystem::perms::others_read);
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

// The rule itself is tested in file_safety_test.cpp; here, that loading applies it.
TEST_F(ConfigFile, RefusesAFileGroupOrOthersMayWrite) {
  const std::string path = write("sluice.toml", kSample);
  std::filesystem::permissions(path, std::filesystem::perms::group_write,
                               std::filesystem::perm_options::add);
  const LoadResult result = load_file(path);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.error, path +
                              ": writable by group or others (mode 0664); sluice refuses it "
                              "because it steers PowerMTA's configuration: chmod go-w " +
                              path);
}

// --- [reputation] ---

TEST(Config, ReputationIsOffUnlessConfigured) {
  const LoadResult result = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_FALSE(result.config->reputation.has_value());
}

TEST(Config, ReputationCommandAndInterval) {
  LoadResult result = load_string(R"([reputation]
command = ["/usr/local/bin/rep", "--format", "jsonl"]
)",
                                  "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  ASSERT_TRUE(result.config->reputation.has_value());
  EXPECT_THAT(result.config->reputation->command,
              ElementsAre("/usr/local/bin/rep", "--format", "jsonl"));
  EXPECT_EQ(result.config->reputation->interval_minutes, 60);

  for (const std::int64_t minutes : {1, 10080}) {
    result = load_string(
        "[reputation]\ncommand = [\"/rep\"]\ninterval_minutes = " + std::to_string(minutes) + "\n",
        "sluice.toml");
    ASSERT_TRUE(result.config.has_value()) << result.error;
    EXPECT_THAT(result.config->reputation->command, ElementsAre("/rep"));
    EXPECT_EQ(result.config->reputation->interval_minutes, minutes);
  }
}

TEST(Config, ExampleReputationTableLoadsUncommentedWithTheDefaultInterval) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/examples/sluice.toml");
  std::string line;
  std::string table;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "# [reputation]") inside = true;
    if (!inside) continue;
    if (line.empty()) break;
    table += line.substr(2) + "\n";
  }
  const LoadResult uncommented = load_string(table, "reputation");
  ASSERT_TRUE(uncommented.config.has_value()) << uncommented.error << "\n" << table;
  ASSERT_TRUE(uncommented.config->reputation.has_value()) << table;
  EXPECT_EQ(uncommented.config->reputation->interval_minutes, 60);
}

TEST(ConfigErrors, ReputationValues) {
  EXPECT_EQ(error_of("[reputation]\ninterval_minutes = 5\n"),
            "sluice.toml:1: [reputation] needs 'command'");
  EXPECT_EQ(error_of("[reputation]\ncommand = []\n"),
            "sluice.toml:2: [reputation] 'command' must be an array of strings, the program's "
            "absolute path first, not []");
  EXPECT_EQ(error_of("[reputation]\ncommand = \"/usr/local/bin/rep --all\"\n"),
            "sluice.toml:2: [reputation] 'command' must be an array of strings, the program's "
            "absolute path first, not '/usr/local/bin/rep --all'");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"rep\", \"--all\"]\n"),
            "sluice.toml:2: [reputation] 'command' must start with an absolute path, not 'rep'");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"\"]\n"),
            "sluice.toml:2: [reputation] 'command' must start with an absolute path, not ''");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\n  \"/rep\",\n  3,\n]\n"),
            "sluice.toml:4: [reputation] 'command' must hold only strings without NUL, not 3");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"/rep\", \"a\\u0000b\"]\n"),
            "sluice.toml:2: [reputation] 'command' must hold only strings without NUL, not "
            "'a\\x00b'");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"/rep\"]\ninterval_minutes = 0\n"),
            "sluice.toml:3: [reputation] 'interval_minutes' must be an integer from 1 to 10080, "
            "not 0");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"/rep\"]\ninterval_minutes = 10081\n"),
            "sluice.toml:3: [reputation] 'interval_minutes' must be an integer from 1 to 10080, "
            "not 10081");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"/rep\"]\ninterval_minutes = \"1h\"\n"),
            "sluice.toml:3: [reputation] 'interval_minutes' must be an integer from 1 to 10080, "
            "not '1h'");
  EXPECT_EQ(error_of("[reputation]\ncommand = [\"/rep\"]\ntimeout_seconds = 5\n"),
            "sluice.toml:3: unknown key 'timeout_seconds' in [reputation]");
  EXPECT_EQ(error_of("reputation = \"/rep\"\n"), "sluice.toml:1: 'reputation' must be a table");
}

// --- Guard rails: max_changes_per_day, min_reload_interval_minutes, raise_hold_share ---

TEST(Config, GuardRailKeysReachThePolicy) {
  const LoadResult result = load_string(R"([policy]
max_changes_per_day = 6
min_reload_interval_minutes = 10
raise_hold_share = 0.75
[[pool]]
name = "warm"
[pool.policy]
max_changes_per_day = 2
[[pool]]
name = "bulk"
)",
                                        "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;
  EXPECT_EQ(c.policy.max_changes_per_day, 6);
  EXPECT_EQ(c.policy.min_reload_interval_minutes, 10);
  EXPECT_EQ(c.policy.raise_hold_share, 0.75);
  EXPECT_EQ(c.pools[0].policy.max_changes_per_day, 2);
  EXPECT_EQ(c.pools[0].policy.raise_hold_share, std::nullopt);

  const PolicyParams warm = cli::policy_for(c, c.pools[0]);
  EXPECT_EQ(warm.max_changes_per_day, 2);
  EXPECT_EQ(warm.min_reload_interval_seconds, 600);
  EXPECT_EQ(warm.raise_hold_share, 0.75);
  EXPECT_EQ(cli::policy_for(c, c.pools[1]).max_changes_per_day, 6);

  const Config defaults = *load_string("[[pool]]\nname = \"bulk\"\n", "sluice.toml").config;
  const PolicyParams p = cli::policy_for(defaults, defaults.pools[0]);
  EXPECT_EQ(p.max_changes_per_day, 4);
  EXPECT_EQ(p.min_reload_interval_seconds, 300);
  EXPECT_EQ(p.raise_hold_share, 0.5);
}

TEST(Config, GuardRailKeysAcceptTheirBounds) {
  for (const char* text : {"max_changes_per_day = 1\nmin_reload_interval_minutes = 1\n"
                           "raise_hold_share = 1\n",
                           "max_changes_per_day = 100\nmin_reload_interval_minutes = 1440\n"
                           "raise_hold_share = 0.01\n"}) {
    const LoadResult result = load_string(std::string("[policy]\n") + text, "sluice.toml");
    EXPECT_TRUE(result.config.has_value()) << result.error;
  }
}

TEST(ConfigErrors, GuardRailKeysOutOfRange) {
  struct Case {
    const char* key;
    const char* bad;
    const char* must;
  };
  for (const Case& c : {Case{"max_changes_per_day", "0", "an integer from 1 to 100"},
                        Case{"max_changes_per_day", "101", "an integer from 1 to 100"},
                        Case{"max_changes_per_day", "4.0", "an integer from 1 to 100"},
                        Case{"min_reload_interval_minutes", "0", "an integer from 1 to 1440"},
                        Case{"min_reload_interval_minutes", "1441", "an integer from 1 to 1440"},
                        Case{"raise_hold_share", "0", "a number above 0 and at most 1"},
                        Case{"raise_hold_share", "1.01", "a number above 0 and at most 1"},
                        Case{"raise_hold_share", "-0.5", "a number above 0 and at most 1"}}) {
    EXPECT_EQ(
        error_of(std::string("[policy]\n") + c.key + " = " + c.bad + "\n"),
        std::string("sluice.toml:2: [policy] '") + c.key + "' must be " + c.must + ", not " + c.bad)
        << c.key << " = " << c.bad;
  }
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\n[pool.policy]\nraise_hold_share = 2\n"),
            "sluice.toml:4: pool 'bulk': [pool.policy] 'raise_hold_share' must be a number above 0 "
            "and at most 1, not 2");
}

TEST(Config, ExampleFileDocumentsTheGuardRailDefaults) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/examples/sluice.toml");
  std::string line;
  std::string policy;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "# [policy]") inside = true;
    if (!inside) continue;
    if (line.empty()) break;
    policy += (line == "#" ? "" : line.substr(2)) + "\n";
  }
  const LoadResult uncommented = load_string(policy, "policy");
  ASSERT_TRUE(uncommented.config.has_value()) << uncommented.error << "\n" << policy;
  const PolicyTable& p = uncommented.config->policy;
  EXPECT_EQ(p.max_changes_per_day, 4);
  EXPECT_EQ(p.min_reload_interval_minutes, 5);
  EXPECT_EQ(p.raise_hold_share, 0.5);
}

// --- Recovery, persistence, per-IP diagnosis and warm-up ---

constexpr const char* kRecoveryKeys = R"([policy]
no_effect_fall = 0.35
recovery_connection_hours = 3
recovery_slow_hours = 12
probe_max_hours = 48
trigger_events = 3
trigger_minutes = 30
concentration_factor = 2.5
vmta_recovery_hours = 8
warmup_stage_days = 3
warming_retry_after_minutes = 0
recovering_retry_after_minutes = 15
[policy.warmup_rates]
generic = [20, 40, 80]
gmail = [50, 100, 200, 400, 800, 1600]
[[pool]]
name = "warm"
[pool.policy]
no_effect_fall = 0.5
recovery_connection_hours = 4
recovery_slow_hours = 36
probe_max_hours = 72
trigger_events = 5
trigger_minutes = 120
concentration_factor = 4
vmta_recovery_hours = 12
warmup_stage_days = 14
warming_retry_after_minutes = 45
recovering_retry_after_minutes = 0
[pool.policy.warmup_rates]
gmail = [10, 20]
yahoo = [100]
[[pool]]
name = "bulk"
)";

TEST(Config, RecoveryAndWarmupKeysAreRead) {
  const LoadResult result = load_string(kRecoveryKeys, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const PolicyTable& p = result.config->policy;
  EXPECT_EQ(p.no_effect_fall, 0.35);
  EXPECT_EQ(p.recovery_connection_hours, 3);
  EXPECT_EQ(p.recovery_slow_hours, 12);
  EXPECT_EQ(p.probe_max_hours, 48);
  EXPECT_EQ(p.trigger_events, 3);
  EXPECT_EQ(p.trigger_minutes, 30);
  EXPECT_EQ(p.concentration_factor, 2.5);
  EXPECT_EQ(p.vmta_recovery_hours, 8);
  EXPECT_EQ(p.warmup_stage_days, 3);
  EXPECT_EQ(p.warming_retry_after_minutes, 0);  // 0 is a value: no retry-after written
  EXPECT_EQ(p.recovering_retry_after_minutes, 15);
  ASSERT_EQ(p.warmup_rates.size(), 2u);
  EXPECT_THAT(p.warmup_rates.at("generic"), ElementsAre(20, 40, 80));
  EXPECT_THAT(p.warmup_rates.at("gmail"), ElementsAre(50, 100, 200, 400, 800, 1600));
  // The pool's table holds its own keys only.
  EXPECT_THAT(result.config->pools[0].policy.warmup_rates.at("gmail"), ElementsAre(10, 20));
  EXPECT_EQ(result.config->pools[0].policy.cut_fraction, std::nullopt);
  EXPECT_EQ(result.config->pools[1].policy, PolicyTable{});
}

TEST(Config, RecoveryAndWarmupKeysOverlayPerKeyAndWarmupRatesPerIsp) {
  const LoadResult result = load_string(kRecoveryKeys, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;
  const PolicyTable warm = overlay(c.policy, c.pools[0].policy);
  EXPECT_EQ(warm.no_effect_fall, 0.5);
  EXPECT_EQ(warm.recovery_connection_hours, 4);
  EXPECT_EQ(warm.recovery_slow_hours, 36);
  EXPECT_EQ(warm.probe_max_hours, 72);
  EXPECT_EQ(warm.trigger_events, 5);
  EXPECT_EQ(warm.trigger_minutes, 120);
  EXPECT_EQ(warm.concentration_factor, 4.0);
  EXPECT_EQ(warm.vmta_recovery_hours, 12);
  EXPECT_EQ(warm.warmup_stage_days, 14);
  EXPECT_EQ(warm.warming_retry_after_minutes, 45);
  EXPECT_EQ(warm.recovering_retry_after_minutes, 0);
  // The pool's list replaces [policy]'s for its ISP; the other ISPs' lists stay.
  ASSERT_EQ(warm.warmup_rates.size(), 3u);
  EXPECT_THAT(warm.warmup_rates.at("generic"), ElementsAre(20, 40, 80));
  EXPECT_THAT(warm.warmup_rates.at("gmail"), ElementsAre(10, 20));
  EXPECT_THAT(warm.warmup_rates.at("yahoo"), ElementsAre(100));
  EXPECT_EQ(overlay(c.policy, c.pools[1].policy), c.policy);
}

TEST(Config, RecoveryAndWarmupKeysReachThePolicy) {
  const LoadResult result = load_string(kRecoveryKeys, "sluice.toml");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const Config& c = *result.config;

  const PolicyParams bulk = cli::policy_for(c, c.pools[1]);  // [policy] alone
  EXPECT_EQ(bulk.no_effect_fall, 0.35);
  EXPECT_EQ(bulk.recovery_connection_seconds, 3 * 3600);
  EXPECT_EQ(bulk.recovery_slow_seconds, 12 * 3600);
  EXPECT_EQ(bulk.probe_max_seconds, 48 * 3600);
  EXPECT_EQ(bulk.trigger_events, 3u);
  EXPECT_EQ(bulk.trigger_seconds, 30 * 60);
  EXPECT_EQ(bulk.concentration_factor, 2.5);
  EXPECT_EQ(bulk.vmta_recovery_seconds, 8 * 3600);
  EXPECT_EQ(bulk.warmup_stage_seconds, 3 * 86400);
  EXPECT_EQ(bulk.warming_retry_after_minutes, 0);
  EXPECT_EQ(bulk.recovering_retry_after_minutes, 15);
  ASSERT_EQ(bulk.warmup_rates.size(), 2u);
  EXPECT_THAT(bulk.warmup_rates.at("generic"), ElementsAre(20, 40, 80));
  EXPECT_THAT(bulk.warmup_rates.at("gmail"), ElementsAre(50, 100, 200, 400, 800, 1600));

  const PolicyParams warm = cli::policy_for(c, c.pools[0]);  // [pool.policy] on top
  EXPECT_EQ(warm.no_effect_fall, 0.5);
  EXPECT_EQ(warm.recovery_connection_seconds, 4 * 3600);
  EXPECT_EQ(warm.recovery_slow_seconds, 36 * 3600);
  EXPECT_EQ(warm.probe_max_seconds, 72 * 3600);
  EXPECT_EQ(warm.trigger_events, 5u);
  EXPECT_EQ(warm.trigger_seconds, 120 * 60);
  EXPECT_EQ(warm.concentration_factor, 4.0);
  EXPECT_EQ(warm.vmta_recovery_seconds, 12 * 3600);
  EXPECT_EQ(warm.warmup_stage_seconds, 14 * 86400);
  EXPECT_EQ(warm.warming_retry_after_minutes, 45);
  EXPECT_EQ(warm.recovering_retry_after_minutes, 0);
  EXPECT_THAT(warm.warmup_rates.at("gmail"), ElementsAre(10, 20));
  EXPECT_THAT(warm.warmup_rates.at("yahoo"), ElementsAre(100));

  // Unset: the controller's defaults, the built-in "generic" warm-up kept under an ISP's own.
  const Config only_gmail =
      *load_string("[policy.warmup_rates]\ngmail = [5]\n[[pool]]\nname = \"bulk\"\n", "sluice.toml")
           .config;
  const PolicyParams p = cli::policy_for(only_gmail, only_gmail.pools[0]);
  const PolicyParams d = default_policy();
  EXPECT_EQ(p.no_effect_fall, d.no_effect_fall);
  EXPECT_EQ(p.recovery_connection_seconds, d.recovery_connection_seconds);
  EXPECT_EQ(p.recovery_slow_seconds, d.recovery_slow_seconds);
  EXPECT_EQ(p.probe_max_seconds, d.probe_max_seconds);
  EXPECT_EQ(p.trigger_events, d.trigger_events);
  EXPECT_EQ(p.trigger_seconds, d.trigger_seconds);
  EXPECT_EQ(p.concentration_factor, d.concentration_factor);
  EXPECT_EQ(p.vmta_recovery_seconds, d.vmta_recovery_seconds);
  EXPECT_EQ(p.warmup_stage_seconds, d.warmup_stage_seconds);
  EXPECT_EQ(p.warming_retry_after_minutes, d.warming_retry_after_minutes);
  EXPECT_EQ(p.recovering_retry_after_minutes, d.recovering_retry_after_minutes);
  ASSERT_TRUE(d.warmup_rates.contains("generic"));
  EXPECT_EQ(p.warmup_rates.at("generic"), d.warmup_rates.at("generic"));
  EXPECT_THAT(p.warmup_rates.at("gmail"), ElementsAre(5));
}

TEST(Config, RecoveryAndWarmupKeysAcceptTheirBounds) {
  for (const char* text :
       {"no_effect_fall = 0.01\nrecovery_connection_hours = 1\nrecovery_slow_hours = 1\n"
        "probe_max_hours = 1\ntrigger_events = 1\ntrigger_minutes = 5\n"
        "concentration_factor = 1.5\nvmta_recovery_hours = 1\nwarmup_stage_days = 1\n"
        "warming_retry_after_minutes = 0\nrecovering_retry_after_minutes = 0\n"
        "warmup_rates = { generic = [1] }\n",
        "no_effect_fall = 0.99\nrecovery_connection_hours = 168\nrecovery_slow_hours = 168\n"
        "probe_max_hours = 168\ntrigger_events = 10000\ntrigger_minutes = 1440\n"
        "concentration_factor = 100\nvmta_recovery_hours = 168\nwarmup_stage_days = 90\n"
        "warming_retry_after_minutes = 1440\nrecovering_retry_after_minutes = 1440\n"
        "warmup_rates.generic = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, "
        "19, 1000000]\n"}) {
    const LoadResult result = load_string(std::string("[policy]\n") + text, "sluice.toml");
    EXPECT_TRUE(result.config.has_value()) << result.error;
  }
}

TEST(ConfigErrors, RecoveryAndWarmupKeysOutOfRange) {
  struct Case {
    const char* key;
    const char* bad;
    const char* must;
  };
  for (const Case& c :
       {Case{"no_effect_fall", "0", "a number between 0 and 1"},
        Case{"no_effect_fall", "1", "a number between 0 and 1"},
        Case{"no_effect_fall", "'0.2'", "a number between 0 and 1"},
        Case{"recovery_connection_hours", "0", "an integer from 1 to 168"},
        Case{"recovery_connection_hours", "169", "an integer from 1 to 168"},
        Case{"recovery_connection_hours", "6.0", "an integer from 1 to 168"},
        Case{"recovery_slow_hours", "0", "an integer from 1 to 168"},
        Case{"recovery_slow_hours", "169", "an integer from 1 to 168"},
        Case{"probe_max_hours", "0", "an integer from 1 to 168"},
        Case{"probe_max_hours", "169", "an integer from 1 to 168"},
        Case{"trigger_events", "0", "an integer from 1 to 10000"},
        Case{"trigger_events", "10001", "an integer from 1 to 10000"},
        Case{"trigger_minutes", "4", "an integer from 5 to 1440"},
        Case{"trigger_minutes", "1441", "an integer from 5 to 1440"},
        Case{"trigger_minutes", "'1h'", "an integer from 5 to 1440"},
        Case{"concentration_factor", "1.4", "a number from 1.5 to 100"},
        Case{"concentration_factor", "101", "a number from 1.5 to 100"},
        Case{"concentration_factor", "nan", "a number from 1.5 to 100"},
        Case{"concentration_factor", "'3'", "a number from 1.5 to 100"},
        Case{"concentration_factor", "true", "a number from 1.5 to 100"},
        Case{"vmta_recovery_hours", "0", "an integer from 1 to 168"},
        Case{"vmta_recovery_hours", "169", "an integer from 1 to 168"},
        Case{"warmup_stage_days", "0", "an integer from 1 to 90"},
        Case{"warmup_stage_days", "91", "an integer from 1 to 90"},
        Case{"warming_retry_after_minutes", "-1", "an integer from 0 to 1440"},
        Case{"warming_retry_after_minutes", "1441", "an integer from 0 to 1440"},
        Case{"recovering_retry_after_minutes", "-1", "an integer from 0 to 1440"},
        Case{"recovering_retry_after_minutes", "1441", "an integer from 0 to 1440"},
        Case{"recovering_retry_after_minutes", "20.5", "an integer from 0 to 1440"}}) {
    EXPECT_EQ(
        error_of(std::string("[policy]\n") + c.key + " = " + c.bad + "\n"),
        std::string("sluice.toml:2: [policy] '") + c.key + "' must be " + c.must + ", not " + c.bad)
        << c.key << " = " << c.bad;
  }
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\n[pool.policy]\ntrigger_events = 0\n"),
            "sluice.toml:4: pool 'bulk': [pool.policy] 'trigger_events' must be an integer from 1 "
            "to 10000, not 0");
  EXPECT_EQ(error_of("[[pool]]\nname = \"bulk\"\n[pool.policy]\nconcentration_factor = 1\n"),
            "sluice.toml:4: pool 'bulk': [pool.policy] 'concentration_factor' must be a number "
            "from 1.5 to 100, not 1");
}

TEST(ConfigErrors, ProbeMaxHoursMustNotBeBelowTheRecoveryHours) {
  EXPECT_EQ(error_of("[policy]\nrecovery_slow_hours = 12\nprobe_max_hours = 6\n"),
            "sluice.toml:3: [policy] 'probe_max_hours' must be at least 'recovery_slow_hours' "
            "(12), not 6");
  EXPECT_EQ(error_of("[policy]\nrecovery_connection_hours = 8\nrecovery_slow_hours = 4\n"
                     "probe_max_hours = 6\n"),
            "sluice.toml:4: [policy] 'probe_max_hours' must be at least "
            "'recovery_connection_hours' (8), not 6");
  // One side set: checked against the other side's default (6 and 24 hours, longest 24).
  EXPECT_EQ(error_of("[policy]\nrecovery_slow_hours = 48\n"),
            "sluice.toml:2: [policy] 'recovery_slow_hours' must be at most 'probe_max_hours' "
            "(24), not 48");
  EXPECT_EQ(error_of("[policy]\nprobe_max_hours = 12\n"),
            "sluice.toml:2: [policy] 'probe_max_hours' must be at least 'recovery_slow_hours' "
            "(24), not 12");
  // A pool is checked on top of [policy]; the key it sets is the one named.
  EXPECT_EQ(error_of(R"([policy]
probe_max_hours = 48
recovery_slow_hours = 36
[[pool]]
name = "bulk"
[pool.policy]
probe_max_hours = 30
)"),
            "sluice.toml:7: pool 'bulk': [pool.policy] 'probe_max_hours' must be at least "
            "'recovery_slow_hours' (36), not 30");
  EXPECT_EQ(error_of(R"([policy]
probe_max_hours = 48
[[pool]]
name = "bulk"
[pool.policy]
recovery_connection_hours = 49
)"),
            "sluice.toml:6: pool 'bulk': [pool.policy] 'recovery_connection_hours' must be at "
            "most 'probe_max_hours' (48), not 49");
  const LoadResult equal = load_string(
      "[policy]\nrecovery_connection_hours = 12\nrecovery_slow_hours = 12\nprobe_max_hours = "
      "12\n",
      "sluice.toml");
  EXPECT_TRUE(equal.config.has_value()) << equal.error;
}

TEST(ConfigErrors, WarmupRatesValidation) {
  const std::string must =
      "' must be 1 to 20 rising integers from 1 to 1000000 (messages per hour by stage), not ";
  const auto rates_error = [](const std::string& value) {
    return error_of("[policy]\n[policy.warmup_rates]\ngmail = " + value + "\n");
  };
  const std::string where = "sluice.toml:3: [policy.warmup_rates] 'gmail";
  EXPECT_EQ(rates_error("[]"), where + must + "[]");
  EXPECT_EQ(rates_error("[0, 10]"), where + must + "[0, 10]");
  EXPECT_EQ(rates_error("[50, 1000001]"), where + must + "[50, 1000001]");
  EXPECT_EQ(rates_error("[100, 50]"), where + must + "[100, 50]");
  EXPECT_EQ(rates_error("[50, 50]"), where + must + "[50, 50]");
  EXPECT_EQ(rates_error("[50, 100.0]"), where + must + "[50, 100.0]");
  EXPECT_EQ(rates_error("[\"50/h\"]"), where + must + "['50/h']");
  EXPECT_EQ(rates_error("50"), where + must + "50");
  EXPECT_EQ(rates_error("{ stage1 = 50 }"), where + must + "a table");
  std::string too_many = "[1";
  for (int i = 2; i <= 21; ++i) too_many += ", " + std::to_string(i);
  too_many += "]";
  EXPECT_EQ(rates_error(too_many), where + must + too_many);

  EXPECT_EQ(error_of("[policy]\nwarmup_rates = [50, 100]\n"),
            "sluice.toml:2: [policy] 'warmup_rates' must be a table of ISPs, not [50, 100]");
  EXPECT_EQ(error_of("[policy.warmup_rates]\n\"g mail\" = [50]\n"),
            "sluice.toml:2: [policy.warmup_rates] ISP name 'g mail' is not [A-Za-z0-9._-]+");
  EXPECT_EQ(error_of("[[pool]]\nname = \"a\"\n[pool.policy.warmup_rates]\ngmail = [5, 1]\n"),
            "sluice.toml:4: pool 'a': [pool.policy.warmup_rates] 'gmail" + must + "[5, 1]");
  EXPECT_EQ(error_of("[policy]\nwarmup_rate = { generic = [50] }\n"),
            "sluice.toml:2: unknown key 'warmup_rate' in [policy]");
}

// --- [metrics] ---

TEST(Config, MetricsTextfile) {
  const LoadResult none = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(none.config.has_value()) << none.error;
  EXPECT_EQ(none.config->metrics_textfile, "");
  const LoadResult set = load_string(
      "[metrics]\ntextfile = \"/var/lib/prometheus/node-exporter/sluice.prom\"\n", "sluice.toml");
  ASSERT_TRUE(set.config.has_value()) << set.error;
  EXPECT_EQ(set.config->metrics_textfile, "/var/lib/prometheus/node-exporter/sluice.prom");
}

TEST(Config, NotifyHook) {
  const LoadResult none = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(none.config.has_value()) << none.error;
  EXPECT_FALSE(none.config->notify);
  const LoadResult set = load_string(
      "[notify]\ncommand = [\"/usr/local/bin/page\", \"--team\", \"mail\"]\ntimeout_seconds = 5\n",
      "sluice.toml");
  ASSERT_TRUE(set.config.has_value()) << set.error;
  ASSERT_TRUE(set.config->notify);
  EXPECT_EQ(set.config->notify->command,
            (std::vector<std::string>{"/usr/local/bin/page", "--team", "mail"}));
  EXPECT_EQ(set.config->notify->timeout_seconds, 5);
}

TEST(ConfigErrors, NotifyValues) {
  EXPECT_EQ(error_of("[notify]\ntimeout_seconds = 5\n"), "sluice.toml:1: [notify] needs 'command'");
  EXPECT_EQ(error_of("[notify]\ncommand = [\"page\"]\n"),
            "sluice.toml:2: [notify] 'command' must start with an absolute path, not 'page'");
  EXPECT_EQ(error_of("[notify]\ncommand = \"/bin/page\"\n"),
            "sluice.toml:2: [notify] 'command' must be an array of strings, the program's "
            "absolute path first, not '/bin/page'");
  EXPECT_EQ(error_of("[notify]\ncommand = [\"/bin/page\"]\ntimeout_seconds = 0\n"),
            "sluice.toml:3: [notify] 'timeout_seconds' must be an integer from 1 to 600, not 0");
  EXPECT_EQ(error_of("[notify]\ncommand = [\"/bin/page\"]\nshell = true\n"),
            "sluice.toml:3: unknown key 'shell' in [notify]");
}

TEST(Config, MetricsListen) {
  const LoadResult none = load_string(kSample, "sluice.toml");
  ASSERT_TRUE(none.config.has_value()) << none.error;
  EXPECT_EQ(none.config->metrics_listen_port, 0);
  const LoadResult v4 = load_string("[metrics]\nlisten = \"127.0.0.1:9465\"\n", "sluice.toml");
  ASSERT_TRUE(v4.config.has_value()) << v4.error;
  EXPECT_EQ(v4.config->metrics_listen_host, "127.0.0.1");
  EXPECT_EQ(v4.config->metrics_listen_port, 9465);
  const LoadResult v6 = load_string("[metrics]\nlisten = \"[::1]:9100\"\n", "sluice.toml");
  ASSERT_TRUE(v6.config.has_value()) << v6.error;
  EXPECT_EQ(v6.config->metrics_listen_host, "::1");
  EXPECT_EQ(v6.config->metrics_listen_port, 9100);
}

TEST(ConfigErrors, MetricsValues) {
  EXPECT_EQ(error_of("[metrics]\ntextfile = \"sluice.prom\"\n"),
            "sluice.toml:2: 'textfile' must be an absolute path, not 'sluice.prom'");
  EXPECT_EQ(error_of("[metrics]\n\ntextfile = \"/var/lib/node-exporter/sluice.txt\"\n"),
            "sluice.toml:3: [metrics] 'textfile' must be a file name ending in .prom "
            "(node_exporter reads only those), not '/var/lib/node-exporter/sluice.txt'");
  EXPECT_EQ(error_of("[metrics]\ntextfile = \"/var/lib/node-exporter/.prom\"\n"),
            "sluice.toml:2: [metrics] 'textfile' must be a file name ending in .prom "
            "(node_exporter reads only those), not '/var/lib/node-exporter/.prom'");
  EXPECT_EQ(error_of("[metrics]\ntextfile = 1\n"), "sluice.toml:2: 'textfile' must be a string");
  EXPECT_EQ(error_of("[metrics]\ntextfile = \"/x.prom\"\nport = 9100\n"),
            "sluice.toml:3: unknown key 'port' in [metrics]");
  const std::pair<const char*, const char*> bad_listens[] = {
      {"\":9100\"", "':9100'"},
      {"\"localhost:9465\"", "'localhost:9465'"},
      {"\"127.0.0.1\"", "'127.0.0.1'"},
      {"\"127.0.0.1:0\"", "'127.0.0.1:0'"},
      {"\"127.0.0.1:65536\"", "'127.0.0.1:65536'"},
      {"\"::1:9465\"", "'::1:9465'"},
      {"\"[::1]:x\"", "'[::1]:x'"},
      {"9465", "9465"}};
  for (const auto& [listen, shown] : bad_listens) {
    SCOPED_TRACE(listen);
    EXPECT_EQ(error_of(std::string("[metrics]\nlisten = ") + listen + "\n"),
              std::string("sluice.toml:2: [metrics] 'listen' must be an IP address and a port such "
                          "as \"127.0.0.1:9465\" or \"[::1]:9465\", not ") +
                  shown);
  }
  EXPECT_EQ(error_of("metrics = \"/x.prom\"\n"), "sluice.toml:1: 'metrics' must be a table");
}

TEST(Config, ExampleMetricsTableLoadsUncommented) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/examples/sluice.toml");
  std::string line;
  std::string table;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == "# [metrics]") inside = true;
    if (!inside) continue;
    if (line.empty()) break;
    table += line.substr(2) + "\n";
  }
  const LoadResult uncommented = load_string(table, "metrics");
  ASSERT_TRUE(uncommented.config.has_value()) << uncommented.error << "\n" << table;
  EXPECT_EQ(uncommented.config->metrics_textfile, "/var/lib/prometheus/node-exporter/sluice.prom");
}

}  // namespace
}  // namespace sluice::config
