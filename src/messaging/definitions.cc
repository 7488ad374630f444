#include "messaging/definitions.h"

#include <map>

#include <spdlog/spdlog.h>

#include "messaging/record_fields.h"
#include "storage/record_batch.h"

namespace depot::messaging {
namespace {

enum class Kind : uint8_t { exchange = 1, queue = 2, binding = 3 };

// Keys: kind, vhost and the entity's identity, NUL-separated (names hold no NUL in practice; a
// binding's arguments are part of its identity, as in AMQP).
std::string key_for(Kind kind, const std::string& vhost, const std::string& name) {
  std::string key(1, static_cast<char>(kind));
  key += vhost;
  key += '\0';
  key += name;
  return key;
}

std::string binding_key(const std::string& vhost, const Binding& b) {
  Bytes args;
  ByteWriter w(args);
  write_table(w, b.arguments);
  std::string key = key_for(Kind::binding, vhost, b.source);
  key += '\0';
  key += b.destination.kind == Destination::Kind::queue ? 'q' : 'x';
  key += b.destination.name;
  key += '\0';
  key += b.key;
  key += '\0';
  key.append(as_chars(args));
  return key;
}

Bytes encode_exchange(const std::string& vhost, const std::string& name,
                      const ExchangeSettings& s) {
  Bytes out;
  ByteWriter w(out);
  w.write_be<uint8_t>(static_cast<uint8_t>(Kind::exchange));
  write_string(w, vhost);
  write_string(w, name);
  w.write_be<uint8_t>(static_cast<uint8_t>(s.type));
  w.write_be<uint8_t>(
      static_cast<uint8_t>((s.durable ? 1 : 0) | (s.auto_delete ? 2 : 0) | (s.internal ? 4 : 0)));
  write_table(w, s.arguments);
  return out;
}

Bytes encode_queue(const std::string& vhost, const std::string& name, const QueueSettings& s) {
  Bytes out;
  ByteWriter w(out);
  w.write_be<uint8_t>(static_cast<uint8_t>(Kind::queue));
  write_string(w, vhost);
  write_string(w, name);
  w.write_be<uint8_t>(static_cast<uint8_t>((s.durable ? 1 : 0) | (s.auto_delete ? 2 : 0)));
  write_table(w, s.arguments);
  return out;
}

Bytes encode_binding(const std::string& vhost, const Binding& b) {
  Bytes out;
  ByteWriter w(out);
  w.write_be<uint8_t>(static_cast<uint8_t>(Kind::binding));
  write_string(w, vhost);
  write_string(w, b.source);
  w.write_be<uint8_t>(b.destination.kind == Destination::Kind::queue ? 0 : 1);
  write_string(w, b.destination.name);
  write_string(w, b.key);
  write_table(w, b.arguments);
  return out;
}

}  // namespace

std::vector<Binding> bindings_involving(const Router& router, const Destination& entity) {
  std::vector<Binding> found;
  for (Binding& b : router.bindings()) {
    const bool from = entity.kind == Destination::Kind::exchange && b.source == entity.name;
    if (from || b.destination == entity) found.push_back(std::move(b));
  }
  return found;
}

Result<std::unique_ptr<Definitions>> Definitions::open(const std::filesystem::path& dir,
                                                       storage::SyncService* sync) {
  storage::LogConfig config;
  config.segment_bytes = 8 << 20;
  config.preallocate_bytes = 0;  // a handful of records
  DEPOT_TRY(auto log, storage::Log::open({dir, config, sync, nullptr, {}}));
  return std::unique_ptr<Definitions>(new Definitions(std::move(log)));
}

bool Definitions::durable_exchange(const VirtualHost& vhost, const std::string& name) {
  const ExchangeSettings* s = vhost.router().exchange(name);
  return s != nullptr && s->durable;
}

bool Definitions::durable_queue(const VirtualHost& vhost, const std::string& name) {
  const QueueSettings* s = vhost.queue(name);
  return s != nullptr && s->durable && !s->exclusive;
}

bool Definitions::durable_binding(const VirtualHost& vhost, const Binding& binding) {
  // The default and amq.* exchanges are durable and always there.
  const bool source = durable_exchange(vhost, binding.source);
  const bool destination = binding.destination.kind == Destination::Kind::queue
                               ? durable_queue(vhost, binding.destination.name)
                               : durable_exchange(vhost, binding.destination.name);
  return source && destination;
}

Result<int64_t> Definitions::write(const std::vector<Change>& changes) {
  if (changes.empty()) return int64_t{-1};
  storage::RecordBatchBuilder builder;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (const Change& c : changes) {
    std::optional<ByteSpan> value;
    if (c.value) value = ByteSpan(*c.value);
    builder.add(as_bytes(c.key), value, now_ms);
  }
  Bytes batch = builder.build();
  DEPOT_TRY(auto appended, log_->append(batch));
  return appended.last_offset;
}

Result<int64_t> Definitions::exchange_declared(const VirtualHost& vhost, const std::string& name) {
  if (!durable_exchange(vhost, name)) return int64_t{-1};
  return write({{key_for(Kind::exchange, vhost.name(), name),
                 encode_exchange(vhost.name(), name, *vhost.router().exchange(name))}});
}

Result<int64_t> Definitions::deleted(const std::string& vhost, const std::string& entity_key,
                                     const std::vector<Binding>& bindings) {
  std::vector<Change> changes;
  changes.reserve(bindings.size() + 1);
  for (const Binding& b : bindings)
    changes.push_back({binding_key(vhost, b), {}});
  changes.push_back({entity_key, {}});
  return write(changes);
}

Result<int64_t> Definitions::exchange_deleted(const VirtualHost& vhost, const std::string& name,
                                              const std::vector<Binding>& bindings) {
  return deleted(vhost.name(), key_for(Kind::exchange, vhost.name(), name), bindings);
}

Result<int64_t> Definitions::queue_declared(const VirtualHost& vhost, const std::string& name) {
  if (!durable_queue(vhost, name)) return int64_t{-1};
  return write({{key_for(Kind::queue, vhost.name(), name),
                 encode_queue(vhost.name(), name, *vhost.queue(name))}});
}

Result<int64_t> Definitions::queue_deleted(const VirtualHost& vhost, const std::string& name,
                                           const std::vector<Binding>& bindings) {
  return deleted(vhost.name(), key_for(Kind::queue, vhost.name(), name), bindings);
}

Result<int64_t> Definitions::bound(const VirtualHost& vhost, const Binding& binding) {
  if (!durable_binding(vhost, binding)) return int64_t{-1};
  return write({{binding_key(vhost.name(), binding), encode_binding(vhost.name(), binding)}});
}

Result<int64_t> Definitions::unbound(const VirtualHost& vhost, const Binding& binding) {
  return write({{binding_key(vhost.name(), binding), {}}});
}

Result<size_t> Definitions::restore(
    const std::function<VirtualHost*(const std::string& vhost)>& vhost_for) {
  // The newest record of each key, in key order per kind: exchanges and queues before bindings.
  std::map<std::string, std::optional<Bytes>> latest;
  DEPOT_TRY(storage::for_each_record(*log_, 0, [&](const storage::RecordView& r) {
    if (!r.key) return;
    std::string key(as_chars(*r.key));
    if (r.value) {
      latest[key] = Bytes(r.value->begin(), r.value->end());
    } else {
      latest[key] = std::nullopt;
    }
  }));
  size_t restored = 0;
  for (Kind pass : {Kind::exchange, Kind::queue, Kind::binding}) {
    for (const auto& [key, value] : latest) {
      if (!value || key.empty() || static_cast<Kind>(key[0]) != pass) continue;
      ByteReader in(*value);
      const auto kind = static_cast<Kind>(in.read_be<uint8_t>());
      const std::string vhost_name = read_string(in);
      VirtualHost* vhost = vhost_for(vhost_name);
      if (vhost == nullptr) {
        spdlog::warn("messaging: definitions of vhost '{}' skipped: it is not configured",
                     vhost_name);
        continue;
      }
      bool ok = false;
      if (kind == Kind::exchange) {
        VirtualHost::ExchangeDeclare d;
        d.name = read_string(in);
        const auto type = static_cast<ExchangeType>(in.read_be<uint8_t>());
        d.type = exchange_type_name(type);
        const auto flags = in.read_be<uint8_t>();
        d.durable = (flags & 1) != 0;
        d.auto_delete = (flags & 2) != 0;
        d.internal = (flags & 4) != 0;
        ok = read_table(in, d.arguments) && in.at_end() && vhost->declare_exchange(d);
      } else if (kind == Kind::queue) {
        VirtualHost::QueueDeclare d;
        d.name = read_string(in);
        const auto flags = in.read_be<uint8_t>();
        d.durable = (flags & 1) != 0;
        d.auto_delete = (flags & 2) != 0;
        ok = read_table(in, d.arguments) && in.at_end() && vhost->declare_queue(d);
      } else if (kind == Kind::binding) {
        const std::string source = read_string(in);
        const bool to_queue = in.read_be<uint8_t>() == 0;
        const std::string destination = read_string(in);
        const std::string key_text = read_string(in);
        FieldTable arguments;
        ok =
            read_table(in, arguments) && in.at_end() &&
            (to_queue
                 ? static_cast<bool>(vhost->bind_queue(destination, source, key_text, arguments, 0))
                 : static_cast<bool>(
                       vhost->bind_exchange(destination, source, key_text, arguments)));
      }
      if (ok) {
        ++restored;
      } else {
        spdlog::warn("messaging: a definition in the journal could not be restored; skipped");
      }
    }
  }
  return restored;
}

Result<void> Definitions::close() {
  return log_->close();
}

}  // namespace depot::messaging
