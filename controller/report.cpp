#include "controller/report.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "controller/utf8.h"

namespace sluice {

namespace {

constexpr double kInvestigate = 0.05;
constexpr double kAct = 0.15;
constexpr std::size_t kTextChars = 60;
// An IP is judged only with enough attempts, and stands out only when its rate differs from the
// rest of its pool beyond chance (two-proportion z-test) and by a margin an operator cares about.
constexpr std::uint64_t kMinIpAttempts = 30;
constexpr std::uint64_t kMinPoolAttempts = 50;
constexpr double kStandOutZ = 3.0;
constexpr std::size_t kMaxTextGroups = 8192;

double ratio(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::uint64_t deferrals(const BucketCounts& c) {
  return c.deferred + c.deferred_queue;
}

bool stands_out(const IpFigures& ip, std::uint64_t rest_attempts, std::uint64_t rest_deferred) {
  if (ip.attempts < kMinIpAttempts || rest_attempts < kMinIpAttempts) return false;
  const double rest_rate = ratio(rest_deferred, rest_attempts);
  if (ip.deferral_rate < kInvestigate || ip.deferral_rate < 2 * rest_rate) return false;
  const double pooled = ratio(ip.deferred + rest_deferred, ip.attempts + rest_attempts);
  const double se = std::sqrt(
      pooled * (1 - pooled) *
      (1.0 / static_cast<double>(ip.attempts) + 1.0 / static_cast<double>(rest_attempts)));
  return se > 0 && (ip.deferral_rate - rest_rate) / se >= kStandOutZ;
}

std::string percent(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100);
  return buf;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

void diagnose(PoolFigures& pool) {
  if (pool.counts.attempts() < kMinPoolAttempts) {
    pool.diagnosis = Diagnosis::insufficient_data;
    pool.explanation = "too few attempts to judge";
    return;
  }
  std::uint64_t att = 0, def = 0;
  for (const IpFigures& ip : pool.ips) {
    att += ip.attempts;
    def += ip.deferred;
  }
  std::vector<std::string> outliers;
  std::uint64_t normal_att = 0, normal_def = 0;
  for (IpFigures& ip : pool.ips) {
    ip.stands_out = pool.ips.size() > 1 && stands_out(ip, att - ip.attempts, def - ip.deferred);
    if (ip.stands_out) {
      outliers.push_back(ip.ip + " at " + percent(ip.deferral_rate));
    } else {
      normal_att += ip.attempts;
      normal_def += ip.deferred;
    }
  }
  if (pool.deferral_rate <= kInvestigate && outliers.empty()) {
    pool.diagnosis = Diagnosis::healthy;
    pool.explanation = "deferral rate within 5%";
    return;
  }
  // Concentrated: the IPs that stand out carry most of the trouble, the others defer at most
  // half the pool's rate (or within the 5% threshold).
  const double rest_rate = ratio(normal_def, normal_att);
  if (!outliers.empty() && (rest_rate <= kInvestigate || rest_rate <= pool.deferral_rate / 2)) {
    pool.diagnosis = Diagnosis::concentrated;
    pool.explanation = "deferrals concentrated on " + std::to_string(outliers.size()) + " of " +
                       std::to_string(pool.ips.size()) + " IPs (" + join(outliers) +
                       "): those IPs' reputation; the other IPs at " + percent(rest_rate);
    return;
  }
  pool.diagnosis = Diagnosis::spread;
  pool.explanation = "deferrals spread over " + std::to_string(pool.ips.size()) +
                     (pool.ips.size() == 1 ? " IP" : " IPs") +
                     ": the pool's configuration for this ISP (concurrency, rates)";
  if (!outliers.empty()) pool.explanation += "; standing out: " + join(outliers);
}

}  // namespace

std::string_view to_string(RateFlag flag) {
  switch (flag) {
    case RateFlag::ok:
      return "ok";
    case RateFlag::investigate:
      return "investigate";
    case RateFlag::act:
      return "act";
  }
  return "ok";
}

RateFlag flag_for(double deferral_rate) {
  if (deferral_rate > kAct) return RateFlag::act;
  if (deferral_rate > kInvestigate) return RateFlag::investigate;
  return RateFlag::ok;
}

std::string_view to_string(Diagnosis d) {
  switch (d) {
    case Diagnosis::healthy:
      return "healthy";
    case Diagnosis::spread:
      return "spread";
    case Diagnosis::concentrated:
      return "concentrated";
    case Diagnosis::insufficient_data:
      return "insufficient_data";
  }
  return "healthy";
}

void append_deferral_text_key(std::string_view dsn_diag, std::string& out) {
  if (dsn_diag.starts_with("smtp;")) dsn_diag.remove_prefix(5);
  while (!dsn_diag.empty() && dsn_diag.front() == ' ') dsn_diag.remove_prefix(1);
  const std::size_t at = out.size();
  out.append(utf8_prefix(dsn_diag, kTextChars));
  for (std::size_t i = at; i < out.size(); ++i) {
    if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t') out[i] = ' ';
  }
}

std::string deferral_text_key(std::string_view dsn_diag) {
  std::string key;
  append_deferral_text_key(dsn_diag, key);
  return key;
}

ReportBuilder::ReportBuilder(std::shared_ptr<const IspCatalog> catalog,
                             std::shared_ptr<const PoolMap> pools, ReportOptions options)
    : options_(options), signals_(std::move(catalog), std::move(pools), options.bucket_seconds) {}

void ReportBuilder::on_record(const AccountingRecord& record) {
  if ((options_.since && record.time_logged < *options_.since) ||
      (options_.until && record.time_logged >= *options_.until)) {
    ++out_of_range_;
    return;
  }
  if (!first_time_ || record.time_logged < *first_time_) first_time_ = record.time_logged;
  if (!last_time_ || record.time_logged > *last_time_) last_time_ = record.time_logged;
  const Attribution a = signals_.add(record);
  if (record.type != RecordType::deferred && record.type != RecordType::deferred_queue) return;
  group_key_.assign(1, static_cast<char>(a.isp));
  append_deferral_text_key(record.dsn_diag, group_key_);
  Group& group = groups_[group_key_];
  ++group.count;
  group.deferral_class = a.deferral_class;
  if (groups_.size() > kMaxTextGroups) prune_groups();
}

// Texts whose first 60 characters hold a per-message id would grow memory with the log: past
// the limit, the rarer half is dropped. The dominant texts, the ones reported, keep their counts.
void ReportBuilder::prune_groups() {
  std::vector<std::uint64_t> counts;
  counts.reserve(groups_.size());
  groups_.for_each([&](const std::string&, const Group& g) { counts.push_back(g.count); });
  auto middle = counts.begin() + static_cast<std::ptrdiff_t>(counts.size() / 2);
  std::nth_element(counts.begin(), middle, counts.end());
  const std::uint64_t median = *middle;
  FlatMap<std::string, Group, TransparentStringHash> kept;
  groups_.for_each([&](const std::string& key, const Group& g) {
    if (g.count > median) kept[key] = g;
  });
  groups_ = std::move(kept);
  ++pruned_;
}

ReportBuilder::ReportBuilder(const ReportOptions& options, SignalAggregator signals)
    : options_(options), signals_(std::move(signals)) {}

std::unique_ptr<PartitionedSink> ReportBuilder::make_partial(std::size_t lane) {
  return std::unique_ptr<PartitionedSink>(new ReportBuilder(options_, signals_.lane_partial(lane)));
}

void ReportBuilder::absorb(PartitionedSink& partial) {
  auto& other = static_cast<ReportBuilder&>(partial);
  signals_.merge_from(other.signals_);
  other.groups_.for_each([&](const std::string& key, const Group& group) {
    Group& mine = groups_[key];
    mine.count += group.count;
    mine.deferral_class = group.deferral_class;
  });
  other.groups_.clear();
  if (groups_.size() > kMaxTextGroups) prune_groups();
  pruned_ += other.pruned_;
  out_of_range_ += other.out_of_range_;
  if (other.first_time_ && (!first_time_ || *other.first_time_ < *first_time_)) {
    first_time_ = other.first_time_;
  }
  if (other.last_time_ && (!last_time_ || *other.last_time_ > *last_time_)) {
    last_time_ = other.last_time_;
  }
}

Report ReportBuilder::build(const ReadStats& read) const {
  Report report;
  report.read = read;
  report.out_of_range = out_of_range_;
  report.first_time = first_time_;
  report.last_time = last_time_;
  report.bucket_seconds = signals_.bucket_seconds();
  report.text_groups_pruned = pruned_ > 0;

  const std::vector<SignalBucket> buckets = signals_.buckets();
  report.pair_series = series_by_pair(buckets);
  std::map<std::string, IspFigures> isps;
  std::map<std::pair<std::string, std::string>, PoolFigures> pools;
  std::map<std::tuple<std::string, std::string, std::string>, IpFigures> ips;
  // Buckets come sorted by (start, pool, ISP, IP, class): neighbours mostly share their figures.
  const SignalBucket* previous = nullptr;
  PoolFigures* pool = nullptr;
  IpFigures* ip = nullptr;
  for (const SignalBucket& b : buckets) {
    report.totals += b.counts;
    IspFigures& isp = isps[b.isp];
    isp.isp = b.isp;
    isp.counts += b.counts;
    isp.by_class[static_cast<int>(b.deferral_class)] += deferrals(b.counts);
    const bool same_pair =
        previous != nullptr && previous->pool == b.pool && previous->isp == b.isp;
    if (!same_pair) {
      pool = &pools[{b.pool, b.isp}];
      pool->pool = b.pool;
      pool->isp = b.isp;
    }
    pool->counts += b.counts;
    if (!same_pair || previous->source_ip != b.source_ip) {
      ip = &ips[{b.pool, b.isp, b.source_ip}];
      ip->ip = b.source_ip;
    }
    ip->attempts += b.counts.attempts();
    ip->deferred += deferrals(b.counts);
    previous = &b;
    // Sorted by start: an ISP's points only ever grow at the end.
    std::vector<SeriesPoint>& series = report.series[b.isp];
    if (series.empty() || series.back().start != b.start) {
      series.push_back(SeriesPoint{b.start, 0, 0});
    }
    series.back().attempts += b.counts.attempts();
    series.back().deferred += deferrals(b.counts);
  }

  const IspCatalog& catalog = signals_.attributor().catalog();
  for (auto& entry : isps) {
    const std::string& name = entry.first;
    IspFigures& isp = entry.second;
    isp.deferral_rate = ratio(deferrals(isp.counts), isp.counts.attempts());
    isp.bounce_rate = ratio(isp.counts.bounced, isp.counts.attempts());
    isp.flag = flag_for(isp.deferral_rate);
    const std::optional<IspId> id = catalog.find(name);
    groups_.for_each([&](const std::string& key, const Group& group) {
      if (!id || static_cast<IspId>(key[0]) != *id) return;
      isp.top_deferrals.push_back(TextGroup{key.substr(1), group.count, group.deferral_class});
    });
    std::sort(isp.top_deferrals.begin(), isp.top_deferrals.end(),
              [](const TextGroup& a, const TextGroup& b) {
                return std::tie(b.count, a.text) < std::tie(a.count, b.text);
              });
    if (isp.top_deferrals.size() > options_.top_texts) isp.top_deferrals.resize(options_.top_texts);
    report.isps.push_back(std::move(isp));
  }
  std::sort(report.isps.begin(), report.isps.end(), [](const IspFigures& a, const IspFigures& b) {
    return std::make_tuple(b.counts.attempts(), a.isp) <
           std::make_tuple(a.counts.attempts(), b.isp);
  });

  for (auto& [key, ip] : ips) {
    ip.deferral_rate = ratio(ip.deferred, ip.attempts);
    pools[{std::get<0>(key), std::get<1>(key)}].ips.push_back(ip);
  }
  for (auto& [key, pool] : pools) {
    pool.deferral_rate = ratio(deferrals(pool.counts), pool.counts.attempts());
    pool.bounce_rate = ratio(pool.counts.bounced, pool.counts.attempts());
    pool.flag = flag_for(pool.deferral_rate);
    diagnose(pool);
    report.pools.push_back(std::move(pool));
  }
  std::stable_sort(report.pools.begin(), report.pools.end(),
                   [](const PoolFigures& a, const PoolFigures& b) {
                     return std::make_tuple(a.pool, b.counts.attempts()) <
                            std::make_tuple(b.pool, a.counts.attempts());
                   });
  return report;
}

}  // namespace sluice
