#include "state/sqlite_store.h"

#include "controller/estimator.h"
#include "controller/fault_point.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include <array>
#include <optional>

namespace sluice::state {

namespace {

// Ordered migrations: entry i moves the schema from version i to i + 1. Never edit one that
// has shipped; append a new one.
constexpr std::array<const char*, 10> kMigrations = {
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
    // The controller's state per (pool, ISP) and the audit trail of its decisions. Enums are
    // stored by name so that the database reads without the code; times are Unix seconds, 0 for
    // never. `figures` is JSON: the counts that triggered the decision.
    R"sql(
    CREATE TABLE pair_state (
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      max_smtp_out INTEGER NOT NULL,
      tier TEXT NOT NULL,
      phase TEXT NOT NULL,
      last_safe INTEGER NOT NULL,
      last_change_at INTEGER NOT NULL,
      last_cut_at INTEGER NOT NULL,
      last_raise_at INTEGER NOT NULL,
      verify_until INTEGER NOT NULL,
      verify_class TEXT NOT NULL,
      last_failure_at INTEGER NOT NULL,
      last_failure TEXT NOT NULL,
      PRIMARY KEY (pool, isp)
    ) WITHOUT ROWID;
    CREATE TABLE decision (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      rule TEXT NOT NULL,
      old_value INTEGER NOT NULL,
      new_value INTEGER NOT NULL,
      phase TEXT NOT NULL,
      "trigger" TEXT NOT NULL,
      reason TEXT NOT NULL,
      figures TEXT NOT NULL,
      applied INTEGER NOT NULL,
      pmta_outcome TEXT NOT NULL
    );
    CREATE INDEX decision_by_pair ON decision (pool, isp, at);
    CREATE INDEX decision_by_time ON decision (at);
    )sql",
    // Daily totals per (pool, ISP): the raise rule reads a week of them, not of buckets.
    R"sql(
    CREATE TABLE pair_day (
      day INTEGER NOT NULL,
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      deferrals INTEGER NOT NULL,
      throttle INTEGER NOT NULL,
      throttle_tq INTEGER NOT NULL,
      PRIMARY KEY (day, pool, isp)
    ) WITHOUT ROWID;
    INSERT INTO pair_day
      SELECT (start / 86400) * 86400, pool, isp,
             SUM(delivered + bounced + deferred + deferred_queue),
             SUM(deferred + deferred_queue),
             SUM(CASE WHEN class IN ('connection', 'rate', 'reputation')
                      THEN deferred + deferred_queue ELSE 0 END),
             SUM(CASE WHEN class IN ('connection', 'rate', 'reputation')
                      THEN deferred_queue ELSE 0 END)
      FROM signal_bucket GROUP BY 1, 2, 3;
    )sql",
    // Overrides: the one in force per pair, a decision's VMTA, the values overrides hold VMTA
    // fragments at, and the last valid override file (in force while the file is broken).
    R"sql(
    ALTER TABLE pair_state ADD COLUMN manual TEXT NOT NULL DEFAULT '';
    ALTER TABLE decision ADD COLUMN vmta TEXT NOT NULL DEFAULT '';
    CREATE TABLE vmta_setting (
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      vmta TEXT NOT NULL,
      value INTEGER NOT NULL,
      since INTEGER NOT NULL,
      PRIMARY KEY (pool, isp, vmta)
    ) WITHOUT ROWID;
    CREATE TABLE override_file (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      text TEXT NOT NULL
    );
    )sql",
    // Verification: the rate a cut was made against, and the cuts in a row that showed no effect.
    R"sql(
    ALTER TABLE pair_state ADD COLUMN cut_rate REAL NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN no_effect_cuts INTEGER NOT NULL DEFAULT 0;
    )sql",
    // The per-IP diagnosis: which VMTA sends from which IP, and VMTA values it holds.
    R"sql(
    CREATE TABLE ip_vmta (
      pool TEXT NOT NULL,
      source_ip TEXT NOT NULL,
      vmta TEXT NOT NULL,
      PRIMARY KEY (pool, source_ip)
    ) WITHOUT ROWID;
    ALTER TABLE vmta_setting ADD COLUMN diagnosis INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE vmta_setting ADD COLUMN hold_until INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE vmta_setting ADD COLUMN last_throttle_at INTEGER NOT NULL DEFAULT 0;
    )sql",
    // The reputation command: the tiers of its last good answer, and its last run (good or not),
    // which the interval between runs counts from.
    R"sql(
    CREATE TABLE reputation_tier (
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      tier TEXT NOT NULL,
      read_at INTEGER NOT NULL,
      PRIMARY KEY (pool, isp)
    ) WITHOUT ROWID;
    CREATE TABLE reputation_run (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      at INTEGER NOT NULL
    );
    )sql",
    // Recovery: the safe level, the probe being watched and its interval, the last throttle.
    R"sql(
    ALTER TABLE pair_state ADD COLUMN safe_level INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN probe_interval INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN probe_from INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN last_throttle_at INTEGER NOT NULL DEFAULT 0;
    )sql",
    // Warm-up: the stage in force, since when, and whether the schedule is complete.
    R"sql(
    ALTER TABLE pair_state ADD COLUMN warmup_stage INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN warmup_stage_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pair_state ADD COLUMN warmed_up INTEGER NOT NULL DEFAULT 0;
    )sql",
    // The fragments a cycle is rewriting, from before the first is touched until its commit.
    R"sql(
    CREATE TABLE pending_fragment (
      pool TEXT NOT NULL,
      isp TEXT NOT NULL,
      vmta TEXT NOT NULL,
      at INTEGER NOT NULL,
      had_before INTEGER NOT NULL,
      before TEXT NOT NULL,
      after TEXT NOT NULL,
      PRIMARY KEY (pool, isp, vmta)
    ) WITHOUT ROWID;
    )sql",
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t integer(int i) { return sqlite3_column_int64(stmt_, i); }
  double real(int i) { return sqlite3_column_double(stmt_, i); }
  std::string text(int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))) : "";
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string figures_json(const SignalFigures& f) {
  nlohmann::json by_class = nlohmann::json::object();
  for (int c = 0; c < kDeferralClassCount; ++c) {
    by_class[std::string(to_string(static_cast<DeferralClass>(c)))] = f.by_class[c];
  }
  return nlohmann::json{{"attempts", f.attempts},
                        {"deferrals", f.deferrals},
                        {"throttle", f.throttle},
                        {"throttle_tq", f.throttle_tq},
                        {"by_class", by_class}}
      .dump();
}

// Empty when `text` is not the JSON that figures_json writes.
std::optional<SignalFigures> parse_figures(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SignalFigures f;
  try {
    f.attempts = j.at("attempts").get<std::uint64_t>();
    f.deferrals = j.at("deferrals").get<std::uint64_t>();
    f.throttle = j.at("throttle").get<std::uint64_t>();
    f.throttle_tq = j.at("throttle_tq").get<std::uint64_t>();
    for (const auto& [name, count] : j.at("by_class").items()) {
      const std::optional<DeferralClass> c = parse_deferral_class(name);
      if (!c) return std::nullopt;
      f.by_class[static_cast<std::size_t>(*c)] = count.get<std::uint64_t>();
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return f;
}

}  // namespace

Expected<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
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

namespace {

// A path inside a file: URI; '%', '?' and '#' would otherwise end or change it.
std::string uri_path(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Expected<std::unique_ptr<SqliteStore>> SqliteStore::open_read_only(const std::string& path) {
  if (!exists(path)) {
    // No database yet: an empty one in memory, so that nothing appears on disk.
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
        SQLITE_OK) {
      sqlite3_close(db);
      return Error{path + ": cannot open an empty state in memory"};
    }
    std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
    if (Status s = store->migrate(); !s) return s.error();
    return store;
  }
  // Without a write-ahead log (no sluice writing now) "immutable" reads create no file at all;
  // with one, a plain read-only connection sees the latest commits.
  const std::string uri =
      "file:" + uri_path(path) + (exists(path + "-wal") ? "?mode=ro" : "?immutable=1");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = path + ": cannot open the state database: " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Error{message};
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  const int version = store->schema_version();
  if (version != latest_schema_version()) {
    return Error{path + ": schema version " + std::to_string(version) +
                 " where this sluice knows " + std::to_string(latest_schema_version()) +
                 (version < latest_schema_version() ? ": run `sluice once` to upgrade it"
                                                    : ": upgrade sluice")};
  }
  return store;
}

SqliteStore::~SqliteStore() {
  sqlite3_close(db_);
}

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

int SqliteStore::latest_schema_version() {
  return static_cast<int>(kMigrations.size());
}

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

Status SqliteStore::transaction(const std::function<Status()>& body) {
  if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status s = body();
  fault_point("before-commit");
  if (s) s = exec("COMMIT");
  if (s) fault_point("after-commit");
  // Also after a failed COMMIT: a busy one leaves the transaction open.
  if (!s) (void)exec("ROLLBACK");
  return s;
}

Status SqliteStore::commit_read(const std::vector<FileCheckpoint>& checkpoints,
                                const std::vector<SignalBucket>& buckets) {
  return transaction([&] { return write_read(checkpoints, buckets); });
}

Status SqliteStore::commit_cycle(const std::vector<FileCheckpoint>& checkpoints,
                                 const std::vector<SignalBucket>& buckets,
                                 const std::vector<PairState>& pairs,
                                 const std::vector<DecisionRecord>& decisions,
                                 const ManualCommit& manual) {
  return transaction([&]() -> Status {
    if (Status s = write_read(checkpoints, buckets); !s) return s;
    if (Status s = write_pairs(pairs); !s) return s;
    if (Status s = append_decisions(decisions); !s) return s;
    return write_manual(manual);
  });
}

Status SqliteStore::commit_pairs(const std::vector<PairState>& pairs,
                                 const std::vector<DecisionRecord>& decisions) {
  return transaction([&]() -> Status {
    if (Status s = write_pairs(pairs); !s) return s;
    return append_decisions(decisions);
  });
}

Status SqliteStore::write_manual(const ManualCommit& manual) {
  if (manual.clear_pending_apply) {
    if (Status s = exec("DELETE FROM pending_fragment"); !s) return s;
  }
  if (manual.override_text) {
    Statement put(db_, "INSERT OR REPLACE INTO override_file (id, text) VALUES (1, ?)");
    if (!put.ok()) return error("cannot store the override file");
    put.bind(1, *manual.override_text);
    if (put.step() != SQLITE_DONE) return error("cannot store the override file");
  }
  if (manual.vmta_settings) {
    if (Status s = exec("DELETE FROM vmta_setting"); !s) return s;
    Statement put(db_,
                  "INSERT INTO vmta_setting (pool, isp, vmta, value, since, diagnosis, hold_until,"
                  " last_throttle_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!put.ok()) return error("cannot store VMTA settings");
    for (const VmtaSetting& v : *manual.vmta_settings) {
      put.bind(1, v.pool);
      put.bind(2, v.isp);
      put.bind(3, v.vmta);
      put.bind(4, std::int64_t{v.value});
      put.bind(5, v.since);
      put.bind(6, std::int64_t{v.diagnosis ? 1 : 0});
      put.bind(7, v.hold_until);
      put.bind(8, v.last_throttle_at);
      if (put.step() != SQLITE_DONE) {
        return error("cannot store the setting of VMTA " + v.vmta + " (" + v.pool + "/" + v.isp +
                     ")");
      }
      put.reset();
    }
  }
  if (manual.reputation) {
    Statement run(db_, "INSERT OR REPLACE INTO reputation_run (id, at) VALUES (1, ?)");
    if (!run.ok()) return error("cannot store the reputation command's run");
    run.bind(1, manual.reputation->at);
    if (run.step() != SQLITE_DONE) return error("cannot store the reputation command's run");
  }
  if (manual.reputation && manual.reputation->tiers) {
    if (Status s = exec("DELETE FROM reputation_tier"); !s) return s;
    Statement put(db_,
                  "INSERT INTO reputation_tier (pool, isp, tier, read_at) VALUES (?, ?, ?, ?)");
    if (!put.ok()) return error("cannot store reputation tiers");
    for (const ReputationTier& t : *manual.reputation->tiers) {
      put.bind(1, t.pool);
      put.bind(2, t.isp);
      put.bind(3, std::string(to_string(t.tier)));
      put.bind(4, manual.reputation->at);
      if (put.step() != SQLITE_DONE) {
        return error("cannot store the reputation tier of " + t.pool + "/" + t.isp);
      }
      put.reset();
    }
  }
  if (!manual.ip_vmtas.empty()) {
    Statement put(db_, "INSERT OR REPLACE INTO ip_vmta (pool, source_ip, vmta) VALUES (?, ?, ?)");
    if (!put.ok()) return error("cannot store the VMTAs of source IPs");
    for (const IpVmta& v : manual.ip_vmtas) {
      put.bind(1, v.pool);
      put.bind(2, v.source_ip);
      put.bind(3, v.vmta);
      if (put.step() != SQLITE_DONE) return error("cannot store the VMTA of " + v.source_ip);
      put.reset();
    }
  }
  return ok_status();
}

Expected<std::vector<IpVmta>> SqliteStore::load_ip_vmtas() {
  Statement st(db_, "SELECT pool, source_ip, vmta FROM ip_vmta ORDER BY pool, source_ip");
  if (!st.ok()) return error("cannot read the VMTAs of source IPs");
  std::vector<IpVmta> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(IpVmta{st.text(0), st.text(1), st.text(2)});
  if (rc != SQLITE_DONE) return error("cannot read the VMTAs of source IPs");
  return out;
}

Expected<std::vector<VmtaSetting>> SqliteStore::load_vmta_settings() {
  Statement st(db_,
               "SELECT pool, isp, vmta, value, since, diagnosis, hold_until, last_throttle_at"
               " FROM vmta_setting"
               " ORDER BY pool, isp, vmta");
  if (!st.ok()) return error("cannot read VMTA settings");
  std::vector<VmtaSetting> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    out.push_back(VmtaSetting{st.text(0), st.text(1), st.text(2), static_cast<int>(st.integer(3)),
                              st.integer(4), st.integer(5) != 0, st.integer(6)});
  }
  if (rc != SQLITE_DONE) return error("cannot read VMTA settings");
  return out;
}

Status SqliteStore::begin_apply(const PendingApply& pending) {
  return transaction([&]() -> Status {
    if (Status s = exec("DELETE FROM pending_fragment"); !s) return s;
    Statement put(db_,
                  "INSERT INTO pending_fragment (pool, isp, vmta, at, had_before, before, after)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!put.ok()) return error("cannot record the fragments about to be written");
    for (const PendingFragment& f : pending.fragments) {
      put.bind(1, f.key.pool);
      put.bind(2, f.key.isp);
      put.bind(3, f.key.vmta);
      put.bind(4, pending.at);
      put.bind(5, std::int64_t{f.before ? 1 : 0});
      put.bind(6, f.before.value_or(""));
      put.bind(7, f.after);
      if (put.step() != SQLITE_DONE) {
        return error("cannot record the fragments about to be written");
      }
      put.reset();
    }
    return ok_status();
  });
}

Expected<std::optional<PendingApply>> SqliteStore::pending_apply() {
  Statement st(db_,
               "SELECT pool, isp, vmta, at, had_before, before, after FROM pending_fragment"
               " ORDER BY pool, isp, vmta");
  if (!st.ok()) return error("cannot read the fragments of an unfinished cycle");
  std::optional<PendingApply> pending;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    if (!pending) pending.emplace();
    pending->at = st.integer(3);
    PendingFragment f;
    f.key = FragmentKey{st.text(0), st.text(1), st.text(2)};
    if (st.integer(4) != 0) f.before = st.text(5);
    f.after = st.text(6);
    pending->fragments.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return error("cannot read the fragments of an unfinished cycle");
  return pending;
}

Status SqliteStore::end_pending_apply() {
  return transaction([&] { return exec("DELETE FROM pending_fragment"); });
}

Expected<std::optional<std::string>> SqliteStore::last_override_text() {
  Statement st(db_, "SELECT text FROM override_file WHERE id = 1");
  if (!st.ok()) return error("cannot read the stored override file");
  const int rc = st.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(st.text(0));
  if (rc != SQLITE_DONE) return error("cannot read the stored override file");
  return std::optional<std::string>();
}

Expected<KnownReputation> SqliteStore::load_reputation() {
  KnownReputation known;
  Statement run(db_, "SELECT at FROM reputation_run WHERE id = 1");
  if (!run.ok()) return error("cannot read the reputation command's last run");
  const int rc = run.step();
  if (rc == SQLITE_ROW) known.last_run = run.integer(0);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return error("cannot read the reputation command's last run");
  }
  Statement st(db_, "SELECT pool, isp, tier FROM reputation_tier ORDER BY pool, isp");
  if (!st.ok()) return error("cannot read reputation tiers");
  int step;
  while ((step = st.step()) == SQLITE_ROW) {
    const std::optional<Tier> tier = parse_tier(st.text(2));
    if (!tier) {
      return Error{path_ + ": the reputation tier of " + st.text(0) + "/" + st.text(1) +
                   " is unknown: '" + st.text(2) + "'"};
    }
    known.tiers.push_back(ReputationTier{st.text(0), st.text(1), *tier});
  }
  if (step != SQLITE_DONE) return error("cannot read reputation tiers");
  return known;
}

Status SqliteStore::write_read(const std::vector<FileCheckpoint>& checkpoints,
                               const std::vector<SignalBucket>& buckets) {
  if (Status s = exec("DELETE FROM file_checkpoint"); !s) return s;
  Statement put(db_,
                "INSERT INTO file_checkpoint (device, inode, head_hash, path, offset, line, header,"
                " tail_hash, inside_long_line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!put.ok()) return error("cannot store checkpoints");
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
    if (put.step() != SQLITE_DONE) return error("cannot store checkpoint of " + c.path);
    put.reset();
  }
  Statement add(db_,
                "INSERT INTO signal_bucket (start, pool, isp, source_ip, class, delivered, bounced,"
                " deferred, deferred_queue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (start, pool, isp, source_ip, class) DO UPDATE SET"
                " delivered = delivered + excluded.delivered, bounced = bounced + excluded.bounced,"
                " deferred = deferred + excluded.deferred,"
                " deferred_queue = deferred_queue + excluded.deferred_queue");
  if (!add.ok()) return error("cannot store signal buckets");
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
    if (add.step() != SQLITE_DONE) return error("cannot store a signal bucket");
    add.reset();
  }
  Statement day(db_,
                "INSERT INTO pair_day (day, pool, isp, attempts, deferrals, throttle, throttle_tq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, pool, isp) DO UPDATE SET"
                " attempts = attempts + excluded.attempts,"
                " deferrals = deferrals + excluded.deferrals,"
                " throttle = throttle + excluded.throttle,"
                " throttle_tq = throttle_tq + excluded.throttle_tq");
  if (!day.ok()) return error("cannot store daily totals");
  for (const PairDay& d : daily_totals(buckets)) {
    day.bind(1, d.day);
    day.bind(2, d.pool);
    day.bind(3, d.isp);
    day.bind(4, static_cast<std::int64_t>(d.figures.attempts));
    day.bind(5, static_cast<std::int64_t>(d.figures.deferrals));
    day.bind(6, static_cast<std::int64_t>(d.figures.throttle));
    day.bind(7, static_cast<std::int64_t>(d.figures.throttle_tq));
    if (day.step() != SQLITE_DONE)
      return error("cannot store the daily totals of " + d.pool + "/" + d.isp);
    day.reset();
  }
  return ok_status();
}

Status SqliteStore::write_pairs(const std::vector<PairState>& pairs) {
  Statement put(db_,
                "INSERT INTO pair_state (pool, isp, max_smtp_out, tier, phase, last_safe,"
                " last_change_at, last_cut_at, last_raise_at, verify_until, verify_class,"
                " last_failure_at, last_failure, manual, cut_rate, no_effect_cuts, safe_level,"
                " probe_interval, probe_from, last_throttle_at, warmup_stage, warmup_stage_at,"
                " warmed_up)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (pool, isp) DO UPDATE SET max_smtp_out = excluded.max_smtp_out,"
                " tier = excluded.tier, phase = excluded.phase, last_safe = excluded.last_safe,"
                " last_change_at = excluded.last_change_at, last_cut_at = excluded.last_cut_at,"
                " last_raise_at = excluded.last_raise_at, verify_until = excluded.verify_until,"
                " verify_class = excluded.verify_class,"
                " last_failure_at = excluded.last_failure_at, last_failure = excluded.last_failure,"
                " manual = excluded.manual, cut_rate = excluded.cut_rate,"
                " no_effect_cuts = excluded.no_effect_cuts, safe_level = excluded.safe_level,"
                " probe_interval = excluded.probe_interval, probe_from = excluded.probe_from,"
                " last_throttle_at = excluded.last_throttle_at,"
                " warmup_stage = excluded.warmup_stage, warmup_stage_at = excluded.warmup_stage_at,"
                " warmed_up = excluded.warmed_up");
  if (!put.ok()) return error("cannot store pair states");
  for (const PairState& p : pairs) {
    put.bind(1, p.pool);
    put.bind(2, p.isp);
    put.bind(3, std::int64_t{p.max_smtp_out});
    put.bind(4, std::string(to_string(p.tier)));
    put.bind(5, std::string(to_string(p.phase)));
    put.bind(6, std::int64_t{p.last_safe});
    put.bind(7, p.last_change_at);
    put.bind(8, p.last_cut_at);
    put.bind(9, p.last_raise_at);
    put.bind(10, p.verify_until);
    put.bind(11, std::string(to_string(p.verify_class)));
    put.bind(12, p.last_failure_at);
    put.bind(13, p.last_failure);
    put.bind(14, p.manual);
    put.bind(15, p.cut_rate);
    put.bind(16, std::int64_t{p.no_effect_cuts});
    put.bind(17, std::int64_t{p.safe_level});
    put.bind(18, p.probe_interval);
    put.bind(19, std::int64_t{p.probe_from});
    put.bind(20, p.last_throttle_at);
    put.bind(21, std::int64_t{p.warmup_stage});
    put.bind(22, p.warmup_stage_at);
    put.bind(23, std::int64_t{p.warmed_up ? 1 : 0});
    if (put.step() != SQLITE_DONE) {
      return error("cannot store the state of " + p.pool + "/" + p.isp);
    }
    put.reset();
  }
  return ok_status();
}

Status SqliteStore::append_decisions(const std::vector<DecisionRecord>& decisions) {
  Statement add(
      db_,
      "INSERT INTO decision (at, pool, isp, rule, old_value, new_value, phase, \"trigger\","
      " reason, figures, applied, pmta_outcome, vmta)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!add.ok()) return error("cannot store decisions");
  for (const DecisionRecord& r : decisions) {
    const Decision& d = r.decision;
    add.bind(1, d.at);
    add.bind(2, d.pool);
    add.bind(3, d.isp);
    add.bind(4, std::string(to_string(d.rule)));
    add.bind(5, std::int64_t{d.old_value});
    add.bind(6, std::int64_t{d.new_value});
    add.bind(7, std::string(to_string(d.phase)));
    add.bind(8, std::string(to_string(d.trigger)));
    add.bind(9, d.reason);
    add.bind(10, figures_json(d.figures));
    add.bind(11, std::int64_t{r.applied ? 1 : 0});
    add.bind(12, r.pmta_outcome);
    add.bind(13, d.vmta);
    if (add.step() != SQLITE_DONE) {
      return error("cannot store the decision for " + d.pool + "/" + d.isp);
    }
    add.reset();
  }
  return ok_status();
}

Expected<std::vector<PairState>> SqliteStore::load_pairs() {
  Statement st(db_,
               "SELECT pool, isp, max_smtp_out, tier, phase, last_safe, last_change_at,"
               " last_cut_at, last_raise_at, verify_until, verify_class, last_failure_at,"
               " last_failure, manual, cut_rate, no_effect_cuts, safe_level, probe_interval,"
               " probe_from, last_throttle_at, warmup_stage, warmup_stage_at, warmed_up"
               " FROM pair_state"
               " ORDER BY pool, isp");
  if (!st.ok()) return error("cannot read pair states");
  std::vector<PairState> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    PairState p;
    p.pool = st.text(0);
    p.isp = st.text(1);
    // An unknown name means another version or a hand edit; guessing would misstate the state.
    const std::optional<Tier> tier = parse_tier(st.text(3));
    const std::optional<Phase> phase = parse_phase(st.text(4));
    const std::optional<DeferralClass> verify_class = parse_deferral_class(st.text(10));
    if (!tier || !phase || !verify_class) {
      return Error{path_ + ": the state of " + p.pool + "/" + p.isp + " has an unknown tier '" +
                   st.text(3) + "', phase '" + st.text(4) + "' or class '" + st.text(10) + "'"};
    }
    p.max_smtp_out = static_cast<int>(st.integer(2));
    p.tier = *tier;
    p.phase = *phase;
    p.last_safe = static_cast<int>(st.integer(5));
    p.last_change_at = st.integer(6);
    p.last_cut_at = st.integer(7);
    p.last_raise_at = st.integer(8);
    p.verify_until = st.integer(9);
    p.verify_class = *verify_class;
    p.last_failure_at = st.integer(11);
    p.last_failure = st.text(12);
    p.manual = st.text(13);
    p.cut_rate = st.real(14);
    p.no_effect_cuts = static_cast<int>(st.integer(15));
    p.safe_level = static_cast<int>(st.integer(16));
    p.probe_interval = st.integer(17);
    p.probe_from = static_cast<int>(st.integer(18));
    p.last_throttle_at = st.integer(19);
    p.warmup_stage = static_cast<int>(st.integer(20));
    p.warmup_stage_at = st.integer(21);
    p.warmed_up = st.integer(22) != 0;
    out.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return error("cannot read pair states");
  return out;
}

Expected<std::vector<DecisionRecord>> SqliteStore::history(const HistoryFilter& filter) {
  // Only the filters in use enter the query, so that the indexes on (pool, isp, at) and (at)
  // serve it.
  std::string sql =
      "SELECT id, at, pool, isp, rule, old_value, new_value, phase, \"trigger\", reason, figures,"
      " applied, pmta_outcome, vmta FROM decision WHERE 1";
  if (filter.pool) sql += " AND pool = ?";
  if (filter.isp) sql += " AND isp = ?";
  if (filter.since) sql += " AND at >= ?";
  sql += " ORDER BY at, id";
  Statement st(db_, sql.c_str());
  if (!st.ok()) return error("cannot read decisions");
  int index = 0;
  if (filter.pool) st.bind(++index, *filter.pool);
  if (filter.isp) st.bind(++index, *filter.isp);
  if (filter.since) st.bind(++index, *filter.since);
  std::vector<DecisionRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    DecisionRecord r;
    Decision& d = r.decision;
    d.at = st.integer(1);
    d.pool = st.text(2);
    d.isp = st.text(3);
    const std::optional<Rule> rule = parse_rule(st.text(4));
    const std::optional<Phase> phase = parse_phase(st.text(7));
    const std::optional<DeferralClass> trigger = parse_deferral_class(st.text(8));
    const std::optional<SignalFigures> figures = parse_figures(st.text(10));
    if (!rule || !phase || !trigger || !figures) {
      return Error{path_ + ": decision " + std::to_string(st.integer(0)) +
                   " has an unknown rule, phase or class, or malformed figures"};
    }
    d.rule = *rule;
    d.old_value = static_cast<int>(st.integer(5));
    d.new_value = static_cast<int>(st.integer(6));
    d.phase = *phase;
    d.trigger = *trigger;
    d.reason = st.text(9);
    d.figures = *figures;
    r.applied = st.integer(11) != 0;
    r.pmta_outcome = st.text(12);
    d.vmta = st.text(13);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return error("cannot read decisions");
  return out;
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
  Statement buckets(db_, "DELETE FROM signal_bucket WHERE start < ?");
  Statement days(db_, "DELETE FROM pair_day WHERE day < ?");
  if (!buckets.ok() || !days.ok()) return error("cannot prune signal buckets");
  buckets.bind(1, start);
  days.bind(1, day_of(start));
  if (buckets.step() != SQLITE_DONE || days.step() != SQLITE_DONE) {
    return error("cannot prune signal buckets");
  }
  return ok_status();
}

Expected<std::vector<PairDay>> SqliteStore::pair_days_since(UnixSeconds first_day) {
  Statement st(db_,
               "SELECT day, pool, isp, attempts, deferrals, throttle, throttle_tq FROM pair_day"
               " WHERE day >= ? ORDER BY day, pool, isp");
  if (!st.ok()) return error("cannot read daily totals");
  st.bind(1, first_day);
  std::vector<PairDay> out;
  while (st.step() == SQLITE_ROW) {
    PairDay d;
    d.day = st.integer(0);
    d.pool = st.text(1);
    d.isp = st.text(2);
    d.figures.attempts = static_cast<std::uint64_t>(st.integer(3));
    d.figures.deferrals = static_cast<std::uint64_t>(st.integer(4));
    d.figures.throttle = static_cast<std::uint64_t>(st.integer(5));
    d.figures.throttle_tq = static_cast<std::uint64_t>(st.integer(6));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace sluice::state
