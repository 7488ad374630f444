#pragma once
// Committed consumer-group offsets and group metadata (Kafka's __consumer_offsets): one keyed
// record per group, topic and partition, and one per group for its metadata, in a compacted
// storage-engine log, the newest record of a key being the current value, a tombstone its
// deletion. Opening the store reads the log back into memory; compaction keeps the log to about
// the size of what is held. No wire formats.
//
// Thread-safe (one mutex over the in-memory view; the log is thread-safe itself).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "eventlog/groups.h"
#include "storage/log.h"

namespace depot::eventlog {

struct CommittedOffset {
  int64_t offset = -1;        // the next offset the group will consume
  int32_t leader_epoch = -1;  // -1: none given
  std::string metadata;       // the client's, kept as given
  int64_t commit_timestamp_ms = -1;

  bool operator==(const CommittedOffset&) const = default;
};

struct OffsetCommit {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string metadata;
};

using PartitionOffsets = std::map<int32_t, CommittedOffset>;
using TopicOffsets = std::map<std::string, PartitionOffsets, std::less<>>;

class OffsetStore {
 public:
  // Kafka's offsets topic rolls at 100 MiB; a smaller segment lets compaction start sooner.
  static storage::LogConfig default_log_config();

  static Result<std::unique_ptr<OffsetStore>> open(
      const std::filesystem::path& dir, storage::SyncService* sync,
      storage::LogConfig config = default_log_config());
  ~OffsetStore();
  OffsetStore(const OffsetStore&) = delete;
  OffsetStore& operator=(const OffsetStore&) = delete;

  // Writes the offsets (one batch) and returns the log offset to pass to when_durable() before
  // the client is told: -1 when there was nothing to write. Visible to fetch() at once.
  Result<int64_t> commit(std::string_view group, std::span<const OffsetCommit> offsets,
                         int64_t now_ms);
  // Writes the group's metadata, replacing what was written before; the same return as commit().
  Result<int64_t> store_group(std::string_view group, const GroupMetadata& metadata,
                              int64_t now_ms);
  // Writes a tombstone for every offset the group has committed, and for its metadata; the same
  // return as commit().
  Result<int64_t> delete_group(std::string_view group, int64_t now_ms);
  // The same for every group's offsets in a deleted topic, so that a topic made again under the
  // same name is not read from the old topic's positions (Kafka drops them too).
  Result<int64_t> delete_topic(std::string_view topic, int64_t now_ms);
  // Calls `done` once `offset` is durable under the fsync policy (on a sync thread, or at once).
  void when_durable(int64_t offset, storage::Log::DurableCallback done) {
    log_->when_durable(offset, std::move(done));
  }

  std::optional<CommittedOffset> fetch(std::string_view group, std::string_view topic,
                                       int32_t partition) const;
  TopicOffsets all(std::string_view group) const;  // empty for a group with none
  std::vector<std::string> groups() const;         // every group with offsets, by id
  // Every group's metadata as last stored, by id.
  std::map<std::string, GroupMetadata, std::less<>> group_metadata() const;

  // Compacts the log once the records superseded since the last compaction are at least as
  // many as the offsets held (Kafka's min.cleanable.dirty.ratio of 0.5), and at least
  // kMinRecordsToCompact. Only closed segments are compacted. Blocking disk work: whether it
  // compacted, or the error.
  Result<bool> maybe_compact();
  static constexpr size_t kMinRecordsToCompact = 1000;

  Result<void> close();

 private:
  explicit OffsetStore(std::shared_ptr<storage::Log> log) : log_(std::move(log)) {}
  Result<void> load();
  // Tombstones the offsets `doomed` picks by (group, topic), and the metadata of `metadata_of`.
  Result<int64_t> delete_matching(
      int64_t now_ms, const std::function<bool(std::string_view, std::string_view)>& doomed,
      std::optional<std::string_view> metadata_of);
  // The in-memory side of a record read back or just written (nullopt: a tombstone).
  void apply(std::string_view group, const std::string& topic, int32_t partition,
             std::optional<CommittedOffset> value);
  void apply_group(std::string_view group, std::optional<GroupMetadata> value);

  std::shared_ptr<storage::Log> log_;
  mutable std::mutex mutex_;
  std::map<std::string, TopicOffsets, std::less<>> groups_;
  std::map<std::string, GroupMetadata, std::less<>> group_metadata_;
  size_t live_records_ = 0;        // offsets and group metadata held (one record each in the log)
  size_t superseded_records_ = 0;  // records made garbage since the last compaction
};

class TopicStore;

// How far a group is behind: per partition it has committed an offset for, that offset and the
// partition's end (the high watermark). The lag is their difference; a partition that no longer
// exists has end and lag -1.
struct PartitionLag {
  std::string group;
  std::string topic;
  int32_t partition = 0;
  int64_t committed = -1;
  int64_t end = -1;
  int64_t lag = -1;
};

// Every group's lag, by group, topic and partition.
std::vector<PartitionLag> consumer_lag(const TopicStore& topics, const OffsetStore& offsets);

}  // namespace depot::eventlog
