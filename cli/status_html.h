#pragma once
// `sluice status --format html`: one self-contained page (no external assets) with, per pool and
// ISP, the managed max-smtp-out against time with every decision marked, beside the deferral
// rate by class: the picture an operator looks at first after an incident.

#include <string>
#include <vector>

#include "controller/estimator.h"
#include "controller/ports.h"

namespace sluice::cli {

struct PairPicture {
  std::string pool;
  std::string isp;
  std::optional<int> value;  // now; nullopt: no state yet
  int cap = 0;               // 0: not known here (the report does not work out tiers), not drawn
  std::string phase;
  std::vector<Decision> decisions;  // the pair's own, applied, oldest first
  std::vector<PairBucket> buckets;  // sorted by start
};

// The pair's own applied decisions (not a VMTA's) made in [from, to], oldest first as in
// `history`: the dots of its value chart.
std::vector<Decision> applied_pair_decisions(const std::vector<DecisionRecord>& history,
                                             const std::string& pool, const std::string& isp,
                                             UnixSeconds from, UnixSeconds to);

std::string status_html(const std::vector<PairPicture>& pairs, UnixSeconds from, UnixSeconds now);

// The same charts as a section of another page (with its style): `report --format html` adds
// them when the state database holds the pairs' decisions.
std::string pair_pictures_section(const std::vector<PairPicture>& pairs, UnixSeconds from,
                                  UnixSeconds now);

}  // namespace sluice::cli
