#pragma once
// The real CommandRunner: runs a program directly (fork + execve, never a shell) on Boost.Process.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "controller/ports.h"

namespace sluice::adapters {

// argv[0] must be a path (it contains a '/'): PATH is never searched, so the configured
// `[pmta] command` is exactly what runs. The child gets /dev/null as stdin, inherits no descriptor
// beyond stdin, stdout and stderr, and leads its own process group.
//
// The result:
// - `out` and `err` hold everything the child wrote, read concurrently so that a chatty child
//   never blocks on a full pipe.
// - `exit_code` is the exit status; a child killed by a signal reports 128 + the signal number
//   (the shell's convention, e.g. 137 for SIGKILL), so it is never 0.
// - When `timeout` passes before the child exits, its whole process group gets SIGKILL and
//   `timed_out` is set (`exit_code` is then 137). Output written before the kill is kept.
// - When the program cannot be started (empty argv, no '/' in argv[0], missing, not executable),
//   `error` holds one line naming the path, e.g. "/usr/sbin/pmta: No such file or directory",
//   and `exit_code` is -1.
class ProcessRunner : public CommandRunner {
 public:
  CommandResult run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout) override;
  // The same, with `input` on the child's stdin instead of /dev/null (the [notify] hook's event).
  CommandResult run_with_input(const std::vector<std::string>& argv, const std::string& input,
                               std::chrono::milliseconds timeout);

 private:
  CommandResult launch(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       const std::optional<std::string>& input);
};

}  // namespace sluice::adapters
