#pragma once
// Where the accounting reader delivers records. The reader may parse chunks of a file on
// several threads: each chunk goes to its own partial sink, absorbed back in file order.

#include <cstddef>
#include <memory>

#include "controller/domain.h"

namespace sluice {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void on_record(const AccountingRecord& record) = 0;
};

class PartitionedSink : public RecordSink {
 public:
  // Partials of one `lane` are never in use at the same time, so they may share caches that
  // outlive them (a reader thread's lane keeps its caches warm from one chunk to the next).
  virtual std::unique_ptr<PartitionedSink> make_partial(std::size_t lane) = 0;
  // `partial` was made by this sink's make_partial(); it is absorbed in file order.
  virtual void absorb(PartitionedSink& partial) = 0;
};

}  // namespace sluice
