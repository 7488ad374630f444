#pragma once
// The event log's topics: each a fixed number of partitions, each partition one storage-engine
// log in <dir>/<topic>-<partition> (Kafka's layout). Topics are created explicitly or on first
// use; the directory is the registry, so opening the store finds every topic again. No I/O
// beyond the storage engine's, no wire formats.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "eventlog/producers.h"
#include "storage/log.h"

namespace depot::eventlog {

struct TopicStoreOptions {
  std::filesystem::path dir;
  storage::SyncService* sync = nullptr;
  int32_t default_partitions = 1;  // Kafka's num.partitions
  bool auto_create = true;         // Kafka's auto.create.topics.enable
  storage::LogConfig log;          // each partition's log settings
};

// A topic's id (Kafka's topic UUID): made at creation, kept in the topic's metadata file.
using TopicId = std::array<uint8_t, 16>;

// The per-topic settings Kafka clients set and read (CreateTopics configs, AlterConfigs).
struct TopicConfig {
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // retention.ms; -1 keeps forever
  int64_t retention_bytes = -1;                   // retention.bytes, per partition
  bool compact = false;                           // cleanup.policy=compact (else delete)
  int64_t segment_bytes = 1LL << 30;              // segment.bytes
  int32_t max_message_bytes = 1048588;            // max.message.bytes: largest batch accepted
  bool log_append_time = false;                   // message.timestamp.type=LogAppendTime

  // Sets one setting from its Kafka name and text value; the reason when the name is not one
  // depot keeps or the value is not valid for it.
  std::optional<std::string> set(std::string_view name, std::string_view value);
  // Puts one setting back to its default; the reason when depot does not keep it.
  std::optional<std::string> reset(std::string_view name);
  // Every setting as (Kafka name, value text), in name order.
  std::vector<std::pair<std::string, std::string>> entries() const;
  // The names set explicitly for this topic (the rest are defaults), in name order.
  std::vector<std::string> overridden;
  // Kafka topic settings depot accepts and shows but does not act on (one broker, no
  // replication: min.insync.replicas, compression.type, ...), by name. Tools such as Kafka
  // Streams and Connect set them when they create topics.
  std::map<std::string, std::string, std::less<>> kept;
};

struct TopicInfo {
  std::string name;
  int32_t partitions = 0;
  TopicId id{};
  TopicConfig config;
};

enum class CreateResult { created, already_exists, invalid_name, invalid_partitions };
enum class ChangeResult { done, unknown_topic, invalid_partitions };

// Why a produced record set was refused, in Kafka's terms.
enum class AppendError {
  none,
  unknown_topic_or_partition,
  corrupt_message,        // bad CRC, a cut batch, magic other than 2
  invalid_record,         // a control batch from a client, counts that do not add up
  message_too_large,      // a batch over max.message.bytes
  out_of_order_sequence,  // an idempotent producer skipped a sequence number
  invalid_producer_epoch,
  storage_error,
};

struct AppendOutcome {
  AppendError error = AppendError::none;
  int64_t base_offset = -1;      // of the first batch
  int64_t last_offset = -1;      // wait for this one's durability
  int64_t log_append_time = -1;  // -1 for CreateTime topics
  int64_t log_start_offset = -1;
};

class TopicStore {
 public:
  static constexpr int32_t kMaxPartitions = 10000;

  // Opens every topic found in options.dir.
  static Result<std::unique_ptr<TopicStore>> open(TopicStoreOptions options);
  ~TopicStore();
  TopicStore(const TopicStore&) = delete;
  TopicStore& operator=(const TopicStore&) = delete;

  // Kafka's rules: 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..". The reason, or
  // nullopt when the name is legal.
  static std::optional<std::string> invalid_name(std::string_view name);

  // `partitions` <= 0 takes the default.
  Result<CreateResult> create(const std::string& name, int32_t partitions = 0,
                              const TopicConfig& config = {});
  // Deletes the topic and its partitions' logs.
  Result<ChangeResult> remove(const std::string& name);
  // Grows the topic to `count` partitions (Kafka never shrinks one: fewer is invalid_partitions).
  Result<ChangeResult> add_partitions(const std::string& name, int32_t count);
  // Replaces the topic's settings, kept with it and applied to its partitions at once.
  Result<ChangeResult> configure(const std::string& name, const TopicConfig& config);
  std::optional<TopicInfo> find(const std::string& name) const;
  std::optional<TopicInfo> find(const TopicId& id) const;
  std::vector<TopicInfo> list() const;  // by name
  // nullptr when there is no such topic or partition.
  std::shared_ptr<storage::Log> partition(const std::string& name, int32_t index) const;

  // Appends a producer's record set (one RecordBatch v2, as Kafka requires of Produce v3+) to one
  // partition, as a Kafka broker does: the batch is checked (size, CRC, shape), an idempotent
  // producer's sequence is checked and a retry is answered with its first offsets, offsets are
  // assigned in place and LogAppendTime topics get the broker's time. A refused record set
  // leaves nothing written.
  AppendOutcome append(const std::string& topic, int32_t partition, std::span<std::byte> record_set,
                       int64_t now_ms);
  // Retention for delete topics, compaction for compacted ones, over every partition: blocking
  // disk work for a maintenance thread. Returns how many segments were deleted or rewritten.
  // Producers idle for ProducerStates::kExpirationMs by `now_ms` are forgotten.
  size_t maintain(int64_t now_ms);

  // A new producer id for InitProducerId.
  Result<int64_t> new_producer_id() { return producer_ids_->next(); }

  bool auto_create() const { return options_.auto_create; }
  int32_t default_partitions() const { return options_.default_partitions; }
  Result<void> close();

 private:
  struct Partition {
    std::shared_ptr<storage::Log> log;
    std::mutex append_mutex;  // a sequence check and the append it allows are one step
    ProducerStates producers;
  };
  struct Topic {
    TopicId id{};
    TopicConfig config;
    std::vector<std::shared_ptr<Partition>> partitions;
  };

  explicit TopicStore(TopicStoreOptions options) : options_(std::move(options)) {}
  Result<std::shared_ptr<Partition>> open_partition(const std::string& name, int32_t index,
                                                    const TopicConfig& config);
  // Rebuilds idempotent producers' recent batches from the partition's tail, so that a retry of
  // a batch written just before a restart is answered, not written twice.
  static Result<void> recover_producers(Partition& partition);
  // Undoes a create or a grow that failed at partition `failed`: removes the partitions opened
  // and the directories of partitions `first` to `failed`, so that the next start does not find
  // a topic with fewer partitions than it was made with.
  void discard_partitions(const std::string& name,
                          const std::vector<std::shared_ptr<Partition>>& opened, int32_t first,
                          int32_t failed);
  Result<void> write_metadata(const std::string& name, const Topic& topic);
  Result<void> read_metadata(const std::string& name, Topic& topic);
  std::shared_ptr<Partition> find_partition(const std::string& name, int32_t index,
                                            TopicConfig* config) const;
  AppendOutcome append_batch(Partition& partition, std::span<std::byte> batch,
                             const TopicConfig& config, int64_t now_ms);

  TopicStoreOptions options_;
  std::unique_ptr<ProducerIdAllocator> producer_ids_;
  mutable std::mutex mutex_;
  std::map<std::string, Topic, std::less<>> topics_;
};

}  // namespace depot::eventlog
