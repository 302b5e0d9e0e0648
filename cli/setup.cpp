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

std::vector<IspSpec> isp_specs(const config::Config& config) {
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
  return merge_isp_specs(builtin_isp_specs(), extra);
}

Expected<std::shared_ptr<const IspCatalog>> build_catalog(const config::Config& config) {
  if (config.isps.empty()) return IspCatalog::builtin();
  return IspCatalog::build(isp_specs(config));
}

std::shared_ptr<const PoolMap> build_pool_map(const config::Config& config) {
  auto map = std::make_shared<PoolMap>();
  for (const config::PoolTable& pool : config.pools) {
    for (const std::string& vmta : pool.vmtas) map->emplace(vmta, pool.name);
  }
  return map;
}

PolicyParams policy_for(const config::Config& config, const config::PoolTable& pool) {
  const config::PolicyTable t = config::overlay(config.policy, pool.policy);
  PolicyParams p = default_policy();
  if (t.cut_threshold) p.cut_threshold = *t.cut_threshold;
  if (t.severe_threshold) p.severe_threshold = *t.severe_threshold;
  if (t.cut_fraction) p.cut_fraction = *t.cut_fraction;
  if (t.severe_cut_fraction) p.severe_cut_fraction = *t.severe_cut_fraction;
  if (t.investigate_threshold) p.investigate_threshold = *t.investigate_threshold;
  if (t.floor) p.floor = static_cast<int>(*t.floor);
  if (t.window_minutes) p.window_seconds = *t.window_minutes * 60;
  if (t.min_attempts) p.min_attempts = static_cast<std::uint64_t>(*t.min_attempts);
  if (t.min_tq_events) p.min_tq_events = static_cast<std::uint64_t>(*t.min_tq_events);
  if (t.verify_connection_minutes) p.verify_connection_seconds = *t.verify_connection_minutes * 60;
  if (t.verify_reputation_minutes) p.verify_reputation_seconds = *t.verify_reputation_minutes * 60;
  if (t.raise_quiet_days) p.raise_quiet_seconds = *t.raise_quiet_days * 86400;
  if (t.raise_max_deferral_rate) p.raise_max_deferral_rate = *t.raise_max_deferral_rate;
  if (t.raise_fraction) p.raise_fraction = *t.raise_fraction;
  if (t.raise_min_step) p.raise_min_step = static_cast<int>(*t.raise_min_step);
  if (t.raise_max_step) p.raise_max_step = static_cast<int>(*t.raise_max_step);
  if (t.raise_min_daily_attempts) {
    p.raise_min_daily_attempts = static_cast<std::uint64_t>(*t.raise_min_daily_attempts);
  }
  if (t.raise_min_busy_days) p.raise_min_busy_days = static_cast<int>(*t.raise_min_busy_days);
  if (t.connect_rate) p.connect_rate = *t.connect_rate;
  if (t.retry_failed_change_minutes) {
    p.retry_failed_change_seconds = *t.retry_failed_change_minutes * 60;
  }
  if (t.max_changes_per_day) p.max_changes_per_day = static_cast<int>(*t.max_changes_per_day);
  if (t.min_reload_interval_minutes) {
    p.min_reload_interval_seconds = *t.min_reload_interval_minutes * 60;
  }
  if (t.raise_hold_share) p.raise_hold_share = *t.raise_hold_share;
  if (t.no_effect_fall) p.no_effect_fall = *t.no_effect_fall;
  if (t.recovery_connection_hours) {
    p.recovery_connection_seconds = *t.recovery_connection_hours * 3600;
  }
  if (t.recovery_slow_hours) p.recovery_slow_seconds = *t.recovery_slow_hours * 3600;
  if (t.probe_max_hours) p.probe_max_seconds = *t.probe_max_hours * 3600;
  if (t.trigger_events) p.trigger_events = static_cast<std::uint64_t>(*t.trigger_events);
  if (t.trigger_minutes) p.trigger_seconds = *t.trigger_minutes * 60;
  if (t.concentration_factor) p.concentration_factor = *t.concentration_factor;
  if (t.vmta_recovery_hours) p.vmta_recovery_seconds = *t.vmta_recovery_hours * 3600;
  if (t.warmup_stage_days) p.warmup_stage_seconds = *t.warmup_stage_days * 86400;
  if (t.warming_retry_after_minutes) {
    p.warming_retry_after_minutes = static_cast<int>(*t.warming_retry_after_minutes);
  }
  if (t.recovering_retry_after_minutes) {
    p.recovering_retry_after_minutes = static_cast<int>(*t.recovering_retry_after_minutes);
  }
  // Per ISP over the defaults, so that the built-in "generic" stays unless the file sets it.
  for (const auto& [isp, rates] : t.warmup_rates) {
    p.warmup_rates[isp].assign(rates.begin(), rates.end());
  }
  for (const auto& [isp, caps] : t.caps) {
    const std::pair<Tier, const std::optional<config::CapRange>*> tiers[] = {
        {Tier::high, &caps.high},
        {Tier::medium, &caps.medium},
        {Tier::low, &caps.low},
        {Tier::warming, &caps.warming}};
    for (const auto& [tier, range] : tiers) {
      if (*range) {
        p.ranges[isp][tier] =
            TierRange{static_cast<int>((*range)->start), static_cast<int>((*range)->cap)};
      }
    }
  }
  return p;
}

Expected<std::vector<ManagedPair>> managed_pairs(const config::Config& config,
                                                 const IspCatalog& catalog) {
  std::vector<ManagedPair> pairs;
  for (const config::PoolTable& pool : config.pools) {
    std::vector<std::string> isps = pool.isps;
    if (isps.empty()) {
      for (std::size_t i = 0; i < catalog.size(); ++i)
        isps.push_back(catalog.name(static_cast<IspId>(i)));
    }
    const PolicyParams policy = policy_for(config, pool);
    for (const std::string& isp : isps) {
      if (!catalog.find(isp)) {
        return Error{config.source + ":" + std::to_string(pool.line) + ": pool '" + pool.name +
                     "': unknown ISP '" + isp + "' (not in the catalog or an [[isp]] table)"};
      }
      pairs.push_back(ManagedPair{pool.name, isp, *parse_tier(pool.tier), policy});
    }
  }
  return pairs;
}

adapters::KnownPools known_pools(const config::Config& config,
                                 const std::vector<ManagedPair>& pairs) {
  adapters::KnownPools known;
  for (const ManagedPair& pair : pairs) known[pair.pool].isps.insert(pair.isp);
  for (const config::PoolTable& pool : config.pools) {
    known[pool.name].vmtas.insert(pool.vmtas.begin(), pool.vmtas.end());
  }
  return known;
}

LoopSettings loop_settings(const config::Config& config) {
  LoopSettings s;
  s.pmta_command = config.pmta_command;
  s.pmta_timeout = std::chrono::seconds(config.pmta_timeout_seconds);
  s.bucket_seconds = config.bucket_seconds;
  return s;
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

Expected<UnixSeconds> parse_interval(const std::string& text) {
  if (std::optional<UnixSeconds> d = adapters::parse_duration(text); d && *d >= 1) return *d;
  return Error{"--interval: '" + text + "' is not a duration such as 60s or 5m"};
}

}  // namespace sluice::cli
