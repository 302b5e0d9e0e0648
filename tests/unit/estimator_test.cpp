#include "controller/estimator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

using C = DeferralClass;

constexpr UnixSeconds kNow = 1795773600;  // 2026-11-27T10:00:00Z, a multiple of 300
constexpr UnixSeconds kHour = 3600;
constexpr UnixSeconds kDay = 86400;

SignalBucket bucket(UnixSeconds start, std::string pool, std::string isp, std::string ip, C c,
                    BucketCounts counts) {
  return SignalBucket{start, std::move(pool), std::move(isp), std::move(ip), c, counts};
}

// delivered, bounced, deferred (t), deferred_queue (tq).
BucketCounts counts(std::uint64_t d, std::uint64_t b, std::uint64_t t, std::uint64_t tq) {
  return BucketCounts{d, b, t, tq};
}

std::uint64_t of(const SignalFigures& f, C c) {
  return f.by_class[static_cast<int>(c)];
}

PairBucket at(UnixSeconds start, std::uint64_t attempts, std::uint64_t throttle = 0) {
  PairBucket b;
  b.start = start;
  b.figures.attempts = attempts;
  b.figures.deferrals = throttle;
  b.figures.throttle = throttle;
  b.figures.by_class[static_cast<int>(C::connection)] = throttle;
  return b;
}

// ---------------------------------------------------------------------------------------------
// series_by_pair

TEST(EstimatorSeries, SumsOverSourceIpsAndClasses) {
  const std::vector<SignalBucket> buckets = {
      bucket(kNow, "p", "gmail", "203.0.113.1", C::none, counts(100, 2, 0, 0)),
      bucket(kNow, "p", "gmail", "203.0.113.2", C::none, counts(50, 0, 0, 0)),
      bucket(kNow, "p", "gmail", "203.0.113.1", C::connection, counts(0, 0, 5, 7)),
      bucket(kNow, "p", "gmail", "203.0.113.2", C::reputation, counts(0, 0, 3, 0)),
      bucket(kNow, "p", "gmail", "203.0.113.2", C::recipient, counts(0, 0, 4, 1)),
      bucket(kNow, "p", "gmail", "203.0.113.1", C::other, counts(0, 0, 2, 0)),
  };
  const auto series = series_by_pair(buckets);
  ASSERT_EQ(series.size(), 1u);
  const std::vector<PairBucket>& s = series.at({"p", "gmail"});
  ASSERT_EQ(s.size(), 1u);
  const SignalFigures& f = s[0].figures;
  EXPECT_EQ(s[0].start, kNow);
  EXPECT_EQ(f.attempts, 102u + 50 + 12 + 3 + 5 + 2);
  EXPECT_EQ(f.deferrals, 12u + 3 + 5 + 2);
  EXPECT_EQ(f.throttle, 12u + 3);  // connection and reputation
  EXPECT_EQ(f.throttle_tq, 7u);    // the recipient tq is not a refused connection
  EXPECT_EQ(of(f, C::connection), 12u);
  EXPECT_EQ(of(f, C::reputation), 3u);
  EXPECT_EQ(of(f, C::recipient), 5u);
  EXPECT_EQ(of(f, C::other), 2u);
  EXPECT_EQ(of(f, C::none), 0u);
}

TEST(EstimatorSeries, ThrottleVersusOther) {
  const std::vector<SignalBucket> buckets = {
      bucket(kNow, "p", "gmail", "ip", C::none, counts(900, 0, 0, 0)),
      bucket(kNow, "p", "gmail", "ip", C::rate, counts(0, 0, 40, 0)),
      bucket(kNow, "p", "gmail", "ip", C::config, counts(0, 0, 30, 0)),
      bucket(kNow, "p", "gmail", "ip", C::recipient, counts(0, 0, 30, 0)),
  };
  const auto series = series_by_pair(buckets);
  const SignalFigures& f = series.at({"p", "gmail"})[0].figures;
  EXPECT_DOUBLE_EQ(f.deferral_rate(), 0.10);
  EXPECT_DOUBLE_EQ(f.throttle_rate(), 0.04);
  EXPECT_DOUBLE_EQ(f.other_rate(), 0.06);
  EXPECT_EQ(f.dominant_throttle_class(), C::rate);
}

TEST(EstimatorSeries, RatesOfNothingAreZero) {
  const SignalFigures f;
  EXPECT_EQ(f.deferral_rate(), 0.0);
  EXPECT_EQ(f.throttle_rate(), 0.0);
  EXPECT_EQ(f.other_rate(), 0.0);
  EXPECT_EQ(f.dominant_throttle_class(), C::none);
}

TEST(EstimatorSeries, SeparatesPairsAndSortsEachSeriesByStart) {
  const std::vector<SignalBucket> buckets = {
      bucket(kNow + 600, "p", "gmail", "ip", C::none, counts(3, 0, 0, 0)),
      bucket(kNow, "p", "yahoo", "ip", C::none, counts(7, 0, 0, 0)),
      bucket(kNow, "p", "gmail", "ip", C::none, counts(1, 0, 0, 0)),
      bucket(kNow, "q", "gmail", "ip", C::none, counts(9, 0, 0, 0)),
      bucket(kNow + 300, "p", "gmail", "ip", C::none, counts(2, 0, 0, 0)),
      bucket(kNow, "p", "gmail", "ip2", C::none, counts(10, 0, 0, 0)),
  };
  const auto series = series_by_pair(buckets);
  ASSERT_EQ(series.size(), 3u);
  const std::vector<PairBucket>& gmail = series.at({"p", "gmail"});
  ASSERT_EQ(gmail.size(), 3u);
  EXPECT_EQ(gmail[0].start, kNow);
  EXPECT_EQ(gmail[0].figures.attempts, 11u);
  EXPECT_EQ(gmail[1].start, kNow + 300);
  EXPECT_EQ(gmail[1].figures.attempts, 2u);
  EXPECT_EQ(gmail[2].start, kNow + 600);
  EXPECT_EQ(gmail[2].figures.attempts, 3u);
  EXPECT_EQ(series.at({"p", "yahoo"})[0].figures.attempts, 7u);
  EXPECT_EQ(series.at({"q", "gmail"})[0].figures.attempts, 9u);
}

TEST(EstimatorSeries, TheSameBucketTwiceAddsUp) {
  // Stored buckets and freshly read ones of the same key meet in one cycle.
  const std::vector<SignalBucket> buckets = {
      bucket(kNow, "p", "gmail", "ip", C::connection, counts(0, 0, 5, 2)),
      bucket(kNow, "p", "gmail", "ip", C::connection, counts(0, 0, 1, 3)),
  };
  const auto series = series_by_pair(buckets);
  const SignalFigures& f = series.at({"p", "gmail"})[0].figures;
  EXPECT_EQ(f.attempts, 11u);
  EXPECT_EQ(f.throttle, 11u);
  EXPECT_EQ(f.throttle_tq, 5u);
}

TEST(EstimatorSeries, NoBucketsNoSeries) {
  EXPECT_TRUE(series_by_pair({}).empty());
}

// ---------------------------------------------------------------------------------------------
// summarize

TEST(EstimatorSummarize, TheWindowIncludesItsStartAndExcludesNow) {
  const UnixSeconds from = kNow - kHour;
  const std::vector<PairBucket> series = {
      at(from - 1, 1),                          // before the window
      at(from, 10),                             // its first second
      at(kNow - 300, 100), at(kNow - 1, 1000),  // its last second
      at(kNow, 10000),                          // now: not yet
  };
  const PairSignals s = summarize(series, from, kNow, default_policy());
  EXPECT_EQ(s.window_start, from);
  EXPECT_EQ(s.window.attempts, 1110u);
  EXPECT_EQ(s.week.attempts, 1111u);
}

TEST(EstimatorSummarize, TheWindowMayStartAtTheLastChange) {
  const std::vector<PairBucket> series = {at(kNow - 1200, 10, 5), at(kNow - 900, 20),
                                          at(kNow - 600, 40, 1)};
  const PairSignals s = summarize(series, kNow - 900, kNow, default_policy());
  EXPECT_EQ(s.window.attempts, 60u);
  EXPECT_EQ(s.window.throttle, 1u);
  EXPECT_EQ(s.week.attempts, 70u);
  EXPECT_EQ(s.week.throttle, 6u);
}

// The week is today and the 6 UTC days before: the daily totals the store keeps.
TEST(EstimatorSummarize, TheWeekIsTodayAndTheSixDaysBefore) {
  const UnixSeconds today = day_of(kNow);
  const std::vector<PairBucket> series = {
      at(today - 6 * kDay - 1, 1, 1),  // the last second of the day before: out
      at(today - 6 * kDay, 10),        // the first second of the week: in
      at(kNow - 3 * kDay, 100, 2),
  };
  const PairSignals s = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.week.attempts, 110u);
  EXPECT_EQ(s.week.throttle, 2u);
  EXPECT_EQ(s.window.attempts, 0u);
}

TEST(EstimatorSummarize, BusyDaysCountDaysWithEnoughAttempts) {
  const UnixSeconds today = day_of(kNow);
  std::vector<PairBucket> series = {
      at(kNow - 1, 40),                      // today: with the next one, busy
      at(today, 60),                         //
      at(today - 1, 99),                     // yesterday: one short
      at(today - 2 * kDay + kHour, 50),      // two days ago: two buckets make it busy
      at(today - 2 * kDay + 2 * kHour, 50),  //
      at(today - 6 * kDay, 500),             // six days ago: busy
      at(today - 6 * kDay - 1, 5000),        // before the week
  };
  const PairSignals s = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.busy_days, 3);

  PolicyParams lower = default_policy();
  lower.raise_min_daily_attempts = 99;
  EXPECT_EQ(summarize(series, kNow - kHour, kNow, lower).busy_days, 4);
}

TEST(EstimatorSummarize, SevenBusyDays) {
  std::vector<PairBucket> series;
  for (int d = 6; d >= 0; --d) series.push_back(at(day_of(kNow) - d * kDay, 100));
  series.push_back(at(kNow - 300, 10));
  const PairSignals s = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.busy_days, 7);
  EXPECT_EQ(s.week.attempts, 710u);
  EXPECT_EQ(s.window.attempts, 10u);
}

TEST(EstimatorSummarize, StoredDaysAndBucketsOfTheWindow) {
  // The cycle passes the week as the store's daily totals and the window as buckets.
  const std::vector<PairBucket> window = {at(kNow - 600, 30, 3)};
  const std::vector<PairDay> days = {
      PairDay{day_of(kNow), "p", "gmail", SignalFigures{500, 10, 3, 1, {}}},
      PairDay{day_of(kNow) - 7 * kDay, "p", "gmail", SignalFigures{900, 0, 0, 0, {}}}};
  const PairSignals s = summarize(window, days, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.window.attempts, 30u);
  EXPECT_EQ(s.window.throttle, 3u);
  EXPECT_EQ(s.week.attempts, 500u);
  EXPECT_EQ(s.week.throttle, 3u);
  EXPECT_EQ(s.busy_days, 1);
}

TEST(EstimatorSummarize, BucketsInTheFutureAreIgnored) {
  // The clock went back: buckets ahead of now are not evidence of anything.
  const std::vector<PairBucket> series = {at(kNow - 300, 10), at(kNow, 100, 50),
                                          at(kNow + 300, 1000, 500), at(kNow + 2 * kDay, 1000)};
  const PairSignals s = summarize(series, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.window.attempts, 10u);
  EXPECT_EQ(s.window.throttle, 0u);
  EXPECT_EQ(s.week.attempts, 10u);
  EXPECT_EQ(s.busy_days, 0);
}

TEST(EstimatorSummarize, AnEmptySeries) {
  const PairSignals s = summarize({}, kNow - kHour, kNow, default_policy());
  EXPECT_EQ(s.window.attempts, 0u);
  EXPECT_EQ(s.week.attempts, 0u);
  EXPECT_EQ(s.busy_days, 0);
}

}  // namespace
}  // namespace sluice
