#include "eventlog/offsets.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "eventlog/topics.h"
#include "messaging/record_fields.h"
#include "storage/record_batch.h"

namespace depot::eventlog {
namespace {

using messaging::read_string;
using messaging::write_string;

// The first byte of a key says what the record is: a committed offset, or a group's metadata
// (as Kafka keeps both in __consumer_offsets).
constexpr uint8_t kCommittedOffsetKey = 1;
constexpr uint8_t kGroupMetadataKey = 2;
constexpr uint8_t kCommittedOffsetValueVersion = 0;
constexpr uint8_t kGroupMetadataValueVersion = 0;

struct OffsetKey {
  std::string group;
  std::string topic;
  int32_t partition = 0;
};

Bytes encode_key(std::string_view group, std::string_view topic, int32_t partition) {
  Bytes out;
  out.reserve(1 + 4 + group.size() + 4 + topic.size() + 4);
  ByteWriter w(out);
  w.write_be<uint8_t>(kCommittedOffsetKey);
  write_string(w, group);
  write_string(w, topic);
  w.write_be<int32_t>(partition);
  return out;
}

Bytes encode_group_key(std::string_view group) {
  Bytes out;
  out.reserve(1 + 4 + group.size());
  ByteWriter w(out);
  w.write_be<uint8_t>(kGroupMetadataKey);
  write_string(w, group);
  return out;
}

// The key's kind (0 when there is none), and the reader positioned after it.
uint8_t key_kind(ByteReader& r) {
  const auto kind = r.read_be<uint8_t>();
  return r.ok() ? kind : 0;
}

std::optional<std::string> decode_group_key(ByteReader& r) {
  std::string group = read_string(r);
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return group;
}

std::optional<OffsetKey> decode_key(ByteReader& r) {
  OffsetKey key;
  key.group = read_string(r);
  key.topic = read_string(r);
  key.partition = r.read_be<int32_t>();
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return key;
}

Bytes encode_value(const CommittedOffset& value) {
  Bytes out;
  out.reserve(1 + 8 + 4 + 4 + value.metadata.size() + 8);
  ByteWriter w(out);
  w.write_be<uint8_t>(kCommittedOffsetValueVersion);
  w.write_be<int64_t>(value.offset);
  w.write_be<int32_t>(value.leader_epoch);
  write_string(w, value.metadata);
  w.write_be<int64_t>(value.commit_timestamp_ms);
  return out;
}

void write_optional_string(ByteWriter& w, const std::optional<std::string>& s) {
  w.write_be<uint8_t>(s ? 1 : 0);
  if (s) write_string(w, *s);
}

std::optional<std::string> read_optional_string(ByteReader& r) {
  if (r.read_be<uint8_t>() == 0) return std::nullopt;
  return read_string(r);
}

Bytes encode_group_value(const GroupMetadata& group) {
  Bytes out;
  ByteWriter w(out);
  w.write_be<uint8_t>(kGroupMetadataValueVersion);
  write_string(w, group.protocol_type);
  w.write_be<int32_t>(group.generation_id);
  write_optional_string(w, group.protocol_name);
  write_optional_string(w, group.leader_id);
  w.write_be<uint32_t>(static_cast<uint32_t>(group.members.size()));
  for (const GroupMemberMetadata& m : group.members) {
    write_string(w, m.member_id);
    write_optional_string(w, m.group_instance_id);
    write_string(w, m.client_id);
    write_string(w, m.client_host);
    w.write_be<int32_t>(m.rebalance_timeout_ms);
    w.write_be<int32_t>(m.session_timeout_ms);
    messaging::write_field(w, m.subscription);
    messaging::write_field(w, m.assignment);
  }
  return out;
}

std::optional<GroupMetadata> decode_group_value(ByteSpan bytes) {
  ByteReader r(bytes);
  if (r.read_be<uint8_t>() != kGroupMetadataValueVersion) return std::nullopt;
  GroupMetadata group;
  group.protocol_type = read_string(r);
  group.generation_id = r.read_be<int32_t>();
  group.protocol_name = read_optional_string(r);
  group.leader_id = read_optional_string(r);
  const auto count = r.read_be<uint32_t>();
  // A member takes at least 29 bytes: a count beyond what is left is corrupt.
  if (!r.ok() || count > r.remaining() / 29) return std::nullopt;
  group.members.resize(count);
  for (GroupMemberMetadata& m : group.members) {
    m.member_id = read_string(r);
    m.group_instance_id = read_optional_string(r);
    m.client_id = read_string(r);
    m.client_host = read_string(r);
    m.rebalance_timeout_ms = r.read_be<int32_t>();
    m.session_timeout_ms = r.read_be<int32_t>();
    const ByteSpan subscription = messaging::read_field(r);
    m.subscription.assign(subscription.begin(), subscription.end());
    const ByteSpan assignment = messaging::read_field(r);
    m.assignment.assign(assignment.begin(), assignment.end());
  }
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return group;
}

std::optional<CommittedOffset> decode_value(ByteSpan bytes) {
  ByteReader r(bytes);
  if (r.read_be<uint8_t>() != kCommittedOffsetValueVersion) return std::nullopt;
  CommittedOffset value;
  value.offset = r.read_be<int64_t>();
  value.leader_epoch = r.read_be<int32_t>();
  value.metadata = read_string(r);
  value.commit_timestamp_ms = r.read_be<int64_t>();
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return value;
}

}  // namespace

storage::LogConfig OffsetStore::default_log_config() {
  storage::LogConfig config;
  config.segment_bytes = 16ULL << 20;
  config.preallocate_bytes = 0;  // small records, written a few at a time
  return config;
}

Result<std::unique_ptr<OffsetStore>> OffsetStore::open(const std::filesystem::path& dir,
                                                       storage::SyncService* sync,
                                                       storage::LogConfig config) {
  DEPOT_TRY(auto log, storage::Log::open({dir, config, sync, nullptr, {}}));
  std::unique_ptr<OffsetStore> store(new OffsetStore(std::move(log)));
  DEPOT_TRY(store->load());
  return store;
}

OffsetStore::~OffsetStore() {
  (void)close();
}

Result<void> OffsetStore::load() {
  // Replaying counts what is superseded too: garbage from before a restart is garbage still.
  size_t skipped = 0;
  std::lock_guard lock(mutex_);
  DEPOT_TRY(storage::for_each_record(*log_, 0, [&](const storage::RecordView& record) {
    if (!record.key) {
      ++skipped;
      return;
    }
    ByteReader r(*record.key);
    switch (key_kind(r)) {
      case kCommittedOffsetKey: {
        auto key = decode_key(r);
        std::optional<CommittedOffset> value;
        if (key && record.value) value = decode_value(*record.value);
        if (!key || (record.value && !value)) {
          ++skipped;
          return;
        }
        apply(key->group, key->topic, key->partition, std::move(value));
        return;
      }
      case kGroupMetadataKey: {
        auto group = decode_group_key(r);
        std::optional<GroupMetadata> value;
        if (group && record.value) value = decode_group_value(*record.value);
        if (!group || (record.value && !value)) {
          ++skipped;
          return;
        }
        apply_group(*group, std::move(value));
        return;
      }
      default:
        ++skipped;
    }
  }));
  if (skipped > 0) {
    spdlog::warn("eventlog: {} record(s) of the offsets log in {} do not decode; skipped", skipped,
                 log_->dir().string());
  }
  return success();
}

void OffsetStore::apply(std::string_view group, const std::string& topic, int32_t partition,
                        std::optional<CommittedOffset> value) {
  auto group_it = groups_.find(group);
  if (!value) {
    if (group_it == groups_.end()) return;
    auto topic_it = group_it->second.find(topic);
    if (topic_it == group_it->second.end() || topic_it->second.erase(partition) == 0) return;
    // The value is garbage now, and the tombstone will be once compaction has let it age.
    --live_records_;
    superseded_records_ += 2;
    if (topic_it->second.empty()) group_it->second.erase(topic_it);
    if (group_it->second.empty()) groups_.erase(group_it);
    return;
  }
  if (group_it == groups_.end())
    group_it = groups_.emplace(std::string(group), TopicOffsets{}).first;
  auto [it, inserted] = group_it->second[topic].insert_or_assign(partition, std::move(*value));
  if (inserted) {
    ++live_records_;
  } else {
    ++superseded_records_;
  }
}

void OffsetStore::apply_group(std::string_view group, std::optional<GroupMetadata> value) {
  auto it = group_metadata_.find(group);
  if (!value) {
    if (it == group_metadata_.end()) return;
    group_metadata_.erase(it);
    --live_records_;
    superseded_records_ += 2;
    return;
  }
  if (it == group_metadata_.end()) {
    group_metadata_.emplace(std::string(group), std::move(*value));
    ++live_records_;
  } else {
    it->second = std::move(*value);
    ++superseded_records_;
  }
}

Result<int64_t> OffsetStore::commit(std::string_view group, std::span<const OffsetCommit> offsets,
                                    int64_t now_ms) {
  if (offsets.empty()) return int64_t{-1};
  storage::RecordBatchBuilder builder;
  for (const OffsetCommit& c : offsets) {
    const Bytes key = encode_key(group, c.topic, c.partition);
    const Bytes value = encode_value({c.offset, c.leader_epoch, c.metadata, now_ms});
    builder.add(ByteSpan(key), ByteSpan(value), now_ms);
  }
  Bytes batch = builder.build();
  std::lock_guard lock(mutex_);
  // Written before it is applied: what fetch() shows is always in the log.
  DEPOT_TRY(auto appended, log_->append(batch));
  for (const OffsetCommit& c : offsets)
    apply(group, c.topic, c.partition,
          CommittedOffset{c.offset, c.leader_epoch, c.metadata, now_ms});
  return appended.last_offset;
}

Result<int64_t> OffsetStore::store_group(std::string_view group, const GroupMetadata& metadata,
                                         int64_t now_ms) {
  storage::RecordBatchBuilder builder;
  const Bytes key = encode_group_key(group);
  const Bytes value = encode_group_value(metadata);
  builder.add(ByteSpan(key), ByteSpan(value), now_ms);
  Bytes batch = builder.build();
  std::lock_guard lock(mutex_);
  DEPOT_TRY(auto appended, log_->append(batch));
  apply_group(group, metadata);
  return appended.last_offset;
}

Result<int64_t> OffsetStore::delete_group(std::string_view group, int64_t now_ms) {
  return delete_matching(
      now_ms, [group](std::string_view g, std::string_view) { return g == group; }, group);
}

Result<int64_t> OffsetStore::delete_topic(std::string_view topic, int64_t now_ms) {
  return delete_matching(
      now_ms, [topic](std::string_view, std::string_view t) { return t == topic; }, std::nullopt);
}

Result<int64_t> OffsetStore::delete_matching(
    int64_t now_ms, const std::function<bool(std::string_view, std::string_view)>& doomed,
    std::optional<std::string_view> metadata_of) {
  std::lock_guard lock(mutex_);
  storage::RecordBatchBuilder builder;
  struct Key {
    std::string group;
    std::string topic;
    int32_t partition;
  };
  std::vector<Key> keys;
  for (const auto& [group, topics] : groups_) {
    for (const auto& [topic, partitions] : topics) {
      if (!doomed(group, topic)) continue;
      for (const auto& [partition, offset] : partitions) {
        const Bytes key = encode_key(group, topic, partition);
        builder.add(ByteSpan(key), std::nullopt, now_ms);
        keys.push_back({group, topic, partition});
      }
    }
  }
  const bool drop_metadata = metadata_of && group_metadata_.contains(*metadata_of);
  if (drop_metadata) {
    const Bytes key = encode_group_key(*metadata_of);
    builder.add(ByteSpan(key), std::nullopt, now_ms);
  }
  if (keys.empty() && !drop_metadata) return int64_t{-1};
  Bytes batch = builder.build();
  DEPOT_TRY(auto appended, log_->append(batch));
  for (const Key& k : keys)
    apply(k.group, k.topic, k.partition, std::nullopt);
  if (drop_metadata) apply_group(*metadata_of, std::nullopt);
  return appended.last_offset;
}

std::optional<CommittedOffset> OffsetStore::fetch(std::string_view group, std::string_view topic,
                                                  int32_t partition) const {
  std::lock_guard lock(mutex_);
  auto group_it = groups_.find(group);
  if (group_it == groups_.end()) return std::nullopt;
  auto topic_it = group_it->second.find(topic);
  if (topic_it == group_it->second.end()) return std::nullopt;
  auto it = topic_it->second.find(partition);
  if (it == topic_it->second.end()) return std::nullopt;
  return it->second;
}

TopicOffsets OffsetStore::all(std::string_view group) const {
  std::lock_guard lock(mutex_);
  auto group_it = groups_.find(group);
  return group_it == groups_.end() ? TopicOffsets{} : group_it->second;
}

std::vector<std::string> OffsetStore::groups() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(groups_.size());
  for (const auto& [group, topics] : groups_)
    out.push_back(group);
  return out;
}

std::map<std::string, GroupMetadata, std::less<>> OffsetStore::group_metadata() const {
  std::lock_guard lock(mutex_);
  return group_metadata_;
}

Result<bool> OffsetStore::maybe_compact() {
  size_t superseded = 0;
  {
    std::lock_guard lock(mutex_);
    superseded = superseded_records_;
    if (superseded < kMinRecordsToCompact || superseded < live_records_) return false;
  }
  if (log_->segment_count() < 2) return false;  // only closed segments are compacted
  DEPOT_TRY(log_->compact());
  // Commits made while compacting stay counted for the next time.
  std::lock_guard lock(mutex_);
  superseded_records_ -= std::min(superseded, superseded_records_);
  return true;
}

Result<void> OffsetStore::close() {
  return log_->close();
}

std::vector<PartitionLag> consumer_lag(const TopicStore& topics, const OffsetStore& offsets) {
  std::vector<PartitionLag> lags;
  for (const std::string& group : offsets.groups()) {
    for (const auto& [topic, partitions] : offsets.all(group)) {
      for (const auto& [partition, committed] : partitions) {
        PartitionLag& lag = lags.emplace_back();
        lag.group = group;
        lag.topic = topic;
        lag.partition = partition;
        lag.committed = committed.offset;
        if (auto log = topics.partition(topic, partition)) {
          lag.end = log->log_end_offset();
          lag.lag = std::max<int64_t>(0, lag.end - committed.offset);
        }
      }
    }
  }
  return lags;
}

}  // namespace depot::eventlog
