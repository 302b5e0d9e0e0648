#pragma once
// The reputation tiers the next cycle uses, shared by status, explain and the metrics.

#include <map>

#include "config/config.h"
#include "controller/cycle.h"
#include "controller/ports.h"

namespace sluice::cli {

// The tiers of the reputation command's last good answer, as the next cycle uses them: none
// when no command is configured.
inline Expected<std::map<PairKey, Tier>> known_reputation(const config::Config& config,
                                                          StateStore& store) {
  if (!config.reputation) return std::map<PairKey, Tier>{};
  Expected<KnownReputation> known = store.load_reputation();
  if (!known) return known.error();
  return tiers_by_pair(known->tiers);
}

}  // namespace sluice::cli
