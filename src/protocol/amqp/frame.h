#pragma once
// AMQP 0-9-1 frames: type, channel, size, payload, frame-end (0xCE).
#include <cstdint>

#include "common/bytes.h"
#include "protocol/amqp/constants.h"

namespace depot::amqp {

struct Frame {
  FrameType type = FrameType::heartbeat;
  uint16_t channel = 0;
  ByteSpan payload;  // points into the scanned buffer
};

// What is at the front of a buffer: a whole frame (and its size in bytes), not enough bytes yet,
// or a frame error (an unknown type, a size over frame_max, a wrong frame-end octet).
struct FrameScan {
  enum class Status { frame, need_more, error } status = Status::need_more;
  Frame frame;
  size_t size = 0;
  ProtocolError error;
};

// `frame_max` bounds a whole frame, header and frame-end included (0: no bound).
FrameScan scan_frame(ByteSpan buffer, uint32_t frame_max);

void append_frame(Bytes& out, FrameType type, uint16_t channel, ByteSpan payload);

// Appends a frame whose payload `write_payload(out)` writes in place: no payload buffer is built
// and copied (the writer frames every delivery this way).
template <class WritePayload>
void append_frame_in_place(Bytes& out, FrameType type, uint16_t channel,
                           WritePayload&& write_payload) {
  ByteWriter w(out);
  w.write_be<uint8_t>(static_cast<uint8_t>(type));
  w.write_be<uint16_t>(channel);
  const size_t size_at = out.size();
  w.write_be<uint32_t>(0);
  write_payload(out);
  w.patch_be<uint32_t>(size_at, static_cast<uint32_t>(out.size() - size_at - sizeof(uint32_t)));
  w.write_be<uint8_t>(kFrameEnd);
}

void append_heartbeat(Bytes& out);

}  // namespace depot::amqp
