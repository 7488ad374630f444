#pragma once
// The AMQP 0-9-1 face (RabbitMQ's dialect) on port 5672: the connection handshake (PLAIN and
// AMQPLAIN, tune, virtual hosts), heartbeats, channels, the exchange and queue methods, and
// messages: publish (mandatory, basic.return), consume / deliver / get, qos, ack / nack / reject /
// recover, publisher confirms and transactions, over messaging::VirtualHost. Errors close the
// channel (403, 404, 405, 406) or the connection (5xx) with RabbitMQ's reply codes and texts.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "messaging/definitions.h"
#include "messaging/message_store.h"
#include "messaging/permissions.h"
#include "messaging/vhost.h"
#include "server/protocol_handler.h"

namespace depot::amqp {

struct AmqpOptions {
  std::vector<std::string> vhosts = {"/"};
  // User name -> password. guest/guest is there unless replaced, and (as in RabbitMQ) guest may
  // only connect from a loopback address.
  std::map<std::string, std::string> users = {{"guest", "guest"}};
  // Users with entries here may open only the vhosts named, with those rights.
  std::vector<messaging::PermissionEntry> permissions;
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat_seconds = 60;
  // The largest message body accepted (RabbitMQ's max_message_size).
  uint64_t max_message_bytes = 128ULL << 20;
  // Bytes of queued message bodies kept in RAM; past it they are read back from the store.
  int64_t resident_bytes = 256LL << 20;
  // Resource alarms (RabbitMQ's vm_memory_high_watermark and disk_free_limit): while depot's
  // resident memory is over memory_limit (0: none) or `data_dir`'s disk has less free space than
  // disk_free_limit, connections that publish are blocked.
  uint64_t memory_limit = 0;
  uint64_t disk_free_limit = 50ULL << 20;
  // Deliveries to a connection that received deliveries less than this long ago wait until this
  // long has passed, to go out in one write (0: each batch at once). See Session::start_writer.
  std::chrono::milliseconds delivery_coalescing{1};
  std::filesystem::path data_dir;
};

// What every AMQP connection shares: the virtual hosts and the users.
class AmqpService {
 public:
  // With `definitions`, durable exchanges, queues and bindings are journaled there and restored
  // by restore(); with `store`, queued messages live there (persistent ones in durable queues
  // across restarts). Without them, everything stays in RAM and nothing outlives the process.
  explicit AmqpService(AmqpOptions options,
                       std::unique_ptr<messaging::Definitions> definitions = nullptr,
                       std::unique_ptr<messaging::MessageStore> store = nullptr);
  ~AmqpService();

  struct Restored {
    size_t definitions = 0;
    size_t messages = 0;
  };
  // Declares what the definitions journal holds, then puts recovered messages back on their
  // queues.
  Result<Restored> restore();
  // Expires messages and unused queues, and lets the store drop settled segments, until stop().
  void start(const boost::asio::any_io_executor& executor);
  void stop();
  // Closes the journals (after the last connection).
  Result<void> close();

  messaging::Definitions* definitions() { return definitions_.get(); }
  messaging::MessageStore* store() { return store_.get(); }

  struct DeletedQueue {
    uint32_t messages = 0;
    // The definitions journal's offset to wait for (-1: nothing written); an error means the
    // deletion may come back after a restart.
    Result<int64_t> journaled = int64_t{-1};
  };
  // Deletes a queue (queue.delete, x-expires, auto-delete) and journals that when it was durable.
  // Call with mutex() held.
  messaging::Outcome<DeletedQueue> delete_queue(messaging::VirtualHost& vhost,
                                                const std::string& name, messaging::OwnerId owner,
                                                bool if_unused = false, bool if_empty = false);

  const AmqpOptions& options() const { return options_; }
  // nullptr when there is no such virtual host.
  messaging::VirtualHost* vhost(const std::string& name);
  bool authenticate(const std::string& user, const std::string& password, bool loopback) const;
  const messaging::Permissions& permissions() const { return permissions_; }
  // The resource alarm in force ("memory" or "disk"), or empty. Call with mutex() held.
  const std::string& alarm() const { return alarm_; }
  // Guards the virtual hosts (connections may run on several threads).
  std::mutex& mutex() { return mutex_; }

 private:
  void tick();
  void check_alarms();

  AmqpOptions options_;
  std::unique_ptr<messaging::Definitions> definitions_;
  std::unique_ptr<messaging::MessageStore> store_;
  messaging::ResidentBudget budget_;
  messaging::Permissions permissions_;
  std::string alarm_;
  // Declared after the journals so that they outlive the queues that refer to them.
  std::map<std::string, messaging::VirtualHost, std::less<>> vhosts_;
  std::mutex mutex_;
  struct Ticker;
  std::shared_ptr<Ticker> ticker_;
  // The store's garbage collection runs here, not on the I/O thread: deleting a settled segment
  // ends with the last close of a large unlinked file, which frees its blocks and page cache and
  // took tens of milliseconds, a stall of every connection once a second under load.
  std::atomic<bool> collecting_{false};
  // Last, so destroyed (joined) first, while the store it works on still exists.
  boost::asio::thread_pool maintenance_{1};
};

class AmqpHandler final : public server::ProtocolHandler {
 public:
  explicit AmqpHandler(std::shared_ptr<AmqpService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<AmqpService> service_;
};

}  // namespace depot::amqp
