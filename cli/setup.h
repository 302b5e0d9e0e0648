#pragma once
// The composition root's shared steps: global options, configuration, catalog and clock.

#include <memory>
#include <optional>
#include <string>

#include "adapters/override_file.h"
#include "config/config.h"
#include "controller/cycle.h"
#include "controller/expected.h"
#include "controller/isp_catalog.h"
#include "controller/signals.h"

namespace sluice::cli {

struct GlobalOptions {
  std::string config_path;  // empty: $SLUICE_CONFIG, else /etc/sluice/sluice.toml
  std::string now;          // empty: the system clock
  bool json = false;
};

// A missing default configuration means built-in defaults; a missing named one is an error.
Expected<config::Config> load_config(const GlobalOptions& options);
std::vector<IspSpec> isp_specs(const config::Config& config);
Expected<std::shared_ptr<const IspCatalog>> build_catalog(const config::Config& config);
std::shared_ptr<const PoolMap> build_pool_map(const config::Config& config);
// The built-in defaults, overlaid with [policy] and then the pool's [pool.policy].
PolicyParams policy_for(const config::Config& config, const config::PoolTable& pool);
// Every (pool, ISP) the loop manages: the pool's `isps`, else every ISP of the catalog.
Expected<std::vector<ManagedPair>> managed_pairs(const config::Config& config,
                                                 const IspCatalog& catalog);
LoopSettings loop_settings(const config::Config& config);
// What the override file may name: the managed pairs' pools and ISPs, and the pools' VMTAs.
adapters::KnownPools known_pools(const config::Config& config,
                                 const std::vector<ManagedPair>& pairs);

// "now", read once: from --now when given.
Expected<UnixSeconds> resolve_now(const GlobalOptions& options);
// An absolute time, or a duration before `now` ("2h").
Expected<UnixSeconds> resolve_time(const std::string& text, UnixSeconds now, const char* flag);
// `run --interval`: a duration of at least a second.
Expected<UnixSeconds> parse_interval(const std::string& text);

}  // namespace sluice::cli
