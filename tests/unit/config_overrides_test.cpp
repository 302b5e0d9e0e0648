#include "config/overrides.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace sluice::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr const char* kSource = "/etc/sluice/overrides.toml";

// 2026-12-01T00:00:00Z
constexpr std::int64_t kDecemberFirst = 1796083200;

// The texts below are raw strings that start with a newline, so their first line is line 2.
OverrideFile parsed(const std::string& text) {
  const OverrideLoad load = parse_overrides(text, kSource);
  EXPECT_TRUE(load.file.has_value()) << load.error;
  EXPECT_EQ(load.error, "");
  return load.file.value_or(OverrideFile{});
}

std::string error_of(const std::string& text) {
  const OverrideLoad load = parse_overrides(text, kSource);
  EXPECT_FALSE(load.file.has_value()) << text;
  EXPECT_FALSE(load.error.empty());
  return load.error;
}

// The one [[override]] of a text.
OverrideEntry only_override(const std::string& text) {
  const OverrideFile file = parsed(text);
  EXPECT_THAT(file.overrides, SizeIs(1));
  return file.overrides.empty() ? OverrideEntry{} : file.overrides.front();
}

// A pin for pool "p" with `line` added, for the `until` tests.
std::optional<std::int64_t> until_of(const std::string& line) {
  return only_override("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"r\"\n" + line +
                       "\n")
      .until;
}

std::string until_error(const std::string& line) {
  return error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"r\"\n" + line + "\n");
}

// A text with one [[override]] of pool `pool` (written as is, quotes included) on line 2.
std::string with_pool(const std::string& pool) {
  return "\n[[override]]\npool = " + pool + "\nmax_smtp_out = 4\nreason = \"r\"\n";
}

// ---- the empty file ------------------------------------------------------------------------

TEST(ConfigOverrides, EmptyTextIsAFileWithoutOverrides) {
  const OverrideFile file = parsed("");
  EXPECT_EQ(file.source, kSource);
  EXPECT_FALSE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "");
  EXPECT_EQ(file.global_line, 0);
  EXPECT_TRUE(file.overrides.empty());
  EXPECT_TRUE(file.tiers.empty());
}

TEST(ConfigOverrides, OnlyCommentsAndBlankLinesAreAFileWithoutOverrides) {
  const OverrideFile file = parsed("# nothing overridden\n\n   \n# still nothing\n");
  EXPECT_FALSE(file.freeze_all);
  EXPECT_TRUE(file.overrides.empty());
  EXPECT_TRUE(file.tiers.empty());
}

TEST(ConfigOverrides, SourceIsKeptForMessages) {
  EXPECT_EQ(parse_overrides("", "other.toml").file->source, "other.toml");
}

// ---- [global] --------------------------------------------------------------------------------

TEST(ConfigOverrides, GlobalFreezeTrueWithReason) {
  const OverrideFile file = parsed(R"(
# the kill switch
[global]
freeze = true
reason = "incident 4711: gmail deferrals"
)");
  EXPECT_TRUE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "incident 4711: gmail deferrals");
  EXPECT_EQ(file.global_line, 3);
}

TEST(ConfigOverrides, GlobalFreezeFalseKeepsTheLoopRunning) {
  const OverrideFile file = parsed(R"(
[global]
freeze = false
reason = "was frozen for the migration"
)");
  EXPECT_FALSE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "was frozen for the migration");
  EXPECT_EQ(file.global_line, 2);
}

TEST(ConfigOverrides, GlobalFreezeWithoutReasonIsAccepted) {
  const OverrideFile file = parsed("\n[global]\nfreeze = true\n");
  EXPECT_TRUE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "");
}

TEST(ConfigOverrides, EmptyGlobalTableFreezesNothing) {
  const OverrideFile file = parsed("\n[global]\n");
  EXPECT_FALSE(file.freeze_all);
  EXPECT_EQ(file.global_line, 2);
}

TEST(ConfigOverrides, GlobalFreezeAsStringIsRefused) {
  EXPECT_EQ(error_of(R"(
[global]
freeze = "yes"
)"),
            "/etc/sluice/overrides.toml:3: [global] 'freeze' must be true or false, not 'yes'");
}

TEST(ConfigOverrides, GlobalFreezeAsIntegerIsRefused) {
  EXPECT_EQ(error_of("\n[global]\nreason = \"x\"\nfreeze = 1\n"),
            "/etc/sluice/overrides.toml:4: [global] 'freeze' must be true or false, not 1");
}

TEST(ConfigOverrides, GlobalReasonNotAStringIsRefused) {
  EXPECT_EQ(error_of("\n[global]\nfreeze = true\nreason = 42\n"),
            "/etc/sluice/overrides.toml:4: 'reason' must be a string");
}

TEST(ConfigOverrides, GlobalUnknownKeyIsRefused) {
  EXPECT_EQ(error_of("\n[global]\nfreeze = true\nfrozen = true\n"),
            "/etc/sluice/overrides.toml:4: unknown key 'frozen' in [global]");
}

TEST(ConfigOverrides, GlobalNotATableIsRefused) {
  EXPECT_EQ(error_of("\nglobal = true\n"),
            "/etc/sluice/overrides.toml:2: 'global' must be a table");
}

// ---- the file's shape ----------------------------------------------------------------------

TEST(ConfigOverrides, TomlSyntaxErrorNamesFileAndLine) {
  const std::string error = error_of(R"(
[[override]]
pool = "p"
max_smtp_out = = 4
reason = "r"
)");
  EXPECT_THAT(error, StartsWith("/etc/sluice/overrides.toml:4: "));
  EXPECT_GT(error.size(), std::string("/etc/sluice/overrides.toml:4: ").size());
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(ConfigOverrides, UnterminatedStringNamesItsLine) {
  EXPECT_THAT(error_of("\n[global]\nfreeze = true\nreason = \"never closed\n"),
              StartsWith("/etc/sluice/overrides.toml:4: "));
}

TEST(ConfigOverrides, UnknownTopLevelTableIsRefused) {
  EXPECT_EQ(error_of(R"(
[global]
freeze = false

[pools]
name = "p"
)"),
            "/etc/sluice/overrides.toml:5: unknown key 'pools'");
}

TEST(ConfigOverrides, UnknownTopLevelKeyIsRefused) {
  EXPECT_EQ(error_of("\n\nfreeze = true\n"), "/etc/sluice/overrides.toml:3: unknown key 'freeze'");
}

TEST(ConfigOverrides, OverrideAsPlainTableIsRefused) {
  EXPECT_EQ(error_of("\n[override]\npool = \"p\"\n"),
            "/etc/sluice/overrides.toml:2: 'override' must be an array of tables ([[override]])");
}

TEST(ConfigOverrides, TierAsPlainTableIsRefused) {
  EXPECT_EQ(error_of("\n[tier]\npool = \"p\"\n"),
            "/etc/sluice/overrides.toml:2: 'tier' must be an array of tables ([[tier]])");
}

TEST(ConfigOverrides, InlineArrayOfTablesIsAccepted) {
  const OverrideFile file = parsed(R"(
override = [{pool = "p", max_smtp_out = 4, reason = "a"},
            {pool = "q", freeze = true, reason = "b"}]
)");
  ASSERT_THAT(file.overrides, SizeIs(2));
  EXPECT_EQ(file.overrides[0].pool, "p");
  EXPECT_EQ(file.overrides[0].line, 2);
  EXPECT_EQ(file.overrides[1].pool, "q");
  EXPECT_EQ(file.overrides[1].line, 3);
}

TEST(ConfigOverrides, CrLfLineEndingsKeepTheLines) {
  EXPECT_EQ(error_of("[global]\r\nfreeze = true\r\n[[override]]\r\npool = \"p\"\r\nmax_smtp_out = "
                     "0\r\nreason = \"r\"\r\n"),
            "/etc/sluice/overrides.toml:5: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 0");
}

TEST(ConfigOverrides, ByteOrderMarkDoesNotShiftTheLines) {
  EXPECT_EQ(error_of("\xEF\xBB\xBF\n[[override]]\npool = \"p\"\nmax_smtp_out = 0\nreason = "
                     "\"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 0");
}

// ---- [[override]]: the kinds -----------------------------------------------------------------

TEST(ConfigOverrides, PinForAPool) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "high-rep-pool"
max_smtp_out = 4
reason = "warming the new IPs"
)");
  EXPECT_EQ(e.pool, "high-rep-pool");
  EXPECT_EQ(e.isp, "");
  EXPECT_EQ(e.vmta, "");
  EXPECT_EQ(e.kind, OverrideKind::pin);
  EXPECT_EQ(e.max_smtp_out, 4);
  EXPECT_EQ(e.floor, std::nullopt);
  EXPECT_EQ(e.ceiling, std::nullopt);
  EXPECT_EQ(e.until, std::nullopt);
  EXPECT_EQ(e.reason, "warming the new IPs");
  EXPECT_EQ(e.line, 2);
}

TEST(ConfigOverrides, PinAcceptsTheLowestValue) {
  EXPECT_EQ(only_override("\n[[override]]\npool = \"p\"\nmax_smtp_out = 1\nreason = \"r\"\n")
                .max_smtp_out,
            1);
}

TEST(ConfigOverrides, PinAcceptsTheHighestValue) {
  EXPECT_EQ(only_override("\n[[override]]\npool = \"p\"\nmax_smtp_out = 1000\nreason = \"r\"\n")
                .max_smtp_out,
            kMaxSmtpOut);
}

TEST(ConfigOverrides, FreezeTrue) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "p"
isp = "gmail"
freeze = true
reason = "hold while we look"
)");
  EXPECT_EQ(e.kind, OverrideKind::freeze);
  EXPECT_EQ(e.isp, "gmail");
  EXPECT_EQ(e.max_smtp_out, 0);
  EXPECT_EQ(e.floor, std::nullopt);
  EXPECT_EQ(e.ceiling, std::nullopt);
  EXPECT_EQ(e.reason, "hold while we look");
}

TEST(ConfigOverrides, FloorAlone) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "p"
floor = 2
reason = "never below 2"
)");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.floor, 2);
  EXPECT_EQ(e.ceiling, std::nullopt);
  EXPECT_EQ(e.max_smtp_out, 0);
}

TEST(ConfigOverrides, CeilingAlone) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "p"
ceiling = 6
reason = "never above 6"
)");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.floor, std::nullopt);
  EXPECT_EQ(e.ceiling, 6);
}

TEST(ConfigOverrides, FloorAndCeiling) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "p"
floor = 2
ceiling = 6
reason = "between 2 and 6"
)");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.floor, 2);
  EXPECT_EQ(e.ceiling, 6);
}

TEST(ConfigOverrides, FloorEqualToCeilingIsAccepted) {
  const OverrideEntry e =
      only_override("\n[[override]]\npool = \"p\"\nfloor = 5\nceiling = 5\nreason = \"r\"\n");
  EXPECT_EQ(e.floor, 5);
  EXPECT_EQ(e.ceiling, 5);
}

// ---- [[override]]: scope ---------------------------------------------------------------------

TEST(ConfigOverrides, IspAndVmtaAreRead) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "high-rep-pool"
isp = "gmail.com"
vmta = "gmail-ip-1"
max_smtp_out = 3
reason = "one IP is listed"
)");
  EXPECT_EQ(e.pool, "high-rep-pool");
  EXPECT_EQ(e.isp, "gmail.com");
  EXPECT_EQ(e.vmta, "gmail-ip-1");
}

TEST(ConfigOverrides, VmtaWithoutIspIsForEveryIsp) {
  const OverrideEntry e = only_override(
      "\n[[override]]\npool = \"p\"\nvmta = \"v1\"\nmax_smtp_out = 3\nreason = \"r\"\n");
  EXPECT_EQ(e.isp, "");
  EXPECT_EQ(e.vmta, "v1");
}

TEST(ConfigOverrides, EntriesKeepTheirOrderAndLines) {
  const OverrideFile file = parsed(R"(
[[override]]
pool = "p"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "q"
freeze = true
reason = "b"

[[override]]
pool = "r"
floor = 1
reason = "c"
)");
  ASSERT_THAT(file.overrides, SizeIs(3));
  EXPECT_EQ(file.overrides[0].pool, "p");
  EXPECT_EQ(file.overrides[0].line, 2);
  EXPECT_EQ(file.overrides[1].pool, "q");
  EXPECT_EQ(file.overrides[1].line, 7);
  EXPECT_EQ(file.overrides[2].pool, "r");
  EXPECT_EQ(file.overrides[2].line, 12);
}

TEST(ConfigOverrides, GlobalOverridesAndTiersTogether) {
  const OverrideFile file = parsed(R"(
[global]
freeze = false

[[override]]
pool = "p"
max_smtp_out = 4
reason = "a"

[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
source = "postmaster tools"
)");
  EXPECT_EQ(file.global_line, 2);
  ASSERT_THAT(file.overrides, SizeIs(1));
  EXPECT_EQ(file.overrides[0].line, 5);
  ASSERT_THAT(file.tiers, SizeIs(1));
  EXPECT_EQ(file.tiers[0].line, 10);
}

// ---- [[override]]: until -------------------------------------------------------------------

TEST(ConfigOverrides, UntilStringInUtc) {
  EXPECT_EQ(until_of("until = \"2026-12-01T00:00:00Z\""), kDecemberFirst);
}

TEST(ConfigOverrides, UntilStringWithOffsetAndSpace) {
  EXPECT_EQ(until_of("until = \"2026-12-01 00:00:00+01:00\""), kDecemberFirst - 3600);
}

TEST(ConfigOverrides, UntilStringDateIsMidnightUtc) {
  EXPECT_EQ(until_of("until = \"2026-12-01\""), kDecemberFirst);
}

TEST(ConfigOverrides, UntilNativeOffsetDateTime) {
  EXPECT_EQ(until_of("until = 2026-12-01T00:00:00Z"), kDecemberFirst);
}

TEST(ConfigOverrides, UntilNativeOffsetDateTimeWithNegativeOffset) {
  EXPECT_EQ(until_of("until = 2026-12-01T12:34:56-05:30"), 1796148296);
}

TEST(ConfigOverrides, UntilNativeDateIsMidnightUtc) {
  EXPECT_EQ(until_of("until = 2026-12-01"), kDecemberFirst);
}

TEST(ConfigOverrides, UntilNativeLocalDateTimeIsRefused) {
  EXPECT_EQ(until_error("until = 2026-12-01T00:00:00"),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not a date or time");
}

TEST(ConfigOverrides, UntilNativeLocalTimeIsRefused) {
  EXPECT_EQ(until_error("until = 10:00:00"),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not a date or time");
}

TEST(ConfigOverrides, UntilStringWithoutOffsetIsRefused) {
  EXPECT_EQ(until_error("until = \"2026-12-01T00:00:00\""),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not '2026-12-01T00:00:00'");
}

TEST(ConfigOverrides, UntilGarbageStringIsRefused) {
  EXPECT_EQ(until_error("until = \"next tuesday\""),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not 'next tuesday'");
}

TEST(ConfigOverrides, UntilIntegerIsRefused) {
  EXPECT_EQ(until_error("until = 1796083200"),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not 1796083200");
}

TEST(ConfigOverrides, UntilEmptyStringIsRefused) {
  EXPECT_EQ(until_error("until = \"\""),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not ''");
}

TEST(ConfigOverrides, UntilArrayIsRefused) {
  EXPECT_EQ(until_error("until = [2026-12-01T00:00:00Z]"),
            "/etc/sluice/overrides.toml:6: [[override]] 'until' must be a time with its offset, "
            "such as \"2026-12-01T00:00:00Z\", not [a date or time]");
}

TEST(ConfigOverrides, UntilOnABoundsEntry) {
  const OverrideEntry e = only_override(R"(
[[override]]
pool = "p"
ceiling = 6
until = "2026-12-01T00:00:00Z"
reason = "r"
)");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.until, kDecemberFirst);
}

// ---- parse_utc_time --------------------------------------------------------------------------

TEST(ConfigOverrides, ParseUtcTimeWithZ) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00Z"), kDecemberFirst);
}

TEST(ConfigOverrides, ParseUtcTimeWithPositiveOffsetAndSpace) {
  EXPECT_EQ(parse_utc_time("2026-12-01 00:00:00+01:00"), kDecemberFirst - 3600);
}

TEST(ConfigOverrides, ParseUtcTimeWithNegativeOffset) {
  EXPECT_EQ(parse_utc_time("2026-12-01T12:34:56-05:30"), 1796148296);
}

TEST(ConfigOverrides, ParseUtcTimeWithZeroOffset) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00+00:00"), kDecemberFirst);
}

TEST(ConfigOverrides, ParseUtcTimeDropsFractionalSeconds) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00.750Z"), kDecemberFirst);
}

TEST(ConfigOverrides, ParseUtcTimeAcceptsLowerCaseTAndZ) {
  EXPECT_EQ(parse_utc_time("2026-12-01t00:00:00z"), kDecemberFirst);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesATimeWithoutSeconds) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00Z"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesAnOffsetOfADay) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00+24:00"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeDateIsMidnightUtc) {
  EXPECT_EQ(parse_utc_time("2026-12-01"), kDecemberFirst);
}

TEST(ConfigOverrides, ParseUtcTimeEpoch) {
  EXPECT_EQ(parse_utc_time("1970-01-01T00:00:00Z"), 0);
}

TEST(ConfigOverrides, ParseUtcTimeLeapDay) {
  EXPECT_EQ(parse_utc_time("2024-02-29"), 1709164800);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesATimeWithoutOffset) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00"), std::nullopt);
  EXPECT_EQ(parse_utc_time("2026-12-01 00:00:00"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesATimeOfDayAlone) {
  EXPECT_EQ(parse_utc_time("10:00:00"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesGarbage) {
  EXPECT_EQ(parse_utc_time(""), std::nullopt);
  EXPECT_EQ(parse_utc_time("next tuesday"), std::nullopt);
  EXPECT_EQ(parse_utc_time("tomorrow!!"), std::nullopt);  // ten characters, like a date
  EXPECT_EQ(parse_utc_time("1796083200"), std::nullopt);  // ten digits: not unix seconds
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00Zjunk"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesImpossibleDates) {
  EXPECT_EQ(parse_utc_time("2026-13-01"), std::nullopt);
  EXPECT_EQ(parse_utc_time("2026-02-30"), std::nullopt);
  EXPECT_EQ(parse_utc_time("2026-12-01T25:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_utc_time("2026-02-30T00:00:00Z"), std::nullopt);
}

TEST(ConfigOverrides, ParseUtcTimeRefusesTomlSmuggledAfterTheTime) {
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00Z\nx = 1"), std::nullopt);
  EXPECT_EQ(parse_utc_time("2026-12-01T00:00:00Z # c"), std::nullopt);
  EXPECT_EQ(parse_utc_time("\"2026-12-01T00:00:00Z\""), std::nullopt);
}

// ---- [[override]]: errors --------------------------------------------------------------------

TEST(ConfigOverrides, OverrideUnknownKeyIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
max_msg_rate = 10
reason = "r"
)"),
            "/etc/sluice/overrides.toml:5: unknown key 'max_msg_rate' in [[override]]");
}

TEST(ConfigOverrides, SubTableOfAnOverrideIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
reason = "r"
[override.limits]
floor = 1
)"),
            "/etc/sluice/overrides.toml:6: unknown key 'limits' in [[override]]");
}

TEST(ConfigOverrides, EmptyOverrideTableIsRefusedForItsMissingPool) {
  EXPECT_EQ(error_of(with_pool("\"p\"") + "\n[[override]]\n"),
            "/etc/sluice/overrides.toml:7: [[override]] needs 'pool'");
}

TEST(ConfigOverrides, MissingPoolIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
isp = "gmail"
max_smtp_out = 4
reason = "r"
)"),
            "/etc/sluice/overrides.toml:2: [[override]] needs 'pool'");
}

TEST(ConfigOverrides, PoolNotAStringIsRefused) {
  EXPECT_EQ(error_of(with_pool("7")), "/etc/sluice/overrides.toml:3: 'pool' must be a string");
}

TEST(ConfigOverrides, PoolNameWithSpaceIsRefused) {
  EXPECT_EQ(error_of(with_pool("\"high rep\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name 'high rep' is not "
            "[A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, PoolNameWithSlashIsRefused) {
  EXPECT_EQ(error_of(with_pool("\"a/b\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name 'a/b' is not [A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, PoolNameWithNewlineIsRefusedOnOneLine) {
  EXPECT_EQ(error_of(with_pool("\"a\\nb\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name 'a\\nb' is not "
            "[A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, PoolNameDotDotIsRefused) {
  EXPECT_EQ(error_of(with_pool("\"..\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name '..' is not [A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, PoolNameWithAngleBracketIsRefused) {
  EXPECT_EQ(error_of(with_pool("\"<pool>\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name '<pool>' is not "
            "[A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, EmptyPoolNameIsRefused) {
  EXPECT_EQ(error_of(with_pool("\"\"")),
            "/etc/sluice/overrides.toml:3: [[override]]: pool name '' is not [A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, InvalidIspNameIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
isp = "gmail com"
max_smtp_out = 4
reason = "r"
)"),
            "/etc/sluice/overrides.toml:4: [[override]]: ISP name 'gmail com' is not "
            "[A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, InvalidVmtaNameIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
vmta = "../etc"
max_smtp_out = 4
reason = "r"
)"),
            "/etc/sluice/overrides.toml:4: [[override]]: VMTA name '../etc' is not "
            "[A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, EmptyIspIsRefusedRatherThanMeaningEveryIsp) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nisp = \"\"\nmax_smtp_out = 4\nreason = "
                     "\"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]]: ISP name '' is not [A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, MaxSmtpOutZeroIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 0\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 0");
}

TEST(ConfigOverrides, MaxSmtpOutAboveTheMaximumIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 1001\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 1001");
}

TEST(ConfigOverrides, MaxSmtpOutOfTheLargestIntegerIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 9223372036854775807\nreason = "
                     "\"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 9223372036854775807");
}

TEST(ConfigOverrides, MaxSmtpOutNegativeIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = -4\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not -4");
}

TEST(ConfigOverrides, MaxSmtpOutFloatIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4.0\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not 4.0");
}

TEST(ConfigOverrides, MaxSmtpOutStringIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = \"4\"\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from "
            "1 to 1000, not '4'");
}

TEST(ConfigOverrides, FloorZeroIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfloor = 0\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'floor' must be an integer from 1 to "
            "1000, not 0");
}

TEST(ConfigOverrides, FloorAboveTheMaximumIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfloor = 1001\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'floor' must be an integer from 1 to "
            "1000, not 1001");
}

TEST(ConfigOverrides, FloorFloatIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfloor = 2.5\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'floor' must be an integer from 1 to "
            "1000, not 2.5");
}

TEST(ConfigOverrides, FloorStringIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfloor = \"2\"\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'floor' must be an integer from 1 to "
            "1000, not '2'");
}

TEST(ConfigOverrides, CeilingZeroIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nceiling = 0\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'ceiling' must be an integer from 1 to "
            "1000, not 0");
}

TEST(ConfigOverrides, CeilingAboveTheMaximumIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nceiling = 1001\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'ceiling' must be an integer from 1 to "
            "1000, not 1001");
}

TEST(ConfigOverrides, CeilingFloatIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nceiling = 6.5\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'ceiling' must be an integer from 1 to "
            "1000, not 6.5");
}

TEST(ConfigOverrides, CeilingStringIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nceiling = \"six\"\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'ceiling' must be an integer from 1 to "
            "1000, not 'six'");
}

TEST(ConfigOverrides, NoKindIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
isp = "gmail"
reason = "r"
)"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs exactly one of "
            "max_smtp_out, freeze = true, or floor/ceiling");
}

TEST(ConfigOverrides, PinAndFreezeTogetherAreRefused) {
  EXPECT_EQ(error_of(R"(
[global]
freeze = false

[[override]]
pool = "p"
max_smtp_out = 4
freeze = true
reason = "r"
)"),
            "/etc/sluice/overrides.toml:5: [[override]] for pool 'p' needs exactly one of "
            "max_smtp_out, freeze = true, or floor/ceiling");
}

TEST(ConfigOverrides, PinAndFloorTogetherAreRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
floor = 2
reason = "r"
)"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs exactly one of "
            "max_smtp_out, freeze = true, or floor/ceiling");
}

TEST(ConfigOverrides, FreezeAndCeilingTogetherAreRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfreeze = true\nceiling = 3\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs exactly one of "
            "max_smtp_out, freeze = true, or floor/ceiling");
}

TEST(ConfigOverrides, FreezeFalseIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
freeze = false
reason = "r"
)"),
            "/etc/sluice/overrides.toml:4: [[override]] 'freeze' can only be true (remove the "
            "entry to unfreeze), not false");
}

TEST(ConfigOverrides, FreezeNotABooleanIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfreeze = \"true\"\nreason = \"r\"\n"),
            "/etc/sluice/overrides.toml:4: [[override]] 'freeze' can only be true (remove the "
            "entry to unfreeze), not 'true'");
}

TEST(ConfigOverrides, CeilingBelowFloorIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
floor = 5
ceiling = 2
reason = "r"
)"),
            "/etc/sluice/overrides.toml:5: [[override]] 'ceiling' 2 is below its 'floor' 5");
}

TEST(ConfigOverrides, MissingReasonIsRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
)"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs a 'reason'");
}

TEST(ConfigOverrides, EmptyReasonIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"\"\n"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs a 'reason'");
}

TEST(ConfigOverrides, BlankReasonIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \" \\t  \"\n"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs a 'reason'");
}

TEST(ConfigOverrides, ReasonOfOnlyLineBreaksIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"\\n \\r\\n\"\n"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs a 'reason'");
}

TEST(ConfigOverrides, BlankMultiLineReasonIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"\"\"\n\n\"\"\"\n"),
            "/etc/sluice/overrides.toml:2: [[override]] for pool 'p' needs a 'reason'");
}

TEST(ConfigOverrides, AReasonOfSeveralLinesIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"a\\nb\"\n"),
            "/etc/sluice/overrides.toml:5: [[override]] 'reason' must be one line of text, not "
            "'a\\nb'");
}

TEST(ConfigOverrides, ATierSourceWithAControlByteIsRefused) {
  EXPECT_EQ(error_of("[[tier]]\npool = \"p\"\nisp = \"gmail\"\ntier = \"low\"\n"
                     "source = \"a\\u0007b\"\n"),
            "/etc/sluice/overrides.toml:5: [[tier]] 'source' must be one line of text, not "
            "'a\\x07b'");
}

TEST(ConfigOverrides, ReasonKeepsItsSurroundingSpaces) {
  EXPECT_EQ(
      only_override("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = \"  r \"\n").reason,
      "  r ");
}

TEST(ConfigOverrides, ReasonNotAStringIsRefused) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nmax_smtp_out = 4\nreason = true\n"),
            "/etc/sluice/overrides.toml:5: 'reason' must be a string");
}

TEST(ConfigOverrides, ErrorInTheSecondEntryNamesItsLine) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
reason = "r"

[[override]]
pool = "q"
max_smtp_out = 4
)"),
            "/etc/sluice/overrides.toml:7: [[override]] for pool 'q' needs a 'reason'");
}

// ---- [[override]]: duplicates ----------------------------------------------------------------

TEST(ConfigOverrides, TwoEntriesForTheSamePoolAreRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "p"
freeze = true
reason = "b"
)"),
            "/etc/sluice/overrides.toml:7: a second [[override]] for pool 'p', every ISP (the "
            "first is on line 2)");
}

TEST(ConfigOverrides, TwoEntriesForTheSamePoolAndIspAreRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
isp = "gmail"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "q"
max_smtp_out = 4
reason = "b"

[[override]]
pool = "p"
isp = "gmail"
ceiling = 6
reason = "c"
)"),
            "/etc/sluice/overrides.toml:13: a second [[override]] for pool 'p', ISP 'gmail' (the "
            "first is on line 2)");
}

TEST(ConfigOverrides, TwoEntriesForTheSameVmtaAreRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
vmta = "v1"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "p"
vmta = "v1"
max_smtp_out = 5
reason = "b"
)"),
            "/etc/sluice/overrides.toml:8: a second [[override]] for pool 'p', every ISP, VMTA "
            "'v1' (the first is on line 2)");
}

TEST(ConfigOverrides, TwoEntriesForTheSameIspAndVmtaAreRefused) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "p"
isp = "gmail"
vmta = "v1"
max_smtp_out = 4
reason = "a"
[[override]]
pool = "p"
isp = "gmail"
vmta = "v1"
freeze = true
reason = "b"
)"),
            "/etc/sluice/overrides.toml:8: a second [[override]] for pool 'p', ISP 'gmail', VMTA "
            "'v1' (the first is on line 2)");
}

TEST(ConfigOverrides, SamePoolWithDifferentIspsIsAccepted) {
  const OverrideFile file = parsed(R"(
[[override]]
pool = "p"
isp = "gmail"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "p"
isp = "yahoo"
max_smtp_out = 4
reason = "b"

[[override]]
pool = "p"
ceiling = 8
reason = "c"
)");
  ASSERT_THAT(file.overrides, SizeIs(3));
  EXPECT_EQ(file.overrides[0].isp, "gmail");
  EXPECT_EQ(file.overrides[1].isp, "yahoo");
  EXPECT_EQ(file.overrides[2].isp, "");
}

TEST(ConfigOverrides, SamePoolAndIspWithDifferentVmtasIsAccepted) {
  const OverrideFile file = parsed(R"(
[[override]]
pool = "p"
isp = "gmail"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "p"
isp = "gmail"
vmta = "v1"
max_smtp_out = 2
reason = "b"

[[override]]
pool = "p"
isp = "gmail"
vmta = "v2"
freeze = true
reason = "c"
)");
  ASSERT_THAT(file.overrides, SizeIs(3));
  EXPECT_EQ(file.overrides[1].vmta, "v1");
  EXPECT_EQ(file.overrides[2].vmta, "v2");
}

TEST(ConfigOverrides, SameIspInDifferentPoolsIsAccepted) {
  const OverrideFile file = parsed(R"(
[[override]]
pool = "p"
isp = "gmail"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "q"
isp = "gmail"
max_smtp_out = 4
reason = "b"
)");
  EXPECT_THAT(file.overrides, SizeIs(2));
}

// ---- [[tier]] --------------------------------------------------------------------------------

TEST(ConfigOverrides, TierIsRead) {
  const OverrideFile file = parsed(R"(
[[tier]]
pool = "high-rep-pool"
isp = "gmail"
tier = "warming"
source = "new IPs since 2026-11-20"
)");
  ASSERT_THAT(file.tiers, SizeIs(1));
  const TierEntry& t = file.tiers[0];
  EXPECT_EQ(t.pool, "high-rep-pool");
  EXPECT_EQ(t.isp, "gmail");
  EXPECT_EQ(t.tier, "warming");
  EXPECT_EQ(t.source, "new IPs since 2026-11-20");
  EXPECT_EQ(t.line, 2);
  EXPECT_TRUE(file.overrides.empty());
}

TEST(ConfigOverrides, EveryTierNameIsAccepted) {
  const OverrideFile file = parsed(R"(
[[tier]]
pool = "p"
isp = "a"
tier = "high"
source = "s"
[[tier]]
pool = "p"
isp = "b"
tier = "medium"
source = "s"
[[tier]]
pool = "p"
isp = "c"
tier = "low"
source = "s"
[[tier]]
pool = "p"
isp = "d"
tier = "warming"
source = "s"
)");
  ASSERT_THAT(file.tiers, SizeIs(4));
  EXPECT_EQ(file.tiers[0].tier, "high");
  EXPECT_EQ(file.tiers[1].tier, "medium");
  EXPECT_EQ(file.tiers[2].tier, "low");
  EXPECT_EQ(file.tiers[3].tier, "warming");
  EXPECT_EQ(file.tiers[3].line, 17);
}

TEST(ConfigOverrides, TierMissingPoolIsRefused) {
  EXPECT_EQ(error_of("\n[[tier]]\nisp = \"gmail\"\ntier = \"low\"\nsource = \"s\"\n"),
            "/etc/sluice/overrides.toml:2: [[tier]] needs 'pool'");
}

TEST(ConfigOverrides, TierMissingIspIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
tier = "low"
source = "s"
)"),
            "/etc/sluice/overrides.toml:2: [[tier]] for pool 'p' needs 'isp'");
}

TEST(ConfigOverrides, TierMissingTierIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
isp = "gmail"
source = "s"
)"),
            "/etc/sluice/overrides.toml:2: [[tier]] for pool 'p' needs 'tier'");
}

TEST(ConfigOverrides, TierMissingSourceIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
)"),
            "/etc/sluice/overrides.toml:2: [[tier]] for pool 'p' needs a 'source' (where the tier "
            "comes from)");
}

TEST(ConfigOverrides, TierBlankSourceIsRefused) {
  EXPECT_EQ(error_of("\n[[tier]]\npool = \"p\"\nisp = \"gmail\"\ntier = \"low\"\nsource = \" "
                     "\"\n"),
            "/etc/sluice/overrides.toml:2: [[tier]] for pool 'p' needs a 'source' (where the tier "
            "comes from)");
}

TEST(ConfigOverrides, TierSourceOfOnlyLineBreaksIsRefused) {
  EXPECT_EQ(error_of("\n[[tier]]\npool = \"p\"\nisp = \"gmail\"\ntier = \"low\"\nsource = "
                     "\"\\n\"\n"),
            "/etc/sluice/overrides.toml:2: [[tier]] for pool 'p' needs a 'source' (where the tier "
            "comes from)");
}

TEST(ConfigOverrides, BadTierNameIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
isp = "gmail"
tier = "excellent"
source = "s"
)"),
            "/etc/sluice/overrides.toml:5: [[tier]] 'tier' must be high, medium, low or warming, "
            "not 'excellent'");
}

TEST(ConfigOverrides, TierNameIsCaseSensitive) {
  EXPECT_EQ(error_of("\n[[tier]]\npool = \"p\"\nisp = \"gmail\"\ntier = \"High\"\nsource = "
                     "\"s\"\n"),
            "/etc/sluice/overrides.toml:5: [[tier]] 'tier' must be high, medium, low or warming, "
            "not 'High'");
}

TEST(ConfigOverrides, TierNotAStringIsRefused) {
  EXPECT_EQ(error_of("\n[[tier]]\npool = \"p\"\nisp = \"gmail\"\ntier = 1\nsource = \"s\"\n"),
            "/etc/sluice/overrides.toml:5: 'tier' must be a string");
}

TEST(ConfigOverrides, TierInvalidIspNameIsRefused) {
  EXPECT_EQ(error_of("\n[[tier]]\npool = \"p\"\nisp = \"g mail\"\ntier = \"low\"\nsource = "
                     "\"s\"\n"),
            "/etc/sluice/overrides.toml:4: [[tier]]: ISP name 'g mail' is not [A-Za-z0-9._-]+");
}

TEST(ConfigOverrides, TierUnknownKeyIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
source = "s"
reason = "r"
)"),
            "/etc/sluice/overrides.toml:7: unknown key 'reason' in [[tier]]");
}

TEST(ConfigOverrides, DuplicateTierIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
source = "a"

[[tier]]
pool = "p"
isp = "gmail"
tier = "high"
source = "b"
)"),
            "/etc/sluice/overrides.toml:8: a second [[tier]] for pool 'p', ISP 'gmail' (the "
            "first is on line 2)");
}

TEST(ConfigOverrides, TiersForDifferentIspsOrPoolsAreAccepted) {
  const OverrideFile file = parsed(R"(
[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
source = "a"
[[tier]]
pool = "p"
isp = "yahoo"
tier = "low"
source = "b"
[[tier]]
pool = "q"
isp = "gmail"
tier = "low"
source = "c"
)");
  EXPECT_THAT(file.tiers, SizeIs(3));
}

TEST(ConfigOverrides, ATierAndAnOverrideForTheSamePairAreAccepted) {
  const OverrideFile file = parsed(R"(
[[override]]
pool = "p"
isp = "gmail"
max_smtp_out = 4
reason = "r"

[[tier]]
pool = "p"
isp = "gmail"
tier = "low"
source = "s"
)");
  EXPECT_THAT(file.overrides, SizeIs(1));
  EXPECT_THAT(file.tiers, SizeIs(1));
}

TEST(ConfigOverrides, ErrorsNeverSpanLines) {
  EXPECT_THAT(error_of(with_pool("\"bad\\r\\nname\"")), Not(HasSubstr("\n")));
}

}  // namespace
}  // namespace sluice::config
