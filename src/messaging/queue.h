#pragma once
// A queue's messages and consumers, as a RabbitMQ classic queue keeps them: ready messages in
// order (one lane per priority with x-max-priority), messages delivered and not yet settled, and
// the consumers they go to, round-robin (or to the single active consumer). Requeued messages go
// back to their original place. Expiry (x-message-ttl, per-message expiration) is checked at the
// head, as RabbitMQ does; x-max-length / x-max-length-bytes drop the head or refuse the newcomer.
// Messages leaving a queue other than by an ack are reported to the caller (the virtual host
// dead-letters them). No I/O and no locking: the virtual host's owner serialises calls.
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messaging/message.h"

namespace depot::messaging {

class MessageQueue;

enum class Overflow { drop_head, reject_publish, reject_publish_dlx };

// A queue's x-arguments, checked as RabbitMQ checks them.
struct QueueArguments {
  std::optional<int64_t> message_ttl_ms;               // x-message-ttl, >= 0
  std::optional<int64_t> expires_ms;                   // x-expires, > 0
  std::optional<int64_t> max_length;                   // x-max-length, >= 0
  std::optional<int64_t> max_length_bytes;             // x-max-length-bytes, >= 0
  Overflow overflow = Overflow::drop_head;             // x-overflow
  std::optional<std::string> dead_letter_exchange;     // x-dead-letter-exchange
  std::optional<std::string> dead_letter_routing_key;  // x-dead-letter-routing-key
  std::optional<uint8_t> max_priority;                 // x-max-priority, 0..255
  bool single_active_consumer = false;                 // x-single-active-consumer
};

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct QueuedMessage {
  uint64_t seq = 0;    // place in the queue: a requeued message returns to it
  int64_t id = -1;     // in the journal, or -1 when only in RAM
  MessagePtr message;  // nullptr when only in the journal
  uint64_t body_size = 0;
  uint8_t priority = 0;
  int64_t expires_at = kNever;  // ms since the epoch
  bool redelivered = false;
};

enum class DeathReason { rejected, expired, maxlen };
const char* death_reason_name(DeathReason reason);

// A message that left its queue other than by an ack.
struct DeadMessage {
  std::string queue;
  QueuedMessage message;
  DeathReason reason = DeathReason::rejected;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Whether it may take one more message now (prefetch, flow, write backlog).
  virtual bool ready() const = 0;
  // Whether deliveries must be settled (false: no-ack, settled as they are handed over).
  virtual bool acks() const = 0;
  // A message for it. With acks() the queue keeps it as unacked under message.seq.
  virtual void deliver(const std::shared_ptr<MessageQueue>& queue,
                       const QueuedMessage& message) = 0;
  // The queue went away (deleted): the consumer is gone from it.
  virtual void cancelled() = 0;
};

enum class PushResult { queued, refused, dead_lettered };

class MessageQueue : public std::enable_shared_from_this<MessageQueue> {
 public:
  // `journal` may be null (messages in RAM only).
  MessageQueue(std::string name, const QueueArguments& arguments, MessageJournal* journal);

  const std::string& name() const { return name_; }
  uint64_t next_seq() { return ++last_seq_; }

  // Adds a message at the tail (its seq set by the caller from next_seq()). Past x-max-length
  // the head is dropped into `dead` (drop-head) or the newcomer is refused (reject-publish) or
  // dead-lettered (reject-publish-dlx, into `dead`).
  PushResult push(QueuedMessage message, std::vector<DeadMessage>& dead);
  // Hands ready messages to ready consumers, dropping expired heads into `dead`.
  void dispatch(int64_t now, std::vector<DeadMessage>& dead);
  // basic.get: the next live message, kept as unacked unless `settle`.
  std::optional<QueuedMessage> get(bool settle, int64_t now, std::vector<DeadMessage>& dead);

  // Settles an unacked message: acked (gone), requeued (back in its place, redelivered), or
  // dropped into `dead` as rejected. Unknown seqs (already settled, purged) are ignored.
  void ack(uint64_t seq);
  void requeue(uint64_t seq);
  void reject(uint64_t seq, std::vector<DeadMessage>& dead);

  // Expired heads into `dead`.
  void expire(int64_t now, std::vector<DeadMessage>& dead);
  // Drops every ready message; returns how many.
  uint32_t purge();
  // Drops everything, cancels consumers: the queue is being deleted. Returns ready messages.
  uint32_t remove();

  // Exclusive: no other consumer may join, and it may join only an unconsumed queue.
  // False when refused by an existing exclusive consumer or, for `exclusive`, any consumer.
  bool add_consumer(Consumer* consumer, bool exclusive);
  void remove_consumer(Consumer* consumer);
  bool has_consumer(const Consumer* consumer) const;

  uint32_t ready_count() const { return static_cast<uint32_t>(ready_count_); }
  uint64_t ready_bytes() const { return ready_bytes_; }
  uint32_t unacked_count() const { return static_cast<uint32_t>(unacked_.size()); }
  uint32_t consumer_count() const { return static_cast<uint32_t>(consumers_.size()); }
  bool removed() const { return removed_; }

  // For x-expires: the last time it was consumed from, declared, or fetched from.
  void touch(int64_t now) { last_used_ = now; }
  int64_t last_used() const { return last_used_; }

  // When a message put on it now expires (x-message-ttl and the message's own expiration).
  int64_t expiry_for(const Message& message, int64_t now) const;
  uint8_t priority_for(const Message& message) const;

 private:
  std::deque<QueuedMessage>& lane(uint8_t priority) { return lanes_[priority]; }
  // The highest non-empty lane, or nullptr.
  std::deque<QueuedMessage>* head_lane();
  void take_ready(QueuedMessage& out, std::deque<QueuedMessage>& from);
  void settle(const QueuedMessage& message);
  void enforce_limits(std::vector<DeadMessage>& dead);
  bool over_limits(uint64_t extra_bytes, uint64_t extra_count) const;
  Consumer* next_consumer();

  std::string name_;
  MessageJournal* journal_;
  std::optional<int64_t> message_ttl_ms_;
  std::optional<int64_t> max_length_;
  std::optional<int64_t> max_length_bytes_;
  Overflow overflow_ = Overflow::drop_head;
  bool single_active_ = false;
  uint8_t max_priority_ = 0;

  std::vector<std::deque<QueuedMessage>> lanes_;
  size_t ready_count_ = 0;
  uint64_t ready_bytes_ = 0;
  std::unordered_map<uint64_t, QueuedMessage> unacked_;
  std::vector<Consumer*> consumers_;
  size_t next_consumer_ = 0;
  bool exclusive_consumer_ = false;
  uint64_t last_seq_ = 0;
  int64_t last_used_ = 0;
  bool removed_ = false;
};

}  // namespace depot::messaging
