#include "eventlog/topics.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/numbers.h"
#include "storage/file.h"

namespace depot::eventlog {
namespace {

constexpr size_t kMaxNameLength = 249;

// "<topic>-<partition>" -> (topic, partition); the topic may itself contain '-'.
std::optional<std::pair<std::string, int32_t>> parse_partition_dir(std::string_view name) {
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  const auto index = parse_integer<int32_t>(name.substr(dash + 1));
  if (!index || *index < 0) return std::nullopt;
  return std::pair{std::string(name.substr(0, dash)), *index};
}

}  // namespace

std::optional<std::string> TopicStore::invalid_name(std::string_view name) {
  if (name.empty()) return std::string("the topic name is empty");
  if (name == "." || name == "..") return fmt::format("topic name '{}' is not allowed", name);
  if (name.size() > kMaxNameLength) {
    return fmt::format("topic name is {} characters, over the limit of {}", name.size(),
                       kMaxNameLength);
  }
  const bool legal = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
  if (!legal) {
    return fmt::format(
        "topic name '{}' has characters other than ASCII letters, digits, '.', "
        "'_' and '-'",
        name);
  }
  return std::nullopt;
}

namespace {

constexpr std::string_view kMetadataFile = "topic.properties";

// Kafka's other topic settings (TopicConfig.java), in order: accepted, kept and shown, not acted
// on by a single node without replication or tiered storage.
constexpr std::string_view kKeptOnly[] = {
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
};

std::string hex(const TopicId& id) {
  std::string out;
  for (uint8_t b : id)
    out += fmt::format("{:02x}", b);
  return out;
}

std::optional<TopicId> parse_hex_id(std::string_view text) {
  TopicId id{};
  if (text.size() != id.size() * 2) return std::nullopt;
  for (size_t i = 0; i < id.size(); ++i) {
    auto [end, error] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, id[i], 16);
    if (error != std::errc() || end != text.data() + 2 * i + 2) return std::nullopt;
  }
  return id;
}

// A random (version 4) UUID, as Kafka makes topic ids; never the all-zero "no id".
TopicId random_topic_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  TopicId id{};
  for (size_t i = 0; i < id.size(); i += 8) {
    const uint64_t r = random();
    std::memcpy(id.data() + i, &r, 8);
  }
  id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);
  id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);
  return id;
}

// A batch's last sequence number: sequences wrap from INT32_MAX to 0.
int32_t last_sequence_of(const storage::BatchHeader& header) {
  return static_cast<int32_t>(
      (static_cast<int64_t>(header.base_sequence) + header.last_offset_delta) % (1LL << 31));
}

// How far back from a partition's end recover_producers() looks: retries are of the last few
// batches a producer sent, so the tail is enough (Kafka keeps producer snapshots instead).
constexpr int64_t kProducerScanOffsets = 20000;

}  // namespace

std::optional<std::string> TopicConfig::set(std::string_view name, std::string_view value) {
  auto bad = [&] { return fmt::format("'{}' is not a valid value for {}", value, name); };
  if (name == "retention.ms" || name == "retention.bytes") {
    auto n = parse_integer<int64_t>(value);
    if (!n || *n < -1) return bad();
    (name == "retention.ms" ? retention_ms : retention_bytes) = *n;
  } else if (name == "segment.bytes") {
    auto n = parse_integer<int64_t>(value);
    if (!n || *n < 14) return bad();  // Kafka's minimum: room for one record
    segment_bytes = *n;
  } else if (name == "max.message.bytes") {
    auto n = parse_integer<int32_t>(value);
    // The storage engine refuses batches over 64 MiB whatever the topic allows.
    if (!n || *n < 0 || *n > (64 << 20)) return bad();
    max_message_bytes = *n;
  } else if (name == "cleanup.policy") {
    if (value != "delete" && value != "compact") return bad();
    compact = value == "compact";
  } else if (name == "message.timestamp.type") {
    if (value != "CreateTime" && value != "LogAppendTime") return bad();
    log_append_time = value == "LogAppendTime";
  } else if (std::binary_search(std::begin(kKeptOnly), std::end(kKeptOnly), name)) {
    kept[std::string(name)] = std::string(value);
  } else {
    return fmt::format("'{}' is not a Kafka topic setting", name);
  }
  auto at = std::lower_bound(overridden.begin(), overridden.end(), name);
  if (at == overridden.end() || *at != name) overridden.emplace(at, name);
  return std::nullopt;
}

std::optional<std::string> TopicConfig::reset(std::string_view name) {
  if (auto it = kept.find(name); it != kept.end()) {
    overridden.erase(std::remove(overridden.begin(), overridden.end(), name), overridden.end());
    kept.erase(it);
    return std::nullopt;
  }
  if (std::binary_search(std::begin(kKeptOnly), std::end(kKeptOnly), name)) return std::nullopt;
  const TopicConfig defaults;
  for (const auto& [key, value] : defaults.entries()) {
    if (key != name) continue;
    auto names = overridden;
    set(key, value);
    overridden = std::move(names);
    overridden.erase(std::remove(overridden.begin(), overridden.end(), key), overridden.end());
    return std::nullopt;
  }
  return fmt::format("'{}' is not a Kafka topic setting", name);
}

std::vector<std::pair<std::string, std::string>> TopicConfig::entries() const {
  std::vector<std::pair<std::string, std::string>> all{
      {"cleanup.policy", compact ? "compact" : "delete"},
      {"max.message.bytes", std::to_string(max_message_bytes)},
      {"message.timestamp.type", log_append_time ? "LogAppendTime" : "CreateTime"},
      {"retention.bytes", std::to_string(retention_bytes)},
      {"retention.ms", std::to_string(retention_ms)},
      {"segment.bytes", std::to_string(segment_bytes)},
  };
  all.insert(all.end(), kept.begin(), kept.end());
  std::sort(all.begin(), all.end());
  return all;
}

Result<std::unique_ptr<TopicStore>> TopicStore::open(TopicStoreOptions options) {
  std::unique_ptr<TopicStore> store(new TopicStore(std::move(options)));
  storage::FileSystem& fs = storage::posix_file_system();
  DEPOT_TRY(fs.create_directories(store->options_.dir));
  DEPOT_TRY(store->producer_ids_,
            ProducerIdAllocator::open(store->options_.dir / "producer-ids", fs));
  DEPOT_TRY(auto names, fs.list(store->options_.dir));
  std::map<std::string, std::vector<int32_t>> found;
  for (const auto& name : names) {
    auto parsed = parse_partition_dir(name);
    if (!parsed || invalid_name(parsed->first)) continue;
    found[parsed->first].push_back(parsed->second);
  }
  for (auto& [name, indexes] : found) {
    std::sort(indexes.begin(), indexes.end());
    Topic& topic = store->topics_[name];
    DEPOT_TRY(store->read_metadata(name, topic));
    // Partitions are 0..N-1; a gap means a damaged directory, and what follows it is left alone.
    for (int32_t expected = 0; expected < static_cast<int32_t>(indexes.size()); ++expected) {
      if (indexes[static_cast<size_t>(expected)] != expected) {
        spdlog::warn("eventlog: topic '{}' has no partition {}; partitions after it are ignored",
                     name, expected);
        break;
      }
      DEPOT_TRY(auto partition, store->open_partition(name, expected, topic.config));
      topic.partitions.push_back(std::move(partition));
    }
    if (topic.partitions.empty()) store->topics_.erase(name);
  }
  return store;
}

TopicStore::~TopicStore() {
  (void)close();
}

Result<std::shared_ptr<TopicStore::Partition>> TopicStore::open_partition(
    const std::string& name, int32_t index, const TopicConfig& config) {
  storage::LogConfig log_config = options_.log;
  log_config.retention_ms = config.retention_ms;
  log_config.retention_bytes = config.retention_bytes;
  log_config.segment_bytes = static_cast<uint64_t>(config.segment_bytes);
  auto partition = std::make_shared<Partition>();
  DEPOT_TRY(partition->log, storage::Log::open({options_.dir / fmt::format("{}-{}", name, index),
                                                log_config,
                                                options_.sync,
                                                nullptr,
                                                {}}));
  DEPOT_TRY(recover_producers(*partition));
  return partition;
}

Result<void> TopicStore::recover_producers(Partition& partition) {
  storage::Log& log = *partition.log;
  const int64_t end = log.log_end_offset();
  for (int64_t offset = std::max(log.log_start_offset(), end - kProducerScanOffsets);
       offset < end;) {
    DEPOT_TRY(auto chunk, log.read(offset, 1 << 20));
    if (chunk.data.empty()) break;
    ByteSpan data = chunk.data;
    while (data.size() >= storage::kBatchHeaderSize) {
      auto header = storage::parse_batch_header(data);
      if (!header || header.value().size_bytes() > data.size()) break;
      const storage::BatchHeader& h = header.value();
      if (h.producer_id >= 0 && !h.is_control()) {
        partition.producers.record(
            h.producer_id, h.producer_epoch,
            {h.base_sequence, last_sequence_of(h), h.base_offset, h.last_offset()},
            h.max_timestamp);
      }
      data = data.subspan(h.size_bytes());
    }
    if (chunk.next_offset <= offset) break;
    offset = chunk.next_offset;
  }
  return success();
}

void TopicStore::discard_partitions(const std::string& name,
                                    const std::vector<std::shared_ptr<Partition>>& opened,
                                    int32_t first, int32_t failed) {
  for (const auto& partition : opened)
    (void)partition->log->remove();
  storage::FileSystem& fs = storage::posix_file_system();
  for (int32_t i = first; i <= failed; ++i)
    (void)fs.remove_all(options_.dir / fmt::format("{}-{}", name, i));
  if (auto synced = fs.sync_directory(options_.dir); !synced) {
    spdlog::warn("eventlog: cannot sync {}: {}", options_.dir.string(), synced.error().message());
  }
}

Result<void> TopicStore::write_metadata(const std::string& name, const Topic& topic) {
  std::string text = fmt::format("id={}\n", hex(topic.id));
  for (const auto& [key, value] : topic.config.entries()) {
    const auto& set = topic.config.overridden;
    if (std::find(set.begin(), set.end(), key) != set.end()) {
      text += fmt::format("{}={}\n", key, value);
    }
  }
  const auto dir = options_.dir / fmt::format("{}-0", name);
  storage::FileSystem& fs = storage::posix_file_system();
  DEPOT_TRY(fs.create_directories(dir));
  return storage::replace_file(fs, dir / kMetadataFile, as_bytes(text));
}

Result<void> TopicStore::read_metadata(const std::string& name, Topic& topic) {
  storage::FileSystem& fs = storage::posix_file_system();
  const auto path = options_.dir / fmt::format("{}-0", name) / kMetadataFile;
  DEPOT_TRY(bool exists, fs.exists(path));
  if (!exists) {
    // A topic from before topic ids were kept: give it one now.
    topic.id = random_topic_id();
    return write_metadata(name, topic);
  }
  DEPOT_TRY(Bytes content, storage::read_whole_file(fs, path));
  std::string_view text(reinterpret_cast<const char*>(content.data()), content.size());
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (key == "id") {
      if (auto id = parse_hex_id(value)) topic.id = *id;
    } else if (auto error = topic.config.set(key, value)) {
      spdlog::warn("eventlog: topic '{}': ignoring {}", name, *error);
    }
  }
  if (topic.id == TopicId{}) {
    topic.id = random_topic_id();
    return write_metadata(name, topic);
  }
  return success();
}

Result<CreateResult> TopicStore::create(const std::string& name, int32_t partitions,
                                        const TopicConfig& config) {
  if (invalid_name(name)) return CreateResult::invalid_name;
  if (partitions <= 0) partitions = options_.default_partitions;
  if (partitions > kMaxPartitions) return CreateResult::invalid_partitions;
  std::lock_guard lock(mutex_);
  if (topics_.contains(name)) return CreateResult::already_exists;
  Topic topic;
  topic.id = random_topic_id();
  topic.config = config;
  // The metadata first: partitions found without it on reopening get a new id, never none.
  if (auto written = write_metadata(name, topic); !written) {
    discard_partitions(name, topic.partitions, 0, 0);
    return written.error();
  }
  for (int32_t i = 0; i < partitions; ++i) {
    auto partition = open_partition(name, i, topic.config);
    if (!partition) {
      discard_partitions(name, topic.partitions, 0, i);
      return partition.error();
    }
    topic.partitions.push_back(std::move(partition.value()));
  }
  topics_.emplace(name, std::move(topic));
  spdlog::info("eventlog: created topic '{}' with {} partition(s)", name, partitions);
  return CreateResult::created;
}

Result<ChangeResult> TopicStore::remove(const std::string& name) {
  Topic topic;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return ChangeResult::unknown_topic;
    topic = std::move(it->second);
    topics_.erase(it);
  }
  // Partition 0 last: it holds the topic's id, so a crash midway leaves a topic found again.
  for (auto it = topic.partitions.rbegin(); it != topic.partitions.rend(); ++it)
    DEPOT_TRY((*it)->log->remove());
  DEPOT_TRY(storage::posix_file_system().sync_directory(options_.dir));
  spdlog::info("eventlog: deleted topic '{}'", name);
  return ChangeResult::done;
}

Result<ChangeResult> TopicStore::add_partitions(const std::string& name, int32_t count) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return ChangeResult::unknown_topic;
  Topic& topic = it->second;
  const auto current = static_cast<int32_t>(topic.partitions.size());
  if (count <= current || count > kMaxPartitions) return ChangeResult::invalid_partitions;
  std::vector<std::shared_ptr<Partition>> added;
  for (int32_t i = current; i < count; ++i) {
    auto partition = open_partition(name, i, topic.config);
    if (!partition) {
      discard_partitions(name, added, current, i);
      return partition.error();
    }
    added.push_back(std::move(partition.value()));
  }
  topic.partitions.insert(topic.partitions.end(), added.begin(), added.end());
  spdlog::info("eventlog: topic '{}' grew from {} to {} partitions", name, current, count);
  return ChangeResult::done;
}

Result<ChangeResult> TopicStore::configure(const std::string& name, const TopicConfig& config) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return ChangeResult::unknown_topic;
  Topic& topic = it->second;
  Topic changed{topic.id, config, {}};
  DEPOT_TRY(write_metadata(name, changed));
  topic.config = config;
  for (const auto& partition : topic.partitions) {
    partition->log->set_limits(config.retention_ms, config.retention_bytes,
                               static_cast<uint64_t>(config.segment_bytes));
  }
  return ChangeResult::done;
}

std::optional<TopicInfo> TopicStore::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return std::nullopt;
  const Topic& t = it->second;
  return TopicInfo{it->first, static_cast<int32_t>(t.partitions.size()), t.id, t.config};
}

std::optional<TopicInfo> TopicStore::find(const TopicId& id) const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, t] : topics_) {
    if (t.id == id)
      return TopicInfo{name, static_cast<int32_t>(t.partitions.size()), t.id, t.config};
  }
  return std::nullopt;
}

std::vector<TopicInfo> TopicStore::list() const {
  std::lock_guard lock(mutex_);
  std::vector<TopicInfo> out;
  out.reserve(topics_.size());
  for (const auto& [name, t] : topics_)
    out.push_back({name, static_cast<int32_t>(t.partitions.size()), t.id, t.config});
  return out;
}

std::shared_ptr<TopicStore::Partition> TopicStore::find_partition(const std::string& name,
                                                                  int32_t index,
                                                                  TopicConfig* config) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end() || index < 0 ||
      index >= static_cast<int32_t>(it->second.partitions.size())) {
    return nullptr;
  }
  if (config != nullptr) *config = it->second.config;
  return it->second.partitions[static_cast<size_t>(index)];
}

std::shared_ptr<storage::Log> TopicStore::partition(const std::string& name, int32_t index) const {
  auto found = find_partition(name, index, nullptr);
  return found ? found->log : nullptr;
}

AppendOutcome TopicStore::append(const std::string& topic, int32_t partition,
                                 std::span<std::byte> record_set, int64_t now_ms) {
  TopicConfig config;
  auto found = find_partition(topic, partition, &config);
  if (!found) return {AppendError::unknown_topic_or_partition};
  if (record_set.empty()) return {AppendError::invalid_record};  // Kafka refuses no batch
  auto header = storage::parse_batch_header(record_set);
  if (!header || header.value().size_bytes() > record_set.size()) {
    return {AppendError::corrupt_message};  // cut short, or not a RecordBatch v2
  }
  // As Kafka for Produce v3+: exactly one batch, so that a refusal never leaves part of a
  // record set written (a client's retry would duplicate it).
  if (header.value().size_bytes() != record_set.size()) return {AppendError::invalid_record};
  return append_batch(*found, record_set, config, now_ms);
}

AppendOutcome TopicStore::append_batch(Partition& partition, std::span<std::byte> batch,
                                       const TopicConfig& config, int64_t now_ms) {
  AppendOutcome outcome;
  auto validated = storage::validate_batch(batch);
  if (!validated) {
    outcome.error = AppendError::corrupt_message;
    return outcome;
  }
  storage::BatchHeader header = validated.value();
  if (batch.size() > static_cast<size_t>(config.max_message_bytes)) {
    outcome.error = AppendError::message_too_large;
    return outcome;
  }
  // Control batches are the transaction coordinator's; a batch's count and offset span agree.
  if (header.is_control() || header.record_count <= 0 ||
      header.last_offset_delta != header.record_count - 1) {
    outcome.error = AppendError::invalid_record;
    return outcome;
  }
  const bool idempotent = header.producer_id >= 0;
  const int32_t last_sequence = last_sequence_of(header);
  std::lock_guard lock(partition.append_mutex);
  if (idempotent) {
    SequenceCheck check = partition.producers.check(header.producer_id, header.producer_epoch,
                                                    header.base_sequence, last_sequence);
    switch (check.verdict) {
      case SequenceVerdict::duplicate:
        outcome.base_offset = check.original.base_offset;
        outcome.last_offset = check.original.last_offset;
        outcome.log_start_offset = partition.log->log_start_offset();
        return outcome;
      case SequenceVerdict::out_of_order:
        outcome.error = AppendError::out_of_order_sequence;
        return outcome;
      case SequenceVerdict::fenced:
        outcome.error = AppendError::invalid_producer_epoch;
        return outcome;
      case SequenceVerdict::append:
        break;
    }
  }
  if (config.log_append_time) {
    storage::set_log_append_time(batch, now_ms);
    outcome.log_append_time = now_ms;
    header = storage::parse_batch_header(batch).value();  // new timestamps, same shape
  }
  auto appended = partition.log->append_checked(batch, header);
  if (!appended) {
    spdlog::error("eventlog: append to {} failed: {}", partition.log->dir().string(),
                  appended.error().message());
    outcome.error = AppendError::storage_error;
    return outcome;
  }
  outcome.base_offset = appended.value().base_offset;
  outcome.last_offset = appended.value().last_offset;
  outcome.log_start_offset = partition.log->log_start_offset();
  if (idempotent) {
    partition.producers.record(header.producer_id, header.producer_epoch,
                               {header.base_sequence, last_sequence, appended.value().base_offset,
                                appended.value().last_offset},
                               now_ms);
  }
  return outcome;
}

size_t TopicStore::maintain(int64_t now_ms) {
  std::vector<std::pair<std::shared_ptr<Partition>, bool>> partitions;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, topic] : topics_) {
      for (const auto& partition : topic.partitions)
        partitions.emplace_back(partition, topic.config.compact);
    }
  }
  size_t changed = 0;
  for (const auto& [partition, compact] : partitions) {
    if (size_t forgotten = partition->producers.expire(now_ms - ProducerStates::kExpirationMs)) {
      spdlog::debug("eventlog: {}: forgot {} idle producers", partition->log->dir().string(),
                    forgotten);
    }
    if (compact) {
      auto stats = partition->log->compact();
      if (stats) {
        changed += stats.value().segments_rewritten;
      } else {
        spdlog::error("eventlog: compacting {} failed: {}", partition->log->dir().string(),
                      stats.error().message());
      }
    } else {
      auto deleted = partition->log->enforce_retention();
      if (deleted) {
        changed += deleted.value();
      } else {
        spdlog::error("eventlog: retention on {} failed: {}", partition->log->dir().string(),
                      deleted.error().message());
      }
    }
  }
  return changed;
}

Result<void> TopicStore::close() {
  std::lock_guard lock(mutex_);
  for (auto& [name, topic] : topics_) {
    for (auto& partition : topic.partitions)
      DEPOT_TRY(partition->log->close());
  }
  return success();
}

}  // namespace depot::eventlog
