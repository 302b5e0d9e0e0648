#pragma once
// A simulation scenario (examples/scenarios/*.toml): the hidden world `sluice simulate` runs the
// policies against. Plain data; the model that uses it is in sim/ and docs/simulator.md.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::config {

// One source IP of a pool: its VMTA, its address, and the connection limit the ISP grants it
// when nothing has happened (the hidden truth the policies must find).
struct SimIp {
  std::string vmta;
  std::string address;
  std::int64_t limit = 1;  // 1..1000
};

struct SimPool {
  std::string name;
  std::string isp;     // gmail, outlook, yahoo, gmx, orange (their deferral texts are known)
  std::string domain;  // recipient domain, e.g. "gmail.com"
  std::string tier = "medium";
  std::int64_t start_setting = 0;  // 0: the tier's starting value
  double demand = 0;               // messages offered per step (the queue gains this)
  std::vector<SimIp> ips;
  std::int64_t line = 0;
};

// What changes in the world over [start, end): scenario time in seconds from its start.
enum class SimEventKind {
  limit,      // the affected IPs' limit is multiplied by `value` (a reputation drop, a burst)
  noise,      // a share `value` of messages gets a recipient-level deferral (450 4.2.1 ...)
  uncurable,  // a share `value` of messages gets a throttle deferral whatever the concurrency
  demand,     // the pool's demand is multiplied by `value`
};

struct SimEvent {
  SimEventKind kind = SimEventKind::limit;
  std::int64_t start = 0;  // seconds from the scenario's start
  std::int64_t end = 0;    // exclusive; > start
  std::string pool;        // must name a [[pool]]
  std::string vmta;        // empty: every IP of the pool
  double value = 1;        // limit, demand: > 0; noise, uncurable: 0..1
  bool incident = false;   // the incident the time-to-cut and time-to-recover figures measure
  std::int64_t line = 0;
};

// A pass limit checked by the tests and by `sluice simulate` (exit 1 when one fails):
// `policy`'s `metric` compared with a number (at_most / at_least) or with another policy's
// value times `factor` (below / above).
struct SimLimit {
  std::string policy;  // sluice, static, pmta-backoff, kumo-step, aimd, oracle
  std::string metric;  // delivered, deferred, deferral_rate, overrun, delivered_share, changes,
                       // reloads, time_to_cut, time_to_recover (seconds)
  std::optional<double> at_most;
  std::optional<double> at_least;
  std::string below;  // another policy: value < factor x theirs
  std::string above;  // another policy: value > factor x theirs
  double factor = 1;
  std::int64_t line = 0;
};

struct Scenario {
  std::string source;  // the file, for messages
  std::string name;
  std::string description;
  std::int64_t start = 0;  // unix seconds of the first step (a whole UTC day)
  std::int64_t days = 1;   // 1..60
  std::int64_t step_seconds = 300;
  std::int64_t messages_per_connection = 10;  // what one open connection delivers per step
  // Reputation dynamics: a step in which an IP refuses more than `overrun_tolerance` of its
  // connections counts as overrun; `overrun_steps` such steps in a row multiply its current
  // limit by `overrun_penalty`; every whole UTC day without overrun moves it back up by
  // `recovery_per_day` towards the scenario's limit.
  double overrun_tolerance = 0.1;
  std::int64_t overrun_steps = 6;
  double overrun_penalty = 0.8;
  std::int64_t recovery_per_day = 1;
  std::vector<SimPool> pools;
  std::vector<SimEvent> events;
  std::vector<SimLimit> limits;
};

struct ScenarioLoad {
  std::optional<Scenario> scenario;
  std::string error;  // "FILE:LINE: problem"
};

ScenarioLoad parse_scenario(std::string_view text, const std::string& source);
ScenarioLoad load_scenario(const std::string& path);

}  // namespace sluice::config
