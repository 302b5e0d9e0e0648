#pragma once
// sluice.toml and the override file steer what sluice writes into PowerMTA's configuration:
// both are refused when anyone but root or the user sluice runs as could change them.

#include <optional>
#include <string>

namespace sluice::config {

// sshd's StrictModes rule. The file is unsafe when group or others may write it, or when its
// owner is neither root nor the effective user; so is its directory (another user could replace
// the file there) when group or others may write it without the sticky bit, or when it is owned
// by someone else. Symlinks are followed, simply, so two directories are checked: the one holding
// the name and the one holding the file it resolves to (the same unless the name is a symlink).
// nullopt when safe; otherwise one line naming the file, the problem and the fix.
std::optional<std::string> why_unsafe(const std::string& path);

}  // namespace sluice::config
