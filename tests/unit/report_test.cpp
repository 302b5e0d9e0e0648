#include "controller/report.h"

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
    "smtp;421-4.7.0 Try again later, closing connection. (EHLO) For more information, go to "
    "421-4.7.0  https://support.google.com/a/answer/3221692 a1si2 - gsmtp";
constexpr std::string_view kOutlookRp001 =
    "smtp;421 RP-001 (BAY004-MC1F21) Unfortunately, some messages from 203.0.113.1 weren't sent.";

// `n` records of one kind; rcpt and queue are made from `domain` (tq records have no rcpt).
struct Batch {
  int n;
  RecordType type;
  std::string_view domain;
  std::string_view ip;
  std::string_view diag = {};
  UnixSeconds offset = 0;  // from kT0
  std::string_view pool = "main-pool";
};

void feed(RecordSink& sink, const std::vector<Batch>& batches) {
  for (const Batch& b : batches) {
    const std::string rcpt = "user@" + std::string(b.domain);
    const std::string queue = std::string(b.domain) + "/vmta-1";
    for (int i = 0; i < b.n; ++i) {
      AccountingRecord r;
      r.type = b.type;
      r.time_logged = kT0 + b.offset;
      r.rcpt = b.type == RecordType::deferred_queue ? std::string_view() : rcpt;
      r.queue = queue;
      r.dsn_diag = b.diag;
      r.vmta = "vmta-1";
      r.vmta_pool = b.pool;
      r.source_ip = b.ip;
      sink.on_record(r);
    }
  }
}

ReportBuilder builder(ReportOptions options = {}) {
  return ReportBuilder(IspCatalog::builtin(), nullptr, options);
}

const IspFigures& isp_named(const Report& report, std::string_view name) {
  for (const IspFigures& isp : report.isps) {
    if (isp.isp == name) return isp;
  }
  ADD_FAILURE() << "no ISP " << name;
  static const IspFigures none;
  return none;
}

TEST(FlagFor, FivePercentAndFifteenPercentAreStillTheLowerFlag) {
  EXPECT_EQ(flag_for(0.0), RateFlag::ok);
  EXPECT_EQ(flag_for(0.05), RateFlag::ok);
  EXPECT_EQ(flag_for(0.0501), RateFlag::investigate);
  EXPECT_EQ(flag_for(0.15), RateFlag::investigate);
  EXPECT_EQ(flag_for(0.1501), RateFlag::act);
  EXPECT_EQ(flag_for(1.0), RateFlag::act);
  EXPECT_EQ(to_string(RateFlag::investigate), "investigate");
}

TEST(Report, FlagsEachIspAtTheBoundaries) {
  ReportBuilder sink = builder();
  feed(sink, {{95, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {5, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
              {94, RecordType::delivered, "outlook.com", "203.0.113.1"},
              {6, RecordType::deferred, "outlook.com", "203.0.113.1", kOutlookRp001},
              {85, RecordType::delivered, "yahoo.com", "203.0.113.1"},
              {15, RecordType::deferred, "yahoo.com", "203.0.113.1", "smtp;421 4.7.0 [TSS04]"},
              {84, RecordType::delivered, "gmx.de", "203.0.113.1"},
              {16, RecordType::deferred_queue, "gmx.de", "203.0.113.1",
               "smtp;421 gmx.net (mxgmx015) Nemesis ESMTP Service not available - Too many "
               "connections"}});
  const Report report = sink.build({});

  std::vector<std::string> flags;
  for (const IspFigures& isp : report.isps) {
    flags.push_back(isp.isp + " " + std::to_string(isp.deferral_rate) + " " +
                    std::string(to_string(isp.flag)));
  }
  // Equal attempts: ordered by name.
  EXPECT_THAT(flags, ElementsAre("gmail 0.050000 ok", "gmx 0.160000 act",
                                 "outlook 0.060000 investigate", "yahoo 0.150000 investigate"));
  ASSERT_EQ(report.pools.size(), 4u);
  EXPECT_EQ(report.pools[0].isp, "gmail");
  EXPECT_EQ(report.pools[0].flag, RateFlag::ok);
  EXPECT_EQ(report.pools[1].isp, "gmx");
  EXPECT_EQ(report.pools[1].flag, RateFlag::act);
}

TEST(Report, CountsRatesAndClassesPerIsp) {
  ReportBuilder sink = builder();
  feed(sink, {{90, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {5, RecordType::bounced, "gmail.com", "203.0.113.1"},
              {3, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
              {2, RecordType::deferred_queue, "gmail.com", "203.0.113.1", kGmailThrottle},
              {1, RecordType::deferred, "gmail.com", "203.0.113.1", "smtp;452 4.2.2 Mailbox full"},
              {10, RecordType::delivered, "example.org", "203.0.113.1"}});
  const Report report = sink.build({});

  EXPECT_EQ(report.totals.attempts(), 111u);
  ASSERT_EQ(report.isps.size(), 2u);
  const IspFigures& gmail = report.isps[0];
  EXPECT_EQ(gmail.isp, "gmail");
  EXPECT_EQ(gmail.counts.delivered, 90u);
  EXPECT_EQ(gmail.counts.bounced, 5u);
  EXPECT_EQ(gmail.counts.deferred, 4u);
  EXPECT_EQ(gmail.counts.deferred_queue, 2u);
  EXPECT_DOUBLE_EQ(gmail.deferral_rate, 6.0 / 101);
  EXPECT_DOUBLE_EQ(gmail.bounce_rate, 5.0 / 101);
  EXPECT_EQ(gmail.by_class[static_cast<int>(C::connection)], 5u);
  EXPECT_EQ(gmail.by_class[static_cast<int>(C::recipient)], 1u);
  EXPECT_EQ(gmail.by_class[static_cast<int>(C::none)], 0u);
  EXPECT_EQ(report.isps[1].isp, "generic");
  EXPECT_EQ(report.isps[1].counts.attempts(), 10u);
  EXPECT_EQ(report.bucket_seconds, 300);
}

// --- Per-IP diagnosis of one pool at one ISP ---

const PoolFigures& only_pool(const Report& report) {
  EXPECT_EQ(report.pools.size(), 1u);
  return report.pools.at(0);
}

TEST(Diagnosis, OneBadIpAmongThreeIsConcentrated) {
  ReportBuilder sink = builder();
  feed(sink, {{70, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {30, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
              {99, RecordType::delivered, "gmail.com", "203.0.113.2"},
              {1, RecordType::deferred, "gmail.com", "203.0.113.2", kGmailThrottle},
              {98, RecordType::delivered, "gmail.com", "203.0.113.3"},
              {2, RecordType::deferred, "gmail.com", "203.0.113.3", kGmailThrottle}});
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);

  EXPECT_EQ(pool.pool, "main-pool");
  EXPECT_EQ(pool.isp, "gmail");
  EXPECT_DOUBLE_EQ(pool.deferral_rate, 0.11);
  EXPECT_EQ(pool.flag, RateFlag::investigate);
  EXPECT_EQ(pool.diagnosis, Diagnosis::concentrated);
  EXPECT_EQ(
      pool.explanation,
      "deferrals concentrated on 1 of 3 IPs (203.0.113.1 at 30.0%): those IPs' reputation; the "
      "other IPs at 1.5%");
  ASSERT_EQ(pool.ips.size(), 3u);
  EXPECT_EQ(pool.ips[0].ip, "203.0.113.1");
  EXPECT_EQ(pool.ips[0].attempts, 100u);
  EXPECT_EQ(pool.ips[0].deferred, 30u);
  EXPECT_DOUBLE_EQ(pool.ips[0].deferral_rate, 0.30);
  EXPECT_TRUE(pool.ips[0].stands_out);
  EXPECT_FALSE(pool.ips[1].stands_out);
  EXPECT_FALSE(pool.ips[2].stands_out);
}

// The others defer above 5% but at most half the pool's rate: still the one IP's reputation.
TEST(Diagnosis, OthersAtHalfThePoolRateIsStillConcentrated) {
  ReportBuilder sink = builder();
  feed(sink, {{40, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {60, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
              {92, RecordType::delivered, "gmail.com", "203.0.113.2"},
              {8, RecordType::deferred, "gmail.com", "203.0.113.2", kGmailThrottle},
              {92, RecordType::delivered, "gmail.com", "203.0.113.3"},
              {8, RecordType::deferred, "gmail.com", "203.0.113.3", kGmailThrottle}});
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);

  EXPECT_DOUBLE_EQ(pool.deferral_rate, 76.0 / 300);
  EXPECT_EQ(pool.diagnosis, Diagnosis::concentrated);
  EXPECT_EQ(
      pool.explanation,
      "deferrals concentrated on 1 of 3 IPs (203.0.113.1 at 60.0%): those IPs' reputation; the "
      "other IPs at 8.0%");
  EXPECT_TRUE(pool.ips[0].stands_out);
  EXPECT_FALSE(pool.ips[1].stands_out);
}

// One IP stands out but the others defer too much for it to be the whole story.
TEST(Diagnosis, OthersAboveHalfThePoolRateIsSpreadNamingTheOutlier) {
  ReportBuilder sink = builder();
  feed(sink, {{50, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {50, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
              {80, RecordType::delivered, "gmail.com", "203.0.113.2"},
              {20, RecordType::deferred, "gmail.com", "203.0.113.2", kGmailThrottle},
              {80, RecordType::delivered, "gmail.com", "203.0.113.3"},
              {20, RecordType::deferred, "gmail.com", "203.0.113.3", kGmailThrottle}});
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);

  EXPECT_DOUBLE_EQ(pool.deferral_rate, 0.30);
  EXPECT_EQ(pool.diagnosis, Diagnosis::spread);
  EXPECT_EQ(pool.explanation,
            "deferrals spread over 3 IPs: the pool's configuration for this ISP (concurrency, "
            "rates); standing out: 203.0.113.1 at 50.0%");
  EXPECT_TRUE(pool.ips[0].stands_out);
}

TEST(Diagnosis, EvenlyHighIsSpread) {
  ReportBuilder sink = builder();
  for (std::string_view ip : {"203.0.113.1", "203.0.113.2", "203.0.113.3"}) {
    feed(sink, {{80, RecordType::delivered, "gmail.com", ip},
                {20, RecordType::deferred, "gmail.com", ip, kGmailThrottle}});
  }
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);

  EXPECT_DOUBLE_EQ(pool.deferral_rate, 0.20);
  EXPECT_EQ(pool.flag, RateFlag::act);
  EXPECT_EQ(pool.diagnosis, Diagnosis::spread);
  EXPECT_EQ(pool.explanation,
            "deferrals spread over 3 IPs: the pool's configuration for this ISP (concurrency, "
            "rates)");
  for (const IpFigures& ip : pool.ips) EXPECT_FALSE(ip.stands_out) << ip.ip;
}

TEST(Diagnosis, EvenlyLowIsHealthy) {
  ReportBuilder sink = builder();
  for (std::string_view ip : {"203.0.113.1", "203.0.113.2", "203.0.113.3"}) {
    feed(sink, {{97, RecordType::delivered, "gmail.com", ip},
                {3, RecordType::deferred, "gmail.com", ip, kGmailThrottle}});
  }
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);

  EXPECT_DOUBLE_EQ(pool.deferral_rate, 0.03);
  EXPECT_EQ(pool.flag, RateFlag::ok);
  EXPECT_EQ(pool.diagnosis, Diagnosis::healthy);
  EXPECT_EQ(pool.explanation, "deferral rate within 5%");
}

TEST(Diagnosis, UnderFiftyAttemptsIsInsufficientData) {
  ReportBuilder sink = builder();
  feed(sink, {{44, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {5, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle}});
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);
  EXPECT_EQ(pool.counts.attempts(), 49u);
  EXPECT_EQ(pool.diagnosis, Diagnosis::insufficient_data);
  EXPECT_EQ(pool.explanation, "too few attempts to judge");
}

TEST(Diagnosis, FiftyAttemptsAreEnoughToJudge) {
  ReportBuilder sink = builder();
  feed(sink, {{45, RecordType::delivered, "gmail.com", "203.0.113.1"},
              {5, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle}});
  const Report report = sink.build({});
  const PoolFigures& pool = only_pool(report);
  EXPECT_EQ(pool.diagnosis, Diagnosis::spread);
  EXPECT_EQ(pool.explanation,
            "deferrals spread over 1 IP: the pool's configuration for this ISP (concurrency, "
            "rates)");
}

// --- Top deferral texts ---

TEST(DeferralTextKey, StripsSmtpPrefixAndKeepsSixtyCharacters) {
  EXPECT_EQ(deferral_text_key("smtp;421-4.7.28 [203.0.113.1      15] Our system has detected an "
                              "unusual rate of unsolicited mail"),
            "421-4.7.28 [203.0.113.1      15] Our system has detected an ");
  EXPECT_EQ(deferral_text_key("smtp; 452 4.2.2 Mailbox full"), "452 4.2.2 Mailbox full");
  EXPECT_EQ(deferral_text_key("452 4.2.2 Mailbox full"), "452 4.2.2 Mailbox full");
  EXPECT_EQ(deferral_text_key("smtp;421 4.7.0\tslow\r\ndown"), "421 4.7.0 slow  down");
  EXPECT_EQ(deferral_text_key(""), "");
  std::string key = "\x01";  // the report prefixes an ISP id byte
  append_deferral_text_key("smtp;452 4.2.2 Mailbox full", key);
  EXPECT_EQ(key,
            "\x01"
            "452 4.2.2 Mailbox full");
}

TEST(DeferralTextKey, CountsCharactersNotBytes) {
  const std::string text =
      "smtp;421 mwinf5c10 ME Service refusé. Veuillez essayer plus tard. "
      "Service refused, please try later. OFR004_105 [105]";
  const std::string key = deferral_text_key(text);
  EXPECT_EQ(key, "421 mwinf5c10 ME Service refusé. Veuillez essayer plus tard.");
  EXPECT_EQ(key.size(), 61u);  // 60 characters, é is two bytes
  // Never cut inside a character.
  EXPECT_EQ(deferral_text_key(std::string(59, 'x') + "éz"), std::string(59, 'x') + "é");
}

TEST(Report, TopTextsGroupedByPrefixAndSortedByCount) {
  ReportOptions options;
  ReportBuilder sink = builder(options);
  const std::vector<std::string> unusual = {
      "smtp;421-4.7.28 [203.0.113.1      15] Our system has detected an unusual rate of "
      "unsolicited mail originating from your IP address. a1si1 - gsmtp",
      "smtp;421-4.7.28 [203.0.113.1      15] Our system has detected an unusual rate of "
      "unsolicited mail originating from your IP address. b7si2 - gsmtp",
  };
  const std::string_view quickly =
      "smtp; 450-4.2.1 The user you are trying to contact is receiving mail too quickly. "
      "Please resend your message at a later time.";
  feed(sink,
       {{3, RecordType::deferred, "gmail.com", "203.0.113.1", unusual[0]},
        {1, RecordType::deferred_queue, "gmail.com", "203.0.113.1", unusual[1]},
        {3, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle},
        {2, RecordType::deferred, "gmail.com", "203.0.113.1", quickly},
        {1, RecordType::deferred, "gmail.com", "203.0.113.1",
         "smtp;451 4.3.0 Mail server temporarily rejected message."},
        {1, RecordType::deferred, "gmail.com", "203.0.113.1", "smtp;451 4.3.0 Mail server busy"},
        {9, RecordType::deferred, "outlook.com", "203.0.113.1", kOutlookRp001},
        {50, RecordType::delivered, "gmail.com", "203.0.113.1"}});
  const Report report = sink.build({});

  std::vector<std::string> gmail;
  for (const TextGroup& g : isp_named(report, "gmail").top_deferrals) {
    gmail.push_back(std::to_string(g.count) + " " + std::string(to_string(g.deferral_class)) + " " +
                    g.text);
  }
  EXPECT_THAT(
      gmail,
      ElementsAre("4 reputation 421-4.7.28 [203.0.113.1      15] Our system has detected an ",
                  "3 connection 421-4.7.0 Try again later, closing connection. (EHLO) For mo",
                  "2 recipient 450-4.2.1 The user you are trying to contact is receiving ma",
                  "1 other 451 4.3.0 Mail server busy",
                  "1 other 451 4.3.0 Mail server temporarily rejected message."));
  const std::vector<TextGroup>& outlook = isp_named(report, "outlook").top_deferrals;
  ASSERT_EQ(outlook.size(), 1u);
  EXPECT_EQ(outlook[0].count, 9u);
  EXPECT_EQ(outlook[0].text, "421 RP-001 (BAY004-MC1F21) Unfortunately, some messages from");
  EXPECT_EQ(outlook[0].deferral_class, C::reputation);
}

TEST(Report, TopTextsKeepsOnlyTheConfiguredNumber) {
  ReportOptions options;
  options.top_texts = 2;
  ReportBuilder sink = builder(options);
  feed(sink, {{3, RecordType::deferred, "gmail.com", "203.0.113.1", "smtp;451 4.3.0 text a"},
              {2, RecordType::deferred, "gmail.com", "203.0.113.1", "smtp;451 4.3.0 text b"},
              {1, RecordType::deferred, "gmail.com", "203.0.113.1", "smtp;451 4.3.0 text c"}});
  const Report report = sink.build({});
  const std::vector<TextGroup>& top = isp_named(report, "gmail").top_deferrals;
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].text, "451 4.3.0 text a");
  EXPECT_EQ(top[1].text, "451 4.3.0 text b");
}

// --- Time window and time series ---

TEST(Report, TextsWithUniqueIdsDoNotGrowMemoryButTheDominantTextKeepsItsCount) {
  ReportBuilder sink = builder();
  for (int i = 0; i < 120000; ++i) {
    feed(sink, {{1, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle}});
    const std::string unique = "smtp;451 4.3.0 [" + std::to_string(i) + "] local problem";
    feed(sink, {{1, RecordType::deferred, "gmail.com", "203.0.113.1", unique}});
  }
  const Report report = sink.build(ReadStats{});
  EXPECT_TRUE(report.text_groups_pruned);
  const IspFigures& gmail = isp_named(report, "gmail");
  ASSERT_FALSE(gmail.top_deferrals.empty());
  EXPECT_EQ(gmail.top_deferrals[0].count, 120000u);
  EXPECT_EQ(gmail.counts.deferred, 240000u);  // the figures themselves are never approximate
}

TEST(Report, SinceIsInclusiveAndUntilExclusive) {
  ReportOptions options;
  options.since = kT0 + 300;
  options.until = kT0 + 900;
  ReportBuilder sink = builder(options);
  feed(sink, {{1, RecordType::delivered, "gmail.com", "203.0.113.1", {}, 299},
              {2, RecordType::delivered, "gmail.com", "203.0.113.1", {}, 300},
              {1, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle, 899},
              {4, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle, 900}});
  const Report report = sink.build({});

  EXPECT_EQ(report.out_of_range, 5u);
  EXPECT_EQ(report.totals.attempts(), 3u);
  EXPECT_EQ(report.totals.deferred, 1u);
  EXPECT_EQ(report.first_time, kT0 + 300);
  EXPECT_EQ(report.last_time, kT0 + 899);
  ASSERT_EQ(report.isps.size(), 1u);
  ASSERT_EQ(report.isps[0].top_deferrals.size(), 1u);
  EXPECT_EQ(report.isps[0].top_deferrals[0].count, 1u);
}

TEST(Report, SeriesPerIspByBucket) {
  ReportBuilder sink = builder();
  feed(sink, {{8, RecordType::delivered, "gmail.com", "203.0.113.1", {}, 10},
              {2, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle, 299},
              {5, RecordType::delivered, "gmail.com", "203.0.113.2", {}, 300},
              {1, RecordType::delivered, "yahoo.com", "203.0.113.1", {}, 600}});
  const Report report = sink.build({});

  ASSERT_EQ(report.series.size(), 2u);
  const std::vector<SeriesPoint>& gmail = report.series.at("gmail");
  ASSERT_EQ(gmail.size(), 2u);
  EXPECT_EQ(gmail[0].start, kT0);
  EXPECT_EQ(gmail[0].attempts, 10u);
  EXPECT_EQ(gmail[0].deferred, 2u);
  EXPECT_EQ(gmail[1].start, kT0 + 300);
  EXPECT_EQ(gmail[1].attempts, 5u);
  EXPECT_EQ(gmail[1].deferred, 0u);
  EXPECT_EQ(report.series.at("yahoo").at(0).start, kT0 + 600);
  EXPECT_EQ(report.first_time, kT0 + 10);
  EXPECT_EQ(report.last_time, kT0 + 600);
}

// --- Partials absorbed in file order read like one pass ---

std::string describe(const Report& r) {
  auto counts = [](const BucketCounts& c) {
    return std::to_string(c.delivered) + "/" + std::to_string(c.bounced) + "/" +
           std::to_string(c.deferred) + "/" + std::to_string(c.deferred_queue);
  };
  std::string out = "totals " + counts(r.totals) + " out " + std::to_string(r.out_of_range) +
                    " first " + std::to_string(r.first_time.value_or(-1)) + " last " +
                    std::to_string(r.last_time.value_or(-1)) + "\n";
  for (const IspFigures& isp : r.isps) {
    out += "isp " + isp.isp + " " + counts(isp.counts) + " " + std::to_string(isp.deferral_rate) +
           " " + std::to_string(isp.bounce_rate) + " " + std::string(to_string(isp.flag));
    for (std::uint64_t n : isp.by_class) out += " " + std::to_string(n);
    out += "\n";
    for (const TextGroup& g : isp.top_deferrals) {
      out += "  text " + std::to_string(g.count) + " " + std::string(to_string(g.deferral_class)) +
             " " + g.text + "\n";
    }
  }
  for (const PoolFigures& p : r.pools) {
    out += "pool " + p.pool + " " + p.isp + " " + counts(p.counts) + " " +
           std::to_string(p.deferral_rate) + " " + std::string(to_string(p.flag)) + " " +
           std::string(to_string(p.diagnosis)) + " " + p.explanation + "\n";
    for (const IpFigures& ip : p.ips) {
      out += "  ip " + ip.ip + " " + std::to_string(ip.attempts) + " " +
             std::to_string(ip.deferred) + (ip.stands_out ? " stands out" : "") + "\n";
    }
  }
  for (const auto& [isp, points] : r.series) {
    for (const SeriesPoint& p : points) {
      out += "series " + isp + " " + std::to_string(p.start - kT0) + " " +
             std::to_string(p.attempts) + " " + std::to_string(p.deferred) + "\n";
    }
  }
  return out;
}

TEST(Report, AbsorbingPartialsEqualsASinglePass) {
  const std::vector<Batch> first = {
      {40, RecordType::delivered, "gmail.com", "203.0.113.1", {}, 0, "pool-a"},
      {30, RecordType::deferred, "gmail.com", "203.0.113.1", kGmailThrottle, 10, "pool-a"},
      {5, RecordType::delivered, "yahoo.com", "203.0.113.9", {}, -600, "pool-b"},  // too early
      {60, RecordType::delivered, "outlook.com", "203.0.113.2", {}, 320, "pool-b"},
  };
  const std::vector<Batch> second = {
      {20, RecordType::deferred, "outlook.com", "203.0.113.2", kOutlookRp001, 330, "pool-b"},
      {99, RecordType::delivered, "gmail.com", "203.0.113.3", {}, 340, "pool-a"},
      {1, RecordType::deferred, "gmail.com", "203.0.113.3", kGmailThrottle, 350, "pool-a"},
      {70, RecordType::delivered, "gmail.com", "203.0.113.4", {}, 360, "pool-a"},
      {2, RecordType::bounced, "gmail.com", "203.0.113.4", {}, 370, "pool-a"},
  };
  ReportOptions options;
  options.since = kT0 - 300;

  ReportBuilder single = builder(options);
  feed(single, first);
  feed(single, second);

  ReportBuilder merged = builder(options);
  std::unique_ptr<PartitionedSink> one = merged.make_partial(1);
  std::unique_ptr<PartitionedSink> two = merged.make_partial(2);
  feed(*two, second);  // partials may be filled in any order, on other threads
  feed(*one, first);
  merged.absorb(*one);
  merged.absorb(*two);

  const Report expected = single.build({});
  EXPECT_EQ(describe(merged.build({})), describe(expected));
  EXPECT_EQ(expected.out_of_range, 5u);
  EXPECT_EQ(expected.totals.attempts(), 322u);
  ASSERT_EQ(expected.pools.size(), 2u);
  EXPECT_EQ(expected.pools[0].diagnosis, Diagnosis::concentrated);
}

}  // namespace
}  // namespace sluice
