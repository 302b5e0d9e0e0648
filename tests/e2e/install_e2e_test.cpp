// Installing and running as a service: `cmake --install` into a temporary prefix lays out what
// the Debian package ships, the installed binary works, `systemd-analyze verify` accepts the
// installed unit, and `sluice run` speaks systemd's notify protocol (READY, WATCHDOG, STATUS,
// STOPPING) on $NOTIFY_SOCKET.

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <vector>

#include "loop_support.h"

namespace sluice::e2e {
namespace {

class InstallE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prefix_ = new TempDir;
    const ProcessResult r = run_process(
        {"/usr/bin/cmake", "--install", SLUICE_BUILD_DIR, "--prefix", prefix_->path().string()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  static void TearDownTestSuite() {
    delete prefix_;
    prefix_ = nullptr;
  }
  static fs::path prefix() { return prefix_->path(); }

  static TempDir* prefix_;
};

TempDir* InstallE2E::prefix_ = nullptr;

TEST_F(InstallE2E, LaysOutWhatThePackageShips) {
  for (const char* file : {"bin/sluice", "etc/sluice/sluice.toml",
                           "lib/systemd/system/sluice.service", "lib/sysusers.d/sluice.conf",
                           "share/man/man1/sluice.1.gz", "share/bash-completion/completions/sluice",
                           "share/doc/sluice/README.md", "share/doc/sluice/reliability.md"}) {
    EXPECT_TRUE(fs::is_regular_file(prefix() / file)) << file;
  }
  EXPECT_TRUE(contains(slurp(prefix() / "lib/sysusers.d/sluice.conf"), "u sluice"));
  // The installed configuration passes sluice's own check of who may write it.
  const fs::perms perms = fs::status(prefix() / "etc/sluice/sluice.toml").permissions();
  EXPECT_EQ(perms & (fs::perms::group_write | fs::perms::others_write), fs::perms::none);
}

TEST_F(InstallE2E, TheInstalledBinaryRunsOnTheInstalledConfiguration) {
  const std::string sluice = (prefix() / "bin/sluice").string();
  const ProcessResult version = run_process({sluice, "version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_TRUE(contains(version.out, "sluice")) << version.out;

  std::vector<std::string> argv = {
      sluice, "--config", (prefix() / "etc/sluice/sluice.toml").string(), "--json", "report"};
  for (const auto& e : fs::directory_iterator(fs::path(SLUICE_SOURCE_DIR) / "examples/acct")) {
    argv.push_back(e.path().string());
  }
  const ProcessResult report = run_process(argv);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_GT(Json::parse(report.out)["totals"]["delivered"].get<long>(), 0);
}

TEST_F(InstallE2E, SystemdAcceptsTheInstalledUnit) {
  const fs::path unit = prefix() / "lib/systemd/system/sluice.service";
  const std::string text = slurp(unit);
  EXPECT_TRUE(contains(text, "ExecStart=" + (prefix() / "bin/sluice").string() + " run\n"));
  for (const char* line : {"Type=notify\n", "WatchdogSec=", "Restart=on-failure\n", "User=sluice\n",
                           "ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "PrivateTmp=yes\n",
                           "ReadWritePaths=", "StateDirectory=sluice\n"}) {
    EXPECT_TRUE(contains(text, line)) << line;
  }
  const char* analyze = "/usr/bin/systemd-analyze";
  ASSERT_TRUE(fs::exists(analyze)) << "systemd-analyze is missing: apt-get install systemd";
  // --man=no: the man page is in the prefix, not where man(1) looks.
  const ProcessResult verify = run_process({analyze, "verify", "--man=no", unit.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.err, "");
}

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "cannot bind " << path;
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The next message, or "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

TEST(ServiceE2E, RunTellsSystemdItIsReadyAliveAndStopping) {
  Sandbox box;
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 100, 0));
  NotifySocket socket(box.scratch() / "notify");
  ::setenv("NOTIFY_SOCKET", (box.scratch() / "notify").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "400000", 1);  // alive at least every 200 ms
  BackgroundProcess daemon({SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow),
                            "run", "--interval", "60s"},
                           box.scratch() / "run.out", box.scratch() / "run.err");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");

  const std::string ready = socket.next(std::chrono::seconds(10));
  EXPECT_TRUE(contains(ready, "READY=1\n")) << ready;
  EXPECT_TRUE(contains(ready, "STATUS=running a cycle every 60 s")) << ready;
  // After the first cycle: its summary, then the watchdog, again and again while it waits.
  std::vector<std::string> messages;
  for (int i = 0; i < 6; ++i) messages.push_back(socket.next(std::chrono::seconds(5)));
  EXPECT_TRUE(contains(messages[0], "STATUS=cycle at 2026-11-27T12:00:00Z: 100 records"))
      << messages[0];
  int alive = 0;
  for (const std::string& m : messages) alive += m == "WATCHDOG=1" ? 1 : 0;
  EXPECT_GE(alive, 4);

  ::kill(daemon.pid(), SIGTERM);
  std::string last;
  for (std::string m = socket.next(std::chrono::seconds(5)); !m.empty();
       m = socket.next(std::chrono::seconds(2))) {
    last = m;
  }
  EXPECT_TRUE(contains(last, "STOPPING=1")) << last;
  EXPECT_EQ(daemon.wait_for_exit(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace sluice::e2e
