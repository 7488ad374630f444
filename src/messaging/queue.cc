#include "messaging/queue.h"

#include <algorithm>

namespace depot::messaging {

const char* death_reason_name(DeathReason reason) {
  switch (reason) {
    case DeathReason::rejected:
      return "rejected";
    case DeathReason::expired:
      return "expired";
    case DeathReason::maxlen:
      return "maxlen";
  }
  return "rejected";
}

MessageQueue::MessageQueue(std::string name, const QueueArguments& arguments,
                           MessageJournal* journal)
    : name_(std::move(name)),
      journal_(journal),
      message_ttl_ms_(arguments.message_ttl_ms),
      max_length_(arguments.max_length),
      max_length_bytes_(arguments.max_length_bytes),
      overflow_(arguments.overflow),
      single_active_(arguments.single_active_consumer),
      max_priority_(arguments.max_priority.value_or(0)),
      lanes_(static_cast<size_t>(max_priority_) + 1) {}

int64_t MessageQueue::expiry_for(const Message& message, int64_t now) const {
  int64_t at = kNever;
  if (message_ttl_ms_) at = now + *message_ttl_ms_;
  if (auto own = expiration_ms(message.properties)) at = std::min(at, now + *own);
  return at;
}

uint8_t MessageQueue::priority_for(const Message& message) const {
  return std::min(message.properties.priority.value_or(0), max_priority_);
}

std::deque<QueuedMessage>* MessageQueue::head_lane() {
  for (auto it = lanes_.rbegin(); it != lanes_.rend(); ++it) {
    if (!it->empty()) return &*it;
  }
  return nullptr;
}

void MessageQueue::take_ready(QueuedMessage& out, std::deque<QueuedMessage>& from) {
  out = std::move(from.front());
  from.pop_front();
  --ready_count_;
  ready_bytes_ -= out.body_size;
}

void MessageQueue::settle(const QueuedMessage& message) {
  if (journal_ != nullptr && message.id >= 0) journal_->settle(message.id);
}

bool MessageQueue::over_limits(uint64_t extra_bytes, uint64_t extra_count) const {
  return (max_length_ && static_cast<int64_t>(ready_count_ + extra_count) > *max_length_) ||
         (max_length_bytes_ &&
          static_cast<int64_t>(ready_bytes_ + extra_bytes) > *max_length_bytes_);
}

void MessageQueue::enforce_limits(std::vector<DeadMessage>& dead) {
  while (ready_count_ > 0 && over_limits(0, 0)) {
    // RabbitMQ drops from the head of the queue as a whole: the highest lane's first message.
    QueuedMessage dropped;
    take_ready(dropped, *head_lane());
    dead.push_back({name_, std::move(dropped), DeathReason::maxlen});
  }
}

PushResult MessageQueue::push(QueuedMessage message, std::vector<DeadMessage>& dead) {
  if (overflow_ != Overflow::drop_head && over_limits(message.body_size, 1)) {
    if (overflow_ == Overflow::reject_publish) return PushResult::refused;
    dead.push_back({name_, std::move(message), DeathReason::maxlen});
    return PushResult::dead_lettered;
  }
  message.priority = std::min(message.priority, max_priority_);
  ++ready_count_;
  ready_bytes_ += message.body_size;
  lane(message.priority).push_back(std::move(message));
  enforce_limits(dead);
  return PushResult::queued;
}

void MessageQueue::expire(int64_t now, std::vector<DeadMessage>& dead) {
  for (auto& ready : lanes_) {
    while (!ready.empty() && ready.front().expires_at < now) {
      QueuedMessage gone;
      take_ready(gone, ready);
      dead.push_back({name_, std::move(gone), DeathReason::expired});
    }
  }
}

Consumer* MessageQueue::next_consumer() {
  if (consumers_.empty()) return nullptr;
  if (single_active_) return consumers_.front()->ready() ? consumers_.front() : nullptr;
  const size_t n = consumers_.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t at = (next_consumer_ + i) % n;
    if (consumers_[at]->ready()) {
      next_consumer_ = at + 1;
      return consumers_[at];
    }
  }
  return nullptr;
}

void MessageQueue::dispatch(int64_t now, std::vector<DeadMessage>& dead) {
  if (consumers_.empty() || removed_) return;
  expire(now, dead);
  auto self = shared_from_this();
  while (auto* from = head_lane()) {
    if (from->front().expires_at < now) {
      expire(now, dead);
      continue;
    }
    Consumer* consumer = next_consumer();
    if (consumer == nullptr) break;
    QueuedMessage message;
    take_ready(message, *from);
    if (consumer->acks()) {
      unacked_.emplace(message.seq, message);
    } else {
      settle(message);
    }
    consumer->deliver(self, message);
  }
}

std::optional<QueuedMessage> MessageQueue::get(bool settle_now, int64_t now,
                                               std::vector<DeadMessage>& dead) {
  touch(now);
  expire(now, dead);
  auto* from = head_lane();
  if (from == nullptr) return std::nullopt;
  QueuedMessage message;
  take_ready(message, *from);
  if (settle_now) {
    settle(message);
  } else {
    unacked_.emplace(message.seq, message);
  }
  return message;
}

void MessageQueue::ack(uint64_t seq) {
  auto it = unacked_.find(seq);
  if (it == unacked_.end()) return;
  settle(it->second);
  unacked_.erase(it);
}

void MessageQueue::requeue(uint64_t seq) {
  auto it = unacked_.find(seq);
  if (it == unacked_.end()) return;
  QueuedMessage message = std::move(it->second);
  unacked_.erase(it);
  message.redelivered = true;
  auto& ready = lane(message.priority);
  auto place = std::lower_bound(
      ready.begin(), ready.end(), message.seq,
      [](const QueuedMessage& queued, uint64_t place_of) { return queued.seq < place_of; });
  ++ready_count_;
  ready_bytes_ += message.body_size;
  ready.insert(place, std::move(message));
}

void MessageQueue::reject(uint64_t seq, std::vector<DeadMessage>& dead) {
  auto it = unacked_.find(seq);
  if (it == unacked_.end()) return;
  dead.push_back({name_, std::move(it->second), DeathReason::rejected});
  unacked_.erase(it);
}

uint32_t MessageQueue::purge() {
  uint32_t count = 0;
  for (auto& ready : lanes_) {
    for (const QueuedMessage& message : ready) {
      settle(message);
      ++count;
    }
    ready.clear();
  }
  ready_count_ = 0;
  ready_bytes_ = 0;
  return count;
}

uint32_t MessageQueue::remove() {
  removed_ = true;
  const uint32_t count = purge();
  for (const auto& [seq, message] : unacked_)
    settle(message);
  unacked_.clear();
  auto consumers = std::move(consumers_);
  consumers_.clear();
  for (Consumer* consumer : consumers)
    consumer->cancelled();
  return count;
}

bool MessageQueue::add_consumer(Consumer* consumer, bool exclusive) {
  if (exclusive_consumer_ || (exclusive && !consumers_.empty())) return false;
  exclusive_consumer_ = exclusive;
  consumers_.push_back(consumer);
  return true;
}

void MessageQueue::remove_consumer(Consumer* consumer) {
  auto it = std::find(consumers_.begin(), consumers_.end(), consumer);
  if (it == consumers_.end()) return;
  consumers_.erase(it);
  if (consumers_.empty()) exclusive_consumer_ = false;
  if (next_consumer_ > consumers_.size()) next_consumer_ = 0;
}

bool MessageQueue::has_consumer(const Consumer* consumer) const {
  return std::find(consumers_.begin(), consumers_.end(), consumer) != consumers_.end();
}

}  // namespace depot::messaging
