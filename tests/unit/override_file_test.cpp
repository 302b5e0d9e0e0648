#include "adapters/override_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace sluice::adapters {
namespace {

namespace fs = std::filesystem;
using ::testing::SizeIs;
using ::testing::StartsWith;

// 2026-12-01T00:00:00Z
constexpr UnixSeconds kDecemberFirst = 1796083200;

KnownPools known() {
  KnownPools pools;
  pools["high-rep-pool"] = KnownPool{{"gmail", "yahoo"}, {"gmail-ip-1", "gmail-ip-2"}};
  pools["bulk"] = KnownPool{{}, {}};
  return pools;
}

// The texts below are raw strings that start with a newline, so their first line is line 2.
constexpr const char* kValid = R"(
[global]
freeze = false
reason = "thawed"

[[override]]
pool = "high-rep-pool"
isp = "gmail"
max_smtp_out = 4
reason = "pinned for the incident"
)";

Overrides checked(const std::string& text, const KnownPools& pools = known()) {
  Expected<Overrides> result = parse_checked_overrides(text, "overrides.toml", pools);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? *result : Overrides{};
}

std::string error_of(const std::string& text, const KnownPools& pools = known()) {
  Expected<Overrides> result = parse_checked_overrides(text, "overrides.toml", pools);
  EXPECT_FALSE(result.ok()) << text;
  return result.ok() ? std::string() : result.error().message;
}

// The one entry of a text.
Override only_entry(const std::string& text) {
  const Overrides o = checked(text);
  EXPECT_THAT(o.entries, SizeIs(1));
  return o.entries.empty() ? Override{} : o.entries.front();
}

// ---- checked_overrides: the conversion -------------------------------------------------------

TEST(OverrideFileCheck, EmptyParsedFileIsNoOverrides) {
  const Expected<Overrides> result = checked_overrides(config::OverrideFile{}, known());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value(), Overrides{});
}

TEST(OverrideFileCheck, GlobalFreezeAndReasonAreCarried) {
  const Overrides o = checked("\n[global]\nfreeze = true\nreason = \"incident 4711\"\n");
  EXPECT_TRUE(o.freeze_all);
  EXPECT_EQ(o.freeze_reason, "incident 4711");
  EXPECT_TRUE(o.entries.empty());
  EXPECT_TRUE(o.tiers.empty());
}

TEST(OverrideFileCheck, PinIsConverted) {
  const Override e = only_entry(R"(
[[override]]
pool = "high-rep-pool"
isp = "gmail"
vmta = "gmail-ip-2"
max_smtp_out = 4
until = "2026-12-01T00:00:00Z"
reason = "pinned for the incident"
)");
  Override expected;
  expected.pool = "high-rep-pool";
  expected.isp = "gmail";
  expected.vmta = "gmail-ip-2";
  expected.kind = OverrideKind::pin;
  expected.value = 4;
  expected.until = kDecemberFirst;
  expected.reason = "pinned for the incident";
  expected.line = 2;
  EXPECT_EQ(e, expected);
}

TEST(OverrideFileCheck, FreezeIsConverted) {
  const Override e = only_entry(R"(
[[override]]
pool = "bulk"
freeze = true
reason = "hold"
)");
  EXPECT_EQ(e.pool, "bulk");
  EXPECT_EQ(e.isp, "");
  EXPECT_EQ(e.vmta, "");
  EXPECT_EQ(e.kind, OverrideKind::freeze);
  EXPECT_EQ(e.value, 0);
  EXPECT_EQ(e.floor, std::nullopt);
  EXPECT_EQ(e.ceiling, std::nullopt);
  EXPECT_EQ(e.until, std::nullopt);
  EXPECT_EQ(e.reason, "hold");
  EXPECT_EQ(e.line, 2);
}

TEST(OverrideFileCheck, FloorAndCeilingAreConverted) {
  const Override e = only_entry(R"(

[[override]]
pool = "high-rep-pool"
floor = 2
ceiling = 6
until = "2026-12-01 00:00:00+01:00"
reason = "between 2 and 6"
)");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.value, 0);
  EXPECT_EQ(e.floor, 2);
  EXPECT_EQ(e.ceiling, 6);
  EXPECT_EQ(e.until, kDecemberFirst - 3600);
  EXPECT_EQ(e.line, 3);
}

TEST(OverrideFileCheck, FloorAloneLeavesCeilingEmpty) {
  const Override e =
      only_entry("\n[[override]]\npool = \"bulk\"\nfloor = 3\nreason = \"at least 3\"\n");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.floor, 3);
  EXPECT_EQ(e.ceiling, std::nullopt);
}

TEST(OverrideFileCheck, CeilingAloneLeavesFloorEmpty) {
  const Override e =
      only_entry("\n[[override]]\npool = \"bulk\"\nceiling = 1000\nreason = \"at most 1000\"\n");
  EXPECT_EQ(e.kind, OverrideKind::bounds);
  EXPECT_EQ(e.floor, std::nullopt);
  EXPECT_EQ(e.ceiling, 1000);
}

TEST(OverrideFileCheck, EntriesKeepTheFileOrder) {
  const Overrides o = checked(R"(
[[override]]
pool = "high-rep-pool"
isp = "yahoo"
max_smtp_out = 2
reason = "a"

[[override]]
pool = "high-rep-pool"
max_smtp_out = 8
reason = "b"
)");
  ASSERT_THAT(o.entries, SizeIs(2));
  EXPECT_EQ(o.entries[0].isp, "yahoo");
  EXPECT_EQ(o.entries[0].value, 2);
  EXPECT_EQ(o.entries[0].line, 2);
  EXPECT_EQ(o.entries[1].isp, "");
  EXPECT_EQ(o.entries[1].value, 8);
  EXPECT_EQ(o.entries[1].line, 8);
}

TEST(OverrideFileCheck, TiersAreParsedToTheControllersTier) {
  KnownPools pools = known();
  pools["bulk"].isps = {"gmail", "yahoo"};
  const Overrides o = checked(R"(
[[tier]]
pool = "high-rep-pool"
isp = "gmail"
tier = "high"
source = "a"
[[tier]]
pool = "high-rep-pool"
isp = "yahoo"
tier = "medium"
source = "b"
[[tier]]
pool = "bulk"
isp = "gmail"
tier = "low"
source = "c"
[[tier]]
pool = "bulk"
isp = "yahoo"
tier = "warming"
source = "d"
)",
                              pools);
  ASSERT_THAT(o.tiers, SizeIs(4));
  EXPECT_EQ(o.tiers[0], (TierOverride{"high-rep-pool", "gmail", Tier::high, "a", 2}));
  EXPECT_EQ(o.tiers[1], (TierOverride{"high-rep-pool", "yahoo", Tier::medium, "b", 7}));
  EXPECT_EQ(o.tiers[2], (TierOverride{"bulk", "gmail", Tier::low, "c", 12}));
  EXPECT_EQ(o.tiers[3], (TierOverride{"bulk", "yahoo", Tier::warming, "d", 17}));
}

TEST(OverrideFileCheck, ConvertsAParsedFileDirectly) {
  config::OverrideFile file;
  file.source = "x.toml";
  file.freeze_all = true;
  file.freeze_reason = "why";
  config::OverrideEntry e;
  e.pool = "bulk";
  e.kind = config::OverrideKind::bounds;
  e.floor = 1;
  e.ceiling = 9;
  e.reason = "r";
  e.line = 12;
  file.overrides.push_back(e);
  const Expected<Overrides> result = checked_overrides(file, known());
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->freeze_all);
  EXPECT_EQ(result->freeze_reason, "why");
  ASSERT_THAT(result->entries, SizeIs(1));
  EXPECT_EQ(result->entries[0].kind, OverrideKind::bounds);
  EXPECT_EQ(result->entries[0].floor, 1);
  EXPECT_EQ(result->entries[0].ceiling, 9);
  EXPECT_EQ(result->entries[0].line, 12);
}

// ---- checked_overrides: names against the configuration --------------------------------------

TEST(OverrideFileCheck, UnknownPoolIsRefusedAndThePoolsListed) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "high-rep-pool"
max_smtp_out = 4
reason = "a"

[[override]]
pool = "low-rep-pool"
max_smtp_out = 4
reason = "b"
)"),
            "overrides.toml:7: unknown pool 'low-rep-pool' (the configuration's pools: bulk, "
            "high-rep-pool)");
}

TEST(OverrideFileCheck, UnknownPoolWithNoPoolsConfigured) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"p\"\nfreeze = true\nreason = \"r\"\n", {}),
            "overrides.toml:2: unknown pool 'p' (the configuration's pools: none)");
}

TEST(OverrideFileCheck, IspNotOfThatPoolIsRefusedAndItsIspsListed) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "high-rep-pool"
isp = "hotmail"
max_smtp_out = 4
reason = "r"
)"),
            "overrides.toml:2: pool 'high-rep-pool' has no ISP 'hotmail' (its ISPs: gmail, "
            "yahoo)");
}

TEST(OverrideFileCheck, IspOfAPoolWithoutIsps) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"bulk\"\nisp = \"gmail\"\nfreeze = true\nreason = "
                     "\"r\"\n"),
            "overrides.toml:2: pool 'bulk' has no ISP 'gmail' (its ISPs: none)");
}

TEST(OverrideFileCheck, VmtaNotOfThatPoolIsRefusedAndItsVmtasListed) {
  EXPECT_EQ(error_of(R"(
[[override]]
pool = "high-rep-pool"
isp = "gmail"
vmta = "bulk-ip-1"
max_smtp_out = 4
reason = "r"
)"),
            "overrides.toml:2: pool 'high-rep-pool' has no VMTA 'bulk-ip-1' (its VMTAs: "
            "gmail-ip-1, gmail-ip-2)");
}

TEST(OverrideFileCheck, VmtaOfAnotherPoolIsRefused) {
  KnownPools pools = known();
  pools["bulk"].vmtas = {"bulk-ip-1"};
  EXPECT_EQ(error_of("\n[[override]]\npool = \"high-rep-pool\"\nvmta = \"bulk-ip-1\"\nfreeze = "
                     "true\nreason = \"r\"\n",
                     pools),
            "overrides.toml:2: pool 'high-rep-pool' has no VMTA 'bulk-ip-1' (its VMTAs: "
            "gmail-ip-1, gmail-ip-2)");
}

TEST(OverrideFileCheck, TierForUnknownPoolIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "nope"
isp = "gmail"
tier = "low"
source = "s"
)"),
            "overrides.toml:2: unknown pool 'nope' (the configuration's pools: bulk, "
            "high-rep-pool)");
}

TEST(OverrideFileCheck, TierForIspNotOfThatPoolIsRefused) {
  EXPECT_EQ(error_of(R"(
[[tier]]
pool = "high-rep-pool"
isp = "aol"
tier = "low"
source = "s"
)"),
            "overrides.toml:2: pool 'high-rep-pool' has no ISP 'aol' (its ISPs: gmail, yahoo)");
}

TEST(OverrideFileCheck, ParseErrorsComeBackAsTheyAre) {
  EXPECT_EQ(error_of("\n[[override]]\npool = \"bulk\"\nmax_smtp_out = 0\nreason = \"r\"\n"),
            "overrides.toml:4: [[override]] 'max_smtp_out' must be an integer from 1 to 1000, "
            "not 0");
}

// ---- OverrideFile: the file on disk -----------------------------------------------------------

class OverrideFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sluice-overrides-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Mode 0644 whatever the umask: a file group or others may write is refused.
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
  }

  fs::path dir_;
};

TEST_F(OverrideFileTest, MissingFileIsNoOverrides) {
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value());
  EXPECT_EQ(*r.overrides, Overrides{});
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, "");
}

TEST_F(OverrideFileTest, MissingDirectoryIsNoOverrides) {
  OverrideFile source(path("no-such-dir/overrides.toml"), known());
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value());
  EXPECT_EQ(*r.overrides, Overrides{});
  EXPECT_EQ(r.error, "");
}

TEST_F(OverrideFileTest, EmptyFileIsNoOverrides) {
  write(path("overrides.toml"), "");
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_EQ(*r.overrides, Overrides{});
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, "");
}

TEST_F(OverrideFileTest, ValidFileGivesItsOverridesAndItsText) {
  write(path("overrides.toml"), kValid);
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.text, kValid);
  EXPECT_FALSE(r.overrides->freeze_all);
  EXPECT_EQ(r.overrides->freeze_reason, "thawed");
  ASSERT_THAT(r.overrides->entries, SizeIs(1));
  const Override& e = r.overrides->entries[0];
  EXPECT_EQ(e.pool, "high-rep-pool");
  EXPECT_EQ(e.isp, "gmail");
  EXPECT_EQ(e.kind, OverrideKind::pin);
  EXPECT_EQ(e.value, 4);
  EXPECT_EQ(e.reason, "pinned for the incident");
  EXPECT_EQ(e.line, 6);
}

TEST_F(OverrideFileTest, LargeFileIsReadWhole) {
  // Larger than one read() of the adapter's buffer.
  std::string text = "\n[global]\nfreeze = true\nreason = \"big\"\n";
  text += "# " + std::string(20000, 'x') + "\n";
  text += "[[override]]\npool = \"bulk\"\nfreeze = true\nreason = \"r\"\n";
  write(path("overrides.toml"), text);
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_EQ(r.text, text);
  EXPECT_TRUE(r.overrides->freeze_all);
  ASSERT_THAT(r.overrides->entries, SizeIs(1));
  EXPECT_EQ(r.overrides->entries[0].line, 6);
}

TEST_F(OverrideFileTest, BrokenFileGivesAnErrorAndNoOverrides) {
  write(path("overrides.toml"),
        "\n[[override]]\npool = \"bulk\"\nfreeze = false\nreason = \"r\"\n");
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, path("overrides.toml") +
                         ":4: [[override]] 'freeze' can only be true (remove the entry to "
                         "unfreeze), not false");
}

TEST_F(OverrideFileTest, TomlSyntaxErrorGivesAnErrorNamingFileAndLine) {
  write(path("overrides.toml"), "\n[global]\nfreeze = tru\n");
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_THAT(r.error, StartsWith(path("overrides.toml") + ":3: "));
}

TEST_F(OverrideFileTest, UnknownPoolInTheFileGivesAnError) {
  write(path("overrides.toml"), "\n[[override]]\npool = \"gone\"\nfreeze = true\nreason = \"r\"\n");
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.error, path("overrides.toml") +
                         ":2: unknown pool 'gone' (the configuration's pools: bulk, "
                         "high-rep-pool)");
}

// Refused like a broken file (the cycle keeps the last valid overrides and warns); the rule
// itself is tested in file_safety_test.cpp.
TEST_F(OverrideFileTest, FileOthersMayWriteGivesAnErrorAndNoOverrides) {
  write(path("overrides.toml"), kValid);
  fs::permissions(path("overrides.toml"), fs::perms::others_write, fs::perm_options::add);
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, path("overrides.toml") +
                         ": writable by group or others (mode 0646); sluice refuses it because "
                         "it steers PowerMTA's configuration: chmod go-w " +
                         path("overrides.toml"));
  // The text stored as the last valid one still parses: only the file on disk is refused.
  EXPECT_TRUE(source.parse(kValid).overrides.has_value());
}

TEST_F(OverrideFileTest, DirectoryGivesAnError) {
  fs::create_directory(path("overrides.toml"));
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, path("overrides.toml") + ": cannot be read");
}

TEST_F(OverrideFileTest, UnreadableFileGivesAnError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  write(path("overrides.toml"), kValid);
  fs::permissions(path("overrides.toml"), fs::perms::none);
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.error, path("overrides.toml") + ": Permission denied");
}

TEST_F(OverrideFileTest, PathThroughAFileGivesAnError) {
  write(path("plain"), "");
  OverrideFile source(path("plain/overrides.toml"), known());
  const OverrideRead r = source.read();
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.error, path("plain/overrides.toml") + ": Not a directory");
}

TEST_F(OverrideFileTest, ReadAgainSeesTheNewText) {
  const std::string file = path("overrides.toml");
  OverrideFile source(file, known());
  write(file, kValid);
  ASSERT_TRUE(source.read().overrides.has_value());
  write(file, "\n[global]\nfreeze = true\n");
  const OverrideRead r = source.read();
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_TRUE(r.overrides->freeze_all);
  EXPECT_TRUE(r.overrides->entries.empty());
  EXPECT_EQ(r.text, "\n[global]\nfreeze = true\n");
}

TEST_F(OverrideFileTest, ParseRechecksAStoredText) {
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.parse(kValid);
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.text, kValid);
  ASSERT_THAT(r.overrides->entries, SizeIs(1));
  EXPECT_EQ(r.overrides->entries[0].value, 4);
}

TEST_F(OverrideFileTest, ParseMatchesReadOfTheSameText) {
  write(path("overrides.toml"), kValid);
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead from_file = source.read();
  const OverrideRead from_text = source.parse(kValid);
  ASSERT_TRUE(from_file.overrides.has_value());
  ASSERT_TRUE(from_text.overrides.has_value());
  EXPECT_EQ(*from_file.overrides, *from_text.overrides);
}

TEST_F(OverrideFileTest, ParseOfAnEmptyTextIsNoOverrides) {
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.parse("");
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_EQ(*r.overrides, Overrides{});
}

TEST_F(OverrideFileTest, ParseRefusesATextThatNoLongerFitsTheConfiguration) {
  // Valid when stored; since then the configuration lost the ISP.
  KnownPools pools = known();
  pools["high-rep-pool"].isps = {"yahoo"};
  OverrideFile source(path("overrides.toml"), pools);
  const OverrideRead r = source.parse(kValid);
  EXPECT_FALSE(r.overrides.has_value());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.error, path("overrides.toml") +
                         ":6: pool 'high-rep-pool' has no ISP 'gmail' (its ISPs: yahoo)");
}

TEST_F(OverrideFileTest, ParseDoesNotTouchTheFile) {
  write(path("overrides.toml"), "\n[global]\nfreeze = true\n");
  OverrideFile source(path("overrides.toml"), known());
  const OverrideRead r = source.parse(kValid);
  ASSERT_TRUE(r.overrides.has_value()) << r.error;
  EXPECT_FALSE(r.overrides->freeze_all);
  EXPECT_THAT(r.overrides->entries, SizeIs(1));
}

}  // namespace
}  // namespace sluice::adapters
