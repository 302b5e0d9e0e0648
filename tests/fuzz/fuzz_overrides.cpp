// Fuzzes the override file parser. An accepted entry's names reach fragment paths and log lines,
// so each must pass is_valid_name; what the parser promises about the values is checked too.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/overrides.h"

namespace {

using sluice::config::kMaxSmtpOut;

void require(bool ok) {
  if (!ok) std::abort();
}

bool optional_name(const std::string& name) {
  return name.empty() || sluice::config::is_valid_name(name);
}

bool one_line(const std::string& text) {
  return text.find_first_of("\r\n") == std::string::npos;
}

bool in_range(const std::optional<std::int64_t>& v) {
  return !v || (*v >= 1 && *v <= kMaxSmtpOut);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const sluice::config::OverrideLoad load = sluice::config::parse_overrides(text, "fuzz.toml");
  if (!load.file) {
    require(!load.error.empty());  // a refusal always says why
    return 0;
  }
  require(one_line(load.file->freeze_reason));
  for (const auto& e : load.file->overrides) {
    require(sluice::config::is_valid_name(e.pool) && optional_name(e.isp) && optional_name(e.vmta));
    require(one_line(e.reason) && !e.reason.empty());
    switch (e.kind) {
      case sluice::config::OverrideKind::pin:
        require(e.max_smtp_out >= 1 && e.max_smtp_out <= kMaxSmtpOut);
        break;
      case sluice::config::OverrideKind::freeze:
        break;
      case sluice::config::OverrideKind::bounds:
        require((e.floor || e.ceiling) && in_range(e.floor) && in_range(e.ceiling));
        require(!e.floor || !e.ceiling || *e.floor <= *e.ceiling);
        break;
    }
  }
  for (const auto& t : load.file->tiers) {
    require(sluice::config::is_valid_name(t.pool) && sluice::config::is_valid_name(t.isp));
    require(t.tier == "high" || t.tier == "medium" || t.tier == "low" || t.tier == "warming");
    require(one_line(t.source));
  }
  return 0;
}
