#pragma once
// The Kafka face on port 9092: size-prefixed requests, over eventlog/. Requests on a connection
// are handled one at a time and answered in order, as a Kafka broker does (it stops reading a
// connection until its current request is answered). ApiVersions advertises exactly what is
// served; any other API or version closes the connection, as Kafka does.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "eventlog/topics.h"
#include "server/protocol_handler.h"

namespace depot::kafka {

struct KafkaOptions {
  int32_t node_id = 1;
  std::string cluster_id = "depot";
  // Kafka's socket.request.max.bytes: a larger request closes the connection.
  size_t max_request_bytes = 100ULL << 20;
};

class KafkaService {
 public:
  KafkaService(std::unique_ptr<eventlog::TopicStore> topics, KafkaOptions options)
      : topics_(std::move(topics)), options_(std::move(options)) {}
  eventlog::TopicStore& topics() { return *topics_; }
  const KafkaOptions& options() const { return options_; }

  // Fetches waiting for data (long polls) register here and are woken by every append.
  struct AppendWaiter {
    explicit AppendWaiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    bool appended = false;
  };
  void watch_appends(const std::shared_ptr<AppendWaiter>& waiter);
  void notify_appended();

 private:
  std::unique_ptr<eventlog::TopicStore> topics_;
  KafkaOptions options_;
  std::mutex waiters_mutex_;
  std::vector<std::weak_ptr<AppendWaiter>> waiters_;
};

class KafkaHandler final : public server::ProtocolHandler {
 public:
  explicit KafkaHandler(std::shared_ptr<KafkaService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<KafkaService> service_;
};

}  // namespace depot::kafka
