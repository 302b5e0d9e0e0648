#include "adapters/command_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/process/args.hpp>
#include <boost/process/async.hpp>
#include <boost/process/async_pipe.hpp>
#include <boost/process/child.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <cerrno>
#include <exception>
#include <optional>
#include <system_error>

#include "controller/fault_point.h"

namespace sluice::adapters {

namespace {

namespace asio = boost::asio;
namespace bp = boost::process;

// After the deadline's SIGKILL, how long output may still arrive: a descendant that left the
// process group can hold the pipes open for ever.
constexpr std::chrono::milliseconds kDrainAfterKill{500};

// What Boost.Process 1.74 does not do by itself.
struct ChildSetup : bp::extend::handler {
  // Runs in the child between fork and execve: async-signal-safe calls only.
  template <class Executor>
  void on_exec_setup(Executor&) const {
    // Its own group, so that a timeout also kills whatever it started. The parent need not call
    // setpgid too: given an error_code, Boost returns only once execve has succeeded.
    ::setpgid(0, 0);
    // No descriptor of ours (the database, another run's pipes) may leak into the child.
    // Close-on-exec rather than closed: Boost reports a failed execve through such a pipe.
    // (Linux 5.11+; an older kernel refuses the call and the descriptors stay inherited.)
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  }

  // Boost 1.74 leaves a child whose execve failed unreaped, a zombie per failed run.
  template <class Executor>
  void on_error(Executor& exec, const std::error_code&) const {
    if (exec.pid <= 0) return;
    int status = 0;
    while (::waitpid(exec.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

CommandResult run_child(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        const std::optional<std::string>& input) {
  CommandResult result;
  const std::string& program = argv.front();
  asio::io_context io;
  bp::async_pipe out_pipe(io);
  bp::async_pipe err_pipe(io);
  bp::async_pipe in_pipe(io);
  // The run ends when the child has exited and both pipes reached end of file, or at the
  // deadline plus the drain time.
  asio::steady_timer deadline(io);
  bool exited = false;
  int open_pipes = 2;
  auto done = [&] { return exited && open_pipes == 0; };
  auto finish_when_done = [&] {
    if (done()) deadline.cancel();
  };
  std::error_code wait_error;
  std::error_code launch_error;
  const auto on_exit = [&](int, const std::error_code& error) {
    exited = true;
    wait_error = error;
    finish_when_done();
  };
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  bp::child child = input ? bp::child(bp::exe = program, bp::args = args, bp::std_in = in_pipe,
                                      bp::std_out = out_pipe, bp::std_err = err_pipe, io,
                                      bp::on_exit = on_exit, ChildSetup{}, launch_error)
                          : bp::child(bp::exe = program, bp::args = args, bp::std_in = bp::null,
                                      bp::std_out = out_pipe, bp::std_err = err_pipe, io,
                                      bp::on_exit = on_exit, ChildSetup{}, launch_error);
  if (launch_error) {
    result.error = program + ": " + launch_error.message();
    return result;
  }
  const pid_t group = child.id();

  auto on_read = [&](const boost::system::error_code&, std::size_t) {
    --open_pipes;
    finish_when_done();
  };
  // The input is written while the output is read: a child that answers before it has read all
  // of it never deadlocks against us. A child that does not read it gets EPIPE, which is fine.
  if (input) {
    asio::async_write(in_pipe, asio::buffer(*input),
                      [&](const boost::system::error_code&, std::size_t) {
                        boost::system::error_code ignored;
                        in_pipe.close(ignored);
                      });
  }
  asio::async_read(out_pipe, asio::dynamic_buffer(result.out), on_read);
  asio::async_read(err_pipe, asio::dynamic_buffer(result.err), on_read);
  deadline.expires_after(timeout);
  deadline.async_wait([&](const boost::system::error_code& error) {
    if (error || done()) return;  // finished in time
    result.timed_out = !exited;
    ::kill(-group, SIGKILL);
    deadline.expires_after(kDrainAfterKill);
    deadline.async_wait([&](const boost::system::error_code& drain_error) {
      if (drain_error) return;
      boost::system::error_code ignored;
      out_pipe.close(ignored);
      err_pipe.close(ignored);
    });
  });
  io.run();

  if (wait_error) {
    result.error = program + ": cannot wait for the child: " + wait_error.message();
    return result;
  }
  result.exit_code = exit_code_of(child.native_exit_code());
  return result;
}

}  // namespace

CommandResult ProcessRunner::run(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  return launch(argv, timeout, std::nullopt);
}

CommandResult ProcessRunner::run_with_input(const std::vector<std::string>& argv,
                                            const std::string& input,
                                            std::chrono::milliseconds timeout) {
  // A child that exits without reading all of its input fails our write with EPIPE, and the
  // SIGPIPE that comes with it would kill us: blocked here, and taken back before unblocking.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  CommandResult result = launch(argv, timeout, input);
  const timespec no_wait{0, 0};
  while (sigtimedwait(&pipe_signal, nullptr, &no_wait) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return result;
}

CommandResult ProcessRunner::launch(const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout,
                                    const std::optional<std::string>& input) {
  CommandResult result;
  if (argv.empty()) {
    result.error = "cannot run an empty command";
    return result;
  }
  if (argv.front().find('/') == std::string::npos) {
    result.error = argv.front() + ": not a path (the program is never looked up in PATH)";
    return result;
  }
  try {
    result = run_child(argv, timeout, input);
    fault_point("after-command");
    return result;
  } catch (const std::exception& e) {
    result.error = argv.front() + ": " + e.what();
    return result;
  }
}

}  // namespace sluice::adapters
