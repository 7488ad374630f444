#pragma once
// The Kafka face on port 9092: size-prefixed requests answered in order, over eventlog/.
// Served so far: ApiVersions (0-4) and Metadata (0-12, this node as the only broker and the
// leader of every partition, topics created on first use). ApiVersions advertises exactly
// these; any other API or version closes the connection, as Kafka does.
#include <cstdint>
#include <memory>
#include <string>

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

 private:
  std::unique_ptr<eventlog::TopicStore> topics_;
  KafkaOptions options_;
};

class KafkaHandler final : public server::ProtocolHandler {
 public:
  explicit KafkaHandler(std::shared_ptr<KafkaService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<KafkaService> service_;
};

}  // namespace depot::kafka
