#pragma once
// AMQP 0-9-1 methods with RabbitMQ's extensions, decoded from and encoded to method-frame
// payloads (class-id, method-id, arguments; consecutive bits packed into octets, first bit
// lowest). Field names follow the spec; reserved fields (ticket, reserved-1) are read and dropped.
#include <cstdint>
#include <string>
#include <variant>

#include <boost/outcome/std_result.hpp>

#include "common/bytes.h"
#include "protocol/amqp/constants.h"
#include "protocol/amqp/field_table.h"

namespace depot::amqp {

template <uint16_t Class, uint16_t Method>
struct MethodId {
  static constexpr uint16_t kClassId = Class;
  static constexpr uint16_t kMethodId = Method;
};

struct ConnectionStart : MethodId<10, 10> {
  uint8_t version_major = 0;
  uint8_t version_minor = 9;
  FieldTable server_properties;
  std::string mechanisms = "PLAIN";
  std::string locales = "en_US";
};
struct ConnectionStartOk : MethodId<10, 11> {
  FieldTable client_properties;
  std::string mechanism;
  std::string response;
  std::string locale;
};
struct ConnectionSecure : MethodId<10, 20> {
  std::string challenge;
};
struct ConnectionSecureOk : MethodId<10, 21> {
  std::string response;
};
struct ConnectionTune : MethodId<10, 30> {
  uint16_t channel_max = 0;
  uint32_t frame_max = 0;
  uint16_t heartbeat = 0;
};
struct ConnectionTuneOk : MethodId<10, 31> {
  uint16_t channel_max = 0;
  uint32_t frame_max = 0;
  uint16_t heartbeat = 0;
};
struct ConnectionOpen : MethodId<10, 40> {
  std::string virtual_host = "/";
};
struct ConnectionOpenOk : MethodId<10, 41> {};
struct ConnectionClose : MethodId<10, 50> {
  uint16_t reply_code = 200;
  std::string reply_text;
  uint16_t failing_class_id = 0;
  uint16_t failing_method_id = 0;
};
struct ConnectionCloseOk : MethodId<10, 51> {};
struct ConnectionBlocked : MethodId<10, 60> {
  std::string reason;
};
struct ConnectionUnblocked : MethodId<10, 61> {};
struct ConnectionUpdateSecret : MethodId<10, 70> {
  std::string new_secret;
  std::string reason;
};
struct ConnectionUpdateSecretOk : MethodId<10, 71> {};

struct ChannelOpen : MethodId<20, 10> {};
struct ChannelOpenOk : MethodId<20, 11> {};
struct ChannelFlow : MethodId<20, 20> {
  bool active = true;
};
struct ChannelFlowOk : MethodId<20, 21> {
  bool active = true;
};
struct ChannelClose : MethodId<20, 40> {
  uint16_t reply_code = 200;
  std::string reply_text;
  uint16_t failing_class_id = 0;
  uint16_t failing_method_id = 0;
};
struct ChannelCloseOk : MethodId<20, 41> {};

struct AccessRequest : MethodId<30, 10> {
  std::string realm;
};
struct AccessRequestOk : MethodId<30, 11> {};

struct ExchangeDeclare : MethodId<40, 10> {
  std::string exchange;
  std::string type = "direct";
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  bool nowait = false;
  FieldTable arguments;
};
struct ExchangeDeclareOk : MethodId<40, 11> {};
struct ExchangeDelete : MethodId<40, 20> {
  std::string exchange;
  bool if_unused = false;
  bool nowait = false;
};
struct ExchangeDeleteOk : MethodId<40, 21> {};
struct ExchangeBind : MethodId<40, 30> {
  std::string destination;
  std::string source;
  std::string routing_key;
  bool nowait = false;
  FieldTable arguments;
};
struct ExchangeBindOk : MethodId<40, 31> {};
struct ExchangeUnbind : MethodId<40, 40> {
  std::string destination;
  std::string source;
  std::string routing_key;
  bool nowait = false;
  FieldTable arguments;
};
struct ExchangeUnbindOk : MethodId<40, 51> {};

struct QueueDeclare : MethodId<50, 10> {
  std::string queue;
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  bool nowait = false;
  FieldTable arguments;
};
struct QueueDeclareOk : MethodId<50, 11> {
  std::string queue;
  uint32_t message_count = 0;
  uint32_t consumer_count = 0;
};
struct QueueBind : MethodId<50, 20> {
  std::string queue;
  std::string exchange;
  std::string routing_key;
  bool nowait = false;
  FieldTable arguments;
};
struct QueueBindOk : MethodId<50, 21> {};
struct QueuePurge : MethodId<50, 30> {
  std::string queue;
  bool nowait = false;
};
struct QueuePurgeOk : MethodId<50, 31> {
  uint32_t message_count = 0;
};
struct QueueDelete : MethodId<50, 40> {
  std::string queue;
  bool if_unused = false;
  bool if_empty = false;
  bool nowait = false;
};
struct QueueDeleteOk : MethodId<50, 41> {
  uint32_t message_count = 0;
};
struct QueueUnbind : MethodId<50, 50> {
  std::string queue;
  std::string exchange;
  std::string routing_key;
  FieldTable arguments;
};
struct QueueUnbindOk : MethodId<50, 51> {};

struct BasicQos : MethodId<60, 10> {
  uint32_t prefetch_size = 0;
  uint16_t prefetch_count = 0;
  bool global = false;
};
struct BasicQosOk : MethodId<60, 11> {};
struct BasicConsume : MethodId<60, 20> {
  std::string queue;
  std::string consumer_tag;
  bool no_local = false;
  bool no_ack = false;
  bool exclusive = false;
  bool nowait = false;
  FieldTable arguments;
};
struct BasicConsumeOk : MethodId<60, 21> {
  std::string consumer_tag;
};
struct BasicCancel : MethodId<60, 30> {
  std::string consumer_tag;
  bool nowait = false;
};
struct BasicCancelOk : MethodId<60, 31> {
  std::string consumer_tag;
};
struct BasicPublish : MethodId<60, 40> {
  std::string exchange;
  std::string routing_key;
  bool mandatory = false;
  bool immediate = false;
};
struct BasicReturn : MethodId<60, 50> {
  uint16_t reply_code = 0;
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
};
struct BasicDeliver : MethodId<60, 60> {
  std::string consumer_tag;
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
};
struct BasicGet : MethodId<60, 70> {
  std::string queue;
  bool no_ack = false;
};
struct BasicGetOk : MethodId<60, 71> {
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  uint32_t message_count = 0;
};
struct BasicGetEmpty : MethodId<60, 72> {};
struct BasicAck : MethodId<60, 80> {
  uint64_t delivery_tag = 0;
  bool multiple = false;
};
struct BasicReject : MethodId<60, 90> {
  uint64_t delivery_tag = 0;
  bool requeue = true;
};
struct BasicRecoverAsync : MethodId<60, 100> {
  bool requeue = false;
};
struct BasicRecover : MethodId<60, 110> {
  bool requeue = false;
};
struct BasicRecoverOk : MethodId<60, 111> {};
struct BasicNack : MethodId<60, 120> {
  uint64_t delivery_tag = 0;
  bool multiple = false;
  bool requeue = true;
};

struct ConfirmSelect : MethodId<85, 10> {
  bool nowait = false;
};
struct ConfirmSelectOk : MethodId<85, 11> {};

struct TxSelect : MethodId<90, 10> {};
struct TxSelectOk : MethodId<90, 11> {};
struct TxCommit : MethodId<90, 20> {};
struct TxCommitOk : MethodId<90, 21> {};
struct TxRollback : MethodId<90, 30> {};
struct TxRollbackOk : MethodId<90, 31> {};

using Method = std::variant<
    ConnectionStart, ConnectionStartOk, ConnectionSecure, ConnectionSecureOk, ConnectionTune,
    ConnectionTuneOk, ConnectionOpen, ConnectionOpenOk, ConnectionClose, ConnectionCloseOk,
    ConnectionBlocked, ConnectionUnblocked, ConnectionUpdateSecret, ConnectionUpdateSecretOk,
    ChannelOpen, ChannelOpenOk, ChannelFlow, ChannelFlowOk, ChannelClose, ChannelCloseOk,
    AccessRequest, AccessRequestOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete,
    ExchangeDeleteOk, ExchangeBind, ExchangeBindOk, ExchangeUnbind, ExchangeUnbindOk, QueueDeclare,
    QueueDeclareOk, QueueBind, QueueBindOk, QueuePurge, QueuePurgeOk, QueueDelete, QueueDeleteOk,
    QueueUnbind, QueueUnbindOk, BasicQos, BasicQosOk, BasicConsume, BasicConsumeOk, BasicCancel,
    BasicCancelOk, BasicPublish, BasicReturn, BasicDeliver, BasicGet, BasicGetOk, BasicGetEmpty,
    BasicAck, BasicReject, BasicRecoverAsync, BasicRecover, BasicRecoverOk, BasicNack,
    ConfirmSelect, ConfirmSelectOk, TxSelect, TxSelectOk, TxCommit, TxCommitOk, TxRollback,
    TxRollbackOk>;

template <class T>
using Decoded = boost::outcome_v2::std_checked<T, ProtocolError>;

// The method in a method frame's payload. An unknown class or method is 540 NOT_IMPLEMENTED;
// arguments that are cut short, trail extra bytes or hold a bad field table are 502 SYNTAX_ERROR
// (both carry the ids, so the close names the method).
Decoded<Method> decode_method(ByteSpan payload);

// Appends the method's payload (ids and arguments), not its frame.
void encode_method(const Method& method, Bytes& out);

// Appends the method's whole frame on `channel`, its payload encoded in place.
void append_method(Bytes& out, uint16_t channel, const Method& method);

// "basic.publish", for logs and error texts.
const char* method_name(uint16_t class_id, uint16_t method_id);

// Whether a method is followed by a content header and body frames.
bool carries_content(const Method& method);

}  // namespace depot::amqp
