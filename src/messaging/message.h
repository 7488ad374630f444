#pragma once
// A published message and the journal that keeps queued messages' bodies out of RAM. The journal
// is an interface here so that the domain stays free of storage; message_store.h is the one on
// the storage engine.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "messaging/properties.h"

namespace depot::messaging {

struct Message {
  std::string exchange;
  std::string routing_key;
  MessageProperties properties;
  Bytes raw_properties;  // as published (re-encoded only when dead-lettering changes them)
  Bytes body;
};
using MessagePtr = std::shared_ptr<const Message>;

// Milliseconds of the per-message `expiration` property, as RabbitMQ reads it: decimal digits
// only. nullopt when absent or not a number.
std::optional<int64_t> expiration_ms(const MessageProperties& properties);

class MessageJournal {
 public:
  virtual ~MessageJournal() = default;
  // Records `message` as queued on vhost/queue and returns its id. A `recoverable` one (a
  // persistent message in a durable queue) is restored after a restart; others are written only
  // to keep their bodies out of RAM and are forgotten at the next start.
  virtual Result<int64_t> append(const std::string& vhost, const std::string& queue,
                                 const Message& message, int64_t expires_at_ms,
                                 bool recoverable) = 0;
  // The message left its queue (acknowledged, dropped, dead-lettered, purged).
  virtual void settle(int64_t id) = 0;
  virtual Result<MessagePtr> read(int64_t id) = 0;
};

// How many bytes of queued message bodies RAM may hold, across every queue. Past it, messages are
// held only by the journal and read back when delivered (RabbitMQ's paging of queues to disk).
class ResidentBudget {
 public:
  explicit ResidentBudget(int64_t limit_bytes)
      : state_(std::make_shared<State>()), limit_(limit_bytes) {}
  // The message as a shared pointer charged to the budget until its last holder lets go, or
  // nullptr when it does not fit.
  MessagePtr keep(std::shared_ptr<Message> message);
  // Charges it anyway (a message that is not journaled must stay in RAM).
  MessagePtr charge(std::shared_ptr<Message> message);
  int64_t used_bytes() const { return state_->used; }
  int64_t limit_bytes() const { return limit_; }

 private:
  struct State {
    std::atomic<int64_t> used{0};  // released wherever the last holder lets go
  };
  std::shared_ptr<State> state_;
  int64_t limit_;
};

}  // namespace depot::messaging
