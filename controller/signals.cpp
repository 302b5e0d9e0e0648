#include "controller/signals.h"

#include <algorithm>
#include <numeric>
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

constexpr std::size_t kClassSlots = 4096;
constexpr std::size_t kPoolIpSlots = 4096;

Attributor::Attributor(std::shared_ptr<const IspCatalog> catalog,
                       std::shared_ptr<const PoolMap> pools)
    : catalog_(std::move(catalog)),
      pool_map_(std::move(pools)),
      class_slots_(kClassSlots),
      pool_ip_slots_(kPoolIpSlots) {}

void Attributor::note_vmta(std::uint32_t pool, std::uint32_t ip, std::string_view vmta) {
  if (vmta.empty()) return;
  vmtas_.try_emplace({pool, ip}, vmta);
}

Attributor::PoolIpSlot& Attributor::pool_and_ip(std::string_view pool, std::string_view ip,
                                                std::string_view vmta) {
  const std::uint64_t hash = fast_hash(pool) * 0x9E3779B97F4A7C15ULL ^ fast_hash(ip);
  PoolIpSlot& slot = pool_ip_slots_[hash % kPoolIpSlots];
  if (slot.used && slot.hash == hash && slot.pool_text == pool && slot.ip_text == ip) return slot;
  slot.used = true;
  slot.hash = hash;
  slot.pool = pools_.intern(pool);
  slot.ip = ips_.intern(ip);
  slot.pool_text.assign(pool);
  slot.ip_text.assign(ip);
  note_vmta(slot.pool, slot.ip, vmta);
  return slot;
}

DeferralClass Attributor::class_of(IspId isp, std::string_view diag) {
  const std::uint64_t hash = fast_hash(diag) ^ isp;
  ClassSlot& slot = class_slots_[hash % kClassSlots];
  if (slot.hash == hash && slot.isp == isp && slot.deferral_class != DeferralClass::none &&
      slot.text == diag) {
    return slot.deferral_class;
  }
  slot.hash = hash;
  slot.isp = isp;
  slot.deferral_class = catalog_->classify_deferral(isp, diag);
  slot.text.assign(diag);
  return slot.deferral_class;
}

IspId Attributor::isp_of(const AccountingRecord& record) {
  std::string_view domain = recipient_domain(record.rcpt);
  if (domain.empty()) domain = queue_domain(record.queue);
  std::optional<IspId>* cached = domain_cache_.find(domain);
  if (cached == nullptr) {
    if (domain_cache_.size() >= kCacheLimit) domain_cache_.clear();
    cached = &domain_cache_[domain];
    *cached = catalog_->match_domain(domain);
  }
  if (*cached) return **cached;
  // Not a catalog domain: a hosted domain still throttles like its MX's ISP.
  const std::string_view host = mx_host(record.dsn_mta);
  IspId* mx = mx_cache_.find(host);
  if (mx == nullptr) {
    if (mx_cache_.size() >= kCacheLimit) mx_cache_.clear();
    mx = &mx_cache_[host];
    *mx = catalog_->match_mx_host(host).value_or(catalog_->generic());
  }
  return *mx;
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
  const PoolIpSlot& ids = pool_and_ip(pool, record.source_ip, record.vmta);
  a.pool = ids.pool;
  a.ip = ids.ip;
  if (record.type == RecordType::deferred || record.type == RecordType::deferred_queue) {
    a.deferral_class = class_of(a.isp, record.dsn_diag);
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
    case RecordType::delivered:
      ++delivered;
      break;
    case RecordType::bounced:
      ++bounced;
      break;
    case RecordType::deferred:
      ++deferred;
      break;
    case RecordType::deferred_queue:
      ++deferred_queue;
      break;
  }
}

std::size_t SignalAggregator::KeyHash::operator()(const Key& k) const {
  std::uint64_t h = static_cast<std::uint64_t>(k.start) * 0x9E3779B97F4A7C15ULL;
  h ^= (static_cast<std::uint64_t>(k.pool) << 32 | k.ip) + 0x632BE59BD9B4E019ULL + (h << 6) +
       (h >> 2);
  h ^= (static_cast<std::uint64_t>(k.isp) << 8 | static_cast<std::uint64_t>(k.deferral_class)) +
       (h << 6) + (h >> 2);
  return static_cast<std::size_t>(h);
}

SignalAggregator::SignalAggregator(std::shared_ptr<const IspCatalog> catalog,
                                   std::shared_ptr<const PoolMap> pools, UnixSeconds bucket_seconds)
    : SignalAggregator(std::make_shared<Attributor>(std::move(catalog), std::move(pools)),
                       bucket_seconds) {}

SignalAggregator::SignalAggregator(std::shared_ptr<Attributor> attributor,
                                   UnixSeconds bucket_seconds)
    : attributor_(std::move(attributor)),
      bucket_seconds_(bucket_seconds > 0 ? bucket_seconds : kDefaultBucketSeconds) {}

Attribution SignalAggregator::add(const AccountingRecord& record) {
  const Attribution a = attributor_->attribute(record);
  const Key key{floor_to(record.time_logged, bucket_seconds_), a.pool, a.ip, a.isp,
                a.deferral_class};
  buckets_[key].count(record.type);
  return a;
}

void SignalAggregator::on_record(const AccountingRecord& record) {
  if (record.time_logged < keep_from_) {
    ++too_old_;
    return;
  }
  add(record);
}

SignalAggregator SignalAggregator::lane_partial(std::size_t lane) {
  if (lanes_.size() <= lane) lanes_.resize(lane + 1);
  if (!lanes_[lane]) {
    lanes_[lane] =
        std::make_shared<Attributor>(attributor_->catalog_ptr(), attributor_->pool_map_ptr());
  }
  SignalAggregator partial(lanes_[lane], bucket_seconds_);
  partial.keep_from_ = keep_from_;
  return partial;
}

std::unique_ptr<PartitionedSink> SignalAggregator::make_partial(std::size_t lane) {
  return std::make_unique<SignalAggregator>(lane_partial(lane));
}

void SignalAggregator::absorb(PartitionedSink& partial) {
  merge_from(static_cast<SignalAggregator&>(partial));
}

void SignalAggregator::merge_from(const SignalAggregator& other) {
  // Ids are the other attributor's: map the ones its buckets use, by name.
  std::unordered_map<std::uint32_t, std::uint32_t> pool_ids;
  std::unordered_map<std::uint32_t, std::uint32_t> ip_ids;
  too_old_ += other.too_old_;
  const Attributor& theirs = *other.attributor_;
  other.buckets_.for_each([&](const Key& key, const BucketCounts& counts) {
    Key mapped = key;
    auto pool = pool_ids.find(key.pool);
    if (pool == pool_ids.end()) {
      pool = pool_ids.emplace(key.pool, attributor_->pools().intern(theirs.pools().name(key.pool)))
                 .first;
    }
    auto ip = ip_ids.find(key.ip);
    if (ip == ip_ids.end()) {
      ip = ip_ids.emplace(key.ip, attributor_->ips().intern(theirs.ips().name(key.ip))).first;
    }
    mapped.pool = pool->second;
    mapped.ip = ip->second;
    buckets_[mapped] += counts;
  });
  for (const auto& [ids, vmta] : theirs.vmtas()) {
    attributor_->note_vmta(attributor_->pools().intern(theirs.pools().name(ids.first)),
                           attributor_->ips().intern(theirs.ips().name(ids.second)), vmta);
  }
}

std::vector<IpVmta> SignalAggregator::ip_vmtas() const {
  std::vector<IpVmta> out;
  for (const auto& [ids, vmta] : attributor_->vmtas()) {
    out.push_back(
        IpVmta{attributor_->pools().name(ids.first), attributor_->ips().name(ids.second), vmta});
  }
  std::sort(out.begin(), out.end(), [](const IpVmta& a, const IpVmta& b) {
    return std::tie(a.pool, a.source_ip) < std::tie(b.pool, b.source_ip);
  });
  return out;
}

std::vector<SignalBucket> SignalAggregator::buckets() const {
  const Attributor& attributor = *attributor_;
  const IspCatalog& catalog = attributor.catalog();
  // Sorted by each id's place in the names' order: integers compare faster than strings.
  const auto ranks = [](std::size_t count, const auto& name_of) {
    std::vector<std::uint32_t> ids(count);
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(),
              [&](std::uint32_t a, std::uint32_t b) { return name_of(a) < name_of(b); });
    std::vector<std::uint32_t> rank(count);
    for (std::uint32_t r = 0; r < count; ++r) rank[ids[r]] = r;
    return rank;
  };
  const std::vector<std::uint32_t> pool_rank =
      ranks(attributor.pools().size(),
            [&](std::uint32_t id) -> const std::string& { return attributor.pools().name(id); });
  const std::vector<std::uint32_t> ip_rank =
      ranks(attributor.ips().size(),
            [&](std::uint32_t id) -> const std::string& { return attributor.ips().name(id); });
  const std::vector<std::uint32_t> isp_rank = ranks(
      catalog.size(),
      [&](std::uint32_t id) -> const std::string& { return catalog.name(static_cast<IspId>(id)); });
  struct Entry {
    std::tuple<UnixSeconds, std::uint32_t, std::uint32_t, std::uint32_t, DeferralClass> order;
    Key key;
    BucketCounts counts;
  };
  std::vector<Entry> entries;
  entries.reserve(buckets_.size());
  buckets_.for_each([&](const Key& key, const BucketCounts& counts) {
    entries.push_back(Entry{
        {key.start, pool_rank[key.pool], isp_rank[key.isp], ip_rank[key.ip], key.deferral_class},
        key,
        counts});
  });
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.order < b.order; });
  std::vector<SignalBucket> out;
  out.reserve(entries.size());
  for (const Entry& e : entries) {
    out.push_back(SignalBucket{e.key.start, attributor.pools().name(e.key.pool),
                               catalog.name(e.key.isp), attributor.ips().name(e.key.ip),
                               e.key.deferral_class, e.counts});
  }
  return out;
}

}  // namespace sluice
