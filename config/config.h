#pragma once
// sluice.toml: what the operator tells sluice. Depends on nothing else of sluice.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::config {

inline constexpr const char* kDefaultPath = "/etc/sluice/sluice.toml";

struct DeferralPattern {
  std::string pattern;         // RE2 syntax, case-insensitive
  std::string deferral_class;  // connection, rate, reputation, recipient, config, other
  std::int64_t line = 0;
};

// [[isp]]: adds an ISP, or replaces the parts it sets of a built-in one.
struct IspTable {
  std::string name;
  std::vector<std::string> domains;
  std::vector<std::string> mx_suffixes;
  std::vector<DeferralPattern> deferrals;
  std::int64_t line = 0;
};

struct PoolTable {
  std::string name;
  std::vector<std::string> vmtas;
  std::string tier = "medium";    // high, medium, low, warming
  std::vector<std::string> isps;  // empty: every ISP of the catalog
  std::int64_t line = 0;
};

struct Config {
  std::string source;  // the file it was read from; empty for the built-in defaults
  std::string pmta_command = "/usr/sbin/pmta";
  std::vector<std::string> accounting = {"/var/log/pmta/acct-*.csv"};
  std::string fragments = "/etc/pmta/sluice";
  std::string database = "/var/lib/sluice/state.db";
  std::string overrides = "/etc/sluice/overrides.toml";
  std::int64_t bucket_seconds = 300;
  std::vector<PoolTable> pools;
  std::vector<IspTable> isps;
};

struct LoadResult {
  std::optional<Config> config;
  std::string error;  // "FILE:LINE: problem" when config is empty
};

LoadResult load_file(const std::string& path);
// `source` names the text in messages.
LoadResult load_string(const std::string& text, const std::string& source);

// Names that reach PowerMTA's configuration: [A-Za-z0-9._-]+, and never "." or "..".
bool is_valid_name(const std::string& name);

}  // namespace sluice::config
