#pragma once
// The SQLite state database: WAL mode, a schema version with ordered migrations.

#include <functional>
#include <memory>
#include <string>

#include "controller/ports.h"
#include "controller/signals.h"

struct sqlite3;

namespace sluice::state {

class SqliteStore : public StateStore {
 public:
  static Expected<std::unique_ptr<SqliteStore>> open(const std::string& path);
  // For plan, status and history: never writes, never migrates, creates no file (a missing
  // database reads as an empty one).
  static Expected<std::unique_ptr<SqliteStore>> open_read_only(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  int schema_version();
  static int latest_schema_version();

  Expected<std::vector<FileCheckpoint>> load_checkpoints() override;
  Status commit_read(const std::vector<FileCheckpoint>& checkpoints,
                     const std::vector<SignalBucket>& buckets) override;
  Expected<std::vector<SignalBucket>> buckets_since(UnixSeconds start) override;
  Expected<std::vector<PairDay>> pair_days_since(UnixSeconds first_day) override;
  Status prune_buckets_before(UnixSeconds start) override;

  // Ordered by pool, then ISP.
  Expected<std::vector<PairState>> load_pairs() override;
  Status commit_cycle(const std::vector<FileCheckpoint>& checkpoints,
                      const std::vector<SignalBucket>& buckets, const std::vector<PairState>& pairs,
                      const std::vector<DecisionRecord>& decisions,
                      const ManualCommit& manual) override;
  Expected<std::vector<VmtaSetting>> load_vmta_settings() override;
  Expected<std::vector<IpVmta>> load_ip_vmtas() override;
  // A person's change to pair states (sluice ack), recorded with its decisions in one
  // transaction; checkpoints and signals stay as they are.
  Status commit_pairs(const std::vector<PairState>& pairs,
                      const std::vector<DecisionRecord>& decisions);
  Expected<std::optional<std::string>> last_override_text() override;
  // The tiers ordered by pool, then ISP.
  Expected<KnownReputation> load_reputation() override;
  // Ordered by time, then by insertion; `since` is inclusive.
  Expected<std::vector<DecisionRecord>> history(const HistoryFilter& filter) override;
  Status begin_apply(const PendingApply& pending) override;
  Expected<std::optional<PendingApply>> pending_apply() override;
  Status end_pending_apply() override;

 private:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const char* sql);
  Status migrate();
  Error error(const std::string& what) const;
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; any failure rolls everything back.
  Status transaction(const std::function<Status()>& body);
  Status write_read(const std::vector<FileCheckpoint>& checkpoints,
                    const std::vector<SignalBucket>& buckets);
  Status write_pairs(const std::vector<PairState>& pairs);
  Status append_decisions(const std::vector<DecisionRecord>& decisions);
  Status write_manual(const ManualCommit& manual);

  sqlite3* db_;
  std::string path_;
};

}  // namespace sluice::state
