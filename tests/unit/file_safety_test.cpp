#include "config/file_safety.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace sluice::config {
namespace {

namespace fs = std::filesystem;

constexpr fs::perms kFile = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read;  // 0644
constexpr fs::perms kDirectory = fs::perms::owner_all | fs::perms::group_read |
                                 fs::perms::group_exec | fs::perms::others_read |
                                 fs::perms::others_exec;  // 0755
constexpr const char* kRefused = "; sluice refuses it because it steers PowerMTA's configuration: ";
constexpr uid_t kNobody = 65534;
constexpr const char* kOnlyRoot = "only root can give a file to another user";

// Every mode is set explicitly, so that the umask changes nothing.
class FileSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sluice-safety-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, fs::perms perms = kFile) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << "[state]\n";
    fs::permissions(path, perms);
    return path;
  }
  fs::path directory(const std::string& name, fs::perms perms) const {
    const fs::path path = dir_ / name;
    fs::create_directory(path);
    fs::permissions(path, perms);
    return path;
  }

  fs::path dir_;  // 0700, ours
};

TEST_F(FileSafety, Mode0644IsSafe) {
  EXPECT_EQ(why_unsafe(file("sluice.toml")), std::nullopt);
}

TEST_F(FileSafety, Mode0600IsSafe) {
  EXPECT_EQ(why_unsafe(file("sluice.toml", fs::perms::owner_read | fs::perms::owner_write)),
            std::nullopt);
}

TEST_F(FileSafety, GroupWritableIsRefused) {
  const std::string path = file("sluice.toml", kFile | fs::perms::group_write);
  EXPECT_EQ(why_unsafe(path),
            path + ": writable by group or others (mode 0664)" + kRefused + "chmod go-w " + path);
}

TEST_F(FileSafety, OtherWritableIsRefused) {
  const std::string path = file("sluice.toml", kFile | fs::perms::others_write);
  EXPECT_EQ(why_unsafe(path),
            path + ": writable by group or others (mode 0646)" + kRefused + "chmod go-w " + path);
}

TEST_F(FileSafety, FileOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << kOnlyRoot;
  const std::string path = file("sluice.toml");
  ASSERT_EQ(::chown(path.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(why_unsafe(path),
            path + ": owned by uid 65534, not by root" + kRefused + "chown root " + path);
}

TEST_F(FileSafety, DirectoryOthersMayWriteIsRefused) {
  const fs::path open = directory("open", fs::perms::all);  // 0777
  const std::string path = (open / "sluice.toml").string();
  std::ofstream(path) << "[state]\n";
  fs::permissions(path, kFile);
  EXPECT_EQ(why_unsafe(path), path + ": its directory " + open.string() +
                                  " is writable by group or others without the sticky bit (mode "
                                  "0777), so they could replace the file" +
                                  kRefused + "chmod go-w " + open.string());
}

TEST_F(FileSafety, DirectoryWithTheStickyBitIsSafe) {
  // Like /tmp: others may create files there, but not replace ours.
  const fs::path sticky = directory("sticky", fs::perms::all | fs::perms::sticky_bit);
  const std::string path = (sticky / "sluice.toml").string();
  std::ofstream(path) << "[state]\n";
  fs::permissions(path, kFile);
  EXPECT_EQ(why_unsafe(path), std::nullopt);
}

TEST_F(FileSafety, DirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << kOnlyRoot;
  const fs::path theirs = directory("theirs", kDirectory);
  const std::string path = (theirs / "sluice.toml").string();
  std::ofstream(path) << "[state]\n";
  fs::permissions(path, kFile);
  ASSERT_EQ(::chown(theirs.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(why_unsafe(path), path + ": its directory " + theirs.string() +
                                  " is owned by uid 65534, not by root" + kRefused + "chown root " +
                                  theirs.string());
}

TEST_F(FileSafety, SymlinkToAFileInADirectoryOthersMayWriteIsRefused) {
  const fs::path open = directory("open", fs::perms::all);
  const std::string target = (open / "sluice.toml").string();
  std::ofstream(target) << "[state]\n";
  fs::permissions(target, kFile);
  const std::string link = (dir_ / "link.toml").string();
  fs::create_symlink(target, link);
  const std::string resolved = fs::canonical(open).string();
  EXPECT_EQ(why_unsafe(link), link + ": its directory " + resolved +
                                  " is writable by group or others without the sticky bit (mode "
                                  "0777), so they could replace the file" +
                                  kRefused + "chmod go-w " + resolved);
}

TEST_F(FileSafety, SymlinkInADirectoryOthersMayWriteIsRefused) {
  const std::string target = file("sluice.toml");
  const fs::path open = directory("open", fs::perms::all);
  const std::string link = (open / "link.toml").string();
  fs::create_symlink(target, link);
  EXPECT_EQ(why_unsafe(link), link + ": its directory " + open.string() +
                                  " is writable by group or others without the sticky bit (mode "
                                  "0777), so they could replace the file" +
                                  kRefused + "chmod go-w " + open.string());
}

TEST_F(FileSafety, SymlinkToASafeFileIsSafe) {
  const std::string link = (dir_ / "link.toml").string();
  fs::create_symlink(file("sluice.toml"), link);
  EXPECT_EQ(why_unsafe(link), std::nullopt);
}

TEST_F(FileSafety, MissingFileCannotBeChecked) {
  const std::string path = (dir_ / "missing.toml").string();
  EXPECT_EQ(why_unsafe(path), path + ": cannot be checked: No such file or directory");
}

}  // namespace
}  // namespace sluice::config
