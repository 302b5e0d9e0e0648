#pragma once
// From signal buckets to what the policy reads: figures per (pool, ISP) over the decision window
// and over the last week.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "controller/policy.h"
#include "controller/signals.h"

namespace sluice {

struct PairBucket {
  UnixSeconds start = 0;
  SignalFigures figures;
};

using PairKey = std::pair<std::string, std::string>;  // (pool, ISP)

// Sums each (pool, ISP)'s buckets over source IPs and classes; each series sorted by start.
std::map<PairKey, std::vector<PairBucket>> series_by_pair(const std::vector<SignalBucket>& buckets);

// Daily totals per (pool, ISP) of buckets (those not committed yet, or a test's series).
std::vector<PairDay> daily_totals(const std::vector<SignalBucket>& buckets);
std::map<PairKey, std::vector<PairDay>> days_by_pair(const std::vector<PairDay>& days);
// Adds days of the same (pool, ISP, day) together.
std::vector<PairDay> merge_days(std::vector<PairDay> a, const std::vector<PairDay>& b);

// The decision window from `series` (buckets starting in [window_from, now)); the week from
// `days` (today and the 6 UTC days before).
PairSignals summarize(const std::vector<PairBucket>& series, const std::vector<PairDay>& days,
                      UnixSeconds window_from, UnixSeconds now, const PolicyParams& policy);
// The same, with the days summed from `series` itself.
PairSignals summarize(const std::vector<PairBucket>& series, UnixSeconds window_from,
                      UnixSeconds now, const PolicyParams& policy);

void add(SignalFigures& into, const SignalFigures& from);

// A pair's buckets in [from, now), summed per source IP.
std::map<std::string, SignalFigures> figures_by_ip(const std::vector<const SignalBucket*>& buckets,
                                                   UnixSeconds from, UnixSeconds now);

}  // namespace sluice
