#include "messaging/vhost.h"

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
    return error(ErrorKind::command_invalid,
                 fmt::format("unknown exchange type '{}'", request.type));
  }
  ExchangeSettings wanted{*type, request.durable, request.auto_delete, request.internal,
                          request.arguments};
  if (const ExchangeSettings* current = router_.exchange(name)) {
    auto inequivalent = [&](const char* arg, const std::string& received, const std::string& have) {
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
    const QueueSettings& current = it->second;
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
    return QueueDeclared{name, false};
  }
  QueueSettings settings;
  settings.durable = request.durable;
  settings.exclusive = request.exclusive;
  settings.auto_delete = request.auto_delete;
  settings.arguments = request.arguments;
  settings.parsed = std::move(parsed).value();
  if (request.exclusive) settings.owner = request.owner;
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

Outcome<void> VirtualHost::delete_queue(const std::string& name, OwnerId owner) {
  if (!queues_.contains(name)) return boost::outcome_v2::success();  // idempotent, as RabbitMQ
  auto usable = use_queue(name, owner);
  if (!usable) return usable.error();
  queues_.erase(name);
  router_.remove_queue(name);
  return boost::outcome_v2::success();
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

}  // namespace depot::messaging
