#pragma once
// Domain types shared by every layer: what an accounting record says, and how a deferral is read.

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

using UnixSeconds = std::int64_t;

// The accounting record types sluice uses; PowerMTA's others (r, f, rb, rs) are skipped.
enum class RecordType : std::uint8_t { delivered, bounced, deferred, deferred_queue };

// What a deferral says about the sender. Only connection, rate and reputation are pool signals.
enum class DeferralClass : std::uint8_t {
  none,
  connection,
  rate,
  reputation,
  recipient,
  config,
  other
};
inline constexpr int kDeferralClassCount = 7;

std::string_view to_string(DeferralClass c);
std::optional<DeferralClass> parse_deferral_class(std::string_view name);
bool is_throttle_signal(DeferralClass c);

// One accounting line; the views point into the reader's buffer and live for one callback.
struct AccountingRecord {
  RecordType type = RecordType::delivered;
  UnixSeconds time_logged = 0;
  std::string_view rcpt;
  std::string_view dsn_diag;
  std::string_view dsn_mta;
  std::string_view vmta;
  std::string_view queue;
  std::string_view vmta_pool;
  std::string_view source_ip;
};

}  // namespace sluice
