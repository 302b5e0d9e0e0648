#pragma once
// Replaces a file so that readers see the old or the new content, never a mix, even across a
// crash: temp file in the same directory, fsync, rename, fsync the directory.

#include <string>
#include <string_view>

#include "controller/expected.h"

namespace sluice::adapters {

Status write_file_atomically(const std::string& path, std::string_view content, int mode = 0644);

}  // namespace sluice::adapters
