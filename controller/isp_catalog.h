#pragma once
// Which ISP a destination belongs to, and what class a deferral text is.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "controller/domain.h"
#include "controller/expected.h"

namespace re2 {
class RE2;
}

namespace sluice {

using IspId = std::uint8_t;

struct DeferralRule {
  std::string pattern;  // RE2 syntax, matched case-insensitively anywhere in dsnDiag
  DeferralClass deferral_class = DeferralClass::other;
  std::string origin;  // where the rule comes from ("built-in", "sluice.toml:42"), for errors
};

struct IspSpec {
  std::string name;
  std::vector<std::string> domains;      // "gmail.com", or "hotmail.*" for every TLD
  std::vector<std::string> mx_suffixes;  // ".google.com": MX host suffixes (hosted domains)
  std::vector<DeferralRule> rules;       // ordered: the first match wins
  std::string origin;
};

// The built-in catalog (gmail, outlook, yahoo, gmx, orange, generic) from the deferral taxonomy.
std::vector<IspSpec> builtin_isp_specs();
// Rules that apply to every ISP after its own: recipient, config and generic throttle texts.
std::vector<DeferralRule> common_deferral_rules();

// Operator specs add ISPs or replace the parts (domains, mx suffixes, rules) they set of a
// built-in one with the same name.
std::vector<IspSpec> merge_isp_specs(std::vector<IspSpec> base, const std::vector<IspSpec>& extra);

class IspCatalog {
 public:
  static Expected<std::shared_ptr<const IspCatalog>> build(const std::vector<IspSpec>& specs);
  static std::shared_ptr<const IspCatalog> builtin();

  ~IspCatalog();
  IspCatalog(const IspCatalog&) = delete;
  IspCatalog& operator=(const IspCatalog&) = delete;

  std::optional<IspId> match_domain(std::string_view domain) const;
  std::optional<IspId> match_mx_host(std::string_view host) const;
  IspId generic() const { return generic_; }
  // Thread-safe; RE2 runs in time linear in the text, whatever the text holds.
  DeferralClass classify_deferral(IspId isp, std::string_view diag) const;

  std::size_t size() const;
  const std::string& name(IspId id) const;
  std::optional<IspId> find(std::string_view name) const;

 private:
  struct CompiledIsp;
  IspCatalog();

  std::vector<CompiledIsp> isps_;
  std::unordered_map<std::string, IspId> exact_domains_;
  std::vector<std::pair<std::string, IspId>> domain_prefixes_;  // "hotmail." from "hotmail.*"
  std::vector<std::pair<std::string, IspId>> mx_suffixes_;
  IspId generic_ = 0;
};

// Splits "user@Example.COM" into "Example.COM"; "gmail.com/vmta" into "gmail.com".
std::string_view recipient_domain(std::string_view rcpt);
std::string_view queue_domain(std::string_view queue);
// "gmail-smtp-in.l.google.com (142.250.1.27)" -> "gmail-smtp-in.l.google.com".
std::string_view mx_host(std::string_view dsn_mta);

}  // namespace sluice
