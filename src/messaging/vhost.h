#pragma once
// A virtual host's entities as RabbitMQ manages them: declaring exchanges and queues (passive
// checks, equivalence, reserved "amq." names, exclusive owners, server-named queues, queue
// arguments), binding and deleting. Errors carry RabbitMQ's kinds and wording; the AMQP face
// turns them into channel or connection closes. No I/O.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <boost/outcome/std_result.hpp>

#include "messaging/router.h"

namespace depot::messaging {

// What went wrong, in AMQP's terms (the face maps each to its reply code).
enum class ErrorKind {
  not_found,            // 404
  access_refused,       // 403
  resource_locked,      // 405
  precondition_failed,  // 406
  command_invalid,      // 503: closes the connection
};

struct Error {
  ErrorKind kind = ErrorKind::precondition_failed;
  std::string message;
  bool operator==(const Error&) const = default;
};

template <class T>
using Outcome = boost::outcome_v2::std_checked<T, Error>;

// The connection a queue is exclusive to.
using OwnerId = uint64_t;

enum class Overflow { drop_head, reject_publish, reject_publish_dlx };

// A queue's x-arguments, checked as RabbitMQ checks them.
struct QueueArguments {
  std::optional<int64_t> message_ttl_ms;               // x-message-ttl, >= 0
  std::optional<int64_t> expires_ms;                   // x-expires, > 0
  std::optional<int64_t> max_length;                   // x-max-length, >= 0
  std::optional<int64_t> max_length_bytes;             // x-max-length-bytes, >= 0
  Overflow overflow = Overflow::drop_head;             // x-overflow
  std::optional<std::string> dead_letter_exchange;     // x-dead-letter-exchange
  std::optional<std::string> dead_letter_routing_key;  // x-dead-letter-routing-key
  std::optional<uint8_t> max_priority;                 // x-max-priority, 0..255
  bool single_active_consumer = false;                 // x-single-active-consumer
};
Outcome<QueueArguments> parse_queue_arguments(const FieldTable& arguments,
                                              const std::string& queue_name,
                                              const std::string& vhost);

struct QueueSettings {
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  FieldTable arguments;
  QueueArguments parsed;
  std::optional<OwnerId> owner;  // set when exclusive
};

class VirtualHost {
 public:
  explicit VirtualHost(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  const Router& router() const { return router_; }

  struct ExchangeDeclare {
    std::string name;
    std::string type = "direct";
    bool passive = false;
    bool durable = false;
    bool auto_delete = false;
    bool internal = false;
    FieldTable arguments;
  };
  // True when the exchange was created (false: it existed, equivalent).
  Outcome<bool> declare_exchange(const ExchangeDeclare& request);
  Outcome<void> delete_exchange(const std::string& name, bool if_unused);

  struct QueueDeclare {
    std::string name;  // empty: the server names it (amq.gen-...)
    bool passive = false;
    bool durable = false;
    bool exclusive = false;
    bool auto_delete = false;
    FieldTable arguments;
    OwnerId owner = 0;  // the declaring connection
  };
  struct QueueDeclared {
    std::string name;
    bool created = false;
  };
  Outcome<QueueDeclared> declare_queue(const QueueDeclare& request);
  const QueueSettings* queue(const std::string& name) const;
  // Not found, or exclusive to another connection.
  Outcome<const QueueSettings*> use_queue(const std::string& name, OwnerId owner) const;
  Outcome<void> delete_queue(const std::string& name, OwnerId owner);
  // Every queue exclusive to the connection (deleted when it closes).
  std::vector<std::string> queues_owned_by(OwnerId owner) const;

  Outcome<void> bind_queue(const std::string& queue, const std::string& exchange,
                           const std::string& key, const FieldTable& arguments, OwnerId owner);
  Outcome<void> unbind_queue(const std::string& queue, const std::string& exchange,
                             const std::string& key, const FieldTable& arguments, OwnerId owner);
  Outcome<void> bind_exchange(const std::string& destination, const std::string& source,
                              const std::string& key, const FieldTable& arguments);
  Outcome<void> unbind_exchange(const std::string& destination, const std::string& source,
                                const std::string& key, const FieldTable& arguments);

  // Makes server-generated names; replaceable for tests.
  std::function<std::string()> make_queue_name;

 private:
  Outcome<const ExchangeSettings*> find_exchange(const std::string& name) const;
  // A binding's ends checked: both exist, the default exchange is not one, the queue is usable.
  Outcome<Binding> queue_binding(const std::string& queue, const std::string& exchange,
                                 const std::string& key, const FieldTable& arguments,
                                 OwnerId owner) const;
  Outcome<Binding> exchange_binding(const std::string& destination, const std::string& source,
                                    const std::string& key, const FieldTable& arguments) const;
  std::string in_vhost() const { return "in vhost '" + name_ + "'"; }

  std::string name_;
  Router router_;
  std::map<std::string, QueueSettings, std::less<>> queues_;
};

}  // namespace depot::messaging
