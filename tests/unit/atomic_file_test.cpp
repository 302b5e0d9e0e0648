#include "adapters/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-atomic-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static int mode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::filesystem::path dir_;
};

TEST_F(AtomicFileTest, CreatesANewFile) {
  const std::string file = path("gmail.com.conf");
  ASSERT_TRUE(write_file_atomically(file, "max-smtp-out 6\nmax-connect-rate 1/s\n").ok());
  EXPECT_EQ(read(file), "max-smtp-out 6\nmax-connect-rate 1/s\n");
  EXPECT_EQ(mode_of(file), 0644);
}

TEST_F(AtomicFileTest, ReplacesTheContent) {
  const std::string file = path("gmail.com.conf");
  std::ofstream(file) << "max-smtp-out 10\nbackoff-max-smtp-out 10\nretry-after 10m\n";
  ASSERT_TRUE(write_file_atomically(file, "max-smtp-out 6\n").ok());
  EXPECT_EQ(read(file), "max-smtp-out 6\n");
  ASSERT_TRUE(write_file_atomically(file, "").ok());
  EXPECT_EQ(read(file), "");
}

TEST_F(AtomicFileTest, SetsTheRequestedMode) {
  const std::string file = path("overrides.toml");
  ASSERT_TRUE(write_file_atomically(file, "x", 0600).ok());
  EXPECT_EQ(mode_of(file), 0600);
  // A replaced file takes the new mode, not the old file's.
  ASSERT_TRUE(write_file_atomically(file, "y", 0640).ok());
  EXPECT_EQ(mode_of(file), 0640);
}

TEST_F(AtomicFileTest, LeavesNoTemporaryFileBehind) {
  ASSERT_TRUE(write_file_atomically(path("a.conf"), "max-smtp-out 2\n").ok());
  ASSERT_TRUE(write_file_atomically(path("a.conf"), "max-smtp-out 3\n").ok());
  ASSERT_TRUE(write_file_atomically(path("b.conf"), std::string(1 << 20, '#')).ok());
  EXPECT_THAT(entries(), ElementsAre("a.conf", "b.conf"));
  EXPECT_EQ(read(path("b.conf")).size(), 1u << 20);
}

TEST_F(AtomicFileTest, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string file = path("no-such-dir/gmail.com.conf");
  const Status status = write_file_atomically(file, "max-smtp-out 6\n");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, StartsWith(file + ": "));
  EXPECT_THAT(status.error().message, ::testing::HasSubstr("No such file or directory"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "no-such-dir"));
}

TEST_F(AtomicFileTest, FailedRenameLeavesNoTemporaryFile) {
  // A directory where the file should go: rename(2) fails after the temp file was written.
  std::filesystem::create_directory(dir_ / "gmail.com.conf");
  const Status status = write_file_atomically(path("gmail.com.conf"), "max-smtp-out 6\n");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, StartsWith(path("gmail.com.conf") + ": "));
  EXPECT_THAT(entries(), ElementsAre("gmail.com.conf"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "gmail.com.conf"));
}

}  // namespace
}  // namespace sluice::adapters
