#pragma once
// The commands of the control loop: once, plan, run, status, history, explain, check, init.

#include <string>

#include "cli/setup.h"

namespace sluice::cli {

struct HistoryArgs {
  std::string pool;
  std::string isp;
  std::string since;
};

int run_once(const GlobalOptions& global, bool dry_run);
int run_plan(const GlobalOptions& global);
int run_daemon(const GlobalOptions& global, bool dry_run, const std::string& interval);
struct StatusArgs {
  std::string format = "text";
  int days = 7;     // html: the span of the charts
  std::string out;  // html: the file; empty: stdout
};
int run_status(const GlobalOptions& global, const StatusArgs& args);
int run_history(const GlobalOptions& global, const HistoryArgs& args);
// One pair: its values and cap, the last 24 h by class and IP, the last decision, what would
// move it next, and the override in force.
// Ends a pair's no-effect phase: a person has looked at what the ISP objects to.
int run_ack(const GlobalOptions& global, const std::string& pool, const std::string& isp);
int run_explain(const GlobalOptions& global, const std::string& pool, const std::string& isp);
int run_check(const GlobalOptions& global);
int run_init(const GlobalOptions& global);

}  // namespace sluice::cli
