#include "server/listener.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/connection_registry.h"
#include "server/protocol_handler.h"

namespace depot::server {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// After accept fails for want of file descriptors, pause instead of spinning on the error.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

}  // namespace

Listener::Listener(asio::io_context& io, std::string face, std::shared_ptr<ProtocolHandler> handler,
                   ConnectionOptions options, ConnectionRegistry& registry)
    : io_(io),
      strand_(asio::make_strand(io)),
      acceptor_(strand_),
      face_(std::move(face)),
      handler_(std::move(handler)),
      options_(options),
      registry_(registry) {}

StartupResult<void> Listener::bind(const Endpoint& endpoint) {
  auto failed = [&](std::string_view step, const boost::system::error_code& ec) {
    return StartupError{
        make_error_code(errc::listen_failed),
        fmt::format("cannot listen for {} on {}: {} failed: {}; choose another address with "
                    "--{}-listen (or \"off\")",
                    face_, endpoint.to_string(), step, ec.message(), face_)};
  };
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto results =
      resolver.resolve(endpoint.host, std::to_string(endpoint.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) return failed("resolving the host", ec);
  tcp::endpoint address = results.begin()->endpoint();

  acceptor_.open(address.protocol(), ec);
  if (ec) return failed("opening a socket", ec);
  // Restarting right after a stop must not wait out TIME_WAIT of the previous run's connections.
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  acceptor_.bind(address, ec);
  if (ec) return failed("bind", ec);
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen", ec);
  return success();
}

tcp::endpoint Listener::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Listener::start() {
  asio::co_spawn(strand_, accept_loop(), asio::detached);
}

void Listener::stop() {
  asio::post(strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

asio::awaitable<void> Listener::accept_loop() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    // Each connection gets its own strand, so faces are correct when io_context runs on N threads.
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) {
      spdlog::warn("{}: accept failed: {}", face_, ec.message());
      asio::steady_timer pause(strand_, kAcceptRetryDelay);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    spawn_connection(std::move(socket));
  }
  spdlog::debug("{}: no longer accepting", face_);
}

void Listener::spawn_connection(tcp::socket socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // replies are small and latency matters
  auto conn = std::make_shared<Connection>(std::move(socket), face_, options_);
  registry_.add(conn);
  auto& registry = registry_;
  asio::co_spawn(
      conn->executor(), [conn, handler = handler_] { return conn->run(*handler); },
      [conn, &registry](const std::exception_ptr&) { registry.remove(conn->id()); });
}

}  // namespace depot::server
