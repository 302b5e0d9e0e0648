#include "state/writer_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace sluice::state {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

class WriterLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-lock-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    db_ = (dir_ / "state.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string refusal(pid_t pid) const {
    return db_ + ": another sluice (pid " + std::to_string(pid) + ") is running";
  }

  std::filesystem::path dir_;
  std::string db_;
};

TEST_F(WriterLockTest, WritesTheHoldersPidIntoTheLockFile) {
  const mode_t mask = ::umask(022);
  auto lock = WriterLock::acquire(db_);
  ::umask(mask);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(lock->path(), db_ + ".lock");
  EXPECT_EQ(read_file(db_ + ".lock"), std::to_string(::getpid()) + "\n");
  struct stat st {};
  ASSERT_EQ(::stat((db_ + ".lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(WriterLockTest, ASecondAcquireInTheSameProcessFailsNamingThePid) {
  auto first = WriterLock::acquire(db_);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = WriterLock::acquire(db_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, refusal(::getpid()));
  // The refused attempt closed its own descriptor; that must not have released the first lock
  // (as closing any descriptor would with fcntl locks).
  auto third = WriterLock::acquire(db_);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().message, refusal(::getpid()));
}

TEST_F(WriterLockTest, ReleasedByTheDestructorThenAcquiredAgain) {
  {
    auto first = WriterLock::acquire(db_);
    ASSERT_TRUE(first.ok()) << first.error().message;
  }
  auto again = WriterLock::acquire(db_);
  EXPECT_TRUE(again.ok()) << again.error().message;
}

TEST_F(WriterLockTest, MovingKeepsTheLockAndTheLastOwnerReleasesIt) {
  auto acquired = WriterLock::acquire(db_);
  ASSERT_TRUE(acquired.ok()) << acquired.error().message;
  {
    WriterLock moved = std::move(acquired).value();
    EXPECT_FALSE(WriterLock::acquire(db_).ok());
    WriterLock assigned = std::move(moved);
    EXPECT_EQ(assigned.path(), db_ + ".lock");
    EXPECT_FALSE(WriterLock::acquire(db_).ok());
  }
  EXPECT_TRUE(WriterLock::acquire(db_).ok());
}

TEST_F(WriterLockTest, MoveAssignmentReleasesTheLockItReplaces) {
  const std::string other_db = (dir_ / "other.db").string();
  auto a = WriterLock::acquire(db_);
  auto b = WriterLock::acquire(other_db);
  ASSERT_TRUE(a.ok() && b.ok());
  a.value() = std::move(b).value();
  EXPECT_TRUE(WriterLock::acquire(db_).ok());
  EXPECT_FALSE(WriterLock::acquire(other_db).ok());
}

TEST_F(WriterLockTest, ALockHeldByAChildProcessIsReportedWithItsPid) {
  int ready[2];
  int finish[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(finish), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(finish[1]);
    auto lock = WriterLock::acquire(db_);
    char answer = lock.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &answer, 1);
    (void)!::read(finish[0], &answer, 1);  // until the parent closes its end
    ::_exit(0);                            // no destructor: the lock must go with the process
  }
  ::close(ready[1]);
  ::close(finish[0]);
  char answer = 0;
  const ssize_t got = ::read(ready[0], &answer, 1);
  auto refused = WriterLock::acquire(db_);
  ::close(finish[1]);
  ::close(ready[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);

  ASSERT_EQ(got, 1);
  ASSERT_EQ(answer, 'y');
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, refusal(child));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto after_exit = WriterLock::acquire(db_);
  EXPECT_TRUE(after_exit.ok()) << after_exit.error().message;
  EXPECT_EQ(read_file(db_ + ".lock"), std::to_string(::getpid()) + "\n");
}

TEST_F(WriterLockTest, AMissingDirectoryIsAnErrorNamingTheLockFile) {
  const std::string db = (dir_ / "no-such-dir" / "state.db").string();
  auto lock = WriterLock::acquire(db);
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(lock.error().message, StartsWith(db + ".lock: cannot open the lock file: "));
  EXPECT_THAT(lock.error().message, HasSubstr("No such file or directory"));
}

}  // namespace
}  // namespace sluice::state
