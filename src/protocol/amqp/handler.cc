#include "protocol/amqp/handler.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>
#include <set>
#include <span>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "protocol/amqp/frame.h"
#include "protocol/amqp/method.h"
#include "protocol/amqp/properties.h"
#include "server/async_event.h"
#include "server/connection.h"
#include "server/durable_wait.h"
#include "server/endpoint.h"

namespace depot::amqp {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

constexpr auto kCloseOkWait = std::chrono::seconds(5);

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
  bool blocked = false;  // not reading, on purpose (a resource alarm): no heartbeat timeout
  Clock::time_point last_received = Clock::now();
  Clock::time_point last_sent = Clock::now();
  std::chrono::seconds interval{0};
  bool done = false;
};

FieldTable server_properties() {
  FieldTable capabilities = {
      {"publisher_confirms", {true}},
      {"exchange_exchange_bindings", {true}},
      {"basic.nack", {true}},
      {"consumer_cancel_notify", {true}},
      {"authentication_failure_close", {true}},
      {"per_consumer_qos", {true}},
      {"connection.blocked", {true}},
  };
  return {
      {"product", {std::string("depot")}},
      {"version", {std::string(DEPOT_VERSION)}},
      {"platform", {std::string("C++20")}},
      {"information", {std::string("depot: jobs, messaging and event log in one broker")}},
      {"capabilities", {std::move(capabilities)}},
  };
}

// A channel's consumers and deliveries that wait for the socket (the writer coroutine sends them),
// and publisher confirms waiting for the store. Shared with the writer and with durability
// callbacks, which may outlive the session; guarded by the service's mutex.
struct Outgoing {
  enum class Kind { deliver, cancel } kind = Kind::deliver;
  uint16_t channel = 0;
  uint64_t epoch = 0;  // the channel's opening it belongs to
  std::string consumer_tag;
  uint64_t delivery_tag = 0;
  messaging::QueuedMessage message;
};

enum class Confirm : uint8_t { pending, ack, nack };

struct ConfirmTrack {
  uint16_t channel = 0;
  uint64_t base = 1;  // publish sequence number of states.front()
  std::deque<Confirm> states;
};

struct SessionShared {
  explicit SessionShared(const asio::any_io_executor& executor) : wake_event(executor) {}
  std::deque<Outgoing> outgoing;
  std::map<uint64_t, ConfirmTrack> confirms;  // by channel epoch
  std::set<uint64_t> open_epochs;
  // Queues this session consumes from, to offer them again once a full backlog drains.
  std::map<messaging::Consumer*, std::shared_ptr<messaging::MessageQueue>> consumed;
  bool backlog_full = false;
  bool wake_posted = false;
  bool holding = false;  // the writer holds deliveries (start_writer); a settled confirm wakes it
  // A method is being answered: consumer cancellations it causes (queue.delete) wait for its reply.
  bool replying = false;
  bool done = false;
  server::AsyncEvent wake_event;  // on the connection's strand
};

// A method that carries content (basic.deliver, get-ok, return): the method frame, the content
// header, and the body in frames of at most frame_max.
void append_content(Bytes& out, uint16_t channel, const Method& method,
                    const messaging::Message& message, uint32_t frame_max) {
  append_method(out, channel, method);
  append_frame_in_place(out, FrameType::header, channel, [&message](Bytes& to) {
    encode_content_header(message.body.size(), message.raw_properties, to);
  });
  const size_t chunk = frame_max - kFrameHeaderSize - 1;
  ByteSpan body = message.body;
  for (size_t at = 0; at < body.size(); at += chunk) {
    append_frame(out, FrameType::body, channel,
                 body.subspan(at, std::min(chunk, body.size() - at)));
  }
}

// Publisher confirms that are settled, in order, as few frames as possible: a run of acks is
// one basic.ack with multiple set.
void take_confirms(SessionShared& shared, std::vector<std::pair<uint16_t, Method>>& out) {
  for (auto& [epoch, track] : shared.confirms) {
    while (!track.states.empty() && track.states.front() != Confirm::pending) {
      if (track.states.front() == Confirm::nack) {
        out.emplace_back(track.channel, BasicNack{{}, track.base, false, false});
        track.states.pop_front();
        ++track.base;
        continue;
      }
      size_t run = 0;
      while (run < track.states.size() && track.states[run] == Confirm::ack)
        ++run;
      out.emplace_back(track.channel, BasicAck{{}, track.base + run - 1, run > 1});
      track.states.erase(track.states.begin(), track.states.begin() + static_cast<long>(run));
      track.base += run;
    }
  }
}

// What the writer sends next: settled publisher confirms, then deliveries and consumer
// cancellations of channels still open.
struct Pending {
  std::vector<std::pair<uint16_t, Method>> confirms;
  std::vector<Outgoing> items;
  bool empty() const { return confirms.empty() && items.empty(); }
  void clear() {
    confirms.clear();
    items.clear();
  }
};

// Moves what is settled and up to `max_items` items (or `max_bytes` of bodies) from `shared` to
// `out`, stopping before a consumer cancellation when `deliveries_only`. With the service's mutex
// held.
void take_pending(SessionShared& shared, Pending& out, size_t max_items, uint64_t max_bytes,
                  bool deliveries_only = false) {
  take_confirms(shared, out.confirms);
  uint64_t bytes = 0;
  while (!shared.outgoing.empty() && out.items.size() < max_items && bytes < max_bytes) {
    Outgoing& item = shared.outgoing.front();
    if (deliveries_only && item.kind == Outgoing::Kind::cancel) break;
    if (shared.open_epochs.contains(item.epoch)) {
      bytes += item.message.body_size;
      out.items.push_back(std::move(item));
    }
    shared.outgoing.pop_front();
  }
}

// The frames of `pending`; bodies come from the store (without the service's mutex).
void append_pending(Bytes& frames, const Pending& pending, messaging::VirtualHost& vhost,
                    uint32_t frame_max, std::string_view connection) {
  for (const auto& [channel, method] : pending.confirms)
    append_method(frames, channel, method);
  for (const Outgoing& item : pending.items) {
    if (item.kind == Outgoing::Kind::cancel) {
      append_method(frames, item.channel, BasicCancel{{}, item.consumer_tag, true});
      continue;
    }
    auto body = vhost.body_of(item.message);
    if (!body) {
      // Left unacked: it returns to its queue when the channel closes.
      spdlog::error("{}: cannot read a message from the store: {}", connection,
                    body.error().message());
      continue;
    }
    const messaging::Message& message = *body.value();
    append_content(frames, item.channel,
                   BasicDeliver{{},
                                item.consumer_tag,
                                item.delivery_tag,
                                item.message.redelivered,
                                message.exchange,
                                message.routing_key},
                   message, frame_max);
  }
}

// Whether a publisher confirm is ready to go out. With the service's mutex held.
bool confirms_settled(const SessionShared& shared) {
  return std::any_of(shared.confirms.begin(), shared.confirms.end(), [](const auto& entry) {
    const auto& states = entry.second.states;
    return !states.empty() && states.front() != Confirm::pending;
  });
}

// Frames a connection handles from what one read brought in before it lets the others run. A
// read takes up to 64 KiB, some 480 small publishes; handling them all at once delivered them
// after their data had left the CPU's caches, and cost a third of the rate (BENCHMARKS.md).
constexpr unsigned kFramesPerTurn = 128;
// Deliveries waiting for the socket, per connection, before consumers stop taking more.
constexpr size_t kMaxBacklog = 2000;
// What the writer encodes per write: enough to amortise the write, bounded for large messages.
constexpr size_t kWriteBatch = 256;
constexpr uint64_t kWriteBatchBytes = 4ULL << 20;

class Session;
struct Channel;

class ChannelConsumer final : public messaging::Consumer {
 public:
  ChannelConsumer(Session& session, Channel& channel, std::string tag, bool no_ack,
                  uint16_t prefetch)
      : session_(session),
        channel_(channel),
        tag_(std::move(tag)),
        no_ack_(no_ack),
        prefetch_(prefetch) {}
  bool ready() const override;
  bool acks() const override { return !no_ack_; }
  void deliver(const std::shared_ptr<messaging::MessageQueue>& queue,
               const messaging::QueuedMessage& message) override;
  void cancelled() override;

  const std::string& tag() const { return tag_; }
  std::shared_ptr<messaging::MessageQueue> queue;
  uint32_t unacked = 0;
  bool gone = false;  // its queue was deleted

 private:
  Session& session_;
  Channel& channel_;
  std::string tag_;
  bool no_ack_;
  uint16_t prefetch_;
};

struct Unacked {
  std::shared_ptr<messaging::MessageQueue> queue;
  uint64_t seq = 0;
  std::string consumer_tag;  // empty for basic.get
};

struct TxPublish {
  BasicPublish method;
  std::shared_ptr<messaging::Message> message;
};

struct TxSettle {
  enum class Kind { ack, nack, reject } kind = Kind::ack;
  uint64_t delivery_tag = 0;
  bool multiple = false;
  bool requeue = false;
};

enum class ChannelState { open, closing };

struct Channel {
  uint16_t number = 0;
  uint64_t epoch = 0;
  ChannelState state = ChannelState::open;
  bool flow = true;
  uint16_t prefetch = 0;         // basic.qos global=false: for consumers created after it
  uint16_t global_prefetch = 0;  // basic.qos global=true: shared by the channel's consumers
  uint64_t next_delivery_tag = 1;
  std::map<uint64_t, Unacked> unacked;
  std::map<std::string, std::unique_ptr<ChannelConsumer>> consumers;
  std::string last_queue;  // the queue an empty queue name means
  // The message being received: its method, then its header, then its body.
  std::optional<BasicPublish> publishing;
  std::shared_ptr<messaging::Message> incoming;
  uint64_t body_size = 0;
  bool have_header = false;
  bool confirm = false;
  uint64_t next_publish_seq = 1;
  bool tx = false;
  std::vector<TxPublish> tx_publishes;
  std::vector<TxSettle> tx_settles;
};

class Session {
 public:
  Session(std::shared_ptr<AmqpService> service, server::Connection& conn)
      : service_(std::move(service)),
        conn_(conn),
        liveness_(std::make_shared<Liveness>()),
        shared_(std::make_shared<SessionShared>(conn.executor())) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  awaitable<void> run();

  // For consumers, with the service's mutex held.
  void enqueue_outgoing(Outgoing item);
  // Has the writer coroutine look at what is queued for it (once per batch of calls).
  void wake_writer();
  SessionShared& shared() { return *shared_; }
  bool consumer_cancel_notify() const { return cancel_notify_; }

 private:
  using Reply = std::variant<std::optional<Method>, ProtocolError>;

  // GCC 12 destroys temporaries in a co_await expression twice, so nothing with a destructor is
  // built inside one here: methods are queued (queue()) and then sent (flush()), and errors are
  // named (closing_) before the coroutine that sends them is awaited.
  // The next frame, already consumed from the read buffer: its payload stays valid until the
  // next read, so it is decoded (or a body appended) before anything reads again.
  awaitable<std::optional<Frame>> next_frame();
  void queue(uint16_t channel, const Method& method);
  // A method with content (basic.deliver, get-ok, return): method, header and body frames.
  void queue_content(uint16_t channel, const Method& method, const messaging::Message& message);
  awaitable<bool> flush();
  // connection.close with closing_, then close-ok (bounded).
  awaitable<void> close_connection();
  void fail(const ProtocolError& error) { closing_ = error; }
  void close_channel(Channel& channel, const ProtocolError& error);
  awaitable<bool> handshake();
  awaitable<std::optional<Method>> expect_method(uint16_t channel);
  void start_heartbeats();
  void start_writer();
  // A method or heartbeat frame (content frames go to take_content). False once the connection
  // is to end.
  awaitable<bool> on_frame(const Frame& frame);
  // A content header or body frame. It never waits, so it is a plain function: two of every
  // publish's three frames cost no coroutine frame. False when the connection must close (the
  // error is set); replies it queued are for the caller to flush.
  bool take_content(const Frame& frame);
  awaitable<bool> on_channel_method(uint16_t channel, Method& method);
  // The reply to an exchange or queue method, or the error that closes the channel. A change to
  // durable definitions sets `durable_at`: the reply waits until the journal has it on disk.
  Reply entity_method(Channel& channel, Method& method, int64_t& durable_at);
  // The user's permissions for what `method` touches (403 when refused).
  std::optional<ProtocolError> authorize(const Channel& channel, const Method& method) const;
  // basic.*, confirm.* and tx.* (tx.commit, which waits, is commit()).
  Reply basic_method(Channel& channel, Method& method);
  awaitable<Reply> commit(Channel& channel);
  // A whole message arrived on `channel`.
  std::optional<ProtocolError> publish(Channel& channel, const BasicPublish& method,
                                       const std::shared_ptr<messaging::Message>& message,
                                       int64_t* wait_for);
  std::optional<ProtocolError> settle(Channel& channel, const TxSettle& settle);
  void requeue_unacked(Channel& channel);
  // Cancels the channel's consumers and requeues what it had not acknowledged.
  void release_channel(Channel& channel);
  void cancel_consumer(ChannelConsumer& consumer);
  void release_exclusive_queues();
  void track_confirm(Channel& channel, Confirm state, int64_t wait_for);
  // Until `id` of `journal` (the message store or the definitions) is durable; false if it
  // cannot be made so.
  template <class Journal>
  awaitable<bool> wait_durable(Journal& journal, int64_t id);
  // While a resource alarm is in force, a publishing connection reads nothing more (RabbitMQ's
  // flow control), telling the client with connection.blocked / unblocked when it asked to be.
  awaitable<bool> wait_while_alarmed();
  bool alarm_in_force() const {
    std::lock_guard lock(service_->mutex());
    return !service_->alarm().empty();
  }

  std::shared_ptr<AmqpService> service_;
  server::Connection& conn_;
  std::shared_ptr<Liveness> liveness_;
  std::shared_ptr<SessionShared> shared_;
  uint32_t frame_max_ = kFrameMinSize;
  uint16_t channel_max_ = 0;
  messaging::VirtualHost* vhost_ = nullptr;
  std::string user_;
  bool cancel_notify_ = false;
  bool blocked_notify_ = false;
  std::map<uint16_t, std::unique_ptr<Channel>> channels_;
  uint64_t next_epoch_ = 1;
  Bytes out_;                      // frames queued for flush()
  ProtocolError closing_;          // what close_connection() sends
  unsigned frames_this_turn_ = 0;  // since the last read or yield (kFramesPerTurn)
};

awaitable<std::optional<Frame>> Session::next_frame() {
  for (;;) {
    FrameScan scan = scan_frame(conn_.buffered(), frame_max_);
    if (scan.status == FrameScan::Status::frame) {
      if (++frames_this_turn_ >= kFramesPerTurn) {
        frames_this_turn_ = 0;
        co_await asio::post(conn_.executor(), asio::use_awaitable);
      }
      conn_.consume(scan.size);  // the bytes stay where they are until the next read
      co_return scan.frame;
    }
    if (scan.status == FrameScan::Status::error) {
      fail(scan.error);
      co_await close_connection();
      co_return std::nullopt;
    }
    frames_this_turn_ = 0;
    auto read = co_await conn_.read_some();
    if (!read) co_return std::nullopt;
    liveness_->last_received = Clock::now();
  }
}

void Session::queue(uint16_t channel, const Method& method) {
  append_method(out_, channel, method);
}

awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  if (auto* store = service_->store()) {
    if (auto written = store->flush_settled(); !written) {
      spdlog::error("{}: cannot write acknowledgements to the message store: {}", conn_.name(),
                    written.error().message());
    }
  }
  // Deliveries and confirms the writer has not sent yet go first: a reply such as
  // basic.cancel-ok must not overtake the deliveries queued before it. A consumer cancellation
  // stays behind (the writer sends it next): queue.delete-ok comes before the basic.cancel the
  // deletion caused, as RabbitMQ orders them.
  Pending pending;
  if (vhost_) {
    std::lock_guard lock(service_->mutex());
    take_pending(*shared_, pending, SIZE_MAX, UINT64_MAX, /*deliveries_only=*/true);
  }
  Bytes frames;
  if (pending.empty()) {
    frames.swap(out_);
  } else {
    append_pending(frames, pending, *vhost_, frame_max_, conn_.name());
    frames.insert(frames.end(), out_.begin(), out_.end());
    out_.clear();
    shared_->wake_event.notify_all();  // the writer offers its queues again if they waited
  }
  liveness_->last_sent = Clock::now();
  co_return static_cast<bool>(co_await conn_.write(std::move(frames)));
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

void Session::close_channel(Channel& channel, const ProtocolError& error) {
  spdlog::debug("{}: closing channel {}: {}", conn_.name(), channel.number, error.text);
  release_channel(channel);
  channel.state = ChannelState::closing;
  queue(channel.number,
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
  const bool loopback = server::is_loopback(conn_.remote().address());
  if (!service_->authenticate(user, password, loopback)) {
    fail(protocol_error(
        ReplyCode::access_refused,
        fmt::format(
            "Login was refused using authentication mechanism {}{}", credentials->mechanism,
            user == "guest" && !loopback ? " (guest may only connect from localhost)" : "")));
    co_await close_connection();
    co_return false;
  }
  user_ = user;
  if (const FieldValue* caps = find_field(credentials->client_properties, "capabilities")) {
    if (const FieldTable* table = caps->as_table()) {
      const FieldValue* notify = find_field(*table, "consumer_cancel_notify");
      cancel_notify_ = notify != nullptr && notify->value == FieldValue{true}.value;
      const FieldValue* blocked = find_field(*table, "connection.blocked");
      blocked_notify_ = blocked != nullptr && blocked->value == FieldValue{true}.value;
    }
  }

  const AmqpOptions& options = service_->options();
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
  vhost_ = service_->vhost(open->virtual_host);
  if (vhost_ == nullptr) {
    fail(protocol_error(ReplyCode::not_allowed,
                        fmt::format("vhost '{}' not found", open->virtual_host)));
    co_await close_connection();
    co_return false;
  }
  if (!service_->permissions().may_open(user_, open->virtual_host)) {
    fail(protocol_error(
        ReplyCode::not_allowed,
        fmt::format("access to vhost '{}' refused for user '{}'", open->virtual_host, user_)));
    co_await close_connection();
    co_return false;
  }
  queue(0, ConnectionOpenOk{});
  if (!co_await flush()) co_return false;
  start_heartbeats();
  start_writer();
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
          if (!liveness->blocked && now - liveness->last_received > 2 * liveness->interval) {
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
  std::lock_guard lock(service_->mutex());
  for (const std::string& name : vhost_->queues_owned_by(conn_.id())) {
    (void)service_->delete_queue(*vhost_, name, conn_.id());
  }
}

Session::Reply Session::entity_method(Channel& channel, Method& method, int64_t& durable_at) {
  const messaging::OwnerId owner = conn_.id();
  std::lock_guard lock(service_->mutex());
  messaging::VirtualHost& vhost = *vhost_;
  auto done = [](bool nowait, Method ok) -> Reply {
    return nowait ? std::optional<Method>() : std::optional<Method>(std::move(ok));
  };
  messaging::Definitions* journal = service_->definitions();
  using messaging::Binding;
  using messaging::Definitions;
  using messaging::Destination;
  // A change that could not be journaled: the client must not believe it durable.
  auto journaled = [&](const Result<int64_t>& written,
                       const auto& m) -> std::optional<ProtocolError> {
    if (written) {
      durable_at = std::max(durable_at, written.value());
      return std::nullopt;
    }
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
          const std::string& name = m.queue.empty() && m.passive ? channel.last_queue : m.queue;
          auto r = vhost.declare_queue(
              {name, m.passive, m.durable, m.exclusive, m.auto_delete, m.arguments, owner});
          if (!r) return domain_error(r.error(), m);
          if (journal && r.value().created) {
            if (auto e = journaled(journal->queue_declared(vhost, r.value().name), m)) return *e;
          }
          channel.last_queue = r.value().name;
          const messaging::MessageQueue& q = *vhost.queue(r.value().name)->messages;
          return done(m.nowait,
                      QueueDeclareOk{{}, r.value().name, q.ready_count(), q.consumer_count()});
        } else if constexpr (std::is_same_v<T, QueueBind> || std::is_same_v<T, QueueUnbind>) {
          constexpr bool kBind = std::is_same_v<T, QueueBind>;
          const std::string& name = m.queue.empty() ? channel.last_queue : m.queue;
          auto r = kBind ? vhost.bind_queue(name, m.exchange, m.routing_key, m.arguments, owner)
                         : vhost.unbind_queue(name, m.exchange, m.routing_key, m.arguments, owner);
          if (!r) return domain_error(r.error(), m);
          const Binding binding{
              m.exchange, {Destination::Kind::queue, name}, m.routing_key, m.arguments};
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
          auto r = vhost.purge_queue(m.queue.empty() ? channel.last_queue : m.queue, owner);
          if (!r) return domain_error(r.error(), m);
          return done(m.nowait, QueuePurgeOk{{}, r.value()});
        } else if constexpr (std::is_same_v<T, QueueDelete>) {
          const std::string& name = m.queue.empty() ? channel.last_queue : m.queue;
          auto r = service_->delete_queue(vhost, name, owner, m.if_unused, m.if_empty);
          if (!r) return domain_error(r.error(), m);
          if (auto e = journaled(r.value().journaled, m)) return *e;
          return done(m.nowait, QueueDeleteOk{{}, r.value().messages});
        } else {
          return protocol_error(ReplyCode::not_implemented,
                                fmt::format("{} is not implemented by depot yet",
                                            method_name(T::kClassId, T::kMethodId)),
                                T::kClassId, T::kMethodId);
        }
      },
      method);
}

// --- Consumers and the writer

bool ChannelConsumer::ready() const {
  if (gone || channel_.state != ChannelState::open || !channel_.flow) return false;
  SessionShared& shared = session_.shared();
  if (shared.outgoing.size() >= kMaxBacklog) {
    shared.backlog_full = true;
    return false;
  }
  if (no_ack_) return true;
  if (prefetch_ != 0 && unacked >= prefetch_) return false;
  return channel_.global_prefetch == 0 || channel_.unacked.size() < channel_.global_prefetch;
}

void ChannelConsumer::deliver(const std::shared_ptr<messaging::MessageQueue>& from,
                              const messaging::QueuedMessage& message) {
  const uint64_t tag = channel_.next_delivery_tag++;
  if (!no_ack_) {
    channel_.unacked.emplace(tag, Unacked{from, message.seq, tag_});
    ++unacked;
  }
  session_.enqueue_outgoing(
      {Outgoing::Kind::deliver, channel_.number, channel_.epoch, tag_, tag, message});
}

void ChannelConsumer::cancelled() {
  gone = true;
  session_.shared().consumed.erase(this);
  if (session_.consumer_cancel_notify()) {
    session_.enqueue_outgoing(
        {Outgoing::Kind::cancel, channel_.number, channel_.epoch, tag_, 0, {}});
  }
}

void Session::enqueue_outgoing(Outgoing item) {
  shared_->outgoing.push_back(std::move(item));
  wake_writer();
}

void Session::wake_writer() {
  if (shared_->wake_posted) return;
  shared_->wake_posted = true;
  // Consumers may be fed from another connection's strand: the wake-up runs on ours.
  asio::post(conn_.executor(), [weak = std::weak_ptr<SessionShared>(shared_)] {
    if (auto alive = weak.lock()) alive->wake_event.notify_all();
  });
}

void Session::queue_content(uint16_t channel, const Method& method,
                            const messaging::Message& message) {
  append_content(out_, channel, method, message, frame_max_);
}

// The writer sends what the connection's channels have queued: settled publisher confirms,
// deliveries and consumer cancellations. Deliveries to a connection that is receiving a stream
// are coalesced: each write wakes the consumer, and on loopback and virtual machines that wake-up
// costs more than the bytes (BENCHMARKS.md), so while deliveries follow each other closer than
// `delivery_coalescing` they go out once per that interval, in one write. The first delivery
// after a pause goes out at once, and settled confirms end any wait: a publisher waiting for its
// batch's confirm is idle, and holding the confirm back would stall it.
void Session::start_writer() {
  auto keep = conn_.shared_from_this();
  asio::co_spawn(
      conn_.executor(),
      [keep, shared = shared_, service = service_, vhost = vhost_, liveness = liveness_,
       frame_max = frame_max_]() -> awaitable<void> {
        Pending pending;
        std::vector<std::shared_ptr<messaging::MessageQueue>> offer_again;
        Bytes frames;
        const auto coalescing = service->options().delivery_coalescing;
        Clock::time_point last_delivery_write;
        for (;;) {
          pending.clear();
          offer_again.clear();
          {
            std::lock_guard lock(service->mutex());
            shared->wake_posted = false;
            if (shared->done || keep->closed()) break;
            take_pending(*shared, pending, kWriteBatch, kWriteBatchBytes, shared->replying);
            if (shared->backlog_full && shared->outgoing.size() < kMaxBacklog / 2) {
              shared->backlog_full = false;
              for (const auto& [consumer, queue] : shared->consumed)
                offer_again.push_back(queue);
            }
          }
          if (pending.empty() && offer_again.empty()) {
            co_await shared->wake_event.wait();
            // Hold deliveries for the rest of the interval. More deliveries do not wake the
            // writer meanwhile (wake_posted stays set); a settled confirm or the end does.
            const auto hold_until = last_delivery_write + coalescing;
            bool held = false;
            while (Clock::now() < hold_until) {
              {
                std::lock_guard lock(service->mutex());
                shared->holding = !shared->done && !confirms_settled(*shared);
                if (!shared->holding) break;
              }
              held = true;
              co_await shared->wake_event.wait_until(hold_until);
            }
            if (held) {
              std::lock_guard lock(service->mutex());
              shared->holding = false;
            }
            // Let the handlers already waiting run first (other connections' publishes): what
            // they deliver here goes out in the same write instead of one write per message.
            if (!held) co_await asio::post(keep->executor(), asio::use_awaitable);
            continue;
          }
          frames.clear();
          append_pending(frames, pending, *vhost, frame_max, keep->name());
          if (!frames.empty()) {
            liveness->last_sent = Clock::now();
            if (!pending.items.empty()) last_delivery_write = liveness->last_sent;
            if (!co_await keep->write(std::move(frames))) break;
            frames = Bytes();  // handed over: start a new one
          }
          if (!offer_again.empty()) {
            std::lock_guard lock(service->mutex());
            if (shared->done) break;
            for (const auto& queue : offer_again)
              vhost->dispatch(queue);
          }
        }
      },
      asio::detached);
}

// --- Publishing

void Session::track_confirm(Channel& channel, Confirm state, int64_t wait_for) {
  // With the service's mutex held.
  ConfirmTrack& track = shared_->confirms[channel.epoch];
  track.channel = channel.number;
  const uint64_t seq = channel.next_publish_seq++;
  if (track.states.empty()) track.base = seq;
  track.states.push_back(wait_for >= 0 ? Confirm::pending : state);
  if (wait_for < 0) {
    // A holding writer has wake_posted set: wake it directly (this is the session's strand).
    if (shared_->holding) {
      shared_->wake_event.notify_all();
    } else {
      wake_writer();
    }
    return;
  }
  service_->store()->when_durable(
      wait_for, [service = service_, weak = std::weak_ptr<SessionShared>(shared_),
                 executor = conn_.executor(), epoch = channel.epoch, seq](std::error_code ec) {
        asio::post(executor, [service, weak, epoch, seq, ec] {
          auto shared = weak.lock();
          if (!shared) return;
          std::lock_guard lock(service->mutex());
          auto it = shared->confirms.find(epoch);
          if (it == shared->confirms.end() || seq < it->second.base) return;
          const uint64_t index = seq - it->second.base;
          if (index >= it->second.states.size()) return;
          it->second.states[index] = ec ? Confirm::nack : Confirm::ack;
          shared->wake_event.notify_all();
        });
      });
}

template <class Journal>
awaitable<bool> Session::wait_durable(Journal& journal, int64_t id) {
  server::DurableWait wait(conn_.executor());
  journal.when_durable(id, wait.callback());
  co_return !co_await wait.wait();
}

std::optional<ProtocolError> Session::publish(Channel& channel, const BasicPublish& method,
                                              const std::shared_ptr<messaging::Message>& message,
                                              int64_t* wait_for) {
  // With the service's mutex held.
  auto published = vhost_->publish(method.exchange, message);
  if (!published) return domain_error(published.error(), method);
  const auto& p = published.value();
  if (method.mandatory && p.queues == 0 && !p.refused) {
    queue_content(channel.number,
                  BasicReturn{{}, 312, "NO_ROUTE", method.exchange, message->routing_key},
                  *message);
  }
  if (wait_for != nullptr) *wait_for = std::max(*wait_for, p.last_recoverable_id);
  if (channel.confirm) {
    const bool needs_store = p.last_recoverable_id >= 0 && service_->store() != nullptr;
    track_confirm(channel, p.refused ? Confirm::nack : Confirm::ack,
                  needs_store && !p.refused ? p.last_recoverable_id : -1);
  }
  return std::nullopt;
}

bool Session::take_content(const Frame& frame) {
  auto found = channels_.find(frame.channel);
  if (found == channels_.end()) {
    fail(protocol_error(
        ReplyCode::channel_error,
        fmt::format("content frame on channel {}, which is not open", frame.channel)));
    return false;
  }
  Channel& channel = *found->second;
  if (channel.state == ChannelState::closing) return true;  // the rest of a refused message
  if (!channel.publishing) {
    fail(protocol_error(
        ReplyCode::unexpected_frame,
        fmt::format("content frame on channel {} without a method that carries content",
                    frame.channel)));
    return false;
  }
  if (frame.type == FrameType::header) {
    if (channel.have_header) {
      fail(protocol_error(ReplyCode::unexpected_frame, "a second content header for one message",
                          kBasicClass, 40));
      return false;
    }
    auto header = decode_content_header(frame.payload);
    if (!header) {
      fail(header.error());
      return false;
    }
    const uint64_t max = service_->options().max_message_bytes;
    if (header.value().body_size > max) {
      close_channel(
          channel,
          protocol_error(ReplyCode::precondition_failed,
                         fmt::format("message size {} is larger than configured max size {}",
                                     header.value().body_size, max),
                         kBasicClass, 40));
      channel.publishing.reset();
      return true;
    }
    channel.have_header = true;
    channel.body_size = header.value().body_size;
    channel.incoming->properties = std::move(header.value().properties);
    ByteSpan raw = header.value().raw_properties;
    channel.incoming->raw_properties.assign(raw.begin(), raw.end());
    channel.incoming->body.reserve(channel.body_size);
  } else {
    if (!channel.have_header) {
      fail(protocol_error(ReplyCode::unexpected_frame,
                          "a content body frame before the content header", kBasicClass, 40));
      return false;
    }
    Bytes& body = channel.incoming->body;
    if (body.size() + frame.payload.size() > channel.body_size) {
      fail(protocol_error(ReplyCode::frame_error,
                          fmt::format("content body of {} bytes or more; the header said {}",
                                      body.size() + frame.payload.size(), channel.body_size),
                          kBasicClass, 40));
      return false;
    }
    body.insert(body.end(), frame.payload.begin(), frame.payload.end());
  }
  if (channel.incoming->body.size() < channel.body_size) return true;

  // The whole message is here.
  BasicPublish method = std::move(*channel.publishing);
  channel.publishing.reset();
  channel.have_header = false;
  auto message = std::move(channel.incoming);
  message->routing_key = std::move(method.routing_key);  // from here on the message's is used
  std::optional<ProtocolError> refused;
  const messaging::MessageProperties& props = message->properties;
  if (props.expiration && !messaging::expiration_ms(props)) {
    refused = protocol_error(ReplyCode::precondition_failed,
                             fmt::format("invalid expiration '{}' for message", *props.expiration),
                             kBasicClass, 40);
  } else if (props.user_id && *props.user_id != user_) {
    refused = protocol_error(ReplyCode::precondition_failed,
                             fmt::format("user_id property set to '{}' but authenticated user was "
                                         "'{}'",
                                         *props.user_id, user_),
                             kBasicClass, 40);
  } else if (channel.tx) {
    channel.tx_publishes.push_back({std::move(method), std::move(message)});
    return true;
  } else {
    std::lock_guard lock(service_->mutex());
    refused = publish(channel, method, message, nullptr);
  }
  if (refused) close_channel(channel, *refused);
  return true;
}

// --- Acknowledgements

std::optional<ProtocolError> Session::settle(Channel& channel, const TxSettle& how) {
  // With the service's mutex held.
  using Kind = TxSettle::Kind;
  const uint16_t method_id = how.kind == Kind::ack ? 80 : (how.kind == Kind::reject ? 90 : 120);
  auto& unacked = channel.unacked;
  auto first = unacked.begin();
  auto last = unacked.end();
  if (how.multiple) {
    last = how.delivery_tag == 0 ? unacked.end() : unacked.upper_bound(how.delivery_tag);
    if (how.delivery_tag != 0 && !unacked.contains(how.delivery_tag) && (last == unacked.begin())) {
      return protocol_error(ReplyCode::precondition_failed,
                            fmt::format("unknown delivery tag {}", how.delivery_tag), kBasicClass,
                            method_id);
    }
  } else {
    first = unacked.find(how.delivery_tag);
    if (first == unacked.end()) {
      return protocol_error(ReplyCode::precondition_failed,
                            fmt::format("unknown delivery tag {}", how.delivery_tag), kBasicClass,
                            method_id);
    }
    last = std::next(first);
  }
  using Settlement = messaging::VirtualHost::Settlement;
  const Settlement settlement = how.kind == Kind::ack ? Settlement::ack
                                : how.requeue         ? Settlement::requeue
                                                      : Settlement::reject;
  std::set<std::shared_ptr<messaging::MessageQueue>> touched;
  for (auto it = first; it != last;) {
    Unacked& u = it->second;
    if (!u.consumer_tag.empty()) {
      auto c = channel.consumers.find(u.consumer_tag);
      if (c != channel.consumers.end() && c->second->unacked > 0) --c->second->unacked;
    }
    vhost_->settle(u.queue, u.seq, settlement);
    touched.insert(u.queue);
    it = unacked.erase(it);
  }
  // Credit came back: the channel's queues may deliver again.
  for (const auto& [tag, consumer] : channel.consumers) {
    if (consumer->queue) touched.insert(consumer->queue);
  }
  for (const auto& queue : touched)
    vhost_->dispatch(queue);
  return std::nullopt;
}

void Session::requeue_unacked(Channel& channel) {
  // With the service's mutex held. In tag order, so each queue gets them back in order.
  std::set<std::shared_ptr<messaging::MessageQueue>> touched;
  for (auto& [tag, u] : channel.unacked) {
    vhost_->settle(u.queue, u.seq, messaging::VirtualHost::Settlement::requeue);
    touched.insert(u.queue);
  }
  channel.unacked.clear();
  for (auto& [tag, consumer] : channel.consumers)
    consumer->unacked = 0;
  for (const auto& queue : touched)
    vhost_->dispatch(queue);
}

void Session::cancel_consumer(ChannelConsumer& consumer) {
  // With the service's mutex held.
  shared_->consumed.erase(&consumer);
  if (!consumer.queue || consumer.gone) return;
  if (vhost_->cancel(consumer.queue, &consumer)) {
    // An auto-delete queue lost its last consumer.
    auto deleted = service_->delete_queue(*vhost_, consumer.queue->name(),
                                          vhost_->owner_of(consumer.queue->name()));
    if (deleted && !deleted.value().journaled) {
      spdlog::error("{}: cannot journal the deletion of queue '{}': {}", conn_.name(),
                    consumer.queue->name(), deleted.value().journaled.error().message());
    }
  }
  consumer.gone = true;
}

void Session::release_channel(Channel& channel) {
  if (vhost_ == nullptr) return;
  std::lock_guard lock(service_->mutex());
  shared_->open_epochs.erase(channel.epoch);
  shared_->confirms.erase(channel.epoch);
  for (auto& [tag, consumer] : channel.consumers)
    cancel_consumer(*consumer);
  requeue_unacked(channel);
  channel.consumers.clear();
  channel.publishing.reset();
  channel.incoming.reset();
  channel.tx_publishes.clear();
  channel.tx_settles.clear();
}

// --- Permissions

std::optional<ProtocolError> Session::authorize(const Channel& channel,
                                                const Method& method) const {
  using messaging::Access;
  using messaging::Resource;
  const messaging::Permissions& permissions = service_->permissions();
  return std::visit(
      [&](const auto& m) -> std::optional<ProtocolError> {
        using T = std::decay_t<decltype(m)>;
        // At most two checks; every publish is checked, so nothing here allocates.
        struct Need {
          Access access;
          Resource resource;
          std::string_view name;
        };
        std::array<Need, 2> needs{};
        size_t count = 0;
        auto need = [&](Access access, Resource resource, std::string_view name) {
          needs[count++] = {access, resource, name};
        };
        auto queue_named = [&](const std::string& name) -> std::string_view {
          return name.empty() ? channel.last_queue : name;
        };
        if constexpr (std::is_same_v<T, ExchangeDeclare>) {
          if (!m.passive) need(Access::configure, Resource::exchange, m.exchange);
        } else if constexpr (std::is_same_v<T, ExchangeDelete>) {
          need(Access::configure, Resource::exchange, m.exchange);
        } else if constexpr (std::is_same_v<T, QueueDeclare>) {
          if (!m.passive && !m.queue.empty()) need(Access::configure, Resource::queue, m.queue);
        } else if constexpr (std::is_same_v<T, QueueDelete>) {
          need(Access::configure, Resource::queue, queue_named(m.queue));
        } else if constexpr (std::is_same_v<T, QueuePurge> || std::is_same_v<T, BasicConsume> ||
                             std::is_same_v<T, BasicGet>) {
          need(Access::read, Resource::queue, queue_named(m.queue));
        } else if constexpr (std::is_same_v<T, QueueBind> || std::is_same_v<T, QueueUnbind>) {
          need(Access::write, Resource::queue, queue_named(m.queue));
          need(Access::read, Resource::exchange, m.exchange);
        } else if constexpr (std::is_same_v<T, ExchangeBind> || std::is_same_v<T, ExchangeUnbind>) {
          need(Access::write, Resource::exchange, m.destination);
          need(Access::read, Resource::exchange, m.source);
        } else if constexpr (std::is_same_v<T, BasicPublish>) {
          need(Access::write, Resource::exchange, m.exchange);
        }
        for (const Need& n : std::span(needs).first(count)) {
          auto allowed = permissions.check(user_, vhost_->name(), n.access, n.resource, n.name);
          if (!allowed) {
            if constexpr (requires { T::kClassId; }) return domain_error(allowed.error(), m);
          }
        }
        return std::nullopt;
      },
      method);
}

// --- basic, confirm and tx methods

Session::Reply Session::basic_method(Channel& channel, Method& method) {
  auto not_allowed = [](const char* text, uint16_t class_id, uint16_t method_id) -> Reply {
    return protocol_error(ReplyCode::precondition_failed, text, class_id, method_id);
  };
  return std::visit(
      [&](auto& m) -> Reply {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BasicPublish>) {
          channel.publishing = std::move(m);
          channel.incoming = std::make_shared<messaging::Message>();
          channel.have_header = false;
          channel.body_size = 0;
          return std::optional<Method>();
        } else if constexpr (std::is_same_v<T, BasicQos>) {
          if (m.prefetch_size != 0) {
            return protocol_error(ReplyCode::not_implemented,
                                  "prefetch_size!=0 (" + std::to_string(m.prefetch_size) + ")",
                                  T::kClassId, T::kMethodId);
          }
          std::lock_guard lock(service_->mutex());
          if (m.global) {
            channel.global_prefetch = m.prefetch_count;
          } else {
            channel.prefetch = m.prefetch_count;
          }
          for (auto& [tag, consumer] : channel.consumers) {
            if (consumer->queue) vhost_->dispatch(consumer->queue);
          }
          return std::optional<Method>(BasicQosOk{});
        } else if constexpr (std::is_same_v<T, BasicConsume>) {
          const std::string& name = m.queue.empty() ? channel.last_queue : m.queue;
          std::string tag = m.consumer_tag;
          if (tag.empty()) {
            static thread_local uint64_t counter = 0;
            tag = fmt::format("amq.ctag-{}-{}", conn_.id(), ++counter);
          } else if (channel.consumers.contains(tag)) {
            return protocol_error(ReplyCode::not_allowed,
                                  fmt::format("attempt to reuse consumer tag '{}'", tag),
                                  T::kClassId, T::kMethodId);
          }
          auto consumer =
              std::make_unique<ChannelConsumer>(*this, channel, tag, m.no_ack, channel.prefetch);
          std::lock_guard lock(service_->mutex());
          auto queue = vhost_->consume(name, consumer.get(), m.exclusive, conn_.id());
          if (!queue) return domain_error(queue.error(), m);
          consumer->queue = queue.value();
          shared_->consumed[consumer.get()] = queue.value();
          channel.consumers.emplace(tag, std::move(consumer));
          // Deliveries start after consume-ok: on_channel_method dispatches once it is queued.
          return m.nowait ? std::optional<Method>()
                          : std::optional<Method>(BasicConsumeOk{{}, tag});
        } else if constexpr (std::is_same_v<T, BasicCancel>) {
          std::lock_guard lock(service_->mutex());
          if (auto it = channel.consumers.find(m.consumer_tag); it != channel.consumers.end()) {
            cancel_consumer(*it->second);
            channel.consumers.erase(it);
          }
          return m.nowait ? std::optional<Method>()
                          : std::optional<Method>(BasicCancelOk{{}, m.consumer_tag});
        } else if constexpr (std::is_same_v<T, BasicGet>) {
          const std::string& name = m.queue.empty() ? channel.last_queue : m.queue;
          std::lock_guard lock(service_->mutex());
          auto got = vhost_->get(name, m.no_ack, conn_.id());
          if (!got) return domain_error(got.error(), m);
          if (!got.value()) return std::optional<Method>(BasicGetEmpty{});
          auto& g = *got.value();
          auto body = vhost_->body_of(g.message);
          if (!body) {
            if (!m.no_ack)
              vhost_->settle(g.queue, g.message.seq, messaging::VirtualHost::Settlement::requeue);
            return protocol_error(
                ReplyCode::internal_error,
                "cannot read the message from the store: " + body.error().message(), T::kClassId,
                T::kMethodId);
          }
          const uint64_t tag = channel.next_delivery_tag++;
          if (!m.no_ack) channel.unacked.emplace(tag, Unacked{g.queue, g.message.seq, {}});
          const messaging::Message& message = *body.value();
          queue_content(channel.number,
                        BasicGetOk{{},
                                   tag,
                                   g.message.redelivered,
                                   message.exchange,
                                   message.routing_key,
                                   g.remaining},
                        message);
          return std::optional<Method>();
        } else if constexpr (std::is_same_v<T, BasicAck> || std::is_same_v<T, BasicNack> ||
                             std::is_same_v<T, BasicReject>) {
          TxSettle how;
          how.delivery_tag = m.delivery_tag;
          if constexpr (std::is_same_v<T, BasicAck>) {
            how.kind = TxSettle::Kind::ack;
            how.multiple = m.multiple;
          } else if constexpr (std::is_same_v<T, BasicNack>) {
            how.kind = TxSettle::Kind::nack;
            how.multiple = m.multiple;
            how.requeue = m.requeue;
          } else {
            how.kind = TxSettle::Kind::reject;
            how.requeue = m.requeue;
          }
          if (channel.tx) {
            channel.tx_settles.push_back(how);
            return std::optional<Method>();
          }
          std::lock_guard lock(service_->mutex());
          if (auto error = settle(channel, how)) return *error;
          return std::optional<Method>();
        } else if constexpr (std::is_same_v<T, BasicRecover> ||
                             std::is_same_v<T, BasicRecoverAsync>) {
          if (!m.requeue) {
            return protocol_error(ReplyCode::not_implemented, "requeue=false", T::kClassId,
                                  T::kMethodId);
          }
          std::lock_guard lock(service_->mutex());
          requeue_unacked(channel);
          if constexpr (std::is_same_v<T, BasicRecover>) {
            return std::optional<Method>(BasicRecoverOk{});
          } else {
            return std::optional<Method>();
          }
        } else if constexpr (std::is_same_v<T, ConfirmSelect>) {
          if (channel.tx) {
            return not_allowed("cannot switch from tx to confirm mode", T::kClassId, T::kMethodId);
          }
          channel.confirm = true;
          return m.nowait ? std::optional<Method>() : std::optional<Method>(ConfirmSelectOk{});
        } else if constexpr (std::is_same_v<T, TxSelect>) {
          if (channel.confirm) {
            return not_allowed("cannot switch from confirm to tx mode", T::kClassId, T::kMethodId);
          }
          channel.tx = true;
          return std::optional<Method>(TxSelectOk{});
        } else if constexpr (std::is_same_v<T, TxRollback>) {
          if (!channel.tx) {
            return not_allowed("channel is not transactional", T::kClassId, T::kMethodId);
          }
          channel.tx_publishes.clear();
          channel.tx_settles.clear();
          return std::optional<Method>(TxRollbackOk{});
        } else {
          return protocol_error(ReplyCode::command_invalid,
                                fmt::format("{} is not a method a client sends",
                                            method_name(T::kClassId, T::kMethodId)),
                                T::kClassId, T::kMethodId);
        }
      },
      method);
}

awaitable<Session::Reply> Session::commit(Channel& channel) {
  if (!channel.tx) {
    co_return protocol_error(ReplyCode::precondition_failed, "channel is not transactional",
                             TxCommit::kClassId, TxCommit::kMethodId);
  }
  auto publishes = std::move(channel.tx_publishes);
  auto settles = std::move(channel.tx_settles);
  channel.tx_publishes.clear();
  channel.tx_settles.clear();
  int64_t wait_for = -1;
  {
    std::lock_guard lock(service_->mutex());
    for (TxPublish& p : publishes) {
      if (auto error = publish(channel, p.method, p.message, &wait_for)) co_return *error;
    }
    for (const TxSettle& how : settles) {
      if (auto error = settle(channel, how)) co_return *error;
    }
  }
  if (wait_for >= 0 && service_->store() != nullptr &&
      !co_await wait_durable(*service_->store(), wait_for)) {
    co_return protocol_error(ReplyCode::internal_error,
                             "the transaction's messages could not be made durable",
                             TxCommit::kClassId, TxCommit::kMethodId);
  }
  co_return std::optional<Method>(TxCommitOk{});
}

awaitable<bool> Session::wait_while_alarmed() {
  std::string reason;
  {
    std::lock_guard lock(service_->mutex());
    reason = service_->alarm();
  }
  if (reason.empty()) co_return true;
  spdlog::info("{}: blocked while the {} alarm is in force", conn_.name(), reason);
  if (blocked_notify_) {
    queue(0, ConnectionBlocked{{}, "low on " + reason});
    if (!co_await flush()) co_return false;
  }
  liveness_->blocked = true;
  asio::steady_timer timer(conn_.executor());
  while (!reason.empty() && !conn_.closed() && !conn_.stopping()) {
    timer.expires_after(std::chrono::milliseconds(100));
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    std::lock_guard lock(service_->mutex());
    reason = service_->alarm();
  }
  liveness_->blocked = false;
  liveness_->last_received = Clock::now();
  spdlog::info("{}: unblocked", conn_.name());
  if (blocked_notify_) {
    queue(0, ConnectionUnblocked{});
    if (!co_await flush()) co_return false;
  }
  co_return !conn_.closed();
}

awaitable<bool> Session::on_channel_method(uint16_t number, Method& method) {
  // The check is made here, not in the coroutine, so a publish when no alarm is in force costs
  // no coroutine frame.
  if (std::holds_alternative<BasicPublish>(method) && alarm_in_force() &&
      !co_await wait_while_alarmed()) {
    co_return false;
  }
  auto found = channels_.find(number);
  if (std::holds_alternative<ChannelOpen>(method)) {
    if (found != channels_.end()) {
      fail(protocol_error(ReplyCode::channel_error,
                          fmt::format("second 'channel.open' seen on channel {}", number),
                          kChannelClass, 10));
      co_await close_connection();
      co_return false;
    }
    auto channel = std::make_unique<Channel>();
    channel->number = number;
    channel->epoch = next_epoch_++;
    {
      std::lock_guard lock(service_->mutex());
      shared_->open_epochs.insert(channel->epoch);
    }
    channels_.emplace(number, std::move(channel));
    queue(number, ChannelOpenOk{});
    co_return co_await flush();
  }
  if (found == channels_.end()) {
    fail(protocol_error(ReplyCode::channel_error,
                        fmt::format("expected 'channel.open' on channel {}", number)));
    co_await close_connection();
    co_return false;
  }
  Channel& channel = *found->second;
  if (channel.state == ChannelState::closing) {
    // After our channel.close only close-ok (or a crossing close) counts.
    if (std::holds_alternative<ChannelCloseOk>(method)) channels_.erase(found);
    if (std::holds_alternative<ChannelClose>(method)) {
      channels_.erase(found);
      queue(number, ChannelCloseOk{});
      co_return co_await flush();
    }
    co_return true;
  }
  if (channel.publishing) {
    fail(
        protocol_error(ReplyCode::unexpected_frame,
                       fmt::format("expected a content header on channel {}, got a method", number),
                       kBasicClass, 40));
    co_await close_connection();
    co_return false;
  }
  if (std::holds_alternative<ChannelClose>(method)) {
    release_channel(channel);
    channels_.erase(found);
    queue(number, ChannelCloseOk{});
    co_return co_await flush();
  }
  if (std::holds_alternative<ChannelCloseOk>(method)) co_return true;
  if (auto* flow = std::get_if<ChannelFlow>(&method)) {
    {
      std::lock_guard lock(service_->mutex());
      channel.flow = flow->active;
      for (auto& [tag, consumer] : channel.consumers) {
        if (consumer->queue) vhost_->dispatch(consumer->queue);
      }
    }
    queue(number, ChannelFlowOk{{}, flow->active});
    co_return co_await flush();
  }
  if (std::holds_alternative<AccessRequest>(method)) {
    queue(number, AccessRequestOk{});
    co_return co_await flush();
  }
  const uint16_t class_id = std::visit([](const auto& m) { return m.kClassId; }, method);
  Reply reply;
  if (auto refused = authorize(channel, method)) {
    reply = std::move(*refused);
  } else if (std::holds_alternative<TxCommit>(method)) {
    auto committed = co_await commit(channel);
    reply = std::move(committed);
  } else if (class_id == kBasicClass || class_id == 85 || class_id == 90) {
    reply = basic_method(channel, method);
  } else {
    int64_t durable_at = -1;
    {
      std::lock_guard lock(service_->mutex());
      shared_->replying = true;
    }
    reply = entity_method(channel, method, durable_at);
    if (durable_at >= 0 && std::holds_alternative<std::optional<Method>>(reply) &&
        !co_await wait_durable(*service_->definitions(), durable_at)) {
      reply = protocol_error(ReplyCode::internal_error,
                             "the definition could not be made durable on disk");
    }
  }
  // queue.delete-ok before the basic.cancel its deletion caused, as RabbitMQ orders them (and as
  // clients expect: amqplib closes a channel on the cancel and would lose the reply). flush()
  // writes the reply; then the writer may send the cancellations.
  struct ReplyDone {
    Session& session;
    ~ReplyDone() {
      // Only this strand sets the flag, so reading it needs no lock: a publish pays nothing here.
      if (!session.shared_->replying) return;
      {
        std::lock_guard lock(session.service_->mutex());
        session.shared_->replying = false;
      }
      session.shared_->wake_event.notify_all();
    }
  } reply_done{*this};
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
  if (ok) queue(number, *ok);
  const bool consumed = std::holds_alternative<BasicConsume>(method);
  if (!out_.empty() && !co_await flush()) co_return false;  // a publish queues nothing
  if (consumed) {
    // consume-ok is on its way: the queue may deliver now.
    const auto& tag = std::get<BasicConsume>(method).consumer_tag;
    std::lock_guard lock(service_->mutex());
    for (auto& [name, consumer] : channel.consumers) {
      if ((tag.empty() || name == tag) && consumer->queue) vhost_->dispatch(consumer->queue);
    }
  }
  co_return true;
}

awaitable<bool> Session::on_frame(const Frame& frame) {
  if (frame.type == FrameType::heartbeat) {
    if (frame.channel != 0) {
      fail(protocol_error(ReplyCode::frame_error, "heartbeat frame on a channel other than 0"));
      co_await close_connection();
      co_return false;
    }
    co_return true;
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
      // close-ok tells the client to close the socket: wait for that, as RabbitMQ does. Frames
      // it still had queued (amqplib interleaves them after its close) are discarded, not reset.
      queue(0, ConnectionCloseOk{});
      if (co_await flush()) co_await conn_.wait_for_peer_close();
      co_return false;
    }
    if (std::holds_alternative<ConnectionCloseOk>(method)) co_return false;
    if (std::holds_alternative<ConnectionUpdateSecret>(method)) {
      // RabbitMQ's extension for refreshing expiring credentials (OAuth tokens). As with
      // RabbitMQ's internal users, a password is checked at login only: the update is accepted.
      spdlog::info("{}: connection.update-secret accepted (passwords are checked at login)",
                   conn_.name());
      queue(0, ConnectionUpdateSecretOk{});
      co_return co_await flush();
    }
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
    if (frame->type == FrameType::header || frame->type == FrameType::body) {
      if (!take_content(*frame)) {
        co_await close_connection();
        break;
      }
      if (!out_.empty() && !co_await flush()) break;
      continue;
    }
    if (!co_await on_frame(*frame)) break;
  }
}

Session::~Session() {
  liveness_->done = true;
  for (auto& [number, channel] : channels_)
    release_channel(*channel);
  release_exclusive_queues();
  std::lock_guard lock(service_->mutex());
  shared_->done = true;
  shared_->outgoing.clear();
  shared_->consumed.clear();
  shared_->wake_event.notify_all();
}

}  // namespace

// --- The service

struct AmqpService::Ticker {
  explicit Ticker(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool stopped = false;
};

AmqpService::AmqpService(AmqpOptions options, std::unique_ptr<messaging::Definitions> definitions,
                         std::unique_ptr<messaging::MessageStore> store)
    : options_(std::move(options)),
      definitions_(std::move(definitions)),
      store_(std::move(store)),
      budget_(options_.resident_bytes),
      permissions_(options_.permissions) {
  for (const std::string& name : options_.vhosts) {
    auto [it, added] = vhosts_.emplace(name, name);
    it->second.attach_journal(store_.get(), &budget_);
  }
}

AmqpService::~AmqpService() {
  stop();
}

Result<AmqpService::Restored> AmqpService::restore() {
  Restored restored;
  std::lock_guard lock(mutex_);
  if (definitions_) {
    DEPOT_TRY(restored.definitions,
              definitions_->restore([this](const std::string& name) { return vhost(name); }));
  }
  if (store_) {
    DEPOT_TRY(restored.messages, store_->recover([this](messaging::MessageStore::Recovered r) {
      messaging::VirtualHost* host = vhost(r.vhost);
      if (host == nullptr) {
        store_->settle(r.id);  // its virtual host is no longer configured
        return;
      }
      messaging::QueuedMessage queued;
      queued.id = r.id;
      queued.body_size = r.message->body.size();
      queued.priority = r.message->properties.priority.value_or(0);
      queued.expires_at = r.expires_at;
      queued.message = budget_.keep(std::move(r.message));
      host->restore_message(r.queue, std::move(queued));
    }));
  }
  return restored;
}

void AmqpService::start(const asio::any_io_executor& executor) {
  ticker_ = std::make_shared<Ticker>(executor);
  asio::co_spawn(
      executor,
      [this, ticker = ticker_]() -> awaitable<void> {
        int round = 0;
        while (!ticker->stopped) {
          ticker->timer.expires_after(std::chrono::milliseconds(250));
          boost::system::error_code ignored;
          co_await ticker->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          if (ticker->stopped) break;
          tick();
          if (++round % 4 == 0 && store_ && !collecting_.exchange(true)) {
            asio::post(maintenance_, [this] {
              if (auto collected = store_->collect_garbage(); !collected) {
                spdlog::error("amqp: message store maintenance failed: {}",
                              collected.error().message());
              }
              collecting_ = false;
            });
          }
        }
      },
      asio::detached);
}

void AmqpService::stop() {
  if (!ticker_) return;
  ticker_->stopped = true;
  ticker_->timer.cancel();
}

Result<void> AmqpService::close() {
  stop();
  maintenance_.join();
  if (definitions_) DEPOT_TRY(definitions_->close());
  if (store_) DEPOT_TRY(store_->close());
  return success();
}

void AmqpService::check_alarms() {
  // With mutex_ held.
  std::string alarm;
  if (options_.memory_limit > 0) {
    if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
      unsigned long size = 0;
      unsigned long resident = 0;
      if (std::fscanf(statm, "%lu %lu", &size, &resident) == 2 &&
          resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) > options_.memory_limit) {
        alarm = "memory";
      }
      std::fclose(statm);
    }
  }
  if (alarm.empty() && options_.disk_free_limit > 0 && !options_.data_dir.empty()) {
    std::error_code ec;
    auto space = std::filesystem::space(options_.data_dir, ec);
    if (!ec && space.available < options_.disk_free_limit) alarm = "disk";
  }
  if (alarm != alarm_) {
    if (alarm.empty()) {
      spdlog::info("amqp: the {} alarm has cleared; publishers may go on", alarm_);
    } else {
      spdlog::warn("amqp: {} alarm: {}; connections that publish are blocked until it clears",
                   alarm,
                   alarm == "memory" ? "resident memory is over --amqp-memory-limit"
                                     : "free disk space is under --amqp-disk-free-limit");
    }
    alarm_ = std::move(alarm);
  }
}

void AmqpService::tick() {
  std::lock_guard lock(mutex_);
  check_alarms();
  for (auto& [name, host] : vhosts_) {
    host.expire_messages();
    for (const std::string& queue : host.unused_queues()) {
      spdlog::info("amqp: queue '{}' in vhost '{}' unused for its x-expires; deleted", queue, name);
      auto deleted = delete_queue(host, queue, host.owner_of(queue));
      if (deleted && !deleted.value().journaled) {
        spdlog::error("amqp: cannot journal the deletion of queue '{}': {}", queue,
                      deleted.value().journaled.error().message());
      }
    }
  }
}

messaging::Outcome<AmqpService::DeletedQueue> AmqpService::delete_queue(
    messaging::VirtualHost& host, const std::string& name, messaging::OwnerId owner, bool if_unused,
    bool if_empty) {
  using messaging::Definitions;
  const bool durable = Definitions::durable_queue(host, name);
  auto going =
      messaging::bindings_involving(host.router(), {messaging::Destination::Kind::queue, name});
  auto removed = host.delete_queue(name, owner, if_unused, if_empty);
  if (!removed) return removed.error();
  DeletedQueue deleted;
  deleted.messages = removed.value();
  if (definitions_ && durable) deleted.journaled = definitions_->queue_deleted(host, name, going);
  return deleted;
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
  Session session(service_, conn);
  co_await session.run();
}

}  // namespace depot::amqp
