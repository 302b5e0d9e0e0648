#include "cli/app.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "adapters/accounting_reader.h"
#include "adapters/atomic_file.h"
#include "cli/loop_commands.h"
#include "cli/override_commands.h"
#include "cli/report_format.h"
#include "cli/setup.h"
#include "cli/sim_commands.h"
#include "cli/status_html.h"
#include "state/sqlite_store.h"

namespace sluice::cli {

namespace {

constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;
constexpr std::size_t kWarningsShown = 10;

struct ReportArgs {
  std::string format = "text";
  std::string since;
  std::string until;
  std::string out;
  std::size_t top = 5;
  unsigned threads = 0;
  std::vector<std::string> files;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "sluice: error: %s\n", message.c_str());
  return kRuntimeError;
}

void log_read_problems(const ReadStats& stats) {
  for (const MalformedSample& s : stats.samples) {
    spdlog::warn("{}:{}: malformed line skipped ({})", s.file, s.line, to_string(s.reason));
  }
  const std::size_t shown = std::min(stats.warnings.size(), kWarningsShown);
  for (std::size_t i = 0; i < shown; ++i) spdlog::warn("{}", stats.warnings[i]);
  if (stats.warnings.size() > shown) {
    spdlog::warn("... and {} more warnings", stats.warnings.size() - shown);
  }
}

// The controller's side of the report's period, when this host's state database has it: each
// pair's value with its decisions marked, beside the log's deferral rates by class. Empty when
// there is no database (a report on another host's logs).
std::string decision_pictures(const config::Config& config, const Report& report) {
  if (!report.first_time || !report.last_time || ::access(config.database.c_str(), R_OK) != 0) {
    return "";
  }
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open_read_only(config.database);
  if (!store) {
    spdlog::warn("the report shows no decisions: {}", store.error().message);
    return "";
  }
  Expected<std::vector<PairState>> pairs = (*store)->load_pairs();
  Expected<std::vector<DecisionRecord>> history = (*store)->history({});
  if (!pairs || !history) return "";
  const UnixSeconds from = *report.first_time;
  const UnixSeconds to = *report.last_time + report.bucket_seconds;
  std::vector<PairPicture> pictures;
  for (const PairState& s : *pairs) {
    PairPicture p;
    p.pool = s.pool;
    p.isp = s.isp;
    p.value = s.max_smtp_out;
    p.phase = std::string(to_string(s.phase)) + " now";
    p.decisions = applied_pair_decisions(*history, s.pool, s.isp, from, to);
    if (auto found = report.pair_series.find({s.pool, s.isp}); found != report.pair_series.end()) {
      p.buckets = found->second;
    }
    pictures.push_back(std::move(p));
  }
  if (pictures.empty()) return "";
  return "<h1>What sluice decided (" + html_escape(config.database) + ")</h1>" +
         pair_pictures_section(pictures, from, to);
}

int run_report(const GlobalOptions& global, const ReportArgs& args) {
  Expected<config::Config> config = load_config(global);
  if (!config) return fail(config.error().message);
  Expected<std::shared_ptr<const IspCatalog>> catalog = build_catalog(*config);
  if (!catalog) return fail(catalog.error().message);
  Expected<UnixSeconds> now = resolve_now(global);
  if (!now) return fail(now.error().message);

  ReportOptions options;
  options.top_texts = args.top;
  options.bucket_seconds = config->bucket_seconds;
  if (!args.since.empty()) {
    Expected<UnixSeconds> t = resolve_time(args.since, *now, "--since");
    if (!t) return fail(t.error().message);
    options.since = *t;
  }
  if (!args.until.empty()) {
    Expected<UnixSeconds> t = resolve_time(args.until, *now, "--until");
    if (!t) return fail(t.error().message);
    options.until = *t;
  }

  const std::vector<std::string>& globs = args.files.empty() ? config->accounting : args.files;
  Expected<std::vector<std::string>> files = adapters::expand_globs(globs);
  if (!files) return fail(files.error().message);
  if (files->empty()) {
    std::string names;
    for (const std::string& g : globs) names += (names.empty() ? "" : " ") + g;
    return fail("no accounting files match " + names);
  }

  ReportBuilder builder(*catalog, build_pool_map(*config), options);
  ReadStats stats;
  adapters::ReaderOptions reader;
  reader.threads = args.threads;
  for (const std::string& file : *files) {
    Expected<FileCheckpoint> done =
        adapters::read_accounting_file(file, nullptr, builder, stats, reader);
    if (!done) return fail(done.error().message);
  }
  log_read_problems(stats);
  const Report report = builder.build(stats);

  const std::string format = global.json ? "json" : args.format;
  std::string rendered;
  if (format == "json") {
    rendered = format_report_json(report);
  } else if (format == "html") {
    rendered = format_report_html(report);
    const std::string pictures = decision_pictures(*config, report);
    if (const auto end = rendered.rfind("</body>"); !pictures.empty() && end != std::string::npos) {
      rendered.insert(end, pictures);
    }
  } else {
    rendered = format_report_text(report);
  }
  if (args.out.empty()) {
    std::fwrite(rendered.data(), 1, rendered.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : fail("cannot write the report to stdout");
  }
  if (Status s = adapters::write_file_atomically(args.out, rendered); !s)
    return fail(s.error().message);
  return 0;
}

// systemd sets $JOURNAL_STREAM to the device and inode of the journal stream it gave the service;
// stderr is still that stream unless it was redirected.
bool stderr_is_the_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  return device == static_cast<unsigned long long>(st.st_dev) &&
         inode == static_cast<unsigned long long>(st.st_ino);
}

// Under systemd each line goes to the journal with its priority (warnings show as such in
// `journalctl -p warning`); elsewhere plain text on stderr.
void set_up_logging(const std::string& level) {
  if (stderr_is_the_journal()) {
    auto journal = std::make_shared<spdlog::sinks::systemd_sink_mt>("sluice");
    auto logger = std::make_shared<spdlog::logger>("sluice-journal", journal);
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
  }
  spdlog::set_level(spdlog::level::from_str(level));
}

// Times and durations are checked as the command line is read, so that a typo is a usage error
// (exit 2) before any file is opened; what a duration counts from is known when the command runs.
// Each check is the parser the command uses, its message without the "--flag: " CLI11 adds.
template <class Parse>
CLI::Validator checked_by(Parse parse, const char* description) {
  return CLI::Validator(
      [parse](const std::string& text) -> std::string {
        const auto parsed = parse(text);
        if (parsed) return "";
        const std::string& message = parsed.error().message;
        return message.substr(message.find(": ") + 2);
      },
      description);
}

const CLI::Validator kTimeOrDuration =
    checked_by([](const std::string& text) { return resolve_time(text, 0, ""); }, "TIME|DURATION");

const CLI::Validator kTime = checked_by(
    [](const std::string& text) {
      GlobalOptions options;
      options.now = text;
      return resolve_now(options);
    },
    "TIME");

const CLI::Validator kInterval = checked_by(parse_interval, "DURATION");

}  // namespace

int run(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("sluice");
  logger->set_pattern("sluice: %l: %v");
  spdlog::set_default_logger(logger);

  CLI::App app{"sluice: an adaptive throttle controller for PowerMTA", "sluice"};
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  app.add_option("--config", global.config_path,
                 "Configuration file (default: $SLUICE_CONFIG, else /etc/sluice/sluice.toml)");
  app.add_option("--now", global.now,
                 "The current time, for replays and tests: ISO-8601 (2026-11-27T10:00:00Z) or "
                 "unix seconds (default: the system clock)")
      ->check(kTime);
  app.add_flag("--json", global.json, "Machine-readable JSON output");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Least severe log lines shown (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  CLI::App* version = app.add_subcommand("version", "Print the version");

  ReportArgs report_args;
  CLI::App* report = app.add_subcommand(
      "report", "Why destinations defer: per ISP, pool and source IP, from accounting logs");
  report->add_option("--format", report_args.format, "text, json or html")
      ->check(CLI::IsMember({"text", "json", "html"}))
      ->capture_default_str();
  report
      ->add_option("--since", report_args.since,
                   "Only records logged at or after this time (ISO-8601, unix seconds, or a "
                   "duration before now such as 2h)")
      ->check(kTimeOrDuration);
  report->add_option("--until", report_args.until, "Only records logged before this time")
      ->check(kTimeOrDuration);
  report->add_option("--out", report_args.out, "Write the report to this file (atomically)");
  report->add_option("--top", report_args.top, "Deferral texts shown per ISP")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  report->add_option("--threads", report_args.threads, "Reader threads (default: one per core)")
      ->check(CLI::Range(1, 64));
  report->add_option("files", report_args.files,
                     "Accounting files or globs (default: the configuration's [pmta] accounting)");

  bool dry_run = false;
  CLI::App* once = app.add_subcommand(
      "once", "One cycle: read new records, decide, rewrite fragments, test and reload pmta");
  once->add_flag("--dry-run", dry_run,
                 "Record the signals and the decisions it would make; touch no fragment, run no "
                 "pmta");
  app.add_subcommand("plan",
                     "Print the changes one cycle would make, with a diff of each fragment; write "
                     "nothing at all");
  std::string interval;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "The daemon: a cycle every interval; SIGTERM/SIGINT finish the cycle and exit, "
      "SIGHUP re-reads the configuration");
  run_cmd->add_flag("--dry-run", dry_run, "Decide and record, never apply");
  run_cmd
      ->add_option("--interval", interval, "Time between cycles (default [run] interval_seconds)")
      ->check(kInterval);
  StatusArgs status_args;
  CLI::App* status = app.add_subcommand(
      "status", "One row per (pool, ISP): value, tier and cap, phase, rates, last change");
  status
      ->add_option("--format", status_args.format,
                   "text (default) or html: the value against time with every decision marked, "
                   "beside the deferral rate by class, over --days")
      ->check(CLI::IsMember({"text", "html"}));
  status->add_option("--days", status_args.days, "Days the html charts cover (default 7)")
      ->check(CLI::Range(1, 35));
  status->add_option("--out", status_args.out, "Write the html page to this file (atomically)");
  HistoryArgs history_args;
  CLI::App* history = app.add_subcommand("history", "The decision audit trail");
  history->add_option("--pool", history_args.pool, "Only this pool");
  history->add_option("--isp", history_args.isp, "Only this ISP");
  history->add_option("--since", history_args.since, "Since a time or a duration before now (2d)")
      ->check(kTimeOrDuration);
  std::string explain_pool, explain_isp;
  CLI::App* explain = app.add_subcommand(
      "explain",
      "One (pool, ISP): values, cap, last 24 h by class and IP, last decision, what "
      "would move it next, the override in force");
  explain->add_option("pool", explain_pool, "The pool")->required();
  explain->add_option("isp", explain_isp, "The ISP")->required();
  std::string ack_pool, ack_isp;
  CLI::App* ack =
      app.add_subcommand("ack", "End a pair's no-effect phase once its deferrals are understood");
  ack->add_option("pool", ack_pool, "The pool")->required();
  ack->add_option("isp", ack_isp, "The ISP")->required();
  app.add_subcommand("check",
                     "Validate the configuration, the fragment directory, the pmta command and "
                     "PowerMTA's includes and <acct-file>");
  app.add_subcommand("init", "Print the PowerMTA lines sluice needs: <acct-file> and the includes");

  SimulateArgs simulate_args;
  CLI::App* simulate = app.add_subcommand(
      "simulate",
      "Run policies side by side in a simulated world (PowerMTA and an ISP with hidden limits)");
  simulate->add_option("scenario", simulate_args.scenario, "A scenario file (examples/scenarios)")
      ->required();
  simulate
      ->add_option("--policy", simulate_args.policies,
                   "sluice, static, pmta-backoff, kumo-step, aimd or oracle; repeatable "
                   "(default: all)")
      ->check(CLI::IsMember({"sluice", "static", "pmta-backoff", "kumo-step", "aimd", "oracle"}));
  simulate->add_option("--days", simulate_args.days, "Run this many days instead")
      ->check(CLI::Range(1, 60));
  simulate->add_option("--html", simulate_args.html,
                       "Also write a page with the charts of each policy to this file");
  ReplayArgs replay_args;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "The configured policy over the configured accounting files as they were, cycle by cycle "
      "in logged time: the decisions it would have made; writes nothing");
  replay->add_option("--from", replay_args.from, "Start here (a time, or a duration before now)")
      ->check(kTimeOrDuration);
  replay->add_option("--to", replay_args.to, "Stop here")->check(kTimeOrDuration);

  OverrideArgs override_args;
  CLI::App* override_cmd = app.add_subcommand(
      "override",
      "Edit the override file ([state] overrides): pins, freezes, bounds, tiers, the kill switch");
  override_cmd->require_subcommand(1);
  const auto scoped = [&](const char* name, const char* help) {
    CLI::App* sub = override_cmd->add_subcommand(name, help);
    sub->add_option("pool", override_args.pool, "The pool");
    sub->add_option("isp", override_args.isp, "The ISP (default: every ISP of the pool)");
    sub->add_option("--vmta", override_args.vmta, "One VMTA of the pool only");
    sub->callback([&override_args, name] { override_args.action = name; });
    return sub;
  };
  const auto expiring = [&](CLI::App* sub) {
    sub->add_option("--until", override_args.until,
                    "Expiry: a time (2026-12-01T00:00:00Z) or a duration from now (4h)")
        ->check(kTimeOrDuration);
    sub->add_option("--reason", override_args.reason, "Why (shown in status and history)");
  };
  CLI::App* pin = scoped("pin", "Hold max-smtp-out at a value");
  pin->add_option("--max-smtp-out", override_args.max_smtp_out, "The value, 1..1000")
      ->check(CLI::Range(1, 1000));
  expiring(pin);
  CLI::App* freeze = scoped("freeze", "Keep the current value: no change by the controller");
  freeze->add_flag("--all", override_args.all, "The kill switch: no change to any pool");
  expiring(freeze);
  CLI::App* unfreeze = scoped("unfreeze", "Remove a freeze");
  unfreeze->add_flag("--all", override_args.all, "Release the kill switch");
  CLI::App* bound = scoped("bound", "Bound the controller's range for POOL ISP");
  bound->add_option("--floor", override_args.floor, "Never below, 1..1000")
      ->check(CLI::Range(1, 1000));
  bound->add_option("--ceiling", override_args.ceiling, "Never above, 1..1000")
      ->check(CLI::Range(1, 1000));
  expiring(bound);
  CLI::App* tier = scoped("tier", "Set the reputation tier of POOL ISP");
  tier->add_option("tier", override_args.tier, "high, medium, low or warming")
      ->check(CLI::IsMember({"high", "medium", "low", "warming"}));
  tier->add_option("--source", override_args.source, "Where the tier comes from");
  // A tier belongs to a pool's IPs at an ISP: no VMTA has one of its own.
  tier->remove_option(tier->get_option("--vmta"));
  scoped("clear", "Remove every override and tier of POOL (or of POOL ISP, or of --vmta)");
  CLI::App* list = override_cmd->add_subcommand("list", "The overrides, in force or expired");
  list->callback([&override_args] { override_args.action = "list"; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    if (message.empty()) message = "invalid command line";
    std::fprintf(stderr, "sluice: usage error: %s (see sluice --help)\n", message.c_str());
    return kUsageError;
  }
  set_up_logging(log_level);

  try {
    if (version->parsed()) {
      std::printf("sluice %s\n", SLUICE_VERSION);
      return 0;
    }
    if (report->parsed()) return run_report(global, report_args);
    if (once->parsed()) return run_once(global, dry_run);
    if (app.got_subcommand("plan")) return run_plan(global);
    if (run_cmd->parsed()) return run_daemon(global, dry_run, interval);
    if (app.got_subcommand("status")) return run_status(global, status_args);
    if (history->parsed()) return run_history(global, history_args);
    if (explain->parsed()) return run_explain(global, explain_pool, explain_isp);
    if (ack->parsed()) return run_ack(global, ack_pool, ack_isp);
    if (app.got_subcommand("check")) return run_check(global);
    if (app.got_subcommand("init")) return run_init(global);
    if (override_cmd->parsed()) return run_override(global, override_args);
    if (simulate->parsed()) return run_simulate(global, simulate_args);
    if (replay->parsed()) return run_replay(global, replay_args);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return kUsageError;
}

}  // namespace sluice::cli
