#pragma once
// Group commit. Appenders write to the page cache and register a waiter; a small pool of sync
// threads runs fdatasync for logs that have waiters, and one fdatasync completes every append it
// covers. While a sync is in flight new appends pile up and share the next one, so under load the
// cost of a sync is spread over many appends (the "fsync=always" default stays fast).
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/result.h"
#include "storage/fsync_policy.h"

namespace depot::storage {

class Log;

class SyncService {
 public:
  explicit SyncService(FsyncPolicy policy, unsigned threads = 2);
  ~SyncService();
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  const FsyncPolicy& policy() const { return policy_; }

  // Syncs every open log that has unsynced writes and waits for it (shutdown, checkpoints).
  Result<void> sync_all();

  // Finishes queued syncs and stops the threads. Idempotent; the destructor calls it.
  void stop();

 private:
  friend class Log;
  void register_log(const std::shared_ptr<Log>& log);
  void unregister_log(const Log* log);
  // Queues a sync of `log` (a no-op if it is already queued or running).
  void schedule(std::shared_ptr<Log> log);
  void run_worker();
  void run_interval_timer();

  FsyncPolicy policy_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Log>> queue_;
  std::vector<std::weak_ptr<Log>> logs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace depot::storage
