#include "adapters/mapped_file.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace sluice::adapters {

namespace {

// The windows mapped now, for the SIGBUS handler: lock-free, as a handler may not take locks.
struct Guard {
  std::atomic<bool> used{false};
  std::atomic<std::uintptr_t> begin{0};  // 0 while the slot is being filled or emptied
  std::atomic<std::uintptr_t> end{0};
  std::atomic<bool> truncated{false};
};
constexpr std::size_t kGuards = 64;
std::array<Guard, kGuards> guards;

struct sigaction previous_handler {};
std::once_flag handler_installed;

std::uintptr_t page_size() {
  static const auto size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

void on_sigbus(int signal, siginfo_t* info, void* context) {
  const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  // Only a fault has an address; a SIGBUS sent with kill() has none.
  const bool fault = info->si_code > 0;
  for (Guard& g : guards) {
    if (!fault) break;
    const std::uintptr_t begin = g.begin.load(std::memory_order_acquire);
    if (begin == 0 || address < begin || address >= g.end.load(std::memory_order_acquire)) {
      continue;
    }
    // Zero pages over the rest of the window, so the access and the ones after it succeed.
    const std::uintptr_t page = address & ~(page_size() - 1);
    void* zeros = ::mmap(reinterpret_cast<void*>(page), g.end.load() - page, PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (zeros != MAP_FAILED) {
      g.truncated.store(true);
      return;
    }
    break;
  }
  // Not a shrunk file of ours: what would have happened without this handler.
  if ((previous_handler.sa_flags & SA_SIGINFO) != 0 && previous_handler.sa_sigaction != nullptr) {
    previous_handler.sa_sigaction(signal, info, context);
    return;
  }
  if (previous_handler.sa_handler != SIG_DFL && previous_handler.sa_handler != SIG_IGN) {
    previous_handler.sa_handler(signal);
    return;
  }
  ::signal(SIGBUS, SIG_DFL);
  ::raise(SIGBUS);
}

void install_handler() {
  struct sigaction action {};
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &previous_handler);
}

int take_guard(std::uintptr_t begin, std::uintptr_t end) {
  for (std::size_t i = 0; i < kGuards; ++i) {
    bool expected = false;
    if (!guards[i].used.compare_exchange_strong(expected, true)) continue;
    guards[i].truncated.store(false);
    guards[i].end.store(end, std::memory_order_release);
    guards[i].begin.store(begin, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void drop_guard(int i) {
  Guard& g = guards[static_cast<std::size_t>(i)];
  g.begin.store(0, std::memory_order_release);
  g.end.store(0, std::memory_order_release);
  g.used.store(false, std::memory_order_release);
}

}  // namespace

Expected<MappedWindow> MappedWindow::map(int fd, std::uint64_t offset, std::size_t size,
                                         const std::string& path) {
  std::call_once(handler_installed, install_handler);
  const std::uint64_t aligned = offset & ~static_cast<std::uint64_t>(page_size() - 1);
  const auto lead = static_cast<std::size_t>(offset - aligned);
  if (size == 0) return MappedWindow(nullptr, 0, 0, 0, -1);
  const std::size_t length = lead + size;
  void* base = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(aligned));
  if (base == MAP_FAILED) return Error{path + ": cannot map it: " + std::strerror(errno)};
  const auto begin = reinterpret_cast<std::uintptr_t>(base);
  const int guard = take_guard(begin, begin + length);
  if (guard < 0) {
    ::munmap(base, length);
    return Error{path + ": cannot map it: too many windows mapped at once"};
  }
  // Read front to back once: the kernel reads ahead of the faults on a file not in the page
  // cache, and does not keep its pages as if they were in use. (MADV_WILLNEED would walk every
  // page of the window up front, also when all of them are cached.)
  ::madvise(base, length, MADV_SEQUENTIAL);
  return MappedWindow(base, length, lead, size, guard);
}

MappedWindow::MappedWindow(MappedWindow&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      lead_(other.lead_),
      size_(std::exchange(other.size_, 0)),
      guard_(std::exchange(other.guard_, -1)) {}

MappedWindow& MappedWindow::operator=(MappedWindow&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    length_ = std::exchange(other.length_, 0);
    lead_ = other.lead_;
    size_ = std::exchange(other.size_, 0);
    guard_ = std::exchange(other.guard_, -1);
  }
  return *this;
}

MappedWindow::~MappedWindow() {
  release();
}

bool MappedWindow::truncated() const {
  return guard_ >= 0 && guards[static_cast<std::size_t>(guard_)].truncated.load();
}

void MappedWindow::release() {
  // The handler must stop claiming the range before the address space can be reused.
  if (guard_ >= 0) drop_guard(std::exchange(guard_, -1));
  if (base_ != nullptr) ::munmap(std::exchange(base_, nullptr), length_);
}

}  // namespace sluice::adapters
