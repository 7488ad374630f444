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
void append_heartbeat(Bytes& out);

}  // namespace depot::amqp
