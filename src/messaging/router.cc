#include "messaging/router.h"

#include <algorithm>

namespace depot::messaging {
namespace {

// '.'-separated words; "" has none.
std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  if (text.empty()) return out;
  size_t start = 0;
  for (;;) {
    size_t dot = text.find('.', start);
    out.push_back(text.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// Numeric class of a value, as RabbitMQ's type_class: integers compare across widths, floats
// across precisions.
enum class ValueClass { integer, floating, other };
ValueClass value_class(const FieldValue& v) {
  if (v.as_integer()) return ValueClass::integer;
  if (std::holds_alternative<float>(v.value) || std::holds_alternative<double>(v.value)) {
    return ValueClass::floating;
  }
  return ValueClass::other;
}
double as_double(const FieldValue& v) {
  if (const auto* f = std::get_if<float>(&v.value)) return *f;
  return std::get<double>(v.value);
}

bool same_value(const FieldValue& binding, const FieldValue& header) {
  const ValueClass a = value_class(binding);
  if (a != value_class(header)) return false;
  switch (a) {
    case ValueClass::integer:
      return *binding.as_integer() == *header.as_integer();
    case ValueClass::floating:
      return as_double(binding) == as_double(header);
    case ValueClass::other:
      return binding == header;
  }
  return false;
}

}  // namespace

std::optional<ExchangeType> exchange_type_from_name(std::string_view name) {
  if (name == "direct") return ExchangeType::direct;
  if (name == "fanout") return ExchangeType::fanout;
  if (name == "topic") return ExchangeType::topic;
  if (name == "headers") return ExchangeType::headers;
  return std::nullopt;
}

const char* exchange_type_name(ExchangeType type) {
  switch (type) {
    case ExchangeType::direct:
      return "direct";
    case ExchangeType::fanout:
      return "fanout";
    case ExchangeType::topic:
      return "topic";
    case ExchangeType::headers:
      return "headers";
  }
  return "direct";
}

bool topic_matches(std::string_view pattern, std::string_view routing_key) {
  const auto p = words(pattern);
  const auto k = words(routing_key);
  // reachable[j]: the pattern's first i words can match the key's first j words.
  std::vector<char> reachable(k.size() + 1, 0);
  reachable[0] = 1;
  for (const std::string_view word : p) {
    std::vector<char> next(k.size() + 1, 0);
    if (word == "#") {
      // Zero or more words: every j at or after the first reachable one.
      bool any = false;
      for (size_t j = 0; j <= k.size(); ++j) {
        any = any || reachable[j] != 0;
        next[j] = any ? 1 : 0;
      }
    } else {
      for (size_t j = 0; j < k.size(); ++j) {
        if (reachable[j] != 0 && (word == "*" || word == k[j])) next[j + 1] = 1;
      }
    }
    reachable = std::move(next);
  }
  return reachable[k.size()] != 0;
}

bool headers_match(const FieldTable& binding_arguments, const FieldTable* headers) {
  std::string mode = "all";
  if (const FieldValue* x_match = find_field(binding_arguments, "x-match")) {
    if (const std::string* text = x_match->as_string()) mode = *text;
  }
  const bool any = mode == "any" || mode == "any-with-x";
  const bool with_x = mode == "all-with-x" || mode == "any-with-x";
  bool all_matched = true;
  bool any_matched = false;
  for (const FieldEntry& wanted : binding_arguments) {
    if (wanted.name == "x-match") continue;
    if (!with_x && wanted.name.starts_with("x-")) continue;
    const FieldValue* found = headers == nullptr ? nullptr : find_field(*headers, wanted.name);
    const bool matched = found != nullptr && (std::holds_alternative<Void>(wanted.value.value) ||
                                              same_value(wanted.value, *found));
    all_matched = all_matched && matched;
    any_matched = any_matched || matched;
  }
  return any ? any_matched : all_matched;
}

std::optional<std::string_view> ExchangeSettings::alternate_exchange() const {
  const FieldValue* value = find_field(arguments, "alternate-exchange");
  if (value == nullptr || value->as_string() == nullptr) return std::nullopt;
  return *value->as_string();
}

Router::Router() {
  exchanges_[""].settings = {ExchangeType::direct, true, false, false, {}};
  exchanges_["amq.direct"].settings = {ExchangeType::direct, true, false, false, {}};
  exchanges_["amq.fanout"].settings = {ExchangeType::fanout, true, false, false, {}};
  exchanges_["amq.topic"].settings = {ExchangeType::topic, true, false, false, {}};
  exchanges_["amq.headers"].settings = {ExchangeType::headers, true, false, false, {}};
  exchanges_["amq.match"].settings = {ExchangeType::headers, true, false, false, {}};
}

const ExchangeSettings* Router::exchange(std::string_view name) const {
  auto it = exchanges_.find(name);
  return it == exchanges_.end() ? nullptr : &it->second.settings;
}

void Router::add_exchange(const std::string& name, ExchangeSettings settings) {
  exchanges_[name].settings = std::move(settings);
}

void Router::remove_exchange(std::string_view name) {
  auto it = exchanges_.find(name);
  if (it == exchanges_.end()) return;
  exchanges_.erase(it);
  const Destination gone{Destination::Kind::exchange, std::string(name)};
  for (auto& [source, state] : exchanges_) {
    std::erase_if(state.edges, [&](const Edge& e) { return e.destination == gone; });
  }
}

void Router::add_queue(const std::string& name) {
  queues_.insert(name);
}

void Router::remove_queue(std::string_view name) {
  if (auto it = queues_.find(name); it != queues_.end()) queues_.erase(it);
  const Destination gone{Destination::Kind::queue, std::string(name)};
  for (auto& [source, state] : exchanges_) {
    std::erase_if(state.edges, [&](const Edge& e) { return e.destination == gone; });
  }
}

bool Router::bind(const Binding& binding) {
  auto it = exchanges_.find(binding.source);
  if (it == exchanges_.end()) return false;
  Edge edge{binding.destination, binding.key, binding.arguments};
  auto& edges = it->second.edges;
  if (std::find(edges.begin(), edges.end(), edge) != edges.end()) return false;
  edges.push_back(std::move(edge));
  return true;
}

bool Router::unbind(const Binding& binding) {
  auto it = exchanges_.find(binding.source);
  if (it == exchanges_.end()) return false;
  const Edge edge{binding.destination, binding.key, binding.arguments};
  return std::erase(it->second.edges, edge) > 0;
}

bool Router::has_bindings_from(std::string_view exchange) const {
  auto it = exchanges_.find(exchange);
  return it != exchanges_.end() && !it->second.edges.empty();
}

bool Router::has_bindings_to(const Destination& destination) const {
  return std::any_of(exchanges_.begin(), exchanges_.end(), [&](const auto& entry) {
    const auto& edges = entry.second.edges;
    return std::any_of(edges.begin(), edges.end(),
                       [&](const Edge& e) { return e.destination == destination; });
  });
}

std::vector<Binding> Router::bindings() const {
  std::vector<Binding> all;
  for (const auto& [source, state] : exchanges_) {
    for (const Edge& e : state.edges)
      all.push_back({source, e.destination, e.key, e.arguments});
  }
  return all;
}

template <class Reach>
void Router::route_one(std::string_view name, const ExchangeState& exchange,
                       std::string_view routing_key, const FieldTable* headers,
                       Reach&& reach) const {
  if (name.empty()) {  // the default exchange: every queue, by its name
    if (auto it = queues_.find(routing_key); it != queues_.end()) {
      reach(Destination::Kind::queue, std::string_view(*it));
    }
    return;
  }
  for (const Edge& e : exchange.edges) {
    bool matched = false;
    switch (exchange.settings.type) {
      case ExchangeType::direct:
        matched = e.key == routing_key;
        break;
      case ExchangeType::fanout:
        matched = true;
        break;
      case ExchangeType::topic:
        matched = topic_matches(e.key, routing_key);
        break;
      case ExchangeType::headers:
        matched = headers_match(e.arguments, headers);
        break;
    }
    if (matched) reach(e.destination.kind, std::string_view(e.destination.name));
  }
}

std::vector<std::string_view> Router::route(std::string_view exchange, std::string_view routing_key,
                                            const FieldTable* headers) const {
  std::vector<std::string_view> queues;
  // Exchanges reached beyond the first, each once (so cycles end). Most messages reach none, and
  // exchange graphs are small: a linear search is enough.
  std::vector<std::string_view> exchanges;
  auto reach_exchange = [&](std::string_view name) {
    if (name != exchange &&
        std::find(exchanges.begin(), exchanges.end(), name) == exchanges.end()) {
      exchanges.push_back(name);
    }
  };
  auto visit = [&](std::string_view name) {
    auto it = exchanges_.find(name);
    if (it == exchanges_.end()) return;  // an alternate exchange that does not exist
    bool routed = false;
    route_one(name, it->second, routing_key, headers,
              [&](Destination::Kind kind, std::string_view destination) {
                routed = true;
                if (kind == Destination::Kind::queue) {
                  queues.push_back(destination);
                } else {
                  reach_exchange(destination);
                }
              });
    if (!routed) {
      if (auto alternate = it->second.settings.alternate_exchange()) reach_exchange(*alternate);
    }
  };
  visit(exchange);
  for (size_t i = 0; i < exchanges.size(); ++i)
    visit(exchanges[i]);  // by value: the vector may grow meanwhile
  // A queue reached twice (two bindings, two paths) gets the message once.
  if (queues.size() > 1) {
    std::sort(queues.begin(), queues.end());
    queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
  }
  return queues;
}

}  // namespace depot::messaging
