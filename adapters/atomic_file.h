#pragma once
// Replaces a file so that readers see the old or the new content, never a mix, even across a
// crash: temp file in the same directory, fsync, rename, fsync the directory.

#include <string>
#include <string_view>

#include "controller/expected.h"

namespace sluice::adapters {

// Also removes the temporary files of earlier writes of `path` that a crash left behind.
Status write_file_atomically(const std::string& path, std::string_view content, int mode = 0644);

// Removes the temporary files that writers of `path` killed before their rename left behind
// (PowerMTA never reads them, but they would pile up); best effort.
void remove_abandoned_temporaries(const std::string& path);

}  // namespace sluice::adapters
