#pragma once
// One segment of a log: `<base offset>.log` holds whole batches back to back; `<base offset>.index`
// is a sparse index with one 16-byte entry (relative offset u32, file position u32, running max
// timestamp i64) per `index_interval` bytes of log. It serves both look-ups: by offset (entries
// are ordered by offset) and by time (the running max timestamp never decreases). The index is
// never the truth: a missing or damaged one is rebuilt from the log.
//
// A Segment is not synchronised; its Log serialises access.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "storage/file.h"
#include "storage/record_batch.h"

namespace depot::storage {

struct IndexEntry {
  uint32_t relative_offset = 0;  // batch base offset - segment base offset
  uint32_t position = 0;         // byte position of that batch in the .log file
  int64_t max_timestamp = -1;    // largest timestamp in this batch and every earlier one
};
constexpr size_t kIndexEntrySize = 16;

std::filesystem::path segment_log_path(const std::filesystem::path& dir, int64_t base_offset);
std::filesystem::path segment_index_path(const std::filesystem::path& dir, int64_t base_offset);

// Walks the batches of `file` between `start` and `end`. Stops at the first bytes that are not a
// whole batch (or, with `verify`, not an intact one: CRC, and offsets that go forward). `visit`
// gets each batch's position, header and (with `want_bytes`) its bytes, and returns false to stop.
struct ScanOutcome {
  uint64_t valid_end = 0;  // position after the last good batch visited
  std::error_code damage;  // why the scan stopped early, if it met bad bytes
};
using BatchVisitor = std::function<bool(uint64_t position, const BatchHeader&, ByteSpan bytes)>;
Result<ScanOutcome> scan_batches(File& file, uint64_t start, uint64_t end, bool verify,
                                 bool want_bytes, const BatchVisitor& visit);

class Segment {
 public:
  static Result<std::unique_ptr<Segment>> create(FileSystem& fs, const std::filesystem::path& dir,
                                                 int64_t base_offset, uint32_t index_interval);
  // Opens an existing segment. With `verify_all` every batch is checked (the last segment after an
  // unclean shutdown); otherwise only the part after the last index entry. Bad bytes at the tail
  // are cut off, and a missing or damaged index is rebuilt.
  static Result<std::unique_ptr<Segment>> open(FileSystem& fs, const std::filesystem::path& dir,
                                               int64_t base_offset, uint32_t index_interval,
                                               bool verify_all);

  int64_t base_offset() const { return base_offset_; }
  int64_t next_offset() const { return next_offset_; }
  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t max_timestamp() const { return max_timestamp_; }
  uint64_t truncated_bytes() const { return truncated_bytes_; }
  const std::shared_ptr<File>& file() const { return file_; }

  // Appends a batch whose base offset is already assigned. A failed write is cut back, so the
  // file never keeps a partial batch.
  Result<void> append(ByteSpan batch, const BatchHeader& header);

  // Position of the first batch whose last offset >= `offset`, or size() when there is none.
  Result<uint64_t> position_of(int64_t offset) const;
  // The whole batches from the one at `start` (a batch boundary) that end at or before `limit`,
  // the first one whatever its size: where they end and the offset after them.
  struct BatchRun {
    uint64_t end = 0;
    int64_t next_offset = 0;
  };
  Result<BatchRun> batches_within(uint64_t start, uint64_t limit) const;
  // Position of the first batch whose max timestamp >= `timestamp`, or size() when none.
  Result<uint64_t> position_for_timestamp(int64_t timestamp) const;

  // Cuts the segment at a batch boundary.
  Result<void> truncate_to(uint64_t position);
  // While `bytes` > 0, appends keep that much space allocated past the end of the segment (the
  // active one), so that their fdatasync changes no metadata. The file is then longer than the
  // segment; recovery drops the zeros after the last batch.
  void set_preallocation(uint64_t bytes) { preallocate_bytes_ = bytes; }
  // Gives the space past the end back: a segment that is no longer active, or a clean close.
  Result<void> release_preallocation();
  Result<void> sync() { return file_->datasync(); }
  // Makes the index file durable (the log file is synced by the group commit).
  Result<void> sync_index() { return index_file_->datasync(); }
  Result<void> remove_files();

 private:
  Segment(FileSystem& fs, std::filesystem::path dir, int64_t base_offset, uint32_t index_interval);
  Result<void> load_or_rebuild_index(bool verify_all);
  Result<void> rebuild_index(bool verify);
  bool index_is_plausible() const;
  // Scans from the last index entry (or `from`) to the end, updating offsets and timestamps and
  // cutting a damaged tail.
  Result<void> recover_tail(uint64_t from, bool verify);
  Result<void> write_pending_index_entries();
  void note_batch(uint64_t position, const BatchHeader& header, bool write_entry);

  FileSystem& fs_;
  std::filesystem::path dir_;
  int64_t base_offset_;
  uint32_t index_interval_;
  std::shared_ptr<File> file_;
  std::shared_ptr<File> index_file_;
  std::vector<IndexEntry> index_;
  size_t persisted_entries_ = 0;  // entries already in the .index file
  uint64_t size_ = 0;
  int64_t next_offset_;
  int64_t max_timestamp_ = -1;
  uint64_t bytes_since_index_ = 0;
  uint64_t truncated_bytes_ = 0;
  uint64_t allocated_ = 0;  // the file's length: size_ plus space allocated ahead
  uint64_t preallocate_bytes_ = 0;
};

}  // namespace depot::storage
