#include "protocol/amqp/frame.h"

#include <fmt/format.h>

namespace depot::amqp {

FrameScan scan_frame(ByteSpan buffer, uint32_t frame_max) {
  FrameScan scan;
  if (buffer.size() < kFrameHeaderSize) return scan;
  const auto type = static_cast<uint8_t>(buffer[0]);
  const auto channel = load_be<uint16_t>(buffer.data() + 1);
  const auto size = load_be<uint32_t>(buffer.data() + 3);
  auto fail = [&](const std::string& text) {
    scan.status = FrameScan::Status::error;
    scan.error = protocol_error(ReplyCode::frame_error, text);
    return scan;
  };
  if (type != 1 && type != 2 && type != 3 && type != 8) {
    return fail(fmt::format("unknown frame type {}", type));
  }
  const uint64_t total = uint64_t{size} + kFrameHeaderSize + 1;
  if (frame_max != 0 && total > frame_max) {
    return fail(fmt::format("frame of {} bytes is over frame_max {}", total, frame_max));
  }
  if (buffer.size() < total) return scan;
  if (static_cast<uint8_t>(buffer[total - 1]) != kFrameEnd) {
    return fail(fmt::format("frame-end octet is 0x{:02x}, not 0xce",
                            static_cast<uint8_t>(buffer[total - 1])));
  }
  scan.status = FrameScan::Status::frame;
  scan.frame = Frame{static_cast<FrameType>(type), channel, buffer.subspan(kFrameHeaderSize, size)};
  scan.size = static_cast<size_t>(total);
  return scan;
}

void append_frame(Bytes& out, FrameType type, uint16_t channel, ByteSpan payload) {
  append_frame_in_place(out, type, channel, [payload](Bytes& to) {
    to.insert(to.end(), payload.begin(), payload.end());
  });
}

void append_heartbeat(Bytes& out) {
  append_frame(out, FrameType::heartbeat, 0, {});
}

}  // namespace depot::amqp
