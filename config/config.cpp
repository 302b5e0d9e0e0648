#include "config/config.h"

#include <arpa/inet.h>

#include <toml++/toml.h>

#include "config/file_safety.h"
#include "config/toml_reader.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>

namespace sluice::config {

namespace {

using detail::number_text;
using detail::rendered;
using detail::Scope;
using detail::shown;

const std::set<std::string> kClasses = {"connection", "rate",   "reputation",
                                        "recipient",  "config", "other"};

const std::set<std::string> kPolicyKeys = {"cut_threshold",
                                           "severe_threshold",
                                           "cut_fraction",
                                           "severe_cut_fraction",
                                           "investigate_threshold",
                                           "floor",
                                           "window_minutes",
                                           "min_attempts",
                                           "min_tq_events",
                                           "verify_connection_minutes",
                                           "verify_reputation_minutes",
                                           "raise_quiet_days",
                                           "raise_max_deferral_rate",
                                           "raise_fraction",
                                           "raise_min_step",
                                           "raise_max_step",
                                           "raise_min_daily_attempts",
                                           "raise_min_busy_days",
                                           "connect_rate",
                                           "retry_failed_change_minutes",
                                           "max_changes_per_day",
                                           "min_reload_interval_minutes",
                                           "raise_hold_share",
                                           "no_effect_fall",
                                           "recovery_connection_hours",
                                           "recovery_slow_hours",
                                           "probe_max_hours",
                                           "trigger_events",
                                           "trigger_minutes",
                                           "concentration_factor",
                                           "vmta_recovery_hours",
                                           "warmup_stage_days",
                                           "warming_retry_after_minutes",
                                           "recovering_retry_after_minutes",
                                           "caps",
                                           "warmup_rates"};

// The controller's defaults for the keys checked against each other, so that a file setting one
// side only cannot invert the pair (a cut threshold above the severe one makes every cut severe).
constexpr double kDefaultCutThreshold = 0.05;
constexpr double kDefaultSevereThreshold = 0.15;
constexpr std::int64_t kDefaultRaiseMinStep = 1;
constexpr std::int64_t kDefaultRaiseMaxStep = 2;
constexpr std::int64_t kDefaultRecoveryConnectionHours = 6;
constexpr std::int64_t kDefaultRecoverySlowHours = 24;
constexpr std::int64_t kDefaultProbeMaxHours = 24;

constexpr std::int64_t kMaxCap = 1000;
constexpr std::int64_t kMaxWarmupRate = 1000000;
constexpr std::size_t kMaxWarmupStages = 20;

// Digits meaning a count from 1 up, small enough for any integer type.
bool is_count(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return false;
  if (digits.find_first_not_of("0123456789") != std::string_view::npos) return false;
  return digits.find_first_not_of('0') != std::string_view::npos;
}

// PowerMTA's rate grammar, N/[M]{d|h|m|s}: "1/s", "10/m", "100/5m".
bool is_rate(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos || text.size() < slash + 2) return false;
  if (std::string_view("dhms").find(text.back()) == std::string_view::npos) return false;
  const std::string_view per = text.substr(slash + 1, text.size() - slash - 2);
  return is_count(text.substr(0, slash)) && (per.empty() || is_count(per));
}

// "ADDRESS:PORT", the address an IPv4 or (in brackets) IPv6 literal: a name would need a
// resolver, and the listener binds where the operator says, nowhere else.
std::optional<std::pair<std::string, int>> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int port = std::stoi(port_text);
  if (port < 1 || port > 65535) return std::nullopt;
  unsigned char address[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (::inet_pton(AF_INET6, host.c_str(), address) != 1) return std::nullopt;
  } else if (::inet_pton(AF_INET, host.c_str(), address) != 1) {
    return std::nullopt;
  }
  return std::pair{host, port};
}

class Reader : public detail::TomlReader {
 public:
  using TomlReader::TomlReader;

  Config read(const toml::table& root) const {
    Config config;
    config.source = source_;
    only_keys(root,
              {"pmta", "state", "pool", "isp", "reader", "run", "policy", "reputation", "metrics",
               "notify"},
              "");
    if (const toml::table* pmta = table(root, "pmta")) {
      only_keys(*pmta, {"command", "accounting", "fragments", "config", "timeout_seconds"},
                "[pmta]");
      if (auto v = path(*pmta, "command")) config.pmta_command = *v;
      if (auto v = path(*pmta, "fragments")) config.fragments = *v;
      if (auto v = path(*pmta, "config")) config.pmta_config = *v;
      if (auto v = integer(*pmta, "timeout_seconds", Scope{"", "[pmta]"}, 1, 600)) {
        config.pmta_timeout_seconds = *v;
      }
      if (auto v = strings(*pmta, "accounting")) {
        for (const std::string& glob : *v) {
          if (glob.empty() || glob.front() != '/') {
            fail(pmta->get("accounting"),
                 "'accounting' must hold absolute paths, not '" + shown(glob) + "'");
          }
        }
        config.accounting = *v;
      }
    }
    if (const toml::table* state = table(root, "state")) {
      only_keys(*state, {"database", "overrides"}, "[state]");
      if (auto v = path(*state, "database")) config.database = *v;
      if (auto v = path(*state, "overrides")) config.overrides = *v;
    }
    if (const toml::table* reader = table(root, "reader")) {
      only_keys(*reader, {"bucket_seconds"}, "[reader]");
      if (const toml::node* node = reader->get("bucket_seconds")) {
        const auto* v = node->as_integer();
        if (v == nullptr || v->get() < 60 || v->get() > 3600 || 3600 % v->get() != 0) {
          fail(node, "'bucket_seconds' must be an integer from 60 to 3600 that divides an hour");
        }
        config.bucket_seconds = v->get();
      }
    }
    if (const toml::table* run = table(root, "run")) {
      only_keys(*run, {"interval_seconds", "dry_run"}, "[run]");
      if (auto v = integer(*run, "interval_seconds", Scope{"", "[run]"}, 10, 86400)) {
        config.interval_seconds = *v;
      }
      if (const toml::node* node = run->get("dry_run")) {
        if (!node->is_boolean()) {
          fail(node, "[run] 'dry_run' must be true or false, not " + rendered(*node));
        }
        config.dry_run = node->as_boolean()->get();
      }
    }
    if (const toml::table* reputation = table(root, "reputation")) {
      config.reputation = read_reputation(*reputation);
    }
    if (const toml::table* notify = table(root, "notify")) {
      only_keys(*notify, {"command", "timeout_seconds"}, "[notify]");
      NotifyTable hook;
      hook.command = command(*notify, "[notify]");
      if (auto v = integer(*notify, "timeout_seconds", Scope{"", "[notify]"}, 1, 600)) {
        hook.timeout_seconds = *v;
      }
      config.notify = std::move(hook);
    }
    if (const toml::table* metrics = table(root, "metrics")) {
      only_keys(*metrics, {"textfile", "listen"}, "[metrics]");
      if (const toml::node* node = metrics->get("listen")) {
        const std::optional<std::pair<std::string, int>> listen =
            node->is_string() ? parse_listen(node->as_string()->get()) : std::nullopt;
        if (!listen) {
          fail(node,
               "[metrics] 'listen' must be an IP address and a port such as \"127.0.0.1:9465\" or "
               "\"[::1]:9465\", not " +
                   rendered(*node));
        } else {
          config.metrics_listen_host = listen->first;
          config.metrics_listen_port = listen->second;
        }
      }
      if (auto v = path(*metrics, "textfile")) {
        // node_exporter's textfile collector reads only *.prom files: any other name would be
        // written every cycle and never collected.
        if (!v->ends_with(".prom") || v->ends_with("/.prom")) {
          fail(metrics->get("textfile"),
               "[metrics] 'textfile' must be a file name ending in .prom (node_exporter reads "
               "only those), not '" +
                   shown(*v) + "'");
        }
        config.metrics_textfile = *v;
      }
    }
    // Before the pools: each pool's table is checked on top of this one.
    if (const toml::table* policy = table(root, "policy")) {
      config.policy = read_policy(*policy, Scope{"", "[policy]"}, PolicyTable{});
    }
    read_pools(root, config);
    read_isps(root, config);
    return config;
  }

  // An argument vector run without a shell: strings, the program's absolute path first.
  std::vector<std::string> command(const toml::table& t, const std::string& table) const {
    std::vector<std::string> argv;
    const toml::node* node = t.get("command");
    if (node == nullptr) fail(&t, table + " needs 'command'");
    const toml::array* array = node->as_array();
    if (array == nullptr || array->empty()) {
      fail(node, table +
                     " 'command' must be an array of strings, the program's absolute path "
                     "first, not " +
                     rendered(*node));
    }
    for (const toml::node& item : *array) {
      // An argument vector cannot carry a NUL: execve would cut the argument short.
      if (!item.is_string() || item.as_string()->get().find('\0') != std::string::npos) {
        fail(&item, table + " 'command' must hold only strings without NUL, not " + rendered(item));
      }
      argv.push_back(item.as_string()->get());
    }
    const std::string& program = argv.front();
    if (program.empty() || program.front() != '/') {
      fail(node,
           table + " 'command' must start with an absolute path, not '" + shown(program) + "'");
    }
    return argv;
  }

  ReputationTable read_reputation(const toml::table& t) const {
    only_keys(t, {"command", "interval_minutes"}, "[reputation]");
    ReputationTable reputation;
    reputation.command = command(t, "[reputation]");
    if (auto v = integer(t, "interval_minutes", Scope{"", "[reputation]"}, 1, 10080)) {
      reputation.interval_minutes = *v;
    }
    return reputation;
  }

  // `base` is what the table goes on top of ([policy] for a pool), for the checks between keys.
  PolicyTable read_policy(const toml::table& t, const Scope& scope, const PolicyTable& base) const {
    only_keys(t, kPolicyKeys, scope.table, scope.prefix);
    constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();
    PolicyTable p;
    p.cut_threshold = fraction(t, "cut_threshold", scope);
    p.severe_threshold = fraction(t, "severe_threshold", scope);
    p.cut_fraction = fraction(t, "cut_fraction", scope);
    p.severe_cut_fraction = fraction(t, "severe_cut_fraction", scope);
    p.investigate_threshold = fraction(t, "investigate_threshold", scope);
    p.floor = integer(t, "floor", scope, 1, kMaxCap);
    p.window_minutes = integer(t, "window_minutes", scope, 5, 1440);
    p.min_attempts = integer(t, "min_attempts", scope, 0, kUnbounded);
    p.min_tq_events = integer(t, "min_tq_events", scope, 0, kUnbounded);
    p.verify_connection_minutes = integer(t, "verify_connection_minutes", scope, 5, 1440);
    p.verify_reputation_minutes = integer(t, "verify_reputation_minutes", scope, 5, 2880);
    p.raise_quiet_days = integer(t, "raise_quiet_days", scope, 1, 90);
    p.raise_max_deferral_rate = fraction(t, "raise_max_deferral_rate", scope);
    p.raise_fraction = fraction(t, "raise_fraction", scope, true);
    p.raise_min_step = integer(t, "raise_min_step", scope, 1, 100);
    // Bounded by the largest cap, so that the controller's int cannot overflow.
    p.raise_max_step = integer(t, "raise_max_step", scope, 1, kMaxCap);
    p.raise_min_daily_attempts = integer(t, "raise_min_daily_attempts", scope, 0, kUnbounded);
    p.raise_min_busy_days = integer(t, "raise_min_busy_days", scope, 0, 7);
    p.retry_failed_change_minutes = integer(t, "retry_failed_change_minutes", scope, 1, 1440);
    p.max_changes_per_day = integer(t, "max_changes_per_day", scope, 1, 100);
    p.min_reload_interval_minutes = integer(t, "min_reload_interval_minutes", scope, 1, 1440);
    p.raise_hold_share = fraction(t, "raise_hold_share", scope, true);
    p.no_effect_fall = fraction(t, "no_effect_fall", scope);
    p.recovery_connection_hours = integer(t, "recovery_connection_hours", scope, 1, 168);
    p.recovery_slow_hours = integer(t, "recovery_slow_hours", scope, 1, 168);
    p.probe_max_hours = integer(t, "probe_max_hours", scope, 1, 168);
    p.trigger_events = integer(t, "trigger_events", scope, 1, 10000);
    p.trigger_minutes = integer(t, "trigger_minutes", scope, 5, 1440);
    p.concentration_factor = number(t, "concentration_factor", scope, 1.5, 100);
    p.vmta_recovery_hours = integer(t, "vmta_recovery_hours", scope, 1, 168);
    p.warmup_stage_days = integer(t, "warmup_stage_days", scope, 1, 90);
    p.warming_retry_after_minutes = integer(t, "warming_retry_after_minutes", scope, 0, 1440);
    p.recovering_retry_after_minutes = integer(t, "recovering_retry_after_minutes", scope, 0, 1440);
    if (const toml::node* node = t.get("connect_rate")) {
      if (!node->is_string() || !is_rate(node->as_string()->get())) {
        fail(node, scope.key("connect_rate") +
                       " must be a rate N/[M]{d|h|m|s} such as 1/s, 10/m or 100/5m, not " +
                       rendered(*node));
      }
      p.connect_rate = node->as_string()->get();
    }
    if (const toml::node* node = t.get("caps")) read_caps(*node, scope, p);
    if (const toml::node* node = t.get("warmup_rates")) read_warmup_rates(*node, scope, p);

    const PolicyTable effective = overlay(base, p);
    ordered(t, scope, "cut_threshold", p.cut_threshold,
            effective.cut_threshold.value_or(kDefaultCutThreshold), "severe_threshold",
            p.severe_threshold, effective.severe_threshold.value_or(kDefaultSevereThreshold),
            false);
    ordered(t, scope, "raise_min_step", p.raise_min_step,
            effective.raise_min_step.value_or(kDefaultRaiseMinStep), "raise_max_step",
            p.raise_max_step, effective.raise_max_step.value_or(kDefaultRaiseMaxStep), true);
    // Failed probes double the wait up to probe_max_hours: a first wait above it would shrink.
    const std::int64_t probe_max = effective.probe_max_hours.value_or(kDefaultProbeMaxHours);
    ordered(t, scope, "recovery_connection_hours", p.recovery_connection_hours,
            effective.recovery_connection_hours.value_or(kDefaultRecoveryConnectionHours),
            "probe_max_hours", p.probe_max_hours, probe_max, true);
    ordered(t, scope, "recovery_slow_hours", p.recovery_slow_hours,
            effective.recovery_slow_hours.value_or(kDefaultRecoverySlowHours), "probe_max_hours",
            p.probe_max_hours, probe_max, true);
    return p;
  }

  // Checks low < high (low <= high when `equal_allowed`) once this table is applied, and blames
  // the key this table sets: the high one when it sets both. When it sets neither, the pair is
  // the base's, already checked.
  template <typename T>
  void ordered(const toml::table& t, const Scope& scope, const char* low_key,
               const std::optional<T>& low_set, T low, const char* high_key,
               const std::optional<T>& high_set, T high, bool equal_allowed) const {
    if (low < high || (equal_allowed && low == high)) return;
    if (!low_set && !high_set) return;
    const auto text = [](T v) {
      if constexpr (std::is_floating_point_v<T>) {
        return number_text(v);
      } else {
        return std::to_string(v);
      }
    };
    if (high_set) {
      fail(t.get(high_key), scope.key(high_key) + " must be " +
                                (equal_allowed ? "at least" : "above") + " '" + low_key + "' (" +
                                text(low) + "), not " + text(high));
    }
    fail(t.get(low_key), scope.key(low_key) + " must be " + (equal_allowed ? "at most" : "below") +
                             " '" + high_key + "' (" + text(high) + "), not " + text(low));
  }

  // A table keyed by ISP name ([policy.caps], [policy.warmup_rates]): `read` gets each ISP's
  // value and its scope.
  template <class Read>
  void for_each_isp(const toml::node& node, const Scope& scope, const char* name, Read read) const {
    const Scope isps_scope = scope.nested(name);
    const toml::table* isps = node.as_table();
    if (isps == nullptr) {
      fail(&node, scope.key(name) + " must be a table of ISPs, not " + rendered(node));
    }
    for (const auto& [key, value] : *isps) {
      const std::string isp(key.str());
      if (!is_valid_name(isp)) {
        fail(&value, isps_scope.prefix + isps_scope.table + " ISP name '" + shown(isp) +
                         "' is not [A-Za-z0-9._-]+");
      }
      read(isp, value, isps_scope);
    }
  }

  void read_caps(const toml::node& node, const Scope& scope, PolicyTable& policy) const {
    for_each_isp(
        node, scope, "caps",
        [&](const std::string& isp, const toml::node& value, const Scope& caps_scope) {
          const toml::table* tiers = value.as_table();
          if (tiers == nullptr) {
            fail(&value, caps_scope.key(isp) + " must be a table of tiers, not " + rendered(value));
          }
          const Scope isp_scope = caps_scope.nested(isp);
          only_keys(*tiers, detail::kTierNames, isp_scope.table, isp_scope.prefix);
          IspCaps& out = policy.caps[isp];
          out.high = cap_range(*tiers, "high", isp_scope);
          out.medium = cap_range(*tiers, "medium", isp_scope);
          out.low = cap_range(*tiers, "low", isp_scope);
          out.warming = cap_range(*tiers, "warming", isp_scope);
        });
  }

  void read_warmup_rates(const toml::node& node, const Scope& scope, PolicyTable& policy) const {
    for_each_isp(
        node, scope, "warmup_rates",
        [&](const std::string& isp, const toml::node& value, const Scope& rates_scope) {
          const toml::array* stages = value.as_array();
          bool valid = stages != nullptr && !stages->empty() && stages->size() <= kMaxWarmupStages;
          std::vector<std::int64_t> out;
          for (std::size_t i = 0; valid && i < stages->size(); ++i) {
            const auto* rate = (*stages)[i].as_integer();
            valid = rate != nullptr && rate->get() >= 1 && rate->get() <= kMaxWarmupRate &&
                    (out.empty() || rate->get() > out.back());
            if (valid) out.push_back(rate->get());
          }
          if (!valid) {
            fail(&value, rates_scope.key(isp) + " must be 1 to " +
                             std::to_string(kMaxWarmupStages) + " rising integers from 1 to " +
                             std::to_string(kMaxWarmupRate) +
                             " (messages per hour by stage), not " + rendered(value));
          }
          policy.warmup_rates[isp] = std::move(out);
        });
  }

  std::optional<CapRange> cap_range(const toml::table& t, const char* key,
                                    const Scope& scope) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const toml::array* pair = node->as_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_integer() ||
        !(*pair)[1].is_integer()) {
      fail(node, scope.key(key) + " must be [start, cap], two integers, not " + rendered(*node));
    }
    const CapRange range{(*pair)[0].as_integer()->get(), (*pair)[1].as_integer()->get()};
    if (range.start < 1 || range.start > range.cap || range.cap > kMaxCap) {
      fail(node, scope.key(key) + " must be [start, cap] with 1 <= start <= cap <= " +
                     std::to_string(kMaxCap) + ", not " + rendered(*node));
    }
    return range;
  }

  void read_pools(const toml::table& root, Config& config) const {
    const toml::array* pools = array_of_tables(root, "pool");
    if (pools == nullptr) return;
    std::map<std::string, std::string> vmta_owner;
    for (const toml::node& node : *pools) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"name", "vmtas", "tier", "isps", "policy"}, "[[pool]]");
      PoolTable pool;
      pool.line = line(t);
      pool.name = name(t, "name", "pool");
      for (const PoolTable& other : config.pools) {
        if (other.name == pool.name) {
          fail(t.get("name"), "pool '" + pool.name + "' is defined twice (first at line " +
                                  std::to_string(other.line) + ")");
        }
      }
      if (auto tier = string(t, "tier")) {
        if (!detail::kTierNames.contains(*tier)) {
          fail(t.get("tier"), "pool '" + pool.name + "': tier '" + shown(*tier) +
                                  "' is not one of high, medium, low, warming");
        }
        pool.tier = *tier;
      }
      pool.vmtas = strings(t, "vmtas").value_or(std::vector<std::string>{});
      for (const std::string& vmta : pool.vmtas) {
        if (!is_valid_name(vmta)) {
          fail(t.get("vmtas"),
               "pool '" + pool.name + "': vmta name '" + shown(vmta) + "' is not [A-Za-z0-9._-]+");
        }
        auto [owner, fresh] = vmta_owner.emplace(vmta, pool.name);
        if (!fresh && owner->second == pool.name) {
          fail(t.get("vmtas"), "pool '" + pool.name + "' lists vmta '" + vmta + "' twice");
        }
        if (!fresh) {
          fail(t.get("vmtas"), "vmta '" + vmta + "' is in two pools: '" + owner->second +
                                   "' and '" + pool.name + "'");
        }
      }
      pool.isps = strings(t, "isps").value_or(std::vector<std::string>{});
      for (const std::string& isp : pool.isps) {
        if (!is_valid_name(isp)) {
          fail(t.get("isps"),
               "pool '" + pool.name + "': ISP name '" + shown(isp) + "' is not [A-Za-z0-9._-]+");
        }
      }
      if (const toml::table* policy = table(t, "policy")) {
        pool.policy = read_policy(*policy, Scope{"pool '" + pool.name + "': ", "[pool.policy]"},
                                  config.policy);
      }
      config.pools.push_back(std::move(pool));
    }
  }

  void read_isps(const toml::table& root, Config& config) const {
    const toml::array* isps = array_of_tables(root, "isp");
    if (isps == nullptr) return;
    for (const toml::node& node : *isps) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"name", "domains", "mx_suffixes", "deferral"}, "[[isp]]");
      IspTable isp;
      isp.line = line(t);
      isp.name = name(t, "name", "ISP");
      for (const IspTable& other : config.isps) {
        if (other.name == isp.name) fail(t.get("name"), "ISP '" + isp.name + "' is defined twice");
      }
      isp.domains = strings(t, "domains").value_or(std::vector<std::string>{});
      isp.mx_suffixes = strings(t, "mx_suffixes").value_or(std::vector<std::string>{});
      if (const toml::array* rules = array_of_tables(t, "deferral")) {
        for (const toml::node& rule_node : *rules) {
          const toml::table& r = *rule_node.as_table();
          only_keys(r, {"pattern", "class"}, "[[isp.deferral]]");
          DeferralPattern rule;
          rule.line = line(r);
          std::optional<std::string> pattern = string(r, "pattern");
          std::optional<std::string> cls = string(r, "class");
          if (!pattern || pattern->empty()) fail(&r, "[[isp.deferral]] needs a 'pattern'");
          if (!cls || !kClasses.contains(*cls)) {
            fail(cls ? r.get("class") : &r,
                 "[[isp.deferral]] 'class' must be one of connection, rate, reputation, "
                 "recipient, config, other");
          }
          rule.pattern = *pattern;
          rule.deferral_class = *cls;
          isp.deferrals.push_back(std::move(rule));
        }
      }
      config.isps.push_back(std::move(isp));
    }
  }
};

}  // namespace

PolicyTable overlay(const PolicyTable& base, const PolicyTable& top) {
  const auto pick = [](const auto& over, const auto& under) { return over ? over : under; };
  PolicyTable out;
  out.cut_threshold = pick(top.cut_threshold, base.cut_threshold);
  out.severe_threshold = pick(top.severe_threshold, base.severe_threshold);
  out.cut_fraction = pick(top.cut_fraction, base.cut_fraction);
  out.severe_cut_fraction = pick(top.severe_cut_fraction, base.severe_cut_fraction);
  out.investigate_threshold = pick(top.investigate_threshold, base.investigate_threshold);
  out.floor = pick(top.floor, base.floor);
  out.window_minutes = pick(top.window_minutes, base.window_minutes);
  out.min_attempts = pick(top.min_attempts, base.min_attempts);
  out.min_tq_events = pick(top.min_tq_events, base.min_tq_events);
  out.verify_connection_minutes =
      pick(top.verify_connection_minutes, base.verify_connection_minutes);
  out.verify_reputation_minutes =
      pick(top.verify_reputation_minutes, base.verify_reputation_minutes);
  out.raise_quiet_days = pick(top.raise_quiet_days, base.raise_quiet_days);
  out.raise_max_deferral_rate = pick(top.raise_max_deferral_rate, base.raise_max_deferral_rate);
  out.raise_fraction = pick(top.raise_fraction, base.raise_fraction);
  out.raise_min_step = pick(top.raise_min_step, base.raise_min_step);
  out.raise_max_step = pick(top.raise_max_step, base.raise_max_step);
  out.raise_min_daily_attempts = pick(top.raise_min_daily_attempts, base.raise_min_daily_attempts);
  out.raise_min_busy_days = pick(top.raise_min_busy_days, base.raise_min_busy_days);
  out.connect_rate = pick(top.connect_rate, base.connect_rate);
  out.retry_failed_change_minutes =
      pick(top.retry_failed_change_minutes, base.retry_failed_change_minutes);
  out.max_changes_per_day = pick(top.max_changes_per_day, base.max_changes_per_day);
  out.min_reload_interval_minutes =
      pick(top.min_reload_interval_minutes, base.min_reload_interval_minutes);
  out.raise_hold_share = pick(top.raise_hold_share, base.raise_hold_share);
  out.no_effect_fall = pick(top.no_effect_fall, base.no_effect_fall);
  out.recovery_connection_hours =
      pick(top.recovery_connection_hours, base.recovery_connection_hours);
  out.recovery_slow_hours = pick(top.recovery_slow_hours, base.recovery_slow_hours);
  out.probe_max_hours = pick(top.probe_max_hours, base.probe_max_hours);
  out.trigger_events = pick(top.trigger_events, base.trigger_events);
  out.trigger_minutes = pick(top.trigger_minutes, base.trigger_minutes);
  out.concentration_factor = pick(top.concentration_factor, base.concentration_factor);
  out.vmta_recovery_hours = pick(top.vmta_recovery_hours, base.vmta_recovery_hours);
  out.warmup_stage_days = pick(top.warmup_stage_days, base.warmup_stage_days);
  out.warming_retry_after_minutes =
      pick(top.warming_retry_after_minutes, base.warming_retry_after_minutes);
  out.recovering_retry_after_minutes =
      pick(top.recovering_retry_after_minutes, base.recovering_retry_after_minutes);
  out.caps = base.caps;
  for (const auto& [isp, caps] : top.caps) {
    IspCaps& merged = out.caps[isp];
    merged.high = pick(caps.high, merged.high);
    merged.medium = pick(caps.medium, merged.medium);
    merged.low = pick(caps.low, merged.low);
    merged.warming = pick(caps.warming, merged.warming);
  }
  out.warmup_rates = base.warmup_rates;
  for (const auto& [isp, rates] : top.warmup_rates) out.warmup_rates[isp] = rates;
  return out;
}

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

LoadResult load_string(const std::string& text, const std::string& source) {
  LoadResult result;
  result.error = detail::parse_and_read(
      text, source, [&](const toml::table& root) { result.config = Reader(source).read(root); });
  return result;
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return LoadResult{std::nullopt, path + ": cannot be read"};
  if (std::optional<std::string> why = why_unsafe(path)) return LoadResult{std::nullopt, *why};
  std::ostringstream text;
  text << in.rdbuf();
  return load_string(text.str(), path);
}

}  // namespace sluice::config
