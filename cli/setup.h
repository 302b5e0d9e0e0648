#pragma once
// The composition root's shared steps: global options, configuration, catalog and clock.

#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
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
Expected<std::shared_ptr<const IspCatalog>> build_catalog(const config::Config& config);
std::shared_ptr<const PoolMap> build_pool_map(const config::Config& config);
// "now", read once: from --now when given.
Expected<UnixSeconds> resolve_now(const GlobalOptions& options);
// An absolute time, or a duration before `now` ("2h").
Expected<UnixSeconds> resolve_time(const std::string& text, UnixSeconds now, const char* flag);

}  // namespace sluice::cli
