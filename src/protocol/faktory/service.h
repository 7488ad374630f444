#pragma once
// What every Faktory connection shares: the job store, the worker registry, the wake-up of
// blocked FETCHes, and the once-a-second maintenance (due jobs, expired reservations, silent
// workers). Lives on the server's io_context; all calls come from its thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "jobs/store.h"
#include "jobs/workers.h"

namespace depot::server {
class Connection;
}

namespace depot::faktory {

struct FaktoryOptions {
  std::optional<std::string> password;  // clients must prove they know it (HELLO pwdhash)
  std::size_t max_job_bytes = std::size_t{1} << 20;  // larger PUSH payloads are refused
  std::chrono::milliseconds fetch_wait{2000};        // how long FETCH blocks on empty queues
  std::chrono::milliseconds maintenance_interval{1000};
};

class FaktoryService : public std::enable_shared_from_this<FaktoryService> {
 public:
  FaktoryService(std::unique_ptr<jobs::JobStore> store, boost::asio::any_io_executor executor,
                 FaktoryOptions options);
  ~FaktoryService();

  // Starts the maintenance timer. stop() cancels it and closes the store.
  void start();
  void stop();

  jobs::JobStore& store() { return *store_; }
  jobs::WorkerRegistry& workers() { return workers_; }
  const FaktoryOptions& options() const { return options_; }

  // Waits until a job may have become ready in some queue, or `deadline`.
  boost::asio::awaitable<void> wait_for_jobs(std::chrono::steady_clock::time_point deadline);

  // Connections of worker processes, so that a reaped worker's sockets can be closed.
  void attach_worker(const std::string& wid, server::Connection* connection);
  void detach_worker(const std::string& wid, server::Connection* connection);

  void count_command() { ++command_count_; }
  void connection_opened() { ++connections_; }
  void connection_closed() { --connections_; }
  uint64_t command_count() const { return command_count_; }
  int64_t connections() const { return connections_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  void schedule_maintenance();
  void maintain();
  void wake_fetchers();

  std::unique_ptr<jobs::JobStore> store_;
  boost::asio::any_io_executor executor_;
  FaktoryOptions options_;
  jobs::WorkerRegistry workers_;
  boost::asio::steady_timer maintenance_timer_;
  std::set<boost::asio::steady_timer*> fetch_waiters_;
  std::multimap<std::string, server::Connection*> worker_connections_;
  uint64_t command_count_ = 0;
  int64_t connections_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool stopped_ = false;
};

}  // namespace depot::faktory
