#include "storage/sync_service.h"

#include <algorithm>

#include "storage/errc.h"
#include "storage/log.h"

namespace depot::storage {

SyncService::SyncService(FsyncPolicy policy, unsigned threads) : policy_(policy) {
  if (policy_.mode == FsyncMode::always) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i)
      threads_.emplace_back([this] { run_worker(); });
  } else if (policy_.mode == FsyncMode::interval) {
    threads_.emplace_back([this] { run_interval_timer(); });
  }
}

SyncService::~SyncService() {
  stop();
}

void SyncService::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

void SyncService::register_log(const std::shared_ptr<Log>& log) {
  std::lock_guard lock(mutex_);
  std::erase_if(logs_, [](const std::weak_ptr<Log>& w) { return w.expired(); });
  logs_.push_back(log);
}

void SyncService::unregister_log(const Log* log) {
  std::lock_guard lock(mutex_);
  // A log being destroyed has already expired; one being closed still locks to itself.
  std::erase_if(logs_, [log](const std::weak_ptr<Log>& w) {
    auto alive = w.lock();
    return !alive || alive.get() == log;
  });
}

void SyncService::schedule(std::shared_ptr<Log> log) {
  {
    std::unique_lock lock(mutex_);
    if (!stopping_ && !threads_.empty()) {
      queue_.push_back(std::move(log));
      lock.unlock();
      wake_.notify_one();
      return;
    }
  }
  log->sync_and_complete(true);  // no sync threads left: do it on the caller's thread
}

void SyncService::run_worker() {
  for (;;) {
    std::shared_ptr<Log> log;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued sync has run
      log = std::move(queue_.front());
      queue_.pop_front();
    }
    Log::Completions completions = log->sync(true);
    log.reset();  // before the waiters learn they are done (see Log::sync)
    completions.run();
  }
}

void SyncService::run_interval_timer() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, policy_.interval, [this] { return stopping_; });
    std::vector<std::shared_ptr<Log>> dirty;
    for (const auto& weak : logs_) {
      if (auto log = weak.lock()) dirty.push_back(std::move(log));
    }
    lock.unlock();
    for (const auto& log : dirty) {
      if (log->has_unsynced_writes()) (void)log->flush();  // a failure marks the log failed
    }
    dirty.clear();
    lock.lock();
  }
}

Result<void> SyncService::sync_all() {
  std::vector<std::shared_ptr<Log>> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& weak : logs_) {
      if (auto log = weak.lock()) live.push_back(std::move(log));
    }
  }
  std::error_code first_error;
  for (const auto& log : live) {
    if (auto r = log->flush(); !r && !first_error) first_error = r.error();
  }
  if (first_error) return first_error;
  return success();
}

}  // namespace depot::storage
