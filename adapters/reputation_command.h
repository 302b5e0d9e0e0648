#pragma once
// The ReputationSource of `[reputation] command`: a program the operator provides that prints
// each pool's tier at an ISP, one JSON object per line:
//   {"pool": "bulk-pool", "isp": "gmail", "tier": "low"}
// Other keys are ignored, and so are blank lines.

#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/ports.h"

namespace sluice::adapters {

class ReputationCommand : public ReputationSource {
 public:
  // `managed`: the (pool, ISP) pairs the loop manages; a line for any other is ignored with a
  // warning. The command runs through `runner` (never a shell) and is killed after `timeout`.
  ReputationCommand(std::vector<std::string> argv, CommandRunner& runner,
                    std::chrono::milliseconds timeout,
                    std::set<std::pair<std::string, std::string>> managed);

  // An error, "reputation command PROGRAM: line N: problem", when the command cannot run, hangs,
  // exits non-zero, or any line is not such an object, names a tier other than high, medium,
  // low or warming, or repeats a pair: then nothing of the answer is used.
  Expected<ReputationRead> read() override;

 private:
  std::vector<std::string> argv_;
  CommandRunner& runner_;
  std::chrono::milliseconds timeout_;
  std::set<std::pair<std::string, std::string>> managed_;
};

}  // namespace sluice::adapters
