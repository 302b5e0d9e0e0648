#pragma once
// The interfaces (ports) the controller's cycle needs; adapters/ and state/ implement them.

#include <cstdint>
#include <string>
#include <vector>

#include "controller/domain.h"
#include "controller/expected.h"
#include "controller/read_stats.h"
#include "controller/record_sink.h"

namespace sluice {

// A file is the same file across renames (rotation's move-to) by device, inode and first line.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t head_hash = 0;  // of the first line; tells a replaced file that reuses an inode
  bool operator==(const FileIdentity&) const = default;
};

// Where reading a file stopped: the next unread byte, always at the start of a record.
struct FileCheckpoint {
  std::string path;  // where it was last seen (informative; identity decides)
  FileIdentity identity;
  std::uint64_t offset = 0;
  std::uint64_t line = 1;  // physical line number at `offset`
  std::string header;      // the header line in force at `offset` (columns map by name)
  // Of the bytes just before `offset`: a file rewritten in place under the same identity no
  // longer holds them.
  std::uint64_t tail_hash = 0;
  bool inside_long_line = false;  // `offset` is inside a line over 1 MiB, already counted
};

struct ReadOutcome {
  std::vector<FileCheckpoint> checkpoints;  // one per file that exists now
  ReadStats stats;
};

class AccountingSource {
 public:
  virtual ~AccountingSource() = default;
  // Reads what was added since `known` and returns the new checkpoints. Each record reaches
  // `sink` once as long as the caller persists the returned checkpoints with what it derived.
  virtual Expected<ReadOutcome> read_new(const std::vector<FileCheckpoint>& known,
                                         PartitionedSink& sink) = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixSeconds now() const = 0;
};

}  // namespace sluice

namespace sluice {

struct SignalBucket;

// Persistent memory of the loop. Reading is idempotent because the checkpoints and the buckets
// counted from the same bytes commit in one transaction.
class SignalStore {
 public:
  virtual ~SignalStore() = default;
  virtual Expected<std::vector<FileCheckpoint>> load_checkpoints() = 0;
  virtual Status commit_read(const std::vector<FileCheckpoint>& checkpoints,
                             const std::vector<SignalBucket>& buckets) = 0;
  virtual Expected<std::vector<SignalBucket>> buckets_since(UnixSeconds start) = 0;
  virtual Status prune_buckets_before(UnixSeconds start) = 0;
};

}  // namespace sluice
