#include "adapters/accounting_reader.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "adapters/accounting_parser.h"
#include "adapters/mapped_file.h"

namespace sluice::adapters {

namespace {

constexpr std::size_t kHeadBytes = 4096;
constexpr std::size_t kTailBytes = 256;

std::uint64_t fnv1a(const char* data, std::size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < size; ++i) {
    h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ULL;
  }
  return h;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text(const std::string& path) {
  return path + ": " + std::strerror(errno);
}

// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
Expected<std::size_t> read_at(int fd, char* out, std::size_t size, std::uint64_t offset,
                              const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text(path)};
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// FNV-1a of the first line (up to kHeadBytes). 0 while the first line is incomplete: such a
// file has nothing to read yet and must not get an identity that changes as it grows.
Expected<std::uint64_t> head_hash(int fd, const std::string& path) {
  char head[kHeadBytes];
  Expected<std::size_t> n = read_at(fd, head, sizeof head, 0, path);
  if (!n) return n.error();
  const void* nl = std::memchr(head, '\n', *n);
  if (nl == nullptr && *n < kHeadBytes) return std::uint64_t{0};
  const std::size_t len = nl ? static_cast<const char*>(nl) - head + 1 : *n;
  const std::uint64_t h = fnv1a(head, len);
  return h == 0 ? 1 : h;
}

Expected<std::uint64_t> tail_hash(int fd, std::uint64_t offset, const std::string& path) {
  char tail[kTailBytes];
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(offset, kTailBytes));
  Expected<std::size_t> n = read_at(fd, tail, want, offset - want, path);
  if (!n) return n.error();
  return fnv1a(tail, *n);
}

// A read buffer; unlike std::vector<char> it is not zeroed first, as reads overwrite it.
class Buffer {
 public:
  explicit Buffer(std::size_t size)
      : data_(std::make_unique_for_overwrite<char[]>(size)), size_(size) {}
  char* data() { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

struct SliceResult {
  ParseProgress progress;
  ParserState state;
  ReadStats stats;
  std::unique_ptr<PartitionedSink> sink;
};

// Threads that stay for the whole file: a thread per window would cost its creation and start
// with cold caches each time.
class SliceWorkers {
 public:
  explicit SliceWorkers(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      workers_.push_back(std::make_unique<Worker>());
      Worker& w = *workers_.back();
      w.thread = std::thread([&w] { w.loop(); });
    }
  }
  ~SliceWorkers() {
    for (auto& w : workers_) {
      {
        std::lock_guard lock(w->mutex);
        w->stop = true;
      }
      w->wake.notify_one();
      w->thread.join();
    }
  }
  SliceWorkers(const SliceWorkers&) = delete;
  SliceWorkers& operator=(const SliceWorkers&) = delete;

  std::size_t size() const { return workers_.size(); }

  void start(std::size_t i, std::function<void()> task) {
    Worker& w = *workers_[i];
    {
      std::lock_guard lock(w.mutex);
      w.task = std::move(task);
      w.error = nullptr;
    }
    w.wake.notify_one();
  }

  // Waits for worker i's task; rethrows what it threw.
  void wait(std::size_t i) {
    Worker& w = *workers_[i];
    std::unique_lock lock(w.mutex);
    w.done.wait(lock, [&] { return !w.task; });
    if (w.error) std::rethrow_exception(std::exchange(w.error, nullptr));
  }

 private:
  struct Worker {
    std::thread thread;
    std::mutex mutex;
    std::condition_variable wake;
    std::condition_variable done;
    std::function<void()> task;
    std::exception_ptr error;
    bool stop = false;

    void loop() {
      std::unique_lock lock(mutex);
      while (true) {
        wake.wait(lock, [&] { return stop || task; });
        if (!task) return;
        lock.unlock();
        std::exception_ptr thrown;
        try {
          task();
        } catch (...) {
          thrown = std::current_exception();
        }
        lock.lock();
        error = thrown;
        task = nullptr;
        done.notify_one();
      }
    }
  };
  std::vector<std::unique_ptr<Worker>> workers_;
};

class WindowParser {
 public:
  WindowParser(unsigned threads, std::size_t slice_bytes, PartitionedSink& sink, ReadStats& stats,
               const std::string& path)
      : threads_(threads), slice_bytes_(slice_bytes), sink_(sink), stats_(stats), path_(path) {}

  // Parses a window of the file; returns the bytes consumed (a record boundary). The calling
  // thread runs `meanwhile` (reading the next window) while the other threads finish.
  std::size_t parse(std::string_view data, bool at_eof, ParserState& state,
                    const std::function<void()>& meanwhile) {
    const std::size_t slices = std::min<std::size_t>(threads_, data.size() / slice_bytes_);
    if (slices < 2) {
      const std::size_t consumed =
          parse_accounting(data, data.size(), at_eof, state, sink_, stats_, path_).consumed;
      meanwhile();
      return consumed;
    }
    // Slices after the first start at a line start and assume the column map in force: a
    // guess that is checked below and re-done sequentially when a quoted line break or a
    // header line made it wrong.
    const std::size_t others = slices - 1;
    const double first_share = main_ratio_ / (main_ratio_ + static_cast<double>(others));
    std::vector<std::size_t> bounds{0};
    for (std::size_t i = 1; i < slices; ++i) {
      const double share = first_share + (1 - first_share) * static_cast<double>(i - 1) /
                                             static_cast<double>(others);
      const auto nominal = static_cast<std::size_t>(share * static_cast<double>(data.size()));
      const void* nl = std::memchr(data.data() + nominal, '\n', data.size() - nominal);
      const std::size_t bound = nl ? static_cast<const char*>(nl) - data.data() + 1 : data.size();
      if (bound > bounds.back() && bound < data.size()) bounds.push_back(bound);
    }
    bounds.push_back(data.size());
    const std::size_t count = bounds.size() - 1;

    const ColumnMap assumed = state.columns;
    // Partials are made here, on the calling thread: the sink is not thread-safe.
    std::vector<std::unique_ptr<PartitionedSink>> partials(count);
    for (std::size_t i = 1; i < count; ++i) partials[i] = sink_.make_partial(i);
    if (!workers_) workers_ = std::make_unique<SliceWorkers>(threads_ - 1);
    std::vector<SliceResult> speculative(count);
    std::vector<Seconds> worker_seconds(count);
    for (std::size_t i = 1; i < count; ++i) {
      const bool last = i + 1 == count;
      workers_->start(i - 1, [&, i, last] {
        const Clock::time_point started = Clock::now();
        SliceResult& r = speculative[i];
        r.state.columns = assumed;
        r.state.at_file_start = false;
        r.sink = std::move(partials[i]);
        r.progress = parse_accounting(data.substr(bounds[i]), bounds[i + 1] - bounds[i],
                                      last && at_eof, r.state, *r.sink, r.stats, path_);
        worker_seconds[i] = Clock::now() - started;
      });
    }
    // Every started slice is waited for before anything here can leave this function.
    struct WaitAll {
      SliceWorkers& workers;
      std::size_t started;
      bool waited = false;
      ~WaitAll() {
        if (waited) return;
        for (std::size_t i = 0; i < started; ++i) {
          try {
            workers.wait(i);
          } catch (...) {  // the first error is already on its way out
          }
        }
      }
    } wait_all{*workers_, count - 1};
    const Clock::time_point started = Clock::now();
    const ParseProgress first =
        parse_accounting(data, bounds[1], count == 1 && at_eof, state, sink_, stats_, path_);
    const Clock::time_point parsed = Clock::now();
    meanwhile();
    const Seconds reading = Clock::now() - parsed;
    std::size_t expected = first.consumed;
    bool sequential_rest = first.need_more;
    for (std::size_t i = 1; i < count; ++i) workers_->wait(i - 1);
    wait_all.waited = true;
    if (count == slices) balance(parsed - started, reading, bounds, worker_seconds);
    for (std::size_t i = 1; i < count; ++i) {
      SliceResult& r = speculative[i];
      const bool last = i + 1 == count;
      if (sequential_rest || bounds[i] != expected || !(state.columns == assumed) ||
          state.skipping_long_line || (r.progress.need_more && !last)) {
        sequential_rest = true;
        continue;
      }
      for (MalformedSample& s : r.stats.samples) s.line += state.line - 1;
      stats_.merge(r.stats);
      sink_.absorb(*r.sink);
      state.line += r.state.line - 1;
      state.columns = r.state.columns;
      state.skipping_long_line = r.state.skipping_long_line;
      expected = bounds[i] + r.progress.consumed;
    }
    if (sequential_rest) {
      expected += parse_accounting(data.substr(expected), data.size() - expected, at_eof, state,
                                   sink_, stats_, path_)
                      .consumed;
    }
    return expected;
  }

 private:
  using Clock = std::chrono::steady_clock;
  using Seconds = std::chrono::duration<double>;

  // The calling thread parses its slice and then reads the next window, so its slice must be
  // smaller than the others; by how much depends on the machine (copying from the page cache
  // against parsing), so it is measured: the ratio that would have made this window's threads
  // finish together, smoothed over windows. Where the bounds fall never changes the result.
  void balance(Seconds main_parse, Seconds reading, const std::vector<std::size_t>& bounds,
               const std::vector<Seconds>& worker_seconds) {
    const auto main_bytes = static_cast<double>(bounds[1]);
    double worker_bytes = 0;
    Seconds worker_time{0};
    for (std::size_t i = 1; i + 1 < bounds.size(); ++i) {
      worker_bytes += static_cast<double>(bounds[i + 1] - bounds[i]);
      worker_time += worker_seconds[i];
    }
    const double others = static_cast<double>(bounds.size() - 2);
    if (main_bytes <= 0 || worker_bytes <= 0 || main_parse.count() <= 0 ||
        worker_time.count() <= 0) {
      return;
    }
    const double main_per_byte = main_parse.count() / main_bytes;
    const double worker_per_byte = worker_time.count() / worker_bytes;
    const double slice = worker_bytes / others;
    // main_per_byte * ratio * slice + reading == worker_per_byte * slice
    const double ideal = (worker_per_byte * slice - reading.count()) / (main_per_byte * slice);
    main_ratio_ = std::clamp(0.5 * main_ratio_ + 0.5 * ideal, 0.1, 1.5);
  }

  unsigned threads_;
  double main_ratio_ = 0.85;  // the calling thread's slice against each other one
  std::size_t slice_bytes_;
  std::unique_ptr<SliceWorkers> workers_;  // made with the first window that splits
  PartitionedSink& sink_;
  ReadStats& stats_;
  const std::string& path_;
};

// Parses the file from `position` to `size` (its size when opened: what is appended meanwhile
// is for the next read) through mapped windows, each parsed in place. Returns false, with
// `position` where it stopped, when a window cannot be mapped: the caller reads the rest.
bool read_mapped(int fd, const std::string& path, std::uint64_t size, std::size_t window_bytes,
                 WindowParser& window, ParserState& state, ReadStats& stats,
                 std::uint64_t& position) {
  std::size_t carried = 0;  // bytes of an incomplete record at `position`
  while (position < size) {
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(size - position, carried + window_bytes));
    Expected<MappedWindow> mapped = MappedWindow::map(fd, position, n, path);
    if (!mapped) return false;
    const bool at_eof = position + n == size;
    const std::size_t consumed = window.parse(mapped->bytes(), at_eof, state, [] {});
    position += consumed;
    stats.bytes += consumed;
    if (mapped->truncated()) {
      stats.warnings.push_back(path + ": became shorter while being read; stopped at byte " +
                               std::to_string(position));
      break;
    }
    if (at_eof) break;
    carried = n - consumed;
  }
  return true;
}

// Parses the file from `position` to its end through two buffers: the next window is read into
// one while the other is parsed. Each keeps room in front for the incomplete record carried over
// from the window before.
Status read_buffered(int fd, const std::string& path, std::size_t window_bytes,
                     WindowParser& window, ParserState& state, ReadStats& stats,
                     std::uint64_t& position) {
  const std::size_t reserve = kMaxRecordBytes + (64 << 10);
  Buffer buffers[2] = {Buffer(reserve + window_bytes), Buffer(reserve + window_bytes)};
  std::uint64_t read_offset = position;
  Expected<std::size_t> first =
      read_at(fd, buffers[0].data() + reserve, window_bytes, read_offset, path);
  if (!first) return first.error();
  read_offset += *first;
  int current = 0;
  std::size_t begin = reserve;
  std::size_t end = reserve + *first;
  bool at_eof = *first < window_bytes;
  while (true) {
    Buffer& next = buffers[1 - current];
    std::size_t next_size = 0;
    std::optional<Error> read_error;
    const auto read_ahead = [&] {
      if (at_eof) return;
      Expected<std::size_t> n =
          read_at(fd, next.data() + (next.size() - window_bytes), window_bytes, read_offset, path);
      if (n) {
        next_size = *n;
      } else {
        read_error = n.error();
      }
    };
    const std::size_t consumed = window.parse(
        std::string_view(buffers[current].data() + begin, end - begin), at_eof, state, read_ahead);
    if (read_error) return *read_error;
    position += consumed;
    stats.bytes += consumed;
    if (at_eof) break;
    // Carry the incomplete record over in front of the next window's bytes; a record longer
    // than the room (possible only with small windows) grows the buffer.
    const std::size_t carried = end - begin - consumed;
    std::size_t room = next.size() - window_bytes;
    if (carried > room) {
      Buffer bigger(carried + window_bytes);
      std::memcpy(bigger.data() + carried, next.data() + room, next_size);
      next = std::move(bigger);
      room = carried;
    }
    std::memcpy(next.data() + room - carried, buffers[current].data() + begin + consumed, carried);
    begin = room - carried;
    end = room + next_size;
    read_offset += next_size;
    at_eof = next_size < window_bytes;
    current = 1 - current;
  }
  return ok_status();
}

}  // namespace

Expected<FileCheckpoint> read_accounting_file(const std::string& path, const FileCheckpoint* resume,
                                              PartitionedSink& sink, ReadStats& stats,
                                              const ReaderOptions& options) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error{errno_text(path)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error{errno_text(path)};
  if (!S_ISREG(st.st_mode)) return Error{path + ": not a regular file"};
  Expected<std::uint64_t> hash = head_hash(fd.get(), path);
  if (!hash) return hash.error();

  FileCheckpoint checkpoint;
  checkpoint.path = path;
  checkpoint.identity = FileIdentity{static_cast<std::uint64_t>(st.st_dev),
                                     static_cast<std::uint64_t>(st.st_ino), *hash};
  ++stats.files;
  if (*hash == 0) return checkpoint;  // not even a complete first line yet: nothing to read

  ParserState state;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  bool resumed = false;
  if (resume != nullptr && resume->identity == checkpoint.identity && resume->offset <= size) {
    Expected<std::uint64_t> tail = tail_hash(fd.get(), resume->offset, path);
    if (!tail) return tail.error();
    resumed = *tail == resume->tail_hash;
  }
  if (resumed) {
    checkpoint.offset = resume->offset;
    checkpoint.line = resume->line;
    if (std::optional<ColumnMap> columns = ColumnMap::from_header_line(resume->header)) {
      state.columns = std::move(*columns);
    }
    state.at_file_start = resume->offset == 0;
    state.skipping_long_line = resume->inside_long_line;
  } else if (resume != nullptr && resume->offset > 0) {
    stats.warnings.push_back(path +
                             ": truncated or replaced since it was last read; reading it from "
                             "the start");
  }
  state.line = checkpoint.line;

  const unsigned threads =
      options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  const std::size_t slice_bytes = std::max(options.slice_bytes, std::size_t{64} << 10);
  const std::size_t window_bytes = threads * slice_bytes;
  WindowParser window(threads, slice_bytes, sink, stats, path);
  std::uint64_t position = checkpoint.offset;
  const bool mapped = options.map_files && read_mapped(fd.get(), path, size, window_bytes, window,
                                                       state, stats, position);
  if (!mapped) {
    if (Status read = read_buffered(fd.get(), path, window_bytes, window, state, stats, position);
        !read) {
      return read.error();
    }
  }
  checkpoint.offset = position;
  checkpoint.line = state.line;
  checkpoint.header = state.columns.header_line();
  checkpoint.inside_long_line = state.skipping_long_line;
  Expected<std::uint64_t> tail = tail_hash(fd.get(), position, path);
  if (!tail) return tail.error();
  checkpoint.tail_hash = *tail;
  return checkpoint;
}

Expected<std::vector<std::string>> expand_globs(const std::vector<std::string>& globs) {
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (const std::string& pattern : globs) {
    glob_t matches{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
    if (rc == GLOB_NOMATCH && pattern.find_first_of("*?[") == std::string::npos) {
      ::globfree(&matches);
      return Error{pattern + ": No such file or directory"};
    }
    if (rc != 0 && rc != GLOB_NOMATCH) {
      ::globfree(&matches);
      return Error{pattern + ": cannot list the files it names"};
    }
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) {
      if (seen.insert(matches.gl_pathv[i]).second) paths.emplace_back(matches.gl_pathv[i]);
    }
    ::globfree(&matches);
  }
  return paths;
}

AccountingFiles::AccountingFiles(std::vector<std::string> globs, ReaderOptions options)
    : globs_(std::move(globs)), options_(options) {}

Expected<ReadOutcome> AccountingFiles::read_new(const std::vector<FileCheckpoint>& known,
                                                PartitionedSink& sink) {
  ReadOutcome outcome;
  std::vector<std::string> paths;
  for (const std::string& pattern : globs_) {
    // A rotation may leave a glob without files for a while: not an error for a follower.
    Expected<std::vector<std::string>> matched = expand_globs({pattern});
    if (matched) paths.insert(paths.end(), matched->begin(), matched->end());
  }
  std::set<std::pair<std::uint64_t, std::uint64_t>> read_inodes;
  for (const std::string& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      outcome.stats.warnings.push_back(errno_text(path) + " (gone before it was read)");
      continue;
    }
    const std::pair<std::uint64_t, std::uint64_t> inode{st.st_dev, st.st_ino};
    if (!read_inodes.insert(inode).second) continue;  // two names of one file
    const FileCheckpoint* resume = nullptr;
    const FileCheckpoint* same_path = nullptr;
    for (const FileCheckpoint& k : known) {
      if (k.identity.device == inode.first && k.identity.inode == inode.second) resume = &k;
      if (k.path == path) same_path = &k;
    }
    if (resume == nullptr && same_path != nullptr && same_path->offset > 0) {
      outcome.stats.warnings.push_back(
          path +
          ": a different file than the one read before under this name (rotated or "
          "replaced); reading it from the start");
    }
    Expected<FileCheckpoint> done =
        read_accounting_file(path, resume, sink, outcome.stats, options_);
    if (!done) {
      outcome.stats.warnings.push_back(done.error().message);
      if (resume != nullptr) outcome.checkpoints.push_back(*resume);
      continue;
    }
    outcome.checkpoints.push_back(std::move(done.value()));
  }
  return outcome;
}

}  // namespace sluice::adapters
