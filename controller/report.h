#pragma once
// `sluice report`: why destinations defer, per ISP, pool and source IP.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/estimator.h"
#include "controller/read_stats.h"
#include "controller/signals.h"

namespace sluice {

struct ReportOptions {
  std::optional<UnixSeconds> since;  // records logged before are left out
  std::optional<UnixSeconds> until;  // records logged at or after are left out
  std::size_t top_texts = 5;
  UnixSeconds bucket_seconds = SignalAggregator::kDefaultBucketSeconds;
};

// Thresholds from the operating rules: above 5% investigate, above 15% act now.
enum class RateFlag { ok, investigate, act };
std::string_view to_string(RateFlag flag);
RateFlag flag_for(double deferral_rate);

// How a pool's deferrals at one ISP spread over its source IPs.
enum class Diagnosis { healthy, spread, concentrated, insufficient_data };
std::string_view to_string(Diagnosis d);

struct TextGroup {
  std::string text;  // the first 60 characters, without the "smtp;" prefix
  std::uint64_t count = 0;
  DeferralClass deferral_class = DeferralClass::other;
};

struct IpFigures {
  std::string ip;
  std::uint64_t attempts = 0;
  std::uint64_t deferred = 0;  // t + tq
  double deferral_rate = 0;
  bool stands_out = false;
};

struct IspFigures {
  std::string isp;
  BucketCounts counts;
  std::array<std::uint64_t, kDeferralClassCount> by_class{};  // t + tq by class
  double deferral_rate = 0;
  double bounce_rate = 0;
  RateFlag flag = RateFlag::ok;
  std::vector<TextGroup> top_deferrals;
};

struct PoolFigures {
  std::string pool;
  std::string isp;
  BucketCounts counts;
  double deferral_rate = 0;
  double bounce_rate = 0;
  RateFlag flag = RateFlag::ok;
  Diagnosis diagnosis = Diagnosis::healthy;
  std::string explanation;
  std::vector<IpFigures> ips;
};

struct SeriesPoint {
  UnixSeconds start = 0;
  std::uint64_t attempts = 0;
  std::uint64_t deferred = 0;
};

struct Report {
  BucketCounts totals;
  ReadStats read;
  std::uint64_t out_of_range = 0;  // records outside --since/--until
  std::optional<UnixSeconds> first_time;
  std::optional<UnixSeconds> last_time;
  UnixSeconds bucket_seconds = 0;
  bool text_groups_pruned = false;  // rare deferral texts were dropped to bound memory
  std::vector<IspFigures> isps;     // by attempts, descending
  std::vector<PoolFigures> pools;   // by pool, then attempts
  std::map<std::string, std::vector<SeriesPoint>> series;  // per ISP, by time
  // Per (pool, ISP), summed over source IPs, by time: the html report's charts by class.
  std::map<PairKey, std::vector<PairBucket>> pair_series;
};

class ReportBuilder : public PartitionedSink {
 public:
  ReportBuilder(std::shared_ptr<const IspCatalog> catalog, std::shared_ptr<const PoolMap> pools,
                ReportOptions options);

  void on_record(const AccountingRecord& record) override;
  std::unique_ptr<PartitionedSink> make_partial(std::size_t lane) override;
  void absorb(PartitionedSink& partial) override;

  Report build(const ReadStats& read) const;

 private:
  ReportBuilder(const ReportOptions& options, SignalAggregator signals);

  struct Group {
    std::uint64_t count = 0;
    DeferralClass deferral_class = DeferralClass::other;
  };

  ReportOptions options_;
  SignalAggregator signals_;
  FlatMap<std::string, Group, TransparentStringHash> groups_;  // key: ISP id byte + text prefix
  std::uint64_t out_of_range_ = 0;
  std::optional<UnixSeconds> first_time_;
  std::optional<UnixSeconds> last_time_;
  std::string group_key_;  // reused: no allocation per deferral
  std::uint64_t pruned_ = 0;

  void prune_groups();
};

// The shared 60-character text prefix that groups deferral texts.
std::string deferral_text_key(std::string_view dsn_diag);
void append_deferral_text_key(std::string_view dsn_diag, std::string& out);

}  // namespace sluice
