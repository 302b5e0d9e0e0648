// Fuzzes the sluice.toml loader. Besides "no crash", every name a loaded configuration holds
// reaches PowerMTA's configuration and fragment paths, so each must pass is_valid_name.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config.h"

namespace {

void require_name(const std::string& name) {
  if (!sluice::config::is_valid_name(name)) std::abort();
}

void require_policy_names(const sluice::config::PolicyTable& policy) {
  for (const auto& [isp, caps] : policy.caps) require_name(isp);
  for (const auto& [isp, rates] : policy.warmup_rates) require_name(isp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const sluice::config::LoadResult result = sluice::config::load_string(text, "fuzz.toml");
  if (!result.config) {
    if (result.error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  const sluice::config::Config& config = *result.config;
  require_policy_names(config.policy);
  for (const auto& pool : config.pools) {
    require_name(pool.name);
    for (const std::string& vmta : pool.vmtas) require_name(vmta);
    for (const std::string& isp : pool.isps) require_name(isp);
    require_policy_names(pool.policy);
  }
  for (const auto& isp : config.isps) require_name(isp.name);
  return 0;
}
