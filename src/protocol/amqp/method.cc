#include "protocol/amqp/method.h"

#include <fmt/format.h>

#include "protocol/amqp/frame.h"

namespace depot::amqp {
namespace {

// Reads arguments in order; bits share octets until another type comes.
class ArgReader {
 public:
  explicit ArgReader(ByteSpan args) : in_(args) {}
  bool ok() const { return in_.ok(); }
  bool at_end() const { return in_.at_end(); }

  void octet(uint8_t& v) { v = plain().read_be<uint8_t>(); }
  void short_int(uint16_t& v) { v = plain().read_be<uint16_t>(); }
  void long_int(uint32_t& v) { v = plain().read_be<uint32_t>(); }
  void longlong(uint64_t& v) { v = plain().read_be<uint64_t>(); }
  void shortstr(std::string& v) {
    const auto size = plain().read_be<uint8_t>();
    v = std::string(as_chars(in_.read_bytes(size)));
  }
  void longstr(std::string& v) {
    const auto size = plain().read_be<uint32_t>();
    v = std::string(as_chars(in_.read_bytes(size)));
  }
  void table(FieldTable& v) { read_table(plain(), v); }
  void bit(bool& v) {
    if (bit_ == 8) {
      bits_ = in_.read_be<uint8_t>();
      bit_ = 0;
    }
    v = ((bits_ >> bit_++) & 1) != 0;
  }
  void reserved_short() {
    uint16_t ignored = 0;
    short_int(ignored);
  }
  void reserved_shortstr() {
    std::string ignored;
    shortstr(ignored);
  }
  void reserved_longstr() {
    std::string ignored;
    longstr(ignored);
  }
  void reserved_bit() {
    bool ignored = false;
    bit(ignored);
  }

 private:
  ByteReader& plain() {
    bit_ = 8;
    return in_;
  }
  ByteReader in_;
  uint8_t bits_ = 0;
  int bit_ = 8;
};

class ArgWriter {
 public:
  explicit ArgWriter(Bytes& out) : out_(out), w_(out) {}

  void octet(uint8_t v) { plain().write_be<uint8_t>(v); }
  void short_int(uint16_t v) { plain().write_be<uint16_t>(v); }
  void long_int(uint32_t v) { plain().write_be<uint32_t>(v); }
  void longlong(uint64_t v) { plain().write_be<uint64_t>(v); }
  void shortstr(const std::string& v) {
    const size_t size = std::min<size_t>(v.size(), 255);  // longer names are refused on input
    plain().write_be<uint8_t>(static_cast<uint8_t>(size));
    w_.write_bytes(as_bytes(std::string_view(v).substr(0, size)));
  }
  void longstr(const std::string& v) {
    plain().write_be<uint32_t>(static_cast<uint32_t>(v.size()));
    w_.write_bytes(as_bytes(v));
  }
  void table(const FieldTable& v) { write_table(plain(), v); }
  void bit(bool v) {
    if (bit_ == 8) {
      bits_at_ = out_.size();
      w_.write_be<uint8_t>(0);
      bit_ = 0;
    }
    if (v) out_[bits_at_] |= std::byte{static_cast<uint8_t>(1U << bit_)};
    ++bit_;
  }
  void reserved_short() { short_int(0); }
  void reserved_shortstr() { shortstr({}); }
  void reserved_longstr() { longstr({}); }
  void reserved_bit() { bit(false); }

 private:
  ByteWriter& plain() {
    bit_ = 8;
    return w_;
  }
  Bytes& out_;
  ByteWriter w_;
  size_t bits_at_ = 0;
  int bit_ = 8;
};

// One description of each method's arguments serves decoding (IO = ArgReader, M mutable) and
// encoding (IO = ArgWriter, M const).
template <class IO, class M>
void fields(IO& io, M& m) {
  using T = std::remove_const_t<M>;
  if constexpr (std::is_same_v<T, ConnectionStart>) {
    io.octet(m.version_major);
    io.octet(m.version_minor);
    io.table(m.server_properties);
    io.longstr(m.mechanisms);
    io.longstr(m.locales);
  } else if constexpr (std::is_same_v<T, ConnectionStartOk>) {
    io.table(m.client_properties);
    io.shortstr(m.mechanism);
    io.longstr(m.response);
    io.shortstr(m.locale);
  } else if constexpr (std::is_same_v<T, ConnectionSecure>) {
    io.longstr(m.challenge);
  } else if constexpr (std::is_same_v<T, ConnectionSecureOk>) {
    io.longstr(m.response);
  } else if constexpr (std::is_same_v<T, ConnectionTune> || std::is_same_v<T, ConnectionTuneOk>) {
    io.short_int(m.channel_max);
    io.long_int(m.frame_max);
    io.short_int(m.heartbeat);
  } else if constexpr (std::is_same_v<T, ConnectionOpen>) {
    io.shortstr(m.virtual_host);
    io.reserved_shortstr();
    io.reserved_bit();
  } else if constexpr (std::is_same_v<T, ConnectionOpenOk> || std::is_same_v<T, ChannelOpen> ||
                       std::is_same_v<T, BasicGetEmpty>) {
    io.reserved_shortstr();
  } else if constexpr (std::is_same_v<T, ConnectionClose> || std::is_same_v<T, ChannelClose>) {
    io.short_int(m.reply_code);
    io.shortstr(m.reply_text);
    io.short_int(m.failing_class_id);
    io.short_int(m.failing_method_id);
  } else if constexpr (std::is_same_v<T, ConnectionBlocked>) {
    io.shortstr(m.reason);
  } else if constexpr (std::is_same_v<T, ConnectionUpdateSecret>) {
    io.longstr(m.new_secret);
    io.shortstr(m.reason);
  } else if constexpr (std::is_same_v<T, ChannelOpenOk>) {
    io.reserved_longstr();
  } else if constexpr (std::is_same_v<T, ChannelFlow> || std::is_same_v<T, ChannelFlowOk>) {
    io.bit(m.active);
  } else if constexpr (std::is_same_v<T, AccessRequest>) {
    io.shortstr(m.realm);
    for (int i = 0; i < 5; ++i)
      io.reserved_bit();  // exclusive, passive, active, write, read
  } else if constexpr (std::is_same_v<T, AccessRequestOk>) {
    io.reserved_short();
  } else if constexpr (std::is_same_v<T, ExchangeDeclare>) {
    io.reserved_short();
    io.shortstr(m.exchange);
    io.shortstr(m.type);
    io.bit(m.passive);
    io.bit(m.durable);
    io.bit(m.auto_delete);
    io.bit(m.internal);
    io.bit(m.nowait);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, ExchangeDelete>) {
    io.reserved_short();
    io.shortstr(m.exchange);
    io.bit(m.if_unused);
    io.bit(m.nowait);
  } else if constexpr (std::is_same_v<T, ExchangeBind> || std::is_same_v<T, ExchangeUnbind>) {
    io.reserved_short();
    io.shortstr(m.destination);
    io.shortstr(m.source);
    io.shortstr(m.routing_key);
    io.bit(m.nowait);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, QueueDeclare>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.bit(m.passive);
    io.bit(m.durable);
    io.bit(m.exclusive);
    io.bit(m.auto_delete);
    io.bit(m.nowait);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, QueueDeclareOk>) {
    io.shortstr(m.queue);
    io.long_int(m.message_count);
    io.long_int(m.consumer_count);
  } else if constexpr (std::is_same_v<T, QueueBind>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
    io.bit(m.nowait);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, QueuePurge>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.bit(m.nowait);
  } else if constexpr (std::is_same_v<T, QueuePurgeOk> || std::is_same_v<T, QueueDeleteOk>) {
    io.long_int(m.message_count);
  } else if constexpr (std::is_same_v<T, QueueDelete>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.bit(m.if_unused);
    io.bit(m.if_empty);
    io.bit(m.nowait);
  } else if constexpr (std::is_same_v<T, QueueUnbind>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, BasicQos>) {
    io.long_int(m.prefetch_size);
    io.short_int(m.prefetch_count);
    io.bit(m.global);
  } else if constexpr (std::is_same_v<T, BasicConsume>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.shortstr(m.consumer_tag);
    io.bit(m.no_local);
    io.bit(m.no_ack);
    io.bit(m.exclusive);
    io.bit(m.nowait);
    io.table(m.arguments);
  } else if constexpr (std::is_same_v<T, BasicConsumeOk> || std::is_same_v<T, BasicCancelOk>) {
    io.shortstr(m.consumer_tag);
  } else if constexpr (std::is_same_v<T, BasicCancel>) {
    io.shortstr(m.consumer_tag);
    io.bit(m.nowait);
  } else if constexpr (std::is_same_v<T, BasicPublish>) {
    io.reserved_short();
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
    io.bit(m.mandatory);
    io.bit(m.immediate);
  } else if constexpr (std::is_same_v<T, BasicReturn>) {
    io.short_int(m.reply_code);
    io.shortstr(m.reply_text);
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
  } else if constexpr (std::is_same_v<T, BasicDeliver>) {
    io.shortstr(m.consumer_tag);
    io.longlong(m.delivery_tag);
    io.bit(m.redelivered);
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
  } else if constexpr (std::is_same_v<T, BasicGet>) {
    io.reserved_short();
    io.shortstr(m.queue);
    io.bit(m.no_ack);
  } else if constexpr (std::is_same_v<T, BasicGetOk>) {
    io.longlong(m.delivery_tag);
    io.bit(m.redelivered);
    io.shortstr(m.exchange);
    io.shortstr(m.routing_key);
    io.long_int(m.message_count);
  } else if constexpr (std::is_same_v<T, BasicAck>) {
    io.longlong(m.delivery_tag);
    io.bit(m.multiple);
  } else if constexpr (std::is_same_v<T, BasicReject>) {
    io.longlong(m.delivery_tag);
    io.bit(m.requeue);
  } else if constexpr (std::is_same_v<T, BasicRecoverAsync> || std::is_same_v<T, BasicRecover>) {
    io.bit(m.requeue);
  } else if constexpr (std::is_same_v<T, BasicNack>) {
    io.longlong(m.delivery_tag);
    io.bit(m.multiple);
    io.bit(m.requeue);
  } else if constexpr (std::is_same_v<T, ConfirmSelect>) {
    io.bit(m.nowait);
  } else {
    static_assert(std::is_empty_v<T>, "a method with arguments needs them listed here");
  }
}

template <class T>
Decoded<Method> decode_as(ByteSpan args) {
  T method;
  ArgReader in(args);
  fields(in, method);
  if (!in.ok() || !in.at_end()) {
    return protocol_error(
        ReplyCode::syntax_error,
        fmt::format("{} arguments are {}", method_name(T::kClassId, T::kMethodId),
                    in.ok() ? "followed by extra bytes" : "malformed or cut short"),
        T::kClassId, T::kMethodId);
  }
  return Method(std::move(method));
}

constexpr uint32_t key(uint16_t class_id, uint16_t method_id) {
  return (uint32_t{class_id} << 16) | method_id;
}

// Calls `f.template operator()<T>()` for the method type with these ids; false when none.
template <class F, size_t I = 0>
bool with_method_type(uint32_t ids, F&& f) {
  if constexpr (I == std::variant_size_v<Method>) {
    return false;
  } else {
    using T = std::variant_alternative_t<I, Method>;
    if (ids == key(T::kClassId, T::kMethodId)) {
      f.template operator()<T>();
      return true;
    }
    return with_method_type<F, I + 1>(ids, std::forward<F>(f));
  }
}

}  // namespace

Decoded<Method> decode_method(ByteSpan payload) {
  ByteReader in(payload);
  const auto class_id = in.read_be<uint16_t>();
  const auto method_id = in.read_be<uint16_t>();
  if (!in.ok()) {
    return protocol_error(ReplyCode::frame_error, "a method frame needs class and method ids");
  }
  std::optional<Decoded<Method>> decoded;
  bool known = with_method_type(key(class_id, method_id), [&]<class T>() {
    decoded.emplace(decode_as<T>(payload.subspan(4)));
  });
  if (!known) {
    return protocol_error(ReplyCode::not_implemented,
                          fmt::format("unknown method {}/{}", class_id, method_id), class_id,
                          method_id);
  }
  return std::move(*decoded);
}

void encode_method(const Method& method, Bytes& out) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        ByteWriter w(out);
        w.write_be<uint16_t>(T::kClassId);
        w.write_be<uint16_t>(T::kMethodId);
        ArgWriter args(out);
        fields(args, m);
      },
      method);
}

void append_method(Bytes& out, uint16_t channel, const Method& method) {
  append_frame_in_place(out, FrameType::method, channel,
                        [&method](Bytes& to) { encode_method(method, to); });
}

bool carries_content(const Method& method) {
  return std::holds_alternative<BasicPublish>(method) ||
         std::holds_alternative<BasicReturn>(method) ||
         std::holds_alternative<BasicDeliver>(method) || std::holds_alternative<BasicGetOk>(method);
}

const char* method_name(uint16_t class_id, uint16_t method_id) {
  switch (key(class_id, method_id)) {
    case key(10, 10):
      return "connection.start";
    case key(10, 11):
      return "connection.start-ok";
    case key(10, 20):
      return "connection.secure";
    case key(10, 21):
      return "connection.secure-ok";
    case key(10, 30):
      return "connection.tune";
    case key(10, 31):
      return "connection.tune-ok";
    case key(10, 40):
      return "connection.open";
    case key(10, 41):
      return "connection.open-ok";
    case key(10, 50):
      return "connection.close";
    case key(10, 51):
      return "connection.close-ok";
    case key(10, 60):
      return "connection.blocked";
    case key(10, 61):
      return "connection.unblocked";
    case key(10, 70):
      return "connection.update-secret";
    case key(10, 71):
      return "connection.update-secret-ok";
    case key(20, 10):
      return "channel.open";
    case key(20, 11):
      return "channel.open-ok";
    case key(20, 20):
      return "channel.flow";
    case key(20, 21):
      return "channel.flow-ok";
    case key(20, 40):
      return "channel.close";
    case key(20, 41):
      return "channel.close-ok";
    case key(30, 10):
      return "access.request";
    case key(30, 11):
      return "access.request-ok";
    case key(40, 10):
      return "exchange.declare";
    case key(40, 11):
      return "exchange.declare-ok";
    case key(40, 20):
      return "exchange.delete";
    case key(40, 21):
      return "exchange.delete-ok";
    case key(40, 30):
      return "exchange.bind";
    case key(40, 31):
      return "exchange.bind-ok";
    case key(40, 40):
      return "exchange.unbind";
    case key(40, 51):
      return "exchange.unbind-ok";
    case key(50, 10):
      return "queue.declare";
    case key(50, 11):
      return "queue.declare-ok";
    case key(50, 20):
      return "queue.bind";
    case key(50, 21):
      return "queue.bind-ok";
    case key(50, 30):
      return "queue.purge";
    case key(50, 31):
      return "queue.purge-ok";
    case key(50, 40):
      return "queue.delete";
    case key(50, 41):
      return "queue.delete-ok";
    case key(50, 50):
      return "queue.unbind";
    case key(50, 51):
      return "queue.unbind-ok";
    case key(60, 10):
      return "basic.qos";
    case key(60, 11):
      return "basic.qos-ok";
    case key(60, 20):
      return "basic.consume";
    case key(60, 21):
      return "basic.consume-ok";
    case key(60, 30):
      return "basic.cancel";
    case key(60, 31):
      return "basic.cancel-ok";
    case key(60, 40):
      return "basic.publish";
    case key(60, 50):
      return "basic.return";
    case key(60, 60):
      return "basic.deliver";
    case key(60, 70):
      return "basic.get";
    case key(60, 71):
      return "basic.get-ok";
    case key(60, 72):
      return "basic.get-empty";
    case key(60, 80):
      return "basic.ack";
    case key(60, 90):
      return "basic.reject";
    case key(60, 100):
      return "basic.recover-async";
    case key(60, 110):
      return "basic.recover";
    case key(60, 111):
      return "basic.recover-ok";
    case key(60, 120):
      return "basic.nack";
    case key(85, 10):
      return "confirm.select";
    case key(85, 11):
      return "confirm.select-ok";
    case key(90, 10):
      return "tx.select";
    case key(90, 11):
      return "tx.select-ok";
    case key(90, 20):
      return "tx.commit";
    case key(90, 21):
      return "tx.commit-ok";
    case key(90, 30):
      return "tx.rollback";
    case key(90, 31):
      return "tx.rollback-ok";
    default:
      return "unknown method";
  }
}

}  // namespace depot::amqp
