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
  EXPECT_EQ(SqliteStore::latest_schema_version(), 1);
  EXPECT_EQ(store->schema_version(), SqliteStore::latest_schema_version());
  EXPECT_TRUE(store->load_checkpoints()->empty());
  EXPECT_TRUE(store->buckets_since(0)->empty());
}

TEST_F(SqliteStoreTest, UsesWriteAheadLogging) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query(path_, "PRAGMA user_version"), "1");
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
  EXPECT_EQ(store->schema_version(), 1);
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
  query(path_, "PRAGMA user_version=2");
  ASSERT_EQ(query(path_, "PRAGMA user_version"), "2");

  auto refused = SqliteStore::open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            path_ + ": schema version 2 is newer than this sluice knows (1): upgrade sluice");
  // Left as it was.
  EXPECT_EQ(query(path_, "PRAGMA user_version"), "2");
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

}  // namespace
}  // namespace sluice::state
