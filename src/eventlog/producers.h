#pragma once
// Idempotent producers (KIP-98): producer ids handed out once and never again, and per partition
// the sequence numbers each producer has written, so that a retried batch is answered with its
// first append's offsets instead of being written twice, and a gap is refused.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "common/result.h"
#include "storage/file.h"

namespace depot::eventlog {

// Hands out producer ids from blocks reserved on disk before use: after a restart the next id
// starts past every id that may have been given out, without a write per id.
class ProducerIdAllocator {
 public:
  static constexpr int64_t kBlockSize = 1000;

  static Result<std::unique_ptr<ProducerIdAllocator>> open(const std::filesystem::path& file,
                                                           storage::FileSystem& fs);
  Result<int64_t> next();

 private:
  ProducerIdAllocator(std::filesystem::path file, storage::FileSystem& fs, int64_t reserved_to)
      : file_(std::move(file)), fs_(&fs), next_(reserved_to), reserved_to_(reserved_to) {}

  std::filesystem::path file_;
  storage::FileSystem* fs_;
  std::mutex mutex_;
  int64_t next_;
  int64_t reserved_to_;  // ids below this may have been handed out
};

// One appended batch of an idempotent producer: its sequence range and where it went.
struct ProducerBatch {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
};

enum class SequenceVerdict {
  append,        // in order: write it, then record()
  duplicate,     // a retry of a recent batch: answer with its offsets, write nothing
  out_of_order,  // OUT_OF_ORDER_SEQUENCE_NUMBER
  fenced,        // an older epoch than the producer's current one: INVALID_PRODUCER_EPOCH
};

struct SequenceCheck {
  SequenceVerdict verdict = SequenceVerdict::append;
  ProducerBatch original;  // for duplicate
};

// The sequence state of one partition. Thread-safe.
class ProducerStates {
 public:
  // Kafka keeps the last five batches per producer: a client has at most five in flight.
  static constexpr size_t kRememberedBatches = 5;

  SequenceCheck check(int64_t producer_id, int16_t epoch, int32_t first_sequence,
                      int32_t last_sequence) const;
  // Notes a written batch; `timestamp_ms` is when (the broker's clock, or the batch's time when
  // the state is rebuilt from the log).
  void record(int64_t producer_id, int16_t epoch, const ProducerBatch& batch, int64_t timestamp_ms);

  // Kafka forgets a producer that has written nothing to a partition for this long
  // (producer.id.expiration.ms): its next batch may start anywhere, as a new producer's.
  static constexpr int64_t kExpirationMs = 24LL * 3600 * 1000;
  // Forgets the producers whose last batch is older than `before_ms`; returns how many.
  size_t expire(int64_t before_ms);

 private:
  struct Producer {
    int16_t epoch = -1;
    std::deque<ProducerBatch> batches;  // oldest first
    int64_t last_timestamp_ms = 0;
  };
  mutable std::mutex mutex_;
  std::unordered_map<int64_t, Producer> producers_;
};

}  // namespace depot::eventlog
