#pragma once
// Exchanges, bindings and routing as RabbitMQ does them (one router per virtual host):
// direct, fanout, topic and headers exchanges, the default exchange (every queue bound by its own
// name), exchange-to-exchange bindings, and alternate exchanges for what an exchange cannot
// route. No I/O, no wire formats; declaring rules (equivalence, reserved names) are the broker's.
#include <compare>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messaging/field.h"

namespace depot::messaging {

enum class ExchangeType { direct, fanout, topic, headers };
std::optional<ExchangeType> exchange_type_from_name(std::string_view name);
const char* exchange_type_name(ExchangeType type);

// RabbitMQ's topic match: keys and patterns are words separated by '.', a pattern's '*' matches
// exactly one word and '#' zero or more; "" has no words (so only "" and "#" match it).
bool topic_matches(std::string_view pattern, std::string_view routing_key);

// A headers exchange binding's match: x-match "all" (the default) or "any" over the binding's
// arguments, those starting "x-" ignored unless x-match is "all-with-x" / "any-with-x". A void
// argument matches any value; integers match across widths, as do floats.
bool headers_match(const FieldTable& binding_arguments, const FieldTable* headers);

struct ExchangeSettings {
  ExchangeType type = ExchangeType::direct;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  FieldTable arguments;

  // The "alternate-exchange" argument, when it is a string (a view into `arguments`).
  std::optional<std::string_view> alternate_exchange() const;
  bool operator==(const ExchangeSettings&) const = default;
};

struct Destination {
  enum class Kind { queue, exchange } kind = Kind::queue;
  std::string name;
  auto operator<=>(const Destination&) const = default;
};

struct Binding {
  std::string source;  // an exchange
  Destination destination;
  std::string key;
  FieldTable arguments;
  bool operator==(const Binding&) const = default;
};

class Router {
 public:
  Router();  // with the default exchange "" and amq.direct, amq.fanout, amq.topic,
             // amq.headers and amq.match

  const ExchangeSettings* exchange(std::string_view name) const;
  void add_exchange(const std::string& name, ExchangeSettings settings);
  // Removes the exchange and every binding from it or to it.
  void remove_exchange(std::string_view name);

  bool has_queue(std::string_view name) const { return queues_.contains(name); }
  void add_queue(const std::string& name);
  // Removes the queue and every binding to it.
  void remove_queue(std::string_view name);

  // False when an equal binding exists already (binding twice is not an error in AMQP).
  bool bind(const Binding& binding);
  // False when there was no such binding.
  bool unbind(const Binding& binding);
  bool has_bindings_from(std::string_view exchange) const;
  bool has_bindings_to(const Destination& destination) const;
  // Every binding, source exchange by source exchange (for persistence and listing).
  std::vector<Binding> bindings() const;

  // The queues a message published to `exchange` reaches, each once: through the exchange's
  // bindings and on through exchange-to-exchange bindings (each exchange visited once, so cycles
  // end), plus the alternate exchange of every exchange that routed the message nowhere. The
  // names point into the router: use them before it next changes. Every message is routed, so
  // the only allocation is the result's.
  std::vector<std::string_view> route(std::string_view exchange, std::string_view routing_key,
                                      const FieldTable* headers) const;

 private:
  struct Edge {
    Destination destination;
    std::string key;
    FieldTable arguments;
    bool operator==(const Edge&) const = default;
  };
  struct ExchangeState {
    ExchangeSettings settings;
    std::vector<Edge> edges;  // in binding order
  };
  // Where one exchange sends a message, before following exchange-to-exchange bindings:
  // `reach(kind, name)` for each destination, in binding order.
  template <class Reach>
  void route_one(std::string_view name, const ExchangeState& exchange, std::string_view routing_key,
                 const FieldTable* headers, Reach&& reach) const;

  std::map<std::string, ExchangeState, std::less<>> exchanges_;
  std::set<std::string, std::less<>> queues_;
};

}  // namespace depot::messaging
