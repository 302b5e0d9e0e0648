#include "sim/policies.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "controller/policy.h"

namespace sluice::sim {

namespace {

constexpr int kAimdCeiling = 1000;

bool hit_by_throttle(const VmtaStep& s) {
  return s.throttled > 0 || s.uncurable > 0;
}

class StaticPolicy : public Policy {
 public:
  std::string name() const override { return "static"; }
  std::vector<int> settings(const World& world) override {
    if (settings_.empty()) settings_ = start_settings(world);
    return settings_;
  }
  void observe(const World&, const StepResult&) override {}

 private:
  std::vector<int> settings_;
};

// After a matching 421, a VMTA runs at `hold_value` (its normal value if lower) until
// `hold_seconds` pass without another, then snaps back: PowerMTA's backoff mode and KumoMTA's
// traffic-shaping rules, neither of which needs a configuration reload.
class HoldOnThrottle : public Policy {
 public:
  HoldOnThrottle(std::string name, int hold_value, std::int64_t hold_seconds)
      : name_(std::move(name)), hold_value_(hold_value), hold_seconds_(hold_seconds) {}

  std::string name() const override { return name_; }
  std::vector<int> settings(const World& world) override {
    if (normal_.empty()) {
      normal_ = start_settings(world);
      hold_until_.assign(normal_.size(), std::numeric_limits<std::int64_t>::min());
    }
    std::vector<int> out = normal_;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (world.now() < hold_until_[i]) out[i] = std::min(hold_value_, normal_[i]);
    }
    return out;
  }
  void observe(const World& world, const StepResult& step) override {
    // The step's last deferral may come at its very end.
    const std::int64_t step_end = step.at + world.scenario().step_seconds;
    for (std::size_t i = 0; i < step.vmtas.size(); ++i) {
      if (hit_by_throttle(step.vmtas[i])) hold_until_[i] = step_end + hold_seconds_;
    }
  }

 private:
  std::string name_;
  int hold_value_;
  std::int64_t hold_seconds_;
  std::vector<int> normal_;
  std::vector<std::int64_t> hold_until_;
};

class AimdPolicy : public Policy {
 public:
  std::string name() const override { return "aimd"; }
  std::vector<int> settings(const World& world) override {
    if (settings_.empty()) settings_ = start_settings(world);
    return settings_;
  }
  void observe(const World&, const StepResult& step) override {
    bool changed = false;
    for (std::size_t i = 0; i < step.vmtas.size(); ++i) {
      const VmtaStep& s = step.vmtas[i];
      const int next = s.refused > 0 || s.uncurable > 0 ? std::max(1, settings_[i] / 2)
                                                        : std::min(kAimdCeiling, settings_[i] + 1);
      changed = changed || next != settings_[i];
      settings_[i] = next;
    }
    if (changed) ++reloads_;
  }
  std::uint64_t reloads() const override { return reloads_; }

 private:
  std::vector<int> settings_;
  std::uint64_t reloads_ = 0;
};

class OraclePolicy : public Policy {
 public:
  std::string name() const override { return "oracle"; }
  std::vector<int> settings(const World& world) override {
    std::vector<int> out(world.vmtas().size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = world.limit(i);
    return out;
  }
  void observe(const World&, const StepResult&) override {}
};

double ratio(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

// The incident the time metrics measure: its window and the VMTAs it concerns.
struct Incident {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::vector<std::size_t> vmtas;
};

std::optional<Incident> find_incident(const config::Scenario& scenario, const World& world) {
  const auto event = std::find_if(scenario.events.begin(), scenario.events.end(),
                                  [](const config::SimEvent& e) { return e.incident; });
  if (event == scenario.events.end()) return std::nullopt;
  Incident incident{scenario.start + event->start, scenario.start + event->end, {}};
  for (std::size_t i = 0; i < world.vmtas().size(); ++i) {
    const VmtaRef& v = world.vmtas()[i];
    if (v.pool_name == event->pool && (event->vmta.empty() || event->vmta == v.vmta)) {
      incident.vmtas.push_back(i);
    }
  }
  return incident;
}

// Follows the incident's VMTAs step by step: when they first run below their settings from
// before the incident, and when they are all back at or above them after it.
class IncidentWatch {
 public:
  explicit IncidentWatch(Incident incident) : incident_(std::move(incident)) {}

  void see(std::int64_t at, const std::vector<int>& settings) {
    if (at < incident_.start || before_.empty()) {
      // Until the incident starts these are the latest settings before it (or, for an incident
      // from the very first step, the settings no observation has moved yet).
      before_.clear();
      for (const std::size_t i : incident_.vmtas) before_.push_back(settings[i]);
      if (at < incident_.start) return;
    }
    bool any_below = false;
    bool all_restored = true;
    for (std::size_t k = 0; k < incident_.vmtas.size(); ++k) {
      const int now = settings[incident_.vmtas[k]];
      any_below = any_below || now < before_[k];
      all_restored = all_restored && now >= before_[k];
    }
    if (!cut_at_ && any_below) cut_at_ = at;
    if (cut_at_ && !recovered_at_ && at >= incident_.end && all_restored) recovered_at_ = at;
  }

  std::optional<std::int64_t> time_to_cut() const {
    if (!cut_at_) return std::nullopt;
    return *cut_at_ - incident_.start;
  }
  std::optional<std::int64_t> time_to_recover() const {
    if (!recovered_at_) return std::nullopt;
    return *recovered_at_ - incident_.end;
  }

 private:
  Incident incident_;
  std::vector<int> before_;  // per incident VMTA
  std::optional<std::int64_t> cut_at_;
  std::optional<std::int64_t> recovered_at_;
};

// The metrics a limit may name; a time that never came has no value.
struct MetricReader {
  const char* name;
  std::optional<double> (*read)(const Metrics&);
};

std::optional<double> seconds(const std::optional<std::int64_t>& t) {
  if (!t) return std::nullopt;
  return static_cast<double>(*t);
}

constexpr MetricReader kMetricReaders[] = {
    {"delivered", [](const Metrics& m) -> std::optional<double> { return m.delivered; }},
    {"deferred", [](const Metrics& m) -> std::optional<double> { return m.deferred; }},
    {"deferral_rate", [](const Metrics& m) -> std::optional<double> { return m.deferral_rate; }},
    {"overrun", [](const Metrics& m) -> std::optional<double> { return m.overrun; }},
    {"delivered_share",
     [](const Metrics& m) -> std::optional<double> { return m.delivered_share; }},
    {"changes", [](const Metrics& m) -> std::optional<double> { return m.changes; }},
    {"reloads", [](const Metrics& m) -> std::optional<double> { return m.reloads; }},
    {"time_to_cut", [](const Metrics& m) { return seconds(m.time_to_cut); }},
    {"time_to_recover", [](const Metrics& m) { return seconds(m.time_to_recover); }},
};

const MetricReader* find_metric(const std::string& name) {
  for (const MetricReader& reader : kMetricReaders) {
    if (name == reader.name) return &reader;
  }
  return nullptr;
}

// Whole numbers as such, the rest to three significant digits.
std::string number(double v) {
  char buf[48];
  if (v == std::floor(v) || std::fabs(v) >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

}  // namespace

std::vector<int> start_settings(const World& world) {
  const PolicyParams policy = default_policy();
  std::vector<int> out;
  out.reserve(world.vmtas().size());
  for (const VmtaRef& v : world.vmtas()) {
    const config::SimPool& pool = world.scenario().pools[v.pool];
    out.push_back(
        pool.start_setting > 0
            ? static_cast<int>(pool.start_setting)
            : range_for(policy, v.isp, parse_tier(pool.tier).value_or(Tier::medium)).start);
  }
  return out;
}

std::unique_ptr<Policy> make_static() {
  return std::make_unique<StaticPolicy>();
}
std::unique_ptr<Policy> make_pmta_backoff() {
  return std::make_unique<HoldOnThrottle>("pmta-backoff", 2, 3600);
}
std::unique_ptr<Policy> make_kumo_step() {
  return std::make_unique<HoldOnThrottle>("kumo-step", 1, 90 * 60);
}
std::unique_ptr<Policy> make_aimd() {
  return std::make_unique<AimdPolicy>();
}
std::unique_ptr<Policy> make_oracle() {
  return std::make_unique<OraclePolicy>();
}

std::unique_ptr<Policy> make_baseline(const std::string& name) {
  if (name == "static") return make_static();
  if (name == "pmta-backoff") return make_pmta_backoff();
  if (name == "kumo-step") return make_kumo_step();
  if (name == "aimd") return make_aimd();
  if (name == "oracle") return make_oracle();
  return nullptr;
}

Run run_policy(const config::Scenario& scenario, Policy& policy, bool keep_trace) {
  World world(scenario);
  Run run;
  Metrics& m = run.metrics;
  m.policy = policy.name();
  std::optional<IncidentWatch> watch;
  if (std::optional<Incident> incident = find_incident(scenario, world)) {
    watch.emplace(std::move(*incident));
  }
  if (keep_trace) {
    const std::size_t steps = world.steps_total();
    run.trace.at.reserve(steps);
    run.trace.settings.reserve(steps);
    run.trace.limits.reserve(steps);
    run.trace.deferral_rate.reserve(steps);
  }
  std::vector<int> previous;
  while (!world.done()) {
    std::vector<int> settings = policy.settings(world);
    const StepResult step = world.step(settings);
    policy.observe(world, step);

    std::uint64_t delivered = 0;
    std::uint64_t deferred = 0;
    for (const VmtaStep& s : step.vmtas) {
      delivered += s.delivered;
      deferred += s.deferred();
      m.overrun += static_cast<std::uint64_t>(s.refused);
    }
    m.delivered += delivered;
    m.deferred += deferred;
    if (!previous.empty()) {
      for (std::size_t i = 0; i < settings.size(); ++i) {
        if (settings[i] != previous[i]) ++m.changes;
      }
    }
    if (watch) watch->see(step.at, settings);
    if (keep_trace) {
      run.trace.at.push_back(step.at);
      run.trace.settings.push_back(settings);
      std::vector<int>& limits = run.trace.limits.emplace_back();
      limits.reserve(step.vmtas.size());
      for (const VmtaStep& s : step.vmtas) limits.push_back(s.limit);
      run.trace.deferral_rate.push_back(ratio(deferred, delivered + deferred));
    }
    previous = std::move(settings);
  }
  m.deferral_rate = ratio(m.deferred, m.delivered + m.deferred);
  m.delivered_share = 1.0;
  m.reloads = policy.reloads();
  if (watch) {
    m.time_to_cut = watch->time_to_cut();
    m.time_to_recover = watch->time_to_recover();
  }
  return run;
}

void compare_with_oracle(std::vector<Metrics>& metrics) {
  const auto oracle = std::find_if(metrics.begin(), metrics.end(),
                                   [](const Metrics& m) { return m.policy == "oracle"; });
  const std::uint64_t reference = oracle == metrics.end() ? 0 : oracle->delivered;
  for (Metrics& m : metrics) {
    m.delivered_share =
        reference == 0 ? 1.0 : static_cast<double>(m.delivered) / static_cast<double>(reference);
  }
}

std::vector<std::string> failed_limits(const config::Scenario& scenario,
                                       const std::vector<Metrics>& metrics) {
  const auto find = [&](const std::string& policy) -> const Metrics* {
    const auto it = std::find_if(metrics.begin(), metrics.end(),
                                 [&](const Metrics& m) { return m.policy == policy; });
    return it == metrics.end() ? nullptr : &*it;
  };
  std::vector<std::string> failed;
  for (const config::SimLimit& limit : scenario.limits) {
    const Metrics* subject = find(limit.policy);
    if (subject == nullptr) continue;
    // A share of the oracle's means nothing when the oracle did not run.
    if (limit.metric == "delivered_share" && find("oracle") == nullptr) continue;
    const std::string who = limit.policy + " " + limit.metric;
    const MetricReader* metric = find_metric(limit.metric);
    if (metric == nullptr) {
      failed.push_back(who + ": no such metric");
      continue;
    }
    // A time that never came (no cut, no recovery) counts as infinitely long.
    const std::optional<double> value = metric->read(*subject);
    const std::string shown = value ? number(*value) : "(never happened)";
    if (limit.at_most && (!value || *value > *limit.at_most)) {
      failed.push_back(who + " " + shown + " is not at most " + number(*limit.at_most));
    }
    if (limit.at_least && value && *value < *limit.at_least) {
      failed.push_back(who + " " + shown + " is not at least " + number(*limit.at_least));
    }
    const auto compare = [&](const std::string& other, const char* relation, auto holds) {
      if (other.empty()) return;
      const Metrics* reference = find(other);
      if (reference == nullptr) return;
      const std::optional<double> theirs = metric->read(*reference);
      const double inf = std::numeric_limits<double>::infinity();
      if (holds(value.value_or(inf), limit.factor * theirs.value_or(inf))) return;
      failed.push_back(who + " " + shown + " is not " + relation + " " + number(limit.factor) +
                       " x " + other + "'s " + (theirs ? number(*theirs) : "(never happened)"));
    };
    compare(limit.below, "below", [](double a, double b) { return a < b; });
    compare(limit.above, "above", [](double a, double b) { return a > b; });
  }
  return failed;
}

}  // namespace sluice::sim
