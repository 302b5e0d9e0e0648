#include "state/sqlite_store.h"

#include <sqlite3.h>

#include <array>

namespace sluice::state {

namespace {

// Ordered migrations: entry i moves the schema from version i to i + 1. Never edit one that
// has shipped; append a new one.
constexpr std::array<const char*, 1> kMigrations = {
    R"sql(
    CREATE TABLE file_checkpoint (
      device INTEGER NOT NULL,
      inode INTEGER NOT NULL,
      head_hash INTEGER NOT NULL,
      path TEXT NOT NULL,
      offset INTEGER NOT NULL,
      line INTEGER NOT NULL,
      header TEXT NOT NULL,
      tail_hash INTEGER NOT NULL,
      inside_long_line INTEGER NOT NULL,
      PRIMARY KEY (device, inode)
    );
    CREATE TABLE signal_bucket (
      start INTEGER NOT NULL,
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      source_ip TEXT NOT NULL,
      class TEXT NOT NULL,
      delivered INTEGER NOT NULL DEFAULT 0,
      bounced INTEGER NOT NULL DEFAULT 0,
      deferred INTEGER NOT NULL DEFAULT 0,
      deferred_queue INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (start, pool, isp, source_ip, class)
    ) WITHOUT ROWID;
    )sql",
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t integer(int i) { return sqlite3_column_int64(stmt_, i); }
  std::string text(int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))) : "";
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace

Expected<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = path + ": cannot open the state database: " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Error{message};
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  if (Status s = store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                             "PRAGMA foreign_keys=ON;");
      !s) {
    return s.error();
  }
  if (Status s = store->migrate(); !s) return s.error();
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

Error SqliteStore::error(const std::string& what) const {
  return Error{path_ + ": " + what + ": " + sqlite3_errmsg(db_)};
}

Status SqliteStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = path_ + ": " + (message ? message : "SQL error");
    sqlite3_free(message);
    return Error{text};
  }
  return ok_status();
}

int SqliteStore::latest_schema_version() { return static_cast<int>(kMigrations.size()); }

int SqliteStore::schema_version() {
  Statement st(db_, "PRAGMA user_version");
  return st.ok() && st.step() == SQLITE_ROW ? static_cast<int>(st.integer(0)) : -1;
}

Status SqliteStore::migrate() {
  if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
  const int current = schema_version();
  if (current > latest_schema_version()) {
    (void)exec("ROLLBACK");
    return Error{path_ + ": schema version " + std::to_string(current) +
                 " is newer than this sluice knows (" + std::to_string(latest_schema_version()) +
                 "): upgrade sluice"};
  }
  for (int v = current; v < latest_schema_version(); ++v) {
    if (Status s = exec(kMigrations[v]); !s) {
      (void)exec("ROLLBACK");
      return s;
    }
  }
  const std::string bump = "PRAGMA user_version=" + std::to_string(latest_schema_version());
  if (Status s = exec(bump.c_str()); !s) {
    (void)exec("ROLLBACK");
    return s;
  }
  return exec("COMMIT");
}

Expected<std::vector<FileCheckpoint>> SqliteStore::load_checkpoints() {
  Statement st(db_,
               "SELECT device, inode, head_hash, path, offset, line, header, tail_hash,"
               " inside_long_line FROM file_checkpoint");
  if (!st.ok()) return error("cannot read checkpoints");
  std::vector<FileCheckpoint> out;
  while (st.step() == SQLITE_ROW) {
    FileCheckpoint c;
    c.identity.device = static_cast<std::uint64_t>(st.integer(0));
    c.identity.inode = static_cast<std::uint64_t>(st.integer(1));
    c.identity.head_hash = static_cast<std::uint64_t>(st.integer(2));
    c.path = st.text(3);
    c.offset = static_cast<std::uint64_t>(st.integer(4));
    c.line = static_cast<std::uint64_t>(st.integer(5));
    c.header = st.text(6);
    c.tail_hash = static_cast<std::uint64_t>(st.integer(7));
    c.inside_long_line = st.integer(8) != 0;
    out.push_back(std::move(c));
  }
  return out;
}

Status SqliteStore::commit_read(const std::vector<FileCheckpoint>& checkpoints,
                                const std::vector<SignalBucket>& buckets) {
  if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
  auto rollback = [&](Error e) {
    (void)exec("ROLLBACK");
    return Status(std::move(e));
  };
  if (Status s = exec("DELETE FROM file_checkpoint"); !s) return rollback(s.error());
  Statement put(db_,
                "INSERT INTO file_checkpoint (device, inode, head_hash, path, offset, line, header,"
                " tail_hash, inside_long_line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!put.ok()) return rollback(error("cannot store checkpoints"));
  for (const FileCheckpoint& c : checkpoints) {
    put.bind(1, static_cast<std::int64_t>(c.identity.device));
    put.bind(2, static_cast<std::int64_t>(c.identity.inode));
    put.bind(3, static_cast<std::int64_t>(c.identity.head_hash));
    put.bind(4, c.path);
    put.bind(5, static_cast<std::int64_t>(c.offset));
    put.bind(6, static_cast<std::int64_t>(c.line));
    put.bind(7, c.header);
    put.bind(8, static_cast<std::int64_t>(c.tail_hash));
    put.bind(9, std::int64_t{c.inside_long_line ? 1 : 0});
    if (put.step() != SQLITE_DONE) return rollback(error("cannot store checkpoint of " + c.path));
    put.reset();
  }
  Statement add(db_,
                "INSERT INTO signal_bucket (start, pool, isp, source_ip, class, delivered, bounced,"
                " deferred, deferred_queue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (start, pool, isp, source_ip, class) DO UPDATE SET"
                " delivered = delivered + excluded.delivered, bounced = bounced + excluded.bounced,"
                " deferred = deferred + excluded.deferred,"
                " deferred_queue = deferred_queue + excluded.deferred_queue");
  if (!add.ok()) return rollback(error("cannot store signal buckets"));
  for (const SignalBucket& b : buckets) {
    add.bind(1, b.start);
    add.bind(2, b.pool);
    add.bind(3, b.isp);
    add.bind(4, b.source_ip);
    add.bind(5, std::string(to_string(b.deferral_class)));
    add.bind(6, static_cast<std::int64_t>(b.counts.delivered));
    add.bind(7, static_cast<std::int64_t>(b.counts.bounced));
    add.bind(8, static_cast<std::int64_t>(b.counts.deferred));
    add.bind(9, static_cast<std::int64_t>(b.counts.deferred_queue));
    if (add.step() != SQLITE_DONE) return rollback(error("cannot store a signal bucket"));
    add.reset();
  }
  return exec("COMMIT");
}

Expected<std::vector<SignalBucket>> SqliteStore::buckets_since(UnixSeconds start) {
  Statement st(db_,
               "SELECT start, pool, isp, source_ip, class, delivered, bounced, deferred,"
               " deferred_queue FROM signal_bucket WHERE start >= ?"
               " ORDER BY start, pool, isp, source_ip, class");
  if (!st.ok()) return error("cannot read signal buckets");
  st.bind(1, start);
  std::vector<SignalBucket> out;
  while (st.step() == SQLITE_ROW) {
    SignalBucket b;
    b.start = st.integer(0);
    b.pool = st.text(1);
    b.isp = st.text(2);
    b.source_ip = st.text(3);
    b.deferral_class = parse_deferral_class(st.text(4)).value_or(DeferralClass::other);
    b.counts.delivered = static_cast<std::uint64_t>(st.integer(5));
    b.counts.bounced = static_cast<std::uint64_t>(st.integer(6));
    b.counts.deferred = static_cast<std::uint64_t>(st.integer(7));
    b.counts.deferred_queue = static_cast<std::uint64_t>(st.integer(8));
    out.push_back(std::move(b));
  }
  return out;
}

Status SqliteStore::prune_buckets_before(UnixSeconds start) {
  Statement st(db_, "DELETE FROM signal_bucket WHERE start < ?");
  if (!st.ok()) return error("cannot prune signal buckets");
  st.bind(1, start);
  if (st.step() != SQLITE_DONE) return error("cannot prune signal buckets");
  return ok_status();
}

}  // namespace sluice::state
