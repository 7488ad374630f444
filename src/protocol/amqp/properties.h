#pragma once
// The content header frame of basic class content: class-id, weight, body size, and the basic
// properties (a flags word, then the properties present, in flag order).
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/amqp/method.h"

namespace depot::amqp {

struct BasicProperties {
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
  bool operator==(const BasicProperties&) const = default;
};

struct ContentHeader {
  uint16_t class_id = kBasicClass;
  uint64_t body_size = 0;
  BasicProperties properties;
  // The flags and property values exactly as received, so that a message is delivered with the
  // bytes it was published with.
  ByteSpan raw_properties;
};

// A content header frame's payload. 505 UNEXPECTED_FRAME for a class other than basic; 502
// SYNTAX_ERROR for properties that are cut short, trail extra bytes or hold a bad table.
Decoded<ContentHeader> decode_content_header(ByteSpan payload);

// Appends a content header payload with these properties.
void encode_content_header(uint64_t body_size, const BasicProperties& properties, Bytes& out);
// Appends a content header payload with properties already encoded (raw_properties).
void encode_content_header(uint64_t body_size, ByteSpan raw_properties, Bytes& out);
// The encoded flags and values of `properties` (what raw_properties holds).
Bytes encode_properties(const BasicProperties& properties);

}  // namespace depot::amqp
