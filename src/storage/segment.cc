#include "storage/segment.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/errc.h"

namespace depot::storage {
namespace fs = std::filesystem;

fs::path segment_log_path(const fs::path& dir, int64_t base_offset) {
  return dir / fmt::format("{:020d}.log", base_offset);
}
fs::path segment_index_path(const fs::path& dir, int64_t base_offset) {
  return dir / fmt::format("{:020d}.index", base_offset);
}

namespace {

// A window over a file that grows to hold whatever the scan asks for.
class ReadWindow {
 public:
  ReadWindow(File& file, uint64_t end, size_t chunk) : file_(file), end_(end), chunk_(chunk) {}

  // Makes [pos, pos+n) available; returns fewer bytes only at `end`.
  Result<ByteSpan> get(uint64_t pos, size_t n) {
    if (pos < start_ || pos + n > start_ + buffer_.size()) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, chunk_), end_ - pos));
      buffer_.resize(want);
      DEPOT_TRY(size_t got, file_.read_at(pos, buffer_));
      buffer_.resize(got);
      start_ = pos;
    }
    size_t off = static_cast<size_t>(pos - start_);
    return ByteSpan(buffer_).subspan(off, std::min(n, buffer_.size() - off));
  }

 private:
  File& file_;
  uint64_t end_;
  size_t chunk_;
  Bytes buffer_;
  uint64_t start_ = 0;
};

}  // namespace

Result<ScanOutcome> scan_batches(File& file, uint64_t start, uint64_t end, bool verify,
                                 bool want_bytes, const BatchVisitor& visit) {
  ScanOutcome outcome{start, {}};
  ReadWindow window(file, end, verify || want_bytes ? (1u << 20) : (16u << 10));
  uint64_t pos = start;
  int64_t expected_min_offset = -1;
  while (pos < end) {
    DEPOT_TRY(ByteSpan head, window.get(pos, kBatchHeaderSize));
    auto header = parse_batch_header(head);
    if (!header) {
      outcome.damage = header.error();
      break;
    }
    const BatchHeader& h = header.value();
    if (pos + h.size_bytes() > end) {
      outcome.damage = errc::truncated_batch;
      break;
    }
    ByteSpan bytes;
    if (verify || want_bytes) {
      DEPOT_TRY(bytes, window.get(pos, h.size_bytes()));
      if (bytes.size() < h.size_bytes()) {
        outcome.damage = errc::truncated_batch;
        break;
      }
    }
    if (verify) {
      if (auto checked = validate_batch(bytes); !checked) {
        outcome.damage = checked.error();
        break;
      }
      if (h.base_offset < expected_min_offset) {
        outcome.damage = errc::record_count_mismatch;  // offsets went backwards: not our write
        break;
      }
      expected_min_offset = h.last_offset() + 1;
    }
    outcome.valid_end = pos + h.size_bytes();
    if (!visit(pos, h, bytes)) break;
    pos += h.size_bytes();
  }
  return outcome;
}

namespace {

// True when the file holds only zero bytes in [begin, end).
Result<bool> all_zero(File& file, uint64_t begin, uint64_t end) {
  Bytes chunk(64 * 1024);
  for (uint64_t at = begin; at < end;) {
    auto want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), end - at));
    DEPOT_TRY(size_t got, file.read_at(at, std::span(chunk).first(want)));
    if (got == 0) return true;
    if (std::any_of(chunk.begin(), chunk.begin() + static_cast<ptrdiff_t>(got),
                    [](std::byte b) { return b != std::byte{0}; })) {
      return false;
    }
    at += got;
  }
  return true;
}

}  // namespace

Segment::Segment(FileSystem& fs, fs::path dir, int64_t base_offset, uint32_t index_interval)
    : fs_(fs),
      dir_(std::move(dir)),
      base_offset_(base_offset),
      index_interval_(index_interval),
      next_offset_(base_offset) {}

Result<std::unique_ptr<Segment>> Segment::create(FileSystem& fs, const fs::path& dir,
                                                 int64_t base_offset, uint32_t index_interval) {
  std::unique_ptr<Segment> s(new Segment(fs, dir, base_offset, index_interval));
  DEPOT_TRY(s->file_, fs.open(segment_log_path(dir, base_offset), OpenMode::read_write_create));
  DEPOT_TRY(s->index_file_,
            fs.open(segment_index_path(dir, base_offset), OpenMode::read_write_create));
  DEPOT_TRY(s->file_->truncate(0));
  DEPOT_TRY(s->index_file_->truncate(0));
  return s;
}

Result<std::unique_ptr<Segment>> Segment::open(FileSystem& fs, const fs::path& dir,
                                               int64_t base_offset, uint32_t index_interval,
                                               bool verify_all) {
  std::unique_ptr<Segment> s(new Segment(fs, dir, base_offset, index_interval));
  DEPOT_TRY(s->file_, fs.open(segment_log_path(dir, base_offset), OpenMode::read_write_create));
  DEPOT_TRY(s->index_file_,
            fs.open(segment_index_path(dir, base_offset), OpenMode::read_write_create));
  DEPOT_TRY(s->size_, s->file_->size());
  s->allocated_ = s->size_;
  DEPOT_TRY(s->load_or_rebuild_index(verify_all));
  return s;
}

bool Segment::index_is_plausible() const {
  for (size_t i = 1; i < index_.size(); ++i) {
    const auto& a = index_[i - 1];
    const auto& b = index_[i];
    if (b.relative_offset <= a.relative_offset || b.position <= a.position ||
        b.max_timestamp < a.max_timestamp) {
      return false;
    }
  }
  return index_.empty() || index_.back().position < size_;
}

Result<void> Segment::load_or_rebuild_index(bool verify_all) {
  if (verify_all) return rebuild_index(true);
  DEPOT_TRY(uint64_t index_size, index_file_->size());
  bool usable = index_size % kIndexEntrySize == 0;
  if (usable && index_size > 0) {
    Bytes raw(index_size);
    DEPOT_TRY(size_t got, index_file_->read_at(0, raw));
    usable = got == raw.size();
    for (size_t at = 0; usable && at < raw.size(); at += kIndexEntrySize) {
      index_.push_back({load_be<uint32_t>(&raw[at]), load_be<uint32_t>(&raw[at + 4]),
                        load_be<int64_t>(&raw[at + 8])});
    }
    usable = usable && index_is_plausible();
  }
  if (usable && !index_.empty()) {
    // The last entry must point at a batch with the offset it claims.
    const IndexEntry& last = index_.back();
    Bytes head(kBatchHeaderSize);
    DEPOT_TRY(size_t got, file_->read_at(last.position, head));
    auto h = parse_batch_header(ByteSpan(head).first(got));
    usable = h && h.value().base_offset == base_offset_ + last.relative_offset;
  }
  if (!usable) {
    spdlog::warn("segment {}: index is damaged; rebuilding it from the log",
                 segment_log_path(dir_, base_offset_).string());
    index_.clear();
    // Checked in full: in preallocated space a torn batch is not short, only wrong.
    return rebuild_index(true);
  }
  // An empty index is normal for a small segment (entries start after index_interval bytes); a
  // deleted one costs a scan of the whole segment here, which also restores it.
  persisted_entries_ = index_.size();
  if (!index_.empty()) max_timestamp_ = index_.back().max_timestamp;
  // Recover what follows the last entry, checking CRCs there.
  uint64_t from = index_.empty() ? 0 : index_.back().position;
  DEPOT_TRY(recover_tail(from, true));
  if (persisted_entries_ < index_.size()) DEPOT_TRY(write_pending_index_entries());
  return success();
}

Result<void> Segment::rebuild_index(bool verify) {
  index_.clear();
  max_timestamp_ = -1;
  bytes_since_index_ = 0;
  next_offset_ = base_offset_;
  persisted_entries_ = 0;
  DEPOT_TRY(recover_tail(0, verify));
  DEPOT_TRY(index_file_->truncate(0));
  return write_pending_index_entries();
}

Result<void> Segment::recover_tail(uint64_t from, bool verify) {
  bool first_is_indexed = from > 0;
  bool first = true;
  DEPOT_TRY(auto outcome, scan_batches(*file_, from, size_, verify, false,
                                       [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                                         // The batch at `from` is already in the index; count it,
                                         // don't re-add.
                                         if (first && first_is_indexed) {
                                           bytes_since_index_ = h.size_bytes();
                                           max_timestamp_ =
                                               std::max(max_timestamp_, h.max_timestamp);
                                           next_offset_ = h.last_offset() + 1;
                                         } else {
                                           note_batch(pos, h, false);
                                         }
                                         first = false;
                                         return true;
                                       }));
  if (outcome.valid_end < size_) {
    // Zeros after the last batch are space allocated ahead of the writer, not damage.
    DEPOT_TRY(bool zeros, all_zero(*file_, outcome.valid_end, size_));
    if (!zeros) {
      truncated_bytes_ = size_ - outcome.valid_end;
      spdlog::warn("segment {}: cutting {} bytes of damaged tail at position {} ({})",
                   segment_log_path(dir_, base_offset_).string(), truncated_bytes_,
                   outcome.valid_end, outcome.damage ? outcome.damage.message() : "incomplete");
    }
    DEPOT_TRY(file_->truncate(outcome.valid_end));
    DEPOT_TRY(file_->datasync());
    size_ = outcome.valid_end;
    allocated_ = size_;
  }
  return success();
}

void Segment::note_batch(uint64_t position, const BatchHeader& h, bool write_entry) {
  max_timestamp_ = std::max(max_timestamp_, h.max_timestamp);
  if (bytes_since_index_ >= index_interval_) {
    IndexEntry entry{static_cast<uint32_t>(h.base_offset - base_offset_),
                     static_cast<uint32_t>(position), max_timestamp_};
    index_.push_back(entry);
    if (write_entry) {
      // The index is advisory: a failed write here only costs a rebuild at the next open.
      if (auto r = write_pending_index_entries(); !r) {
        spdlog::warn("segment {}: index write failed: {}", base_offset_, r.error().message());
      }
    }
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += h.size_bytes();
  next_offset_ = h.last_offset() + 1;
}

Result<void> Segment::write_pending_index_entries() {
  size_t pending = index_.size() - persisted_entries_;
  Bytes raw(pending * kIndexEntrySize);
  for (size_t i = 0; i < pending; ++i) {
    const IndexEntry& e = index_[persisted_entries_ + i];
    store_be<uint32_t>(&raw[i * kIndexEntrySize], e.relative_offset);
    store_be<uint32_t>(&raw[i * kIndexEntrySize + 4], e.position);
    store_be<int64_t>(&raw[i * kIndexEntrySize + 8], e.max_timestamp);
  }
  DEPOT_TRY(index_file_->write_at(persisted_entries_ * kIndexEntrySize, raw));
  persisted_entries_ = index_.size();
  return success();
}

Result<void> Segment::append(ByteSpan batch, const BatchHeader& header) {
  if (preallocate_bytes_ > 0 && size_ + batch.size() > allocated_) {
    const uint64_t target = size_ + batch.size() + preallocate_bytes_;
    if (auto allocated = file_->allocate(target); allocated) {
      allocated_ = target;
    } else {
      // Not fatal: the write below extends the file as it would without preallocation.
      spdlog::debug("segment {}: could not allocate ahead: {}", base_offset_,
                    allocated.error().message());
    }
  }
  if (auto written = file_->write_at(size_, batch); !written) {
    // Cut back whatever prefix made it, so the next append starts at a batch boundary.
    if (auto cut = file_->truncate(size_); !cut) {
      spdlog::error("segment {}: could not cut back a failed write: {}", base_offset_,
                    cut.error().message());
      return errc::log_failed;
    }
    allocated_ = size_;
    return written.error();
  }
  note_batch(size_, header, true);
  size_ += batch.size();
  return success();
}

Result<uint64_t> Segment::position_of(int64_t offset) const {
  if (offset >= next_offset_) return size_;
  uint64_t start = 0;
  if (offset > base_offset_) {
    auto rel = static_cast<uint64_t>(offset - base_offset_);
    auto it =
        std::upper_bound(index_.begin(), index_.end(), rel,
                         [](uint64_t r, const IndexEntry& e) { return r < e.relative_offset; });
    if (it != index_.begin()) start = std::prev(it)->position;
  }
  uint64_t found = size_;
  DEPOT_TRY(scan_batches(*file_, start, size_, false, false,
                         [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                           if (h.last_offset() < offset) return true;
                           found = pos;
                           return false;
                         }));
  return found;
}

Result<Segment::BatchRun> Segment::batches_within(uint64_t start, uint64_t limit) const {
  // Index entries are batch starts: every batch before the last entry within the limit fits, so
  // only the batches after it are walked.
  auto it = std::upper_bound(index_.begin(), index_.end(), limit,
                             [](uint64_t l, const IndexEntry& e) { return l < e.position; });
  BatchRun run{start, -1};
  uint64_t from = start;
  if (it != index_.begin() && std::prev(it)->position > start) {
    from = std::prev(it)->position;
    run = {from, base_offset_ + std::prev(it)->relative_offset};
  }
  DEPOT_TRY(scan_batches(*file_, from, size_, false, false,
                         [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                           const uint64_t end = pos + h.size_bytes();
                           if (end > limit && pos > start) return false;
                           run = {end, h.last_offset() + 1};
                           return end < limit;
                         }));
  return run;
}

Result<uint64_t> Segment::position_for_timestamp(int64_t timestamp) const {
  if (max_timestamp_ < timestamp) return size_;
  // Entries whose running max is below the target cover only batches that are all older.
  auto it = std::lower_bound(index_.begin(), index_.end(), timestamp,
                             [](const IndexEntry& e, int64_t ts) { return e.max_timestamp < ts; });
  uint64_t start = it == index_.begin() ? 0 : std::prev(it)->position;
  uint64_t found = size_;
  DEPOT_TRY(scan_batches(*file_, start, size_, false, false,
                         [&](uint64_t pos, const BatchHeader& h, ByteSpan) {
                           if (h.max_timestamp < timestamp) return true;
                           found = pos;
                           return false;
                         }));
  return found;
}

Result<void> Segment::release_preallocation() {
  if (allocated_ <= size_) return success();
  DEPOT_TRY(file_->truncate(size_));
  allocated_ = size_;
  return success();
}

Result<void> Segment::truncate_to(uint64_t position) {
  if (position >= size_) return release_preallocation();
  DEPOT_TRY(file_->truncate(position));
  size_ = position;
  allocated_ = position;
  return rebuild_index(false);
}

Result<void> Segment::remove_files() {
  DEPOT_TRY(fs_.remove(segment_log_path(dir_, base_offset_)));
  DEPOT_TRY(fs_.remove(segment_index_path(dir_, base_offset_)));
  return success();
}

}  // namespace depot::storage
