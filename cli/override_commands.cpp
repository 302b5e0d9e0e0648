#include "cli/override_commands.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "adapters/atomic_file.h"
#include "adapters/time_parse.h"
#include "config/file_safety.h"
#include "config/override_edit.h"
#include "controller/time_format.h"
#include "state/sqlite_store.h"
#include "state/writer_lock.h"

namespace sluice::cli {

namespace {

using Json = nlohmann::ordered_json;
constexpr int kRuntimeError = 1;
constexpr int kUsageError = 2;
// A hand edit between our read and our write makes us start over; more than a few in a row
// means someone keeps saving: give up rather than spin.
constexpr int kAttempts = 3;

int fail(const std::string& message, int code = kRuntimeError) {
  std::fprintf(stderr, "sluice: error: %s\n", message.c_str());
  return code;
}

struct FileText {
  bool exists = false;
  std::string text;
  mode_t mode = 0644;
};

Expected<FileText> read_text(const std::string& path) {
  FileText f;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return f;
    return Error{path + ": " + std::strerror(errno)};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot be read"};
  std::ostringstream text;
  text << in.rdbuf();
  f.exists = true;
  f.text = text.str();
  f.mode = st.st_mode & 07777;
  return f;
}

std::string user_name() {
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') return sudo;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) return pw->pw_name;
  return "uid " + std::to_string(::geteuid());
}

// --until: a time, or a duration from now ("4h").
Expected<std::optional<std::int64_t>> resolve_until(const std::string& text, UnixSeconds now) {
  if (text.empty()) return std::optional<std::int64_t>();
  std::optional<UnixSeconds> until = adapters::parse_time(text);
  if (!until) {
    if (std::optional<UnixSeconds> d = adapters::parse_duration(text)) until = now + *d;
  }
  if (!until) {
    return Error{"--until: '" + text +
                 "' is neither a time (2026-12-01T00:00:00Z) nor a duration from now (4h)"};
  }
  if (*until <= now) {
    return Error{"--until: " + format_time(*until) + " is not after now (" + format_time(now) +
                 ")"};
  }
  return std::optional<std::int64_t>(*until);
}

std::string scope_of(const Override& o) {
  return o.pool + "/" + (o.isp.empty() ? "*" : o.isp) + (o.vmta.empty() ? "" : "/" + o.vmta);
}

using Edit = std::function<config::EditResult(const std::string& text)>;

// Reads, edits, checks and writes the file under its lock; starts over when someone saved it
// by hand meanwhile, so that their edit is never lost.
int edit_file(const config::Config& config, const adapters::KnownPools& known, const Edit& edit) {
  const std::string& path = config.overrides;
  Expected<state::WriterLock> lock = state::WriterLock::acquire(path);
  if (!lock) return fail(lock.error().message);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    Expected<FileText> current = read_text(path);
    if (!current) return fail(current.error().message);
    const config::EditResult result = edit(current->text);
    if (!result.error.empty()) {
      return fail(result.error + " (fix the file by hand first; nothing was written)");
    }
    Expected<Overrides> checked = adapters::parse_checked_overrides(result.text, path, known);
    if (!checked) return fail(checked.error().message + " (nothing was written)");
    if (result.text == current->text) {
      std::printf("%s: nothing to change\n", path.c_str());
      return 0;
    }
    Expected<FileText> again = read_text(path);
    if (!again) return fail(again.error().message);
    if (again->text != current->text || again->exists != current->exists) continue;
    // The mode is set explicitly (0644 for a new file), never from the umask, and without write
    // for group and others: the loop refuses a file they could change (config::why_unsafe).
    const mode_t mode = current->mode & ~mode_t{022};
    if (Status s = adapters::write_file_atomically(path, result.text, static_cast<int>(mode)); !s) {
      return fail(s.error().message);
    }
    for (const std::string& change : result.changes) std::printf("%s\n", change.c_str());
    if (mode != current->mode) {
      std::printf("%s: was writable by group or others (mode %04o), now mode %04o\n", path.c_str(),
                  static_cast<unsigned>(current->mode), static_cast<unsigned>(mode));
    }
    // What the mode cannot fix (its directory): written, but not in force until fixed.
    if (std::optional<std::string> why = config::why_unsafe(path)) {
      return fail(*why + " (written, but the loop refuses it until this is fixed)");
    }
    std::printf("%s written: it takes effect at the next cycle\n", path.c_str());
    return 0;
  }
  return fail(path + " keeps changing while sluice edits it; nothing was written");
}

int list(const config::Config& config, const adapters::KnownPools& known, bool json,
         UnixSeconds now) {
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open_read_only(config.database);
  const ShownOverrides shown = overrides_for_display(config, known, store ? store->get() : nullptr);
  if (json) {
    std::printf("%s\n", overrides_json(shown, now).dump(2).c_str());
  } else {
    const std::string text = overrides_text(shown, now);
    std::fputs(text.empty() ? "no overrides\n" : text.c_str(), stdout);
  }
  return shown.error.empty() ? 0 : kRuntimeError;
}

}  // namespace

ShownOverrides overrides_for_display(const config::Config& config,
                                     const adapters::KnownPools& known, StateStore* store) {
  ShownOverrides shown;
  adapters::OverrideFile file(config.overrides, known);
  OverrideRead read = file.read();
  if (read.overrides) {
    shown.overrides = std::move(*read.overrides);
    return shown;
  }
  shown.error = read.error;
  if (store == nullptr) return shown;
  Expected<std::optional<std::string>> last = store->last_override_text();
  if (!last || !*last) return shown;
  OverrideRead again = file.parse(**last);
  if (again.overrides) shown.overrides = std::move(*again.overrides);
  return shown;
}

Json overrides_json(const ShownOverrides& shown, UnixSeconds now) {
  Json entries = Json::array();
  for (const Override& o : shown.overrides.entries) {
    Json e;
    e["pool"] = o.pool;
    e["isp"] = o.isp.empty() ? Json() : Json(o.isp);
    e["vmta"] = o.vmta.empty() ? Json() : Json(o.vmta);
    e["kind"] = to_string(o.kind);
    e["max_smtp_out"] = o.kind == OverrideKind::pin ? Json(o.value) : Json();
    e["floor"] = o.floor ? Json(*o.floor) : Json();
    e["ceiling"] = o.ceiling ? Json(*o.ceiling) : Json();
    e["until"] = o.until ? Json(format_time(*o.until)) : Json();
    e["in_force"] = o.in_force(now);
    e["reason"] = o.reason;
    e["line"] = o.line;
    entries.push_back(e);
  }
  Json tiers = Json::array();
  for (const TierOverride& t : shown.overrides.tiers) {
    tiers.push_back({{"pool", t.pool},
                     {"isp", t.isp},
                     {"tier", to_string(t.tier)},
                     {"source", t.source},
                     {"line", t.line}});
  }
  return {{"freeze_all", shown.overrides.freeze_all},
          {"freeze_reason", shown.overrides.freeze_reason},
          {"error", shown.error.empty() ? Json() : Json(shown.error)},
          {"entries", entries},
          {"tiers", tiers}};
}

std::string overrides_text(const ShownOverrides& shown, UnixSeconds now) {
  std::string out;
  if (!shown.error.empty()) {
    out += "override file rejected, the last valid overrides stay in force: " + shown.error + "\n";
  }
  if (shown.overrides.freeze_all) {
    out += "KILL SWITCH: every change is stopped (" +
           (shown.overrides.freeze_reason.empty() ? std::string("no reason given")
                                                  : shown.overrides.freeze_reason) +
           ")\n";
  }
  for (const Override& o : shown.overrides.entries) {
    out += (o.in_force(now) ? "override " : "expired  ") + scope_of(o) + ": " + o.describe() +
           " [line " + std::to_string(o.line) + "]\n";
  }
  for (const TierOverride& t : shown.overrides.tiers) {
    out += "tier     " + t.pool + "/" + t.isp + ": " + std::string(to_string(t.tier)) + " (" +
           t.source + ") [line " + std::to_string(t.line) + "]\n";
  }
  return out;
}

int run_override(const GlobalOptions& global, const OverrideArgs& args) {
  Expected<config::Config> config = load_config(global);
  if (!config) return fail(config.error().message);
  Expected<std::shared_ptr<const IspCatalog>> catalog = build_catalog(*config);
  if (!catalog) return fail(catalog.error().message);
  Expected<std::vector<ManagedPair>> pairs = managed_pairs(*config, **catalog);
  if (!pairs) return fail(pairs.error().message);
  const adapters::KnownPools known = known_pools(*config, *pairs);
  Expected<UnixSeconds> now = resolve_now(global);
  if (!now) return fail(now.error().message);

  if (args.action == "list") return list(*config, known, global.json, *now);

  const std::string& source = config->overrides;
  const std::string by = "set with sluice override by " + user_name() + " at " + format_time(*now);
  const auto optional = [](const std::string& s) {
    return s.empty() ? std::optional<std::string>() : std::optional<std::string>(s);
  };

  if (args.all) {
    if (args.action != "freeze" && args.action != "unfreeze") {
      return fail("--all goes with freeze and unfreeze only", kUsageError);
    }
    const bool freeze = args.action == "freeze";
    const std::string reason = args.reason.empty() ? by : args.reason;
    return edit_file(*config, known, [&](const std::string& text) {
      return config::set_global_freeze(text, freeze, freeze ? reason : "", source);
    });
  }
  if (args.pool.empty()) return fail(args.action + " needs a POOL (or --all)", kUsageError);

  Expected<std::optional<std::int64_t>> until = resolve_until(args.until, *now);
  if (!until) return fail(until.error().message, kUsageError);

  config::OverrideEntry entry;
  entry.pool = args.pool;
  entry.isp = args.isp;
  entry.vmta = args.vmta;
  entry.until = *until;
  entry.reason = args.reason.empty() ? by : args.reason;

  if (args.action == "pin") {
    if (!args.max_smtp_out) return fail("pin needs --max-smtp-out N", kUsageError);
    if (args.reason.empty()) return fail("pin needs --reason TEXT", kUsageError);
    entry.kind = config::OverrideKind::pin;
    entry.max_smtp_out = *args.max_smtp_out;
  } else if (args.action == "freeze") {
    entry.kind = config::OverrideKind::freeze;
  } else if (args.action == "bound") {
    if (args.isp.empty()) return fail("bound needs POOL ISP", kUsageError);
    if (!args.floor && !args.ceiling) {
      return fail("bound needs --floor N, --ceiling N or both", kUsageError);
    }
    entry.kind = config::OverrideKind::bounds;
    entry.floor = args.floor;
    entry.ceiling = args.ceiling;
  } else if (args.action == "unfreeze") {
    return edit_file(*config, known, [&](const std::string& text) {
      return config::remove_overrides(text, args.pool, optional(args.isp), optional(args.vmta),
                                      config::OverrideKind::freeze, source);
    });
  } else if (args.action == "clear") {
    return edit_file(*config, known, [&](const std::string& text) {
      config::EditResult r = config::remove_overrides(text, args.pool, optional(args.isp),
                                                      optional(args.vmta), std::nullopt, source);
      if (!r.error.empty() || !args.vmta.empty()) return r;
      config::EditResult tiers =
          config::remove_tiers(r.text, args.pool, optional(args.isp), source);
      tiers.changes.insert(tiers.changes.begin(), r.changes.begin(), r.changes.end());
      return tiers;
    });
  } else if (args.action == "tier") {
    if (args.isp.empty() || args.tier.empty()) return fail("tier needs POOL ISP TIER", kUsageError);
    if (args.source.empty()) return fail("tier needs --source TEXT", kUsageError);
    const config::TierEntry tier{args.pool, args.isp, args.tier, args.source, 0};
    return edit_file(*config, known,
                     [&](const std::string& text) { return config::put_tier(text, tier, source); });
  } else {
    return fail("unknown override action '" + args.action + "'", kUsageError);
  }
  return edit_file(*config, known, [&](const std::string& text) {
    return config::put_override(text, entry, source);
  });
}

}  // namespace sluice::cli
