#pragma once
// The event loop and the faces: one Boost.Asio io_context, one Listener per face that has both an
// address and a handler, and the graceful shutdown that SIGTERM/SIGINT or stop() starts:
//   stop accepting -> ask connections to finish their current request -> wait up to
//   shutdown_grace -> close what is left -> run() returns.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "server/config.h"
#include "server/connection.h"
#include "server/connection_registry.h"
#include "server/errc.h"
#include "server/listener.h"

namespace depot::server {

class ProtocolHandler;

struct ServerOptions {
  std::vector<FaceAddress> faces;  // the faces that may be served, by name, with their addresses
  std::chrono::milliseconds shutdown_grace{10'000};
  std::chrono::milliseconds idle_timeout{5 * 60'000};  // for faces that do not set their own
  // SIGTERM/SIGINT stop the server, from its construction on (in-process tests opt out).
  bool handle_signals = true;

  static ServerOptions from_config(const ServerConfig& config);
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Plugs a protocol into a face named in the options ("jobs", "amqp", "kafka", "http"). Call
  // before start(). A face without a handler is not listened on.
  StartupResult<void> register_face(std::string_view face, std::shared_ptr<ProtocolHandler> handler,
                                    ConnectionOptions options = {});

  // Binds every face that has an address and a handler and starts accepting.
  StartupResult<void> start();

  // The address a face listens on (with the kernel's port when 0 was asked for), if it does.
  std::optional<boost::asio::ip::tcp::endpoint> local_endpoint(std::string_view face) const;
  // "jobs 127.0.0.1:7419, amqp [::1]:5672", or "none".
  std::string describe_listeners() const;

  // Serves on the calling thread until a stop has drained every connection. One thread today;
  // connections and listeners each have a strand, so more threads may call run() later (then
  // domain modules called from handlers must be thread-safe).
  void run();
  // Starts a graceful stop. Thread-safe; a second call (or signal) closes connections at once.
  void stop();

  // For faces that need timers or services outside a connection.
  boost::asio::io_context& io_context() { return io_; }

 private:
  struct Face {
    std::string name;
    std::optional<Endpoint> listen;
    std::shared_ptr<ProtocolHandler> handler;
    ConnectionOptions options;
  };

  void begin_stop(std::string_view reason);
  void wait_for_signal();
  boost::asio::awaitable<void> shut_down();
  // Waits until no connection is left, the deadline passes or (until_forced) a second stop comes;
  // true when drained.
  boost::asio::awaitable<bool> drain(std::chrono::steady_clock::time_point deadline,
                                     bool until_forced);

  ServerOptions options_;
  ConnectionRegistry registry_;  // declared before io_ so that it outlives every connection
  boost::asio::io_context io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  std::vector<Face> faces_;  // in configuration order, which is also the order of the log lines
  std::vector<std::unique_ptr<Listener>> listeners_;
  bool started_ = false;
  bool stopping_ = false;
  bool forced_ = false;
};

}  // namespace depot::server
