// End-to-end: [metrics] textfile, written by the real sluice binary after each cycle of `once`,
// as node_exporter's textfile collector would read it.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "e2e_support.h"
#include "loop_support.h"
#include "tests/support/prometheus_format.h"

namespace {

namespace fs = std::filesystem;
using sluice::e2e::append_file;
using sluice::e2e::BackgroundProcess;
using sluice::e2e::contains;
using sluice::e2e::eventually;
using sluice::e2e::iso;
using sluice::e2e::kExecutable;
using sluice::e2e::kHeader;
using sluice::e2e::kHour;
using sluice::e2e::kMinute;
using sluice::e2e::kNow;
using sluice::e2e::ProcessResult;
using sluice::e2e::Sandbox;
using sluice::e2e::slurp;
using sluice::e2e::traffic;
using sluice::e2e::write_file;
using sluice::prometheus::exposition_problems;
using sluice::prometheus::samples_of;
using namespace std::chrono_literals;

constexpr const char* kPair = "pool=\"high-rep-pool\",isp=\"gmail\"";

// The sandbox with [metrics] textfile in a directory of its own; returns the file.
fs::path with_metrics(const Sandbox& box) {
  const fs::path dir = box.work() / "textfile";
  fs::create_directories(dir);
  fs::permissions(dir, kExecutable);
  const fs::path file = dir / "sluice.prom";
  append_file(box.config(), "\n[metrics]\ntextfile = \"" + file.string() + "\"\n");
  return file;
}

// Files in `dir` other than `file`: a temporary file left behind.
std::string others_in(const fs::path& dir, const fs::path& file) {
  std::string out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path() != file) out += e.path().string() + "\n";
  }
  return out;
}

TEST(MetricsE2E, OnceWritesACompleteValidFileAfterACut) {
  Sandbox box;
  const fs::path file = with_metrics(box);
  // A 10% throttle rate: a 30% cut, 6 -> 4 (as in LoopE2E.A421BurstProducesOneCutAndOneReload).
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  ASSERT_EQ(once.exit_code, 0) << once.err;
  ASSERT_TRUE(contains(once.out, "high-rep-pool/gmail cut 6 -> 4")) << once.out;
  ASSERT_TRUE(fs::exists(file));
  const std::string text = slurp(file);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(exposition_problems(text), "") << text;
  EXPECT_EQ(others_in(file.parent_path(), file), "");
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);

  std::map<std::string, double> samples = samples_of(text);
  const std::string pair(kPair);
  EXPECT_EQ(samples["sluice_max_smtp_out{" + pair + "}"], 4);
  EXPECT_EQ(samples["sluice_cap{" + pair + "}"], 10);
  EXPECT_EQ(samples["sluice_tier{" + pair + ",tier=\"high\"}"], 1);
  EXPECT_EQ(samples["sluice_phase{" + pair + ",phase=\"verifying\"}"], 1);
  EXPECT_EQ(samples["sluice_phase{" + pair + ",phase=\"steady\"}"], 0);
  EXPECT_DOUBLE_EQ(samples["sluice_deferral_ratio{" + pair + ",class=\"connection\"}"], 0.1);
  EXPECT_EQ(samples["sluice_override_in_force{" + pair + "}"], 0);
  EXPECT_EQ(samples["sluice_decisions_total{" + pair + ",rule=\"cut\"}"], 1);
  EXPECT_EQ(samples["sluice_reloads_total"], 1);
  EXPECT_EQ(samples["sluice_reload_failures_total"], 0);
  EXPECT_EQ(samples["sluice_last_cycle_timestamp_seconds"], kNow);
  EXPECT_EQ(samples["sluice_last_cycle_records"], 600);
  EXPECT_EQ(samples["sluice_last_cycle_malformed_lines{reason=\"bad_time\"}"], 0);
  EXPECT_GT(samples["sluice_cycle_duration_seconds"], 0);

  // The next cycle (a fresh process): counters come from the audit trail, not from memory.
  append_file(box.log(), traffic(kNow, kNow + 10 * kMinute, 100, 50, 600));
  const ProcessResult second = box.sluice(kNow + 10 * kMinute, {"once"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::string next_text = slurp(file);
  EXPECT_EQ(exposition_problems(next_text), "") << next_text;
  const std::map<std::string, double> next = samples_of(next_text);
  for (const auto& [series, value] : samples) {
    if (!series.starts_with("sluice_decisions_total") && !series.starts_with("sluice_reloads_"))
      continue;
    ASSERT_TRUE(next.contains(series)) << series;
    EXPECT_GE(next.at(series), value) << series;
  }
  EXPECT_EQ(next.at("sluice_last_cycle_timestamp_seconds"), kNow + 10 * kMinute);
  EXPECT_EQ(next.at("sluice_last_cycle_records"), 100);
  EXPECT_EQ(others_in(file.parent_path(), file), "");
}

TEST(MetricsE2E, DryRunWritesMetricsAndPlanDoesNot) {
  Sandbox box;
  const fs::path file = with_metrics(box);
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult plan = box.sluice(kNow, {"plan"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_FALSE(fs::exists(file));

  const ProcessResult dry = box.sluice(kNow, {"once", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  const std::string text = slurp(file);
  EXPECT_EQ(exposition_problems(text), "") << text;
  // A dry run records its decisions, not applied: counted, but no reload.
  std::map<std::string, double> samples = samples_of(text);
  EXPECT_EQ(samples["sluice_decisions_total{" + std::string(kPair) + ",rule=\"cut\"}"], 1);
  EXPECT_EQ(samples["sluice_reloads_total"], 0);
  EXPECT_EQ(samples["sluice_reload_failures_total"], 0);
}

TEST(MetricsE2E, AFailedWriteIsAWarningNotAFailedCycle) {
  Sandbox box;
  append_file(box.config(), "\n[metrics]\ntextfile = \"" +
                                (box.work() / "missing-dir" / "sluice.prom").string() + "\"\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_TRUE(contains(once.out, "high-rep-pool/gmail cut 6 -> 4")) << once.out;
  EXPECT_TRUE(contains(once.err, "metrics not written")) << once.err;
}

TEST(MetricsE2E, ARefusedChangeCountsAsAReloadFailure) {
  Sandbox box(sluice::e2e::Pmta::reload_fails);
  const fs::path file = with_metrics(box);
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));

  const ProcessResult once = box.sluice(kNow, {"once"});
  EXPECT_NE(once.exit_code, 0);
  std::map<std::string, double> samples = samples_of(slurp(file));
  EXPECT_EQ(samples["sluice_reload_failures_total"], 1);
  EXPECT_EQ(samples["sluice_reloads_total"], 0);
}

TEST(MetricsE2E, RunWritesMetricsAfterItsCycles) {
  Sandbox box;
  const fs::path file = with_metrics(box);
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  BackgroundProcess daemon({SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow),
                            "run", "--interval", "1s"},
                           box.scratch() / "run.out", box.scratch() / "run.err");
  const std::string cut = "sluice_max_smtp_out{" + std::string(kPair) + "} 4\n";
  ASSERT_TRUE(eventually([&] { return contains(slurp(file), cut); }, 10s))
      << slurp(box.scratch() / "run.err");
  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  EXPECT_EQ(daemon.wait_for_exit(5s), std::optional<int>(0)) << slurp(box.scratch() / "run.err");
  const std::string text = slurp(file);
  EXPECT_EQ(exposition_problems(text), "") << text;
  EXPECT_EQ(samples_of(text)["sluice_reloads_total"], 1);
  EXPECT_EQ(others_in(file.parent_path(), file), "");
}

// A free port on 127.0.0.1, as the kernel hands it out.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), size);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The body of GET /metrics, or "" when nothing answers.
std::string scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    (void)::write(fd, request.data(), request.size());
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

TEST(MetricsE2E, RunServesTheSameMetricsOnItsListener) {
  Sandbox box;
  const fs::path file = with_metrics(box);
  const int port = free_port();
  append_file(box.config(), "listen = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  BackgroundProcess daemon({SLUICE_BINARY, "--config", box.config().string(), "--now", iso(kNow),
                            "run", "--interval", "60s"},
                           box.scratch() / "run.out", box.scratch() / "run.err");
  const std::string cut = "sluice_max_smtp_out{" + std::string(kPair) + "} 4\n";
  std::string served;
  ASSERT_TRUE(eventually(
      [&] {
        served = scrape(port);
        return contains(served, cut);
      },
      10s))
      << served << slurp(box.scratch() / "run.err");
  EXPECT_EQ(exposition_problems(served), "") << served;
  EXPECT_EQ(served, slurp(file));
  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  EXPECT_EQ(daemon.wait_for_exit(5s), std::optional<int>(0)) << slurp(box.scratch() / "run.err");
}

}  // namespace
