#include "controller/estimator.h"

#include <algorithm>
#include <array>

namespace sluice {

namespace {

constexpr UnixSeconds kDay = 86400;
constexpr int kWeekDays = 7;

void add(SignalFigures& into, const SignalFigures& f) {
  into.attempts += f.attempts;
  into.deferrals += f.deferrals;
  into.throttle += f.throttle;
  into.throttle_tq += f.throttle_tq;
  for (int c = 0; c < kDeferralClassCount; ++c) into.by_class[c] += f.by_class[c];
}

}  // namespace

std::map<PairKey, std::vector<PairBucket>> series_by_pair(const std::vector<SignalBucket>& buckets) {
  std::map<PairKey, std::map<UnixSeconds, SignalFigures>> grouped;
  for (const SignalBucket& b : buckets) {
    SignalFigures& f = grouped[{b.pool, b.isp}][b.start];
    const std::uint64_t deferrals = b.counts.deferred + b.counts.deferred_queue;
    f.attempts += b.counts.attempts();
    f.deferrals += deferrals;
    f.by_class[static_cast<int>(b.deferral_class)] += deferrals;
    if (is_throttle_signal(b.deferral_class)) {
      f.throttle += deferrals;
      f.throttle_tq += b.counts.deferred_queue;
    }
  }
  std::map<PairKey, std::vector<PairBucket>> out;
  for (auto& [key, by_start] : grouped) {
    std::vector<PairBucket>& series = out[key];
    for (auto& [start, figures] : by_start) series.push_back(PairBucket{start, figures});
  }
  return out;
}

PairSignals summarize(const std::vector<PairBucket>& series, UnixSeconds window_from,
                      UnixSeconds now, const PolicyParams& policy) {
  PairSignals s;
  s.window_start = window_from;
  const UnixSeconds week_from = now - kWeekDays * kDay;
  std::array<std::uint64_t, kWeekDays> daily{};
  for (const PairBucket& b : series) {
    if (b.start >= now) continue;  // the clock went back: what lies ahead is not evidence
    if (b.start >= window_from) add(s.window, b.figures);
    if (b.start >= week_from) {
      add(s.week, b.figures);
      daily[static_cast<std::size_t>((now - 1 - b.start) / kDay)] += b.figures.attempts;
    }
  }
  s.busy_days = static_cast<int>(std::count_if(daily.begin(), daily.end(), [&](std::uint64_t n) {
    return n >= policy.raise_min_daily_attempts;
  }));
  return s;
}

}  // namespace sluice
