#include "messaging/properties.h"

#include <algorithm>

namespace depot::messaging {
namespace {

// Flag bits, first property highest (bit 15).
constexpr uint16_t kContentType = 1U << 15;
constexpr uint16_t kContentEncoding = 1U << 14;
constexpr uint16_t kHeaders = 1U << 13;
constexpr uint16_t kDeliveryMode = 1U << 12;
constexpr uint16_t kPriority = 1U << 11;
constexpr uint16_t kCorrelationId = 1U << 10;
constexpr uint16_t kReplyTo = 1U << 9;
constexpr uint16_t kExpiration = 1U << 8;
constexpr uint16_t kMessageId = 1U << 7;
constexpr uint16_t kTimestamp = 1U << 6;
constexpr uint16_t kType = 1U << 5;
constexpr uint16_t kUserId = 1U << 4;
constexpr uint16_t kAppId = 1U << 3;
constexpr uint16_t kClusterId = 1U << 2;
constexpr uint16_t kMoreFlags = 1U;  // another flags word follows: basic has no such properties

void read_shortstr(ByteReader& in, std::optional<std::string>& out) {
  const auto size = in.read_be<uint8_t>();
  out = std::string(as_chars(in.read_bytes(size)));
}

void write_shortstr(ByteWriter& out, const std::string& s) {
  const size_t size = std::min<size_t>(s.size(), 255);
  out.write_be<uint8_t>(static_cast<uint8_t>(size));
  out.write_bytes(as_bytes(std::string_view(s).substr(0, size)));
}

}  // namespace

const char* read_properties(ByteReader& in, MessageProperties& p) {
  const auto flags = in.read_be<uint16_t>();
  if (!in.ok()) return "cut short";
  if ((flags & kMoreFlags) != 0) return "basic properties have one flags word, not more";
  if (flags & kContentType) read_shortstr(in, p.content_type);
  if (flags & kContentEncoding) read_shortstr(in, p.content_encoding);
  if (flags & kHeaders) {
    FieldTable table;
    if (read_table(in, table)) p.headers = std::move(table);
  }
  if (flags & kDeliveryMode) p.delivery_mode = in.read_be<uint8_t>();
  if (flags & kPriority) p.priority = in.read_be<uint8_t>();
  if (flags & kCorrelationId) read_shortstr(in, p.correlation_id);
  if (flags & kReplyTo) read_shortstr(in, p.reply_to);
  if (flags & kExpiration) read_shortstr(in, p.expiration);
  if (flags & kMessageId) read_shortstr(in, p.message_id);
  if (flags & kTimestamp) p.timestamp = in.read_be<uint64_t>();
  if (flags & kType) read_shortstr(in, p.type);
  if (flags & kUserId) read_shortstr(in, p.user_id);
  if (flags & kAppId) read_shortstr(in, p.app_id);
  if (flags & kClusterId) read_shortstr(in, p.cluster_id);
  if (!in.ok()) return "properties are malformed or cut short";
  if (!in.at_end()) return "properties are followed by extra bytes";
  return nullptr;
}

Bytes encode_properties(const MessageProperties& p) {
  Bytes out;
  ByteWriter w(out);
  uint16_t flags = 0;
  if (p.content_type) flags |= kContentType;
  if (p.content_encoding) flags |= kContentEncoding;
  if (p.headers) flags |= kHeaders;
  if (p.delivery_mode) flags |= kDeliveryMode;
  if (p.priority) flags |= kPriority;
  if (p.correlation_id) flags |= kCorrelationId;
  if (p.reply_to) flags |= kReplyTo;
  if (p.expiration) flags |= kExpiration;
  if (p.message_id) flags |= kMessageId;
  if (p.timestamp) flags |= kTimestamp;
  if (p.type) flags |= kType;
  if (p.user_id) flags |= kUserId;
  if (p.app_id) flags |= kAppId;
  if (p.cluster_id) flags |= kClusterId;
  w.write_be<uint16_t>(flags);
  if (p.content_type) write_shortstr(w, *p.content_type);
  if (p.content_encoding) write_shortstr(w, *p.content_encoding);
  if (p.headers) write_table(w, *p.headers);
  if (p.delivery_mode) w.write_be<uint8_t>(*p.delivery_mode);
  if (p.priority) w.write_be<uint8_t>(*p.priority);
  if (p.correlation_id) write_shortstr(w, *p.correlation_id);
  if (p.reply_to) write_shortstr(w, *p.reply_to);
  if (p.expiration) write_shortstr(w, *p.expiration);
  if (p.message_id) write_shortstr(w, *p.message_id);
  if (p.timestamp) w.write_be<uint64_t>(*p.timestamp);
  if (p.type) write_shortstr(w, *p.type);
  if (p.user_id) write_shortstr(w, *p.user_id);
  if (p.app_id) write_shortstr(w, *p.app_id);
  if (p.cluster_id) write_shortstr(w, *p.cluster_id);
  return out;
}

}  // namespace depot::messaging
