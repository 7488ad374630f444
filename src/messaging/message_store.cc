#include "messaging/message_store.h"

#include <map>

#include <spdlog/spdlog.h>

#include "messaging/record_fields.h"
#include "storage/record_batch.h"

namespace depot::messaging {
namespace {

enum class Kind : uint8_t { message = 1, settled = 2 };
constexpr uint8_t kRecoverable = 1;
// Settle records are written in groups of this many (or at collect_garbage()): a settle lost in
// a crash only brings a message back, which at-least-once delivery allows.
constexpr size_t kSettleBatch = 256;

struct Header {
  bool recoverable = false;
  int64_t expires_at = 0;
  std::string vhost;
  std::string queue;
};

// The message record's header; `r` is left at the exchange.
Header read_header(ByteReader& r) {
  Header h;
  h.recoverable = (r.read_be<uint8_t>() & kRecoverable) != 0;
  h.expires_at = r.read_be<int64_t>();
  h.vhost = read_string(r);
  h.queue = read_string(r);
  return h;
}

Result<std::shared_ptr<Message>> read_message(ByteReader& r) {
  auto message = std::make_shared<Message>();
  message->exchange = read_string(r);
  message->routing_key = read_string(r);
  ByteSpan properties = read_field(r);
  ByteSpan body = read_field(r);
  if (!r.ok()) return std::make_error_code(std::errc::illegal_byte_sequence);
  ByteReader props(properties);
  if (read_properties(props, message->properties) != nullptr) {
    return std::make_error_code(std::errc::illegal_byte_sequence);
  }
  message->raw_properties.assign(properties.begin(), properties.end());
  message->body.assign(body.begin(), body.end());
  return message;
}

}  // namespace

Result<std::unique_ptr<MessageStore>> MessageStore::open(const std::filesystem::path& dir,
                                                         storage::SyncService* sync,
                                                         uint64_t segment_bytes) {
  storage::LogConfig config;
  config.segment_bytes = segment_bytes;
  config.preallocate_bytes = std::min<uint64_t>(segment_bytes, 1ULL << 20);
  DEPOT_TRY(auto log, storage::Log::open({dir, config, sync, nullptr, {}}));
  std::unique_ptr<MessageStore> store(new MessageStore(std::move(log)));
  store->low_ = store->log_->log_end_offset();
  return store;
}

MessageStore::~MessageStore() {
  (void)close();
}

Result<size_t> MessageStore::recover(const std::function<void(Recovered)>& each) {
  // Pass one: which recoverable messages are still live. Pass two reads them one by one.
  std::map<int64_t, bool> live;
  size_t malformed = 0;
  DEPOT_TRY(storage::for_each_record(*log_, 0, [&](const storage::RecordView& record) {
    if (!record.value || record.value->empty()) return;
    ByteReader r(*record.value);
    const auto kind = static_cast<Kind>(r.read_be<uint8_t>());
    if (kind == Kind::message) {
      Header h = read_header(r);
      if (r.ok() && h.recoverable) live.emplace(record.offset, true);
    } else if (kind == Kind::settled) {
      const auto count = r.read_be<uint32_t>();
      for (uint32_t i = 0; i < count && r.ok(); ++i)
        live.erase(r.read_be<int64_t>());
    } else {
      ++malformed;
    }
  }));
  if (malformed > 0) spdlog::warn("messaging: {} unknown records in the message store", malformed);
  size_t recovered = 0;
  {
    std::lock_guard lock(mutex_);
    low_ = live.empty() ? log_->log_end_offset() : live.begin()->first;
    live_.assign(static_cast<size_t>(log_->log_end_offset() - low_), 0);
    for (const auto& [id, ignored] : live) {
      live_[static_cast<size_t>(id - low_)] = 1;
    }
    live_count_ = live.size();
  }
  for (const auto& [id, ignored] : live) {
    DEPOT_TRY(auto chunk, log_->read(id, 4096));
    DEPOT_TRY(auto records, storage::decode_records(chunk.data));
    for (const auto& record : records) {
      if (record.offset != id || !record.value) continue;
      ByteReader r(*record.value);
      (void)r.read_be<uint8_t>();
      Header h = read_header(r);
      auto message = read_message(r);
      if (!message) {
        spdlog::warn("messaging: message {} in the store is malformed; dropped", id);
        settle(id);
        continue;
      }
      each({std::move(h.vhost), std::move(h.queue), id, h.expires_at, std::move(message).value()});
      ++recovered;
    }
  }
  return recovered;
}

void MessageStore::mark_live_locked(int64_t id) {
  if (live_.empty()) low_ = id;
  while (low_ + static_cast<int64_t>(live_.size()) < id)
    live_.push_back(0);
  live_.push_back(1);
  ++live_count_;
}

Result<int64_t> MessageStore::append(const std::string& vhost, const std::string& queue,
                                     const Message& message, int64_t expires_at_ms,
                                     bool recoverable) {
  // Each field is an int32 length and its bytes (record_fields.h).
  const size_t value_size = 1 + 1 + 8 + 6 * 4 + vhost.size() + queue.size() +
                            message.exchange.size() + message.routing_key.size() +
                            message.raw_properties.size() + message.body.size();
  storage::RecordBatchBuilder builder;
  builder.add_in_place(std::nullopt, value_size, storage::system_clock_ms(), [&](ByteWriter& w) {
    w.write_be<uint8_t>(static_cast<uint8_t>(Kind::message));
    w.write_be<uint8_t>(recoverable ? kRecoverable : 0);
    w.write_be<int64_t>(expires_at_ms);
    write_string(w, vhost);
    write_string(w, queue);
    write_string(w, message.exchange);
    write_string(w, message.routing_key);
    write_field(w, message.raw_properties);
    write_field(w, message.body);
  });
  Bytes batch = builder.build();
  DEPOT_TRY(auto header, storage::parse_batch_header(batch));
  std::lock_guard lock(mutex_);
  DEPOT_TRY(auto appended, log_->append_checked(batch, header));
  mark_live_locked(appended.base_offset);
  return appended.base_offset;
}

void MessageStore::settle(int64_t id) {
  std::lock_guard lock(mutex_);
  if (id < low_ || id >= low_ + static_cast<int64_t>(live_.size())) return;
  uint8_t& slot = live_[static_cast<size_t>(id - low_)];
  if (slot == 0) return;
  slot = 0;
  --live_count_;
  while (!live_.empty() && live_.front() == 0) {
    live_.pop_front();
    ++low_;
  }
  settled_.push_back(id);
  if (settled_.size() >= kSettleBatch) {
    if (auto written = flush_settled_locked(); !written) {
      spdlog::error("messaging: cannot write settles to the message store: {}",
                    written.error().message());
    }
  }
}

Result<void> MessageStore::flush_settled_locked() {
  if (settled_.empty()) return success();
  Bytes value;
  ByteWriter w(value);
  w.write_be<uint8_t>(static_cast<uint8_t>(Kind::settled));
  w.write_be<uint32_t>(static_cast<uint32_t>(settled_.size()));
  for (int64_t id : settled_)
    w.write_be<int64_t>(id);
  settled_.clear();
  storage::RecordBatchBuilder builder;
  builder.add(std::nullopt, ByteSpan(value), storage::system_clock_ms());
  Bytes batch = builder.build();
  DEPOT_TRY(log_->append(batch));
  if (live_.empty()) low_ = log_->log_end_offset();
  return success();
}

Result<void> MessageStore::flush_settled() {
  std::lock_guard lock(mutex_);
  return flush_settled_locked();
}

Result<MessagePtr> MessageStore::read(int64_t id) {
  DEPOT_TRY(auto chunk, log_->read(id, 4096));
  DEPOT_TRY(auto records, storage::decode_records(chunk.data));
  for (const auto& record : records) {
    if (record.offset != id || !record.value) continue;
    ByteReader r(*record.value);
    if (static_cast<Kind>(r.read_be<uint8_t>()) != Kind::message) break;
    (void)read_header(r);
    DEPOT_TRY(auto message, read_message(r));
    return MessagePtr(std::move(message));
  }
  return std::make_error_code(std::errc::no_message);
}

void MessageStore::when_durable(int64_t id, storage::Log::DurableCallback done) {
  log_->when_durable(id, std::move(done));
}

Result<void> MessageStore::collect_garbage() {
  int64_t keep_from = 0;
  {
    std::lock_guard lock(mutex_);
    DEPOT_TRY(flush_settled_locked());
    keep_from = low_;
  }
  DEPOT_TRY(log_->delete_before(keep_from));
  return success();
}

size_t MessageStore::live_count() const {
  std::lock_guard lock(mutex_);
  return live_count_;
}

Result<void> MessageStore::close() {
  {
    std::lock_guard lock(mutex_);
    if (auto written = flush_settled_locked(); !written) return written.error();
  }
  return log_->close();
}

}  // namespace depot::messaging
