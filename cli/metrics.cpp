#include "cli/metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <set>
#include <string_view>
#include <utility>

#include "adapters/atomic_file.h"
#include "cli/known_reputation.h"
#include "controller/estimator.h"

namespace sluice::cli {

namespace {

// What the audit trail records for a change pmta reloaded, and for the decisions of a dry run
// (controller/cycle.cpp); any other outcome of a row not applied is a refused change.
constexpr std::string_view kReloadedOutcome = "reloaded";
constexpr std::string_view kDryRunOutcome = "dry run";

constexpr std::array<Phase, 4> kPhases = {Phase::steady, Phase::verifying, Phase::investigate,
                                          Phase::no_effect};
constexpr std::array<Tier, 4> kTiers = {Tier::high, Tier::medium, Tier::low, Tier::warming};

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

std::string escaped_label_value(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The shortest text that reads back as `value`; Prometheus' spellings of the special values.
std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, ec == std::errc() ? end : buf);
}

// Families are written whole, one after the other: HELP and TYPE once, then every sample.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    text_ += "# HELP " + name_ + " " + std::string(help) + "\n";
    text_ += "# TYPE " + name_ + " " + std::string(type) + "\n";
  }
  void sample(Labels labels, double value) {
    text_ += name_;
    if (labels.size() > 0) {
      char separator = '{';
      for (const auto& [label, v] : labels) {
        text_ += separator + std::string(label) + "=\"" + escaped_label_value(v) + "\"";
        separator = ',';
      }
      text_ += '}';
    }
    text_ += " " + number(value) + "\n";
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string name_;
};

}  // namespace

std::string render_metrics(const MetricsInput& input) {
  Exposition out;
  out.family("sluice_max_smtp_out", "gauge", "max-smtp-out of the pool at the ISP, in force.");
  for (const PairMetrics& p : input.pairs) {
    if (p.max_smtp_out) out.sample({{"pool", p.pool}, {"isp", p.isp}}, *p.max_smtp_out);
  }
  out.family("sluice_cap", "gauge", "Highest max-smtp-out the pair's reputation tier allows.");
  for (const PairMetrics& p : input.pairs) out.sample({{"pool", p.pool}, {"isp", p.isp}}, p.cap);
  out.family("sluice_tier", "gauge", "The pair's reputation tier in force (1), the others (0).");
  for (const PairMetrics& p : input.pairs) {
    for (const Tier t : kTiers) {
      out.sample({{"pool", p.pool}, {"isp", p.isp}, {"tier", to_string(t)}}, t == p.tier ? 1 : 0);
    }
  }
  out.family("sluice_phase", "gauge", "The pair's phase (1), the others (0).");
  for (const PairMetrics& p : input.pairs) {
    if (!p.phase) continue;
    for (const Phase ph : kPhases) {
      out.sample({{"pool", p.pool}, {"isp", p.isp}, {"phase", to_string(ph)}},
                 ph == *p.phase ? 1 : 0);
    }
  }
  out.family("sluice_deferral_ratio", "gauge",
             "Deferrals of the class over attempts in the last decision window (0..1).");
  for (const PairMetrics& p : input.pairs) {
    for (int c = 1; c < kDeferralClassCount; ++c) {
      const std::string_view name = to_string(static_cast<DeferralClass>(c));
      out.sample({{"pool", p.pool}, {"isp", p.isp}, {"class", name}}, p.deferral_ratio[c]);
    }
  }
  out.family("sluice_override_in_force", "gauge",
             "1 while a pin, freeze or bounds of the override file (or the kill switch) holds "
             "the pair.");
  for (const PairMetrics& p : input.pairs) {
    out.sample({{"pool", p.pool}, {"isp", p.isp}}, p.override_in_force ? 1 : 0);
  }
  out.family("sluice_decisions_total", "counter",
             "Decisions recorded in the audit trail, by rule (dry runs and refused changes "
             "included).");
  for (const auto& [key, count] : input.decisions) {
    const auto& [pool, isp, rule] = key;
    out.sample({{"pool", pool}, {"isp", isp}, {"rule", to_string(rule)}},
               static_cast<double>(count));
  }
  out.family("sluice_reloads_total", "counter", "Cycles whose change PowerMTA reloaded.");
  out.sample({}, static_cast<double>(input.reloads));
  out.family("sluice_reload_failures_total", "counter",
             "Cycles whose change was refused (fragment write, pmta test config or reload) and "
             "put back.");
  out.sample({}, static_cast<double>(input.reload_failures));
  out.family("sluice_cycle_duration_seconds", "gauge",
             "How long the last cycle took: read, decide, apply, commit.");
  out.sample({}, input.cycle_duration_seconds);
  out.family("sluice_last_cycle_timestamp_seconds", "gauge",
             "When the last cycle ran (its clock), in unix seconds.");
  out.sample({}, static_cast<double>(input.last_cycle_at));
  out.family("sluice_last_cycle_records", "gauge",
             "Accounting records the last cycle read (d, b, t, tq).");
  out.sample({}, static_cast<double>(input.records));
  out.family("sluice_last_cycle_malformed_lines", "gauge",
             "Malformed accounting lines the last cycle skipped, by reason.");
  for (int r = 0; r < kMalformedReasonCount; ++r) {
    out.sample({{"reason", to_string(static_cast<MalformedReason>(r))}},
               static_cast<double>(input.malformed[r]));
  }
  return out.text();
}

Expected<MetricsInput> collect_metrics(const config::Config& config,
                                       const std::vector<ManagedPair>& pairs, StateStore& store,
                                       const CycleReport& report,
                                       std::chrono::steady_clock::duration took) {
  const UnixSeconds now = report.now;
  MetricsInput in;
  in.cycle_duration_seconds = std::chrono::duration<double>(took).count();
  in.last_cycle_at = now;
  in.records = report.read.records;
  in.malformed = report.read.malformed;

  Expected<std::vector<PairState>> states = store.load_pairs();
  if (!states) return states.error();
  Expected<std::map<PairKey, Tier>> reputation = known_reputation(config, store);
  if (!reputation) return reputation.error();
  UnixSeconds longest_window = 0;
  for (const ManagedPair& pair : pairs) {
    longest_window = std::max(longest_window, pair.policy.window_seconds);
  }
  Expected<std::vector<SignalBucket>> buckets = store.buckets_since(now - longest_window);
  if (!buckets) return buckets.error();
  const auto series = series_by_pair(*buckets);
  for (const ManagedPair& pair : pairs) {
    PairMetrics m;
    m.pool = pair.pool;
    m.isp = pair.isp;
    bool warmed_up = false;
    for (const PairState& s : *states) {
      if (s.pool != pair.pool || s.isp != pair.isp) continue;
      m.max_smtp_out = s.max_smtp_out;
      m.phase = s.phase;
      warmed_up = s.warmed_up;
    }
    // As `status` shows them: the tier in force and its cap.
    m.tier = choose_tier(pair, report.overrides, *reputation, warmed_up).tier;
    m.cap = range_for(pair.policy, pair.isp, m.tier).cap;
    // The window's length, not its start: right after a change the decision window is empty.
    if (const auto found = series.find({pair.pool, pair.isp}); found != series.end()) {
      const SignalFigures window =
          summarize(found->second, now - pair.policy.window_seconds, now, pair.policy).window;
      for (int c = 1; c < kDeferralClassCount && window.attempts > 0; ++c) {
        m.deferral_ratio[c] =
            static_cast<double>(window.by_class[c]) / static_cast<double>(window.attempts);
      }
    }
    m.override_in_force = report.overrides.freeze_all ||
                          report.overrides.for_pair(pair.pool, pair.isp, now) != nullptr;
    in.pairs.push_back(std::move(m));
  }

  // Counters from the audit trail, never from this process's memory: they survive restarts.
  Expected<std::vector<DecisionRecord>> history = store.history({});
  if (!history) return history.error();
  std::set<UnixSeconds> reloads;
  std::set<UnixSeconds> failures;
  for (const DecisionRecord& r : *history) {
    const Decision& d = r.decision;
    ++in.decisions[{d.pool, d.isp, d.rule}];
    // A cycle's rows share its time, and it reloads at most once.
    if (r.applied && r.pmta_outcome == kReloadedOutcome) reloads.insert(d.at);
    if (!r.applied && r.pmta_outcome != kDryRunOutcome) failures.insert(d.at);
  }
  in.reloads = reloads.size();
  in.reload_failures = failures.size();
  return in;
}

std::optional<std::string> export_metrics(const config::Config& config,
                                          const std::vector<ManagedPair>& pairs, StateStore& store,
                                          const CycleReport& report,
                                          std::chrono::steady_clock::duration took) {
  if (config.metrics_textfile.empty() && config.metrics_listen_port == 0) return std::nullopt;
  Expected<MetricsInput> input = collect_metrics(config, pairs, store, report, took);
  if (!input) {
    spdlog::warn("metrics not updated: {}", input.error().message);
    return std::nullopt;
  }
  std::string text = render_metrics(*input);
  // The atomic writer's temporary file is <name>.tmp-XXXXXX, which does not end in .prom: the
  // textfile collector never reads a partial file.
  if (!config.metrics_textfile.empty()) {
    if (Status s = adapters::write_file_atomically(config.metrics_textfile, text, 0644); !s) {
      spdlog::warn("metrics not written: {}", s.error().message);
    }
  }
  return text;
}

}  // namespace sluice::cli
