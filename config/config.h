#pragma once
// sluice.toml: what the operator tells sluice. Depends on nothing else of sluice.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::config {

inline constexpr const char* kDefaultPath = "/etc/sluice/sluice.toml";

struct DeferralPattern {
  std::string pattern;         // RE2 syntax, case-insensitive
  std::string deferral_class;  // connection, rate, reputation, recipient, config, other
  std::int64_t line = 0;
};

// [[isp]]: adds an ISP, or replaces the parts it sets of a built-in one.
struct IspTable {
  std::string name;
  std::vector<std::string> domains;
  std::vector<std::string> mx_suffixes;
  std::vector<DeferralPattern> deferrals;
  std::int64_t line = 0;
};

// A tier's max-smtp-out range at one ISP: start there, never go above the cap.
// 1 <= start <= cap <= 1000.
struct CapRange {
  std::int64_t start = 1;
  std::int64_t cap = 1;
  bool operator==(const CapRange&) const = default;
};

// [policy.caps.<isp>]: the tiers it sets.
struct IspCaps {
  std::optional<CapRange> high;
  std::optional<CapRange> medium;
  std::optional<CapRange> low;
  std::optional<CapRange> warming;
  bool operator==(const IspCaps&) const = default;
};

// [policy] or [pool.policy]: only what the file sets. The defaults live in the controller, so
// that a pool's table overrides only its own keys, on top of [policy], on top of the defaults.
// Rates and fractions are 0..1 (0.05 is 5%); durations keep the file's unit.
struct PolicyTable {
  std::optional<double> cut_threshold;                         // 0 < x < 1, below severe_threshold
  std::optional<double> severe_threshold;                      // 0 < x < 1, above cut_threshold
  std::optional<double> cut_fraction;                          // 0 < x < 1
  std::optional<double> severe_cut_fraction;                   // 0 < x < 1
  std::optional<double> investigate_threshold;                 // 0 < x < 1
  std::optional<std::int64_t> floor;                           // 1..1000
  std::optional<std::int64_t> window_minutes;                  // 5..1440
  std::optional<std::int64_t> min_attempts;                    // >= 0
  std::optional<std::int64_t> min_tq_events;                   // >= 0
  std::optional<std::int64_t> verify_connection_minutes;       // 5..1440
  std::optional<std::int64_t> verify_reputation_minutes;       // 5..2880
  std::optional<std::int64_t> raise_quiet_days;                // 1..90
  std::optional<double> raise_max_deferral_rate;               // 0 < x < 1
  std::optional<double> raise_fraction;                        // 0 < x <= 1
  std::optional<std::int64_t> raise_min_step;                  // 1..100, at most raise_max_step
  std::optional<std::int64_t> raise_max_step;                  // raise_min_step..1000
  std::optional<std::int64_t> raise_min_daily_attempts;        // >= 0
  std::optional<std::int64_t> raise_min_busy_days;             // 0..7
  std::optional<std::string> connect_rate;                     // N/[M]{d|h|m|s}: "1/s", "100/5m"
  std::optional<std::int64_t> retry_failed_change_minutes;     // 1..1440
  std::optional<std::int64_t> max_changes_per_day;             // 1..100
  std::optional<std::int64_t> min_reload_interval_minutes;     // 1..1440
  std::optional<double> raise_hold_share;                      // 0 < x <= 1
  std::optional<double> no_effect_fall;                        // 0 < x < 1
  std::optional<std::int64_t> recovery_connection_hours;       // 1..168, at most probe_max_hours
  std::optional<std::int64_t> recovery_slow_hours;             // 1..168, at most probe_max_hours
  std::optional<std::int64_t> probe_max_hours;                 // 1..168
  std::optional<std::int64_t> trigger_events;                  // 1..10000
  std::optional<std::int64_t> trigger_minutes;                 // 5..1440
  std::optional<double> concentration_factor;                  // 1.5..100
  std::optional<std::int64_t> vmta_recovery_hours;             // 1..168
  std::optional<std::int64_t> warmup_stage_days;               // 1..90
  std::optional<std::int64_t> warming_retry_after_minutes;     // 0..1440, 0: not written
  std::optional<std::int64_t> recovering_retry_after_minutes;  // 0..1440, 0: not written
  std::map<std::string, IspCaps> caps;                         // by ISP name
  // By ISP name: max-msg-rate per hour by warm-up stage, 1..20 strictly increasing values of
  // 1..1000000. A pool's list for an ISP replaces the whole list of [policy].
  std::map<std::string, std::vector<std::int64_t>> warmup_rates;
  bool operator==(const PolicyTable&) const = default;
};

// `top`'s values where it sets them, else `base`'s; caps merge per ISP and tier, warm-up rates
// per ISP.
PolicyTable overlay(const PolicyTable& base, const PolicyTable& top);

struct PoolTable {
  std::string name;
  std::vector<std::string> vmtas;
  std::string tier = "medium";    // high, medium, low, warming
  std::vector<std::string> isps;  // empty: every ISP of the catalog
  PolicyTable policy;             // [pool.policy]: on top of Config::policy
  std::int64_t line = 0;
};

// [reputation]: a command that prints each pool's tier at an ISP, run through the same runner as
// pmta (never a shell).
struct ReputationTable {
  std::vector<std::string> command;    // the argument vector; the first an absolute path
  std::int64_t interval_minutes = 60;  // 1..10080: between two runs, the last tiers are used
};

// [notify]: run on a cut, a pair entering no-effect, a failed reload and an expired override,
// with the event as one JSON object on stdin.
struct NotifyTable {
  std::vector<std::string> command;   // the argument vector; the first an absolute path
  std::int64_t timeout_seconds = 10;  // 1..600
};

struct Config {
  std::string source;  // the file it was read from; empty for the built-in defaults
  std::string pmta_command = "/usr/sbin/pmta";
  std::vector<std::string> accounting = {"/var/log/pmta/acct-*.csv"};
  std::string fragments = "/etc/pmta/sluice";
  std::string pmta_config = "/etc/pmta/config";  // read by `sluice check` only
  std::int64_t pmta_timeout_seconds = 30;        // a pmta command running longer is killed
  std::int64_t interval_seconds = 60;            // [run]: between two cycles of `sluice run`
  bool dry_run = false;                          // [run]
  std::string database = "/var/lib/sluice/state.db";
  std::string overrides = "/etc/sluice/overrides.toml";
  std::int64_t bucket_seconds = 300;
  PolicyTable policy;  // [policy]
  std::vector<PoolTable> pools;
  std::vector<IspTable> isps;
  std::optional<ReputationTable> reputation;  // nullopt: no reputation command
  std::optional<NotifyTable> notify;          // nullopt: no notification hook
  // [metrics] textfile: where `once` and `run` write Prometheus metrics after each cycle, for
  // node_exporter's textfile collector; an absolute path ending in .prom. Empty: none.
  std::string metrics_textfile;
  // [metrics] listen = "127.0.0.1:9465" (or "[::1]:9465"): `run` serves the same metrics on
  // http://ADDRESS:PORT/metrics. Port 0: no listener.
  std::string metrics_listen_host;
  int metrics_listen_port = 0;
};

struct LoadResult {
  std::optional<Config> config;
  std::string error;  // "FILE:LINE: problem" when config is empty
};

LoadResult load_file(const std::string& path);
// `source` names the text in messages.
LoadResult load_string(const std::string& text, const std::string& source);

// Names that reach PowerMTA's configuration: [A-Za-z0-9._-]+, and never "." or "..".
bool is_valid_name(const std::string& name);

}  // namespace sluice::config
