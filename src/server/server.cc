#include "server/server.h"

#include <algorithm>
#include <csignal>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/protocol_handler.h"
#include "server/units.h"

namespace depot::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// After the grace period connections are closed; this is how long their coroutines get to notice.
constexpr std::chrono::seconds kForceCloseWait{1};

}  // namespace

ServerOptions ServerOptions::from_config(const ServerConfig& config) {
  return ServerOptions{config.face_addresses(), config.shutdown_grace, config.idle_timeout, true};
}

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      strand_(asio::make_strand(io_)),
      work_(asio::make_work_guard(io_)),
      signals_(strand_),
      drain_timer_(strand_) {
  for (const FaceAddress& face : options_.faces)
    faces_.push_back({face.name, face.listen, nullptr, {}});
  registry_.set_on_empty([this] { asio::post(strand_, [this] { drain_timer_.cancel(); }); });
  // From here on SIGTERM/SIGINT mean a graceful stop, even before run(): the signal waits in the
  // io_context, so a stop requested during start-up still exits cleanly.
  if (options_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    wait_for_signal();
  }
}

Server::~Server() {
  registry_.set_on_empty({});
}

StartupResult<void> Server::register_face(std::string_view face,
                                          std::shared_ptr<ProtocolHandler> handler,
                                          ConnectionOptions options) {
  auto it =
      std::find_if(faces_.begin(), faces_.end(), [&](const Face& f) { return f.name == face; });
  if (it == faces_.end() || started_ || !handler) {
    return StartupError{make_error_code(errc::listen_failed),
                        fmt::format("cannot register face \"{}\": {}", face,
                                    it == faces_.end() ? "no such face in the configuration"
                                    : started_         ? "the server has started"
                                                       : "no handler given")};
  }
  if (!options.idle_timeout) options.idle_timeout = options_.idle_timeout;
  it->handler = std::move(handler);
  it->options = options;
  return success();
}

StartupResult<void> Server::start() {
  std::vector<std::unique_ptr<Listener>> listeners;
  for (const Face& face : faces_) {
    if (!face.listen) {
      spdlog::info("{}: off", face.name);
      continue;
    }
    if (!face.handler) {
      spdlog::info("{}: not served by this build; {} stays closed", face.name,
                   face.listen->to_string());
      continue;
    }
    auto listener =
        std::make_unique<Listener>(io_, face.name, face.handler, face.options, registry_);
    DEPOT_TRY(listener->bind(*face.listen));
    listeners.push_back(std::move(listener));
  }
  // Accept only once every face is bound, so a failed start never serves half the faces.
  listeners_ = std::move(listeners);
  for (auto& listener : listeners_) {
    listener->start();
    spdlog::info("{}: listening on {}", listener->face(),
                 format_endpoint(listener->local_endpoint()));
  }
  started_ = true;
  return success();
}

std::optional<tcp::endpoint> Server::local_endpoint(std::string_view face) const {
  for (const auto& listener : listeners_) {
    if (listener->face() == face) return listener->local_endpoint();
  }
  return std::nullopt;
}

std::string Server::describe_listeners() const {
  std::string text;
  for (const auto& listener : listeners_) {
    if (!text.empty()) text += ", ";
    text += listener->face() + " " + format_endpoint(listener->local_endpoint());
  }
  return text.empty() ? "none" : text;
}

void Server::run() {
  io_.run();
}

void Server::stop() {
  asio::post(strand_, [this] { begin_stop("stop requested"); });
}

void Server::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    begin_stop(signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    wait_for_signal();
  });
}

void Server::begin_stop(std::string_view reason) {
  if (stopping_) {
    if (!forced_) {
      forced_ = true;
      spdlog::warn("{} again: closing {} connections now", reason, registry_.size());
      drain_timer_.cancel();
    }
    return;
  }
  stopping_ = true;
  spdlog::info("{}: stopping; {} open connections have {} to finish their current request", reason,
               registry_.size(), format_duration(options_.shutdown_grace));
  asio::co_spawn(strand_, shut_down(), asio::detached);
}

asio::awaitable<void> Server::shut_down() {
  for (auto& listener : listeners_)
    listener->stop();
  registry_.stop_all();
  bool drained = co_await drain(Clock::now() + options_.shutdown_grace, /*until_forced=*/true);
  if (!drained) {
    spdlog::warn("{} connections still busy; closing them", registry_.size());
    registry_.close_all();
    drained = co_await drain(Clock::now() + kForceCloseWait, /*until_forced=*/false);
  }
  if (!drained) {
    // Their handlers wait on something other than the socket; their frames die with io_context.
    spdlog::error("{} connections did not finish after being closed; abandoning them",
                  registry_.size());
  }
  spdlog::info("all connections closed");
  // The signal set stays installed until the Server is destroyed, so a late SIGTERM (during the
  // storage sync that follows) cannot kill the process with the default action.
  work_.reset();
  io_.stop();
}

asio::awaitable<bool> Server::drain(Clock::time_point deadline, bool until_forced) {
  while (registry_.size() > 0 && !(until_forced && forced_) && Clock::now() < deadline) {
    drain_timer_.expires_at(deadline);
    boost::system::error_code ignored;
    co_await drain_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return registry_.size() == 0;
}

}  // namespace depot::server
