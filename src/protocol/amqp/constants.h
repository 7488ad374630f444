#pragma once
// AMQP 0-9-1 constants (RabbitMQ's amqp-rabbitmq-0.9.1.json): frame types, reply codes and the
// class and method ids, and the error that closes a channel or the connection.
#include <array>
#include <cstdint>
#include <string>

namespace depot::amqp {

// "AMQP" 0 0 9 1: what a client sends first, and what the server answers to any other header.
inline constexpr std::array<uint8_t, 8> kProtocolHeader = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

enum class FrameType : uint8_t { method = 1, header = 2, body = 3, heartbeat = 8 };
inline constexpr uint8_t kFrameEnd = 0xCE;
inline constexpr size_t kFrameHeaderSize = 7;  // type, channel, size
// Every peer accepts frames this large; before connection.tune-ok none may be larger.
inline constexpr uint32_t kFrameMinSize = 4096;

enum class ReplyCode : uint16_t {
  success = 200,
  content_too_large = 311,
  no_route = 312,
  no_consumers = 313,
  connection_forced = 320,
  invalid_path = 402,
  access_refused = 403,
  not_found = 404,
  resource_locked = 405,
  precondition_failed = 406,
  frame_error = 501,
  syntax_error = 502,
  command_invalid = 503,
  channel_error = 504,
  unexpected_frame = 505,
  resource_error = 506,
  not_allowed = 530,
  not_implemented = 540,
  internal_error = 541,
};

// Hard errors close the connection (connection.close); soft ones close only the channel.
constexpr bool closes_connection(ReplyCode code) {
  switch (code) {
    case ReplyCode::access_refused:
    case ReplyCode::not_found:
    case ReplyCode::resource_locked:
    case ReplyCode::precondition_failed:
    case ReplyCode::content_too_large:
    case ReplyCode::no_route:
    case ReplyCode::no_consumers:
    case ReplyCode::success:
      return false;
    default:
      return true;
  }
}

// The names RabbitMQ puts at the start of reply texts ("NOT_FOUND - no queue 'x' in vhost '/'").
const char* reply_code_name(ReplyCode code);

// A protocol error: the reply code and text for channel.close or connection.close, and the
// method that caused it (0, 0 when none did).
struct ProtocolError {
  ReplyCode code = ReplyCode::internal_error;
  std::string text;
  uint16_t class_id = 0;
  uint16_t method_id = 0;

  bool operator==(const ProtocolError&) const = default;
};

// "CODE_NAME - text", as RabbitMQ words its reply texts.
ProtocolError protocol_error(ReplyCode code, const std::string& text, uint16_t class_id = 0,
                             uint16_t method_id = 0);

// Class ids.
inline constexpr uint16_t kConnectionClass = 10;
inline constexpr uint16_t kChannelClass = 20;
inline constexpr uint16_t kAccessClass = 30;
inline constexpr uint16_t kExchangeClass = 40;
inline constexpr uint16_t kQueueClass = 50;
inline constexpr uint16_t kBasicClass = 60;
inline constexpr uint16_t kConfirmClass = 85;
inline constexpr uint16_t kTxClass = 90;

}  // namespace depot::amqp
