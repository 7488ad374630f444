#pragma once
// The message journal on the storage engine: one log of queued messages for every virtual host.
// A message record carries its queue, its expiry, its properties as published and its body; a
// settle record lists messages that left their queues. Persistent messages in durable queues are
// "recoverable": at the next start they are put back on their queues, in order. Other records
// exist only to keep bodies out of RAM and are forgotten at a restart.
//
// The log only grows at its head; segments whose messages have all been settled are deleted
// (collect_garbage()). A message left unsettled for a long time keeps its segment, and the ones
// after it, on disk.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "messaging/message.h"
#include "storage/log.h"

namespace depot::messaging {

class MessageStore final : public MessageJournal {
 public:
  // Segments are small enough that settled ones go soon.
  static constexpr uint64_t kSegmentBytes = 64ULL << 20;
  static Result<std::unique_ptr<MessageStore>> open(const std::filesystem::path& dir,
                                                    storage::SyncService* sync,
                                                    uint64_t segment_bytes = kSegmentBytes);
  ~MessageStore() override;

  struct Recovered {
    std::string vhost;
    std::string queue;
    int64_t id = -1;
    int64_t expires_at = 0;
    std::shared_ptr<Message> message;
  };
  // Every recoverable message not yet settled, oldest first, one at a time (bodies are not all
  // held at once). Call once, after opening and before any append.
  Result<size_t> recover(const std::function<void(Recovered)>& each);

  Result<int64_t> append(const std::string& vhost, const std::string& queue, const Message& message,
                         int64_t expires_at_ms, bool recoverable) override;
  void settle(int64_t id) override;
  Result<MessagePtr> read(int64_t id) override;

  // Calls `done` once `id` is durable under the fsync policy (on a sync thread, or at once).
  void when_durable(int64_t id, storage::Log::DurableCallback done);
  // Writes the settle records still buffered (to the page cache: they then survive a SIGKILL).
  // The AMQP face calls it before each reply, so an ack followed by any round trip is kept.
  Result<void> flush_settled();
  // Writes settle records still buffered, and deletes segments nothing live needs.
  Result<void> collect_garbage();
  Result<void> close();

  uint64_t size_bytes() const { return log_->size_bytes(); }
  size_t segment_count() const { return log_->segment_count(); }
  size_t live_count() const;

 private:
  explicit MessageStore(std::shared_ptr<storage::Log> log) : log_(std::move(log)) {}
  Result<void> flush_settled_locked();
  void mark_live_locked(int64_t id);

  std::shared_ptr<storage::Log> log_;
  mutable std::mutex mutex_;
  // Which ids from low_ on are still live (1) or settled (0); the front is trimmed as it settles,
  // so low_ is the oldest live id (or the head).
  std::deque<uint8_t> live_;
  int64_t low_ = 0;
  size_t live_count_ = 0;
  std::vector<int64_t> settled_;  // not yet written
};

}  // namespace depot::messaging
