#include "storage/log.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/numbers.h"
#include "storage/errc.h"
#include "storage/sync_service.h"

namespace depot::storage {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCleanShutdownMarker = ".clean-shutdown";

// "00000000000000000042.log" -> 42
std::optional<int64_t> parse_segment_name(std::string_view name) {
  constexpr std::string_view kSuffix = ".log";
  if (!name.ends_with(kSuffix)) return std::nullopt;
  name.remove_suffix(kSuffix.size());
  const auto base = parse_integer<int64_t>(name);
  if (!base || *base < 0) return std::nullopt;
  return base;
}

}  // namespace

int64_t system_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Log::Log(Options options)
    : options_(std::move(options)), fs_(options_.fs ? *options_.fs : posix_file_system()) {
  if (!options_.clock) options_.clock = system_clock_ms;
}

Result<std::shared_ptr<Log>> Log::open(Options options) {
  if (options.sync == nullptr) return std::make_error_code(std::errc::invalid_argument);
  std::shared_ptr<Log> log(new Log(std::move(options)));
  if (auto loaded = log->load(); !loaded) {
    log->closed_ = true;  // nothing to close: the destructor must not touch a half-loaded log
    return loaded.error();
  }
  log->options_.sync->register_log(log);
  return log;
}

Log::~Log() {
  if (auto r = close(); !r) {
    spdlog::error("log {}: close failed: {}", options_.dir.string(), r.error().message());
  }
}

Result<void> Log::load() {
  const fs::path& dir = options_.dir;
  DEPOT_TRY(fs_.create_directories(dir));
  DEPOT_TRY(auto names, fs_.list(dir));
  std::vector<int64_t> bases;
  for (const auto& name : names) {
    if (name.ends_with(".cleaned")) {
      DEPOT_TRY(fs_.remove(dir / name));  // compaction output that never replaced its segment
    } else if (auto base = parse_segment_name(name)) {
      bases.push_back(*base);
    }
  }
  std::sort(bases.begin(), bases.end());

  const fs::path marker = dir / kCleanShutdownMarker;
  DEPOT_TRY(bool clean, fs_.exists(marker));
  if (clean) {
    // From here on a crash must look unclean again.
    DEPOT_TRY(fs_.remove(marker));
    DEPOT_TRY(fs_.sync_directory(dir));
  }

  if (bases.empty()) {
    DEPOT_TRY(auto created, Segment::create(fs_, dir, 0, options_.config.index_interval_bytes));
    DEPOT_TRY(fs_.sync_directory(dir));
    segments_.emplace(0, std::move(created));
  }
  for (size_t i = 0; i < bases.size(); ++i) {
    bool verify_all = !clean && i + 1 == bases.size();
    DEPOT_TRY(auto segment,
              Segment::open(fs_, dir, bases[i], options_.config.index_interval_bytes, verify_all));
    recovered_truncated_bytes_ += segment->truncated_bytes();
    segments_.emplace(bases[i], std::move(segment));
  }
  active_ = segments_.rbegin()->second;
  active_->set_preallocation(options_.config.preallocate_bytes);
  next_offset_ = active_->next_offset();
  if (!active_->empty()) active_since_ms_ = options_.clock();
  // What survived recovery may sit only in the page cache (a process crash, not a power loss):
  // sync it once so that everything readable now is durable.
  DEPOT_TRY(active_->sync());
  durable_offset_ = next_offset_ - 1;
  if (recovered_truncated_bytes_ > 0) {
    spdlog::warn("log {}: recovered after an unclean shutdown; cut {} bytes of torn tail",
                 dir.string(), recovered_truncated_bytes_);
  }
  return success();
}

Result<AppendInfo> Log::append(std::span<std::byte> batch) {
  if (batch.size() > options_.config.max_batch_bytes) return errc::batch_too_large;
  // CRC and shape are checked before taking the lock, so appenders check in parallel.
  DEPOT_TRY(BatchHeader header, validate_batch(batch));
  return append_checked(batch, header);
}

Result<AppendInfo> Log::append_checked(std::span<std::byte> batch, BatchHeader header) {
  if (batch.size() > options_.config.max_batch_bytes) return errc::batch_too_large;
  if (header.size_bytes() != batch.size()) return errc::bad_batch_length;

  std::lock_guard lock(mutex_);
  if (closed_) return errc::log_closed;
  if (failure_) return errc::log_failed;
  const int64_t base = next_offset_;
  const int64_t last = base + header.last_offset_delta;
  const LogConfig& cfg = options_.config;
  if (!active_->empty()) {
    const uint64_t new_size = active_->size() + batch.size();
    const bool too_big = new_size > cfg.segment_bytes || new_size > UINT32_MAX;
    const bool too_old = options_.clock() - active_since_ms_ >= cfg.segment_ms;
    const bool offsets_overflow = last - active_->base_offset() > int64_t{UINT32_MAX};
    if (too_big || too_old || offsets_overflow) DEPOT_TRY(roll_locked());
  }
  set_base_offset(batch, base);
  header.base_offset = base;
  if (auto written = active_->append(batch, header); !written) {
    if (written.error() == errc::log_failed) failure_ = written.error();
    return written.error();
  }
  if (active_since_ms_ < 0) active_since_ms_ = options_.clock();
  next_offset_ = last + 1;
  return AppendInfo{base, last};
}

void Log::when_durable(int64_t offset, DurableCallback done) {
  std::error_code result;
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    if (failure_) {
      result = errc::log_failed;
    } else if (options_.sync->policy().mode == FsyncMode::always && offset > durable_offset_) {
      waiters_.emplace(offset, std::move(done));
      if (gathering_) waiter_arrived_.notify_one();
      if (!sync_pending_) schedule = sync_pending_ = true;
      done = nullptr;
    }
  }
  if (done) done(result);
  if (schedule) options_.sync->schedule(shared_from_this());
}

Result<AppendInfo> Log::append_and_wait(std::span<std::byte> batch) {
  DEPOT_TRY(AppendInfo info, append(batch));
  std::promise<std::error_code> durable;
  auto future = durable.get_future();
  when_durable(info.last_offset, [&durable](std::error_code ec) { durable.set_value(ec); });
  if (std::error_code ec = future.get()) return ec;
  return info;
}

std::vector<Log::DurableCallback> Log::take_waiters_locked(int64_t up_to, size_t* appends) {
  std::vector<DurableCallback> done;
  auto end = waiters_.upper_bound(up_to);
  size_t distinct = 0;
  for (auto it = waiters_.begin(); it != end; ++it) {
    if (it == waiters_.begin() || std::prev(it)->first != it->first) ++distinct;
    done.push_back(std::move(it->second));
  }
  waiters_.erase(waiters_.begin(), end);
  if (appends != nullptr) *appends = distinct;
  return done;
}

Log::Completions Log::sync(bool from_service) {
  if (from_service) gather_appenders();
  std::shared_ptr<File> file;
  int64_t target;
  {
    std::lock_guard lock(mutex_);
    if (!active_) {
      // Removed (Log::remove) after a sync was queued: nothing is left to sync or to wait.
      if (from_service) sync_pending_ = false;
      return {};
    }
    target = next_offset_ - 1;
    file = active_->file();  // earlier segments were synced when they were rolled
  }
  auto synced = file->datasync();

  Completions done;
  bool again = false;
  {
    std::lock_guard lock(mutex_);
    if (from_service) sync_pending_ = false;
    if (!synced && !failure_) {
      failure_ = synced.error();
      spdlog::error("log {}: fdatasync failed ({}); refusing further writes", options_.dir.string(),
                    synced.error().message());
    }
    if (failure_) {
      done.result = errc::log_failed;
      done.callbacks = take_waiters_locked(INT64_MAX);
    } else {
      durable_offset_ = std::max(durable_offset_, target);
      done.callbacks = take_waiters_locked(durable_offset_, &last_sync_group_);
      if (!waiters_.empty() && !sync_pending_) again = sync_pending_ = true;
    }
  }
  if (again) options_.sync->schedule(shared_from_this());
  return done;
}

void Log::gather_appenders() {
  // Appenders completed by the previous sync come back a few microseconds apart; a sync started
  // as soon as the first one returns covers only a few. When the last sync completed a group,
  // wait until their appends stop arriving (no new waiter for kQuiet, at most kMaxWait) so one
  // fdatasync covers the whole wave. A lone appender waits for nothing. The sync thread sleeps
  // while it waits: spinning would take the CPU the appenders need to arrive.
  constexpr auto kQuiet = std::chrono::microseconds(40);
  constexpr auto kMaxWait = std::chrono::microseconds(1000);
  std::unique_lock lock(mutex_);
  // Appends, not callbacks: one append may be waited for by several (a reply, a wake-up).
  const bool one_append = waiters_.empty() || waiters_.begin()->first == waiters_.rbegin()->first;
  if (last_sync_group_ <= 1 && one_append) return;
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  gathering_ = true;
  for (size_t seen = waiters_.size();; seen = waiters_.size()) {
    auto quiet_until = std::min(deadline, std::chrono::steady_clock::now() + kQuiet);
    if (!waiter_arrived_.wait_until(lock, quiet_until, [&] { return waiters_.size() != seen; }) ||
        std::chrono::steady_clock::now() >= deadline) {
      break;
    }
  }
  gathering_ = false;
}

bool Log::has_unsynced_writes() const {
  std::lock_guard lock(mutex_);
  return !closed_ && next_offset_ - 1 > durable_offset_;
}

Result<void> Log::flush() {
  sync_and_complete(false);
  std::lock_guard lock(mutex_);
  if (failure_) return errc::log_failed;
  return success();
}

Result<void> Log::roll() {
  std::lock_guard lock(mutex_);
  if (closed_) return errc::log_closed;
  return roll_locked();
}

Result<void> Log::roll_locked() {
  if (active_->empty()) return success();
  active_->set_preallocation(0);
  if (auto released = active_->release_preallocation(); !released) {
    failure_ = released.error();
    return errc::log_failed;
  }
  if (options_.sync->policy().mode != FsyncMode::never) {
    // Waiters are completed by the active segment's sync, so the old one must be durable first.
    if (auto synced = active_->sync(); !synced) {
      failure_ = synced.error();
      return errc::log_failed;
    }
    (void)active_->sync_index();  // advisory: a stale index is rebuilt at open
  }
  DEPOT_TRY(auto created,
            Segment::create(fs_, options_.dir, next_offset_, options_.config.index_interval_bytes));
  DEPOT_TRY(fs_.sync_directory(options_.dir));
  active_ = std::shared_ptr<Segment>(std::move(created));
  active_->set_preallocation(options_.config.preallocate_bytes);
  active_since_ms_ = -1;
  segments_.emplace(next_offset_, active_);
  return success();
}

Result<Log::ReadStart> Log::locate_locked(int64_t offset, ReadResult& result) const {
  result.log_start_offset = segments_.begin()->first;
  result.log_end_offset = next_offset_;
  result.next_offset = offset;
  if (offset < result.log_start_offset || offset > next_offset_) return errc::offset_out_of_range;
  // Compaction can leave a segment with no batch at or after `offset`: move on to the next.
  for (auto it = std::prev(segments_.upper_bound(offset)); it != segments_.end(); ++it) {
    DEPOT_TRY(uint64_t position, it->second->position_of(offset));
    if (position < it->second->size()) return ReadStart{it->second, position};
  }
  result.next_offset = next_offset_;
  return ReadStart{};
}

Result<ReadResult> Log::read(int64_t offset, size_t max_bytes, int64_t end_offset) const {
  ReadResult result;
  ReadStart start;
  uint64_t end = 0;
  {
    std::lock_guard lock(mutex_);
    DEPOT_TRY(start, locate_locked(offset, result));
    if (!start.segment) return result;
    end = start.segment->size();
  }
  // The bytes in [position, end) are immutable now, so they are read without the lock.
  const uint64_t position = start.position;
  File& file = *start.segment->file();
  size_t want = static_cast<size_t>(
      std::min<uint64_t>(end - position, std::max(max_bytes, kBatchHeaderSize)));
  result.data.resize(want);
  DEPOT_TRY(size_t got, file.read_at(position, result.data));
  result.data.resize(got);
  auto first = parse_batch_header(result.data);
  if (!first) return first.error();
  if (first.value().size_bytes() > result.data.size()) {
    result.data.resize(first.value().size_bytes());
    DEPOT_TRY(got, file.read_at(position, result.data));
    if (got < result.data.size()) return errc::truncated_batch;
  }
  // Keep whole batches only.
  size_t kept = 0;
  while (kept + kBatchHeaderSize <= result.data.size()) {
    auto h = parse_batch_header(ByteSpan(result.data).subspan(kept));
    if (!h || kept + h.value().size_bytes() > result.data.size()) break;
    if (h.value().last_offset() >= end_offset) break;
    kept += h.value().size_bytes();
    result.next_offset = h.value().last_offset() + 1;
  }
  result.data.resize(kept);
  return result;
}

Result<ReadResult> Log::read_for_sending(int64_t offset, size_t max_bytes,
                                         int64_t end_offset) const {
  ReadResult result;
  ReadStart start;
  Segment::BatchRun run;
  {
    std::lock_guard lock(mutex_);
    DEPOT_TRY(start, locate_locked(offset, result));
    if (!start.segment) return result;
    const Segment& segment = *start.segment;
    // Batches reaching end_offset are left out: it starts a batch (the durable end does).
    uint64_t hard_limit = segment.size();
    if (end_offset < segment.next_offset()) {
      DEPOT_TRY(hard_limit, segment.position_of(end_offset));
    }
    if (hard_limit <= start.position) return result;
    const uint64_t soft_limit = start.position + std::max<uint64_t>(max_bytes, 1);
    DEPOT_TRY(run, segment.batches_within(start.position, std::min(hard_limit, soft_limit)));
  }
  if (run.end <= start.position) return result;  // the walk met no whole batch
  result.next_offset = run.next_offset;
  const std::shared_ptr<File>& file = start.segment->file();
  const uint64_t size = run.end - start.position;
  if (size >= kSendFromFileMin && file->native_handle() >= 0) {
    result.file = FileRange{file, file->native_handle(), start.position, size};
    return result;
  }
  result.data.resize(static_cast<size_t>(size));
  DEPOT_TRY(size_t got, file->read_at(start.position, result.data));
  if (got < size) return errc::truncated_batch;
  return result;
}

Result<std::optional<TimestampedOffset>> Log::offset_for_timestamp(int64_t timestamp) const {
  using Found = std::optional<TimestampedOffset>;
  std::shared_ptr<Segment> segment;
  uint64_t position = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, candidate] : segments_) {
      if (candidate->max_timestamp() < timestamp) continue;
      DEPOT_TRY(position, candidate->position_for_timestamp(timestamp));
      if (position < candidate->size()) {
        segment = candidate;
        break;
      }
    }
  }
  if (!segment) return Found{};
  Bytes head(kBatchHeaderSize);
  DEPOT_TRY(size_t got, segment->file()->read_at(position, head));
  DEPOT_TRY(BatchHeader h, parse_batch_header(ByteSpan(head).first(got)));
  if (h.compression() != Compression::none) return Found{{h.base_offset, h.max_timestamp}};
  Bytes batch(h.size_bytes());
  DEPOT_TRY(got, segment->file()->read_at(position, batch));
  if (got < batch.size()) return errc::truncated_batch;
  DEPOT_TRY(auto records, decode_records(batch));
  for (const auto& record : records) {
    if (record.timestamp >= timestamp) return Found{{record.offset, record.timestamp}};
  }
  return Found{{h.base_offset, h.max_timestamp}};
}

Result<std::optional<TimestampedOffset>> Log::max_timestamp() const {
  using Found = std::optional<TimestampedOffset>;
  std::shared_ptr<Segment> segment;
  uint64_t end = 0;
  int64_t largest = -1;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, candidate] : segments_) {
      if (candidate->size() == 0) continue;
      if (!segment || candidate->max_timestamp() > largest) {
        segment = candidate;
        largest = candidate->max_timestamp();
        end = candidate->size();
      }
    }
  }
  if (!segment) return Found{};
  // Walk the segment's batch headers to the first batch holding its largest timestamp.
  Bytes head(kBatchHeaderSize);
  for (uint64_t position = 0; position < end;) {
    DEPOT_TRY(size_t got, segment->file()->read_at(position, head));
    DEPOT_TRY(BatchHeader h, parse_batch_header(ByteSpan(head).first(got)));
    if (h.max_timestamp == largest) {
      if (h.compression() != Compression::none) return Found{{h.last_offset(), h.max_timestamp}};
      Bytes batch(h.size_bytes());
      DEPOT_TRY(got, segment->file()->read_at(position, batch));
      if (got < batch.size()) return errc::truncated_batch;
      DEPOT_TRY(auto records, decode_records(batch));
      for (const auto& record : records) {
        if (record.timestamp == h.max_timestamp) return Found{{record.offset, record.timestamp}};
      }
      return Found{{h.last_offset(), h.max_timestamp}};
    }
    position += h.size_bytes();
  }
  return Found{};
}

int64_t Log::log_start_offset() const {
  std::lock_guard lock(mutex_);
  return segments_.begin()->first;
}

int64_t Log::log_end_offset() const {
  std::lock_guard lock(mutex_);
  return next_offset_;
}

int64_t Log::durable_offset() const {
  std::lock_guard lock(mutex_);
  return durable_offset_;
}

int64_t Log::readable_end() const {
  std::lock_guard lock(mutex_);
  return options_.sync->policy().mode == FsyncMode::always ? durable_offset_ + 1 : next_offset_;
}

uint64_t Log::size_bytes() const {
  std::lock_guard lock(mutex_);
  uint64_t total = 0;
  for (const auto& [base, segment] : segments_)
    total += segment->size();
  return total;
}

size_t Log::segment_count() const {
  std::lock_guard lock(mutex_);
  return segments_.size();
}

Result<void> Log::truncate(int64_t offset) {
  std::lock_guard maintenance(maintenance_mutex_);
  std::vector<DurableCallback> abandoned;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return errc::log_closed;
    if (offset >= next_offset_) return success();
    offset = std::max(offset, segments_.begin()->first);
    while (segments_.size() > 1 && segments_.rbegin()->first >= offset) {
      DEPOT_TRY(segments_.rbegin()->second->remove_files());
      segments_.erase(std::prev(segments_.end()));
    }
    if (active_ != segments_.rbegin()->second) active_since_ms_ = options_.clock();
    active_ = segments_.rbegin()->second;
    active_->set_preallocation(options_.config.preallocate_bytes);
    DEPOT_TRY(uint64_t position, active_->position_of(offset));
    DEPOT_TRY(active_->truncate_to(position));
    DEPOT_TRY(active_->sync());
    DEPOT_TRY(fs_.sync_directory(options_.dir));
    next_offset_ = active_->next_offset();
    durable_offset_ = std::min(durable_offset_, next_offset_ - 1);
    // Appends that were cut away will never become durable.
    for (auto it = waiters_.lower_bound(next_offset_); it != waiters_.end(); ++it) {
      abandoned.push_back(std::move(it->second));
    }
    waiters_.erase(waiters_.lower_bound(next_offset_), waiters_.end());
  }
  for (auto& callback : abandoned)
    callback(errc::offset_out_of_range);
  return success();
}

void Log::set_limits(int64_t retention_ms, int64_t retention_bytes, uint64_t segment_bytes) {
  // Not under maintenance_mutex_: a compaction may hold it for long, and this runs on a
  // connection's thread. enforce_retention() reads the limits under mutex_.
  std::lock_guard lock(mutex_);
  options_.config.retention_ms = retention_ms;
  options_.config.retention_bytes = retention_bytes;
  options_.config.segment_bytes = segment_bytes;
}

Result<size_t> Log::enforce_retention() {
  std::lock_guard maintenance(maintenance_mutex_);
  LogConfig cfg;
  {
    std::lock_guard lock(mutex_);
    cfg = options_.config;
  }
  if (cfg.retention_ms < 0 && cfg.retention_bytes < 0) return size_t{0};
  const int64_t now = options_.clock();
  auto expired = [&](const Segment& s) {
    return cfg.retention_ms >= 0 && s.max_timestamp() < now - cfg.retention_ms;
  };
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return errc::log_closed;
    // An expired active segment is rolled so that it can go too (the log keeps an empty one).
    if (!active_->empty() && expired(*active_)) DEPOT_TRY(roll_locked());
    uint64_t total = 0;
    for (const auto& [base, segment] : segments_)
      total += segment->size();
    for (auto it = segments_.begin(); it != segments_.end() && it->second != active_;) {
      const Segment& s = *it->second;
      bool over_size = cfg.retention_bytes >= 0 &&
                       total - s.size() >= static_cast<uint64_t>(cfg.retention_bytes);
      if (!expired(s) && !over_size) break;
      total -= s.size();
      doomed.push_back(it->second);
      it = segments_.erase(it);
    }
  }
  return remove_segments(doomed);
}

Result<size_t> Log::remove_segments(const std::vector<std::shared_ptr<Segment>>& doomed) {
  for (const auto& segment : doomed)
    DEPOT_TRY(segment->remove_files());
  if (!doomed.empty()) DEPOT_TRY(fs_.sync_directory(options_.dir));
  return doomed.size();
}

Result<size_t> Log::delete_before(int64_t offset) {
  std::lock_guard maintenance(maintenance_mutex_);
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return errc::log_closed;
    for (auto it = segments_.begin(); it != segments_.end() && it->second != active_;) {
      auto next = std::next(it);
      if (next == segments_.end() || next->first > offset) break;
      doomed.push_back(it->second);
      it = segments_.erase(it);
    }
  }
  return remove_segments(doomed);
}

Result<void> Log::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return success();
    // A cleanly closed log's files end at their last batch.
    if (!failure_) {
      active_->set_preallocation(0);
      if (auto released = active_->release_preallocation(); !released) failure_ = released.error();
    }
  }
  sync_and_complete(false);
  std::vector<DurableCallback> abandoned;
  std::error_code failure;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    failure = failure_;
    abandoned = take_waiters_locked(INT64_MAX);
  }
  for (auto& callback : abandoned)
    callback(errc::log_closed);
  options_.sync->unregister_log(this);
  if (failure) return errc::log_failed;
  for (const auto& [base, segment] : segments_)
    DEPOT_TRY(segment->sync_index());
  DEPOT_TRY(auto marker,
            fs_.open(options_.dir / kCleanShutdownMarker, OpenMode::read_write_create));
  DEPOT_TRY(marker->datasync());
  return fs_.sync_directory(options_.dir);
}

Result<void> Log::remove() {
  // Not while retention or compaction works in the directory.
  std::lock_guard maintenance(maintenance_mutex_);
  DEPOT_TRY(close());
  std::lock_guard lock(mutex_);
  segments_.clear();
  active_.reset();
  return fs_.remove_all(options_.dir);
}

Result<void> for_each_record(const Log& log, int64_t from,
                             const std::function<void(const RecordView&)>& each) {
  int64_t offset = std::max(from, log.log_start_offset());
  const int64_t end = log.log_end_offset();
  while (offset < end) {
    DEPOT_TRY(auto chunk, log.read(offset, 1 << 20));
    if (chunk.data.empty()) break;
    ByteSpan data = chunk.data;
    while (!data.empty()) {
      DEPOT_TRY(auto header, parse_batch_header(data));
      DEPOT_TRY(auto records, decode_records(data.first(header.size_bytes())));
      for (const auto& record : records)
        each(record);
      data = data.subspan(header.size_bytes());
    }
    offset = chunk.next_offset;
  }
  return success();
}

}  // namespace depot::storage
