#include "cli/metrics_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <istream>
#include <mutex>
#include <sstream>
#include <thread>

namespace sluice::cli {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A scrape is one small request: anything slower or larger is dropped, so that a stuck client
// holds nothing for long.
constexpr std::chrono::seconds kRequestTimeout{5};
constexpr std::size_t kMaxRequestBytes = 8192;

std::string response(int code, const char* reason, const std::string& content_type,
                     const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

}  // namespace

class MetricsServer::Impl {
 public:
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::mutex mutex;
  std::string text = "# no cycle has run yet\n";

  std::string current() {
    std::lock_guard lock(mutex);
    return text;
  }

  std::string answer(const std::string& request_line) {
    std::istringstream in(request_line);
    std::string method, target;
    in >> method >> target;
    if (const auto query = target.find('?'); query != std::string::npos) target.resize(query);
    if (target != "/metrics") return response(404, "Not Found", "text/plain", "not found\n");
    if (method != "GET") return response(405, "Method Not Allowed", "text/plain", "GET only\n");
    return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", current());
  }

  void accept_next() {
    acceptor.async_accept([this](const boost::system::error_code& error, tcp::socket socket) {
      if (error) return;  // the acceptor closed: the server stops
      std::make_shared<Connection>(std::move(socket), *this)->start();
      accept_next();
    });
  }

 private:
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(tcp::socket s, Impl& server)
        : socket(std::move(s)),
          impl(server),
          deadline(socket.get_executor()),
          request(kMaxRequestBytes) {}

    void start() {
      auto self = shared_from_this();
      deadline.expires_after(kRequestTimeout);
      deadline.async_wait([self](const boost::system::error_code& error) {
        if (!error) self->socket.close();
      });
      asio::async_read_until(socket, request, "\r\n\r\n",
                             [self](const boost::system::error_code& error, std::size_t) {
                               if (error) {
                                 self->deadline.cancel();
                                 return;
                               }
                               self->respond();
                             });
    }

    void respond() {
      std::istream in(&request);
      std::string line;
      std::getline(in, line);
      auto self = shared_from_this();
      reply = impl.answer(line);
      asio::async_write(socket, asio::buffer(reply),
                        [self](const boost::system::error_code&, std::size_t) {
                          boost::system::error_code ignored;
                          self->socket.shutdown(tcp::socket::shutdown_both, ignored);
                          self->socket.close(ignored);
                          self->deadline.cancel();
                        });
    }

    tcp::socket socket;
    Impl& impl;
    asio::steady_timer deadline;
    asio::streambuf request;
    std::string reply;
  };
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Expected<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& host, int port) {
  auto impl = std::make_unique<Impl>();
  const std::string where = host + ":" + std::to_string(port);
  boost::system::error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  if (error) return Error{"[metrics] listen: '" + host + "' is not an IP address"};
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) return Error{"[metrics] listen: cannot listen on " + where + ": " + error.message()};
  impl->accept_next();
  Impl& running = *impl;
  impl->thread = std::thread([&running] { running.io.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

void MetricsServer::publish(std::string text) {
  std::lock_guard lock(impl_->mutex);
  impl_->text = std::move(text);
}

int MetricsServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace sluice::cli
