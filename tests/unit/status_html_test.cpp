#include "cli/status_html.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace sluice::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr UnixSeconds kNow = 1795780800;  // 2026-11-27T12:00:00Z
constexpr UnixSeconds kDay = 86400;

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

Decision decision(Rule rule, UnixSeconds at, int from, int to, std::string reason) {
  Decision d;
  d.pool = "pool-a";
  d.isp = "gmail";
  d.rule = rule;
  d.at = at;
  d.old_value = from;
  d.new_value = to;
  d.reason = std::move(reason);
  return d;
}

PairPicture incident() {
  PairPicture p;
  p.pool = "pool-a";
  p.isp = "gmail";
  p.value = 6;
  p.cap = 10;
  p.phase = "steady";
  p.decisions = {decision(Rule::severe_cut, kNow - 2 * kDay, 8, 4, "33% <throttled> & refused"),
                 decision(Rule::recover, kNow - kDay, 4, 6, "probe")};
  PairBucket quiet;
  quiet.start = kNow - 3 * kDay;
  quiet.figures.attempts = 100;
  PairBucket burst;
  burst.start = kNow - 2 * kDay - 600;
  burst.figures.attempts = 100;
  burst.figures.by_class[static_cast<int>(DeferralClass::connection)] = 40;
  p.buckets = {quiet, burst};
  return p;
}

TEST(StatusHtml, MarksEveryDecisionOnTheValueLine) {
  const std::string page = status_html({incident()}, kNow - 7 * kDay, kNow);
  EXPECT_EQ(count(page, "<circle class=\"decision "), 2u);
  EXPECT_THAT(page, HasSubstr("<circle class=\"decision severe_cut\""));
  EXPECT_THAT(page, HasSubstr("<circle class=\"decision recover\""));
  // The reason is escaped, in the dot's tooltip.
  EXPECT_THAT(page, HasSubstr("8 -&gt; 4: 33% &lt;throttled&gt; &amp; refused</title>"));
  // A step line: the start, two points per decision, the end.
  const auto line = page.find("<polyline class=\"setting\" points=\"");
  ASSERT_NE(line, std::string::npos);
  const std::string points = page.substr(line, page.find('"', line + 35) - line);
  EXPECT_EQ(count(points, ","), 6u) << points;
  EXPECT_THAT(page, HasSubstr("<line class=\"cap\""));
  EXPECT_THAT(page, HasSubstr("<h2>pool-a / gmail: 6 (cap 10), steady</h2>"));
}

TEST(StatusHtml, DrawsTheDeferralRateOfEachClassThatHasOne) {
  const std::string page = status_html({incident()}, kNow - 7 * kDay, kNow);
  EXPECT_THAT(page, HasSubstr("<polyline class=\"class-connection\""));
  EXPECT_THAT(page, HasSubstr("deferred 40%"));
  // Quiet classes get a flat line at 0, never a missing chart.
  EXPECT_THAT(page, HasSubstr("<polyline class=\"class-rate\""));
}

TEST(StatusHtml, IsOneSelfContainedPage) {
  PairPicture fresh;
  fresh.pool = "pool-b";
  fresh.isp = "yahoo";
  fresh.cap = 5;
  fresh.phase = "steady";
  const std::string page = status_html({incident(), fresh}, kNow - 7 * kDay, kNow);
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(page.ends_with("</html>\n"));
  EXPECT_THAT(page, Not(HasSubstr("src=")));
  EXPECT_THAT(page, Not(HasSubstr("<link")));
  EXPECT_THAT(page, Not(HasSubstr("http")));
  EXPECT_THAT(page, HasSubstr("<h2>pool-b / yahoo: no state yet (cap 5), steady</h2>"));
  EXPECT_EQ(count(page, "<svg "), 4u);
}

}  // namespace
}  // namespace sluice::cli
