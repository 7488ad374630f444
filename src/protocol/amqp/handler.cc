#include "protocol/amqp/handler.h"

#include <chrono>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "protocol/amqp/frame.h"
#include "protocol/amqp/method.h"
#include "server/connection.h"

namespace depot::amqp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

constexpr auto kCloseOkWait = std::chrono::seconds(5);

struct OwnedFrame {
  FrameType type = FrameType::heartbeat;
  uint16_t channel = 0;
  Bytes payload;
};

ReplyCode reply_code(messaging::ErrorKind kind) {
  switch (kind) {
    case messaging::ErrorKind::not_found:
      return ReplyCode::not_found;
    case messaging::ErrorKind::access_refused:
      return ReplyCode::access_refused;
    case messaging::ErrorKind::resource_locked:
      return ReplyCode::resource_locked;
    case messaging::ErrorKind::precondition_failed:
      return ReplyCode::precondition_failed;
    case messaging::ErrorKind::command_invalid:
      return ReplyCode::command_invalid;
  }
  return ReplyCode::internal_error;
}

template <class M>
ProtocolError domain_error(const messaging::Error& e, const M&) {
  return protocol_error(reply_code(e.kind), e.message, M::kClassId, M::kMethodId);
}

// Shared by the session and its heartbeat coroutine, which may outlive it by a moment.
struct Liveness {
  Clock::time_point last_received = Clock::now();
  Clock::time_point last_sent = Clock::now();
  std::chrono::seconds interval{0};
  bool done = false;
};

FieldTable server_properties() {
  FieldTable capabilities = {
      {"exchange_exchange_bindings", {true}},
      {"authentication_failure_close", {true}},
  };
  return {
      {"product", {std::string("depot")}},
      {"version", {std::string(DEPOT_VERSION)}},
      {"platform", {std::string("C++20")}},
      {"information", {std::string("depot: jobs, messaging and event log in one broker")}},
      {"capabilities", {std::move(capabilities)}},
  };
}

class Session {
 public:
  Session(AmqpService& service, server::Connection& conn)
      : service_(service), conn_(conn), liveness_(std::make_shared<Liveness>()) {}
  ~Session() { liveness_->done = true; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  awaitable<void> run();

 private:
  enum class ChannelState { open, closing };

  // GCC 12 destroys temporaries in a co_await expression twice, so nothing with a destructor is
  // built inside one here: methods are queued (queue()) and then sent (flush()), and errors are
  // named (closing_) before the coroutine that sends them is awaited.
  awaitable<std::optional<OwnedFrame>> next_frame();
  void queue(uint16_t channel, const Method& method);
  awaitable<bool> flush();
  // connection.close with closing_, then close-ok (bounded).
  awaitable<void> close_connection();
  void fail(const ProtocolError& error) { closing_ = error; }
  void close_channel(uint16_t channel, const ProtocolError& error);
  awaitable<bool> handshake();
  awaitable<std::optional<Method>> expect_method(uint16_t channel);
  void start_heartbeats();
  // False once the connection is to end.
  awaitable<bool> on_frame(OwnedFrame& frame);
  awaitable<bool> on_channel_method(uint16_t channel, Method& method);
  // The reply to an exchange or queue method, or the error that closes the channel.
  std::variant<std::optional<Method>, ProtocolError> entity_method(Method& method);
  void release_exclusive_queues();

  AmqpService& service_;
  server::Connection& conn_;
  std::shared_ptr<Liveness> liveness_;
  uint32_t frame_max_ = kFrameMinSize;
  uint16_t channel_max_ = 0;
  messaging::VirtualHost* vhost_ = nullptr;
  std::string user_;
  std::map<uint16_t, ChannelState> channels_;
  Bytes out_;              // frames queued for flush()
  ProtocolError closing_;  // what close_connection() sends
};

awaitable<std::optional<OwnedFrame>> Session::next_frame() {
  for (;;) {
    FrameScan scan = scan_frame(conn_.buffered(), frame_max_);
    if (scan.status == FrameScan::Status::frame) {
      OwnedFrame frame{scan.frame.type, scan.frame.channel,
                       Bytes(scan.frame.payload.begin(), scan.frame.payload.end())};
      conn_.consume(scan.size);
      co_return frame;
    }
    if (scan.status == FrameScan::Status::error) {
      spdlog::info("{}: {}", conn_.name(), scan.error.text);
      fail(scan.error);
      co_await close_connection();
      co_return std::nullopt;
    }
    auto read = co_await conn_.read_some();
    if (!read) co_return std::nullopt;
    liveness_->last_received = Clock::now();
  }
}

void Session::queue(uint16_t channel, const Method& method) {
  Bytes payload;
  encode_method(method, payload);
  append_frame(out_, FrameType::method, channel, payload);
}

awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  Bytes frames;
  frames.swap(out_);
  liveness_->last_sent = Clock::now();
  co_return static_cast<bool>(co_await conn_.write(frames));
}

// connection.close, then wait (bounded) for close-ok, ignoring everything else, as the spec says.
awaitable<void> Session::close_connection() {
  const ProtocolError& error = closing_;
  if (static_cast<uint16_t>(error.code) >= 500 || error.code == ReplyCode::access_refused) {
    spdlog::info("{}: closing the connection: {}", conn_.name(), error.text);
  }
  queue(0, ConnectionClose{
               {}, static_cast<uint16_t>(error.code), error.text, error.class_id, error.method_id});
  if (!co_await flush()) co_return;
  const auto deadline = Clock::now() + kCloseOkWait;
  while (Clock::now() < deadline) {
    FrameScan scan = scan_frame(conn_.buffered(), 0);
    if (scan.status == FrameScan::Status::error) co_return;
    if (scan.status == FrameScan::Status::frame) {
      bool close_ok = false;
      if (scan.frame.type == FrameType::method && scan.frame.channel == 0) {
        auto m = decode_method(scan.frame.payload);
        close_ok = m && (std::holds_alternative<ConnectionCloseOk>(m.value()) ||
                         std::holds_alternative<ConnectionClose>(m.value()));
      }
      conn_.consume(scan.size);
      if (close_ok) co_return;
      continue;
    }
    if (!co_await conn_.read_some()) co_return;
  }
}

void Session::close_channel(uint16_t channel, const ProtocolError& error) {
  spdlog::debug("{}: closing channel {}: {}", conn_.name(), channel, error.text);
  channels_[channel] = ChannelState::closing;
  queue(channel,
        ChannelClose{
            {}, static_cast<uint16_t>(error.code), error.text, error.class_id, error.method_id});
}

awaitable<std::optional<Method>> Session::expect_method(uint16_t channel) {
  auto frame = co_await next_frame();
  if (!frame) co_return std::nullopt;
  if (frame->type != FrameType::method || frame->channel != channel) {
    fail(protocol_error(ReplyCode::unexpected_frame,
                        "expected a method frame on channel 0 during the "
                        "handshake"));
    co_await close_connection();
    co_return std::nullopt;
  }
  auto method = decode_method(frame->payload);
  if (!method) {
    fail(method.error());
    co_await close_connection();
    co_return std::nullopt;
  }
  co_return std::move(method).value();
}

awaitable<bool> Session::handshake() {
  // The protocol header, then connection.start.
  if (!co_await conn_.read_at_least(kProtocolHeader.size())) co_return false;
  ByteSpan header = conn_.buffered().first(kProtocolHeader.size());
  if (!std::equal(header.begin(), header.end(), kProtocolHeader.begin(),
                  [](std::byte a, uint8_t b) { return static_cast<uint8_t>(a) == b; })) {
    // Not AMQP 0-9-1: answer with the header we speak and close, as the spec asks.
    spdlog::info("{}: not an AMQP 0-9-1 protocol header; closing", conn_.name());
    (void)co_await conn_.write(ByteSpan(reinterpret_cast<const std::byte*>(kProtocolHeader.data()),
                                        kProtocolHeader.size()));
    co_return false;
  }
  conn_.consume(kProtocolHeader.size());
  queue(0, ConnectionStart{{}, 0, 9, server_properties(), "PLAIN AMQPLAIN", "en_US"});
  if (!co_await flush()) {
    co_return false;
  }

  auto start_ok = co_await expect_method(0);
  if (!start_ok) co_return false;
  auto* credentials = std::get_if<ConnectionStartOk>(&*start_ok);
  if (credentials == nullptr) {
    fail(protocol_error(ReplyCode::command_invalid, "expected 'connection.start-ok'"));
    co_await close_connection();
    co_return false;
  }
  std::string user;
  std::string password;
  if (credentials->mechanism == "PLAIN") {
    // authzid NUL authcid NUL password
    const std::string& r = credentials->response;
    auto first = r.find('\0');
    auto second = first == std::string::npos ? first : r.find('\0', first + 1);
    if (second != std::string::npos) {
      user = r.substr(first + 1, second - first - 1);
      password = r.substr(second + 1);
    }
  } else if (credentials->mechanism == "AMQPLAIN") {
    FieldTable table;
    if (read_table_body(as_bytes(credentials->response), table)) {
      if (const FieldValue* v = find_field(table, "LOGIN"); v && v->as_string()) {
        user = *v->as_string();
      }
      if (const FieldValue* v = find_field(table, "PASSWORD"); v && v->as_string()) {
        password = *v->as_string();
      }
    }
  } else {
    fail(protocol_error(
        ReplyCode::access_refused,
        fmt::format("unsupported authentication mechanism '{}': use PLAIN or AMQPLAIN",
                    credentials->mechanism)));
    co_await close_connection();
    co_return false;
  }
  const bool loopback = conn_.remote().address().is_loopback();
  if (!service_.authenticate(user, password, loopback)) {
    fail(protocol_error(
        ReplyCode::access_refused,
        fmt::format(
            "Login was refused using authentication mechanism {}{}", credentials->mechanism,
            user == "guest" && !loopback ? " (guest may only connect from localhost)" : "")));
    co_await close_connection();
    co_return false;
  }
  user_ = user;

  const AmqpOptions& options = service_.options();
  queue(0, ConnectionTune{{}, options.channel_max, options.frame_max, options.heartbeat_seconds});
  if (!co_await flush()) {
    co_return false;
  }
  auto tune_ok_method = co_await expect_method(0);
  if (!tune_ok_method) co_return false;
  auto* tune_ok = std::get_if<ConnectionTuneOk>(&*tune_ok_method);
  if (tune_ok == nullptr) {
    fail(protocol_error(ReplyCode::command_invalid, "expected 'connection.tune-ok'"));
    co_await close_connection();
    co_return false;
  }
  const uint32_t frame_max = tune_ok->frame_max == 0 ? options.frame_max : tune_ok->frame_max;
  if (frame_max < kFrameMinSize || frame_max > options.frame_max) {
    fail(protocol_error(ReplyCode::not_allowed,
                        fmt::format("frame_max {} is outside {}..{}", tune_ok->frame_max,
                                    kFrameMinSize, options.frame_max)));
    co_await close_connection();
    co_return false;
  }
  const uint16_t channel_max =
      tune_ok->channel_max == 0 ? options.channel_max : tune_ok->channel_max;
  if (channel_max > options.channel_max) {
    fail(protocol_error(ReplyCode::not_allowed,
                        fmt::format("channel_max {} is over the server's {}", tune_ok->channel_max,
                                    options.channel_max)));
    co_await close_connection();
    co_return false;
  }
  frame_max_ = frame_max;
  channel_max_ = channel_max;
  liveness_->interval = std::chrono::seconds(tune_ok->heartbeat);

  auto open_method = co_await expect_method(0);
  if (!open_method) co_return false;
  auto* open = std::get_if<ConnectionOpen>(&*open_method);
  if (open == nullptr) {
    fail(protocol_error(ReplyCode::command_invalid, "expected 'connection.open'"));
    co_await close_connection();
    co_return false;
  }
  vhost_ = service_.vhost(open->virtual_host);
  if (vhost_ == nullptr) {
    fail(protocol_error(ReplyCode::not_allowed,
                        fmt::format("vhost '{}' not found", open->virtual_host)));
    co_await close_connection();
    co_return false;
  }
  queue(0, ConnectionOpenOk{});
  if (!co_await flush()) co_return false;
  start_heartbeats();
  spdlog::debug("{}: user '{}' on vhost '{}'", conn_.name(), user_, open->virtual_host);
  co_return true;
}

// Sends a heartbeat whenever nothing else went out for half the interval, and closes the
// connection when the peer has sent nothing for two intervals.
void Session::start_heartbeats() {
  if (liveness_->interval.count() == 0) return;
  auto keep = conn_.shared_from_this();
  asio::co_spawn(
      conn_.executor(),
      [keep, liveness = liveness_]() -> awaitable<void> {
        asio::steady_timer timer(keep->executor());
        const auto half = std::chrono::duration_cast<Clock::duration>(liveness->interval) / 2;
        while (!liveness->done && !keep->closed()) {
          timer.expires_after(half);
          boost::system::error_code ignored;
          co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          if (liveness->done || keep->closed()) break;
          const auto now = Clock::now();
          if (now - liveness->last_received > 2 * liveness->interval) {
            spdlog::info("{}: no heartbeat from the client for {} s; closing", keep->name(),
                         2 * liveness->interval.count());
            keep->close();
            break;
          }
          if (now - liveness->last_sent >= half) {
            Bytes beat;
            append_heartbeat(beat);
            liveness->last_sent = now;
            if (!co_await keep->write(beat)) break;
          }
        }
      },
      asio::detached);
}

void Session::release_exclusive_queues() {
  if (vhost_ == nullptr) return;
  std::lock_guard lock(service_.mutex());
  for (const std::string& name : vhost_->queues_owned_by(conn_.id())) {
    (void)vhost_->delete_queue(name, conn_.id());
  }
}

std::variant<std::optional<Method>, ProtocolError> Session::entity_method(Method& method) {
  using Reply = std::variant<std::optional<Method>, ProtocolError>;
  const messaging::OwnerId owner = conn_.id();
  std::lock_guard lock(service_.mutex());
  messaging::VirtualHost& vhost = *vhost_;
  auto done = [](bool nowait, Method ok) -> Reply {
    return nowait ? std::optional<Method>() : std::optional<Method>(std::move(ok));
  };
  messaging::Definitions* journal = service_.definitions();
  using messaging::Binding;
  using messaging::Definitions;
  using messaging::Destination;
  // A change that could not be journaled: the client must not believe it durable.
  auto journaled = [&](const Result<void>& written, const auto& m) -> std::optional<ProtocolError> {
    if (written) return std::nullopt;
    using M = std::decay_t<decltype(m)>;
    spdlog::error("{}: cannot journal a definition: {}", conn_.name(), written.error().message());
    return protocol_error(
        ReplyCode::internal_error,
        "the definition could not be written to disk: " + written.error().message(), M::kClassId,
        M::kMethodId);
  };
  return std::visit(
      [&](auto& m) -> Reply {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ExchangeDeclare>) {
          auto r = vhost.declare_exchange(
              {m.exchange, m.type, m.passive, m.durable, m.auto_delete, m.internal, m.arguments});
          if (!r) return domain_error(r.error(), m);
          if (journal && r.value()) {
            if (auto e = journaled(journal->exchange_declared(vhost, m.exchange), m)) return *e;
          }
          return done(m.nowait, ExchangeDeclareOk{});
        } else if constexpr (std::is_same_v<T, ExchangeDelete>) {
          const bool durable = Definitions::durable_exchange(vhost, m.exchange);
          auto going = messaging::bindings_involving(vhost.router(),
                                                     {Destination::Kind::exchange, m.exchange});
          auto r = vhost.delete_exchange(m.exchange, m.if_unused);
          if (!r) return domain_error(r.error(), m);
          if (journal && durable) {
            if (auto e = journaled(journal->exchange_deleted(vhost, m.exchange, going), m)) {
              return *e;
            }
          }
          return done(m.nowait, ExchangeDeleteOk{});
        } else if constexpr (std::is_same_v<T, ExchangeBind> || std::is_same_v<T, ExchangeUnbind>) {
          constexpr bool kBind = std::is_same_v<T, ExchangeBind>;
          auto r = kBind
                       ? vhost.bind_exchange(m.destination, m.source, m.routing_key, m.arguments)
                       : vhost.unbind_exchange(m.destination, m.source, m.routing_key, m.arguments);
          if (!r) return domain_error(r.error(), m);
          const Binding binding{
              m.source, {Destination::Kind::exchange, m.destination}, m.routing_key, m.arguments};
          if (journal && Definitions::durable_binding(vhost, binding)) {
            auto written =
                kBind ? journal->bound(vhost, binding) : journal->unbound(vhost, binding);
            if (auto e = journaled(written, m)) return *e;
          }
          if constexpr (kBind) {
            return done(m.nowait, ExchangeBindOk{});
          } else {
            return done(m.nowait, ExchangeUnbindOk{});
          }
        } else if constexpr (std::is_same_v<T, QueueDeclare>) {
          auto r = vhost.declare_queue(
              {m.queue, m.passive, m.durable, m.exclusive, m.auto_delete, m.arguments, owner});
          if (!r) return domain_error(r.error(), m);
          if (journal && r.value().created) {
            if (auto e = journaled(journal->queue_declared(vhost, r.value().name), m)) return *e;
          }
          return done(m.nowait, QueueDeclareOk{{}, r.value().name, 0, 0});
        } else if constexpr (std::is_same_v<T, QueueBind> || std::is_same_v<T, QueueUnbind>) {
          constexpr bool kBind = std::is_same_v<T, QueueBind>;
          auto r = kBind
                       ? vhost.bind_queue(m.queue, m.exchange, m.routing_key, m.arguments, owner)
                       : vhost.unbind_queue(m.queue, m.exchange, m.routing_key, m.arguments, owner);
          if (!r) return domain_error(r.error(), m);
          const Binding binding{
              m.exchange, {Destination::Kind::queue, m.queue}, m.routing_key, m.arguments};
          if (journal && Definitions::durable_binding(vhost, binding)) {
            auto written =
                kBind ? journal->bound(vhost, binding) : journal->unbound(vhost, binding);
            if (auto e = journaled(written, m)) return *e;
          }
          if constexpr (kBind) {
            return done(m.nowait, QueueBindOk{});
          } else {
            return std::optional<Method>(QueueUnbindOk{});  // queue.unbind has no nowait
          }
        } else if constexpr (std::is_same_v<T, QueuePurge>) {
          auto r = vhost.use_queue(m.queue, owner);
          if (!r) return domain_error(r.error(), m);
          return done(m.nowait, QueuePurgeOk{{}, 0});
        } else if constexpr (std::is_same_v<T, QueueDelete>) {
          const bool durable = Definitions::durable_queue(vhost, m.queue);
          auto going =
              messaging::bindings_involving(vhost.router(), {Destination::Kind::queue, m.queue});
          auto r = vhost.delete_queue(m.queue, owner);
          if (!r) return domain_error(r.error(), m);
          if (journal && durable) {
            if (auto e = journaled(journal->queue_deleted(vhost, m.queue, going), m)) return *e;
          }
          return done(m.nowait, QueueDeleteOk{{}, 0});
        } else {
          return protocol_error(ReplyCode::not_implemented,
                                fmt::format("{} is not implemented by depot yet",
                                            method_name(T::kClassId, T::kMethodId)),
                                T::kClassId, T::kMethodId);
        }
      },
      method);
}

awaitable<bool> Session::on_channel_method(uint16_t channel, Method& method) {
  auto state = channels_.find(channel);
  if (std::holds_alternative<ChannelOpen>(method)) {
    if (state != channels_.end()) {
      fail(protocol_error(ReplyCode::channel_error,
                          fmt::format("second 'channel.open' seen on channel {}", channel),
                          kChannelClass, 10));
      co_await close_connection();
      co_return false;
    }
    channels_[channel] = ChannelState::open;
    queue(channel, ChannelOpenOk{});
    co_return co_await flush();
  }
  if (state == channels_.end()) {
    fail(protocol_error(ReplyCode::channel_error,
                        fmt::format("expected 'channel.open' on channel {}", channel)));
    co_await close_connection();
    co_return false;
  }
  if (state->second == ChannelState::closing) {
    // After our channel.close only close-ok (or a crossing close) counts.
    if (std::holds_alternative<ChannelCloseOk>(method)) channels_.erase(state);
    if (std::holds_alternative<ChannelClose>(method)) {
      channels_.erase(state);
      queue(channel, ChannelCloseOk{});
      co_return co_await flush();
    }
    co_return true;
  }
  if (std::holds_alternative<ChannelClose>(method)) {
    channels_.erase(state);
    queue(channel, ChannelCloseOk{});
    co_return co_await flush();
  }
  if (std::holds_alternative<ChannelCloseOk>(method)) co_return true;
  if (auto* flow = std::get_if<ChannelFlow>(&method)) {
    queue(channel, ChannelFlowOk{{}, flow->active});
    co_return co_await flush();
  }
  if (std::holds_alternative<AccessRequest>(method)) {
    queue(channel, AccessRequestOk{});
    co_return co_await flush();
  }
  if (std::holds_alternative<BasicQos>(method)) {
    queue(channel, BasicQosOk{});
    co_return co_await flush();
  }
  auto reply = entity_method(method);
  if (auto* error = std::get_if<ProtocolError>(&reply)) {
    if (closes_connection(error->code)) {
      fail(*error);
      co_await close_connection();
      co_return false;
    }
    close_channel(channel, *error);
    co_return co_await flush();
  }
  auto& ok = std::get<std::optional<Method>>(reply);
  if (ok) queue(channel, *ok);
  co_return co_await flush();
  co_return true;
}

awaitable<bool> Session::on_frame(OwnedFrame& frame) {
  if (frame.type == FrameType::heartbeat) {
    if (frame.channel != 0) {
      fail(protocol_error(ReplyCode::frame_error, "heartbeat frame on a channel other than 0"));
      co_await close_connection();
      co_return false;
    }
    co_return true;
  }
  if (frame.type != FrameType::method) {
    fail(protocol_error(
        ReplyCode::unexpected_frame,
        fmt::format("content frame on channel {} without a method that carries content",
                    frame.channel)));
    co_await close_connection();
    co_return false;
  }
  auto decoded = decode_method(frame.payload);
  if (!decoded) {
    fail(decoded.error());
    co_await close_connection();
    co_return false;
  }
  Method& method = decoded.value();
  if (frame.channel == 0) {
    if (std::holds_alternative<ConnectionClose>(method)) {
      queue(0, ConnectionCloseOk{});
      (void)co_await flush();
      co_return false;
    }
    if (std::holds_alternative<ConnectionCloseOk>(method)) co_return false;
    fail(protocol_error(ReplyCode::command_invalid, "only connection methods may use channel 0"));
    co_await close_connection();
    co_return false;
  }
  if (frame.channel > channel_max_) {
    fail(protocol_error(ReplyCode::channel_error,
                        fmt::format("channel {} is over the negotiated channel_max {}",
                                    frame.channel, channel_max_)));
    co_await close_connection();
    co_return false;
  }
  co_return co_await on_channel_method(frame.channel, method);
}

awaitable<void> Session::run() {
  if (!co_await handshake()) co_return;
  for (;;) {
    if (conn_.stopping() && conn_.buffered().empty()) {
      fail(protocol_error(ReplyCode::connection_forced,
                          "broker forced connection closure with reason 'shutdown'"));
      co_await close_connection();
      break;
    }
    auto frame = co_await next_frame();
    if (!frame) {
      if (conn_.stopping()) {
        fail(protocol_error(ReplyCode::connection_forced,
                            "broker forced connection closure with reason 'shutdown'"));
        co_await close_connection();
      }
      break;
    }
    if (!co_await on_frame(*frame)) break;
  }
  release_exclusive_queues();
}

}  // namespace

AmqpService::AmqpService(AmqpOptions options, std::unique_ptr<messaging::Definitions> definitions)
    : options_(std::move(options)), definitions_(std::move(definitions)) {
  for (const std::string& name : options_.vhosts)
    vhosts_.emplace(name, name);
}

Result<size_t> AmqpService::restore() {
  if (!definitions_) return size_t{0};
  std::lock_guard lock(mutex_);
  return definitions_->restore([this](const std::string& name) { return vhost(name); });
}

messaging::VirtualHost* AmqpService::vhost(const std::string& name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : &it->second;
}

bool AmqpService::authenticate(const std::string& user, const std::string& password,
                               bool loopback) const {
  auto it = options_.users.find(user);
  if (it == options_.users.end() || it->second != password) return false;
  return user != "guest" || loopback;
}

awaitable<void> AmqpHandler::serve(server::Connection& conn) {
  Session session(*service_, conn);
  co_await session.run();
}

}  // namespace depot::amqp
