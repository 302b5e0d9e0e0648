#include "config/scenario.h"

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "config/toml_reader.h"

namespace sluice::config {

namespace {

using detail::rendered;
using detail::shown;

// The ISPs whose deferral texts the simulator knows, with the recipient domain a pool sends to
// when it names none.
const std::map<std::string, std::string> kIspDomains = {{"gmail", "gmail.com"},
                                                        {"outlook", "outlook.com"},
                                                        {"yahoo", "yahoo.com"},
                                                        {"gmx", "gmx.de"},
                                                        {"orange", "orange.fr"}};

const std::map<std::string, SimEventKind> kEventKinds = {{"limit", SimEventKind::limit},
                                                         {"noise", SimEventKind::noise},
                                                         {"uncurable", SimEventKind::uncurable},
                                                         {"demand", SimEventKind::demand}};

const std::set<std::string> kPolicies = {"sluice",    "static", "pmta-backoff",
                                         "kumo-step", "aimd",   "oracle"};
constexpr const char* kPolicyList = "sluice, static, pmta-backoff, kumo-step, aimd, oracle";

const std::set<std::string> kMetrics = {"delivered", "deferred",        "deferral_rate",
                                        "overrun",   "delivered_share", "changes",
                                        "reloads",   "time_to_cut",     "time_to_recover"};

constexpr std::int64_t kDay = 86400;
constexpr std::size_t kMaxIps = 64;

// "2d12h30m", "45m", "0": seconds. Units in the order d, h, m, each at most once.
std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (text == "0") return 0;
  if (text.empty()) return std::nullopt;
  constexpr std::string_view kUnits = "dhm";
  constexpr std::int64_t kUnitSeconds[] = {kDay, 3600, 60};
  std::int64_t total = 0;
  std::size_t next_unit = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t count = 0;
    std::size_t digits = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      count = count * 10 + (text[i] - '0');
    }
    // Six digits are more than any scenario lasts, and keep the sum far from overflowing.
    if (digits == 0 || digits > 6 || i == text.size()) return std::nullopt;
    const std::size_t unit = kUnits.find(text[i], next_unit);
    if (unit == std::string_view::npos) return std::nullopt;
    total += count * kUnitSeconds[unit];
    next_unit = unit + 1;
    ++i;
  }
  return total;
}

// Four decimal octets 0..255 without leading zeros, which some parsers would read as octal.
bool is_ipv4(std::string_view text) {
  int parts = 0;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = std::min(text.find('.', begin), text.size());
    const std::string_view octet = text.substr(begin, end - begin);
    if (octet.empty() || octet.size() > 3 ||
        octet.find_first_not_of("0123456789") != std::string_view::npos ||
        (octet.size() > 1 && octet.front() == '0') || std::stoi(std::string(octet)) > 255) {
      return false;
    }
    ++parts;
    if (end == text.size()) return parts == 4;
    begin = end + 1;
  }
}

// Dot-separated labels of letters, digits and hyphens: "gmail.com".
bool is_domain(std::string_view text) {
  if (text.empty() || text.size() > 253 || text.find('.') == std::string_view::npos) return false;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = std::min(text.find('.', begin), text.size());
    const std::string_view label = text.substr(begin, end - begin);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        label.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
            std::string_view::npos) {
      return false;
    }
    if (end == text.size()) return true;
    begin = end + 1;
  }
}

class ScenarioReader : public detail::TomlReader {
 public:
  using TomlReader::TomlReader;

  Scenario read(const toml::table& root) const {
    Scenario s;
    s.source = source_;
    only_keys(root,
              {"name", "description", "start", "days", "step_minutes", "messages_per_connection",
               "reputation", "pool", "event", "limit"},
              "");
    s.name = name(root, "name", "scenario");
    s.description = string(root, "description").value_or("");
    s.start = read_start(root);
    s.days = integer_in(root, "days", "", 1, 60).value_or(s.days);
    if (const toml::node* node = root.get("step_minutes")) {
      const auto* v = node->as_integer();
      if (v == nullptr || v->get() < 1 || v->get() > 60 || 1440 % v->get() != 0) {
        fail(node, "'step_minutes' must be an integer from 1 to 60 that divides a day, not " +
                       rendered(*node));
      }
      s.step_seconds = v->get() * 60;
    }
    s.messages_per_connection = integer_in(root, "messages_per_connection", "", 1, 10000)
                                    .value_or(s.messages_per_connection);
    if (const toml::table* reputation = table(root, "reputation")) read_reputation(*reputation, s);
    read_pools(root, s);
    read_events(root, s);
    read_limits(root, s);
    return s;
  }

 private:
  // An integer from `low` to `high`; `where` starts the message ("", "[reputation] ", ...).
  std::optional<std::int64_t> integer_in(const toml::table& t, const char* key,
                                         const std::string& where, std::int64_t low,
                                         std::int64_t high) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const auto* v = node->as_integer();
    if (v == nullptr || v->get() < low || v->get() > high) {
      fail(node, where + "'" + key + "' must be an integer from " + std::to_string(low) + " to " +
                     std::to_string(high) + ", not " + rendered(*node));
    }
    return v->get();
  }

  // A number (an integer is taken for a float) that `fits`, which `range` describes.
  std::optional<double> number(const toml::table& t, const char* key, const std::string& where,
                               const std::function<bool(double)>& fits,
                               const std::string& range) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    std::optional<double> value;
    if (const auto* v = node->as_floating_point()) value = v->get();
    if (const auto* v = node->as_integer()) value = static_cast<double>(v->get());
    // NaN and the infinities fit no range.
    if (!value || !std::isfinite(*value) || !fits(*value)) {
      fail(node, where + "'" + key + "' must be a number" + (range.empty() ? "" : " " + range) +
                     ", not " + rendered(*node));
    }
    return value;
  }

  // A date (midnight UTC) or a time with its offset, native or written as a string; it must be a
  // whole UTC day, so that the simulated days are UTC days.
  std::int64_t read_start(const toml::table& root) const {
    const toml::node* node = root.get("start");
    if (node == nullptr) fail(&root, "the scenario needs 'start'");
    const std::string expected =
        "'start' must be a date such as \"2026-11-02\" or a time with its offset such as "
        "\"2026-11-02T00:00:00Z\", not " +
        rendered(*node);
    toml::table parsed;
    const toml::node* value = node;
    if (const auto* s = node->as_string()) {
      // Only the characters of a date or a time reach the parser, so the text cannot add keys.
      if (s->get().empty() ||
          s->get().find_first_not_of("0123456789-:.+TZtz ") != std::string::npos) {
        fail(node, expected);
      }
      try {
        parsed = toml::parse("t = " + s->get());
      } catch (const toml::parse_error&) {
        fail(node, expected);
      }
      value = parsed.get("t");
    }
    toml::date_time when;
    if (const auto* d = value->as_date()) {
      when = toml::date_time{d->get(), toml::time{}, toml::time_offset{}};
    } else if (const auto* dt = value->as_date_time(); dt != nullptr && dt->get().offset) {
      when = dt->get();
    } else {
      fail(node, expected);
    }
    const std::chrono::sys_days day = std::chrono::year{when.date.year} /
                                      std::chrono::month{when.date.month} /
                                      std::chrono::day{when.date.day};
    const std::int64_t seconds = day.time_since_epoch().count() * kDay + when.time.hour * 3600 +
                                 when.time.minute * 60 + when.time.second -
                                 when.offset->minutes * 60;
    if (seconds % kDay != 0 || when.time.nanosecond != 0) {
      std::ostringstream text;
      text << when;
      fail(node, "'start' must be a whole UTC day (midnight UTC), not " + text.str());
    }
    return seconds;
  }

  void read_reputation(const toml::table& t, Scenario& s) const {
    only_keys(t, {"overrun_tolerance", "overrun_steps", "overrun_penalty", "recovery_per_day"},
              "[reputation]");
    const std::string where = "[reputation] ";
    s.overrun_tolerance =
        number(
            t, "overrun_tolerance", where, [](double v) { return v >= 0 && v <= 1; }, "from 0 to 1")
            .value_or(s.overrun_tolerance);
    s.overrun_steps = integer_in(t, "overrun_steps", where, 1, 1000).value_or(s.overrun_steps);
    s.overrun_penalty = number(
                            t, "overrun_penalty", where, [](double v) { return v > 0 && v <= 1; },
                            "above 0 and at most 1")
                            .value_or(s.overrun_penalty);
    s.recovery_per_day =
        integer_in(t, "recovery_per_day", where, 0, 1000).value_or(s.recovery_per_day);
  }

  void read_pools(const toml::table& root, Scenario& s) const {
    const toml::array* pools = array_of_tables(root, "pool");
    if (pools == nullptr) fail(&root, "the scenario needs at least one [[pool]]");
    std::map<std::string, std::string> vmta_pool;
    for (const toml::node& node : *pools) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"name", "isp", "domain", "tier", "start_setting", "demand", "ips"}, "[[pool]]");
      SimPool pool;
      pool.line = line(t);
      pool.name = name(t, "name", "pool");
      for (const SimPool& other : s.pools) {
        if (other.name == pool.name) {
          fail(t.get("name"), "pool '" + pool.name + "' is defined twice (first at line " +
                                  std::to_string(other.line) + ")");
        }
      }
      const std::string where = "pool '" + pool.name + "': ";
      const std::optional<std::string> isp = string(t, "isp");
      if (!isp) fail(&t, "pool '" + pool.name + "' needs 'isp'");
      if (!kIspDomains.contains(*isp)) {
        fail(t.get("isp"),
             where + "isp '" + shown(*isp) + "' is not one of gmail, outlook, yahoo, gmx, orange");
      }
      pool.isp = *isp;
      pool.domain = string(t, "domain").value_or(kIspDomains.at(pool.isp));
      if (!is_domain(pool.domain)) {
        fail(t.get("domain"), where + "domain '" + shown(pool.domain) + "' is not a domain name");
      }
      if (auto tier = string(t, "tier")) {
        if (!detail::kTierNames.contains(*tier)) {
          fail(t.get("tier"),
               where + "tier '" + shown(*tier) + "' is not one of high, medium, low, warming");
        }
        pool.tier = *tier;
      }
      pool.start_setting = integer_in(t, "start_setting", where, 1, 1000).value_or(0);
      const std::optional<double> demand = number(
          t, "demand", where, [](double v) { return v > 0; }, "above 0");
      if (!demand) fail(&t, "pool '" + pool.name + "' needs 'demand'");
      pool.demand = *demand;
      read_ips(t, pool, vmta_pool);
      s.pools.push_back(std::move(pool));
    }
  }

  // `vmta_pool`: the pool of every VMTA read so far, as a VMTA is one source IP of one pool.
  void read_ips(const toml::table& t, SimPool& pool,
                std::map<std::string, std::string>& vmta_pool) const {
    const std::string where = "pool '" + pool.name + "': ";
    const toml::node* node = t.get("ips");
    if (node == nullptr) fail(&t, "pool '" + pool.name + "' needs 'ips'");
    const toml::array* ips = node->as_array();
    if (ips != nullptr && (ips->empty() || ips->size() > kMaxIps)) {
      fail(node, where + "'ips' must hold 1 to " + std::to_string(kMaxIps) + " IPs, not " +
                     std::to_string(ips->size()));
    }
    if (ips == nullptr || !ips->is_array_of_tables()) {
      fail(node, where +
                     "'ips' must be an array of tables such as "
                     "{ vmta = \"ip-1\", address = \"198.51.100.1\", limit = 8 }, not " +
                     rendered(*node));
    }
    for (const toml::node& item : *ips) {
      const toml::table& ip_table = *item.as_table();
      only_keys(ip_table, {"vmta", "address", "limit"}, "'ips'", where);
      if (!ip_table.contains("vmta")) fail(&ip_table, where + "an IP needs 'vmta'");
      SimIp ip;
      ip.vmta = name(ip_table, "vmta", where + "vmta");
      auto [owner, fresh] = vmta_pool.emplace(ip.vmta, pool.name);
      if (!fresh && owner->second == pool.name) {
        fail(ip_table.get("vmta"), where + "vmta '" + ip.vmta + "' is listed twice");
      }
      if (!fresh) {
        fail(ip_table.get("vmta"), "vmta '" + ip.vmta + "' is in two pools: '" + owner->second +
                                       "' and '" + pool.name + "'");
      }
      const std::string ip_where = "pool '" + pool.name + "', vmta '" + ip.vmta + "': ";
      const std::optional<std::string> address = string(ip_table, "address");
      if (!address) fail(&ip_table, ip_where + "needs 'address'");
      if (!is_ipv4(*address)) {
        fail(ip_table.get("address"), ip_where + "address '" + shown(*address) +
                                          "' is not an IPv4 address such as 198.51.100.11");
      }
      ip.address = *address;
      const std::optional<std::int64_t> limit = integer_in(ip_table, "limit", ip_where, 1, 1000);
      if (!limit) fail(&ip_table, ip_where + "needs 'limit'");
      ip.limit = *limit;
      pool.ips.push_back(std::move(ip));
    }
  }

  // An event's start or end: seconds from the scenario's start.
  std::int64_t offset(const toml::table& t, const char* key) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) fail(&t, std::string("[[event]] needs '") + key + "'");
    std::optional<std::int64_t> seconds;
    if (const auto* s = node->as_string()) seconds = parse_duration(s->get());
    if (const auto* i = node->as_integer(); i != nullptr && i->get() == 0) seconds = 0;
    if (!seconds) {
      fail(node, std::string("[[event]] '") + key +
                     "' must be a duration such as \"2d\", \"12h\", \"2d12h30m\" or \"0\", not " +
                     rendered(*node));
    }
    return *seconds;
  }

  void read_events(const toml::table& root, Scenario& s) const {
    const toml::array* events = array_of_tables(root, "event");
    if (events == nullptr) return;
    const std::int64_t length = s.days * kDay;
    const std::string days_text = std::to_string(s.days) + (s.days == 1 ? " day" : " days");
    std::int64_t incident_line = 0;
    for (const toml::node& node : *events) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"kind", "pool", "vmta", "start", "end", "value", "incident"}, "[[event]]");
      SimEvent e;
      e.line = line(t);
      const std::optional<std::string> kind = string(t, "kind");
      if (!kind) fail(&t, "[[event]] needs 'kind'");
      const auto known = kEventKinds.find(*kind);
      if (known == kEventKinds.end()) {
        fail(t.get("kind"), "[[event]] 'kind' must be limit, noise, uncurable or demand, not '" +
                                shown(*kind) + "'");
      }
      e.kind = known->second;
      if (!t.contains("pool")) fail(&t, "[[event]] needs 'pool'");
      e.pool = name(t, "pool", "[[event]] pool");
      const auto pool = std::find_if(s.pools.begin(), s.pools.end(),
                                     [&](const SimPool& p) { return p.name == e.pool; });
      if (pool == s.pools.end()) {
        fail(t.get("pool"), "[[event]] pool '" + e.pool + "' is not a [[pool]] of the scenario");
      }
      if (t.contains("vmta")) {
        e.vmta = name(t, "vmta", "[[event]] vmta");
        if (e.kind == SimEventKind::demand) {
          fail(t.get("vmta"),
               "[[event]] a demand event changes the whole pool: it takes no 'vmta'");
        }
        if (std::none_of(pool->ips.begin(), pool->ips.end(),
                         [&](const SimIp& ip) { return ip.vmta == e.vmta; })) {
          fail(t.get("vmta"),
               "[[event]] vmta '" + e.vmta + "' is not one of pool '" + e.pool + "'");
        }
      }
      e.start = offset(t, "start");
      e.end = offset(t, "end");
      if (e.start >= length) {
        fail(t.get("start"), "[[event]] 'start' " + rendered(*t.get("start")) +
                                 " is not before the scenario's end (" + days_text + ")");
      }
      if (e.end <= e.start) {
        fail(t.get("end"), "[[event]] 'end' " + rendered(*t.get("end")) +
                               " is not after its 'start' " + rendered(*t.get("start")));
      }
      if (e.end > length) {
        fail(t.get("end"), "[[event]] 'end' " + rendered(*t.get("end")) +
                               " is after the scenario's end (" + days_text + ")");
      }
      const bool factor = e.kind == SimEventKind::limit || e.kind == SimEventKind::demand;
      const std::optional<double> value =
          factor ? number(
                       t, "value", "[[event]] ", [](double v) { return v > 0 && v <= 100; },
                       "above 0 and at most 100 for kind '" + *kind + "'")
                 : number(
                       t, "value", "[[event]] ", [](double v) { return v >= 0 && v <= 1; },
                       "from 0 to 1 for kind '" + *kind + "'");
      if (!value) fail(&t, "[[event]] needs 'value'");
      e.value = *value;
      if (const toml::node* flag = t.get("incident")) {
        if (!flag->is_boolean()) {
          fail(flag, "[[event]] 'incident' must be true or false, not " + rendered(*flag));
        }
        e.incident = flag->as_boolean()->get();
      }
      if (e.incident) {
        // The time-to-cut and time-to-recover figures measure one incident.
        if (incident_line != 0) {
          fail(t.get("incident"), "a second incident [[event]] (the first is on line " +
                                      std::to_string(incident_line) + ")");
        }
        incident_line = e.line;
      }
      s.events.push_back(std::move(e));
    }
  }

  void read_limits(const toml::table& root, Scenario& s) const {
    const toml::array* limits = array_of_tables(root, "limit");
    if (limits == nullptr) return;
    const bool has_incident =
        std::any_of(s.events.begin(), s.events.end(), [](const SimEvent& e) { return e.incident; });
    for (const toml::node& node : *limits) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"policy", "metric", "at_most", "at_least", "below", "above", "factor"},
                "[[limit]]");
      SimLimit limit;
      limit.line = line(t);
      limit.policy = policy(t, "policy");
      const std::optional<std::string> metric = string(t, "metric");
      if (!metric) fail(&t, "[[limit]] needs 'metric'");
      if (!kMetrics.contains(*metric)) {
        fail(t.get("metric"),
             "[[limit]] 'metric' must be one of delivered, deferred, deferral_rate, overrun, "
             "delivered_share, changes, reloads, time_to_cut, time_to_recover, not '" +
                 shown(*metric) + "'");
      }
      if (metric->starts_with("time_to_") && !has_incident) {
        fail(t.get("metric"),
             "[[limit]] metric '" + *metric + "' needs an [[event]] with incident = true");
      }
      limit.metric = *metric;
      const int comparisons = t.contains("at_most") + t.contains("at_least") + t.contains("below") +
                              t.contains("above");
      if (comparisons != 1) {
        fail(&t, "[[limit]] needs exactly one of at_most, at_least, below, above");
      }
      const auto any = [](double) { return true; };
      limit.at_most = number(t, "at_most", "[[limit]] ", any, "");
      limit.at_least = number(t, "at_least", "[[limit]] ", any, "");
      if (t.contains("below")) limit.below = policy(t, "below");
      if (t.contains("above")) limit.above = policy(t, "above");
      if (limit.below == limit.policy || limit.above == limit.policy) {
        const char* key = t.contains("below") ? "below" : "above";
        fail(t.get(key), std::string("[[limit]] '") + key + "' names the limit's own policy '" +
                             limit.policy + "'");
      }
      if (const toml::node* factor = t.get("factor")) {
        if (limit.below.empty() && limit.above.empty()) {
          fail(factor, "[[limit]] 'factor' goes only with 'below' or 'above'");
        }
        limit.factor = *number(
            t, "factor", "[[limit]] ", [](double v) { return v > 0; }, "above 0");
      }
      s.limits.push_back(std::move(limit));
    }
  }

  // A policy `sluice simulate` runs, under `key`.
  std::string policy(const toml::table& t, const char* key) const {
    const std::optional<std::string> chosen = string(t, key);
    if (!chosen) fail(&t, std::string("[[limit]] needs '") + key + "'");
    if (!kPolicies.contains(*chosen)) {
      fail(t.get(key), std::string("[[limit]] '") + key + "' must be one of " + kPolicyList +
                           ", not '" + shown(*chosen) + "'");
    }
    return *chosen;
  }
};

}  // namespace

ScenarioLoad parse_scenario(std::string_view text, const std::string& source) {
  ScenarioLoad result;
  result.error = detail::parse_and_read(text, source, [&](const toml::table& root) {
    result.scenario = ScenarioReader(source).read(root);
  });
  return result;
}

ScenarioLoad load_scenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ScenarioLoad{std::nullopt, path + ": cannot be read"};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_scenario(text.str(), path);
}

}  // namespace sluice::config
