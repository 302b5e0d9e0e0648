#pragma once
// The SQLite state database: WAL mode, a schema version with ordered migrations.

#include <memory>
#include <string>

#include "controller/ports.h"
#include "controller/signals.h"

struct sqlite3;

namespace sluice::state {

class SqliteStore : public SignalStore {
 public:
  static Expected<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  int schema_version();
  static int latest_schema_version();

  Expected<std::vector<FileCheckpoint>> load_checkpoints() override;
  Status commit_read(const std::vector<FileCheckpoint>& checkpoints,
                     const std::vector<SignalBucket>& buckets) override;
  Expected<std::vector<SignalBucket>> buckets_since(UnixSeconds start) override;
  Status prune_buckets_before(UnixSeconds start) override;

 private:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const char* sql);
  Status migrate();
  Error error(const std::string& what) const;

  sqlite3* db_;
  std::string path_;
};

}  // namespace sluice::state
