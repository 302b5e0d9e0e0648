#pragma once
// Reads accounting files from a checkpoint to their last complete line, on several threads.

#include <string>
#include <vector>

#include "controller/expected.h"
#include "controller/ports.h"

namespace sluice::adapters {

struct ReaderOptions {
  unsigned threads = 0;                // 0: one per core
  std::size_t slice_bytes = 4u << 20;  // bytes each thread parses per round
  // Parse the file in place through mmap (no copy); false: read() into buffers, which is also
  // what happens when a file cannot be mapped.
  bool map_files = true;
};

// Reads one file. With `resume` of the same identity it continues from there; a file that was
// truncated or replaced (other identity, or shorter than the checkpoint) is read from its start.
Expected<FileCheckpoint> read_accounting_file(const std::string& path, const FileCheckpoint* resume,
                                              PartitionedSink& sink, ReadStats& stats,
                                              const ReaderOptions& options = {});

// Files matching the globs, sorted by name within each glob, each listed once.
Expected<std::vector<std::string>> expand_globs(const std::vector<std::string>& globs);

// The accounting source of a configuration: follows rotation across the globs by identity.
class AccountingFiles : public AccountingSource {
 public:
  explicit AccountingFiles(std::vector<std::string> globs, ReaderOptions options = {});
  Expected<ReadOutcome> read_new(const std::vector<FileCheckpoint>& known,
                                 PartitionedSink& sink) override;

 private:
  std::vector<std::string> globs_;
  ReaderOptions options_;
};

}  // namespace sluice::adapters
