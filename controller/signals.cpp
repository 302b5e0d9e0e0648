#include "controller/signals.h"

#include <algorithm>
#include <tuple>

namespace sluice {

namespace {
// Caches are bounded so that memory stays flat however many distinct domains a log holds.
constexpr std::size_t kCacheLimit = 1 << 16;

UnixSeconds floor_to(UnixSeconds t, UnixSeconds width) {
  UnixSeconds q = t / width;
  if (t % width < 0) --q;  // floor, also before 1970
  return q * width;
}
}  // namespace

Attributor::Attributor(std::shared_ptr<const IspCatalog> catalog,
                       std::shared_ptr<const PoolMap> pools)
    : catalog_(std::move(catalog)), pool_map_(std::move(pools)) {}

IspId Attributor::isp_of(const AccountingRecord& record) {
  std::string_view domain = recipient_domain(record.rcpt);
  if (domain.empty()) domain = queue_domain(record.queue);
  auto cached = domain_cache_.find(domain);
  if (cached == domain_cache_.end()) {
    if (domain_cache_.size() >= kCacheLimit) domain_cache_.clear();
    cached = domain_cache_.emplace(std::string(domain), catalog_->match_domain(domain)).first;
  }
  if (cached->second) return *cached->second;
  // Not a catalog domain: a hosted domain still throttles like its MX's ISP.
  const std::string_view host = mx_host(record.dsn_mta);
  auto mx = mx_cache_.find(host);
  if (mx == mx_cache_.end()) {
    if (mx_cache_.size() >= kCacheLimit) mx_cache_.clear();
    mx = mx_cache_.emplace(std::string(host), catalog_->match_mx_host(host).value_or(
                                                  catalog_->generic())).first;
  }
  return mx->second;
}

Attribution Attributor::attribute(const AccountingRecord& record) {
  Attribution a;
  a.isp = isp_of(record);
  std::string_view pool = record.vmta_pool;
  if (pool.empty()) {
    pool = record.vmta;
    if (pool_map_) {
      if (auto it = pool_map_->find(record.vmta); it != pool_map_->end()) pool = it->second;
    }
  }
  a.pool = pools_.intern(pool);
  a.ip = ips_.intern(record.source_ip);
  if (record.type == RecordType::deferred || record.type == RecordType::deferred_queue) {
    a.deferral_class = catalog_->classify_deferral(a.isp, record.dsn_diag);
  }
  return a;
}

BucketCounts& BucketCounts::operator+=(const BucketCounts& o) {
  delivered += o.delivered;
  bounced += o.bounced;
  deferred += o.deferred;
  deferred_queue += o.deferred_queue;
  return *this;
}

void BucketCounts::count(RecordType type) {
  switch (type) {
    case RecordType::delivered: ++delivered; break;
    case RecordType::bounced: ++bounced; break;
    case RecordType::deferred: ++deferred; break;
    case RecordType::deferred_queue: ++deferred_queue; break;
  }
}

std::size_t SignalAggregator::KeyHash::operator()(const Key& k) const {
  std::uint64_t h = static_cast<std::uint64_t>(k.start) * 0x9E3779B97F4A7C15ULL;
  h ^= (static_cast<std::uint64_t>(k.pool) << 32 | k.ip) + 0x632BE59BD9B4E019ULL + (h << 6) + (h >> 2);
  h ^= (static_cast<std::uint64_t>(k.isp) << 8 | static_cast<std::uint64_t>(k.deferral_class)) +
       (h << 6) + (h >> 2);
  return static_cast<std::size_t>(h);
}

SignalAggregator::SignalAggregator(std::shared_ptr<const IspCatalog> catalog,
                                   std::shared_ptr<const PoolMap> pools, UnixSeconds bucket_seconds)
    : attributor_(std::move(catalog), std::move(pools)),
      bucket_seconds_(bucket_seconds > 0 ? bucket_seconds : kDefaultBucketSeconds) {}

Attribution SignalAggregator::add(const AccountingRecord& record) {
  const Attribution a = attributor_.attribute(record);
  const Key key{floor_to(record.time_logged, bucket_seconds_), a.pool, a.ip, a.isp,
                a.deferral_class};
  buckets_[key].count(record.type);
  return a;
}

void SignalAggregator::on_record(const AccountingRecord& record) { add(record); }

std::unique_ptr<PartitionedSink> SignalAggregator::make_partial() const {
  return std::make_unique<SignalAggregator>(attributor_.catalog_ptr(), attributor_.pool_map_ptr(),
                                            bucket_seconds_);
}

void SignalAggregator::absorb(PartitionedSink& partial) {
  merge_from(static_cast<SignalAggregator&>(partial));
}

void SignalAggregator::merge_from(const SignalAggregator& other) {
  std::vector<std::uint32_t> pool_ids(other.attributor_.pools().size());
  for (std::uint32_t i = 0; i < pool_ids.size(); ++i) {
    pool_ids[i] = attributor_.pools().intern(other.attributor_.pools().name(i));
  }
  std::vector<std::uint32_t> ip_ids(other.attributor_.ips().size());
  for (std::uint32_t i = 0; i < ip_ids.size(); ++i) {
    ip_ids[i] = attributor_.ips().intern(other.attributor_.ips().name(i));
  }
  for (const auto& [key, counts] : other.buckets_) {
    Key mapped = key;
    mapped.pool = pool_ids[key.pool];
    mapped.ip = ip_ids[key.ip];
    buckets_[mapped] += counts;
  }
}

std::vector<SignalBucket> SignalAggregator::buckets() const {
  std::vector<SignalBucket> out;
  out.reserve(buckets_.size());
  const IspCatalog& catalog = attributor_.catalog();
  for (const auto& [key, counts] : buckets_) {
    out.push_back(SignalBucket{key.start, attributor_.pools().name(key.pool),
                               catalog.name(key.isp), attributor_.ips().name(key.ip),
                               key.deferral_class, counts});
  }
  std::sort(out.begin(), out.end(), [](const SignalBucket& a, const SignalBucket& b) {
    return std::tie(a.start, a.pool, a.isp, a.source_ip, a.deferral_class) <
           std::tie(b.start, b.pool, b.isp, b.source_ip, b.deferral_class);
  });
  return out;
}

}  // namespace sluice
