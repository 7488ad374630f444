#pragma once
// Accepts connections for one face and runs the face's handler on each, one coroutine per
// connection on its own strand.
#include <memory>
#include <string>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "server/connection.h"
#include "server/endpoint.h"
#include "server/errc.h"

namespace depot::server {

class ConnectionRegistry;
class ProtocolHandler;

class Listener {
 public:
  Listener(boost::asio::io_context& io, std::string face, std::shared_ptr<ProtocolHandler> handler,
           ConnectionOptions options, ConnectionRegistry& registry);

  // Resolves, binds and listens; errc::listen_failed names the face and the address.
  StartupResult<void> bind(const Endpoint& endpoint);
  // The bound address (the kernel's port when 0 was asked for).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  const std::string& face() const { return face_; }

  // Starts accepting.
  void start();
  // Stops accepting; connections already accepted go on. Thread-safe.
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  void spawn_connection(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string face_;
  std::shared_ptr<ProtocolHandler> handler_;
  ConnectionOptions options_;
  ConnectionRegistry& registry_;
};

}  // namespace depot::server
