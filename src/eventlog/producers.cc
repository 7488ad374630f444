#include "eventlog/producers.h"

#include <algorithm>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "common/numbers.h"

namespace depot::eventlog {
namespace {

// Sequence numbers wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
int32_t next_sequence(int32_t sequence) {
  return sequence == INT32_MAX ? 0 : sequence + 1;
}

}  // namespace

Result<std::unique_ptr<ProducerIdAllocator>> ProducerIdAllocator::open(
    const std::filesystem::path& file, storage::FileSystem& fs) {
  DEPOT_TRY(bool exists, fs.exists(file));
  int64_t reserved_to = 0;
  if (exists) {
    DEPOT_TRY(Bytes content, storage::read_whole_file(fs, file));
    std::string_view text = as_chars(content);
    if (text.ends_with('\n')) text.remove_suffix(1);
    const auto stored = parse_integer<int64_t>(text);
    if (!stored || *stored < 0) return std::make_error_code(std::errc::illegal_byte_sequence);
    reserved_to = *stored;
  }
  return std::unique_ptr<ProducerIdAllocator>(new ProducerIdAllocator(file, fs, reserved_to));
}

Result<int64_t> ProducerIdAllocator::next() {
  std::lock_guard lock(mutex_);
  if (next_ >= reserved_to_) {
    const std::string text = fmt::format("{}\n", reserved_to_ + kBlockSize);
    DEPOT_TRY(storage::replace_file(*fs_, file_, as_bytes(text)));
    reserved_to_ += kBlockSize;
  }
  return next_++;
}

SequenceCheck ProducerStates::check(int64_t producer_id, int16_t epoch, int32_t first_sequence,
                                    int32_t last_sequence) const {
  std::lock_guard lock(mutex_);
  auto it = producers_.find(producer_id);
  // A producer this partition has not seen (new, or its state is gone after a restart) may
  // start anywhere, as in Kafka.
  if (it == producers_.end() || it->second.batches.empty()) return {};
  const Producer& producer = it->second;
  if (epoch < producer.epoch) return {SequenceVerdict::fenced, {}};
  if (epoch > producer.epoch) {
    // A bumped epoch restarts the sequence at 0.
    return {first_sequence == 0 ? SequenceVerdict::append : SequenceVerdict::out_of_order, {}};
  }
  for (const ProducerBatch& batch : producer.batches) {
    if (batch.first_sequence == first_sequence && batch.last_sequence == last_sequence) {
      return {SequenceVerdict::duplicate, batch};
    }
  }
  if (first_sequence != next_sequence(producer.batches.back().last_sequence)) {
    return {SequenceVerdict::out_of_order, {}};
  }
  return {};
}

void ProducerStates::record(int64_t producer_id, int16_t epoch, const ProducerBatch& batch,
                            int64_t timestamp_ms) {
  std::lock_guard lock(mutex_);
  Producer& producer = producers_[producer_id];
  if (epoch != producer.epoch) {
    producer.epoch = epoch;
    producer.batches.clear();
  }
  producer.batches.push_back(batch);
  if (producer.batches.size() > kRememberedBatches) producer.batches.pop_front();
  producer.last_timestamp_ms = std::max(producer.last_timestamp_ms, timestamp_ms);
}

size_t ProducerStates::expire(int64_t before_ms) {
  std::lock_guard lock(mutex_);
  return std::erase_if(
      producers_, [before_ms](const auto& p) { return p.second.last_timestamp_ms < before_ms; });
}

}  // namespace depot::eventlog
