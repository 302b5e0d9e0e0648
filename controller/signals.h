#pragma once
// The estimator's first stage: attribute each accounting record to (pool, ISP, source IP,
// deferral class) and count it into fixed time buckets.

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "controller/domain.h"
#include "controller/interner.h"
#include "controller/isp_catalog.h"
#include "controller/record_sink.h"

namespace sluice {

// vmta name -> pool name, from the configuration; used when the vmtaPool column is empty.
using PoolMap = StringMap<std::string>;

struct Attribution {
  IspId isp = 0;
  std::uint32_t pool = 0;  // id in Attributor::pools()
  std::uint32_t ip = 0;    // id in Attributor::ips()
  DeferralClass deferral_class = DeferralClass::none;
};

// Not thread-safe: each reader thread has its own (its caches are what makes it fast).
class Attributor {
 public:
  Attributor(std::shared_ptr<const IspCatalog> catalog, std::shared_ptr<const PoolMap> pools);

  Attribution attribute(const AccountingRecord& record);

  const IspCatalog& catalog() const { return *catalog_; }
  const Interner& pools() const { return pools_; }
  const Interner& ips() const { return ips_; }
  Interner& pools() { return pools_; }
  Interner& ips() { return ips_; }
  const std::shared_ptr<const IspCatalog>& catalog_ptr() const { return catalog_; }
  const std::shared_ptr<const PoolMap>& pool_map_ptr() const { return pool_map_; }

 private:
  IspId isp_of(const AccountingRecord& record);
  DeferralClass class_of(IspId isp, std::string_view diag);

  // Remembers recent (ISP, text) classifications. Direct-mapped and fixed in size: texts that
  // carry per-message ids only ever miss, and cost no allocation when they do.
  struct ClassSlot {
    std::uint64_t hash = 0;
    IspId isp = 0;
    DeferralClass deferral_class = DeferralClass::none;
    std::string text;
  };

  // Remembers recent (pool, source IP) pairs with their ids: one probe instead of two interner
  // lookups for every record. Direct-mapped like the classifications.
  struct PoolIpSlot {
    std::uint64_t hash = 0;
    bool used = false;
    std::uint32_t pool = 0;
    std::uint32_t ip = 0;
    std::string pool_text;
    std::string ip_text;
  };
  PoolIpSlot& pool_and_ip(std::string_view pool, std::string_view ip, std::string_view vmta);

 public:
  // The VMTA each (pool, source IP) was first seen with, by interned ids: where a per-IP remedy
  // is written.
  const std::map<std::pair<std::uint32_t, std::uint32_t>, std::string>& vmtas() const {
    return vmtas_;
  }
  void note_vmta(std::uint32_t pool, std::uint32_t ip, std::string_view vmta);

 private:
  std::shared_ptr<const IspCatalog> catalog_;
  std::shared_ptr<const PoolMap> pool_map_;
  Interner pools_;
  Interner ips_;
  FlatMap<std::string, std::optional<IspId>, TransparentStringHash> domain_cache_;
  FlatMap<std::string, IspId, TransparentStringHash> mx_cache_;
  std::vector<ClassSlot> class_slots_;
  std::vector<PoolIpSlot> pool_ip_slots_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> vmtas_;
};

struct BucketCounts {
  std::uint64_t delivered = 0;
  std::uint64_t bounced = 0;
  std::uint64_t deferred = 0;        // t records
  std::uint64_t deferred_queue = 0;  // tq records
  std::uint64_t attempts() const { return delivered + bounced + deferred + deferred_queue; }
  BucketCounts& operator+=(const BucketCounts& o);
  void count(RecordType type);
};

// A source IP's VMTA in a pool, as the accounting records name them.
struct IpVmta {
  std::string pool;
  std::string source_ip;
  std::string vmta;
  bool operator==(const IpVmta&) const = default;
};

struct SignalBucket {
  UnixSeconds start = 0;
  std::string pool;
  std::string isp;
  std::string source_ip;
  DeferralClass deferral_class = DeferralClass::none;
  BucketCounts counts;
};

class SignalAggregator : public PartitionedSink {
 public:
  static constexpr UnixSeconds kDefaultBucketSeconds = 300;

  SignalAggregator(std::shared_ptr<const IspCatalog> catalog, std::shared_ptr<const PoolMap> pools,
                   UnixSeconds bucket_seconds = kDefaultBucketSeconds);

  void on_record(const AccountingRecord& record) override;
  std::unique_ptr<PartitionedSink> make_partial(std::size_t lane) override;
  void absorb(PartitionedSink& partial) override;

  // Sorted by (start, pool, isp, source_ip, class).
  std::vector<SignalBucket> buckets() const;
  // Sorted by (pool, source_ip).
  std::vector<IpVmta> ip_vmtas() const;
  UnixSeconds bucket_seconds() const { return bucket_seconds_; }

  // Records logged before `start` are counted but not kept: the loop keeps buckets only for its
  // retention, and a log of years would otherwise hold every 5-minute bucket in memory at once.
  void keep_only_from(UnixSeconds start) { keep_from_ = start; }
  std::uint64_t records_too_old() const { return too_old_; }

  // For sinks built on top of this one: attributes and counts, returning the attribution.
  Attribution add(const AccountingRecord& record);
  Attributor& attributor() { return *attributor_; }
  const Attributor& attributor() const { return *attributor_; }
  void merge_from(const SignalAggregator& other);
  // An empty aggregator that shares the lane's attributor (see PartitionedSink::make_partial).
  SignalAggregator lane_partial(std::size_t lane);

 private:
  struct Key {
    UnixSeconds start = 0;
    std::uint32_t pool = 0;
    std::uint32_t ip = 0;
    IspId isp = 0;
    DeferralClass deferral_class = DeferralClass::none;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };

  SignalAggregator(std::shared_ptr<Attributor> attributor, UnixSeconds bucket_seconds);

  std::shared_ptr<Attributor> attributor_;
  std::vector<std::shared_ptr<Attributor>> lanes_;
  UnixSeconds bucket_seconds_;
  UnixSeconds keep_from_ = std::numeric_limits<UnixSeconds>::min();
  std::uint64_t too_old_ = 0;
  FlatMap<Key, BucketCounts, KeyHash, std::equal_to<Key>> buckets_;
};

}  // namespace sluice
