#pragma once
// The AMQP 0-9-1 face (RabbitMQ's dialect) on port 5672: the connection handshake (PLAIN and
// AMQPLAIN, tune, virtual hosts), heartbeats, channels, and the exchange and queue methods over
// messaging::VirtualHost. Errors close the channel (403, 404, 405, 406) or the connection (5xx)
// with RabbitMQ's reply codes and texts.
//
// Not yet: publishing, consuming, acks, confirms and transactions (basic.*, confirm.*, tx.*) are
// answered with connection.close 540 NOT_IMPLEMENTED.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "messaging/definitions.h"
#include "messaging/vhost.h"
#include "server/protocol_handler.h"

namespace depot::amqp {

struct AmqpOptions {
  std::vector<std::string> vhosts = {"/"};
  // User name -> password. guest/guest is there unless replaced, and (as in RabbitMQ) guest may
  // only connect from a loopback address.
  std::map<std::string, std::string> users = {{"guest", "guest"}};
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat_seconds = 60;
};

// What every AMQP connection shares: the virtual hosts and the users.
class AmqpService {
 public:
  // With `definitions`, durable exchanges, queues and bindings are journaled there and restored
  // by restore(); without, nothing outlives the process.
  explicit AmqpService(AmqpOptions options,
                       std::unique_ptr<messaging::Definitions> definitions = nullptr);

  // Declares what the definitions journal holds; returns how many definitions.
  Result<size_t> restore();
  messaging::Definitions* definitions() { return definitions_.get(); }

  const AmqpOptions& options() const { return options_; }
  // nullptr when there is no such virtual host.
  messaging::VirtualHost* vhost(const std::string& name);
  bool authenticate(const std::string& user, const std::string& password, bool loopback) const;
  // Guards the virtual hosts (connections may run on several threads).
  std::mutex& mutex() { return mutex_; }

 private:
  AmqpOptions options_;
  std::map<std::string, messaging::VirtualHost, std::less<>> vhosts_;
  std::unique_ptr<messaging::Definitions> definitions_;
  std::mutex mutex_;
};

class AmqpHandler final : public server::ProtocolHandler {
 public:
  explicit AmqpHandler(std::shared_ptr<AmqpService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<AmqpService> service_;
};

}  // namespace depot::amqp
