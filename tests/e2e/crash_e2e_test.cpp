// Crash consistency: `sluice once` killed with SIGKILL at random moments and at each step of
// writing its state (fault points, test builds only), over thousands of cycles of an incident.
// After every run: the database is intact, every fragment parses and holds either the value the
// state and the audit trail record as applied or, for a fragment the killed cycle was writing,
// its content before or after; no accounting record is lost or counted twice. At the end a
// normal cycle brings disk, state and pmta into agreement.
//
// SLUICE_CRASH_CYCLES sets the number of cycles (default 2000; scripts/test uses fewer under
// the sanitizers).

#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/fragment.h"
#include "loop_support.h"

namespace sluice::e2e {
namespace {

// Each throttles like its ISP: the classifier reads these as connection or rate throttling.
struct IspTraffic {
  const char* isp;
  const char* domain;
  const char* diag;
};
constexpr IspTraffic kIsps[] = {
    {"gmail", "gmail.com", kThrottleDiag},
    {"yahoo", "yahoo.com",
     "smtp;421 4.7.0 [TSS04] Messages from 198.51.100.11 temporarily deferred due to unexpected "
     "volume or user complaints"},
    {"outlook", "outlook.com",
     "smtp;421 RP-002 (BAY004-MC1F1) Unfortunately, some messages from 198.51.100.11 weren't "
     "sent"},
};

// Where a fault point may stop the process; see controller/fault_point.h.
const std::vector<std::string> kPoints = {"create",        "before-rename", "after-rename",
                                          "after-command", "before-commit", "after-commit"};

constexpr Time kStep = 20 * kMinute;  // between two cycles: more changes per cycle

struct Pool {
  const char* name;
  const char* vmta;
};
// The Sandbox's pool, and a second one appended to its configuration.
constexpr Pool kPools[] = {{"high-rep-pool", "gmail-ip-1"}, {"second-pool", "other-ip-1"}};

std::string record(char type, Time t, int n, const Pool& pool, const IspTraffic& isp) {
  const std::string when = format_utc(t, "%Y-%m-%d %H:%M:%S+0000");
  const bool deferred = type == 't';
  return std::string(1, type) + "," + when + "," + when + ",news@example.com,u" +
         std::to_string(n) + "@" + isp.domain + ",," + (deferred ? "delayed" : "relayed") + "," +
         (deferred ? "4.7.0 (throttled)" : "2.0.0 (success)") + "," +
         csv_quoted(deferred ? isp.diag : "smtp;250 ok") + ",mx." + isp.domain +
         " (192.0.2.1),,smtp,,smtp,198.51.100.11,192.0.2.1,PIPELINING,2048," + pool.vmta +
         ",job,," + isp.domain + "/" + pool.vmta + ",\n";
}

// The traffic of one step: each pair has an hour of 40% throttling every four hours, at its own
// time, so that cuts, verdicts and recoveries keep coming.
std::string one_step(Time from, int& n) {
  std::string out;
  const Time hour = from / kHour;
  for (int p = 0; p < 2; ++p) {
    for (int j = 0; j < 3; ++j) {
      const bool incident = (hour + 2 * j + p) % 4 == 0;
      for (int i = 0; i < 40; ++i) {
        const bool throttle = incident && i % 5 < 2;
        out += record(throttle ? 't' : 'd', from + i * (kStep / 40), n++, kPools[p], kIsps[j]);
      }
    }
  }
  return out;
}

// ---- Reading what a run left ---------------------------------------------------------------

class Database {
 public:
  explicit Database(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~Database() { sqlite3_close(db_); }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Every row's columns as text.
  std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql) {
    std::vector<std::vector<std::optional<std::string>>> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::optional<std::string>> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        row.push_back(text ? std::optional<std::string>(std::string(
                                 text, static_cast<std::size_t>(sqlite3_column_bytes(st, i))))
                           : std::nullopt);
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct Pending {
  std::optional<std::string> before;
  std::string after;
};

class CrashTest : public ::testing::Test {
 protected:
  CrashTest() : sandbox_(Pmta::ok, SandboxOptions{R"(["gmail", "yahoo", "outlook"])", ""}) {
    // A pmta whose reload copies the fragments it would load, under a lock: a pmta started by a
    // killed sluice finishes in its own time, and the checks wait for it.
    const std::string lock = (sandbox_.work() / "pmta.lock").string();
    const std::string loaded = loaded_dir().string();
    std::string script = "#!/bin/sh\n";
    script += "exec 9>>'" + lock + "'\nflock 9\n";
    script += "case \"$*\" in\n";
    script += "  'test config') exit 0 ;;\n";
    script += "  reload) rm -rf '" + loaded + ".new' && cp -R '" + sandbox_.fragments().string() +
              "' '" + loaded + ".new' && rm -rf '" + loaded + "' && mv '" + loaded + ".new' '" +
              loaded + "' && echo 'Configuration reloaded.' && exit 0 ;;\n";
    script += "esac\nexit 2\n";
    replace_file(sandbox_.pmta_path(), script, kExecutable);
    write_file(sandbox_.log(), kHeader);
    append_file(sandbox_.config(),
                "\n[[pool]]\nname = \"second-pool\"\nvmtas = [\"other-ip-1\"]\ntier = "
                "\"medium\"\nisps = [\"gmail\", \"yahoo\", \"outlook\"]\n");
  }

  static std::vector<std::pair<std::string, std::string>> pairs() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Pool& pool : kPools) {
      for (const IspTraffic& isp : kIsps) out.emplace_back(pool.name, isp.isp);
    }
    return out;
  }

  fs::path loaded_dir() const { return sandbox_.work() / "loaded"; }

  // Waits for a pmta that a killed sluice left running.
  void wait_for_pmta() const {
    const int fd =
        ::open((sandbox_.work() / "pmta.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ::flock(fd, LOCK_EX);
    ::close(fd);
  }

  struct Run {
    bool killed = false;
    int exit_code = -1;
    double seconds = 0;
  };

  // `sluice once` at `now`; killed after `kill_after` if given, or by $SLUICE_FAULT=`fault`.
  Run once(Time now, const std::string& fault,
           std::optional<std::chrono::microseconds> kill_after) {
    std::vector<std::string> argv = {SLUICE_BINARY, "--config", sandbox_.config().string(),
                                     "--now",       iso(now),   "once"};
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!std::string_view(*e).starts_with("SLUICE_FAULT=")) env.emplace_back(*e);
    }
    if (!fault.empty()) env.push_back("SLUICE_FAULT=" + fault);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const std::string out = (sandbox_.scratch() / "once.out").string();
    const std::string err = (sandbox_.scratch() / "once.err").string();
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args = detail::c_argv(argv);
    std::vector<char*> envp = detail::c_argv(env);
    const auto started = std::chrono::steady_clock::now();
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    Run run;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn failed: " << rc;
      return run;
    }
    if (kill_after) {
      std::this_thread::sleep_for(*kill_after);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    run.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }

  std::map<std::string, Pending> pending(Database& db) {
    std::map<std::string, Pending> out;
    for (const auto& row :
         db.rows("SELECT pool, isp, vmta, had_before, before, after FROM pending_fragment")) {
      const fs::path dir = sandbox_.fragments() / *row[0];
      const fs::path path =
          row[2]->empty() ? dir / (*row[1] + ".conf") : dir / *row[1] / (*row[2] + ".conf");
      Pending p;
      if (*row[3] == "1") p.before = row[4];
      p.after = *row[5];
      out[path.string()] = p;
    }
    return out;
  }

  // The invariants that hold after any run, killed or not. Returns the number of fragments
  // found mid-write (in a killed cycle's record).
  int check_consistency(const std::string& when) {
    Database db(sandbox_.database());
    const auto integrity = db.rows("PRAGMA integrity_check");
    EXPECT_TRUE(integrity.size() == 1 && integrity[0][0] == "ok") << when;
    const std::map<std::string, Pending> in_flight = pending(db);
    std::map<std::string, int> state;
    for (const auto& row : db.rows("SELECT pool, isp, max_smtp_out FROM pair_state")) {
      state[*row[0] + "/" + *row[1]] = std::stoi(*row[2]);
    }
    std::map<std::string, int> applied;  // the last applied value of each pair's own fragment
    for (const auto& row : db.rows("SELECT pool, isp, new_value FROM decision WHERE applied = 1 "
                                   "AND vmta = '' ORDER BY id")) {
      applied[*row[0] + "/" + *row[1]] = std::stoi(*row[2]);
    }
    int mid_write = 0;
    for (const auto& [path, p] : in_flight) {
      const std::optional<std::string> content =
          fs::exists(path) ? std::optional<std::string>(slurp(path)) : std::nullopt;
      EXPECT_TRUE(content == p.before || content == p.after)
          << when << ": " << path << " is neither what it held nor what was being written";
      if (content != p.before) ++mid_write;
    }
    for (const auto& [pool, isp] : pairs()) {
      const std::string pair = pool + "/" + isp;
      const fs::path path = sandbox_.fragments() / pool / (isp + ".conf");
      if (in_flight.contains(path.string())) continue;
      if (!state.contains(pair)) {
        EXPECT_FALSE(fs::exists(path)) << when << ": " << path << " without a pair state";
        continue;
      }
      EXPECT_TRUE(fs::exists(path)) << when << ": " << pair << " has a state but no fragment";
      if (!fs::exists(path)) continue;
      const std::optional<int> value = fragment_max_smtp_out(slurp(path));
      EXPECT_EQ(value, state[pair]) << when << ": " << path;
      if (applied.contains(pair)) {
        EXPECT_EQ(value, applied[pair]) << when << ": " << path;
      }
    }
    for (const auto& entry : fs::recursive_directory_iterator(sandbox_.fragments())) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      if (name.find(".tmp-") != std::string::npos) continue;  // removed by the next write
      EXPECT_TRUE(name.ends_with(".conf")) << when << ": " << entry.path();
      const std::optional<int> value = fragment_max_smtp_out(slurp(entry.path()));
      if (value) {
        EXPECT_GE(*value, 1) << entry.path();
        EXPECT_LE(*value, 1000) << entry.path();
      }
    }
    return mid_write;
  }

  Sandbox sandbox_;
};

TEST_F(CrashTest, KillsAtRandomPointsOfThousandsOfCyclesLoseNothingAndBreakNothing) {
#ifndef SLUICE_FAULT_POINTS
  GTEST_SKIP() << "built without SLUICE_FAULT_POINTS: the fault points are not in the binary";
#endif
  const char* configured = std::getenv("SLUICE_CRASH_CYCLES");
  const int cycles = configured ? std::atoi(configured) : 2000;
  std::mt19937_64 rng(20261128);
  std::uniform_real_distribution<double> unit(0, 1);

  Totals generated;
  Totals committed;
  int n = 0;
  int kills = 0, fault_kills = 0, timed_kills = 0, exits = 0, recoveries = 0, mid_writes = 0;
  std::map<std::string, int> kills_at;
  std::vector<double> clean_seconds;
  Time now = kNow;
  for (int cycle = 0; cycle < cycles && !HasFailure(); ++cycle) {
    const std::string lines = one_step(now - kStep, n);
    append_file(sandbox_.log(), lines);
    const Totals added = count_records(lines);
    generated.delivered += added.delivered;
    generated.deferred += added.deferred;

    std::string fault;
    std::optional<std::chrono::microseconds> kill_after;
    const double mode = unit(rng);
    if (mode >= 0.25 && mode < 0.6) {
      fault = kPoints[rng() % kPoints.size()] + ":" + std::to_string(1 + rng() % 3);
    } else if (mode >= 0.6 && clean_seconds.size() >= 5) {
      std::vector<double> sorted = clean_seconds;
      std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
      const double typical = sorted[sorted.size() / 2];
      kill_after = std::chrono::microseconds(static_cast<long>(unit(rng) * typical * 1.2e6));
    }
    const Run run = once(now, fault, kill_after);
    wait_for_pmta();
    const std::string when = "cycle " + std::to_string(cycle) + " at " + iso(now) +
                             (fault.empty() ? "" : " (SLUICE_FAULT=" + fault + ")");
    if (run.killed) {
      ++kills;
      if (!fault.empty()) {
        ++fault_kills;
        ++kills_at[fault.substr(0, fault.find(':'))];
      } else {
        ++timed_kills;
      }
      // Either the cycle committed before it died, or nothing of it did.
      const Totals stored = bucket_totals(sandbox_.database());
      EXPECT_TRUE(stored == committed || stored == generated)
          << when << ": " << stored << " is neither " << committed << " nor " << generated;
      committed = stored;
    } else {
      ++exits;
      ASSERT_EQ(run.exit_code, 0) << when << ": " << slurp(sandbox_.scratch() / "once.err");
      if (fault.empty() && !kill_after) clean_seconds.push_back(run.seconds);
      if (contains(slurp(sandbox_.scratch() / "once.err"), "put back")) ++recoveries;
      committed = bucket_totals(sandbox_.database());
      EXPECT_EQ(committed, generated) << when;
      for (const auto& entry : fs::recursive_directory_iterator(sandbox_.fragments())) {
        EXPECT_FALSE(contains(entry.path().filename().string(), ".tmp-"))
            << when << ": " << entry.path() << " left behind";
      }
    }
    mid_writes += check_consistency(when);
    now += kStep;
  }

  // A normal cycle brings disk, state and pmta into agreement.
  const Run last = once(now, "", std::nullopt);
  ASSERT_EQ(last.exit_code, 0) << slurp(sandbox_.scratch() / "once.err");
  EXPECT_EQ(check_consistency("the final cycle"), 0);
  {
    Database db(sandbox_.database());
    EXPECT_TRUE(pending(db).empty());
  }
  EXPECT_EQ(bucket_totals(sandbox_.database()), generated);
  std::map<std::string, std::string> on_disk, in_pmta;
  for (const auto& e : fs::recursive_directory_iterator(sandbox_.fragments())) {
    if (e.is_regular_file()) {
      on_disk[fs::relative(e.path(), sandbox_.fragments()).string()] = slurp(e.path());
    }
  }
  for (const auto& e : fs::recursive_directory_iterator(loaded_dir())) {
    if (e.is_regular_file())
      in_pmta[fs::relative(e.path(), loaded_dir()).string()] = slurp(e.path());
  }
  EXPECT_EQ(on_disk, in_pmta) << "pmta last loaded other fragments than the ones on disk";

  std::cout << "cycles " << cycles << ", kills survived " << kills << " (" << fault_kills
            << " at fault points, " << timed_kills << " at random moments), clean exits " << exits
            << ", interrupted cycles put back " << recoveries << ", fragments found mid-write "
            << mid_writes << "\nkills by point:";
  for (const auto& [point, count] : kills_at) std::cout << " " << point << " " << count;
  std::cout << "\nrecords " << generated << "\n";
  // The test proves something only if the kills landed where state is written.
  EXPECT_GE(kills, cycles / 4);
  for (const std::string& point : kPoints) {
    EXPECT_GT(kills_at[point], 0) << "no kill at " << point;
  }
  EXPECT_GT(recoveries, 0);
  EXPECT_GT(mid_writes, 0);
}

// The daemon: `sluice run` killed with SIGKILL in the middle of its cycles (at a fault point
// or at a random moment), then started again, round after round.
TEST_F(CrashTest, KillingTheDaemonLeavesItsStateAndFragmentsConsistent) {
#ifndef SLUICE_FAULT_POINTS
  GTEST_SKIP() << "built without SLUICE_FAULT_POINTS: the fault points are not in the binary";
#endif
  std::mt19937_64 rng(28112026);
  int n = 0;
  int kills = 0;
  Totals generated;
  Time now = kNow;
  for (int round = 0; round < 16 && !HasFailure(); ++round) {
    const std::string lines = one_step(now - kStep, n);
    append_file(sandbox_.log(), lines);
    const Totals added = count_records(lines);
    generated.delivered += added.delivered;
    generated.deferred += added.deferred;
    const bool at_point = round % 2 == 0;
    const std::string fault = kPoints[rng() % kPoints.size()] + ":" + std::to_string(1 + rng() % 2);
    if (at_point) ::setenv("SLUICE_FAULT", fault.c_str(), 1);
    BackgroundProcess daemon({SLUICE_BINARY, "--config", sandbox_.config().string(), "--now",
                              iso(now), "run", "--interval", "1s"},
                             sandbox_.scratch() / "run.out", sandbox_.scratch() / "run.err");
    ::unsetenv("SLUICE_FAULT");
    // A fault point kills it where it is reached; otherwise it dies at a random moment.
    const auto lifetime = std::chrono::milliseconds(at_point ? 2500 : 50 + rng() % 2000);
    std::optional<int> exit_code = daemon.wait_for_exit(lifetime);
    if (!exit_code) {
      ::kill(daemon.pid(), SIGKILL);
      exit_code = daemon.wait_for_exit(std::chrono::seconds(10));
    }
    ASSERT_EQ(exit_code, -1) << "it stopped by itself: " << slurp(sandbox_.scratch() / "run.err");
    ++kills;
    wait_for_pmta();
    check_consistency("round " + std::to_string(round) +
                      (at_point ? " (SLUICE_FAULT=" + fault + ")" : ""));
    now += kStep;
  }
  const Run last = once(now, "", std::nullopt);
  ASSERT_EQ(last.exit_code, 0) << slurp(sandbox_.scratch() / "once.err");
  EXPECT_EQ(check_consistency("the cycle after the last kill"), 0);
  EXPECT_EQ(bucket_totals(sandbox_.database()), generated);
  std::cout << "sluice run killed " << kills << " times\n";
}

}  // namespace
}  // namespace sluice::e2e
