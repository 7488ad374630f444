#pragma once
// A log: an ordered sequence of record batches with offsets, kept as a directory of segments
// (segment.h). It assigns offsets on append, rolls segments by size and age, reads by offset and
// by time, deletes old segments for retention, compacts by key, and recovers after a crash by
// verifying the tail and cutting what is torn. Durability is the SyncService's (group commit).
//
// Thread-safe: appends are serialised by one mutex; reads take it only to locate the bytes.
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "common/file_range.h"
#include "storage/file.h"
#include "storage/record_batch.h"
#include "storage/segment.h"

namespace depot::storage {

class SyncService;

struct LogConfig {
  uint64_t segment_bytes = 1ULL << 30;               // roll when the active segment would pass this
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;       // roll when the active segment is this old
  uint32_t index_interval_bytes = 4096;              // one sparse index entry per this many bytes
  uint64_t preallocate_bytes = 4ULL << 20;           // active segment's allocation ahead; 0: none
  uint32_t max_batch_bytes = 64u << 20;              // larger batches are refused
  int64_t retention_bytes = -1;                      // -1: no size limit
  int64_t retention_ms = -1;                         // -1: keep forever
  int64_t delete_retention_ms = 24LL * 3600 * 1000;  // compaction keeps tombstones this long
};

struct AppendInfo {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
};

struct ReadResult {
  Bytes data;  // whole batches, the first one whatever its size
  // From read_for_sending(): the batches as a range of their segment file instead of `data`.
  FileRange file;
  int64_t next_offset = 0;  // offset to read from next
  int64_t log_start_offset = 0;
  int64_t log_end_offset = 0;  // offset the next append will get (the high watermark here)
};

// A record's offset and timestamp (answers to "where is time T?").
struct TimestampedOffset {
  int64_t offset = 0;
  int64_t timestamp = 0;
};

struct CompactionStats {
  size_t segments_rewritten = 0;
  size_t records_removed = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

using Clock = std::function<int64_t()>;  // wall-clock milliseconds
int64_t system_clock_ms();

class Log : public std::enable_shared_from_this<Log> {
 public:
  struct Options {
    std::filesystem::path dir;
    LogConfig config;
    SyncService* sync = nullptr;  // required
    FileSystem* fs = nullptr;     // defaults to the POSIX file system
    Clock clock;                  // defaults to the system clock
  };
  using DurableCallback = std::function<void(std::error_code)>;

  // Opens or creates the log in `options.dir`, recovering it if it was not closed cleanly.
  static Result<std::shared_ptr<Log>> open(Options options);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Validates the batch (size, CRC), assigns its offsets (rewriting its base offset in place) and
  // writes it. The batch is not yet durable: pass last_offset to when_durable() for that.
  Result<AppendInfo> append(std::span<std::byte> batch);
  // append() for a batch whose CRC the caller has just checked (validate_batch) or computed
  // (RecordBatchBuilder::build), with `header` its header (parse_batch_header): the CRC is a
  // pass over every byte, too dear to make twice on the hot paths.
  Result<AppendInfo> append_checked(std::span<std::byte> batch, BatchHeader header);
  // Calls `done` (on a sync thread, or right here) once `offset` is durable under the fsync policy.
  void when_durable(int64_t offset, DurableCallback done);
  // append() then wait for durability: for callers that may block (tests, tools).
  Result<AppendInfo> append_and_wait(std::span<std::byte> batch);

  // Whole batches from the one containing `offset`, up to `max_bytes` (the first batch is always
  // returned whole) and short of `end_offset` (batches reaching it are left out: a reader shown
  // only durable records passes readable_end()). An offset equal to the log end reads nothing;
  // outside the log is an error.
  Result<ReadResult> read(int64_t offset, size_t max_bytes, int64_t end_offset = INT64_MAX) const;
  // read() for a socket writer: batches of kSendFromFileMin bytes or more come back as a range of
  // their segment file (ReadResult::file), for the kernel to send without their bytes passing
  // through memory of ours; fewer come back in `data`.
  static constexpr uint64_t kSendFromFileMin = 64 << 10;
  Result<ReadResult> read_for_sending(int64_t offset, size_t max_bytes, int64_t end_offset) const;
  // The earliest record whose timestamp is >= `timestamp`, or nullopt if every record is older.
  // In a compressed batch, which is not decompressed, the batch's first offset and its largest
  // timestamp stand for the record.
  Result<std::optional<TimestampedOffset>> offset_for_timestamp(int64_t timestamp) const;
  // The record with the largest timestamp (the first of equals), or nullopt in an empty log;
  // for a compressed batch, its last offset.
  Result<std::optional<TimestampedOffset>> max_timestamp() const;

  int64_t log_start_offset() const;
  int64_t log_end_offset() const;  // next offset to be assigned
  int64_t durable_offset() const;  // last offset known to be on stable storage
  // The end of what readers are shown: under fsync=always the durable end (nothing a crash can
  // take back is served, as Kafka's high watermark), otherwise the log's end.
  int64_t readable_end() const;
  uint64_t size_bytes() const;
  size_t segment_count() const;
  const std::filesystem::path& dir() const { return options_.dir; }
  const LogConfig& config() const { return options_.config; }
  // Bytes cut from damaged tails when the log was opened.
  uint64_t recovered_truncated_bytes() const { return recovered_truncated_bytes_; }

  // Drops every batch whose last offset is >= `offset` (truncation is to a batch boundary).
  Result<void> truncate(int64_t offset);
  // Changes the limits a topic may change while its log is open (Kafka's AlterConfigs).
  void set_limits(int64_t retention_ms, int64_t retention_bytes, uint64_t segment_bytes);
  // Deletes whole old segments past retention_ms / retention_bytes. Returns segments deleted.
  Result<size_t> enforce_retention();
  // Deletes whole closed segments that hold only offsets below `offset` (records the owner no
  // longer needs, as a message store whose oldest live message is at `offset`). Returns how many.
  Result<size_t> delete_before(int64_t offset);
  // Keeps the newest record of each key in closed segments (compaction.cc).
  Result<CompactionStats> compact();
  // Closes the active segment and starts a new one (also done automatically by size and age).
  Result<void> roll();
  // Syncs everything written so far, now, and waits.
  Result<void> flush();
  // Flushes, marks the log clean so the next open skips full verification, and closes it.
  Result<void> close();
  // Closes the log and deletes its directory.
  Result<void> remove();

 private:
  friend class SyncService;
  explicit Log(Options options);
  Result<void> load();
  Result<void> roll_locked();
  // Deletes the files of segments already taken out of segments_; returns how many.
  Result<size_t> remove_segments(const std::vector<std::shared_ptr<Segment>>& doomed);
  std::shared_ptr<Segment> segment_for_locked(int64_t offset) const;
  // The segment holding the first batch that reaches `offset` and that batch's position, with
  // `result`'s offsets filled in; no segment when `offset` is the log's end.
  struct ReadStart {
    std::shared_ptr<Segment> segment;
    uint64_t position = 0;
  };
  Result<ReadStart> locate_locked(int64_t offset, ReadResult& result) const;
  // Waiters that a sync covered, to be told how it went.
  struct Completions {
    std::vector<DurableCallback> callbacks;
    std::error_code result;
    void run() {
      for (auto& callback : callbacks)
        callback(result);
    }
  };
  // fdatasync the active segment and return the waiters it covers. `from_service` clears the
  // pending flag that keeps one log from being queued twice. The sync service runs the
  // completions only after letting go of the log, so that the log is never destroyed on its
  // thread a moment after its owner thought it was done with it.
  Completions sync(bool from_service);
  void sync_and_complete(bool from_service) { sync(from_service).run(); }
  void gather_appenders();
  bool has_unsynced_writes() const;
  // The waiters for offsets up to `up_to`; `appends` gets how many offsets they waited for.
  std::vector<DurableCallback> take_waiters_locked(int64_t up_to, size_t* appends = nullptr);

  Options options_;
  FileSystem& fs_;
  mutable std::mutex mutex_;
  std::mutex maintenance_mutex_;  // one of retention, compaction, truncation at a time
  std::map<int64_t, std::shared_ptr<Segment>> segments_;
  std::shared_ptr<Segment> active_;
  int64_t next_offset_ = 0;
  // Clock time of the active segment's first append (or of the open that found it non-empty):
  // its age for segment_ms. Record timestamps are the client's and may be arbitrarily old.
  int64_t active_since_ms_ = -1;
  int64_t durable_offset_ = -1;
  std::error_code failure_;  // set after a failed fsync: the log refuses writes from then on
  bool closed_ = false;
  bool sync_pending_ = false;   // queued in or running on the SyncService
  size_t last_sync_group_ = 0;  // appends (distinct offsets) completed by the last sync
  bool gathering_ = false;      // the sync thread waits for waiter_arrived_
  std::condition_variable waiter_arrived_;
  std::multimap<int64_t, DurableCallback> waiters_;  // by the offset each one waits for
  uint64_t recovered_truncated_bytes_ = 0;
};

// Calls `each` for every record from `from` to the log's end, in offset order (uncompressed
// batches, as depot writes its own logs).
Result<void> for_each_record(const Log& log, int64_t from,
                             const std::function<void(const RecordView&)>& each);

}  // namespace depot::storage
