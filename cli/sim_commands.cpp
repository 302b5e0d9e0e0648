#include "cli/sim_commands.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "adapters/accounting_reader.h"
#include "adapters/atomic_file.h"
#include "adapters/fragment_files.h"
#include "adapters/system_clock.h"
#include "cli/decision_format.h"
#include "cli/sim_html.h"
#include "config/scenario.h"
#include "controller/time_format.h"
#include "sim/simulation.h"
#include "state/sqlite_store.h"

namespace sluice::cli {

namespace {

using Json = nlohmann::ordered_json;
constexpr int kRuntimeError = 1;

int fail(const std::string& message) {
  std::fprintf(stderr, "sluice: error: %s\n", message.c_str());
  return kRuntimeError;
}

std::string duration_text(const std::optional<std::int64_t>& seconds) {
  if (!seconds) return "-";
  const std::int64_t m = *seconds / 60;
  char buf[32];
  if (m < 120) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(m));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fh", static_cast<double>(*seconds) / 3600);
  }
  return buf;
}

Json optional_json(const std::optional<std::int64_t>& v) {
  return v ? Json(*v) : Json();
}

// A directory of its own for the sluice policy's files, removed when done.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-sim-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void print_table(const sim::SimulationResult& r) {
  const config::Scenario& s = r.scenario;
  std::size_t ips = 0;
  for (const config::SimPool& p : s.pools) ips += p.ips.size();
  std::printf("scenario %s: %lld days in steps of %lld min, %zu pools, %zu IPs\n", s.name.c_str(),
              static_cast<long long>(s.days), static_cast<long long>(s.step_seconds / 60),
              s.pools.size(), ips);
  if (!s.description.empty()) std::printf("%s\n", s.description.c_str());
  std::printf("\n%-13s %10s %9s %8s %8s %7s %8s %8s %7s %10s\n", "POLICY", "DELIVERED", "DEFERRED",
              "DEF RATE", "OVERRUN", "SHARE", "CHANGES", "RELOADS", "TO CUT", "TO RECOVER");
  for (const sim::Run& run : r.runs) {
    const sim::Metrics& m = run.metrics;
    std::printf(
        "%-13s %10llu %9llu %7.2f%% %8llu %6.1f%% %8llu %8llu %7s %10s\n", m.policy.c_str(),
        static_cast<unsigned long long>(m.delivered), static_cast<unsigned long long>(m.deferred),
        m.deferral_rate * 100, static_cast<unsigned long long>(m.overrun), m.delivered_share * 100,
        static_cast<unsigned long long>(m.changes), static_cast<unsigned long long>(m.reloads),
        duration_text(m.time_to_cut).c_str(), duration_text(m.time_to_recover).c_str());
  }
}

Json result_json(const sim::SimulationResult& r) {
  Json policies = Json::array();
  for (const sim::Run& run : r.runs) {
    const sim::Metrics& m = run.metrics;
    policies.push_back({{"policy", m.policy},
                        {"delivered", m.delivered},
                        {"deferred", m.deferred},
                        {"deferral_rate", m.deferral_rate},
                        {"overrun", m.overrun},
                        {"delivered_share", m.delivered_share},
                        {"changes", m.changes},
                        {"reloads", m.reloads},
                        {"time_to_cut", optional_json(m.time_to_cut)},
                        {"time_to_recover", optional_json(m.time_to_recover)}});
  }
  Json decisions = Json::array();
  for (const Decision& d : r.sluice_decisions) decisions.push_back(decision_json(d));
  return {{"scenario", r.scenario.name},
          {"days", r.scenario.days},
          {"step_seconds", r.scenario.step_seconds},
          {"policies", policies},
          {"sluice_decisions", decisions},
          {"failed_limits", r.failed_limits}};
}

// A memory-only fragment store for replay: reads fall through to the real fragments (so that
// the replay starts from the operator's values), writes stay in memory.
class ScratchFragments : public FragmentStore {
 public:
  explicit ScratchFragments(const std::string& dir) : real_(dir) {}
  using FragmentStore::path;
  using FragmentStore::read;
  using FragmentStore::write;
  Expected<std::optional<std::string>> read(const FragmentKey& key) override {
    auto found = written_.find(path(key));
    if (found != written_.end()) return found->second;
    return real_.read(key);
  }
  Status write(const FragmentKey& key, const std::optional<std::string>& content) override {
    written_[path(key)] = content;
    return ok_status();
  }
  std::string path(const FragmentKey& key) const override { return real_.path(key); }

 private:
  adapters::FragmentFiles real_;
  std::map<std::string, std::optional<std::string>> written_;
};

// History is replayed as the policy alone would have run it: today's overrides did not exist
// then.
class NoOverrides : public OverrideSource {
 public:
  OverrideRead read() override { return parse(""); }
  OverrideRead parse(const std::string&) override { return OverrideRead{Overrides{}, "", ""}; }
};

// pmta for a replay: every change is accepted, nothing runs.
class AcceptingPmta : public CommandRunner {
 public:
  CommandResult run(const std::vector<std::string>& argv, std::chrono::milliseconds) override {
    CommandResult r;
    r.exit_code = 0;
    r.out = argv.size() == 2 && argv[1] == "reload" ? "Configuration reloaded.\n"
                                                    : "Configuration OK\n";
    return r;
  }
};

}  // namespace

int run_simulate(const GlobalOptions& global, const SimulateArgs& args) {
  Expected<config::Config> config = load_config(global);
  if (!config) return fail(config.error().message);
  const config::ScenarioLoad load = config::load_scenario(args.scenario);
  if (!load.scenario) return fail(load.error);

  ScratchDir scratch;
  if (scratch.path().empty()) return fail("cannot create a temporary directory");
  sim::SimulationOptions options;
  if (!args.policies.empty()) options.policies = args.policies;
  options.days = args.days;
  options.keep_traces = !args.html.empty();
  options.sluice_policy = policy_for(*config, config::PoolTable{});
  options.work_dir = scratch.path();
  Expected<sim::SimulationResult> result = sim::simulate(*load.scenario, options);
  if (!result) return fail(result.error().message);

  if (global.json) {
    std::printf("%s\n", result_json(*result).dump(2).c_str());
  } else {
    print_table(*result);
    if (!result->sluice_decisions.empty()) {
      std::printf("\nsluice's decisions:\n");
      for (const Decision& d : result->sluice_decisions) {
        std::printf("  %s\n", decision_line(d).c_str());
      }
    }
    if (!load.scenario->limits.empty()) {
      std::printf("\npass limits: %zu of %zu met\n",
                  load.scenario->limits.size() - result->failed_limits.size(),
                  load.scenario->limits.size());
      for (const std::string& f : result->failed_limits) std::printf("  FAIL %s\n", f.c_str());
    }
  }
  if (!args.html.empty()) {
    if (Status s = adapters::write_file_atomically(args.html, simulation_html(*result)); !s) {
      return fail(s.error().message);
    }
  }
  return result->failed_limits.empty() ? 0 : kRuntimeError;
}

int run_replay(const GlobalOptions& global, const ReplayArgs& args) {
  Expected<config::Config> loaded = load_config(global);
  if (!loaded) return fail(loaded.error().message);
  const config::Config& config = *loaded;
  Expected<std::shared_ptr<const IspCatalog>> catalog = build_catalog(config);
  if (!catalog) return fail(catalog.error().message);
  Expected<std::vector<ManagedPair>> pairs = managed_pairs(config, **catalog);
  if (!pairs) return fail(pairs.error().message);
  Expected<UnixSeconds> now = resolve_now(global);
  if (!now) return fail(now.error().message);

  // The history, aggregated once: the cycles then see it bucket by bucket.
  Expected<std::vector<std::string>> files = adapters::expand_globs(config.accounting);
  if (!files) return fail(files.error().message);
  const std::shared_ptr<const PoolMap> pool_map = build_pool_map(config);
  SignalAggregator history(*catalog, pool_map, config.bucket_seconds);
  ReadStats stats;
  for (const std::string& file : *files) {
    Expected<FileCheckpoint> done = adapters::read_accounting_file(file, nullptr, history, stats);
    if (!done) return fail(done.error().message);
  }
  std::vector<SignalBucket> buckets = history.buckets();  // by start time
  if (buckets.empty()) return fail("no records in the configured accounting files");
  const UnixSeconds width = config.bucket_seconds;
  UnixSeconds from = buckets.front().start;
  UnixSeconds to = buckets.back().start + width;
  if (!args.from.empty()) {
    Expected<UnixSeconds> t = resolve_time(args.from, *now, "--from");
    if (!t) return fail(t.error().message);
    from = *t;
  }
  if (!args.to.empty()) {
    Expected<UnixSeconds> t = resolve_time(args.to, *now, "--to");
    if (!t) return fail(t.error().message);
    to = *t;
  }
  if (to <= from) return fail("--to must be after --from");

  Expected<std::unique_ptr<state::SqliteStore>> store = state::SqliteStore::open(":memory:");
  if (!store) return fail(store.error().message);
  ScratchFragments fragments(config.fragments);
  NoOverrides overrides;
  AcceptingPmta pmta;
  adapters::FixedClock clock(from);
  adapters::AccountingFiles unused_source({});
  Controller controller(unused_source, **store, fragments, overrides, pmta, clock, *catalog,
                        pool_map, *pairs, loop_settings(config));

  // One cycle per bucket, at the moment the bucket is complete: what `sluice run` would have seen.
  Json decisions = Json::array();
  std::size_t decided = 0;
  std::size_t next = 0;
  while (next < buckets.size() && buckets[next].start + width <= from) ++next;
  for (UnixSeconds t = from - from % width + width; t <= to; t += width) {
    NewSignals input;
    while (next < buckets.size() && buckets[next].start + width <= t) {
      input.buckets.push_back(buckets[next++]);
    }
    clock.set(t);
    Expected<CycleReport> report = controller.run_cycle_on(std::move(input), CycleMode::apply);
    if (!report) return fail(report.error().message);
    decided += report->decisions.size();
    for (const Decision& d : report->decisions) {
      if (global.json) {
        decisions.push_back(decision_json(d));
      } else {
        std::printf("%s\n", decision_line(d).c_str());
      }
    }
  }
  if (global.json) {
    std::printf("%s\n", Json{{"from", format_time(from)},
                             {"to", format_time(to)},
                             {"records", stats.records},
                             {"decisions", decisions}}
                            .dump(2)
                            .c_str());
  } else {
    std::printf("replayed %s .. %s: %llu records, %zu decisions would have been made\n",
                format_time(from).c_str(), format_time(to).c_str(),
                static_cast<unsigned long long>(stats.records), decided);
  }
  return 0;
}

}  // namespace sluice::cli
