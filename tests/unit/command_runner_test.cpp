#include "adapters/command_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/mock_command_runner.h"

namespace sluice::adapters {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class CommandRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-cmd-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A /bin/sh script in the temp directory; returns its absolute path.
  std::string script(const std::string& name, const std::string& body, int mode = 0755) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode));
    return path;
  }

  std::filesystem::path dir_;
  ProcessRunner runner_;
};

// Gone, or a zombie nobody reaped yet (the container's init may not reap): not running either way.
bool process_has_ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

// Children of this process that exited and were never reaped.
int zombie_children() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 2));
    char state = 0;
    pid_t parent = 0;
    fields >> state >> parent;
    if (state == 'Z' && parent == ::getpid()) ++count;
  }
  return count;
}

TEST_F(CommandRunnerTest, CapturesStdoutStderrAndTheExitCode) {
  const std::string pmta =
      script("pmta", "echo 'Configuration reloaded.'\necho 'warning' >&2\nexit 3");
  const CommandResult r = runner_.run({pmta, "reload"}, 10s);
  EXPECT_EQ(r.out, "Configuration reloaded.\n");
  EXPECT_EQ(r.err, "warning\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, "");
  EXPECT_FALSE(r.succeeded());
}

TEST_F(CommandRunnerTest, ExitZeroSucceeds) {
  const CommandResult r = runner_.run({script("pmta", "exit 0")}, 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(r.succeeded());
}

TEST_F(CommandRunnerTest, InputReachesTheChildsStdin) {
  const std::string input = "{\"event\":\"cut\"}\n" + std::string(1 << 20, 'x');
  const CommandResult r = runner_.run_with_input({script("hook", "wc -c")}, input, 10s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(r.out.find_first_not_of(' ')), std::to_string(input.size()) + "\n");
  // Without input, stdin is /dev/null: a child that reads it sees its end at once.
  const std::string none = runner_.run({script("reader", "wc -c")}, 10s).out;
  EXPECT_EQ(none.substr(none.find_first_not_of(' ')), "0\n");
}

TEST_F(CommandRunnerTest, AChildThatIgnoresItsInputIsNoProblem) {
  const CommandResult r =
      runner_.run_with_input({script("hook", "exit 0")}, std::string(1 << 20, 'x'), 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
}

TEST_F(CommandRunnerTest, ArgumentsReachTheChildVerbatim) {
  const std::string pmta = script("pmta", R"(printf '<%s>\n' "$0" "$@")");
  const std::string canary = (dir_ / "pwned").string();
  const std::vector<std::string> args = {"two words",
                                         "it's \"quoted\"",
                                         "a;b",
                                         "$(touch " + canary + ")",
                                         "`touch " + canary + "`",
                                         "*",
                                         "",
                                         "x|y&z>" + canary,
                                         "line\nbreak"};
  std::vector<std::string> argv = {pmta};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = runner_.run(argv, 10s);
  ASSERT_TRUE(r.succeeded()) << r.error << r.err;
  std::string expected = "<" + pmta + ">\n";
  for (const std::string& a : args) expected += "<" + a + ">\n";
  EXPECT_EQ(r.out, expected);
  EXPECT_FALSE(std::filesystem::exists(canary)) << "a shell interpreted an argument";
}

TEST_F(CommandRunnerTest, MegabytesOnBothStreamsDoNotDeadlock) {
  // Far beyond a pipe's 64 KiB buffer, on both streams, one after the other: reading them in
  // turn would block the child on the stream not being read.
  const std::string chatty = script("chatty",
                                    "head -c 1048576 /dev/zero | tr '\\0' o\n"
                                    "head -c 1048576 /dev/zero | tr '\\0' e >&2\n"
                                    "head -c 65536 /dev/zero | tr '\\0' o");
  const CommandResult r = runner_.run({chatty}, 30s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, std::string((1 << 20) + (1 << 16), 'o'));
  EXPECT_EQ(r.err, std::string(1 << 20, 'e'));
}

TEST_F(CommandRunnerTest, AHangingChildIsKilledAtTheTimeout) {
  const std::string hang = script("hang", "echo started\nsleep 30");
  const auto start = std::chrono::steady_clock::now();
  const CommandResult r = runner_.run({hang}, 200ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.out, "started\n");  // what it said before the kill is kept
  EXPECT_FALSE(r.succeeded());
  EXPECT_LT(elapsed, 5s);
}

TEST_F(CommandRunnerTest, TheTimeoutKillsWhatTheChildStarted) {
  // The background sleep keeps no pipe open, so only the process-group kill can end it.
  const std::string hang = script("hang", "sleep 30 >/dev/null 2>&1 &\necho $!\nwait");
  const CommandResult r = runner_.run({hang}, 200ms);
  EXPECT_TRUE(r.timed_out);
  const pid_t sleeper = std::stoi(r.out);
  for (int i = 0; i < 100 && !process_has_ended(sleeper); ++i) ::usleep(20'000);
  EXPECT_TRUE(process_has_ended(sleeper));
}

TEST_F(CommandRunnerTest, ADescendantHoldingTheOutputDoesNotHoldTheRunPastTheTimeout) {
  // The child exits at once, but its background sleep inherited stdout and keeps it open.
  const std::string quick = script("quick", "sleep 30 &\necho done\nexit 0");
  const auto start = std::chrono::steady_clock::now();
  const CommandResult r = runner_.run({quick}, 200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_FALSE(r.timed_out);  // the command itself finished in time
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "done\n");
}

TEST_F(CommandRunnerTest, ADescendantThatLeftTheGroupCannotHoldTheRunForEver) {
  // setsid puts it out of reach of the group kill, still holding stderr: the pipes are given up
  // shortly after the deadline instead.
  const std::string escape = script("escape", "setsid sleep 30 >/dev/null &\necho $!\nexit 0");
  const auto start = std::chrono::steady_clock::now();
  const CommandResult r = runner_.run({escape}, 200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  ::kill(std::stoi(r.out), SIGKILL);
}

TEST_F(CommandRunnerTest, AChildKilledByASignalReports128PlusTheSignal) {
  const CommandResult r = runner_.run({script("crash", "kill -TERM $$")}, 10s);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, "");
  EXPECT_FALSE(r.succeeded());
}

TEST_F(CommandRunnerTest, StdinIsClosed) {
  // `cat` would wait for ever on an inherited terminal or pipe.
  const CommandResult r = runner_.run({script("reader", "cat; echo eof")}, 10s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "eof\n");
}

TEST_F(CommandRunnerTest, TheChildInheritsNoOtherDescriptor) {
  const std::string file = (dir_ / "state.db").string();
  std::ofstream(file) << "x";
  const int fd = ::open(file.c_str(), O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  const std::string probe =
      script("probe", "[ -e /proc/$$/fd/" + std::to_string(fd) + " ] && echo leaked || echo clean");
  const CommandResult r = runner_.run({probe}, 10s);
  ::close(fd);
  EXPECT_EQ(r.out, "clean\n");
}

TEST_F(CommandRunnerTest, AMissingProgramIsAnErrorNamingThePath) {
  const std::string missing = (dir_ / "pmta").string();
  const CommandResult r = runner_.run({missing, "reload"}, 10s);
  EXPECT_EQ(r.error, missing + ": No such file or directory");
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.succeeded());
}

TEST_F(CommandRunnerTest, ANonExecutableFileIsAnErrorNamingThePath) {
  // No execute bit at all: execve refuses even for root.
  const std::string pmta = script("pmta", "exit 0", 0644);
  const CommandResult r = runner_.run({pmta, "reload"}, 10s);
  EXPECT_EQ(r.error, pmta + ": Permission denied");
  EXPECT_EQ(r.exit_code, -1);
}

TEST_F(CommandRunnerTest, ADirectoryIsAnErrorNamingThePath) {
  const CommandResult r = runner_.run({dir_.string()}, 10s);
  EXPECT_EQ(r.error, dir_.string() + ": Permission denied");
  EXPECT_EQ(r.exit_code, -1);
}

TEST_F(CommandRunnerTest, FailedLaunchesLeaveNoZombie) {
  const int before = zombie_children();
  for (int i = 0; i < 3; ++i) {
    ASSERT_NE(runner_.run({(dir_ / "missing").string()}, 10s).error, "");
  }
  EXPECT_EQ(zombie_children(), before);
}

TEST_F(CommandRunnerTest, AProgramWithoutASlashIsNotLookedUpInPath) {
  const CommandResult r = runner_.run({"pmta", "reload"}, 10s);
  EXPECT_THAT(r.error, HasSubstr("pmta: "));
  EXPECT_THAT(r.error, HasSubstr("PATH"));
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(runner_.run({"sh", "-c", "exit 0"}, 10s).exit_code, -1);
}

TEST_F(CommandRunnerTest, AnEmptyCommandIsAnError) {
  const CommandResult r = runner_.run({}, 10s);
  EXPECT_NE(r.error, "");
  EXPECT_EQ(r.exit_code, -1);
}

TEST_F(CommandRunnerTest, ARelativePathRuns) {
  const std::string pmta = script("pmta", "echo ok");
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  const CommandResult r = runner_.run({"./pmta"}, 10s);
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(r.succeeded()) << r.error;
  EXPECT_EQ(r.out, "ok\n");
}

TEST(MockCommandRunnerTest, StandsInForTheRealRunner) {
  MockCommandRunner mock;
  CommandResult reloaded;
  reloaded.exit_code = 0;
  reloaded.out = "Configuration reloaded.\n";
  REQUIRE_CALL(mock, run(std::vector<std::string>{"/usr/sbin/pmta", "reload"},
                         std::chrono::milliseconds(30s)))
      .RETURN(reloaded);
  CommandRunner& runner = mock;
  EXPECT_TRUE(runner.run({"/usr/sbin/pmta", "reload"}, 30s).succeeded());
}

}  // namespace
}  // namespace sluice::adapters
