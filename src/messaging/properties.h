#pragma once
// A message's properties, as AMQP's basic class defines them, and their binary form: a flags word
// then the properties present, in flag order. depot keeps messages in this form (the message store
// journals it, the AMQP face sends it unchanged), so it lives with the model, like field tables.
#include <cstdint>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "messaging/field.h"

namespace depot::messaging {

struct MessageProperties {
  std::optional<std::string> content_type;
  std::optional<std::string> content_encoding;
  std::optional<FieldTable> headers;
  std::optional<uint8_t> delivery_mode;  // 2: persistent
  std::optional<uint8_t> priority;
  std::optional<std::string> correlation_id;
  std::optional<std::string> reply_to;
  std::optional<std::string> expiration;  // milliseconds, as decimal text
  std::optional<std::string> message_id;
  std::optional<uint64_t> timestamp;
  std::optional<std::string> type;
  std::optional<std::string> user_id;
  std::optional<std::string> app_id;
  std::optional<std::string> cluster_id;

  bool persistent() const { return delivery_mode == 2; }
  bool operator==(const MessageProperties&) const = default;
};

// Reads the flags word and the properties it announces from `in` (all of it must be used).
// Returns nullptr on success, else what was wrong.
const char* read_properties(ByteReader& in, MessageProperties& out);
// The encoded flags and values (what read_properties reads).
Bytes encode_properties(const MessageProperties& properties);

}  // namespace depot::messaging
