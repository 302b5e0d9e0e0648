#include "controller/isp_catalog.h"

#include <string.h>

#include <re2/re2.h>

#include <algorithm>

namespace sluice {

namespace {

DeferralRule rule(std::string pattern, DeferralClass c) {
  return DeferralRule{std::move(pattern), c, "built-in"};
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

// What "hotmail.*" may stand for after "hotmail.": a TLD ("fr") or a two-label public suffix
// ("co.uk", "com.br"), never a whole domain such as "example.org".
bool is_public_suffix_like(std::string_view rest) {
  if (rest.empty()) return false;
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return true;
  return dot <= 3 && rest.find('.', dot + 1) == std::string_view::npos && dot + 1 < rest.size();
}

}  // namespace

std::vector<IspSpec> builtin_isp_specs() {
  using C = DeferralClass;
  return {
      {"gmail",
       {"gmail.com", "googlemail.com"},
       {".google.com", ".googlemail.com"},
       {rule(R"(421[ -]4\.7\.(0|28) .*unusual rate of unsolicited mail)", C::reputation),
        rule(R"(421[ -]4\.7\.0 .*try again later, closing connection)", C::connection),
        rule(R"(450[ -]4\.2\.1 .*receiving mail (too quickly|at a rate))", C::recipient)},
       "built-in"},
      {"outlook",
       {"outlook.com", "hotmail.*", "live.*", "msn.com"},
       {".protection.outlook.com", ".outlook.com", ".hotmail.com"},
       {rule(R"(421 RP-001|451 4\.7\.65[01])", C::reputation), rule(R"(421 RP-002)", C::rate),
        rule(R"(421 RP-003|451 4\.7\.652)", C::connection)},
       "built-in"},
      {"yahoo",
       {"yahoo.*", "ymail.com", "aol.com", "rocketmail.com"},
       {".yahoodns.net", ".yahoo.com", ".aol.com"},
       {rule(R"(421 4\.7\.0 \[(TSS0[45]|IPTS0[45]|TS0[1-3])\])", C::reputation)},
       "built-in"},
      {"gmx",
       {"gmx.*", "web.de"},
       {".gmx.net", ".web.de"},
       {rule(R"(421.*too many connections)", C::connection)},
       "built-in"},
      {"orange",
       {"orange.fr", "wanadoo.fr"},
       {".orange.fr", ".wanadoo.fr"},
       {rule(R"(OFR004_104|trop de connexions)", C::connection),
        rule(R"(OFR004_105|OFR_999|service refus)", C::reputation)},
       "built-in"},
      {"generic", {}, {}, {}, "built-in"},
  };
}

std::vector<DeferralRule> common_deferral_rules() {
  using C = DeferralClass;
  return {
      rule(R"(452[ -]4\.2\.2|over ?quota|mailbox (is )?full|insufficient storage)", C::recipient),
      rule(
          R"([0-9]{3}[ -]4\.7\.2[67]([^0-9]|$)|tls (is )?required|must issue a starttls|starttls|certificate|)"
          R"(dns (lookup )?(error|failure)|host not found|name service error|)"
          R"(authentication (required|failed)|unauthenticated)",
          C::config),
      rule(R"(too many (concurrent )?connections|connection limit)", C::connection),
      rule(R"(rate limit|too many messages|sending too fast|too quickly)", C::rate),
  };
}

std::vector<IspSpec> merge_isp_specs(std::vector<IspSpec> base, const std::vector<IspSpec>& extra) {
  for (const IspSpec& spec : extra) {
    auto same = std::find_if(base.begin(), base.end(),
                             [&](const IspSpec& b) { return b.name == spec.name; });
    if (same == base.end()) {
      // New ISPs go before "generic" so that lookups read the same in both orders.
      auto generic = std::find_if(base.begin(), base.end(),
                                  [](const IspSpec& b) { return b.name == "generic"; });
      base.insert(generic, spec);
      continue;
    }
    if (!spec.domains.empty()) same->domains = spec.domains;
    if (!spec.mx_suffixes.empty()) same->mx_suffixes = spec.mx_suffixes;
    if (!spec.rules.empty()) same->rules = spec.rules;
    same->origin = spec.origin;
  }
  return base;
}

struct IspCatalog::CompiledIsp {
  std::string name;
  // Tried in order; each search stops at its first match and skips ahead on the literal a
  // pattern starts with, which a combined RE2::Set cannot do (measured: a third faster).
  std::vector<std::unique_ptr<RE2>> rules;
  std::vector<DeferralClass> classes;  // by rule index
};

IspCatalog::IspCatalog() = default;
IspCatalog::~IspCatalog() = default;

std::size_t IspCatalog::size() const {
  return isps_.size();
}
const std::string& IspCatalog::name(IspId id) const {
  return isps_[id].name;
}

Expected<std::shared_ptr<const IspCatalog>> IspCatalog::build(const std::vector<IspSpec>& specs) {
  if (specs.size() > 250) return Error{"too many ISPs (at most 250)"};
  std::shared_ptr<IspCatalog> catalog(new IspCatalog());
  const std::vector<DeferralRule> common = common_deferral_rules();
  RE2::Options options;
  options.set_case_sensitive(false);
  options.set_log_errors(false);
  bool has_generic = false;
  for (const IspSpec& spec : specs) {
    const auto id = static_cast<IspId>(catalog->isps_.size());
    CompiledIsp isp;
    isp.name = spec.name;
    auto add_rules = [&](const std::vector<DeferralRule>& rules) -> Status {
      for (const DeferralRule& r : rules) {
        auto compiled = std::make_unique<RE2>(r.pattern, options);
        if (!compiled->ok()) {
          return Error{r.origin + ": ISP " + spec.name + ": bad pattern '" + r.pattern +
                       "': " + compiled->error()};
        }
        isp.rules.push_back(std::move(compiled));
        isp.classes.push_back(r.deferral_class);
      }
      return ok_status();
    };
    if (Status s = add_rules(spec.rules); !s) return s.error();
    if (Status s = add_rules(common); !s) return s.error();
    for (const std::string& domain : spec.domains) {
      std::string d = lowercase(domain);
      if (d.size() > 2 && d.ends_with(".*")) {
        catalog->domain_prefixes_.emplace_back(d.substr(0, d.size() - 1), id);
      } else {
        catalog->exact_domains_.emplace(std::move(d), id);
      }
    }
    for (const std::string& suffix : spec.mx_suffixes) {
      std::string s = lowercase(suffix);
      if (!s.starts_with('.')) s.insert(s.begin(), '.');
      catalog->mx_suffixes_.emplace_back(std::move(s), id);
    }
    if (spec.name == "generic") {
      catalog->generic_ = id;
      has_generic = true;
    }
    catalog->isps_.push_back(std::move(isp));
  }
  if (!has_generic) return Error{"the ISP catalog has no 'generic' entry"};
  return std::shared_ptr<const IspCatalog>(std::move(catalog));
}

std::shared_ptr<const IspCatalog> IspCatalog::builtin() {
  static const std::shared_ptr<const IspCatalog> catalog = build(builtin_isp_specs()).value();
  return catalog;
}

std::optional<IspId> IspCatalog::find(std::string_view name) const {
  for (std::size_t i = 0; i < isps_.size(); ++i) {
    if (isps_[i].name == name) return static_cast<IspId>(i);
  }
  return std::nullopt;
}

std::optional<IspId> IspCatalog::match_domain(std::string_view domain) const {
  if (domain.empty()) return std::nullopt;
  const std::string d = lowercase(domain);
  if (auto it = exact_domains_.find(d); it != exact_domains_.end()) return it->second;
  for (const auto& [prefix, id] : domain_prefixes_) {
    if (d.starts_with(prefix) && is_public_suffix_like(std::string_view(d).substr(prefix.size()))) {
      return id;
    }
  }
  return std::nullopt;
}

std::optional<IspId> IspCatalog::match_mx_host(std::string_view host) const {
  if (host.empty()) return std::nullopt;
  std::string h(1, '.');
  h += lowercase(host);
  for (const auto& [suffix, id] : mx_suffixes_) {
    if (h.ends_with(suffix)) return id;
  }
  return std::nullopt;
}

DeferralClass IspCatalog::classify_deferral(IspId isp, std::string_view diag) const {
  const CompiledIsp& compiled = isps_[isp];
  const re2::StringPiece text(diag.data(), diag.size());
  for (std::size_t i = 0; i < compiled.rules.size(); ++i) {
    if (RE2::PartialMatch(text, *compiled.rules[i])) return compiled.classes[i];
  }
  return DeferralClass::other;
}

std::string_view recipient_domain(std::string_view rcpt) {
  // memrchr: glibc's is vectorised, string_view::rfind goes a byte at a time.
  const void* at = rcpt.empty() ? nullptr : ::memrchr(rcpt.data(), '@', rcpt.size());
  if (at == nullptr) return {};
  std::string_view domain = rcpt.substr(static_cast<const char*>(at) - rcpt.data() + 1);
  if (!domain.empty() && domain.back() == '>') domain.remove_suffix(1);
  return domain;
}

std::string_view queue_domain(std::string_view queue) {
  return queue.substr(0, queue.find('/'));
}

std::string_view mx_host(std::string_view dsn_mta) {
  std::string_view host = dsn_mta.substr(0, dsn_mta.find(' '));
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

}  // namespace sluice
