// Fuzzes the fragment reader. A value it returns becomes a pair's max-smtp-out, so it must be
// 1..1000; and a fragment sluice rendered itself must read back as exactly its value, whatever
// the reason text (the fuzzer's input) put in its comment line.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "controller/fragment.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const std::optional<int> v = sluice::fragment_max_smtp_out(input)) {
    if (*v < 1 || *v > 1000) std::abort();
  }
  if (size < 3) return 0;
  sluice::PairState state;
  state.pool = "fuzz-pool";
  state.isp = "gmail";
  state.max_smtp_out = 1 + (data[0] | data[1] << 8) % 1000;
  state.tier = static_cast<sluice::Tier>(data[2] % 4);
  const sluice::PolicyParams policy;
  const std::string fragment = sluice::render_fragment(state, policy, 1795774800, input.substr(3));
  if (sluice::fragment_max_smtp_out(fragment) != state.max_smtp_out) std::abort();
  return 0;
}
