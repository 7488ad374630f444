#include "storage/record_batch.h"

#include <algorithm>
#include <cstdlib>

#include "storage/crc32c.h"
#include "storage/errc.h"

namespace depot::storage {

Result<BatchHeader> parse_batch_header(ByteSpan data) {
  if (data.size() < kBatchHeaderSize) return errc::truncated_batch;
  ByteReader r(data.first(kBatchHeaderSize));
  BatchHeader h;
  h.base_offset = r.read_be<int64_t>();
  h.batch_length = r.read_be<int32_t>();
  h.partition_leader_epoch = r.read_be<int32_t>();
  h.magic = r.read_be<int8_t>();
  h.crc = r.read_be<uint32_t>();
  h.attributes = r.read_be<int16_t>();
  h.last_offset_delta = r.read_be<int32_t>();
  h.base_timestamp = r.read_be<int64_t>();
  h.max_timestamp = r.read_be<int64_t>();
  h.producer_id = r.read_be<int64_t>();
  h.producer_epoch = r.read_be<int16_t>();
  h.base_sequence = r.read_be<int32_t>();
  h.record_count = r.read_be<int32_t>();
  if (h.magic != kMagicV2) return errc::bad_magic;
  if (h.batch_length < static_cast<int32_t>(kBatchHeaderSize - kBatchLogOverhead) ||
      h.batch_length > kMaxBatchLength) {
    return errc::bad_batch_length;
  }
  if (h.record_count < 0 || h.last_offset_delta < 0) return errc::bad_batch_length;
  return h;
}

Result<BatchHeader> validate_batch(ByteSpan data) {
  DEPOT_TRY(auto h, parse_batch_header(data));
  if (data.size() < h.size_bytes()) return errc::truncated_batch;
  ByteSpan covered = data.subspan(kBatchAttributesOffset, h.size_bytes() - kBatchAttributesOffset);
  if (crc32c(covered) != h.crc) return errc::crc_mismatch;
  return h;
}

Result<std::vector<RecordView>> decode_records(ByteSpan batch) {
  DEPOT_TRY(auto h, parse_batch_header(batch));
  if (batch.size() < h.size_bytes()) return errc::truncated_batch;
  if (h.compression() != Compression::none) return errc::compressed_batch;
  // Each record takes at least 7 bytes, which bounds the allocation an attacker can ask for.
  size_t body = h.size_bytes() - kBatchHeaderSize;
  if (static_cast<size_t>(h.record_count) > body / 7 + 1) return errc::record_count_mismatch;

  std::vector<RecordView> out;
  out.reserve(static_cast<size_t>(h.record_count));
  ByteReader r(batch.subspan(kBatchHeaderSize, body));
  int64_t previous_delta = -1;
  const bool append_time = h.timestamp_type() == TimestampType::log_append_time;
  for (int32_t i = 0; i < h.record_count; ++i) {
    int32_t length = r.read_varint();
    if (!r.ok() || length < 0 || static_cast<size_t>(length) > r.remaining())
      return errc::bad_record;
    ByteReader rec(r.read_bytes(static_cast<size_t>(length)));
    RecordView v;
    rec.read_be<int8_t>();  // record attributes: unused in v2
    int64_t timestamp_delta = rec.read_varlong();
    int32_t offset_delta = rec.read_varint();
    if (!rec.ok() || offset_delta <= previous_delta || offset_delta > h.last_offset_delta) {
      return errc::record_count_mismatch;
    }
    previous_delta = offset_delta;
    v.offset = wrapping_add(h.base_offset, offset_delta);
    v.timestamp = append_time ? h.max_timestamp : wrapping_add(h.base_timestamp, timestamp_delta);
    int32_t key_length = rec.read_varint();
    if (key_length >= 0) v.key = rec.read_bytes(static_cast<size_t>(key_length));
    int32_t value_length = rec.read_varint();
    if (value_length >= 0) v.value = rec.read_bytes(static_cast<size_t>(value_length));
    int32_t header_count = rec.read_varint();
    if (!rec.ok() || header_count < 0 || static_cast<size_t>(header_count) > rec.remaining()) {
      return errc::bad_record;
    }
    v.headers.reserve(static_cast<size_t>(header_count));
    for (int32_t k = 0; k < header_count; ++k) {
      HeaderView hv;
      int32_t hk = rec.read_varint();
      if (hk < 0) return errc::bad_record;
      hv.key = as_chars(rec.read_bytes(static_cast<size_t>(hk)));
      int32_t hvl = rec.read_varint();
      if (hvl >= 0) hv.value = rec.read_bytes(static_cast<size_t>(hvl));
      if (!rec.ok()) return errc::bad_record;
      v.headers.push_back(hv);
    }
    if (!rec.ok() || !rec.at_end()) return errc::bad_record;
    out.push_back(std::move(v));
  }
  if (!r.ok() || !r.at_end()) return errc::record_count_mismatch;
  return out;
}

void set_base_offset(std::span<std::byte> batch, int64_t base_offset) {
  store_be<int64_t>(batch.data(), base_offset);
}

namespace {
void rewrite_crc(std::span<std::byte> batch, size_t size) {
  ByteSpan covered(batch.data() + kBatchAttributesOffset, size - kBatchAttributesOffset);
  store_be<uint32_t>(batch.data() + kBatchCrcOffset, crc32c(covered));
}
}  // namespace

void set_log_append_time(std::span<std::byte> batch, int64_t timestamp_ms) {
  auto attributes = load_be<int16_t>(batch.data() + kBatchAttributesOffset);
  store_be<int16_t>(batch.data() + kBatchAttributesOffset,
                    static_cast<int16_t>(attributes | attr::kTimestampType));
  store_be<int64_t>(batch.data() + 35, timestamp_ms);  // maxTimestamp
  auto length = load_be<int32_t>(batch.data() + 8);
  rewrite_crc(batch, kBatchLogOverhead + static_cast<size_t>(length));
}

RecordBatchBuilder::RecordBatchBuilder(int64_t base_offset, BatchOptions options)
    : base_offset_(base_offset), options_(options) {}

void RecordBatchBuilder::stamp(int64_t timestamp_ms, int32_t delta) {
  if (record_count_ == 0) {
    first_timestamp_ = timestamp_ms;
    max_timestamp_ = timestamp_ms;
    // Room for the header, written by build(). Not made again by build() itself, so that a
    // builder used for one batch costs one buffer.
    if (buffer_.size() < kBatchHeaderSize) buffer_.resize(kBatchHeaderSize);
  }
  max_timestamp_ = std::max(max_timestamp_, timestamp_ms);
  next_offset_delta_ = delta + 1;
  ++record_count_;
}

void RecordBatchBuilder::add(std::optional<ByteSpan> key, std::optional<ByteSpan> value,
                             int64_t timestamp_ms, std::span<const HeaderInput> headers,
                             std::optional<int32_t> offset_delta) {
  const int32_t delta = offset_delta.value_or(next_offset_delta_);
  stamp(timestamp_ms, delta);

  record_scratch_.clear();
  ByteWriter rec(record_scratch_);
  rec.write_be<int8_t>(0);
  rec.write_varlong(wrapping_sub(timestamp_ms, first_timestamp_));
  rec.write_varint(delta);
  auto write_optional = [&rec](const std::optional<ByteSpan>& b) {
    if (!b) {
      rec.write_varint(-1);
      return;
    }
    rec.write_varint(static_cast<int32_t>(b->size()));
    rec.write_bytes(*b);
  };
  write_optional(key);
  write_optional(value);
  rec.write_varint(static_cast<int32_t>(headers.size()));
  for (const auto& h : headers) {
    rec.write_varint(static_cast<int32_t>(h.key.size()));
    rec.write_bytes(as_bytes(h.key));
    write_optional(h.value);
  }
  ByteWriter out(buffer_);
  out.write_varint(static_cast<int32_t>(record_scratch_.size()));
  out.write_bytes(record_scratch_);
}

void RecordBatchBuilder::begin_record(const std::optional<ByteSpan>& key, size_t value_size,
                                      int64_t timestamp_ms) {
  const int32_t delta = next_offset_delta_;
  stamp(timestamp_ms, delta);
  const int64_t timestamp_delta = wrapping_sub(timestamp_ms, first_timestamp_);
  const size_t key_size =
      key ? varint_size(static_cast<int32_t>(key->size())) + key->size() : varint_size(-1);
  const size_t record_size = 1 + varint_size(timestamp_delta) + varint_size(delta) + key_size +
                             varint_size(static_cast<int32_t>(value_size)) + value_size + 1;
  // Room for the whole record at once, growing as push_back would, so that many records in one
  // batch do not reallocate each time.
  const size_t needed =
      buffer_.size() + varint_size(static_cast<int32_t>(record_size)) + record_size;
  if (needed > buffer_.capacity()) buffer_.reserve(std::max(needed, 2 * buffer_.capacity()));
  ByteWriter out(buffer_);
  out.write_varint(static_cast<int32_t>(record_size));
  out.write_be<int8_t>(0);
  out.write_varlong(timestamp_delta);
  out.write_varint(delta);
  if (key) {
    out.write_varint(static_cast<int32_t>(key->size()));
    out.write_bytes(*key);
  } else {
    out.write_varint(-1);
  }
}

void RecordBatchBuilder::end_record(size_t value_end) {
  // The record's length is already written: a value of another size would corrupt the batch.
  if (buffer_.size() != value_end) std::abort();
  ByteWriter(buffer_).write_varint(0);  // no headers
}

Bytes RecordBatchBuilder::build() {
  if (buffer_.size() < kBatchHeaderSize) buffer_.resize(kBatchHeaderSize);  // no records
  std::byte* p = buffer_.data();
  auto batch_length = static_cast<int32_t>(buffer_.size() - kBatchLogOverhead);
  int32_t last_delta =
      forced_last_offset_delta_.value_or(record_count_ == 0 ? 0 : next_offset_delta_ - 1);
  store_be<int64_t>(p + 0, base_offset_);
  store_be<int32_t>(p + 8, batch_length);
  store_be<int32_t>(p + 12, options_.partition_leader_epoch);
  store_be<int8_t>(p + 16, kMagicV2);
  store_be<int16_t>(p + 21, static_cast<int16_t>(options_.attributes & ~attr::kCompressionMask));
  store_be<int32_t>(p + 23, last_delta);
  store_be<int64_t>(p + 27, first_timestamp_);
  store_be<int64_t>(p + 35, max_timestamp_);
  store_be<int64_t>(p + 43, options_.producer_id);
  store_be<int16_t>(p + 51, options_.producer_epoch);
  store_be<int32_t>(p + 53, options_.base_sequence);
  store_be<int32_t>(p + 57, static_cast<int32_t>(record_count_));
  rewrite_crc(buffer_, buffer_.size());

  Bytes out = std::move(buffer_);
  buffer_.clear();
  record_count_ = 0;
  next_offset_delta_ = 0;
  forced_last_offset_delta_.reset();
  return out;
}

}  // namespace depot::storage
