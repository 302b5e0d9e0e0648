#pragma once
// The OverrideSource on disk: the TOML file of [state] overrides, checked against the pools,
// ISPs and VMTAs the configuration knows, and refused when others could write it
// (config::why_unsafe).

#include <map>
#include <set>
#include <string>

#include "config/overrides.h"
#include "controller/expected.h"
#include "controller/ports.h"

namespace sluice::adapters {

// What an override may name: per pool, its ISPs and its VMTAs.
struct KnownPool {
  std::set<std::string> isps;
  std::set<std::string> vmtas;
};
using KnownPools = std::map<std::string, KnownPool>;

// The file's entries as the controller's, or "FILE:LINE: unknown pool 'x'" and the like.
Expected<Overrides> checked_overrides(const config::OverrideFile& file, const KnownPools& known);

// Parses and checks a text of the override file.
Expected<Overrides> parse_checked_overrides(const std::string& text, const std::string& source,
                                            const KnownPools& known);

class OverrideFile : public OverrideSource {
 public:
  OverrideFile(std::string path, KnownPools known);
  OverrideRead read() override;
  OverrideRead parse(const std::string& text) override;

 private:
  std::string path_;
  KnownPools known_;
};

}  // namespace sluice::adapters
