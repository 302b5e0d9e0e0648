#include "state/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sluice::state {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr UnixSeconds kT0 = 1795773600;  // 2026-11-27T10:00:00Z

SignalBucket bucket(UnixSeconds offset, std::string pool, DeferralClass c, BucketCounts counts) {
  return SignalBucket{kT0 + offset, std::move(pool), "gmail", "203.0.113.1", c, counts};
}

std::string row(const SignalBucket& b) {
  return std::to_string(b.start - kT0) + " " + b.pool + " " + b.isp + " " + b.source_ip + " " +
         std::string(to_string(b.deferral_class)) + " " + std::to_string(b.counts.delivered) + "/" +
         std::to_string(b.counts.bounced) + "/" + std::to_string(b.counts.deferred) + "/" +
         std::to_string(b.counts.deferred_queue);
}

std::vector<std::string> rows(const std::vector<SignalBucket>& buckets) {
  std::vector<std::string> out;
  for (const SignalBucket& b : buckets) out.push_back(row(b));
  return out;
}

FileCheckpoint checkpoint(std::uint64_t inode, std::string path) {
  FileCheckpoint c;
  c.path = std::move(path);
  c.identity = FileIdentity{2049, inode, 0xFEDCBA9876543210ULL};  // high bit set: stored signed
  c.offset = 123456789012ULL;
  c.line = 42;
  c.header = "type,timeLogged,rcpt,dsnDiag,\"vmta\",dlvSourceIp";
  c.tail_hash = 0x8000000000000001ULL;
  c.inside_long_line = inode % 2 == 0;
  return c;
}

// Runs one query on a separate connection and returns the first column of its first row.
std::string query(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// Runs SQL (several statements allowed) on a separate connection; returns sqlite3_exec's code.
int exec_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

// A pair state with every field set; across n = 0..6 every tier, phase and class appears.
PairState pair(std::string pool, std::string isp, int n) {
  PairState p;
  p.pool = std::move(pool);
  p.isp = std::move(isp);
  p.max_smtp_out = 10 + n;
  p.tier = static_cast<Tier>(n % 4);
  p.phase = static_cast<Phase>(n % 3);
  p.last_safe = 20 + n;
  p.last_change_at = kT0 - 100 - n;
  p.last_cut_at = kT0 - 200 - n;
  p.last_raise_at = kT0 - 300 - n;
  p.verify_until = kT0 + 1800 + n;
  p.verify_class = static_cast<DeferralClass>(n % kDeferralClassCount);
  p.last_failure_at = kT0 - 400 - n;
  p.last_failure = "reload failed: exit " + std::to_string(n) + ", \"quoted\"\nsecond line";
  // Every field distinct, so that a column the store forgets shows in a round trip.
  p.phase = static_cast<Phase>(n % 4);
  p.manual = "pinned to " + std::to_string(n) + " by override (incident)";
  p.cut_rate = 0.125 + n;
  p.no_effect_cuts = 1 + n % 2;
  p.safe_level = 30 + n;
  p.probe_interval = 6 * 3600 + n;
  p.probe_from = 5 + n;
  p.last_throttle_at = kT0 - 500 - n;
  p.warmup_stage = 2 + n;
  p.warmup_stage_at = kT0 - 600 - n;
  p.warmed_up = n % 2 == 1;
  return p;
}

// A cut (from > to) or a raise, with distinct figures for every count.
DecisionRecord decision(UnixSeconds offset, std::string pool, std::string isp, int from, int to) {
  DecisionRecord r;
  Decision& d = r.decision;
  const bool cut = to < from;
  d.pool = std::move(pool);
  d.isp = std::move(isp);
  d.at = kT0 + offset;
  d.rule = cut ? Rule::severe_cut : Rule::raise;
  d.old_value = from;
  d.new_value = to;
  d.phase = cut ? Phase::verifying : Phase::steady;
  d.trigger = cut ? DeferralClass::reputation : DeferralClass::none;
  d.figures.attempts = 1000 + static_cast<std::uint64_t>(offset);
  d.figures.deferrals = 160;
  d.figures.throttle = 110;
  d.figures.throttle_tq = 25;
  for (int c = 0; c < kDeferralClassCount; ++c) d.figures.by_class[c] = 10 * c + 1;
  d.reason = "throttle deferrals 11.0% (110 of 1000) > 5%";
  r.applied = cut;
  r.pmta_outcome = cut ? "reloaded" : "dry run";
  return r;
}

std::string describe(const DecisionRecord& r) {
  const Decision& d = r.decision;
  std::string out = d.pool + "/" + d.isp + " +" + std::to_string(d.at - kT0) + " " +
                    std::string(to_string(d.rule)) + " " + std::to_string(d.old_value) + "->" +
                    std::to_string(d.new_value) + " " + std::string(to_string(d.phase)) + " " +
                    std::string(to_string(d.trigger)) + " [" + d.reason + "] " +
                    std::to_string(d.figures.attempts) + "/" + std::to_string(d.figures.deferrals) +
                    "/" + std::to_string(d.figures.throttle) + "/" +
                    std::to_string(d.figures.throttle_tq) + " (";
  for (std::uint64_t n : d.figures.by_class) out += std::to_string(n) + ",";
  return out + ") " + (r.applied ? "applied" : "dry-run") + " " + r.pmta_outcome;
}

// Which decision it is: pool/isp +offset.
std::vector<std::string> keys(const std::vector<DecisionRecord>& records) {
  std::vector<std::string> out;
  for (const DecisionRecord& r : records) {
    out.push_back(r.decision.pool + "/" + r.decision.isp + " +" +
                  std::to_string(r.decision.at - kT0));
  }
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> open() {
    auto store = SqliteStore::open(path_);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, CreatesTheDatabaseAtTheLatestSchema) {
  ASSERT_FALSE(std::filesystem::exists(path_));
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_));
  EXPECT_EQ(SqliteStore::latest_schema_version(), 10);
  EXPECT_EQ(store->schema_version(), SqliteStore::latest_schema_version());
  EXPECT_TRUE(store->load_checkpoints()->empty());
  EXPECT_TRUE(store->buckets_since(0)->empty());
  EXPECT_TRUE(store->load_pairs()->empty());
  EXPECT_TRUE(store->history({})->empty());
}

TEST_F(SqliteStoreTest, UsesWriteAheadLogging) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query(path_, "PRAGMA user_version"), "10");
}

TEST_F(SqliteStoreTest, APendingApplyRoundTripsAndSurvivesReopening) {
  PendingApply pending;
  pending.at = 1795780800;
  pending.fragments.push_back({FragmentKey{"pool-a", "gmail", ""}, "max-smtp-out 8\n", "6"});
  pending.fragments.push_back({FragmentKey{"pool-a", "gmail", "ip-1"}, std::nullopt, "# none\n"});
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->pending_apply().value(), std::nullopt);
    ASSERT_TRUE(store->begin_apply(pending).ok());
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->pending_apply().value(), pending);
  ASSERT_TRUE(store->end_pending_apply().ok());
  EXPECT_EQ(store->pending_apply().value(), std::nullopt);
}

TEST_F(SqliteStoreTest, ACycleCommitEndsThePendingApplyOnlyWhenItBeganIt) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  PendingApply pending{1795780800, {{FragmentKey{"pool-a", "gmail", ""}, std::nullopt, "x"}}};
  ASSERT_TRUE(store->begin_apply(pending).ok());
  // A dry run commits without having begun anything: the record stays for a cycle that applies.
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, {}).ok());
  EXPECT_EQ(store->pending_apply().value(), pending);
  ManualCommit manual;
  manual.clear_pending_apply = true;
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, manual).ok());
  EXPECT_EQ(store->pending_apply().value(), std::nullopt);
}

TEST_F(SqliteStoreTest, BeginningAnApplyReplacesAnEarlierRecord) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->begin_apply({1, {{FragmentKey{"pool-a", "gmail", ""}, std::nullopt, "a"}}}).ok());
  const PendingApply second{2, {{FragmentKey{"pool-b", "yahoo", ""}, "old", "new"}}};
  ASSERT_TRUE(store->begin_apply(second).ok());
  EXPECT_EQ(store->pending_apply().value(), second);
}

TEST_F(SqliteStoreTest, CheckpointsRoundTrip) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::vector<FileCheckpoint> saved = {
      checkpoint(1001, "/var/log/pmta/acct-2026-11-27-0000.csv"),
      checkpoint(1002, "/var/log/pmta/acct-2026-11-27-0001.csv")};
  ASSERT_TRUE(store->commit_read(saved, {}).ok());

  std::vector<FileCheckpoint> loaded = store->load_checkpoints().value();
  std::sort(loaded.begin(), loaded.end(), [](const FileCheckpoint& a, const FileCheckpoint& b) {
    return a.identity.inode < b.identity.inode;
  });
  ASSERT_EQ(loaded.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(loaded[i].path, saved[i].path);
    EXPECT_EQ(loaded[i].identity, saved[i].identity);
    EXPECT_EQ(loaded[i].identity.head_hash, 0xFEDCBA9876543210ULL);
    EXPECT_EQ(loaded[i].offset, 123456789012ULL);
    EXPECT_EQ(loaded[i].line, 42u);
    EXPECT_EQ(loaded[i].header, saved[i].header);
    EXPECT_EQ(loaded[i].tail_hash, 0x8000000000000001ULL);
    EXPECT_EQ(loaded[i].inside_long_line, saved[i].inside_long_line);
  }
}

TEST_F(SqliteStoreTest, CommitReplacesTheCheckpoints) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->commit_read({checkpoint(1001, "/a.csv"), checkpoint(1002, "/b.csv")}, {}).ok());
  FileCheckpoint moved = checkpoint(1002, "/var/log/pmta/old/b.csv");
  moved.offset = 5000;
  ASSERT_TRUE(store->commit_read({moved}, {}).ok());

  const std::vector<FileCheckpoint> loaded = store->load_checkpoints().value();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].path, "/var/log/pmta/old/b.csv");
  EXPECT_EQ(loaded[0].offset, 5000u);
}

TEST_F(SqliteStoreTest, CommitAddsBucketsSummingTheSameKey) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_read({}, {bucket(0, "pool-a", DeferralClass::none, {10, 1, 0, 0}),
                                     bucket(0, "pool-a", DeferralClass::connection, {0, 0, 2, 3})})
                  .ok());
  ASSERT_TRUE(store
                  ->commit_read({}, {bucket(0, "pool-a", DeferralClass::none, {5, 0, 0, 0}),
                                     bucket(0, "pool-a", DeferralClass::none, {1, 2, 0, 0}),
                                     bucket(0, "pool-b", DeferralClass::none, {7, 0, 0, 0})})
                  .ok());

  EXPECT_THAT(rows(store->buckets_since(kT0).value()),
              ElementsAre("0 pool-a gmail 203.0.113.1 connection 0/0/2/3",
                          "0 pool-a gmail 203.0.113.1 none 16/3/0/0",
                          "0 pool-b gmail 203.0.113.1 none 7/0/0/0"));
}

TEST_F(SqliteStoreTest, BucketsSinceIsInclusiveAndOrderedByTime) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_read({}, {bucket(600, "pool-a", DeferralClass::reputation, {0, 0, 4, 0}),
                                     bucket(0, "pool-a", DeferralClass::none, {1, 0, 0, 0}),
                                     bucket(300, "pool-a", DeferralClass::none, {2, 0, 0, 0})})
                  .ok());

  EXPECT_THAT(rows(store->buckets_since(kT0 + 300).value()),
              ElementsAre("300 pool-a gmail 203.0.113.1 none 2/0/0/0",
                          "600 pool-a gmail 203.0.113.1 reputation 0/0/4/0"));
  EXPECT_EQ(store->buckets_since(kT0 + 301)->size(), 1u);
  EXPECT_EQ(store->buckets_since(kT0 + 601)->size(), 0u);
}

TEST_F(SqliteStoreTest, PruneRemovesOnlyOlderBuckets) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_read({}, {bucket(0, "pool-a", DeferralClass::none, {1, 0, 0, 0}),
                                     bucket(300, "pool-a", DeferralClass::none, {2, 0, 0, 0}),
                                     bucket(600, "pool-a", DeferralClass::none, {3, 0, 0, 0})})
                  .ok());
  ASSERT_TRUE(store->prune_buckets_before(kT0 + 300).ok());
  EXPECT_THAT(rows(store->buckets_since(0).value()),
              ElementsAre("300 pool-a gmail 203.0.113.1 none 2/0/0/0",
                          "600 pool-a gmail 203.0.113.1 none 3/0/0/0"));
}

TEST_F(SqliteStoreTest, KeepsDailyTotalsPerPairAsBucketsArrive) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  // kT0 is 10:00 UTC: the first two buckets fall on one day, the third on the next.
  ASSERT_TRUE(store
                  ->commit_read({}, {bucket(0, "pool-a", DeferralClass::none, {90, 2, 0, 0}),
                                     bucket(300, "pool-a", DeferralClass::connection, {0, 0, 4, 3}),
                                     bucket(300, "pool-a", DeferralClass::recipient, {0, 0, 1, 0}),
                                     bucket(86400, "pool-a", DeferralClass::none, {7, 0, 0, 0})})
                  .ok());
  ASSERT_TRUE(
      store->commit_read({}, {bucket(600, "pool-a", DeferralClass::rate, {0, 0, 2, 0})}).ok());
  const std::vector<PairDay> days = store->pair_days_since(0).value();
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].day, day_of(kT0));
  EXPECT_EQ(days[0].pool, "pool-a");
  EXPECT_EQ(days[0].isp, "gmail");
  EXPECT_EQ(days[0].figures.attempts, 102u);
  EXPECT_EQ(days[0].figures.deferrals, 10u);
  EXPECT_EQ(days[0].figures.throttle, 9u);
  EXPECT_EQ(days[0].figures.throttle_tq, 3u);
  EXPECT_EQ(days[1].figures.attempts, 7u);
  EXPECT_EQ(store->pair_days_since(day_of(kT0) + 86400)->size(), 1u);

  ASSERT_TRUE(store->prune_buckets_before(kT0 + 86400).ok());
  EXPECT_EQ(store->pair_days_since(0)->size(), 1u);
}

TEST_F(SqliteStoreTest, ReopeningKeepsTheData) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store
                    ->commit_read({checkpoint(1001, "/var/log/pmta/acct.csv")},
                                  {bucket(0, "pool-a", DeferralClass::rate, {0, 0, 9, 1})})
                    .ok());
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), SqliteStore::latest_schema_version());
  const std::vector<FileCheckpoint> loaded = store->load_checkpoints().value();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].path, "/var/log/pmta/acct.csv");
  EXPECT_THAT(rows(store->buckets_since(0).value()),
              ElementsAre("0 pool-a gmail 203.0.113.1 rate 0/0/9/1"));
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerSluice) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->commit_read({}, {bucket(0, "pool-a", DeferralClass::none, {1, 0, 0, 0})}).ok());
  }
  query(path_, "PRAGMA user_version=11");
  ASSERT_EQ(query(path_, "PRAGMA user_version"), "11");

  auto refused = SqliteStore::open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            path_ + ": schema version 11 is newer than this sluice knows (10): upgrade sluice");
  // Left as it was.
  EXPECT_EQ(query(path_, "PRAGMA user_version"), "11");
  EXPECT_EQ(query(path_, "SELECT count(*) FROM signal_bucket"), "1");
}

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsAnErrorNamingThePath) {
  std::ofstream(path_) << "type,timeLogged,rcpt\nd,2026-11-27 10:00:00+0000,a@gmail.com\n";
  auto store = SqliteStore::open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, StartsWith(path_ + ": "));
  EXPECT_THAT(store.error().message, HasSubstr("not a database"));
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string path = (dir_ / "no-such-dir" / "state.db").string();
  auto store = SqliteStore::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, StartsWith(path + ": "));
  EXPECT_THAT(store.error().message, HasSubstr("cannot open the state database"));
}

TEST_F(SqliteStoreTest, MigratesAVersion1DatabaseKeepingItsData) {
  // The version-1 schema as it shipped, written by hand.
  ASSERT_EQ(exec_sql(path_, R"sql(
    PRAGMA journal_mode=WAL;
    CREATE TABLE file_checkpoint (
      device INTEGER NOT NULL, inode INTEGER NOT NULL, head_hash INTEGER NOT NULL,
      path TEXT NOT NULL, offset INTEGER NOT NULL, line INTEGER NOT NULL, header TEXT NOT NULL,
      tail_hash INTEGER NOT NULL, inside_long_line INTEGER NOT NULL,
      PRIMARY KEY (device, inode));
    CREATE TABLE signal_bucket (
      start INTEGER NOT NULL, pool TEXT NOT NULL, isp TEXT NOT NULL, source_ip TEXT NOT NULL,
      class TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,
      bounced INTEGER NOT NULL DEFAULT 0, deferred INTEGER NOT NULL DEFAULT 0,
      deferred_queue INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (start, pool, isp, source_ip, class)) WITHOUT ROWID;
    INSERT INTO file_checkpoint VALUES (2049, 1001, 7, '/var/log/pmta/acct.csv', 5000, 12,
                                        'type,rcpt', 9, 0);
    INSERT INTO signal_bucket VALUES (1795773600, 'pool-a', 'gmail', '203.0.113.1', 'rate',
                                      3, 0, 9, 1);
    PRAGMA user_version=1;
  )sql"),
            SQLITE_OK);

  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), 10);
  EXPECT_EQ(store->pair_days_since(0)->size(), 1u) << "migration 3 sums the existing buckets";
  const std::vector<FileCheckpoint> loaded = store->load_checkpoints().value();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].path, "/var/log/pmta/acct.csv");
  EXPECT_EQ(loaded[0].identity, (FileIdentity{2049, 1001, 7}));
  EXPECT_EQ(loaded[0].offset, 5000u);
  EXPECT_EQ(loaded[0].line, 12u);
  EXPECT_THAT(rows(store->buckets_since(0).value()),
              ElementsAre("0 pool-a gmail 203.0.113.1 rate 3/0/9/1"));
  EXPECT_TRUE(store->load_pairs()->empty());
  EXPECT_TRUE(store->history({})->empty());

  // The new tables work.
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {pair("pool-a", "gmail", 1)},
                                 {decision(0, "pool-a", "gmail", 20, 10)}, {})
                  .ok());
  EXPECT_EQ(store->load_pairs()->size(), 1u);
  EXPECT_EQ(store->history({})->size(), 1u);
  EXPECT_EQ(store->load_checkpoints()->size(), 0u);  // the cycle's checkpoints replace them
}

TEST_F(SqliteStoreTest, PairsRoundTripEveryField) {
  std::vector<PairState> saved;
  for (int n = 0; n < 7; ++n) saved.push_back(pair("pool-" + std::to_string(n), "gmail", n));
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->commit_cycle({}, {}, saved, {}, {}).ok());
    EXPECT_EQ(store->load_pairs().value(), saved);
  }
  auto store = open();  // and from the file
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->load_pairs().value(), saved);
}

TEST_F(SqliteStoreTest, CommitCycleUpsertsPairsAndAppendsDecisions) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {pair("pool-b", "yahoo", 1), pair("pool-a", "gmail", 2)},
                                 {decision(0, "pool-a", "gmail", 20, 10)}, {})
                  .ok());
  PairState changed = pair("pool-a", "gmail", 5);
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {changed, pair("pool-a", "yahoo", 3)},
                                 {decision(600, "pool-a", "gmail", 10, 5)}, {})
                  .ok());

  EXPECT_EQ(
      store->load_pairs().value(),
      (std::vector<PairState>{changed, pair("pool-a", "yahoo", 3), pair("pool-b", "yahoo", 1)}));
  EXPECT_THAT(keys(store->history({}).value()),
              ElementsAre("pool-a/gmail +0", "pool-a/gmail +600"));
}

TEST_F(SqliteStoreTest, CommitCycleCommitsTheReadLikeCommitRead) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_cycle({checkpoint(1001, "/a.csv"), checkpoint(1002, "/b.csv")},
                                 {bucket(0, "pool-a", DeferralClass::none, {10, 1, 0, 0})}, {}, {},
                                 {})
                  .ok());
  ASSERT_TRUE(store
                  ->commit_cycle({checkpoint(1002, "/b.csv")},
                                 {bucket(0, "pool-a", DeferralClass::none, {5, 0, 0, 0})}, {}, {},
                                 {})
                  .ok());

  const std::vector<FileCheckpoint> loaded = store->load_checkpoints().value();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].path, "/b.csv");
  EXPECT_THAT(rows(store->buckets_since(0).value()),
              ElementsAre("0 pool-a gmail 203.0.113.1 none 15/1/0/0"));
}

TEST_F(SqliteStoreTest, DecisionsRoundTripEveryField) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::vector<DecisionRecord> saved = {decision(0, "pool-a", "gmail", 20, 10),
                                             decision(300, "pool-a", "gmail", 10, 12)};
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, saved, {}).ok());

  const std::vector<DecisionRecord> loaded = store->history({}).value();
  ASSERT_EQ(loaded.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(describe(loaded[i]), describe(saved[i]));
  EXPECT_EQ(describe(loaded[0]),
            "pool-a/gmail +0 severe_cut 20->10 verifying reputation "
            "[throttle deferrals 11.0% (110 of 1000) > 5%] 1000/160/110/25 (1,11,21,31,41,51,61,) "
            "applied reloaded");
  // The figures are JSON that SQL can read.
  EXPECT_EQ(query(path_, "SELECT json_extract(figures, '$.by_class.reputation') FROM decision"),
            "31");
  EXPECT_EQ(query(path_, "SELECT json_extract(figures, '$.throttle_tq') FROM decision"), "25");
}

TEST_F(SqliteStoreTest, HistoryIsOrderedByTimeThenInsertion) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {},
                                 {decision(600, "pool-b", "gmail", 20, 10),
                                  decision(0, "pool-a", "yahoo", 20, 10)},
                                 {})
                  .ok());
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {},
                                 {decision(300, "pool-c", "gmail", 20, 10),
                                  decision(0, "pool-a", "gmail", 20, 10)},
                                 {})
                  .ok());

  EXPECT_THAT(
      keys(store->history({}).value()),
      ElementsAre("pool-a/yahoo +0", "pool-a/gmail +0", "pool-c/gmail +300", "pool-b/gmail +600"));
}

TEST_F(SqliteStoreTest, HistoryFiltersByPoolIspAndSince) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store
          ->commit_cycle(
              {}, {}, {},
              {decision(0, "pool-a", "gmail", 20, 10), decision(300, "pool-a", "yahoo", 20, 10),
               decision(600, "pool-b", "gmail", 20, 10), decision(900, "pool-a", "gmail", 10, 5)},
              {})
          .ok());

  auto history = [&](std::optional<std::string> pool, std::optional<std::string> isp,
                     std::optional<UnixSeconds> since) {
    return keys(store->history(HistoryFilter{std::move(pool), std::move(isp), since}).value());
  };
  EXPECT_THAT(history("pool-a", {}, {}),
              ElementsAre("pool-a/gmail +0", "pool-a/yahoo +300", "pool-a/gmail +900"));
  EXPECT_THAT(history({}, "gmail", {}),
              ElementsAre("pool-a/gmail +0", "pool-b/gmail +600", "pool-a/gmail +900"));
  EXPECT_THAT(history("pool-a", "gmail", {}), ElementsAre("pool-a/gmail +0", "pool-a/gmail +900"));
  // `since` is inclusive.
  EXPECT_THAT(history({}, {}, kT0 + 600), ElementsAre("pool-b/gmail +600", "pool-a/gmail +900"));
  EXPECT_THAT(history({}, {}, kT0 + 601), ElementsAre("pool-a/gmail +900"));
  EXPECT_THAT(history("pool-a", "gmail", kT0 + 1), ElementsAre("pool-a/gmail +900"));
  EXPECT_THAT(history("pool-c", {}, {}), ElementsAre());
  EXPECT_THAT(history({}, {}, kT0 + 901), ElementsAre());
}

TEST_F(SqliteStoreTest, CommitCycleIsAllOrNothing) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const PairState before = pair("pool-a", "gmail", 1);
  ASSERT_TRUE(store
                  ->commit_cycle({checkpoint(1001, "/a.csv")},
                                 {bucket(0, "pool-a", DeferralClass::rate, {1, 0, 2, 0})}, {before},
                                 {decision(0, "pool-a", "gmail", 20, 10)}, {})
                  .ok());
  // The decisions go last: everything before them has been written when the insert fails.
  ASSERT_EQ(exec_sql(path_,
                     "CREATE TRIGGER refuse_decisions BEFORE INSERT ON decision"
                     " BEGIN SELECT RAISE(ABORT, 'decision refused'); END"),
            SQLITE_OK);

  const Status failed =
      store->commit_cycle({checkpoint(1002, "/b.csv")},
                          {bucket(0, "pool-a", DeferralClass::rate, {5, 0, 5, 0}),
                           bucket(300, "pool-a", DeferralClass::none, {7, 0, 0, 0})},
                          {pair("pool-a", "gmail", 4), pair("pool-b", "gmail", 2)},
                          {decision(300, "pool-a", "gmail", 10, 5)}, {});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message,
            path_ + ": cannot store the decision for pool-a/gmail: decision refused");

  const std::vector<FileCheckpoint> checkpoints = store->load_checkpoints().value();
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].path, "/a.csv");
  EXPECT_THAT(rows(store->buckets_since(0).value()),
              ElementsAre("0 pool-a gmail 203.0.113.1 rate 1/0/2/0"));
  EXPECT_EQ(store->load_pairs().value(), std::vector<PairState>{before});
  EXPECT_THAT(keys(store->history({}).value()), ElementsAre("pool-a/gmail +0"));

  // No transaction was left open: once the insert works, the same cycle commits.
  ASSERT_EQ(exec_sql(path_, "DROP TRIGGER refuse_decisions"), SQLITE_OK);
  ASSERT_TRUE(store
                  ->commit_cycle({checkpoint(1002, "/b.csv")}, {}, {pair("pool-a", "gmail", 4)},
                                 {decision(300, "pool-a", "gmail", 10, 5)}, {})
                  .ok());
  EXPECT_EQ(store->load_checkpoints()->at(0).path, "/b.csv");
  EXPECT_EQ(store->load_pairs().value(), std::vector<PairState>{pair("pool-a", "gmail", 4)});
  EXPECT_THAT(keys(store->history({}).value()),
              ElementsAre("pool-a/gmail +0", "pool-a/gmail +300"));
}

TEST_F(SqliteStoreTest, AnUnknownStoredNameIsAnErrorNamingTheRow) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->commit_cycle({}, {}, {pair("pool-a", "gmail", 1)},
                                 {decision(0, "pool-a", "gmail", 20, 10)}, {})
                  .ok());
  ASSERT_EQ(exec_sql(path_,
                     "UPDATE pair_state SET tier = 'platinum';"
                     " UPDATE decision SET figures = '{\"attempts\": 1}'"),
            SQLITE_OK);

  auto pairs = store->load_pairs();
  ASSERT_FALSE(pairs.ok());
  EXPECT_THAT(pairs.error().message, StartsWith(path_ + ": the state of pool-a/gmail "));
  EXPECT_THAT(pairs.error().message, HasSubstr("'platinum'"));
  auto history = store->history({});
  ASSERT_FALSE(history.ok());
  EXPECT_THAT(history.error().message, StartsWith(path_ + ": decision 1 "));
}

TEST_F(SqliteStoreTest, ReputationRunsAndTiersRoundTrip) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    const KnownReputation none = store->load_reputation().value();
    EXPECT_EQ(none.last_run, 0);
    EXPECT_TRUE(none.tiers.empty());

    ManualCommit good;
    good.reputation =
        ReputationRun{kT0, std::vector<ReputationTier>{{"pool-b", "gmail", Tier::low},
                                                       {"pool-a", "yahoo", Tier::warming},
                                                       {"pool-a", "gmail", Tier::high}}};
    ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, good).ok());
  }
  auto store = open();  // from the file
  ASSERT_NE(store, nullptr);
  KnownReputation known = store->load_reputation().value();
  EXPECT_EQ(known.last_run, kT0);
  EXPECT_THAT(known.tiers, ElementsAre(ReputationTier{"pool-a", "gmail", Tier::high},
                                       ReputationTier{"pool-a", "yahoo", Tier::warming},
                                       ReputationTier{"pool-b", "gmail", Tier::low}));
  EXPECT_EQ(query(path_,
                  "SELECT min(read_at) = max(read_at) AND max(read_at) = 1795773600"
                  " FROM reputation_tier"),
            "1");

  // A failed run moves the last run only; a cycle without a run changes nothing.
  ManualCommit failed;
  failed.reputation = ReputationRun{kT0 + 3600, std::nullopt};
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, failed).ok());
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, {}).ok());
  known = store->load_reputation().value();
  EXPECT_EQ(known.last_run, kT0 + 3600);
  EXPECT_EQ(known.tiers.size(), 3u);
  EXPECT_EQ(query(path_, "SELECT max(read_at) FROM reputation_tier"), "1795773600");

  // A good answer replaces the whole set, even with none.
  ManualCommit empty;
  empty.reputation = ReputationRun{kT0 + 7200, std::vector<ReputationTier>{}};
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, empty).ok());
  known = store->load_reputation().value();
  EXPECT_EQ(known.last_run, kT0 + 7200);
  EXPECT_TRUE(known.tiers.empty());
}

TEST_F(SqliteStoreTest, AnUnknownStoredReputationTierIsAnError) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ManualCommit good;
  good.reputation = ReputationRun{kT0, std::vector<ReputationTier>{{"pool-a", "gmail", Tier::low}}};
  ASSERT_TRUE(store->commit_cycle({}, {}, {}, {}, good).ok());
  ASSERT_EQ(exec_sql(path_, "UPDATE reputation_tier SET tier = 'great'"), SQLITE_OK);
  auto known = store->load_reputation();
  ASSERT_FALSE(known.ok());
  EXPECT_EQ(known.error().message,
            path_ + ": the reputation tier of pool-a/gmail is unknown: 'great'");
}

}  // namespace
}  // namespace sluice::state
