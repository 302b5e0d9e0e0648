#include "adapters/time_parse.h"

#include <gtest/gtest.h>

namespace sluice::adapters {
namespace {

constexpr UnixSeconds k20261127_10 = 1795773600;  // 2026-11-27T10:00:00Z

TEST(ParseTime, PowerMtaIsoWithOffset) {
  EXPECT_EQ(parse_time("2026-11-27 10:00:00+0000"), k20261127_10);
  EXPECT_EQ(parse_time("2026-11-27 11:00:00+0100"), k20261127_10);
  EXPECT_EQ(parse_time("2026-11-27 05:30:00-04:30"), k20261127_10);
  EXPECT_EQ(parse_time("2026-11-27 10:00:00 +0000"), k20261127_10);
}

TEST(ParseTime, Iso8601ZuluAndWithoutOffset) {
  EXPECT_EQ(parse_time("2026-11-27T10:00:00Z"), k20261127_10);
  EXPECT_EQ(parse_time("2026-11-27T10:00:00"), k20261127_10);
  EXPECT_EQ(parse_time("2026-11-27 10:00:00.123+0000"), k20261127_10);
}

TEST(ParseTime, UnixSeconds) {
  EXPECT_EQ(parse_time("1795773600"), k20261127_10);
  EXPECT_EQ(parse_time("1795773600.25"), k20261127_10);
  EXPECT_EQ(parse_time("0"), 0);
}

TEST(ParseTime, RejectsWhatIsNotATime) {
  for (const char* bad :
       {"", "yesterday", "2026-13-45 99:00:00+0000", "2026-02-30 10:00:00", "2026-11-27 24:00:00",
        "2026-11-27 10:00:00+2500", "12ab", "2026-11-27 10:00:00+00", "2026-11-27X10:00:00", "-5",
        "1234567890123456"}) {
    EXPECT_FALSE(parse_time(bad).has_value()) << bad;
  }
}

TEST(ParseTime, LeapDay) {
  EXPECT_TRUE(parse_time("2028-02-29 00:00:00").has_value());
  EXPECT_FALSE(parse_time("2026-02-29 00:00:00").has_value());
}

TEST(FormatTime, RoundTrips) {
  EXPECT_EQ(format_time(k20261127_10), "2026-11-27T10:00:00Z");
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(parse_time(format_time(951782400)), 951782400);  // 2000-02-29
}

TEST(ParseDuration, PowerMtaIntervals) {
  EXPECT_EQ(parse_duration("90s"), 90);
  EXPECT_EQ(parse_duration("15m"), 900);
  EXPECT_EQ(parse_duration("2h"), 7200);
  EXPECT_EQ(parse_duration("1w2d12h"), 7 * 86400 + 2 * 86400 + 12 * 3600);
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("10").has_value());
  EXPECT_FALSE(parse_duration("5x").has_value());
}

}  // namespace
}  // namespace sluice::adapters
