#include "controller/signals.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

using ::testing::ElementsAre;
using C = DeferralClass;

constexpr UnixSeconds kT0 = 1795773600;  // 2026-11-27T10:00:00Z, a multiple of 300

constexpr std::string_view kGmailThrottle =
    "smtp;421-4.7.0 Try again later, closing connection. (EHLO) a1si2 - gsmtp";
constexpr std::string_view kYahooTss04 =
    "smtp;421 4.7.0 [TSS04] Messages from 203.0.113.1 temporarily deferred due to unexpected "
    "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes";

AccountingRecord record(RecordType type, std::string_view rcpt, std::string_view diag = {}) {
  AccountingRecord r;
  r.type = type;
  r.time_logged = kT0;
  r.rcpt = rcpt;
  r.dsn_diag = diag;
  r.vmta = "gmail-ip-1";
  r.source_ip = "203.0.113.1";
  return r;
}

std::shared_ptr<const PoolMap> pool_map() {
  auto map = std::make_shared<PoolMap>();
  map->emplace("gmail-ip-1", "high-rep-pool");
  map->emplace("gmail-ip-2", "high-rep-pool");
  return map;
}

class AttributorTest : public ::testing::Test {
 protected:
  std::string isp(const AccountingRecord& r) {
    return attributor_.catalog().name(attributor_.attribute(r).isp);
  }
  std::string pool(const AccountingRecord& r) {
    return attributor_.pools().name(attributor_.attribute(r).pool);
  }

  Attributor attributor_{IspCatalog::builtin(), pool_map()};
};

TEST_F(AttributorTest, IspFromTheRecipientDomain) {
  AccountingRecord r = record(RecordType::delivered, "jane@GMail.com");
  r.queue = "yahoo.com/gmail-ip-1";
  r.dsn_mta = "mta5.am0.yahoodns.net (67.195.204.72)";
  EXPECT_EQ(isp(r), "gmail");
}

TEST_F(AttributorTest, QueueLevelRecordTakesTheIspFromTheQueueDomain) {
  AccountingRecord r = record(RecordType::deferred_queue, "", kGmailThrottle);
  r.queue = "outlook.com/ms-ip-1";
  EXPECT_EQ(isp(r), "outlook");
}

TEST_F(AttributorTest, HostedDomainTakesTheIspFromTheMxSuffix) {
  AccountingRecord r = record(RecordType::delivered, "ceo@acme-corp.example");
  r.dsn_mta = "acme-corp-example.mail.protection.outlook.com (52.101.68.1)";
  EXPECT_EQ(isp(r), "outlook");

  AccountingRecord tq = record(RecordType::deferred_queue, "", kGmailThrottle);
  tq.queue = "acme-corp.example/gmail-ip-1";
  tq.dsn_mta = "aspmx.l.google.com (142.250.27.26)";
  EXPECT_EQ(isp(tq), "gmail");
}

TEST_F(AttributorTest, UnknownDomainAndMxIsGeneric) {
  AccountingRecord r = record(RecordType::delivered, "bob@example.org");
  r.dsn_mta = "mx1.example.org (192.0.2.25)";
  EXPECT_EQ(isp(r), "generic");
  EXPECT_EQ(isp(record(RecordType::delivered, "")), "generic");
}

TEST_F(AttributorTest, PoolFromTheVmtaPoolColumnFirst) {
  AccountingRecord r = record(RecordType::delivered, "jane@gmail.com");
  r.vmta_pool = "warmup-pool";
  EXPECT_EQ(pool(r), "warmup-pool");
}

TEST_F(AttributorTest, PoolFromTheConfiguredPoolMapWhenTheColumnIsEmpty) {
  AccountingRecord r = record(RecordType::delivered, "jane@gmail.com");
  r.vmta = "gmail-ip-2";
  EXPECT_EQ(pool(r), "high-rep-pool");
}

TEST_F(AttributorTest, PoolIsTheVmtaWhenNeitherNamesOne) {
  AccountingRecord r = record(RecordType::delivered, "jane@gmail.com");
  r.vmta = "lonely-ip-9";
  EXPECT_EQ(pool(r), "lonely-ip-9");

  Attributor without_map(IspCatalog::builtin(), nullptr);
  EXPECT_EQ(without_map.pools().name(
                without_map.attribute(record(RecordType::delivered, "jane@gmail.com")).pool),
            "gmail-ip-1");
}

TEST_F(AttributorTest, ClassOnlyForTransientRecords) {
  EXPECT_EQ(attributor_.attribute(record(RecordType::deferred, "jane@gmail.com", kGmailThrottle))
                .deferral_class,
            C::connection);
  AccountingRecord tq = record(RecordType::deferred_queue, "", kGmailThrottle);
  tq.queue = "gmail.com/gmail-ip-1";
  EXPECT_EQ(attributor_.attribute(tq).deferral_class, C::connection);
  // A delivered or bounced record's text is not a deferral, whatever it says.
  EXPECT_EQ(attributor_.attribute(record(RecordType::delivered, "jane@gmail.com", kGmailThrottle))
                .deferral_class,
            C::none);
  EXPECT_EQ(attributor_.attribute(record(RecordType::bounced, "jane@gmail.com", kGmailThrottle))
                .deferral_class,
            C::none);
}

TEST_F(AttributorTest, SameTextIsClassifiedPerIsp) {
  // A text is read with its ISP's rules: Yahoo's code means nothing at Gmail.
  EXPECT_EQ(attributor_.attribute(record(RecordType::deferred, "jane@yahoo.com", kYahooTss04))
                .deferral_class,
            C::reputation);
  EXPECT_EQ(attributor_.attribute(record(RecordType::deferred, "jane@gmail.com", kYahooTss04))
                .deferral_class,
            C::other);
  EXPECT_EQ(attributor_.attribute(record(RecordType::deferred, "joe@yahoo.com", kYahooTss04))
                .deferral_class,
            C::reputation);
}

TEST_F(AttributorTest, InternsPoolsAndIps) {
  AccountingRecord a = record(RecordType::delivered, "jane@gmail.com");
  AccountingRecord b = record(RecordType::delivered, "joe@gmail.com");
  b.vmta = "gmail-ip-2";
  b.source_ip = "203.0.113.2";
  const Attribution first = attributor_.attribute(a);
  const Attribution second = attributor_.attribute(b);
  const Attribution again = attributor_.attribute(a);
  EXPECT_EQ(first.pool, second.pool);  // both VMTAs are in high-rep-pool
  EXPECT_NE(first.ip, second.ip);
  EXPECT_EQ(first.ip, again.ip);
  EXPECT_EQ(attributor_.ips().size(), 2u);
  EXPECT_EQ(attributor_.pools().size(), 1u);
}

// --- SignalAggregator ---

std::string row(const SignalBucket& b) {
  return std::to_string(b.start - kT0) + " " + b.pool + " " + b.isp + " " + b.source_ip + " " +
         std::string(to_string(b.deferral_class)) + " d=" + std::to_string(b.counts.delivered) +
         " b=" + std::to_string(b.counts.bounced) + " t=" + std::to_string(b.counts.deferred) +
         " tq=" + std::to_string(b.counts.deferred_queue);
}

std::vector<std::string> rows(const std::vector<SignalBucket>& buckets) {
  std::vector<std::string> out;
  for (const SignalBucket& b : buckets) out.push_back(row(b));
  return out;
}

struct Event {
  RecordType type;
  UnixSeconds offset;  // from kT0
  std::string_view rcpt;
  std::string_view pool;
  std::string_view ip;
  std::string_view diag = {};
};

void feed(RecordSink& sink, const std::vector<Event>& events) {
  for (const Event& e : events) {
    AccountingRecord r;
    r.type = e.type;
    r.time_logged = kT0 + e.offset;
    r.rcpt = e.rcpt;
    r.vmta_pool = e.pool;
    r.vmta = "vmta";
    r.source_ip = e.ip;
    r.dsn_diag = e.diag;
    if (e.type == RecordType::deferred_queue) r.queue = "gmail.com/vmta";
    sink.on_record(r);
  }
}

TEST(SignalAggregator, FloorsTimesToFiveMinuteBuckets) {
  SignalAggregator agg(IspCatalog::builtin(), nullptr);
  EXPECT_EQ(agg.bucket_seconds(), 300);
  feed(agg, {{RecordType::delivered, 0, "a@gmail.com", "p", "203.0.113.1"},
             {RecordType::delivered, 299, "b@gmail.com", "p", "203.0.113.1"},
             {RecordType::delivered, 300, "c@gmail.com", "p", "203.0.113.1"},
             {RecordType::delivered, -1, "d@gmail.com", "p", "203.0.113.1"}});
  EXPECT_THAT(rows(agg.buckets()), ElementsAre("-300 p gmail 203.0.113.1 none d=1 b=0 t=0 tq=0",
                                               "0 p gmail 203.0.113.1 none d=2 b=0 t=0 tq=0",
                                               "300 p gmail 203.0.113.1 none d=1 b=0 t=0 tq=0"));
}

TEST(SignalAggregator, RecordsBeforeTheKeptStartAreCountedNotKept) {
  SignalAggregator agg(IspCatalog::builtin(), nullptr);
  agg.keep_only_from(kT0 + 300);
  feed(agg, {{RecordType::delivered, 299, "a@gmail.com", "p", "203.0.113.1"},
             {RecordType::delivered, 300, "b@gmail.com", "p", "203.0.113.1"}});
  // A partial lane keeps the same start, and the count comes back with it.
  std::unique_ptr<PartitionedSink> lane = agg.make_partial(1);
  feed(static_cast<SignalAggregator&>(*lane),
       {{RecordType::deferred, 0, "c@gmail.com", "p", "203.0.113.1"}});
  agg.absorb(*lane);
  EXPECT_EQ(agg.records_too_old(), 2u);
  EXPECT_THAT(rows(agg.buckets()), ElementsAre("300 p gmail 203.0.113.1 none d=1 b=0 t=0 tq=0"));
}

TEST(SignalAggregator, FloorsBeforeTheEpochToo) {
  SignalAggregator agg(IspCatalog::builtin(), nullptr, 60);
  AccountingRecord r = record(RecordType::delivered, "jane@gmail.com");
  r.time_logged = -1;
  agg.on_record(r);
  ASSERT_EQ(agg.buckets().size(), 1u);
  EXPECT_EQ(agg.buckets()[0].start, -60);
}

TEST(SignalAggregator, NonPositiveWidthFallsBackToTheDefault) {
  EXPECT_EQ(SignalAggregator(IspCatalog::builtin(), nullptr, 0).bucket_seconds(), 300);
  EXPECT_EQ(SignalAggregator(IspCatalog::builtin(), nullptr, -60).bucket_seconds(), 300);
  EXPECT_EQ(SignalAggregator(IspCatalog::builtin(), nullptr, 60).bucket_seconds(), 60);
}

TEST(SignalAggregator, KeysByPoolIspIpAndClassAndCountsByType) {
  SignalAggregator agg(IspCatalog::builtin(), nullptr);
  feed(agg, {
                {RecordType::delivered, 10, "a@gmail.com", "p", "203.0.113.1"},
                {RecordType::delivered, 20, "b@gmail.com", "p", "203.0.113.1"},
                {RecordType::bounced, 30, "c@gmail.com", "p", "203.0.113.1"},
                {RecordType::deferred, 40, "d@gmail.com", "p", "203.0.113.1", kGmailThrottle},
                {RecordType::deferred_queue, 50, "", "p", "203.0.113.1", kGmailThrottle},
                {RecordType::deferred_queue, 60, "", "p", "203.0.113.1", kGmailThrottle},
                {RecordType::deferred, 70, "e@yahoo.com", "p", "203.0.113.1", kYahooTss04},
                {RecordType::delivered, 80, "f@gmail.com", "p", "203.0.113.2"},
                {RecordType::delivered, 90, "g@gmail.com", "q", "203.0.113.1"},
            });
  EXPECT_THAT(rows(agg.buckets()), ElementsAre("0 p gmail 203.0.113.1 none d=2 b=1 t=0 tq=0",
                                               "0 p gmail 203.0.113.1 connection d=0 b=0 t=1 tq=2",
                                               "0 p gmail 203.0.113.2 none d=1 b=0 t=0 tq=0",
                                               "0 p yahoo 203.0.113.1 reputation d=0 b=0 t=1 tq=0",
                                               "0 q gmail 203.0.113.1 none d=1 b=0 t=0 tq=0"));
  const std::vector<SignalBucket> buckets = agg.buckets();
  EXPECT_EQ(buckets[1].counts.attempts(), 3u);
}

TEST(BucketCounts, AddsFieldByField) {
  BucketCounts a{10, 1, 2, 3};
  a += BucketCounts{5, 0, 1, 4};
  EXPECT_EQ(a.delivered, 15u);
  EXPECT_EQ(a.bounced, 1u);
  EXPECT_EQ(a.deferred, 3u);
  EXPECT_EQ(a.deferred_queue, 7u);
  EXPECT_EQ(a.attempts(), 26u);
}

// The reader's chunks are counted by partials whose interners number pools and IPs in
// whatever order they met them; absorbing must map names, not ids.
TEST(SignalAggregator, PartialsWithDifferentInterningOrdersGiveTheSameBuckets) {
  const std::vector<Event> first_half = {
      {RecordType::delivered, 0, "a@gmail.com", "pool-a", "203.0.113.1"},
      {RecordType::deferred, 5, "b@gmail.com", "pool-a", "203.0.113.1", kGmailThrottle},
      {RecordType::delivered, 310, "c@yahoo.com", "pool-b", "203.0.113.2"},
      {RecordType::deferred, 320, "d@yahoo.com", "pool-b", "203.0.113.2", kYahooTss04},
  };
  const std::vector<Event> second_half = {
      {RecordType::deferred, 330, "e@yahoo.com", "pool-b", "203.0.113.2", kYahooTss04},
      {RecordType::delivered, 340, "f@yahoo.com", "pool-c", "203.0.113.3"},
      {RecordType::deferred_queue, 20, "", "pool-a", "203.0.113.1", kGmailThrottle},
      {RecordType::bounced, 30, "g@gmail.com", "pool-a", "203.0.113.1"},
  };

  SignalAggregator single(IspCatalog::builtin(), nullptr);
  feed(single, first_half);
  feed(single, second_half);

  SignalAggregator whole(IspCatalog::builtin(), nullptr);
  // The top-level sink has met pool-c first, the partials others first.
  feed(whole, {{RecordType::delivered, 600, "h@gmail.com", "pool-c", "203.0.113.3"}});
  feed(single, {{RecordType::delivered, 600, "h@gmail.com", "pool-c", "203.0.113.3"}});
  std::unique_ptr<PartitionedSink> one = whole.make_partial(1);
  std::unique_ptr<PartitionedSink> two = whole.make_partial(2);
  feed(*one, first_half);
  feed(*two, second_half);
  whole.absorb(*one);
  whole.absorb(*two);

  EXPECT_EQ(rows(whole.buckets()), rows(single.buckets()));
  EXPECT_THAT(rows(whole.buckets()),
              ElementsAre("0 pool-a gmail 203.0.113.1 none d=1 b=1 t=0 tq=0",
                          "0 pool-a gmail 203.0.113.1 connection d=0 b=0 t=1 tq=1",
                          "300 pool-b yahoo 203.0.113.2 none d=1 b=0 t=0 tq=0",
                          "300 pool-b yahoo 203.0.113.2 reputation d=0 b=0 t=2 tq=0",
                          "300 pool-c yahoo 203.0.113.3 none d=1 b=0 t=0 tq=0",
                          "600 pool-c gmail 203.0.113.3 none d=1 b=0 t=0 tq=0"));
}

}  // namespace
}  // namespace sluice
