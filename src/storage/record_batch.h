#pragma once
// Kafka RecordBatch v2: the unit depot writes to disk for every face. Layout (big-endian):
//   baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (=2) | crc u32 |
//   attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//   producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
// The CRC32C covers everything from attributes to the end. Each record is
//   length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//   keyLength varint (-1 = null) | key | valueLength varint | value |
//   headerCount varint | (keyLength varint | key | valueLength varint | value)...
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace depot::storage {

constexpr size_t kBatchLogOverhead = 12;  // baseOffset + batchLength precede the counted bytes
constexpr size_t kBatchHeaderSize = 61;
constexpr size_t kBatchCrcOffset = 17;
constexpr size_t kBatchAttributesOffset = 21;
constexpr int8_t kMagicV2 = 2;
// Upper bound on one batch; the log's own limit (max_batch_bytes) is usually smaller.
constexpr int32_t kMaxBatchLength = 256 * 1024 * 1024;

enum class Compression : uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };
enum class TimestampType : uint8_t { create_time = 0, log_append_time = 1 };

namespace attr {
constexpr int16_t kCompressionMask = 0x07;
constexpr int16_t kTimestampType = 0x08;
constexpr int16_t kTransactional = 0x10;
constexpr int16_t kControl = 0x20;
constexpr int16_t kDeleteHorizon = 0x40;
}  // namespace attr

// Two's-complement addition: fields of untrusted batches may be anything, and signed overflow
// must not be undefined behaviour on the way to rejecting them.
constexpr int64_t wrapping_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
constexpr int64_t wrapping_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

struct BatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t partition_leader_epoch = -1;
  int8_t magic = kMagicV2;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t record_count = 0;

  int64_t last_offset() const { return wrapping_add(base_offset, last_offset_delta); }
  size_t size_bytes() const { return kBatchLogOverhead + static_cast<size_t>(batch_length); }
  Compression compression() const {
    return static_cast<Compression>(attributes & attr::kCompressionMask);
  }
  TimestampType timestamp_type() const {
    return (attributes & attr::kTimestampType) ? TimestampType::log_append_time
                                               : TimestampType::create_time;
  }
  bool is_transactional() const { return attributes & attr::kTransactional; }
  bool is_control() const { return attributes & attr::kControl; }
};

// Parses the fixed header at the front of `data`. Checks the magic byte and that batchLength is
// plausible; does not need the whole batch and does not check the CRC.
Result<BatchHeader> parse_batch_header(ByteSpan data);

// Checks that `data` starts with one whole, intact batch (header, length, CRC) and returns its
// header. `data` may extend past the batch.
Result<BatchHeader> validate_batch(ByteSpan data);

struct HeaderView {
  std::string_view key;
  std::optional<ByteSpan> value;
};

// A record decoded in place: key, value and headers point into the batch's bytes.
struct RecordView {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<ByteSpan> key;
  std::optional<ByteSpan> value;
  std::vector<HeaderView> headers;
};

// Decodes every record of an uncompressed, validated batch. Never reads outside `batch`; a record
// that does not parse, or records that disagree with the header's count and offset span, are
// errors.
Result<std::vector<RecordView>> decode_records(ByteSpan batch);

// Rewrites the base offset in place (it is outside the CRC, so no checksum changes).
void set_base_offset(std::span<std::byte> batch, int64_t base_offset);

// Marks the batch as LogAppendTime with the given time and recomputes its CRC, as Kafka does.
void set_log_append_time(std::span<std::byte> batch, int64_t timestamp_ms);

struct HeaderInput {
  std::string_view key;
  std::optional<ByteSpan> value;
};

struct BatchOptions {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t partition_leader_epoch = -1;
  int16_t attributes = 0;  // compression bits must stay 0: the builder writes plain records
};

// Builds one uncompressed batch. Records get consecutive offset deltas unless one is given
// (compaction keeps the original offsets of survivors, leaving gaps).
class RecordBatchBuilder {
 public:
  explicit RecordBatchBuilder(int64_t base_offset = 0, BatchOptions options = {});

  void add(std::optional<ByteSpan> key, std::optional<ByteSpan> value, int64_t timestamp_ms,
           std::span<const HeaderInput> headers = {}, std::optional<int32_t> offset_delta = {});
  // Adds a record without headers whose value, `value_size` bytes, `write_value(ByteWriter&)`
  // writes straight into the batch: for a value assembled from parts, one copy of each part
  // instead of three (into a value of its own, the record, the batch).
  template <class WriteValue>
  void add_in_place(std::optional<ByteSpan> key, size_t value_size, int64_t timestamp_ms,
                    WriteValue&& write_value) {
    begin_record(key, value_size, timestamp_ms);
    ByteWriter out(buffer_);
    out.write_varint(static_cast<int32_t>(value_size));
    const size_t value_at = buffer_.size();
    write_value(out);
    end_record(value_at + value_size);
  }

  size_t record_count() const { return record_count_; }
  bool empty() const { return record_count_ == 0; }
  size_t size_bytes() const { return std::max(buffer_.size(), kBatchHeaderSize); }
  // Sets lastOffsetDelta beyond the last record (compaction keeps a batch's original span).
  void set_last_offset_delta(int32_t delta) { forced_last_offset_delta_ = delta; }

  // Finishes the header and CRC and returns the batch; the builder is left empty.
  Bytes build();

 private:
  // Writes the record's length and its fields before the value's length.
  void begin_record(const std::optional<ByteSpan>& key, size_t value_size, int64_t timestamp_ms);
  // Checks the value came to `value_end` and writes the (empty) headers.
  void end_record(size_t value_end);
  void stamp(int64_t timestamp_ms, int32_t delta);

  Bytes buffer_;  // the batch header's room, then the records; empty again after build()
  Bytes record_scratch_;
  int64_t base_offset_;
  BatchOptions options_;
  size_t record_count_ = 0;
  int32_t next_offset_delta_ = 0;
  int64_t first_timestamp_ = 0;
  int64_t max_timestamp_ = 0;
  std::optional<int32_t> forced_last_offset_delta_;
};

}  // namespace depot::storage
