#include "cli/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace sluice::cli {
namespace {

// One HTTP exchange with the server on 127.0.0.1:port; the whole response.
std::string exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)::write(fd, request.data(), request.size());
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsServer, ServesTheLastPublishedTextOnGetMetrics) {
  Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start("127.0.0.1", 0);
  ASSERT_TRUE(server) << server.error().message;
  (*server)->publish("sluice_max_smtp_out{pool=\"p\",isp=\"gmail\"} 4\n");
  const std::string reply = exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reply,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 44\r\nConnection: close\r\n\r\n"
            "sluice_max_smtp_out{pool=\"p\",isp=\"gmail\"} 4\n");
  (*server)->publish("sluice_max_smtp_out{pool=\"p\",isp=\"gmail\"} 3\n");
  EXPECT_NE(exchange((*server)->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").find("} 3\n"),
            std::string::npos);
}

TEST(MetricsServer, AnswersOtherPathsAndMethodsWithoutTheMetrics) {
  Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start("127.0.0.1", 0);
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_TRUE(exchange((*server)->port(), "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(
      exchange((*server)->port(), "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
}

TEST(MetricsServer, ATakenPortOrAWrongAddressIsAnErrorAtStart) {
  Expected<std::unique_ptr<MetricsServer>> first = MetricsServer::start("127.0.0.1", 0);
  ASSERT_TRUE(first) << first.error().message;
  const int port = (*first)->port();
  Expected<std::unique_ptr<MetricsServer>> second = MetricsServer::start("127.0.0.1", port);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message.rfind(
                "[metrics] listen: cannot listen on 127.0.0.1:" + std::to_string(port) + ": ", 0),
            0u)
      << second.error().message;
  Expected<std::unique_ptr<MetricsServer>> named = MetricsServer::start("localhost", 9465);
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message, "[metrics] listen: 'localhost' is not an IP address");
}

}  // namespace
}  // namespace sluice::cli
