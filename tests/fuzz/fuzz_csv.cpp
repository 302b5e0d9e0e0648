// Fuzzes the accounting CSV reader. Besides "no crash", it checks the streaming promise: reading
// the input in pieces, as a file that grows, yields exactly what one read of the whole yields.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/accounting_parser.h"

namespace {

struct Counting : sluice::RecordSink {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  void on_record(const sluice::AccountingRecord& r) override {
    ++records;
    bytes += r.rcpt.size() + r.dsn_diag.size() + r.vmta.size() + r.queue.size() +
             r.vmta_pool.size() + r.source_ip.size() + r.dsn_mta.size();
  }
};

struct Outcome {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t malformed = 0;
  std::uint64_t line = 0;
};

// Feeds `data` to the parser in steps of `step` bytes, keeping the unconsumed tail, like the
// file reader does between reads.
Outcome read_in_steps(std::string_view data, std::size_t step) {
  sluice::adapters::ParserState state;
  sluice::ReadStats stats;
  Counting sink;
  std::string buffer;
  std::size_t fed = 0;
  while (true) {
    const std::size_t n = std::min(step, data.size() - fed);
    buffer.append(data.substr(fed, n));
    fed += n;
    const bool at_eof = fed == data.size();
    const auto progress = sluice::adapters::parse_accounting(buffer, buffer.size(), at_eof, state,
                                                             sink, stats, "fuzz");
    if (progress.consumed > buffer.size()) std::abort();
    buffer.erase(0, progress.consumed);
    if (at_eof) break;
  }
  return Outcome{sink.records, sink.bytes, stats.malformed_total(), state.line};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Outcome whole = read_in_steps(input, size + 1);
  // Steps shorter than a line exercise every "record continues past the data" path.
  const std::size_t step = 1 + (size > 0 ? data[0] % 97 : 0);
  const Outcome pieces = read_in_steps(input, step);
  if (whole.records != pieces.records || whole.bytes != pieces.bytes ||
      whole.malformed != pieces.malformed || whole.line != pieces.line) {
    std::abort();
  }
  return 0;
}
