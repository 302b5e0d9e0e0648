#include "cli/setup.h"

#include <sys/stat.h>

#include <cstdlib>

#include "adapters/system_clock.h"
#include "adapters/time_parse.h"

namespace sluice::cli {

Expected<config::Config> load_config(const GlobalOptions& options) {
  std::string path = options.config_path;
  bool named = !path.empty();
  if (!named) {
    if (const char* env = std::getenv("SLUICE_CONFIG"); env != nullptr && *env != '\0') {
      path = env;
      named = true;
    } else {
      path = config::kDefaultPath;
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && !named) return config::Config{};
  config::LoadResult loaded = config::load_file(path);
  if (!loaded.config) return Error{loaded.error};
  return std::move(*loaded.config);
}

Expected<std::shared_ptr<const IspCatalog>> build_catalog(const config::Config& config) {
  std::vector<IspSpec> extra;
  for (const config::IspTable& table : config.isps) {
    IspSpec spec;
    spec.name = table.name;
    spec.domains = table.domains;
    spec.mx_suffixes = table.mx_suffixes;
    spec.origin = config.source + ":" + std::to_string(table.line);
    for (const config::DeferralPattern& p : table.deferrals) {
      spec.rules.push_back(DeferralRule{p.pattern, *parse_deferral_class(p.deferral_class),
                                        config.source + ":" + std::to_string(p.line)});
    }
    extra.push_back(std::move(spec));
  }
  if (extra.empty()) return IspCatalog::builtin();
  return IspCatalog::build(merge_isp_specs(builtin_isp_specs(), extra));
}

std::shared_ptr<const PoolMap> build_pool_map(const config::Config& config) {
  auto map = std::make_shared<PoolMap>();
  for (const config::PoolTable& pool : config.pools) {
    for (const std::string& vmta : pool.vmtas) map->emplace(vmta, pool.name);
  }
  return map;
}

Expected<UnixSeconds> resolve_now(const GlobalOptions& options) {
  if (options.now.empty()) return adapters::SystemClock().now();
  std::optional<UnixSeconds> t = adapters::parse_time(options.now);
  if (!t) {
    return Error{"--now: '" + options.now +
                 "' is not a time (use ISO-8601 like 2026-11-27T10:00:00Z, or unix seconds)"};
  }
  return *t;
}

Expected<UnixSeconds> resolve_time(const std::string& text, UnixSeconds now, const char* flag) {
  if (std::optional<UnixSeconds> t = adapters::parse_time(text)) return *t;
  if (std::optional<UnixSeconds> d = adapters::parse_duration(text)) return now - *d;
  return Error{std::string(flag) + ": '" + text +
               "' is neither a time (2026-11-27T10:00:00Z, unix seconds) nor a duration (2h)"};
}

}  // namespace sluice::cli
