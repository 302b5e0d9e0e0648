#pragma once
// One writer per state database: a second `sluice run` must refuse to start, not interleave its
// cycles with the first one's.

#include <string>

#include "controller/expected.h"

namespace sluice::state {

// An exclusive flock on `<database>.lock`, which holds the holder's pid for the message of the
// next one. Held until destroyed; a crashed holder's lock goes with its process.
class WriterLock {
 public:
  // Fails at once, without waiting, when another holder (another process, or another WriterLock
  // in this one) has the lock: "<database>: another sluice (pid N) is running".
  static Expected<WriterLock> acquire(const std::string& database_path);

  WriterLock(WriterLock&& other) noexcept;
  WriterLock& operator=(WriterLock&& other) noexcept;
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  ~WriterLock();

  const std::string& path() const { return path_; }  // of the lock file

 private:
  WriterLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void release();

  int fd_ = -1;
  std::string path_;
};

}  // namespace sluice::state
