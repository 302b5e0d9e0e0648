#pragma once
// Shared by the end-to-end tests of the control loop (loop_e2e_test.cpp, override_e2e_test.cpp):
// time helpers, accounting log lines as PowerMTA writes them, the Sandbox (config, fake pmta,
// logs, fragments and database under one temp dir), file snapshots and the database's totals.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "e2e_support.h"

namespace sluice::e2e {

using Json = nlohmann::json;

using Time = std::int64_t;
inline constexpr Time kNow = 1795780800;  // 2026-11-27T12:00:00Z, on an hour: buckets align with it
inline constexpr Time kMinute = 60;
inline constexpr Time kHour = 3600;
inline constexpr Time kDay = 86400;

inline constexpr fs::perms kExecutable = fs::perms::owner_all | fs::perms::group_read |
                                         fs::perms::group_exec | fs::perms::others_read |
                                         fs::perms::others_exec;

inline std::string format_utc(Time t, const char* format) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, format, &tm);
  return buffer;
}

inline std::string iso(Time t) {
  return format_utc(t, "%Y-%m-%dT%H:%M:%SZ");
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- Accounting log lines, as PowerMTA writes them -------------------------------------------

inline constexpr const char* kHeader =
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
    "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,"
    "envId,queue,vmtaPool\n";
inline constexpr const char* kThrottleDiag =
    "smtp;421-4.7.0 [203.0.113.11 15] Try again later, closing connection. (EHLO) x - gsmtp";

inline std::string csv_quoted(const std::string& field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// One record for the vmta gmail-ip-1 of pool high-rep-pool (mapped by the configuration: the
// vmtaPool column is left empty). `n` makes recipients distinct.
inline std::string acct_line(char type, Time t, int n) {
  const std::string when = format_utc(t, "%Y-%m-%d %H:%M:%S+0000");
  const std::string rcpt = "user" + std::to_string(n) + "@gmail.com";
  const std::string mx = "gmail-smtp-in.l.google.com (142.250.102.27)";
  std::string action, status, diag, bounce_cat, recipient = rcpt, dlv = "smtp";
  switch (type) {
    case 'd':
      action = "relayed";
      status = "2.0.0 (success)";
      diag = "smtp;250 2.0.0 OK  1795780000 x - gsmtp";
      break;
    case 'b':
      action = "failed";
      status = "5.1.1 (bad destination mailbox address)";
      diag = "smtp;550-5.1.1 The email account that you tried to reach does not exist. x - gsmtp";
      bounce_cat = "bad-mailbox";
      break;
    case 't':
      action = "delayed";
      status = "4.7.0 (other or undefined protocol status)";
      diag = kThrottleDiag;
      break;
    case 'q':  // a tq record: the queue was throttled, no recipient
      action = "delayed";
      status = "4.7.0 (other or undefined protocol status)";
      diag = kThrottleDiag;
      recipient = "";
      break;
  }
  const std::string type_text = type == 'q' ? "tq" : std::string(1, type);
  return type_text + "," + when + "," + when + ",news@example.com," + recipient + ",," + action +
         "," + status + "," + csv_quoted(diag) + "," + mx + "," + bounce_cat + ",smtp,," + dlv +
         ",198.51.100.11,142.250.102.27,PIPELINING,2048,gmail-ip-1,job-1,,gmail.com/gmail-ip-1,\n";
}

// `attempts` records spread evenly over [from, to), `throttled` of them 421 deferrals (also
// spread evenly), the rest deliveries.
inline std::string traffic(Time from, Time to, int attempts, int throttled, int first_n = 0) {
  std::string out;
  for (int i = 0; i < attempts; ++i) {
    const Time t = from + (to - from) * i / attempts;
    const bool throttle = (static_cast<long>(i + 1) * throttled / attempts) >
                          (static_cast<long>(i) * throttled / attempts);
    out += acct_line(throttle ? 't' : 'd', t, first_n + i);
  }
  return out;
}

// ---- The sandbox: config, fake pmta, logs, fragments, database, all under one temp dir ------

enum class Pmta { ok, test_config_fails, reload_fails, reload_hangs };

struct SandboxOptions {
  std::string isps = R"(["gmail"])";
  std::string pmta_extra;  // more [pmta] keys
};

class Sandbox {
 public:
  explicit Sandbox(Pmta pmta = Pmta::ok, SandboxOptions options = {}) {
    // Mode 0755 whatever the umask: sluice refuses a config or override file in a directory
    // that group or others may write.
    for (const fs::path& dir :
         {work(), work() / "bin", work() / "acct", fragments(), work() / "state"}) {
      fs::create_directories(dir);
      fs::permissions(dir, kExecutable);
    }
    set_pmta(pmta);
    const auto quoted = [](const fs::path& p) { return "\"" + p.string() + "\""; };
    std::string toml = "[pmta]\n";
    toml += "command = " + quoted(pmta_path()) + "\n";
    toml += "accounting = [" + quoted(work() / "acct" / "acct-*.csv") + "]\n";
    toml += "fragments = " + quoted(fragments()) + "\n";
    toml += "config = " + quoted(pmta_config()) + "\n";
    toml += options.pmta_extra;
    toml += "\n[state]\ndatabase = " + quoted(database()) + "\n";
    toml += "overrides = " + quoted(work() / "overrides.toml") + "\n";
    toml += "\n[[pool]]\nname = \"high-rep-pool\"\nvmtas = [\"gmail-ip-1\", \"gmail-ip-2\"]\n";
    toml += "tier = \"high\"\nisps = " + options.isps + "\n";
    write_file(config(), toml);
  }

  // Everything sluice may touch lives under work(); nothing else goes there.
  fs::path work() const { return tmp_.path() / "work"; }
  fs::path config() const { return work() / "sluice.toml"; }
  fs::path pmta_path() const { return work() / "bin" / "pmta"; }
  fs::path pmta_config() const { return work() / "pmta.conf"; }
  fs::path calls_path() const { return work() / "pmta-calls"; }
  fs::path log() const { return work() / "acct" / "acct-2026-11-27.csv"; }
  fs::path fragments() const { return work() / "fragments"; }
  fs::path fragment() const { return fragments() / "high-rep-pool" / "gmail.conf"; }
  fs::path database() const { return work() / "state" / "state.db"; }
  fs::path scratch() const { return tmp_.path(); }  // outside work(), for a daemon's output

  void set_pmta(Pmta mode) {
    std::string test = "exit 0";
    std::string reload = "echo 'Configuration reloaded.'; exit 0";
    if (mode == Pmta::test_config_fails) {
      test = "echo 'Error in line 11 of /etc/pmta/config: argument missing'; exit 1";
    }
    if (mode == Pmta::reload_fails) reload = "echo 'error: reload failed' >&2; exit 1";
    if (mode == Pmta::reload_hangs) reload = "sleep 60";
    std::string script = "#!/bin/sh\n";
    script += "# Stands in for PowerMTA's pmta: records each call, answers like the real one.\n";
    script += "printf '%s\\n' \"$*\" >> '" + calls_path().string() + "'\n";
    script += "case \"$*\" in\n";
    script += "  'test config') " + test + " ;;\n";
    script += "  reload) " + reload + " ;;\n";
    script += "esac\n";
    script += "echo \"pmta: unknown command $*\" >&2\nexit 2\n";
    replace_file(pmta_path(), script, kExecutable);
  }

  std::vector<std::string> calls() const { return lines_of(slurp(calls_path())); }

  ProcessResult sluice(Time now, std::vector<std::string> args) const {
    std::vector<std::string> argv = {SLUICE_BINARY, "--config", config().string(), "--now",
                                     iso(now)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  Json json(Time now, const std::string& command) const {
    const ProcessResult r = sluice(now, {"--json", command});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    return Json::parse(r.out);
  }

  Json decisions(Time now) const { return json(now, "history")["decisions"]; }

 private:
  TempDir tmp_;
};

// ---- A snapshot of every file and directory under a root -------------------------------------

struct FileFacts {
  bool directory = false;
  std::uintmax_t size = 0;
  std::uint64_t hash = 0;  // FNV-1a of the content
  std::int64_t mtime_ns = 0;
  bool operator==(const FileFacts&) const = default;
};

inline std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

inline std::map<std::string, FileFacts> snapshot(const fs::path& root) {
  std::map<std::string, FileFacts> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    FileFacts f;
    f.directory = S_ISDIR(st.st_mode);
    // A directory's mtime moves when an entry is created or removed, even a temp file.
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (!f.directory) {
      f.size = static_cast<std::uintmax_t>(st.st_size);
      f.hash = fnv1a(slurp(e.path()));
    }
    out[e.path().string()] = f;
  }
  return out;
}

// "" when equal, else one line per path that appeared, vanished or changed.
inline std::string snapshot_differences(const std::map<std::string, FileFacts>& before,
                                        const std::map<std::string, FileFacts>& after) {
  std::string out;
  for (const auto& [path, facts] : before) {
    const auto found = after.find(path);
    if (found == after.end()) {
      out += "removed " + path + "\n";
    } else if (!(found->second == facts)) {
      out += "changed " + path + "\n";
    }
  }
  for (const auto& [path, facts] : after) {
    if (!before.contains(path)) out += "created " + path + "\n";
  }
  return out;
}

// ---- The state database, read directly ------------------------------------------------------

struct Totals {
  std::int64_t delivered = 0, bounced = 0, deferred = 0, deferred_queue = 0;
  bool operator==(const Totals&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Totals& t) {
  return os << "{d " << t.delivered << ", b " << t.bounced << ", t " << t.deferred << ", tq "
            << t.deferred_queue << "}";
}

inline Totals bucket_totals(const fs::path& database) {
  Totals t;
  sqlite3* db = nullptr;
  const std::string uri = "file:" + database.string() + "?mode=ro";
  if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << database << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return t;
  }
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT TOTAL(delivered), TOTAL(bounced), TOTAL(deferred), TOTAL(deferred_queue) "
      "FROM signal_bucket";
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    t = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
         sqlite3_column_int64(st, 3)};
  } else {
    ADD_FAILURE() << "cannot sum signal_bucket: " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return t;
}

inline Totals count_records(const std::string& lines) {
  Totals t;
  for (const std::string& line : lines_of(lines)) {
    if (line.starts_with("d,")) ++t.delivered;
    if (line.starts_with("b,")) ++t.bounced;
    if (line.starts_with("t,")) ++t.deferred;
    if (line.starts_with("tq,")) ++t.deferred_queue;
  }
  return t;
}

}  // namespace sluice::e2e
