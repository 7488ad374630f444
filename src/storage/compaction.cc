// Key compaction (Kafka's cleanup.policy=compact): closed segments are rewritten to keep only the
// newest record of each key. Offsets never change; survivors keep theirs and batches keep their
// offset span, so a consumer replaying a compacted log sees the same final value for every key.
// Tombstones (null values) are dropped once older than delete_retention_ms, giving consumers
// that time to see the delete.
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "storage/errc.h"
#include "storage/log.h"

namespace depot::storage {
namespace {

using LatestOffsets = std::unordered_map<std::string, int64_t>;

// Records in compressed batches are not decoded here: such batches are kept whole, and their keys
// do not supersede older records (less compaction, never a wrong read).
bool decodable(const BatchHeader& h) {
  return h.compression() == Compression::none && !h.is_control();
}

Result<void> note_latest_offsets(Segment& segment, uint64_t end, LatestOffsets& latest) {
  std::error_code failure;
  DEPOT_TRY(scan_batches(*segment.file(), 0, end, false, true,
                         [&](uint64_t, const BatchHeader& h, ByteSpan bytes) {
                           if (!decodable(h)) return true;
                           auto records = decode_records(bytes);
                           if (!records) {
                             failure = records.error();
                             return false;
                           }
                           for (const auto& r : records.value()) {
                             if (r.key) latest[std::string(as_chars(*r.key))] = r.offset;
                           }
                           return true;
                         }));
  if (failure) return failure;
  return success();
}

// Writes the surviving records of `segment` to `out`. Returns how many records were dropped.
Result<size_t> write_survivors(Segment& segment, const LatestOffsets& latest,
                               int64_t tombstone_horizon, File& out) {
  uint64_t written = 0;
  size_t removed = 0;
  std::error_code failure;
  std::vector<HeaderInput> headers;
  auto emit = [&](ByteSpan bytes) {
    auto r = out.write_at(written, bytes);
    if (!r) failure = r.error();
    written += bytes.size();
    return !failure;
  };
  DEPOT_TRY(scan_batches(
      *segment.file(), 0, segment.size(), false, true,
      [&](uint64_t, const BatchHeader& h, ByteSpan bytes) {
        if (!decodable(h)) return emit(bytes);
        auto records = decode_records(bytes);
        if (!records) {
          failure = records.error();
          return false;
        }
        const bool tombstones_expired = h.max_timestamp < tombstone_horizon;
        std::vector<const RecordView*> keep;
        for (const auto& r : records.value()) {
          bool superseded = r.key && latest.at(std::string(as_chars(*r.key))) != r.offset;
          bool dead_tombstone = r.key && !r.value && tombstones_expired;
          if (!superseded && !dead_tombstone) keep.push_back(&r);
        }
        removed += records.value().size() - keep.size();
        if (keep.size() == records.value().size()) return emit(bytes);
        if (keep.empty()) return true;
        RecordBatchBuilder builder(h.base_offset,
                                   BatchOptions{h.producer_id, h.producer_epoch, h.base_sequence,
                                                h.partition_leader_epoch, h.attributes});
        for (const RecordView* r : keep) {
          headers.clear();
          for (const auto& hv : r->headers)
            headers.push_back({hv.key, hv.value});
          builder.add(r->key, r->value, r->timestamp, headers,
                      static_cast<int32_t>(r->offset - h.base_offset));
        }
        builder.set_last_offset_delta(h.last_offset_delta);
        Bytes rebuilt = builder.build();
        return emit(rebuilt);
      }));
  if (failure) return failure;
  return removed;
}

}  // namespace

Result<CompactionStats> Log::compact() {
  std::lock_guard maintenance(maintenance_mutex_);
  std::vector<std::shared_ptr<Segment>> closed;
  std::shared_ptr<Segment> active;
  uint64_t active_end = 0;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return errc::log_closed;
    for (const auto& [base, segment] : segments_) {
      if (segment != active_) closed.push_back(segment);
    }
    active = active_;
    active_end = active_->size();
  }
  CompactionStats stats;
  if (closed.empty()) return stats;

  LatestOffsets latest;
  for (const auto& segment : closed)
    DEPOT_TRY(note_latest_offsets(*segment, segment->size(), latest));
  DEPOT_TRY(note_latest_offsets(*active, active_end, latest));

  const int64_t horizon = options_.clock() - options_.config.delete_retention_ms;
  for (const auto& segment : closed) {
    const int64_t base = segment->base_offset();
    const auto log_path = segment_log_path(options_.dir, base);
    const auto cleaned_path = std::filesystem::path(log_path.string() + ".cleaned");
    DEPOT_TRY(auto out, fs_.open(cleaned_path, OpenMode::read_write_create));
    DEPOT_TRY(out->truncate(0));
    DEPOT_TRY(size_t removed, write_survivors(*segment, latest, horizon, *out));
    if (removed == 0) {
      out.reset();
      DEPOT_TRY(fs_.remove(cleaned_path));
      continue;
    }
    DEPOT_TRY(out->datasync());
    DEPOT_TRY(uint64_t new_size, out->size());
    out.reset();

    std::lock_guard lock(mutex_);
    auto it = segments_.find(base);
    if (it == segments_.end() || it->second != segment) {  // deleted meanwhile
      DEPOT_TRY(fs_.remove(cleaned_path));
      continue;
    }
    // Index first: a crash between these steps leaves a missing index, which is rebuilt.
    DEPOT_TRY(fs_.remove(segment_index_path(options_.dir, base)));
    DEPOT_TRY(fs_.rename(cleaned_path, log_path));
    DEPOT_TRY(fs_.sync_directory(options_.dir));
    DEPOT_TRY(auto reopened,
              Segment::open(fs_, options_.dir, base, options_.config.index_interval_bytes, false));
    it->second = std::shared_ptr<Segment>(std::move(reopened));
    stats.segments_rewritten++;
    stats.records_removed += removed;
    stats.bytes_before += segment->size();
    stats.bytes_after += new_size;
  }
  if (stats.segments_rewritten > 0) {
    spdlog::info("log {}: compacted {} segment(s), {} records removed, {} -> {} bytes",
                 options_.dir.string(), stats.segments_rewritten, stats.records_removed,
                 stats.bytes_before, stats.bytes_after);
  }
  return stats;
}

}  // namespace depot::storage
