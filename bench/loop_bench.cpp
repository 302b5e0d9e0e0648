// Benchmarks of the control loop for issue 3 ("Speed"), on the real SQLite state:
//   cycle    one Controller::run_cycle(apply) for many (pool, ISP) pairs with nothing new to
//            read, then the same work split into store reads, estimation and decide() alone;
//   db-size  the state database after weeks of 5-minute buckets, and the time to prune a day.
// Prints the figures; --json FILE also writes them, for bench/loop.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "adapters/system_clock.h"
#include "controller/cycle.h"
#include "controller/estimator.h"
#include "controller/fragment.h"
#include "controller/isp_catalog.h"
#include "controller/policy.h"
#include "controller/signals.h"
#include "state/sqlite_store.h"

namespace fs = std::filesystem;
using sluice::UnixSeconds;

namespace {

using Stopwatch = std::chrono::steady_clock;

constexpr UnixSeconds kBucket = 300;
constexpr UnixSeconds kDay = 86400;
constexpr UnixSeconds kWeek = 7 * kDay;
// Midnight UTC, so that buckets and days line up as the loop's own do.
constexpr UnixSeconds kNow = 1796083200;  // 2026-12-01T00:00:00Z

double ms_since(Stopwatch::time_point start) {
  return std::chrono::duration<double, std::milli>(Stopwatch::now() - start).count();
}

struct Timing {
  double min = 0;
  double median = 0;
};

Timing timing(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const std::size_t n = ms.size();
  return {ms.front(), n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2};
}

nlohmann::json to_json(const Timing& t) {
  return {{"min_ms", t.min}, {"median_ms", t.median}};
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "sluice_loop_bench: %s\n", message.c_str());
  std::exit(1);
}

template <class T>
T must(sluice::Expected<T> e) {
  if (!e) die(e.error().message);
  return std::move(e).value();
}

void must(const sluice::Status& s) {
  if (!s) die(s.error().message);
}

// The cycle under test finds no new accounting record: the checkpoints stay as they are.
class NothingNew : public sluice::AccountingSource {
 public:
  sluice::Expected<sluice::ReadOutcome> read_new(const std::vector<sluice::FileCheckpoint>& known,
                                                 sluice::PartitionedSink&) override {
    return sluice::ReadOutcome{known, {}};
  }
};

// PowerMTA accepting every change, at no cost: the benchmark measures sluice, not pmta.
class PmtaAccepts : public sluice::CommandRunner {
 public:
  sluice::CommandResult run(const std::vector<std::string>& argv,
                            std::chrono::milliseconds) override {
    sluice::CommandResult r;
    r.exit_code = 0;
    if (argv.size() > 1 && argv[1] == "reload") r.out = "Configuration reloaded.\n";
    return r;
  }
};

// Fragments in memory: fsyncing thousands of files would measure the disk, not the cycle.
class MemoryFragments : public sluice::FragmentStore {
 public:
  using Files = std::map<sluice::PairKey, std::string>;
  explicit MemoryFragments(Files files) : files_(std::move(files)) {}

  using FragmentStore::path;
  using FragmentStore::read;
  using FragmentStore::write;

  sluice::Expected<std::optional<std::string>> read(const sluice::FragmentKey& key) override {
    const auto found = files_.find(pair_of(key));
    if (found == files_.end()) return std::optional<std::string>();
    return std::optional<std::string>(found->second);
  }
  sluice::Status write(const sluice::FragmentKey& key,
                       const std::optional<std::string>& content) override {
    if (content) {
      files_[pair_of(key)] = *content;
    } else {
      files_.erase(pair_of(key));
    }
    return sluice::ok_status();
  }
  std::string path(const sluice::FragmentKey& key) const override {
    return "/etc/pmta/sluice/" + pair_of(key).first + "/" + key.isp + ".conf";
  }

 private:
  static sluice::PairKey pair_of(const sluice::FragmentKey& key) {
    return {key.vmta.empty() ? key.pool : key.pool, key.isp + "/" + key.vmta};
  }
  Files files_;
};

class NoOverrides : public sluice::OverrideSource {
 public:
  sluice::OverrideRead read() override { return parse(""); }
  sluice::OverrideRead parse(const std::string&) override {
    return sluice::OverrideRead{sluice::Overrides{}, "", ""};
  }
};

std::string pool_name(int p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "pool-%04d", p);
  return buf;
}

// Documentation-style addresses, as long as real ones.
std::string source_ip(int pool, int k) {
  return "10." + std::to_string(pool / 250) + "." + std::to_string(pool % 250) + "." +
         std::to_string(k + 1);
}

std::vector<std::string> isp_names(const sluice::IspCatalog& catalog) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    names.push_back(catalog.name(static_cast<sluice::IspId>(i)));
  }
  return names;
}

// A temporary directory that goes away at the end unless kept.
class WorkDir {
 public:
  WorkDir(const std::string& parent, bool keep) : keep_(keep) {
    std::string pattern =
        (parent.empty() ? fs::temp_directory_path() : fs::path(parent)) / "sluice-loop-XXXXXX";
    if (!mkdtemp(pattern.data())) die("cannot create a directory like " + pattern);
    path_ = pattern;
  }
  ~WorkDir() {
    if (keep_) {
      std::printf("kept %s\n", path_.c_str());
    } else {
      fs::remove_all(path_);
    }
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool keep_;
};

std::uintmax_t size_or_zero(const fs::path& p) {
  std::error_code ec;
  const std::uintmax_t n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

void remove_database(const fs::path& db) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) die(path + ": cannot write");
}

std::string command_line(int argc, char** argv) {
  std::string line = fs::path(argv[0]).filename().string();
  for (int i = 1; i < argc; ++i) line += std::string(" ") + argv[i];
  return line;
}

// ---- cycle --------------------------------------------------------------------------------------

struct CycleOptions {
  int pools = 1000;
  int ips_per_pool = 4;
  int hours = 1;
  int reps = 5;
  int throttled_percent = 10;
};

struct CycleSetup {
  std::shared_ptr<const sluice::IspCatalog> catalog = sluice::IspCatalog::builtin();
  sluice::PolicyParams policy = sluice::default_policy();  // every pair's
  std::vector<sluice::ManagedPair> pairs;
  MemoryFragments::Files fragments;
  std::size_t bucket_rows = 0;
};

sluice::Tier tier_of(int pool) {
  return pool % 4 == 0 ? sluice::Tier::high : sluice::Tier::medium;
}

// Every pair steady at its tier's start for a month, with `hours` of buckets before kNow: every
// source IP delivers in each bucket, a fifth of the pairs see a few recipient deferrals (below
// the investigate threshold) and `throttled_percent` of them connection deferrals above the cut
// threshold, so that the cycle cuts, renders fragments and reloads.
CycleSetup build_cycle_database(const fs::path& db, const CycleOptions& o) {
  CycleSetup setup;
  const sluice::PolicyParams& policy = setup.policy;
  const std::vector<std::string> isps = isp_names(*setup.catalog);
  const UnixSeconds settled = kNow - 30 * kDay;
  std::vector<sluice::PairState> states;
  std::vector<sluice::SignalBucket> buckets;
  for (int p = 0; p < o.pools; ++p) {
    const std::string pool = pool_name(p);
    for (std::size_t i = 0; i < isps.size(); ++i) {
      const std::string& isp = isps[i];
      setup.pairs.push_back({pool, isp, tier_of(p), policy});
      sluice::PairState s = sluice::initial_state(pool, isp, tier_of(p), std::nullopt, policy);
      s.last_change_at = settled;
      setup.fragments[{pool, isp}] = sluice::render_fragment(s, policy, settled, "initial");
      states.push_back(s);

      const int pair = p * static_cast<int>(isps.size()) + static_cast<int>(i);
      const bool throttled = pair * 37 % 100 < o.throttled_percent;
      const bool recipient = pair * 53 % 100 < 20;
      for (UnixSeconds t = kNow - o.hours * 3600; t < kNow; t += kBucket) {
        for (int k = 0; k < o.ips_per_pool; ++k) {
          const std::string ip = source_ip(p, k);
          buckets.push_back({t, pool, isp, ip, sluice::DeferralClass::none, {40, 1, 0, 0}});
          if (recipient) {
            buckets.push_back({t, pool, isp, ip, sluice::DeferralClass::recipient, {0, 0, 1, 0}});
          }
          if (throttled) {
            buckets.push_back({t, pool, isp, ip, sluice::DeferralClass::connection, {0, 0, 4, 1}});
          }
        }
      }
    }
  }
  setup.bucket_rows = buckets.size();
  auto store = must(sluice::state::SqliteStore::open(db.string()));
  must(store->commit_cycle({}, buckets, states, {}, {}));
  return setup;
}

int run_cycle_bench(const CycleOptions& o, const std::string& dir, bool keep,
                    const std::string& json_path, const std::string& command) {
  WorkDir work(dir, keep);
  const fs::path template_db = work.path() / "template.db";
  const Stopwatch::time_point built = Stopwatch::now();
  const CycleSetup setup = build_cycle_database(template_db, o);
  std::printf("%s\n", command.c_str());
  std::printf(
      "%zu pairs (%d pools x %zu ISPs), %d source IPs per pool, %d h of buckets: %zu rows,"
      " %.1f MiB; built in %.1f s in %s\n",
      setup.pairs.size(), o.pools, setup.catalog->size(), o.ips_per_pool, o.hours,
      setup.bucket_rows, size_or_zero(template_db) / 1048576.0, ms_since(built) / 1000,
      work.path().c_str());

  NothingNew source;
  PmtaAccepts runner;
  const sluice::adapters::FixedClock clock(kNow);
  const auto pool_map = std::make_shared<const sluice::PoolMap>();
  std::vector<double> cycle_ms;
  std::size_t decisions = 0;
  std::size_t changes = 0;
  bool reloaded = false;
  // Each repetition starts from the same database, so that each one cuts the same pairs; only
  // run_cycle is timed, not the copy nor opening the store.
  for (int r = 0; r < o.reps; ++r) {
    const fs::path db = work.path() / "cycle.db";
    remove_database(db);
    fs::copy_file(template_db, db);
    auto store = must(sluice::state::SqliteStore::open(db.string()));
    MemoryFragments fragments(setup.fragments);
    NoOverrides overrides;
    sluice::Controller controller(source, *store, fragments, overrides, runner, clock,
                                  setup.catalog, pool_map, setup.pairs, sluice::LoopSettings{});
    const Stopwatch::time_point start = Stopwatch::now();
    const sluice::CycleReport report = must(controller.run_cycle(sluice::CycleMode::apply));
    cycle_ms.push_back(ms_since(start));
    if (report.pmta_failed) die("the cycle's change failed: " + report.pmta_outcome);
    decisions = report.decisions.size();
    changes = report.changes.size();
    reloaded = report.reloaded;
  }

  // The same work as the cycle, stage by stage, on the unchanged template.
  auto store = must(sluice::state::SqliteStore::open(template_db.string()));
  std::vector<double> read_ms, estimate_ms, decide_ms;
  std::vector<sluice::PairState> states;
  std::vector<sluice::PairSignals> signals;
  std::size_t decided = 0;
  for (int r = 0; r < o.reps; ++r) {
    Stopwatch::time_point start = Stopwatch::now();
    const std::vector<sluice::SignalBucket> buckets =
        must(store->buckets_since(kNow - setup.policy.window_seconds));
    const std::vector<sluice::PairDay> stored_days =
        must(store->pair_days_since(sluice::day_of(kNow) - kWeek));
    states = must(store->load_pairs());
    read_ms.push_back(ms_since(start));

    start = Stopwatch::now();
    const auto series = sluice::series_by_pair(buckets);
    const auto days = sluice::days_by_pair(stored_days);
    static const std::vector<sluice::PairDay> kNoDays;
    signals.clear();
    for (std::size_t i = 0; i < states.size(); ++i) {
      const auto found = days.find({states[i].pool, states[i].isp});
      signals.push_back(sluice::summarize(
          series.at({states[i].pool, states[i].isp}), found == days.end() ? kNoDays : found->second,
          sluice::window_start(states[i], setup.policy, kNow), kNow, setup.policy));
    }
    estimate_ms.push_back(ms_since(start));

    start = Stopwatch::now();
    decided = 0;
    for (std::size_t i = 0; i < states.size(); ++i) {
      const sluice::Outcome out = sluice::decide(states[i], signals[i], setup.policy, kNow);
      decided += out.decision.has_value();
    }
    decide_ms.push_back(ms_since(start));
  }
  if (decided != decisions) {
    die("decide() alone made " + std::to_string(decided) + " decisions, the cycle " +
        std::to_string(decisions));
  }

  const Timing cycle = timing(cycle_ms), read = timing(read_ms), estimate = timing(estimate_ms),
               decide = timing(decide_ms);
  std::printf("run_cycle(apply): %zu decisions, %zu fragment changes, %s\n", decisions, changes,
              reloaded ? "reloaded" : "no reload");
  std::printf("%-38s %8s %10s   (%d repetitions)\n", "", "min ms", "median ms", o.reps);
  const auto row = [](const char* name, const Timing& t) {
    std::printf("%-38s %8.1f %10.1f\n", name, t.min, t.median);
  };
  row("run_cycle(apply)", cycle);
  std::printf("its stages, timed apart:\n");
  row("  buckets_since(window) + pair_days_since(week) + load_pairs", read);
  row("  series_by_pair + summarize", estimate);
  row("  decide(), every pair", decide);
  std::printf("decide() per pair: %.2f us\n", decide.median * 1000 / setup.pairs.size());

  write_json(json_path, {{"command", command},
                         {"pairs", setup.pairs.size()},
                         {"bucket_rows", setup.bucket_rows},
                         {"hours", o.hours},
                         {"repetitions", o.reps},
                         {"decisions", decisions},
                         {"changes", changes},
                         {"cycle", to_json(cycle)},
                         {"store_reads", to_json(read)},
                         {"estimate", to_json(estimate)},
                         {"decide", to_json(decide)}});
  return 0;
}

// ---- db-size ------------------------------------------------------------------------------------

struct SizeOptions {
  int pools = 100;
  int ips_per_pool = 4;
  int days = 35;
  int throttle_percent = 10;
  int recipient_percent = 20;
};

int run_size_bench(const SizeOptions& o, const std::string& dir, bool keep,
                   const std::string& json_path, const std::string& command) {
  WorkDir work(dir, keep);
  const fs::path db = work.path() / "state.db";
  const auto catalog = sluice::IspCatalog::builtin();
  const std::vector<std::string> isps = isp_names(*catalog);
  constexpr sluice::DeferralClass kThrottle[] = {sluice::DeferralClass::connection,
                                                 sluice::DeferralClass::rate,
                                                 sluice::DeferralClass::reputation};
  std::printf("%s\n", command.c_str());

  auto store = must(sluice::state::SqliteStore::open(db.string()));
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::uint64_t> delivered(5, 80);
  std::uniform_int_distribution<std::uint64_t> few(1, 6);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<std::size_t> throttle_class(0, 2);
  const UnixSeconds first = kNow - o.days * kDay;
  std::size_t rows = 0;
  std::size_t first_day_rows = 0;
  const Stopwatch::time_point start = Stopwatch::now();
  // One commit per hour of buckets: a commit per 5-minute bucket, as a loop running every
  // cycle would make, adds only fsyncs (minutes of them); the rows, their order and so the
  // file are the same.
  std::vector<sluice::SignalBucket> buckets;
  for (UnixSeconds t = first; t < kNow; t += kBucket) {
    for (int p = 0; p < o.pools; ++p) {
      const std::string pool = pool_name(p);
      for (const std::string& isp : isps) {
        for (int k = 0; k < o.ips_per_pool; ++k) {
          const std::string ip = source_ip(p, k);
          buckets.push_back({t,
                             pool,
                             isp,
                             ip,
                             sluice::DeferralClass::none,
                             {delivered(rng), few(rng) / 4, 0, 0}});
          if (percent(rng) < o.throttle_percent) {
            buckets.push_back(
                {t, pool, isp, ip, kThrottle[throttle_class(rng)], {0, 0, few(rng), few(rng) / 3}});
          }
          if (percent(rng) < o.recipient_percent) {
            buckets.push_back(
                {t, pool, isp, ip, sluice::DeferralClass::recipient, {0, 0, few(rng), 0}});
          }
        }
      }
    }
    if (t < first + kDay) first_day_rows = rows + buckets.size();
    if ((t + kBucket) % 3600 == 0) {
      rows += buckets.size();
      must(store->commit_read({}, buckets));
      buckets.clear();
    }
  }
  const double fill_s = ms_since(start) / 1000;
  const std::uintmax_t db_bytes = size_or_zero(db);
  const std::uintmax_t wal_bytes = size_or_zero(db.string() + "-wal");

  const Stopwatch::time_point pruning = Stopwatch::now();
  must(store->prune_buckets_before(first + kDay));
  const double prune_ms = ms_since(pruning);
  const std::uintmax_t wal_after_prune = size_or_zero(db.string() + "-wal");

  const std::size_t keys = static_cast<std::size_t>(o.pools) * isps.size() * o.ips_per_pool;
  std::printf(
      "%d pools x %zu ISPs x %d source IPs = %zu keys; %d days of %lld-s buckets"
      " (%d%% with a throttle class, %d%% with recipient)\n",
      o.pools, isps.size(), o.ips_per_pool, keys, o.days, static_cast<long long>(kBucket),
      o.throttle_percent, o.recipient_percent);
  std::printf("rows             %zu (%.0f per 5-min bucket)\n", rows,
              static_cast<double>(rows) / (o.days * kDay / kBucket));
  std::printf("database         %.1f MiB (%.1f bytes per row)\n", db_bytes / 1048576.0,
              static_cast<double>(db_bytes) / rows);
  std::printf("WAL              %.1f MiB after the fill, %.1f MiB after the prune\n",
              wal_bytes / 1048576.0, wal_after_prune / 1048576.0);
  std::printf("fill             %.1f s (%.0f rows/s, one commit per hour)\n", fill_s,
              rows / fill_s);
  std::printf("prune one day    %.1f ms (%zu rows)\n", prune_ms, first_day_rows);

  write_json(json_path, {{"command", command},
                         {"rows", rows},
                         {"db_bytes", db_bytes},
                         {"wal_bytes", wal_bytes},
                         {"wal_bytes_after_prune", wal_after_prune},
                         {"fill_seconds", fill_s},
                         {"prune_rows", first_day_rows},
                         {"prune_ms", prune_ms}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmarks of sluice's control loop (issue 3: Speed)"};
  app.require_subcommand(1);
  app.fallthrough();  // --dir, --json and --keep also after the subcommand
  std::string dir;
  std::string json_path;
  bool keep = false;
  app.add_option("--dir", dir, "Where the temporary directory goes (default: $TMPDIR or /tmp)");
  app.add_option("--json", json_path, "Also write the figures to this file as JSON");
  app.add_flag("--keep", keep, "Keep the databases");

  CycleOptions c;
  CLI::App* cycle = app.add_subcommand("cycle", "Time run_cycle(apply) and decide()");
  cycle->add_option("--pools", c.pools, "Pools (x 6 ISPs)")->check(CLI::Range(1, 60000));
  cycle->add_option("--ips-per-pool", c.ips_per_pool)->check(CLI::Range(1, 250));
  cycle->add_option("--hours", c.hours, "Hours of stored buckets before now")
      ->check(CLI::Range(1, 168));
  cycle->add_option("--reps", c.reps)->check(CLI::Range(1, 1000));
  cycle->add_option("--throttled-percent", c.throttled_percent, "Pairs above the cut threshold")
      ->check(CLI::Range(0, 100));

  SizeOptions s;
  CLI::App* size =
      app.add_subcommand("db-size", "Fill the state database, measure it, prune a day");
  size->add_option("--pools", s.pools, "Pools (x 6 ISPs)")->check(CLI::Range(1, 60000));
  size->add_option("--ips-per-pool", s.ips_per_pool)->check(CLI::Range(1, 250));
  size->add_option("--days", s.days)->check(CLI::Range(2, 400));
  size->add_option("--throttle-percent", s.throttle_percent,
                   "Keys with a throttle class per bucket")
      ->check(CLI::Range(0, 100));
  size->add_option("--recipient-percent", s.recipient_percent,
                   "Keys with a recipient class per bucket")
      ->check(CLI::Range(0, 100));

  CLI11_PARSE(app, argc, argv);
  const std::string command = command_line(argc, argv);
  if (cycle->parsed()) return run_cycle_bench(c, dir, keep, json_path, command);
  return run_size_bench(s, dir, keep, json_path, command);
}
