#pragma once
// The durable part of the messaging model, as RabbitMQ keeps it: durable exchanges, durable
// (non-exclusive) queues, and bindings whose two ends are durable. Each change is a keyed record
// in a storage-engine log (a delete is a tombstone, and deleting an exchange or a queue also
// writes tombstones for the bindings that go with it); opening the log restores every virtual
// host's definitions, exchanges and queues first, then bindings.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "messaging/vhost.h"
#include "storage/log.h"

namespace depot::messaging {

class Definitions {
 public:
  static Result<std::unique_ptr<Definitions>> open(const std::filesystem::path& dir,
                                                   storage::SyncService* sync);

  // Declares, in `vhost_for(name)`'s virtual host (skipped when it returns nullptr: a vhost no
  // longer configured), every definition the log holds. Returns how many were restored.
  Result<size_t> restore(const std::function<VirtualHost*(const std::string& vhost)>& vhost_for);

  // What a successful operation changed. Each appends its records and returns the offset to
  // pass to when_durable() before telling the client (-1 when nothing needed writing), so that
  // no thread waits for the disk.
  Result<int64_t> exchange_declared(const VirtualHost& vhost, const std::string& name);
  // `bindings` are those that went with the exchange (taken before it was deleted).
  Result<int64_t> exchange_deleted(const VirtualHost& vhost, const std::string& name,
                                   const std::vector<Binding>& bindings);
  Result<int64_t> queue_declared(const VirtualHost& vhost, const std::string& name);
  Result<int64_t> queue_deleted(const VirtualHost& vhost, const std::string& name,
                                const std::vector<Binding>& bindings);
  Result<int64_t> bound(const VirtualHost& vhost, const Binding& binding);
  Result<int64_t> unbound(const VirtualHost& vhost, const Binding& binding);

  // Calls `done` once `offset` is durable under the fsync policy (on a sync thread, or at once).
  void when_durable(int64_t offset, storage::Log::DurableCallback done) {
    log_->when_durable(offset, std::move(done));
  }

  // Whether an entity is kept across restarts.
  static bool durable_exchange(const VirtualHost& vhost, const std::string& name);
  static bool durable_queue(const VirtualHost& vhost, const std::string& name);
  static bool durable_binding(const VirtualHost& vhost, const Binding& binding);

  Result<void> close();

 private:
  struct Change {
    std::string key;
    std::optional<Bytes> value;  // nullopt: a tombstone
  };
  explicit Definitions(std::shared_ptr<storage::Log> log) : log_(std::move(log)) {}
  Result<int64_t> write(const std::vector<Change>& changes);
  // Tombstones for an entity and the bindings that went with it, in one batch.
  Result<int64_t> deleted(const std::string& vhost, const std::string& entity_key,
                          const std::vector<Binding>& bindings);

  std::shared_ptr<storage::Log> log_;
};

// Every binding from or to an entity, for the tombstones that go with its deletion.
std::vector<Binding> bindings_involving(const Router& router, const Destination& entity);

}  // namespace depot::messaging
