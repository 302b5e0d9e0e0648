#pragma once

namespace sluice::cli {

// Exit codes: 0 success, 1 runtime error, 2 usage error.
int run(int argc, char** argv);

}  // namespace sluice::cli
