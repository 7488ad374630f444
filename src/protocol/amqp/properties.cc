#include "protocol/amqp/properties.h"

namespace depot::amqp {

Decoded<ContentHeader> decode_content_header(ByteSpan payload) {
  ByteReader in(payload);
  ContentHeader header;
  header.class_id = in.read_be<uint16_t>();
  (void)in.read_be<uint16_t>();  // weight: unused
  header.body_size = in.read_be<uint64_t>();
  const size_t properties_at = in.position();
  auto bad = [&](const char* what) {
    return protocol_error(ReplyCode::syntax_error, std::string("content header: ") + what,
                          kBasicClass, 40);
  };
  if (!in.ok()) return bad("cut short");
  if (header.class_id != kBasicClass) {
    return protocol_error(
        ReplyCode::unexpected_frame,
        "content header for class " + std::to_string(header.class_id) + ", not basic (60)");
  }
  if (const char* wrong = messaging::read_properties(in, header.properties)) return bad(wrong);
  header.raw_properties = payload.subspan(properties_at);
  return header;
}

void encode_content_header(uint64_t body_size, ByteSpan raw_properties, Bytes& out) {
  ByteWriter w(out);
  w.write_be<uint16_t>(kBasicClass);
  w.write_be<uint16_t>(0);
  w.write_be<uint64_t>(body_size);
  w.write_bytes(raw_properties);
}

void encode_content_header(uint64_t body_size, const BasicProperties& properties, Bytes& out) {
  encode_content_header(body_size, encode_properties(properties), out);
}

}  // namespace depot::amqp
