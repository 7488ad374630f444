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

#include "messaging/queue.h"
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
  std::shared_ptr<MessageQueue> messages;
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
  // queue.delete: returns the messages that were ready. if_unused: refused while it has
  // consumers; if_empty: while it has ready messages.
  Outcome<uint32_t> delete_queue(const std::string& name, OwnerId owner, bool if_unused = false,
                                 bool if_empty = false);
  Outcome<uint32_t> purge_queue(const std::string& name, OwnerId owner);
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

  // --- Messages
  // Where bodies go when RAM's budget is spent and persistent messages in durable queues always
  // go (both may be null: everything stays in RAM, as in unit tests).
  void attach_journal(MessageJournal* journal, ResidentBudget* budget);

  struct Published {
    uint32_t queues = 0;   // how many queues took it
    bool refused = false;  // a queue refused it (x-overflow reject-publish): nack a confirm
    int64_t last_recoverable_id = -1;  // wait for this journal id before confirming
  };
  // basic.publish: routes and queues the message. 404 for a missing exchange, 403 for an
  // internal one.
  Outcome<Published> publish(const std::string& exchange, const std::shared_ptr<Message>& message);

  // basic.consume: 403 when another consumer holds the queue exclusively (or `exclusive` and the
  // queue has consumers). Nothing is delivered until dispatch() (the face first confirms the
  // consume).
  Outcome<std::shared_ptr<MessageQueue>> consume(const std::string& queue, Consumer* consumer,
                                                 bool exclusive, OwnerId owner);
  // basic.cancel (or the consumer's channel closing). True when the queue is auto-delete and has
  // lost its last consumer: the caller deletes it (and journals that).
  bool cancel(const std::shared_ptr<MessageQueue>& queue, Consumer* consumer);
  struct Got {
    std::shared_ptr<MessageQueue> queue;
    QueuedMessage message;
    uint32_t remaining = 0;  // ready messages after this one
  };
  // basic.get.
  Outcome<std::optional<Got>> get(const std::string& queue, bool no_ack, OwnerId owner);
  enum class Settlement { ack, requeue, reject };
  // Settles an unacked message (reject dead-letters it, or drops it without a DLX).
  void settle(const std::shared_ptr<MessageQueue>& queue, uint64_t seq, Settlement how);
  // Hands ready messages of `queue` to its consumers (after their credit changed).
  void dispatch(const std::shared_ptr<MessageQueue>& queue);
  // Expires messages at the heads of queues (dead-lettering them).
  void expire_messages();
  // Queues unused for longer than their x-expires: the caller deletes them (and journals that).
  std::vector<std::string> unused_queues() const;
  // The connection a queue is exclusive to (0 when none), for deleting it on the owner's behalf.
  OwnerId owner_of(const std::string& queue) const;
  // Bytes read back for a message whose body is only in the journal.
  Result<MessagePtr> body_of(const QueuedMessage& message) const;
  // A message read back from the journal at startup.
  void restore_message(const std::string& queue, QueuedMessage message);

  // Makes server-generated names; replaceable for tests.
  std::function<std::string()> make_queue_name;
  // Wall-clock milliseconds; replaceable for tests.
  std::function<int64_t()> clock;

 private:
  Outcome<const ExchangeSettings*> find_exchange(const std::string& name) const;
  // A binding's ends checked: both exist, the default exchange is not one, the queue is usable.
  Outcome<Binding> queue_binding(const std::string& queue, const std::string& exchange,
                                 const std::string& key, const FieldTable& arguments,
                                 OwnerId owner) const;
  Outcome<Binding> exchange_binding(const std::string& destination, const std::string& source,
                                    const std::string& key, const FieldTable& arguments) const;
  std::string in_vhost() const { return "in vhost '" + name_ + "'"; }
  int64_t now() const;
  // Queues `message` on every queue named; dead messages are collected into `dead`.
  Published enqueue(const std::vector<std::string_view>& queues,
                    const std::shared_ptr<Message>& message, std::vector<DeadMessage>& dead);
  // Republishes dead messages to their queues' dead-letter exchanges (with x-death), or drops
  // them; settles them in the journal either way.
  void dead_letter(std::vector<DeadMessage>& dead);
  void remove_queue(std::map<std::string, QueueSettings, std::less<>>::iterator it);

  std::string name_;
  Router router_;
  std::map<std::string, QueueSettings, std::less<>> queues_;
  MessageJournal* journal_ = nullptr;
  ResidentBudget* budget_ = nullptr;
};

}  // namespace depot::messaging
