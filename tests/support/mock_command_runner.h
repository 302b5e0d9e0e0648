#pragma once
// A trompeloeil mock of the CommandRunner port, for tests of what runs pmta.
// Violations are reported as GoogleTest failures: the adapter header needs gtest included first.

#include <gtest/gtest.h>
#include <gtest/trompeloeil.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "controller/ports.h"

namespace sluice {

class MockCommandRunner : public CommandRunner {
 public:
  MAKE_MOCK2(run, CommandResult(const std::vector<std::string>&, std::chrono::milliseconds),
             override);
};

}  // namespace sluice
