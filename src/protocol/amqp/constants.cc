#include "protocol/amqp/constants.h"

namespace depot::amqp {

const char* reply_code_name(ReplyCode code) {
  switch (code) {
    case ReplyCode::success:
      return "OK";
    case ReplyCode::content_too_large:
      return "CONTENT_TOO_LARGE";
    case ReplyCode::no_route:
      return "NO_ROUTE";
    case ReplyCode::no_consumers:
      return "NO_CONSUMERS";
    case ReplyCode::connection_forced:
      return "CONNECTION_FORCED";
    case ReplyCode::invalid_path:
      return "INVALID_PATH";
    case ReplyCode::access_refused:
      return "ACCESS_REFUSED";
    case ReplyCode::not_found:
      return "NOT_FOUND";
    case ReplyCode::resource_locked:
      return "RESOURCE_LOCKED";
    case ReplyCode::precondition_failed:
      return "PRECONDITION_FAILED";
    case ReplyCode::frame_error:
      return "FRAME_ERROR";
    case ReplyCode::syntax_error:
      return "SYNTAX_ERROR";
    case ReplyCode::command_invalid:
      return "COMMAND_INVALID";
    case ReplyCode::channel_error:
      return "CHANNEL_ERROR";
    case ReplyCode::unexpected_frame:
      return "UNEXPECTED_FRAME";
    case ReplyCode::resource_error:
      return "RESOURCE_ERROR";
    case ReplyCode::not_allowed:
      return "NOT_ALLOWED";
    case ReplyCode::not_implemented:
      return "NOT_IMPLEMENTED";
    case ReplyCode::internal_error:
      return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

ProtocolError protocol_error(ReplyCode code, const std::string& text, uint16_t class_id,
                             uint16_t method_id) {
  std::string reply = reply_code_name(code);
  reply += " - ";
  reply += text;
  if (reply.size() > 255) reply.resize(255);  // a shortstr
  return ProtocolError{code, std::move(reply), class_id, method_id};
}

}  // namespace depot::amqp
