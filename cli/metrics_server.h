#pragma once
// The [metrics] listen endpoint of `sluice run`: GET /metrics answers with the text of the last
// cycle, from a thread of its own, so that a scrape never waits for a cycle nor a cycle for a
// scrape.

#include <memory>
#include <string>

#include "controller/expected.h"

namespace sluice::cli {

class MetricsServer {
 public:
  // Listens at once, so that a taken port or a wrong address fails `run` at its start. Port 0
  // takes a free one (see port()).
  static Expected<std::unique_ptr<MetricsServer>> start(const std::string& host, int port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void publish(std::string text);
  int port() const;

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::cli
