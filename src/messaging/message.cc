#include "messaging/message.h"

#include "common/numbers.h"

namespace depot::messaging {

std::optional<int64_t> expiration_ms(const MessageProperties& properties) {
  if (!properties.expiration) return std::nullopt;
  const std::string& text = *properties.expiration;
  if (text.size() > 18) return std::nullopt;
  const auto value = parse_integer<int64_t>(text);
  if (!value || *value < 0) return std::nullopt;
  return value;
}

MessagePtr ResidentBudget::keep(std::shared_ptr<Message> message) {
  const auto size = static_cast<int64_t>(message->body.size() + message->raw_properties.size());
  if (state_->used.load(std::memory_order_relaxed) + size > limit_) return nullptr;
  return charge(std::move(message));
}

MessagePtr ResidentBudget::charge(std::shared_ptr<Message> message) {
  const auto size = static_cast<int64_t>(message->body.size() + message->raw_properties.size());
  state_->used.fetch_add(size, std::memory_order_relaxed);
  // An aliasing pointer whose control block also releases the charge.
  auto charged = std::shared_ptr<const Message>(
      message.get(), [message, state = state_, size](const Message*) mutable {
        state->used.fetch_sub(size, std::memory_order_relaxed);
        message.reset();
      });
  return charged;
}

}  // namespace depot::messaging
