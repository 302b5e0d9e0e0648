#include "state/writer_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <utility>

namespace sluice::state {

namespace {

std::string system_error(const std::string& path, const char* what, int error) {
  return path + ": " + what + ": " + std::strerror(error);
}

// The holder's pid as written in the lock file; empty when the holder has not written it yet.
std::string holder_pid(int fd) {
  char buffer[32];
  const ssize_t n = ::pread(fd, buffer, sizeof buffer, 0);
  if (n <= 0) return "";
  std::string_view text(buffer, static_cast<std::size_t>(n));
  const std::size_t end = text.find_first_not_of("0123456789");
  return std::string(text.substr(0, end));
}

}  // namespace

Expected<WriterLock> WriterLock::acquire(const std::string& database_path) {
  std::string path = database_path + ".lock";
  // A fresh open file description each time: flock conflicts between descriptions, so a second
  // WriterLock in this process is refused like another process would be. The file is never
  // removed: a holder unlinking it could let two processes lock two different files.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{system_error(path, "cannot open the lock file", errno)};
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      const std::string pid = holder_pid(fd);
      ::close(fd);
      return Error{database_path + ": another sluice " + (pid.empty() ? "" : "(pid " + pid + ") ") +
                   "is running"};
    }
    ::close(fd);
    return Error{system_error(path, "cannot lock", error)};
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::close(fd);
    return Error{system_error(path, "cannot write the pid", error)};
  }
  return WriterLock(fd, std::move(path));
}

WriterLock::WriterLock(WriterLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

WriterLock& WriterLock::operator=(WriterLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

WriterLock::~WriterLock() {
  release();
}

void WriterLock::release() {
  if (fd_ < 0) return;
  // Explicitly: a child forked without exec shares the description and would keep the lock
  // through close() alone.
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::state
