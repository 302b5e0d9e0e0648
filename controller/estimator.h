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

// Buckets that start in [from, now) count; `window_from` bounds the decision window.
PairSignals summarize(const std::vector<PairBucket>& series, UnixSeconds window_from,
                      UnixSeconds now, const PolicyParams& policy);

}  // namespace sluice
