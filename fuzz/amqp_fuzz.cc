// Fuzzes the AMQP 0-9-1 wire layer with untrusted bytes: frame scanning over a stream, method
// decoding, content headers and field tables. Nothing may crash or read out of bounds; whatever
// decodes must encode and decode again to the same bytes (so the server can send back what it
// read), and every error must be a reply code with a text that fits a shortstr.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/amqp/frame.h"
#include "protocol/amqp/method.h"
#include "protocol/amqp/properties.h"

using namespace depot;
using namespace depot::amqp;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_error(const ProtocolError& e) {
  check(e.text.size() <= 255);
  check(static_cast<uint16_t>(e.code) >= 300);
}

void fuzz_method(ByteSpan payload) {
  auto decoded = decode_method(payload);
  if (!decoded) {
    check_error(decoded.error());
    return;
  }
  Bytes encoded;
  encode_method(decoded.value(), encoded);
  auto again = decode_method(encoded);
  check(again.has_value());
  Bytes encoded_again;
  encode_method(again.value(), encoded_again);
  check(encoded == encoded_again);
}

void fuzz_header(ByteSpan payload) {
  auto decoded = decode_content_header(payload);
  if (!decoded) {
    check_error(decoded.error());
    return;
  }
  Bytes encoded;
  encode_content_header(decoded.value().body_size, decoded.value().properties, encoded);
  auto again = decode_content_header(encoded);
  check(again.has_value());
  check(again.value().properties == decoded.value().properties);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  // The input as a stream of frames, with a small frame_max so that limit is reached.
  ByteSpan rest = input;
  while (!rest.empty()) {
    FrameScan scan = scan_frame(rest, 1024);
    if (scan.status == FrameScan::Status::need_more) break;
    if (scan.status == FrameScan::Status::error) {
      check_error(scan.error);
      break;
    }
    check(scan.size <= rest.size() && scan.size >= kFrameHeaderSize + 1);
    if (scan.frame.type == FrameType::method) fuzz_method(scan.frame.payload);
    if (scan.frame.type == FrameType::header) fuzz_header(scan.frame.payload);
    rest = rest.subspan(scan.size);
  }
  // And the whole input as one method payload, one content header and one table body.
  fuzz_method(input);
  fuzz_header(input);
  FieldTable table;
  if (read_table_body(input, table)) {
    Bytes encoded;
    ByteWriter w(encoded);
    write_table(w, table);
    ByteReader in(encoded);
    FieldTable again;
    check(read_table(in, again) && in.at_end());
  }
  return 0;
}
