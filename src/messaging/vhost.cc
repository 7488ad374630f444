#include "messaging/vhost.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

namespace depot::messaging {
namespace {

constexpr std::string_view kReservedPrefix = "amq.";

Error error(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message)};
}

std::string yes_no(bool b) {
  return b ? "true" : "false";
}

std::string random_queue_name() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string name = "amq.gen-";
  for (int i = 0; i < 22; ++i)
    name += kAlphabet[random() % 64];
  return name;
}

// The integer an argument holds, or an error in RabbitMQ's words.
Outcome<int64_t> integer_argument(const FieldValue& value, const std::string& key,
                                  const std::string& where, int64_t minimum) {
  auto number = value.as_integer();
  if (!number) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("invalid arg '{}' for {}: {{unacceptable_type,...}}: an integer is "
                             "needed",
                             key, where));
  }
  if (*number < minimum) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("invalid arg '{}' for {}: {{{},{}}}", key, where,
                             *number == 0 ? "value_zero" : "value_negative", *number));
  }
  return *number;
}

Outcome<std::string> string_argument(const FieldValue& value, const std::string& key,
                                     const std::string& where) {
  if (const std::string* text = value.as_string()) return *text;
  return error(ErrorKind::precondition_failed,
               fmt::format("invalid arg '{}' for {}: {{unacceptable_type,...}}: a string is needed",
                           key, where));
}

template <class T>
std::string show(const std::optional<T>& v) {
  if (!v) return "none";
  if constexpr (std::is_same_v<T, std::string>) {
    return "'" + *v + "'";
  } else {
    return fmt::format("'{}'", *v);
  }
}

const char* overflow_name(Overflow o) {
  switch (o) {
    case Overflow::drop_head:
      return "drop-head";
    case Overflow::reject_publish:
      return "reject-publish";
    case Overflow::reject_publish_dlx:
      return "reject-publish-dlx";
  }
  return "drop-head";
}

// The first x-argument whose value differs between two declarations, described.
std::optional<std::string> inequivalent_argument(const QueueArguments& current,
                                                 const QueueArguments& received) {
  auto differ = [](const char* key, const auto& got,
                   const auto& have) -> std::optional<std::string> {
    if (got == have) return std::nullopt;
    return fmt::format("inequivalent arg '{}': received {} but current is {}", key, show(got),
                       show(have));
  };
  if (auto d = differ("x-message-ttl", received.message_ttl_ms, current.message_ttl_ms)) return d;
  if (auto d = differ("x-expires", received.expires_ms, current.expires_ms)) return d;
  if (auto d = differ("x-max-length", received.max_length, current.max_length)) return d;
  if (auto d = differ("x-max-length-bytes", received.max_length_bytes, current.max_length_bytes)) {
    return d;
  }
  if (auto d = differ("x-dead-letter-exchange", received.dead_letter_exchange,
                      current.dead_letter_exchange)) {
    return d;
  }
  if (auto d = differ("x-dead-letter-routing-key", received.dead_letter_routing_key,
                      current.dead_letter_routing_key)) {
    return d;
  }
  std::optional<int> got_priority;
  std::optional<int> have_priority;
  if (received.max_priority) got_priority = *received.max_priority;
  if (current.max_priority) have_priority = *current.max_priority;
  if (auto d = differ("x-max-priority", got_priority, have_priority)) return d;
  if (received.overflow != current.overflow) {
    return fmt::format("inequivalent arg 'x-overflow': received '{}' but current is '{}'",
                       overflow_name(received.overflow), overflow_name(current.overflow));
  }
  if (received.single_active_consumer != current.single_active_consumer) {
    return fmt::format(
        "inequivalent arg 'x-single-active-consumer': received '{}' but current "
        "is '{}'",
        yes_no(received.single_active_consumer), yes_no(current.single_active_consumer));
  }
  return std::nullopt;
}

}  // namespace

Outcome<QueueArguments> parse_queue_arguments(const FieldTable& arguments,
                                              const std::string& queue_name,
                                              const std::string& vhost) {
  const std::string where = fmt::format("queue '{}' in vhost '{}'", queue_name, vhost);
  QueueArguments parsed;
  for (const FieldEntry& entry : arguments) {
    const std::string& key = entry.name;
    const FieldValue& value = entry.value;
    if (key == "x-message-ttl") {
      auto v = integer_argument(value, key, where, 0);
      if (!v) return v.error();
      parsed.message_ttl_ms = v.value();
    } else if (key == "x-expires") {
      auto v = integer_argument(value, key, where, 1);
      if (!v) return v.error();
      parsed.expires_ms = v.value();
    } else if (key == "x-max-length") {
      auto v = integer_argument(value, key, where, 0);
      if (!v) return v.error();
      parsed.max_length = v.value();
    } else if (key == "x-max-length-bytes") {
      auto v = integer_argument(value, key, where, 0);
      if (!v) return v.error();
      parsed.max_length_bytes = v.value();
    } else if (key == "x-max-priority") {
      auto v = integer_argument(value, key, where, 0);
      if (!v) return v.error();
      if (v.value() > 255) {
        return error(ErrorKind::precondition_failed,
                     fmt::format("invalid arg 'x-max-priority' for {}: {{value_too_large,{},255}}",
                                 where, v.value()));
      }
      parsed.max_priority = static_cast<uint8_t>(v.value());
    } else if (key == "x-overflow") {
      auto v = string_argument(value, key, where);
      if (!v) return v.error();
      if (v.value() == "drop-head") {
        parsed.overflow = Overflow::drop_head;
      } else if (v.value() == "reject-publish") {
        parsed.overflow = Overflow::reject_publish;
      } else if (v.value() == "reject-publish-dlx") {
        parsed.overflow = Overflow::reject_publish_dlx;
      } else {
        return error(
            ErrorKind::precondition_failed,
            fmt::format("invalid arg 'x-overflow' for {}: {{unacceptable_value,<<\"{}\">>}}"
                        ": drop-head, reject-publish or reject-publish-dlx",
                        where, v.value()));
      }
    } else if (key == "x-dead-letter-exchange") {
      auto v = string_argument(value, key, where);
      if (!v) return v.error();
      parsed.dead_letter_exchange = v.value();
    } else if (key == "x-dead-letter-routing-key") {
      auto v = string_argument(value, key, where);
      if (!v) return v.error();
      parsed.dead_letter_routing_key = v.value();
    } else if (key == "x-single-active-consumer") {
      const bool* flag = std::get_if<bool>(&value.value);
      if (flag == nullptr) {
        return error(ErrorKind::precondition_failed,
                     fmt::format("invalid arg '{}' for {}: {{unacceptable_type,...}}: a boolean "
                                 "is needed",
                                 key, where));
      }
      parsed.single_active_consumer = *flag;
    } else if (key == "x-queue-type") {
      auto v = string_argument(value, key, where);
      if (!v) return v.error();
      if (v.value() != "classic") {
        return error(ErrorKind::precondition_failed,
                     fmt::format("invalid arg 'x-queue-type' for {}: depot's queues are classic "
                                 "queues; '{}' is not supported",
                                 where, v.value()));
      }
    }
    // Other arguments are kept and ignored, as RabbitMQ ignores those it does not know.
  }
  if (parsed.dead_letter_routing_key && !parsed.dead_letter_exchange) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("invalid arg 'x-dead-letter-routing-key' for {}: it needs "
                             "x-dead-letter-exchange too",
                             where));
  }
  return parsed;
}

Outcome<const ExchangeSettings*> VirtualHost::find_exchange(const std::string& name) const {
  if (const ExchangeSettings* settings = router_.exchange(name)) return settings;
  return error(ErrorKind::not_found, fmt::format("no exchange '{}' {}", name, in_vhost()));
}

Outcome<bool> VirtualHost::declare_exchange(const ExchangeDeclare& request) {
  const std::string& name = request.name;
  if (request.passive) {
    auto found = find_exchange(name);
    if (!found) return found.error();
    return false;
  }
  if (name.empty()) {
    return error(ErrorKind::access_refused, "operation not permitted on the default exchange");
  }
  if (name.starts_with(kReservedPrefix)) {
    return error(ErrorKind::access_refused,
                 fmt::format("exchange name '{}' contains reserved prefix 'amq.*'", name));
  }
  auto type = exchange_type_from_name(request.type);
  if (!type) {
    // RabbitMQ 3.13 and later refuse an unknown type on the channel (406), no longer by closing
    // the connection (503); clients' suites expect the channel error.
    return error(ErrorKind::precondition_failed,
                 fmt::format("unknown exchange type '{}'", request.type));
  }
  ExchangeSettings wanted{*type, request.durable, request.auto_delete, request.internal,
                          request.arguments};
  if (const ExchangeSettings* current = router_.exchange(name)) {
    auto inequivalent = [&](const char* arg, std::string_view received, std::string_view have) {
      return error(ErrorKind::precondition_failed,
                   fmt::format("inequivalent arg '{}' for exchange '{}' {}: received '{}' but "
                               "current is '{}'",
                               arg, name, in_vhost(), received, have));
    };
    if (current->type != wanted.type) {
      return inequivalent("type", exchange_type_name(wanted.type),
                          exchange_type_name(current->type));
    }
    if (current->durable != wanted.durable) {
      return inequivalent("durable", yes_no(wanted.durable), yes_no(current->durable));
    }
    if (current->auto_delete != wanted.auto_delete) {
      return inequivalent("auto_delete", yes_no(wanted.auto_delete), yes_no(current->auto_delete));
    }
    if (current->internal != wanted.internal) {
      return inequivalent("internal", yes_no(wanted.internal), yes_no(current->internal));
    }
    if (current->alternate_exchange() != wanted.alternate_exchange()) {
      return inequivalent("alternate-exchange", wanted.alternate_exchange().value_or(""),
                          current->alternate_exchange().value_or(""));
    }
    return false;
  }
  router_.add_exchange(name, std::move(wanted));
  return true;
}

Outcome<void> VirtualHost::delete_exchange(const std::string& name, bool if_unused) {
  if (name.empty()) {
    return error(ErrorKind::access_refused, "operation not permitted on the default exchange");
  }
  if (name.starts_with(kReservedPrefix)) {
    return error(ErrorKind::access_refused,
                 fmt::format("exchange name '{}' contains reserved prefix 'amq.*'", name));
  }
  if (router_.exchange(name) == nullptr) return boost::outcome_v2::success();  // idempotent
  if (if_unused && router_.has_bindings_from(name)) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("exchange '{}' {} in use", name, in_vhost()));
  }
  router_.remove_exchange(name);
  return boost::outcome_v2::success();
}

Outcome<VirtualHost::QueueDeclared> VirtualHost::declare_queue(const QueueDeclare& request) {
  std::string name = request.name;
  if (request.passive) {
    auto found = use_queue(name, request.owner);
    if (!found) return found.error();
    return QueueDeclared{name, false};
  }
  if (name.empty()) {
    name = make_queue_name ? make_queue_name() : random_queue_name();
  } else if (name.starts_with(kReservedPrefix)) {
    return error(ErrorKind::access_refused,
                 fmt::format("queue name '{}' contains reserved prefix 'amq.*'", name));
  }
  auto parsed = parse_queue_arguments(request.arguments, name, name_);
  if (!parsed) return parsed.error();
  if (auto it = queues_.find(name); it != queues_.end()) {
    auto usable = use_queue(name, request.owner);
    if (!usable) return usable.error();
    QueueSettings& current = it->second;
    auto inequivalent = [&](const std::string& what) {
      return error(ErrorKind::precondition_failed,
                   fmt::format("{} for queue '{}' {}", what, name, in_vhost()));
    };
    if (current.durable != request.durable) {
      return inequivalent(
          fmt::format("inequivalent arg 'durable': received '{}' but current is "
                      "'{}'",
                      yes_no(request.durable), yes_no(current.durable)));
    }
    if (current.exclusive != request.exclusive) {
      return error(ErrorKind::resource_locked,
                   fmt::format("cannot obtain exclusive access to locked queue '{}' {}. It could "
                               "be originally declared on another connection or the exclusive "
                               "property value does not match that of the original declaration.",
                               name, in_vhost()));
    }
    if (current.auto_delete != request.auto_delete) {
      return inequivalent(
          fmt::format("inequivalent arg 'auto_delete': received '{}' but current "
                      "is '{}'",
                      yes_no(request.auto_delete), yes_no(current.auto_delete)));
    }
    if (auto differs = inequivalent_argument(current.parsed, parsed.value())) {
      return inequivalent(*differs);
    }
    current.messages->touch(now());
    return QueueDeclared{name, false};
  }
  QueueSettings settings;
  settings.durable = request.durable;
  settings.exclusive = request.exclusive;
  settings.auto_delete = request.auto_delete;
  settings.arguments = request.arguments;
  settings.parsed = std::move(parsed).value();
  if (request.exclusive) settings.owner = request.owner;
  settings.messages = std::make_shared<MessageQueue>(name, settings.parsed, journal_);
  settings.messages->touch(now());
  queues_.emplace(name, std::move(settings));
  router_.add_queue(name);
  return QueueDeclared{name, true};
}

const QueueSettings* VirtualHost::queue(const std::string& name) const {
  auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : &it->second;
}

Outcome<const QueueSettings*> VirtualHost::use_queue(const std::string& name, OwnerId owner) const {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    return error(ErrorKind::not_found, fmt::format("no queue '{}' {}", name, in_vhost()));
  }
  if (it->second.owner && *it->second.owner != owner) {
    return error(ErrorKind::resource_locked,
                 fmt::format("cannot obtain exclusive access to locked queue '{}' {}. It could be "
                             "originally declared on another connection or the exclusive property "
                             "value does not match that of the original declaration.",
                             name, in_vhost()));
  }
  return &it->second;
}

Outcome<uint32_t> VirtualHost::delete_queue(const std::string& name, OwnerId owner, bool if_unused,
                                            bool if_empty) {
  auto it = queues_.find(name);
  if (it == queues_.end()) return uint32_t{0};  // idempotent, as RabbitMQ
  auto usable = use_queue(name, owner);
  if (!usable) return usable.error();
  const MessageQueue& messages = *it->second.messages;
  if (if_unused && messages.consumer_count() > 0) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("queue '{}' {} in use", name, in_vhost()));
  }
  if (if_empty && messages.ready_count() > 0) {
    return error(ErrorKind::precondition_failed,
                 fmt::format("queue '{}' {} not empty", name, in_vhost()));
  }
  const uint32_t count = messages.ready_count();
  remove_queue(it);
  return count;
}

void VirtualHost::remove_queue(std::map<std::string, QueueSettings, std::less<>>::iterator it) {
  auto messages = std::move(it->second.messages);
  router_.remove_queue(it->first);
  queues_.erase(it);
  messages->remove();  // last: consumers told of the cancel see the queue already gone
}

Outcome<uint32_t> VirtualHost::purge_queue(const std::string& name, OwnerId owner) {
  auto usable = use_queue(name, owner);
  if (!usable) return usable.error();
  return usable.value()->messages->purge();
}

std::vector<std::string> VirtualHost::queues_owned_by(OwnerId owner) const {
  std::vector<std::string> names;
  for (const auto& [name, settings] : queues_) {
    if (settings.owner == owner) names.push_back(name);
  }
  return names;
}

Outcome<Binding> VirtualHost::queue_binding(const std::string& queue, const std::string& exchange,
                                            const std::string& key, const FieldTable& arguments,
                                            OwnerId owner) const {
  if (exchange.empty()) {
    return error(ErrorKind::access_refused, "operation not permitted on the default exchange");
  }
  auto usable = use_queue(queue, owner);
  if (!usable) return usable.error();
  auto source = find_exchange(exchange);
  if (!source) return source.error();
  return Binding{exchange, {Destination::Kind::queue, queue}, key, arguments};
}

Outcome<Binding> VirtualHost::exchange_binding(const std::string& destination,
                                               const std::string& source, const std::string& key,
                                               const FieldTable& arguments) const {
  if (destination.empty() || source.empty()) {
    return error(ErrorKind::access_refused, "operation not permitted on the default exchange");
  }
  auto to = find_exchange(destination);
  if (!to) return to.error();
  auto from = find_exchange(source);
  if (!from) return from.error();
  return Binding{source, {Destination::Kind::exchange, destination}, key, arguments};
}

Outcome<void> VirtualHost::bind_queue(const std::string& queue, const std::string& exchange,
                                      const std::string& key, const FieldTable& arguments,
                                      OwnerId owner) {
  auto binding = queue_binding(queue, exchange, key, arguments, owner);
  if (!binding) return binding.error();
  router_.bind(binding.value());
  return boost::outcome_v2::success();
}

Outcome<void> VirtualHost::unbind_queue(const std::string& queue, const std::string& exchange,
                                        const std::string& key, const FieldTable& arguments,
                                        OwnerId owner) {
  auto binding = queue_binding(queue, exchange, key, arguments, owner);
  if (!binding) return binding.error();
  router_.unbind(binding.value());  // unbinding what was never bound is not an error
  return boost::outcome_v2::success();
}

Outcome<void> VirtualHost::bind_exchange(const std::string& destination, const std::string& source,
                                         const std::string& key, const FieldTable& arguments) {
  auto binding = exchange_binding(destination, source, key, arguments);
  if (!binding) return binding.error();
  router_.bind(binding.value());
  return boost::outcome_v2::success();
}

Outcome<void> VirtualHost::unbind_exchange(const std::string& destination,
                                           const std::string& source, const std::string& key,
                                           const FieldTable& arguments) {
  auto binding = exchange_binding(destination, source, key, arguments);
  if (!binding) return binding.error();
  router_.unbind(binding.value());
  return boost::outcome_v2::success();
}

int64_t VirtualHost::now() const {
  if (clock) return clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void VirtualHost::attach_journal(MessageJournal* journal, ResidentBudget* budget) {
  journal_ = journal;
  budget_ = budget;
}

VirtualHost::Published VirtualHost::enqueue(const std::vector<std::string_view>& queues,
                                            const std::shared_ptr<Message>& message,
                                            std::vector<DeadMessage>& dead) {
  Published published;
  if (queues.empty()) return published;
  const int64_t at = now();
  // Kept in RAM while the budget allows (charged once, shared by every queue); past it, only the
  // journal holds the body.
  MessagePtr resident;
  if (budget_ == nullptr) {
    resident = message;
  } else if (journal_ == nullptr) {
    resident = budget_->charge(message);
  } else {
    resident = budget_->keep(message);
  }
  for (std::string_view name : queues) {
    auto it = queues_.find(name);
    if (it == queues_.end()) continue;
    const QueueSettings& settings = it->second;
    MessageQueue& queue = *settings.messages;
    QueuedMessage queued;
    queued.seq = queue.next_seq();
    queued.message = resident;
    queued.body_size = message->body.size();
    queued.priority = queue.priority_for(*message);
    queued.expires_at = queue.expiry_for(*message, at);
    const bool recoverable = settings.durable && message->properties.persistent();
    if (journal_ != nullptr && (recoverable || resident == nullptr)) {
      auto id = journal_->append(name_, it->first, *message, queued.expires_at, recoverable);
      if (!id) {
        // The journal is failing: nothing more can be made durable. The message is refused, so
        // a publisher with confirms gets a nack rather than a false promise.
        published.refused = true;
        continue;
      }
      queued.id = id.value();
      if (recoverable) published.last_recoverable_id = queued.id;
      if (resident == nullptr) queued.message = nullptr;
    }
    const int64_t id = queued.id;
    const PushResult pushed = queue.push(std::move(queued), dead);
    if (pushed == PushResult::refused) {
      if (id >= 0) journal_->settle(id);
      published.refused = true;
      continue;
    }
    ++published.queues;
    queue.dispatch(at, dead);
  }
  return published;
}

Outcome<VirtualHost::Published> VirtualHost::publish(const std::string& exchange,
                                                     const std::shared_ptr<Message>& message) {
  auto source = find_exchange(exchange);
  if (!source) return source.error();
  if (source.value()->internal) {
    return error(ErrorKind::access_refused,
                 fmt::format("cannot publish to internal exchange '{}' {}", exchange, in_vhost()));
  }
  message->exchange = exchange;
  const FieldTable* headers = message->properties.headers ? &*message->properties.headers : nullptr;
  std::vector<DeadMessage> dead;
  Published published =
      enqueue(router_.route(exchange, message->routing_key, headers), message, dead);
  dead_letter(dead);
  return published;
}

Result<MessagePtr> VirtualHost::body_of(const QueuedMessage& message) const {
  if (message.message) return message.message;
  if (journal_ == nullptr || message.id < 0) return std::make_error_code(std::errc::io_error);
  return journal_->read(message.id);
}

namespace {

FieldValue text(std::string value) {
  return FieldValue{std::move(value)};
}

FieldTable* table_of(FieldValue& value) {
  return std::get_if<FieldTable>(&value.value);
}

// RabbitMQ's x-death: one table per (queue, reason), newest first, each counting how often the
// message died that way there; plus x-first-death-* set once.
void record_death(MessageProperties& properties, const std::string& queue, DeathReason reason,
                  const Message& original, int64_t now_ms) {
  FieldTable& headers = properties.headers ? *properties.headers : properties.headers.emplace();
  const std::string reason_text = death_reason_name(reason);
  FieldArray deaths;
  FieldTable* existing = nullptr;
  for (auto& entry : headers) {
    if (entry.name == "x-death") {
      if (auto* array = std::get_if<FieldArray>(&entry.value.value)) deaths = std::move(*array);
    }
  }
  std::erase_if(headers, [](const FieldEntry& e) { return e.name == "x-death"; });
  int64_t count = 1;
  for (auto it = deaths.begin(); it != deaths.end(); ++it) {
    existing = table_of(*it);
    if (existing == nullptr) continue;
    const FieldValue* q = find_field(*existing, "queue");
    const FieldValue* r = find_field(*existing, "reason");
    if (q && r && q->as_string() && r->as_string() && *q->as_string() == queue &&
        *r->as_string() == reason_text) {
      if (const FieldValue* c = find_field(*existing, "count"); c && c->as_integer()) {
        count = *c->as_integer() + 1;
      }
      deaths.erase(it);
      break;
    }
  }
  FieldArray routing_keys{text(original.routing_key)};
  FieldTable death = {
      {"count", FieldValue{count}},
      {"reason", text(reason_text)},
      {"queue", text(queue)},
      {"time", FieldValue{Timestamp{static_cast<uint64_t>(now_ms / 1000)}}},
      {"exchange", text(original.exchange)},
      {"routing-keys", FieldValue{std::move(routing_keys)}},
  };
  if (original.properties.expiration) {
    death.push_back({"original-expiration", text(*original.properties.expiration)});
  }
  deaths.insert(deaths.begin(), FieldValue{std::move(death)});
  headers.push_back({"x-death", FieldValue{std::move(deaths)}});
  if (find_field(headers, "x-first-death-reason") == nullptr) {
    headers.push_back({"x-first-death-exchange", text(original.exchange)});
    headers.push_back({"x-first-death-queue", text(queue)});
    headers.push_back({"x-first-death-reason", text(reason_text)});
  }
  std::erase_if(headers, [](const FieldEntry& e) { return e.name.starts_with("x-last-death-"); });
  headers.push_back({"x-last-death-exchange", text(original.exchange)});
  headers.push_back({"x-last-death-queue", text(queue)});
  headers.push_back({"x-last-death-reason", text(reason_text)});
  properties.expiration.reset();  // kept as original-expiration, so it cannot expire again
}

// Whether the message already died in `queue` for a reason other than a rejection: routing it
// there again would cycle forever, so RabbitMQ drops it.
bool died_in(const Message& message, std::string_view queue) {
  if (!message.properties.headers) return false;
  const FieldValue* deaths = find_field(*message.properties.headers, "x-death");
  const auto* array = deaths ? std::get_if<FieldArray>(&deaths->value) : nullptr;
  if (array == nullptr) return false;
  for (const FieldValue& value : *array) {
    const FieldTable* death = value.as_table();
    if (death == nullptr) continue;
    const FieldValue* q = find_field(*death, "queue");
    const FieldValue* r = find_field(*death, "reason");
    if (q && q->as_string() && *q->as_string() == queue && r && r->as_string() &&
        *r->as_string() != "rejected") {
      return true;
    }
  }
  return false;
}

}  // namespace

void VirtualHost::dead_letter(std::vector<DeadMessage>& dead) {
  // Dead-lettering can make more dead messages (a full dead-letter queue dropping its head);
  // they are handled in turn, boundedly.
  constexpr size_t kMaxRounds = 100000;
  for (size_t round = 0; !dead.empty() && round < kMaxRounds; ++round) {
    std::vector<DeadMessage> batch = std::move(dead);
    dead.clear();
    for (DeadMessage& d : batch) {
      auto settle = [&] {
        if (journal_ != nullptr && d.message.id >= 0) journal_->settle(d.message.id);
      };
      auto it = queues_.find(d.queue);
      const QueueArguments* arguments = it == queues_.end() ? nullptr : &it->second.parsed;
      if (arguments == nullptr || !arguments->dead_letter_exchange ||
          router_.exchange(*arguments->dead_letter_exchange) == nullptr) {
        settle();
        continue;
      }
      auto body = body_of(d.message);
      if (!body) {
        settle();
        continue;
      }
      const Message& original = *body.value();
      auto next = std::make_shared<Message>(original);
      record_death(next->properties, d.queue, d.reason, original, now());
      next->raw_properties = encode_properties(next->properties);
      next->exchange = *arguments->dead_letter_exchange;
      if (arguments->dead_letter_routing_key) {
        next->routing_key = *arguments->dead_letter_routing_key;
      }
      const FieldTable* headers = &*next->properties.headers;
      auto targets = router_.route(next->exchange, next->routing_key, headers);
      if (d.reason != DeathReason::rejected) {
        std::erase_if(targets, [&](std::string_view q) { return died_in(*next, q); });
      }
      settle();
      enqueue(targets, next, dead);
    }
  }
  for (DeadMessage& d : dead) {
    if (journal_ != nullptr && d.message.id >= 0) journal_->settle(d.message.id);
  }
  dead.clear();
}

Outcome<std::shared_ptr<MessageQueue>> VirtualHost::consume(const std::string& queue,
                                                            Consumer* consumer, bool exclusive,
                                                            OwnerId owner) {
  auto usable = use_queue(queue, owner);
  if (!usable) return usable.error();
  std::shared_ptr<MessageQueue> messages = usable.value()->messages;
  if (!messages->add_consumer(consumer, exclusive)) {
    return error(ErrorKind::access_refused,
                 fmt::format("queue '{}' {} in exclusive use", queue, in_vhost()));
  }
  messages->touch(now());
  return messages;
}

bool VirtualHost::cancel(const std::shared_ptr<MessageQueue>& queue, Consumer* consumer) {
  if (!queue->has_consumer(consumer)) return false;
  queue->remove_consumer(consumer);
  queue->touch(now());
  if (queue->removed()) return false;
  auto it = queues_.find(queue->name());
  if (it == queues_.end() || it->second.messages != queue) return false;
  if (it->second.auto_delete && queue->consumer_count() == 0) return true;
  dispatch(queue);  // a single active consumer's successor takes over
  return false;
}

Outcome<std::optional<VirtualHost::Got>> VirtualHost::get(const std::string& queue, bool no_ack,
                                                          OwnerId owner) {
  auto usable = use_queue(queue, owner);
  if (!usable) return usable.error();
  MessageQueue& messages = *usable.value()->messages;
  std::vector<DeadMessage> dead;
  auto got = messages.get(no_ack, now(), dead);
  dead_letter(dead);
  if (!got) return std::optional<Got>();
  return std::optional<Got>(Got{usable.value()->messages, std::move(*got), messages.ready_count()});
}

void VirtualHost::settle(const std::shared_ptr<MessageQueue>& queue, uint64_t seq, Settlement how) {
  std::vector<DeadMessage> dead;
  switch (how) {
    case Settlement::ack:
      queue->ack(seq);
      break;
    case Settlement::requeue:
      queue->requeue(seq);
      break;
    case Settlement::reject:
      queue->reject(seq, dead);
      break;
  }
  dead_letter(dead);
}

void VirtualHost::dispatch(const std::shared_ptr<MessageQueue>& queue) {
  std::vector<DeadMessage> dead;
  queue->dispatch(now(), dead);
  dead_letter(dead);
}

void VirtualHost::expire_messages() {
  const int64_t at = now();
  std::vector<DeadMessage> dead;
  for (auto& [name, settings] : queues_)
    settings.messages->expire(at, dead);
  dead_letter(dead);
}

std::vector<std::string> VirtualHost::unused_queues() const {
  const int64_t at = now();
  std::vector<std::string> unused;
  for (const auto& [name, settings] : queues_) {
    const MessageQueue& queue = *settings.messages;
    const auto& expires = settings.parsed.expires_ms;
    if (expires && queue.consumer_count() == 0 && at - queue.last_used() >= *expires) {
      unused.push_back(name);
    }
  }
  return unused;
}

OwnerId VirtualHost::owner_of(const std::string& queue) const {
  auto it = queues_.find(queue);
  return it == queues_.end() ? 0 : it->second.owner.value_or(0);
}

void VirtualHost::restore_message(const std::string& queue, QueuedMessage message) {
  auto it = queues_.find(queue);
  if (it == queues_.end()) {
    if (journal_ != nullptr && message.id >= 0) journal_->settle(message.id);
    return;
  }
  MessageQueue& messages = *it->second.messages;
  message.seq = messages.next_seq();
  std::vector<DeadMessage> dead;
  (void)messages.push(std::move(message), dead);
  dead_letter(dead);
}

}  // namespace depot::messaging
