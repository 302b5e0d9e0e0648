#pragma once
// The edits behind `sluice override`: each rewrites the override file's text, so that whatever it
// does not touch (comments, blank lines, other entries and their layout) stays byte for byte.
//
// A table's block runs from its header line to the line before the next table's block; the
// comments and blank lines directly above a header belong to it, so an entry goes with the
// comment written above it. A comment block at the top of the file followed by a blank line is
// the file's own and belongs to no table.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/overrides.h"

namespace sluice::config {

struct EditResult {
  std::string text;                  // the new file text (valid even when nothing changed)
  std::vector<std::string> changes;  // what was done, one line each; empty: nothing to change
  // Non-empty: the input did not parse (parse_overrides' "SOURCE:LINE: problem"), or holds a
  // table written inline or with dotted keys, which has no block to edit; text is then the input.
  std::string error;
};

// Sets the [[override]] for entry's scope (pool, isp, vmta; empty isp/vmta = absent key): rewrites
// the keys of the entry with exactly that scope (keeping its header line and the comments above
// it), or appends a new block at the end of the file, after a blank line.
EditResult put_override(std::string_view text, const OverrideEntry& entry,
                        const std::string& source);

// Removes [[override]] entries of `pool`: when `isp` is set only those whose isp equals it
// (pool-wide ones stay), when `vmta` is set only that VMTA's, when `kind` is set only entries of
// that kind; otherwise all of the pool.
EditResult remove_overrides(std::string_view text, const std::string& pool,
                            const std::optional<std::string>& isp,
                            const std::optional<std::string>& vmta,
                            std::optional<OverrideKind> kind, const std::string& source);

// Sets the [[tier]] of (entry.pool, entry.isp), as put_override does.
EditResult put_tier(std::string_view text, const TierEntry& entry, const std::string& source);

// Removes the [[tier]] of (pool, isp), or every tier of the pool when isp is unset.
EditResult remove_tiers(std::string_view text, const std::string& pool,
                        const std::optional<std::string>& isp, const std::string& source);

// Sets [global] freeze, and its reason when `reason` is non-empty; unfreezing removes the reason.
// Existing `freeze = ...` / `reason = ...` values are edited in place (a trailing comment stays);
// a missing freeze goes right after the [global] header, a missing reason right after freeze. A
// file without [global] gets one at the top (below its own leading comment block), unless
// unfreezing, which has nothing to do then.
EditResult set_global_freeze(std::string_view text, bool freeze, const std::string& reason,
                             const std::string& source);

// A TOML basic string literal: quotes added, `"`, `\` and control characters escaped (\n, \t,
// \uXXXX).
std::string toml_string(std::string_view text);

}  // namespace sluice::config
