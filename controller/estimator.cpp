#include "controller/estimator.h"

#include <algorithm>
#include <array>
#include <tuple>

namespace sluice {

namespace {

constexpr UnixSeconds kDay = 86400;
constexpr int kWeekDays = 7;

// A bucket's counts as figures.
void count(SignalFigures& f, const SignalBucket& b) {
  const std::uint64_t deferrals = b.counts.deferred + b.counts.deferred_queue;
  f.attempts += b.counts.attempts();
  f.deferrals += deferrals;
  f.by_class[static_cast<int>(b.deferral_class)] += deferrals;
  if (is_throttle_signal(b.deferral_class)) {
    f.throttle += deferrals;
    f.throttle_tq += b.counts.deferred_queue;
  }
}

}  // namespace

void add(SignalFigures& into, const SignalFigures& f) {
  into.attempts += f.attempts;
  into.deferrals += f.deferrals;
  into.throttle += f.throttle;
  into.throttle_tq += f.throttle_tq;
  for (int c = 0; c < kDeferralClassCount; ++c) into.by_class[c] += f.by_class[c];
}

std::map<PairKey, std::vector<PairBucket>> series_by_pair(
    const std::vector<SignalBucket>& buckets) {
  std::map<PairKey, std::map<UnixSeconds, SignalFigures>> grouped;
  // Sorted buckets hold a pair's classes and IPs of one start side by side: one lookup for them.
  const SignalBucket* previous = nullptr;
  SignalFigures* figures = nullptr;
  for (const SignalBucket& b : buckets) {
    if (previous == nullptr || previous->start != b.start || previous->pool != b.pool ||
        previous->isp != b.isp) {
      figures = &grouped[{b.pool, b.isp}][b.start];
    }
    count(*figures, b);
    previous = &b;
  }
  std::map<PairKey, std::vector<PairBucket>> out;
  for (auto& [key, by_start] : grouped) {
    std::vector<PairBucket>& series = out[key];
    for (auto& [start, figures] : by_start) series.push_back(PairBucket{start, figures});
  }
  return out;
}

std::vector<PairDay> daily_totals(const std::vector<SignalBucket>& buckets) {
  std::map<std::tuple<UnixSeconds, std::string, std::string>, SignalFigures> by_day;
  for (const auto& [key, series] : series_by_pair(buckets)) {
    for (const PairBucket& b : series)
      add(by_day[{day_of(b.start), key.first, key.second}], b.figures);
  }
  std::vector<PairDay> out;
  for (auto& [key, figures] : by_day) {
    out.push_back(PairDay{std::get<0>(key), std::get<1>(key), std::get<2>(key), figures});
  }
  return out;
}

std::map<PairKey, std::vector<PairDay>> days_by_pair(const std::vector<PairDay>& days) {
  std::map<PairKey, std::vector<PairDay>> out;
  for (const PairDay& d : days) out[{d.pool, d.isp}].push_back(d);
  return out;
}

std::vector<PairDay> merge_days(std::vector<PairDay> a, const std::vector<PairDay>& b) {
  std::map<std::tuple<UnixSeconds, std::string, std::string>, std::size_t> index;
  for (std::size_t i = 0; i < a.size(); ++i) index[{a[i].day, a[i].pool, a[i].isp}] = i;
  for (const PairDay& d : b) {
    auto [at, fresh] = index.try_emplace({d.day, d.pool, d.isp}, a.size());
    if (fresh) {
      a.push_back(d);
    } else {
      add(a[at->second].figures, d.figures);
    }
  }
  return a;
}

PairSignals summarize(const std::vector<PairBucket>& series, const std::vector<PairDay>& days,
                      UnixSeconds window_from, UnixSeconds now, const PolicyParams& policy) {
  PairSignals s;
  s.window_start = window_from;
  bool in_incident = false;
  for (const PairBucket& b : series) {
    // The clock went back: what lies ahead is not evidence.
    if (b.start < window_from || b.start >= now) continue;
    add(s.window, b.figures);
    in_incident = in_incident || b.figures.throttle > 0;
    if (in_incident) add(s.incident, b.figures);
  }
  for (const PairBucket& b : series) {
    if (b.start >= now - policy.trigger_seconds && b.start < now) {
      s.recent_throttle += b.figures.throttle;
    }
  }
  const UnixSeconds today = day_of(now);
  const UnixSeconds first = today - (kWeekDays - 1) * kDay;
  for (const PairDay& d : days) {
    if (d.day == today - kDay) add(s.yesterday, d.figures);
    if (d.day < first || d.day > today) continue;
    add(s.week, d.figures);
    if (d.figures.attempts >= policy.raise_min_daily_attempts) ++s.busy_days;
  }
  return s;
}

PairSignals summarize(const std::vector<PairBucket>& series, UnixSeconds window_from,
                      UnixSeconds now, const PolicyParams& policy) {
  std::map<UnixSeconds, SignalFigures> by_day;
  for (const PairBucket& b : series) {
    if (b.start < now) add(by_day[day_of(b.start)], b.figures);
  }
  std::vector<PairDay> days;
  for (const auto& [day, figures] : by_day) days.push_back(PairDay{day, "", "", figures});
  return summarize(series, days, window_from, now, policy);
}

std::map<std::string, SignalFigures> figures_by_ip(const std::vector<const SignalBucket*>& buckets,
                                                   UnixSeconds from, UnixSeconds now) {
  std::map<std::string, SignalFigures> out;
  for (const SignalBucket* b : buckets) {
    if (b->start < from || b->start >= now) continue;
    count(out[b->source_ip], *b);
  }
  return out;
}

}  // namespace sluice
