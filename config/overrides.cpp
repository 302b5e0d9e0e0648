#include "config/overrides.h"

#include <toml++/toml.h>

#include <chrono>
#include <map>
#include <tuple>

#include "config/toml_reader.h"

namespace sluice::config {

namespace {

using detail::Invalid;
using detail::rendered;
using detail::Scope;
using detail::shown;

// Reasons end up in one-line log messages, status rows and fragment comments.
bool is_one_line(const std::string& text) {
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::int64_t unix_seconds(const toml::date& d, const toml::time& t, std::int64_t offset_minutes) {
  const std::chrono::sys_days day =
      std::chrono::year{d.year} / std::chrono::month{d.month} / std::chrono::day{d.day};
  return day.time_since_epoch().count() * 86400 + t.hour * 3600 + t.minute * 60 + t.second -
         offset_minutes * 60;
}

// A TOML date-time (native, or written as a string) as unix seconds; a local one is refused.
std::optional<std::int64_t> time_of(const toml::node& node) {
  if (const auto* s = node.as_string()) return parse_utc_time(s->get());
  if (const auto* dt = node.as_date_time()) {
    const toml::date_time& v = dt->get();
    if (!v.offset) return std::nullopt;
    return unix_seconds(v.date, v.time, v.offset->minutes);
  }
  if (const auto* d = node.as_date()) return unix_seconds(d->get(), toml::time{}, 0);
  return std::nullopt;
}

class OverrideReader : public detail::TomlReader {
 public:
  using TomlReader::TomlReader;

  OverrideFile read(const toml::table& root) const {
    OverrideFile file;
    file.source = source_;
    only_keys(root, {"global", "override", "tier"}, "");
    if (const toml::table* global = table(root, "global")) {
      only_keys(*global, {"freeze", "reason"}, "[global]");
      file.global_line = line(*global);
      if (const toml::node* freeze = global->get("freeze")) {
        if (!freeze->is_boolean()) {
          fail(freeze, "[global] 'freeze' must be true or false, not " + rendered(*freeze));
        }
        file.freeze_all = freeze->as_boolean()->get();
      }
      if (auto reason = string(*global, "reason")) {
        if (!is_one_line(*reason)) {
          fail(global->get("reason"), "[global] 'reason' must be one line of text, not " +
                                          rendered(*global->get("reason")));
        }
        file.freeze_reason = *reason;
      }
    }
    if (const toml::array* entries = array_of_tables(root, "override")) {
      for (const toml::node& node : *entries) file.overrides.push_back(read_override(node));
    }
    if (const toml::array* tiers = array_of_tables(root, "tier")) {
      for (const toml::node& node : *tiers) file.tiers.push_back(read_tier(node));
    }
    refuse_duplicates(file);
    return file;
  }

 private:
  OverrideEntry read_override(const toml::node& node) const {
    const toml::table& t = *node.as_table();
    only_keys(
        t, {"pool", "isp", "vmta", "max_smtp_out", "freeze", "floor", "ceiling", "until", "reason"},
        "[[override]]");
    OverrideEntry e;
    e.line = line(t);
    if (!t.contains("pool")) fail(&t, "[[override]] needs 'pool'");
    e.pool = name(t, "pool", "[[override]]: pool");
    if (t.contains("isp")) e.isp = name(t, "isp", "[[override]]: ISP");
    if (t.contains("vmta")) e.vmta = name(t, "vmta", "[[override]]: VMTA");
    const Scope scope{"", "[[override]]"};
    const std::optional<std::int64_t> pin = integer(t, "max_smtp_out", scope, 1, kMaxSmtpOut);
    e.floor = integer(t, "floor", scope, 1, kMaxSmtpOut);
    e.ceiling = integer(t, "ceiling", scope, 1, kMaxSmtpOut);
    bool freeze = false;
    if (const toml::node* f = t.get("freeze")) {
      if (!f->is_boolean() || !f->as_boolean()->get()) {
        fail(f, "[[override]] 'freeze' can only be true (remove the entry to unfreeze), not " +
                    rendered(*f));
      }
      freeze = true;
    }
    const int kinds = (pin ? 1 : 0) + (freeze ? 1 : 0) + (e.floor || e.ceiling ? 1 : 0);
    if (kinds != 1) {
      fail(&t, "[[override]] for pool '" + e.pool +
                   "' needs exactly one of max_smtp_out, freeze = true, or floor/ceiling");
    }
    if (pin) {
      e.kind = OverrideKind::pin;
      e.max_smtp_out = *pin;
    } else if (freeze) {
      e.kind = OverrideKind::freeze;
    } else {
      e.kind = OverrideKind::bounds;
      if (e.floor && e.ceiling && *e.floor > *e.ceiling) {
        fail(t.get("ceiling"), "[[override]] 'ceiling' " + std::to_string(*e.ceiling) +
                                   " is below its 'floor' " + std::to_string(*e.floor));
      }
    }
    if (const toml::node* until = t.get("until")) {
      e.until = time_of(*until);
      if (!e.until) {
        fail(until,
             "[[override]] 'until' must be a time with its offset, such as "
             "\"2026-12-01T00:00:00Z\", not " +
                 rendered(*until));
      }
    }
    const std::optional<std::string> reason = string(t, "reason");
    if (!reason || reason->find_first_not_of(" \t\r\n") == std::string::npos) {
      fail(&t, "[[override]] for pool '" + e.pool + "' needs a 'reason'");
    }
    if (!is_one_line(*reason)) {
      fail(t.get("reason"),
           "[[override]] 'reason' must be one line of text, not " + rendered(*t.get("reason")));
    }
    e.reason = *reason;
    return e;
  }

  TierEntry read_tier(const toml::node& node) const {
    const toml::table& t = *node.as_table();
    only_keys(t, {"pool", "isp", "tier", "source"}, "[[tier]]");
    TierEntry e;
    e.line = line(t);
    if (!t.contains("pool")) fail(&t, "[[tier]] needs 'pool'");
    e.pool = name(t, "pool", "[[tier]]: pool");
    if (!t.contains("isp")) fail(&t, "[[tier]] for pool '" + e.pool + "' needs 'isp'");
    e.isp = name(t, "isp", "[[tier]]: ISP");
    const std::optional<std::string> tier = string(t, "tier");
    if (!tier) fail(&t, "[[tier]] for pool '" + e.pool + "' needs 'tier'");
    if (!detail::kTierNames.contains(*tier)) {
      fail(t.get("tier"),
           "[[tier]] 'tier' must be high, medium, low or warming, not '" + shown(*tier) + "'");
    }
    e.tier = *tier;
    const std::optional<std::string> source = string(t, "source");
    if (!source || source->find_first_not_of(" \t\r\n") == std::string::npos) {
      fail(&t, "[[tier]] for pool '" + e.pool + "' needs a 'source' (where the tier comes from)");
    }
    if (!is_one_line(*source)) {
      fail(t.get("source"),
           "[[tier]] 'source' must be one line of text, not " + rendered(*t.get("source")));
    }
    e.source = *source;
    return e;
  }

  [[noreturn]] void fail_at(std::int64_t line, const std::string& message) const {
    throw Invalid{source_ + ":" + std::to_string(line) + ": " + message};
  }

  void refuse_duplicates(const OverrideFile& file) const {
    std::map<std::tuple<std::string, std::string, std::string>, std::int64_t> seen;
    for (const OverrideEntry& e : file.overrides) {
      auto [at, fresh] = seen.emplace(std::tuple{e.pool, e.isp, e.vmta}, e.line);
      if (!fresh) {
        fail_at(e.line, "a second [[override]] for " + scope_text(e.pool, e.isp, e.vmta) +
                            " (the first is on line " + std::to_string(at->second) + ")");
      }
    }
    std::map<std::pair<std::string, std::string>, std::int64_t> tiers;
    for (const TierEntry& e : file.tiers) {
      auto [at, fresh] = tiers.emplace(std::pair{e.pool, e.isp}, e.line);
      if (!fresh) {
        fail_at(e.line, "a second [[tier]] for " + scope_text(e.pool, e.isp, "") +
                            " (the first is on line " + std::to_string(at->second) + ")");
      }
    }
  }

  static std::string scope_text(const std::string& pool, const std::string& isp,
                                const std::string& vmta) {
    std::string out = "pool '" + pool + "'";
    out += isp.empty() ? ", every ISP" : ", ISP '" + isp + "'";
    if (!vmta.empty()) out += ", VMTA '" + vmta + "'";
    return out;
  }
};

}  // namespace

std::optional<std::int64_t> parse_utc_time(std::string_view text) {
  if (text.size() == 10) {
    try {
      toml::table t = toml::parse("t = " + std::string(text));
      if (const auto* d = t.get("t")->as_date()) return unix_seconds(d->get(), toml::time{}, 0);
    } catch (const toml::parse_error&) {
    }
    return std::nullopt;
  }
  // TOML's own date-time grammar (RFC 3339, a space allowed for the T): the library parses it.
  if (text.size() < 19 || text.size() > 40 ||
      text.find_first_of("\"'\n\r#=[]{}") != std::string_view::npos) {
    return std::nullopt;
  }
  try {
    toml::table t = toml::parse("t = " + std::string(text));
    const auto* dt = t.get("t")->as_date_time();
    if (dt == nullptr || !dt->get().offset) return std::nullopt;
    const toml::date_time& v = dt->get();
    return unix_seconds(v.date, v.time, v.offset->minutes);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

OverrideLoad parse_overrides(std::string_view text, const std::string& source) {
  OverrideLoad result;
  result.error = detail::parse_and_read(text, source, [&](const toml::table& root) {
    result.file = OverrideReader(source).read(root);
  });
  return result;
}

}  // namespace sluice::config
