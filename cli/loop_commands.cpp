#include "cli/loop_commands.h"

#include <fnmatch.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "adapters/accounting_reader.h"
#include "adapters/atomic_file.h"
#include "adapters/command_runner.h"
#include "adapters/fragment_files.h"
#include "adapters/override_file.h"
#include "adapters/reputation_command.h"
#include "adapters/service_notifier.h"
#include "adapters/system_clock.h"
#include "adapters/time_parse.h"
#include "cli/decision_format.h"
#include "cli/diff.h"
#include "cli/known_reputation.h"
#include "cli/metrics.h"
#include "cli/metrics_server.h"
#include "cli/notify.h"
#include "cli/override_commands.h"
#include "cli/status_html.h"
#include "controller/estimator.h"
#include "controller/fragment.h"
#include "state/sqlite_store.h"
#include "state/writer_lock.h"

namespace sluice::cli {

namespace {

using Json = nlohmann::ordered_json;
constexpr int kRuntimeError = 1;

int fail(const std::string& message) {
  std::fprintf(stderr, "sluice: error: %s\n", message.c_str());
  return kRuntimeError;
}

// Time flows from --now on, for replays: now = given + (system now - start).
class ShiftedClock : public Clock {
 public:
  explicit ShiftedClock(UnixSeconds start) : start_(start), system_start_(system_.now()) {}
  UnixSeconds now() const override { return start_ + (system_.now() - system_start_); }

 private:
  adapters::SystemClock system_;
  UnixSeconds start_;
  UnixSeconds system_start_;
};

// Configuration and everything derived from it.
struct Setup {
  config::Config config;
  std::shared_ptr<const IspCatalog> catalog;
  std::vector<ManagedPair> pairs;
  adapters::KnownPools known;  // what overrides may name
  UnixSeconds now = 0;
};

Expected<Setup> load_setup(const GlobalOptions& global) {
  Setup s;
  Expected<config::Config> config = load_config(global);
  if (!config) return config.error();
  s.config = std::move(*config);
  Expected<std::shared_ptr<const IspCatalog>> catalog = build_catalog(s.config);
  if (!catalog) return catalog.error();
  s.catalog = *catalog;
  Expected<std::vector<ManagedPair>> pairs = managed_pairs(s.config, *s.catalog);
  if (!pairs) return pairs.error();
  s.pairs = std::move(*pairs);
  s.known = known_pools(s.config, s.pairs);
  Expected<UnixSeconds> now = resolve_now(global);
  if (!now) return now.error();
  s.now = *now;
  return s;
}

std::string rate_text(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100);
  return buf;
}

// Gives the controller the configured reputation command, if any; `command` holds it.
void wire_reputation(const Setup& setup, CommandRunner& runner,
                     std::optional<adapters::ReputationCommand>& command, Controller& controller) {
  const std::optional<config::ReputationTable>& table = setup.config.reputation;
  if (!table) return;
  std::set<PairKey> managed;
  for (const ManagedPair& p : setup.pairs) managed.emplace(p.pool, p.isp);
  command.emplace(table->command, runner, loop_settings(setup.config).pmta_timeout,
                  std::move(managed));
  controller.set_reputation(&*command, table->interval_minutes * 60);
}

// What a cycle met and went on despite: the same lines from `once` and `run`.
void log_cycle_warnings(const CycleReport& report) {
  if (!report.interrupted.empty()) spdlog::warn("{}", report.interrupted);
  for (const std::string& w : report.reputation_warnings) spdlog::warn("{}", w);
  if (!report.reputation_error.empty()) {
    spdlog::warn("reputation command failed, the last known tiers stay in force: {}",
                 report.reputation_error);
  }
  if (!report.override_error.empty()) {
    spdlog::warn("override file rejected, the last valid overrides stay in force: {}",
                 report.override_error);
  }
  for (const std::string& h : report.held) spdlog::warn("{}", h);
}

// One cycle with the real adapters. `mode` plan opens nothing for writing.
int cycle(const GlobalOptions& global, CycleMode mode) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  const config::Config& config = setup->config;

  std::optional<state::WriterLock> lock;
  if (mode != CycleMode::plan) {
    Expected<state::WriterLock> acquired = state::WriterLock::acquire(config.database);
    if (!acquired) return fail(acquired.error().message);
    lock.emplace(std::move(*acquired));
  }
  Expected<std::unique_ptr<state::SqliteStore>> store =
      mode == CycleMode::plan ? state::SqliteStore::open_read_only(config.database)
                              : state::SqliteStore::open(config.database);
  if (!store) return fail(store.error().message);

  adapters::AccountingFiles source(config.accounting);
  adapters::FragmentFiles fragments(config.fragments);
  adapters::OverrideFile overrides(config.overrides, setup->known);
  adapters::ProcessRunner runner;
  adapters::FixedClock clock(setup->now);
  Controller controller(source, **store, fragments, overrides, runner, clock, setup->catalog,
                        build_pool_map(config), setup->pairs, loop_settings(config));
  std::optional<adapters::ReputationCommand> reputation;
  wire_reputation(*setup, runner, reputation, controller);
  const auto started = std::chrono::steady_clock::now();
  Expected<CycleReport> report = controller.run_cycle(mode);
  if (!report) return fail(report.error().message);
  if (mode != CycleMode::plan) {
    export_metrics(config, setup->pairs, **store, *report,
                   std::chrono::steady_clock::now() - started);
  }
  if (config.notify) {
    send_events(*config.notify, runner, notable_events(*report, config.interval_seconds));
  }
  for (const std::string& w : report->read.warnings) spdlog::warn("{}", w);
  log_cycle_warnings(*report);
  if (global.json) {
    Json out;
    out["now"] = format_time(report->now);
    out["mode"] = mode == CycleMode::apply     ? "apply"
                  : mode == CycleMode::dry_run ? "dry-run"
                                               : "plan";
    out["records_read"] = report->read.records;
    out["override_error"] = report->override_error;
    out["reputation_error"] = report->reputation_error;
    out["held"] = report->held;
    out["interrupted"] = report->interrupted;
    Json decisions = Json::array();
    for (const Decision& d : report->decisions) decisions.push_back(decision_json(d));
    out["decisions"] = decisions;
    Json changes = Json::array();
    for (const FragmentChange& c : report->changes) {
      changes.push_back({{"path", c.path},
                         {"diff", unified_diff(c.before.value_or(""), c.after, c.path, c.path)}});
    }
    out["changes"] = changes;
    out["reloaded"] = report->reloaded;
    out["pmta"] = report->pmta_outcome;
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const Decision& d : report->decisions) {
      std::printf("%s%s\n", decision_line(d).c_str(),
                  mode == CycleMode::apply ? "" : " (not applied)");
    }
    if (mode == CycleMode::plan) {
      for (const FragmentChange& c : report->changes) {
        const std::string from = c.before ? c.path : "/dev/null";
        std::printf("%s", unified_diff(c.before.value_or(""), c.after, from, c.path).c_str());
      }
    }
    if (report->decisions.empty()) {
      std::printf("%s: no change (%llu new records)\n", format_time(report->now).c_str(),
                  static_cast<unsigned long long>(report->read.records));
    }
    if (!report->changes.empty() && mode == CycleMode::apply) {
      std::printf("pmta: %s\n", report->pmta_outcome.c_str());
    }
  }
  if (report->pmta_failed) {
    return fail("the change was not applied: " + report->pmta_outcome +
                "; the previous fragments are back in place");
  }
  return 0;
}

// Where a warming pair is in its schedule: stage of stages (1-based), and when the next is due.
struct WarmupView {
  int stage = 0;
  int stages = 0;
  std::optional<UnixSeconds> next_stage_at;
};

std::optional<WarmupView> warmup_view(const PairState& state, const PolicyParams& policy) {
  if (state.tier != Tier::warming) return std::nullopt;
  const int stages = static_cast<int>(warmup_rates_for(policy, state.isp).size());
  return WarmupView{std::min(state.warmup_stage + 1, stages), stages,
                    next_warmup_stage_at(state, policy)};
}

// The fragment's settings beside max-smtp-out, and where a warming pair is in its schedule.
Json settings_json(const PairState& state, const PolicyParams& policy) {
  const int rate = warmup_rate(state, policy);
  const int retry = retry_after_minutes(state, policy);
  Json warmup;
  if (const std::optional<WarmupView> w = warmup_view(state, policy)) {
    warmup = {{"stage", w->stage},
              {"stages", w->stages},
              {"next_stage_at", w->next_stage_at ? Json(format_time(*w->next_stage_at)) : Json()}};
  }
  return {{"max_msg_rate_per_hour", rate > 0 ? Json(rate) : Json()},
          {"retry_after_minutes", retry > 0 ? Json(retry) : Json()},
          {"warmup", warmup}};
}

// "max-msg-rate 50/h, retry-after 30m; warm-up stage 1 of 5, the next after a clean stage
// period, not before 2026-12-04T10:00:00Z".
std::string settings_text(const PairState& state, const PolicyParams& policy) {
  std::string out = fragment_settings_text(state, policy);
  const std::optional<WarmupView> w = warmup_view(state, policy);
  if (!w) return out;
  out += "; warm-up stage " + std::to_string(w->stage) + " of " + std::to_string(w->stages);
  if (w->next_stage_at) {
    out += ", the next after a clean stage period, not before " + format_time(*w->next_stage_at);
  }
  return out;
}

}  // namespace

int run_once(const GlobalOptions& global, bool dry_run) {
  return cycle(global, dry_run ? CycleMode::dry_run : CycleMode::apply);
}

int run_plan(const GlobalOptions& global) {
  return cycle(global, CycleMode::plan);
}

namespace {

// Waits up to `interval` for one of `signals`; 0 when none came. Under a systemd watchdog it
// wakes in time to say it is alive, so that only a stuck cycle gets the service restarted.
int wait_for_signal(const sigset_t& signals, std::chrono::seconds interval,
                    adapters::ServiceNotifier& service) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + interval;
  const std::optional<std::chrono::milliseconds> period = service.watchdog_period();
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return 0;
    const std::chrono::milliseconds step = period ? std::min(left, *period) : left;
    const timespec wait{static_cast<time_t>(step.count() / 1000),
                        static_cast<long>(step.count() % 1000) * 1000000};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig > 0) return sig;
    if (sig < 0 && errno != EAGAIN && errno != EINTR) return 0;
    service.alive();
  }
}

}  // namespace

int run_daemon(const GlobalOptions& global, bool dry_run, const std::string& interval_text) {
  // Signals are taken synchronously between cycles: a cycle always finishes.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  Expected<state::WriterLock> lock = state::WriterLock::acquire(setup->config.database);
  if (!lock) return fail(lock.error().message);

  UnixSeconds interval = setup->config.interval_seconds;
  if (!interval_text.empty()) {
    Expected<UnixSeconds> parsed = parse_interval(interval_text);
    if (!parsed) return fail(parsed.error().message);
    interval = *parsed;
  }
  const bool dry = dry_run || setup->config.dry_run;
  std::unique_ptr<Clock> clock;
  if (global.now.empty()) {
    clock = std::make_unique<adapters::SystemClock>();
  } else {
    clock = std::make_unique<ShiftedClock>(setup->now);
  }

  // Started after the signal mask is set: its thread must not take SIGTERM or SIGHUP. A change
  // of [metrics] listen takes a restart.
  std::unique_ptr<MetricsServer> server;
  if (setup->config.metrics_listen_port != 0) {
    Expected<std::unique_ptr<MetricsServer>> started =
        MetricsServer::start(setup->config.metrics_listen_host, setup->config.metrics_listen_port);
    if (!started) return fail(started.error().message);
    server = std::move(*started);
    spdlog::info("serving metrics on port {}", server->port());
  }
  adapters::ServiceNotifier service;
  service.ready("running a cycle every " + std::to_string(interval) + " s");
  while (true) {
    Expected<std::unique_ptr<state::SqliteStore>> store =
        state::SqliteStore::open(setup->config.database);
    if (!store) {
      service.stopping();
      return fail(store.error().message);
    }
    adapters::AccountingFiles source(setup->config.accounting);
    adapters::FragmentFiles fragments(setup->config.fragments);
    adapters::OverrideFile overrides(setup->config.overrides, setup->known);
    adapters::ProcessRunner runner;
    Controller controller(source, **store, fragments, overrides, runner, *clock, setup->catalog,
                          build_pool_map(setup->config), setup->pairs,
                          loop_settings(setup->config));
    std::optional<adapters::ReputationCommand> reputation;
    wire_reputation(*setup, runner, reputation, controller);
    const auto started = std::chrono::steady_clock::now();
    Expected<CycleReport> report =
        controller.run_cycle(dry ? CycleMode::dry_run : CycleMode::apply);
    if (!report) {
      spdlog::error("cycle failed: {}", report.error().message);
      service.status("last cycle failed: " + report.error().message);
    } else {
      const std::optional<std::string> metrics =
          export_metrics(setup->config, setup->pairs, **store, *report,
                         std::chrono::steady_clock::now() - started);
      if (server && metrics) server->publish(*metrics);
      if (setup->config.notify) {
        send_events(*setup->config.notify, runner, notable_events(*report, interval));
      }
      log_cycle_warnings(*report);
      for (const Decision& d : report->decisions) spdlog::info("{}", decision_line(d));
      if (!report->changes.empty()) spdlog::info("pmta: {}", report->pmta_outcome);
      const std::string summary =
          fmt::format("cycle at {}: {} records, {} decisions{}", format_time(report->now),
                      report->read.records, report->decisions.size(), dry ? " (dry run)" : "");
      spdlog::info("{}", summary);
      service.status(summary);
    }
    service.alive();
    const int sig = wait_for_signal(signals, std::chrono::seconds(interval), service);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("stopping on signal {}", sig);
      service.stopping();
      return 0;
    }
    if (sig == SIGHUP) {
      service.reloading();
      Expected<Setup> reloaded = load_setup(global);
      if (reloaded) {
        setup->config = std::move(reloaded->config);
        setup->catalog = reloaded->catalog;
        setup->pairs = std::move(reloaded->pairs);
        setup->known = std::move(reloaded->known);
        spdlog::info("configuration re-read");
      } else {
        spdlog::error("configuration kept: {}", reloaded.error().message);
      }
      service.ready("configuration re-read");
    }
  }
}

int run_status(const GlobalOptions& global, const StatusArgs& args) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open_read_only(setup->config.database);
  if (!store) return fail(store.error().message);
  Expected<std::vector<PairState>> pairs = (*store)->load_pairs();
  if (!pairs) return fail(pairs.error().message);
  Expected<std::map<PairKey, Tier>> reputation = known_reputation(setup->config, **store);
  if (!reputation) return fail(reputation.error().message);
  const UnixSeconds now = setup->now;
  const UnixSeconds span = args.format == "html" ? args.days * 86400 : 86400;
  Expected<std::vector<SignalBucket>> buckets = (*store)->buckets_since(now - span);
  if (!buckets) return fail(buckets.error().message);
  const auto series = series_by_pair(*buckets);
  Expected<std::vector<DecisionRecord>> history = (*store)->history({});
  if (!history) return fail(history.error().message);
  const ShownOverrides shown = overrides_for_display(setup->config, setup->known, store->get());
  const Overrides& overrides = shown.overrides;
  Expected<std::vector<VmtaSetting>> loaded_vmtas = (*store)->load_vmta_settings();
  if (!loaded_vmtas) return fail(loaded_vmtas.error().message);
  const std::vector<VmtaSetting>& vmta_settings = *loaded_vmtas;
  std::string warnings;
  std::string settings_notes;  // warming or recovering pairs' other settings

  Json rows = Json::array();
  std::vector<PairPicture> pictures;
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line, "%-16s %-8s %5s %-12s %-12s %7s %7s  %s\n", "POOL", "ISP", "MAX",
                "TIER(CAP)", "PHASE", "DEF 1H", "DEF 24H", "LAST CHANGE");
  text += line;
  for (const ManagedPair& pair : setup->pairs) {
    PairState state = initial_state(pair.pool, pair.isp, pair.tier, std::nullopt, pair.policy);
    bool seen = false;
    for (const PairState& s : *pairs) {
      if (s.pool == pair.pool && s.isp == pair.isp) {
        state = s;
        seen = true;
      }
    }
    const TierChoice choice = choose_tier(pair, overrides, *reputation, seen && state.warmed_up);
    const Tier tier = choice.tier;
    const TierRange range = range_for(pair.policy, pair.isp, tier);
    static const std::vector<PairBucket> kNone;
    const auto found = series.find({pair.pool, pair.isp});
    const auto& pair_series = found == series.end() ? kNone : found->second;
    const PairSignals hour = summarize(pair_series, now - 3600, now, pair.policy);
    const PairSignals day = summarize(pair_series, now - 86400, now, pair.policy);
    const DecisionRecord* last = nullptr;
    for (const DecisionRecord& r : *history) {
      if (r.decision.pool == pair.pool && r.decision.isp == pair.isp && r.decision.vmta.empty() &&
          r.applied && r.decision.changes_value()) {
        last = &r;
      }
    }
    Json row;
    row["pool"] = pair.pool;
    row["isp"] = pair.isp;
    row["max_smtp_out"] = seen ? Json(state.max_smtp_out) : Json();
    row["tier"] = to_string(tier);
    row["tier_source"] = choice.source;
    row["cap"] = range.cap;
    row["phase"] = seen ? std::string(to_string(state.phase)) : "new";
    row["deferral_rate_1h"] = hour.window.deferral_rate();
    row["deferral_rate_24h"] = day.window.deferral_rate();
    row["throttle_rate_1h"] = hour.window.throttle_rate();
    Json last_change;
    if (last != nullptr) {
      last_change = {{"at", format_time(last->decision.at)},
                     {"from", last->decision.old_value},
                     {"to", last->decision.new_value},
                     {"rule", to_string(last->decision.rule)},
                     {"why", last->decision.reason}};
    }
    row["last_change"] = last_change;
    Json next_raise;
    if (seen && state.phase == Phase::steady && state.max_smtp_out < range.cap) {
      next_raise =
          format_time(std::max(now, state.last_change_at + pair.policy.raise_quiet_seconds));
    }
    row["next_raise_at"] = next_raise;
    row["last_failure"] = state.last_failure.empty() ? Json() : Json(state.last_failure);
    PairState shown_state = state;
    shown_state.tier = tier;
    row["settings"] = settings_json(shown_state, pair.policy);
    if (seen && (tier == Tier::warming || retry_after_minutes(shown_state, pair.policy) > 0)) {
      settings_notes +=
          pair.pool + "/" + pair.isp + ": " + settings_text(shown_state, pair.policy) + "\n";
    }
    const Override* manual = overrides.for_pair(pair.pool, pair.isp, now);
    row["override"] = overrides.freeze_all
                          ? Json("frozen by the kill switch (" + overrides.freeze_reason + ")")
                      : manual ? Json(manual->describe())
                               : Json();
    Json vmtas = Json::object();
    for (const Override& o : overrides.entries) {
      if (o.vmta.empty() || o.pool != pair.pool || (!o.isp.empty() && o.isp != pair.isp)) continue;
      if (const Override* v = overrides.for_vmta(pair.pool, pair.isp, o.vmta, now)) {
        vmtas[o.vmta] = v->describe();
      }
    }
    // VMTAs the per-IP diagnosis holds at their own value: the pool's trouble is theirs.
    std::string diagnosed;
    for (const VmtaSetting& v : vmta_settings) {
      if (!v.diagnosis || v.pool != pair.pool || v.isp != pair.isp) continue;
      vmtas[v.vmta] = "held at " + std::to_string(v.value) + " by the per-IP diagnosis since " +
                      format_time(v.since);
      diagnosed += (diagnosed.empty() ? "" : ", ") + v.vmta;
    }
    row["vmta_overrides"] = vmtas;
    row["diagnosis"] = diagnosed.empty() ? "spread" : "concentrated on " + diagnosed;
    row["warning"] = Json();
    if (seen && state.phase == Phase::no_effect) {
      for (const DecisionRecord& r : *history) {
        if (r.decision.pool == pair.pool && r.decision.isp == pair.isp &&
            r.decision.rule == Rule::no_effect) {
          row["warning"] = r.decision.reason;
        }
      }
      warnings += pair.pool + "/" + pair.isp + " no-effect: " + row["warning"].get<std::string>() +
                  " (sluice ack " + pair.pool + " " + pair.isp + " ends it)\n";
    }
    rows.push_back(row);
    std::snprintf(
        line, sizeof line, "%-16s %-8s %5s %-12s %-12s %7s %7s  %s\n", pair.pool.c_str(),
        pair.isp.c_str(), seen ? std::to_string(state.max_smtp_out).c_str() : "-",
        (std::string(to_string(tier)) + "(" + std::to_string(range.cap) + ")").c_str(),
        row["phase"].get<std::string>().c_str(), rate_text(hour.window.deferral_rate()).c_str(),
        rate_text(day.window.deferral_rate()).c_str(),
        last ? (format_time(last->decision.at) + " " + std::to_string(last->decision.old_value) +
                "->" + std::to_string(last->decision.new_value) + " " +
                std::string(to_string(last->decision.rule)))
                   .c_str()
             : "-");
    text += line;
    PairPicture picture;
    picture.pool = pair.pool;
    picture.isp = pair.isp;
    if (seen) picture.value = state.max_smtp_out;
    picture.cap = range.cap;
    picture.phase = row["phase"].get<std::string>();
    picture.decisions = applied_pair_decisions(*history, pair.pool, pair.isp, now - span, now);
    picture.buckets = pair_series;
    pictures.push_back(std::move(picture));
  }
  if (args.format == "html") {
    const std::string page = status_html(pictures, now - span, now);
    if (args.out.empty()) {
      std::fputs(page.c_str(), stdout);
    } else if (Status s = adapters::write_file_atomically(args.out, page); !s) {
      return fail(s.error().message);
    }
  } else if (global.json) {
    std::printf("%s\n",
                Json{{"pools", rows}, {"overrides", overrides_json(shown, now)}}.dump(2).c_str());
  } else {
    std::fputs(text.c_str(), stdout);
    if (!settings_notes.empty()) std::printf("\n%s", settings_notes.c_str());
    if (!warnings.empty()) std::printf("\n%s", warnings.c_str());
    const std::string manual = overrides_text(shown, now);
    if (!manual.empty()) std::printf("\n%s", manual.c_str());
  }
  return 0;
}

int run_explain(const GlobalOptions& global, const std::string& pool, const std::string& isp) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  const ManagedPair* pair = nullptr;
  for (const ManagedPair& p : setup->pairs) {
    if (p.pool == pool && p.isp == isp) pair = &p;
  }
  if (pair == nullptr) {
    return fail("pool '" + pool + "' with ISP '" + isp + "' is not managed (see sluice status)");
  }
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open_read_only(setup->config.database);
  if (!store) return fail(store.error().message);
  Expected<std::vector<PairState>> states = (*store)->load_pairs();
  if (!states) return fail(states.error().message);
  const UnixSeconds now = setup->now;
  const ShownOverrides shown = overrides_for_display(setup->config, setup->known, store->get());
  const Overrides& overrides = shown.overrides;
  Expected<std::map<PairKey, Tier>> reputation = known_reputation(setup->config, **store);
  if (!reputation) return fail(reputation.error().message);
  const auto stored = std::find_if(states->begin(), states->end(), [&](const PairState& s) {
    return s.pool == pool && s.isp == isp;
  });
  const bool seen = stored != states->end();
  const TierChoice choice = choose_tier(*pair, overrides, *reputation, seen && stored->warmed_up);
  const Tier tier = choice.tier;
  const PairState state =
      seen ? *stored : initial_state(pool, isp, tier, std::nullopt, pair->policy);
  const PolicyParams& policy = pair->policy;
  const TierRange range = range_for(policy, isp, tier);
  PairState shown_state = state;
  shown_state.tier = tier;

  // The last 24 hours, by class and by source IP.
  Expected<std::vector<SignalBucket>> buckets = (*store)->buckets_since(now - 86400);
  if (!buckets) return fail(buckets.error().message);
  std::map<std::string, SignalFigures> by_ip;
  std::vector<SignalBucket> mine;
  for (const SignalBucket& b : *buckets) {
    if (b.pool != pool || b.isp != isp || b.start >= now) continue;
    mine.push_back(b);
    SignalFigures& f = by_ip[b.source_ip];
    f.attempts += b.counts.attempts();
    const std::uint64_t deferred = b.counts.deferred + b.counts.deferred_queue;
    f.deferrals += deferred;
    f.by_class[static_cast<int>(b.deferral_class)] += deferred;
    if (is_throttle_signal(b.deferral_class)) f.throttle += deferred;
  }
  const auto series = series_by_pair(mine);
  static const std::vector<PairBucket> kNone;
  const auto found = series.find({pool, isp});
  const auto& pair_series = found == series.end() ? kNone : found->second;
  const PairSignals day = summarize(pair_series, now - 86400, now, policy);
  const UnixSeconds from = window_start(state, policy, now);
  const PairSignals window = summarize(pair_series, from, now, policy);

  HistoryFilter filter;
  filter.pool = pool;
  filter.isp = isp;
  Expected<std::vector<DecisionRecord>> history = (*store)->history(filter);
  if (!history) return fail(history.error().message);
  const DecisionRecord* last = history->empty() ? nullptr : &history->back();

  // What would move it next.
  std::string next;
  const bool enough = window.window.attempts >= policy.min_attempts ||
                      window.window.throttle_tq >= policy.min_tq_events;
  const Override* manual = overrides.for_pair(pool, isp, now);
  if (overrides.freeze_all) {
    next = "nothing: the kill switch is on";
  } else if (manual != nullptr && manual->kind != OverrideKind::bounds) {
    next = "nothing while " + manual->describe();
  } else if (state.phase == Phase::verifying && now < state.verify_until) {
    next =
        "the cut is being verified until " + format_time(state.verify_until) + ": no change before";
  } else {
    next = "a cut when the throttle deferral rate since " + format_time(from) + " exceeds " +
           rate_text(policy.cut_threshold) + " (now " + rate_text(window.window.throttle_rate()) +
           " of " + std::to_string(window.window.attempts) + " attempts" +
           (enough ? "" : "; too few attempts to act on") + ")";
    if (state.max_smtp_out < range.cap) {
      next += "; a raise not before " +
              format_time(std::max(now, state.last_change_at + policy.raise_quiet_seconds)) +
              " after a quiet week (no throttle signal, deferrals under " +
              rate_text(policy.raise_max_deferral_rate) + ")";
    } else {
      next += "; no raise: at the cap " + std::to_string(range.cap);
    }
  }

  Json ips = Json::object();
  for (const auto& [ip, f] : by_ip) {
    ips[ip] = {{"attempts", f.attempts},
               {"deferrals", f.deferrals},
               {"throttle", f.throttle},
               {"deferral_rate", f.deferral_rate()}};
  }
  Json classes = Json::object();
  for (int c = 1; c < kDeferralClassCount; ++c) {
    classes[std::string(to_string(static_cast<DeferralClass>(c)))] = day.window.by_class[c];
  }
  Json vmtas = Json::object();
  for (const Override& o : overrides.entries) {
    if (o.vmta.empty() || o.pool != pool || (!o.isp.empty() && o.isp != isp)) continue;
    if (const Override* v = overrides.for_vmta(pool, isp, o.vmta, now))
      vmtas[o.vmta] = v->describe();
  }
  const std::string override_text =
      overrides.freeze_all ? "frozen by the kill switch (" + overrides.freeze_reason + ")"
      : manual             ? manual->describe()
                           : "";
  if (global.json) {
    Json out{{"pool", pool},
             {"isp", isp},
             {"max_smtp_out", seen ? Json(state.max_smtp_out) : Json()},
             {"tier", to_string(tier)},
             {"tier_source", choice.source},
             {"cap", range.cap},
             {"phase", seen ? std::string(to_string(state.phase)) : "new"},
             {"last_safe", state.last_safe},
             {"settings", settings_json(shown_state, policy)},
             {"attempts_24h", day.window.attempts},
             {"deferral_rate_24h", day.window.deferral_rate()},
             {"throttle_rate_24h", day.window.throttle_rate()},
             {"deferrals_by_class_24h", classes},
             {"by_ip_24h", ips},
             {"last_decision", last ? decision_json(last->decision) : Json()},
             {"next", next},
             {"override", override_text.empty() ? Json() : Json(override_text)},
             {"vmta_overrides", vmtas},
             {"override_error", shown.error.empty() ? Json() : Json(shown.error)}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s/%s: max-smtp-out %s, tier %s (%s), cap %d, phase %s\n", pool.c_str(), isp.c_str(),
              seen ? std::to_string(state.max_smtp_out).c_str() : "- (new)",
              std::string(to_string(tier)).c_str(), choice.source.c_str(), range.cap,
              seen ? std::string(to_string(state.phase)).c_str() : "new");
  std::printf("settings: %s\n", settings_text(shown_state, policy).c_str());
  std::printf("override: %s\n", override_text.empty() ? "none" : override_text.c_str());
  for (const auto& [vmta, text] : vmtas.items()) {
    std::printf("  VMTA %s: %s\n", vmta.c_str(), text.get<std::string>().c_str());
  }
  if (!shown.error.empty()) std::printf("override file rejected: %s\n", shown.error.c_str());
  std::printf("last 24 h: %llu attempts, deferral rate %s, throttle %s\n",
              static_cast<unsigned long long>(day.window.attempts),
              rate_text(day.window.deferral_rate()).c_str(),
              rate_text(day.window.throttle_rate()).c_str());
  for (int c = 1; c < kDeferralClassCount; ++c) {
    if (day.window.by_class[c] == 0) continue;
    std::printf("  %-11s %llu deferrals\n",
                std::string(to_string(static_cast<DeferralClass>(c))).c_str(),
                static_cast<unsigned long long>(day.window.by_class[c]));
  }
  for (const auto& [ip, f] : by_ip) {
    std::printf("  IP %-15s %llu attempts, deferral rate %s\n", ip.c_str(),
                static_cast<unsigned long long>(f.attempts), rate_text(f.deferral_rate()).c_str());
  }
  std::printf("last decision: %s\n", last ? decision_line(last->decision).c_str() : "none");
  std::printf("next: %s\n", next.c_str());
  return 0;
}

int run_ack(const GlobalOptions& global, const std::string& pool, const std::string& isp) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  Expected<state::WriterLock> lock = state::WriterLock::acquire(setup->config.database);
  if (!lock) return fail(lock.error().message);
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open(setup->config.database);
  if (!store) return fail(store.error().message);
  Expected<std::vector<PairState>> states = (*store)->load_pairs();
  if (!states) return fail(states.error().message);
  for (PairState state : *states) {
    if (state.pool != pool || state.isp != isp) continue;
    if (state.phase != Phase::no_effect) {
      return fail(pool + "/" + isp + " is not in the no-effect phase (it is " +
                  std::string(to_string(state.phase)) + "): nothing to acknowledge");
    }
    const char* user = std::getenv("SUDO_USER");
    if (user == nullptr) user = std::getenv("USER");
    Decision d = make_decision(state, setup->now, Rule::ack, state.max_smtp_out, Phase::steady,
                               SignalFigures{},
                               std::string("acknowledged by ") + (user ? user : "an operator") +
                                   ": the no-effect phase ends; the policy resumes from " +
                                   std::to_string(state.max_smtp_out));
    state.phase = Phase::steady;
    state.no_effect_cuts = 0;
    if (Status s = (*store)->commit_pairs({state}, {{d, true, "no fragment change"}}); !s) {
      return fail(s.error().message);
    }
    std::printf("%s\n", decision_line(d).c_str());
    return 0;
  }
  return fail(pool + "/" + isp + " has no state yet (see sluice status)");
}

int run_history(const GlobalOptions& global, const HistoryArgs& args) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  HistoryFilter filter;
  if (!args.pool.empty()) filter.pool = args.pool;
  if (!args.isp.empty()) filter.isp = args.isp;
  if (!args.since.empty()) {
    Expected<UnixSeconds> since = resolve_time(args.since, setup->now, "--since");
    if (!since) return fail(since.error().message);
    filter.since = *since;
  }
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open_read_only(setup->config.database);
  if (!store) return fail(store.error().message);
  Expected<std::vector<DecisionRecord>> history = (*store)->history(filter);
  if (!history) return fail(history.error().message);
  const ShownOverrides shown = overrides_for_display(setup->config, setup->known, store->get());
  if (global.json) {
    Json out = Json::array();
    for (const DecisionRecord& r : *history) {
      Json j = decision_json(r.decision);
      j["applied"] = r.applied;
      j["pmta"] = r.pmta_outcome;
      out.push_back(j);
    }
    std::printf(
        "%s\n",
        Json{{"decisions", out}, {"overrides", overrides_json(shown, setup->now)}}.dump(2).c_str());
    return 0;
  }
  for (const DecisionRecord& r : *history) {
    std::printf("%s [%s]\n", decision_line(r.decision).c_str(),
                r.applied ? r.pmta_outcome.c_str() : ("not applied: " + r.pmta_outcome).c_str());
  }
  const std::string manual = overrides_text(shown, setup->now);
  if (!manual.empty()) std::printf("\nNow:\n%s", manual.c_str());
  return 0;
}

namespace {

// Include lines of a PowerMTA configuration, following nothing (the main file is enough to
// tell whether the operator added sluice's lines).
std::vector<std::string> include_targets(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string keyword, target;
    if (words >> keyword >> target && keyword == "include") out.push_back(target);
  }
  return out;
}

bool records_deferrals(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  bool in_acct = false;
  while (std::getline(in, line)) {
    if (line.find("<acct-file") != std::string::npos) in_acct = true;
    if (line.find("</acct-file>") != std::string::npos) in_acct = false;
    std::istringstream words(line);
    std::string keyword, value;
    if (in_acct && words >> keyword >> value && keyword == "records") {
      std::set<std::string> types;
      std::istringstream list(value);
      std::string item;
      while (std::getline(list, item, ',')) types.insert(item);
      if (types.contains("t") && types.contains("tq")) return true;
    }
  }
  return false;
}

}  // namespace

int run_check(const GlobalOptions& global) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) {
    std::printf("FAIL configuration: %s\n", setup.error().message.c_str());
    return kRuntimeError;
  }
  const config::Config& c = setup->config;
  std::vector<std::string> problems;
  std::vector<std::string> notes;
  notes.push_back("configuration " +
                  (c.source.empty() ? std::string("(built-in defaults)") : c.source) + ": " +
                  std::to_string(setup->pairs.size()) + " managed (pool, ISP) pairs");
  struct stat st {};
  if (::stat(c.fragments.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems.push_back("fragment directory " + c.fragments + " does not exist (mkdir -p it)");
  } else if (::access(c.fragments.c_str(), W_OK) != 0) {
    problems.push_back("fragment directory " + c.fragments + " is not writable");
  }
  if (::access(c.pmta_command.c_str(), X_OK) != 0) {
    problems.push_back("pmta command " + c.pmta_command + " is missing or not executable");
  }
  if (c.reputation && ::access(c.reputation->command.front().c_str(), X_OK) != 0) {
    problems.push_back("reputation command " + c.reputation->command.front() +
                       " is missing or not executable");
  }
  const std::string db_dir = c.database.substr(0, c.database.rfind('/'));
  if (::access(db_dir.empty() ? "/" : db_dir.c_str(), W_OK) != 0) {
    problems.push_back("state directory " + db_dir + " is missing or not writable");
  }
  Expected<std::vector<std::string>> files = adapters::expand_globs(c.accounting);
  if (!files || files->empty()) {
    notes.push_back("no accounting file matches the [pmta] accounting globs yet");
  }
  std::ifstream pmta_config(c.pmta_config);
  if (!pmta_config) {
    notes.push_back("cannot read " + c.pmta_config + ": include and <acct-file> checks skipped");
  } else {
    std::stringstream text;
    text << pmta_config.rdbuf();
    const std::vector<std::string> targets = include_targets(text.str());
    adapters::FragmentFiles fragments(c.fragments);
    for (const ManagedPair& pair : setup->pairs) {
      const std::string path = fragments.path(pair.pool, pair.isp);
      const bool included = std::any_of(targets.begin(), targets.end(), [&](const std::string& t) {
        return ::fnmatch(t.c_str(), path.c_str(), FNM_PATHNAME) == 0;
      });
      if (!included) problems.push_back(c.pmta_config + " does not include " + path);
    }
    if (!records_deferrals(text.str())) {
      problems.push_back(c.pmta_config +
                         ": no <acct-file> records t and tq (add `records d,b,t,tq`): sluice "
                         "would see no deferrals");
    }
  }
  const ShownOverrides shown = overrides_for_display(c, setup->known, nullptr);
  if (!shown.error.empty()) {
    problems.push_back("override file: " + shown.error);
  } else {
    std::size_t in_force = 0;
    for (const Override& o : shown.overrides.entries) in_force += o.in_force(setup->now) ? 1 : 0;
    notes.push_back("override file " + c.overrides + ": " + std::to_string(in_force) +
                    " overrides in force, " +
                    std::to_string(shown.overrides.entries.size() - in_force) + " expired, " +
                    std::to_string(shown.overrides.tiers.size()) + " tiers" +
                    (shown.overrides.freeze_all ? "; THE KILL SWITCH IS ON" : ""));
  }
  for (const std::string& n : notes) std::printf("ok   %s\n", n.c_str());
  for (const std::string& p : problems) std::printf("FAIL %s\n", p.c_str());
  return problems.empty() ? 0 : kRuntimeError;
}

int run_init(const GlobalOptions& global) {
  Expected<Setup> setup = load_setup(global);
  if (!setup) return fail(setup.error().message);
  const config::Config& c = setup->config;
  adapters::FragmentFiles fragments(c.fragments);
  std::string out;
  out += "# 1. Log deferrals: sluice reads t and tq records (PowerMTA's default is d,b only).\n";
  out +=
      "<acct-file /var/log/pmta/acct.csv>\n    records d,b,t,tq\n    move-interval 1d\n"
      "    max-size 250M\n</acct-file>\n\n";
  out +=
      "# 2. Include each generated fragment inside the pool's <domain> blocks. sluice writes\n"
      "#    them before its first reload; `sluice once` creates them.\n";
  const std::vector<IspSpec> specs = isp_specs(c);
  // One <domain> block per domain of the pair's ISP, including `key`'s fragment.
  const auto domain_blocks = [&](const FragmentKey& key) {
    std::vector<std::string> domains;
    for (const IspSpec& spec : specs) {
      if (spec.name == key.isp) domains = spec.domains;
    }
    if (domains.empty()) domains.push_back("*");
    std::string blocks;
    for (const std::string& domain : domains) {
      blocks += "    <domain " + domain + ">\n        include " + fragments.path(key) +
                "\n    </domain>\n";
    }
    return blocks;
  };
  std::string pool;
  for (const ManagedPair& pair : setup->pairs) {
    if (pair.pool != pool) {
      if (!pool.empty()) out += "</virtual-mta-pool>\n\n";
      pool = pair.pool;
      out += "<virtual-mta-pool " + pool + ">\n";
    }
    out += domain_blocks(FragmentKey{pair.pool, pair.isp, {}});
  }
  if (!pool.empty()) out += "</virtual-mta-pool>\n";
  // A directive inside a member <virtual-mta> overrides the pool's, which is how one VMTA gets
  // its own value when its IP alone is throttled.
  std::string vmtas;
  for (const config::PoolTable& table : c.pools) {
    for (const std::string& vmta : table.vmtas) {
      vmtas += (vmtas.empty() ? "" : "\n") + std::string("<virtual-mta ") + vmta + ">\n";
      for (const ManagedPair& pair : setup->pairs) {
        if (pair.pool == table.name) vmtas += domain_blocks(FragmentKey{pair.pool, pair.isp, vmta});
      }
      vmtas += "</virtual-mta>\n";
    }
  }
  if (!vmtas.empty()) {
    out +=
        "\n# 3. Include each VMTA's fragment inside the <domain> blocks of its own <virtual-mta>.\n"
        "#    sluice writes them with the pool's first fragments, comments only until it "
        "diagnoses\n"
        "#    deferrals concentrated on that VMTA's IP (or an override names the VMTA).\n" +
        vmtas;
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace sluice::cli
