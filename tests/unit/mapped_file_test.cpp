#include "adapters/mapped_file.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace sluice::adapters {
namespace {

namespace fs = std::filesystem;

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string pattern = (fs::temp_directory_path() / "sluice-map-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary | std::ios::trunc).write(text.data(), text.size());
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~TempFile() {
    ::close(fd_);
    fs::remove(path_);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string pattern_text(std::size_t size) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
  return text;
}

TEST(MappedWindow, ShowsExactlyTheBytesAskedForAtAnyOffset) {
  const std::string text = pattern_text(3 * 4096 + 100);
  TempFile file(text);
  for (std::uint64_t offset : {0ul, 1ul, 4095ul, 4096ul, 5000ul}) {
    SCOPED_TRACE(offset);
    Expected<MappedWindow> w = MappedWindow::map(file.fd(), offset, 6000, file.path());
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_EQ(w->bytes(), std::string_view(text).substr(offset, 6000));
    EXPECT_FALSE(w->truncated());
  }
}

TEST(MappedWindow, EmptyWindowNeedsNoMapping) {
  TempFile file("");
  Expected<MappedWindow> w = MappedWindow::map(file.fd(), 0, 0, file.path());
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->bytes().empty());
  EXPECT_FALSE(w->truncated());
}

TEST(MappedWindow, FailureNamesTheFile) {
  Expected<MappedWindow> w = MappedWindow::map(-1, 0, 100, "/var/log/pmta/acct.csv");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message.rfind("/var/log/pmta/acct.csv: cannot map it: ", 0), 0u)
      << w.error().message;
}

// Without the guard, touching a page past the new end of the file kills the process (SIGBUS).
TEST(MappedWindow, FileShrunkWhileMappedReadsAsZerosAndSaysSo) {
  const std::string text = pattern_text(8 * 4096);
  TempFile file(text);
  Expected<MappedWindow> w = MappedWindow::map(file.fd(), 0, text.size(), file.path());
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(::truncate(file.path().c_str(), 100), 0);
  const std::string_view bytes = w->bytes();
  EXPECT_EQ(bytes.substr(0, 100), std::string_view(text).substr(0, 100));
  EXPECT_EQ(bytes[5 * 4096 + 7], '\0');
  EXPECT_EQ(bytes[8 * 4096 - 1], '\0');
  EXPECT_TRUE(w->truncated());

  // Another window of the same file, mapped afterwards, is not marked by the first one's fault.
  Expected<MappedWindow> other = MappedWindow::map(file.fd(), 0, 100, file.path());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->bytes(), std::string_view(text).substr(0, 100));
  EXPECT_FALSE(other->truncated());
}

TEST(MappedWindow, WindowsReleasedLeaveTheirGuardsFree) {
  const std::string text = pattern_text(2 * 4096);
  TempFile file(text);
  for (int i = 0; i < 1000; ++i) {
    Expected<MappedWindow> w = MappedWindow::map(file.fd(), 0, text.size(), file.path());
    ASSERT_TRUE(w.ok()) << "window " << i << ": " << w.error().message;
  }
}

TEST(MappedWindow, MovedWindowKeepsItsMappingAndGuard) {
  const std::string text = pattern_text(4 * 4096);
  TempFile file(text);
  Expected<MappedWindow> w = MappedWindow::map(file.fd(), 0, text.size(), file.path());
  ASSERT_TRUE(w.ok());
  MappedWindow moved = std::move(*w);
  ASSERT_EQ(::truncate(file.path().c_str(), 10), 0);
  EXPECT_EQ(moved.bytes()[3 * 4096], '\0');
  EXPECT_TRUE(moved.truncated());
}

TEST(MappedWindowDeathTest, SigbusNotFromAMappedWindowStillEndsTheProcess) {
  const std::string text = pattern_text(4096);
  TempFile file(text);
  Expected<MappedWindow> w = MappedWindow::map(file.fd(), 0, text.size(), file.path());
  ASSERT_TRUE(w.ok());  // the handler is installed now
  EXPECT_DEATH(::raise(SIGBUS), "");
}

}  // namespace
}  // namespace sluice::adapters
