#pragma once
// A read-only window of a file through mmap: no copy from the page cache, and no more memory
// than the window. A file that shrinks while mapped would kill the process with SIGBUS at the
// first page past its new end; here such pages read as zeros instead, and the window says so.

#include <cstdint>
#include <string>
#include <string_view>

#include "controller/expected.h"

namespace sluice::adapters {

class MappedWindow {
 public:
  // Maps [offset, offset + size) of the open file `fd` (named `path` in errors).
  static Expected<MappedWindow> map(int fd, std::uint64_t offset, std::size_t size,
                                    const std::string& path);

  MappedWindow(MappedWindow&& other) noexcept;
  MappedWindow& operator=(MappedWindow&& other) noexcept;
  MappedWindow(const MappedWindow&) = delete;
  MappedWindow& operator=(const MappedWindow&) = delete;
  ~MappedWindow();

  std::string_view bytes() const { return {static_cast<const char*>(base_) + lead_, size_}; }
  // Whether a page past the file's end was touched (and read as zeros): the file shrank.
  bool truncated() const;

 private:
  MappedWindow(void* base, std::size_t length, std::size_t lead, std::size_t size, int guard)
      : base_(base), length_(length), lead_(lead), size_(size), guard_(guard) {}
  void release();

  void* base_ = nullptr;
  std::size_t length_ = 0;  // of the mapping, from the page that holds `offset`
  std::size_t lead_ = 0;    // bytes of that page before `offset`
  std::size_t size_ = 0;
  int guard_ = -1;  // slot in the table the SIGBUS handler consults
};

}  // namespace sluice::adapters
