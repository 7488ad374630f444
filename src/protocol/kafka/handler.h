#pragma once
// The Kafka face on port 9092: size-prefixed requests, over eventlog/. Requests on a connection
// are handled one at a time and answered in order, as a Kafka broker does (it stops reading a
// connection until its current request is answered). ApiVersions advertises exactly what is
// served; any other API or version closes the connection, as Kafka does.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "eventlog/groups.h"
#include "eventlog/offsets.h"
#include "eventlog/topics.h"
#include "server/protocol_handler.h"

namespace depot::kafka {

struct KafkaOptions {
  int32_t node_id = 1;
  std::string cluster_id = "depot";
  // Kafka's socket.request.max.bytes: a larger request closes the connection.
  size_t max_request_bytes = 100ULL << 20;
  eventlog::GroupCoordinatorOptions groups;
  // SASL users (name -> password); empty: no authentication.
  std::map<std::string, std::string> users;
  // How often retention and compaction look at the logs (Kafka's log.retention.check.interval.ms).
  std::chrono::milliseconds maintenance_interval{5 * 60 * 1000};
};

class KafkaService {
 public:
  KafkaService(std::unique_ptr<eventlog::TopicStore> topics,
               std::unique_ptr<eventlog::OffsetStore> offsets, KafkaOptions options);
  ~KafkaService();
  eventlog::TopicStore& topics() { return *topics_; }
  eventlog::OffsetStore& offsets() { return *offsets_; }
  const KafkaOptions& options() const { return options_; }

  // The group coordinator is single-threaded: every use holds this mutex. Its callbacks run
  // under it, so they only post to their connection's executor.
  std::mutex& groups_mutex() { return groups_mutex_; }
  eventlog::GroupCoordinator& groups() { return groups_; }

  // Starts the group coordinator's clock (session and rebalance timeouts) and log maintenance
  // (retention, compaction) on a thread of its own.
  void start(const boost::asio::any_io_executor& executor);
  // Stops both, and closes the logs.
  Result<void> close();

  // A thread for steps too slow for the I/O thread, which would hold up every connection:
  // SCRAM's key derivation, ListOffsets by time (it reads segment files). The connection's
  // coroutine moves there and back; only thread-safe state (the stores) may be touched there.
  boost::asio::thread_pool::executor_type cpu_executor() { return cpu_.get_executor(); }

  // Fetches waiting for data (long polls) register here for the partitions they read, and are
  // woken when records become readable in one of them.
  struct AppendWaiter {
    explicit AppendWaiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    bool appended = false;
  };
  void watch_appends(const std::shared_ptr<AppendWaiter>& waiter,
                     const std::vector<const storage::Log*>& partitions);
  void notify_appended(const storage::Log* partition);

 private:
  void maintain();

  std::unique_ptr<eventlog::TopicStore> topics_;
  std::unique_ptr<eventlog::OffsetStore> offsets_;
  KafkaOptions options_;
  std::mutex groups_mutex_;
  eventlog::GroupCoordinator groups_;
  struct Ticker;
  std::shared_ptr<Ticker> ticker_;
  std::thread maintenance_;
  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_wake_;
  bool stopping_ = false;
  std::mutex waiters_mutex_;
  // By partition log (as an identity only: never dereferenced).
  std::unordered_map<const storage::Log*, std::vector<std::weak_ptr<AppendWaiter>>> waiters_;
  // Last, so destroyed first: work still queued on it is dropped while the rest still exists.
  boost::asio::thread_pool cpu_{1};
};

class KafkaHandler final : public server::ProtocolHandler {
 public:
  explicit KafkaHandler(std::shared_ptr<KafkaService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<KafkaService> service_;
};

}  // namespace depot::kafka
