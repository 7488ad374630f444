#pragma once
// The content header frame of basic class content: class-id, weight, body size, and the basic
// properties (a flags word, then the properties present, in flag order).
#include <cstdint>
#include <optional>
#include <string>

#include "messaging/properties.h"
#include "protocol/amqp/method.h"

namespace depot::amqp {

using BasicProperties = messaging::MessageProperties;
using messaging::encode_properties;

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

}  // namespace depot::amqp
