#include "jobs/store.h"

#include <algorithm>
#include <chrono>
#include <memory_resource>
#include <random>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "jobs/errc.h"
#include "storage/crc32c.h"
#include "storage/record_batch.h"

namespace depot::jobs {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kJournalSegmentBytes = 64ull << 20;

UnixNanos system_now() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

// Compaction is considered once the journal holds this many records, and runs when they are
// more than kCompactionRatio times the live ones.
constexpr int64_t kCompactionMinRecords = 100'000;
constexpr int64_t kCompactionRatio = 4;

std::filesystem::path generation_path(const std::filesystem::path& dir, uint64_t generation) {
  return dir / fmt::format("journal-{:06d}", generation);
}

// "journal-000042" -> 42
std::optional<uint64_t> parse_generation(std::string_view name) {
  constexpr std::string_view kPrefix = "journal-";
  if (!name.starts_with(kPrefix) || name.size() == kPrefix.size()) return std::nullopt;
  uint64_t generation = 0;
  for (char c : name.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    generation = generation * 10 + static_cast<uint64_t>(c - '0');
  }
  return generation;
}

bool all_queues(std::span<const std::string> names) {
  return names.size() == 1 && names.front() == "*";
}

// A periodic job's identity: its schedule and a checksum of its job definition as configured, so
// that editing an entry makes it a new one. Built from the fields themselves, not from an
// encoding that may change between versions. Readable in a dump of the journal.
std::string periodic_key(const PeriodicJob& entry) {
  const Job& job = entry.job;
  const std::string definition =
      fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}", job.jobtype, job.queue, job.args, job.custom,
                  job.retry, job.reserve_for, job.backtrace.value_or(-1));
  return fmt::format("cron {} {:08x}", entry.schedule.text(),
                     storage::crc32c(as_bytes(definition)));
}

}  // namespace

std::string unique_key(const Job& job) {
  std::string key;
  key.reserve(job.jobtype.size() + job.args.size() + job.queue.size() + 2);
  key.append(job.jobtype).push_back('\0');
  key.append(job.args).push_back('\0');
  key.append(job.queue);
  return key;
}

int64_t retry_delay_seconds(int32_t retry_count, int random_below_30) {
  int64_t count = retry_count;
  return count * count * count * count + 15 + int64_t{random_below_30} * (count + 1);
}

JobStore::JobStore(StoreOptions options)
    : options_(std::move(options)), jid_random_(std::random_device{}()) {
  if (!options_.clock) options_.clock = system_now;
  for (PeriodicJob& entry : std::exchange(options_.periodic, {})) {
    std::string key = periodic_key(entry);
    periodic_.push_back(Periodic{std::move(entry), std::move(key)});
  }
  if (!options_.random_below) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random_below = [rng](int n) {
      return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(*rng));
    };
  }
}

JobStore::~JobStore() {
  (void)close();
}

Result<std::shared_ptr<storage::Log>> JobStore::open_journal(const std::filesystem::path& path) {
  storage::LogConfig config;
  config.segment_bytes = kJournalSegmentBytes;
  auto clock = options_.clock;
  return storage::Log::open(
      {path, config, options_.sync, nullptr, [clock] { return clock() / 1'000'000; }});
}

Result<std::unique_ptr<JobStore>> JobStore::open(StoreOptions options) {
  std::unique_ptr<JobStore> store(new JobStore(std::move(options)));
  const auto& dir = store->options_.dir;
  storage::FileSystem& fs = storage::posix_file_system();
  DEPOT_TRY(fs.create_directories(dir));
  // The newest complete generation is the journal. A ".tmp" one is a compaction that never
  // finished; older ones were replaced by a compaction that did.
  DEPOT_TRY(auto names, fs.list(dir));
  std::vector<uint64_t> generations;
  for (const auto& name : names) {
    if (name.ends_with(".tmp")) {
      DEPOT_TRY(fs.remove_all(dir / name));
    } else if (auto generation = parse_generation(name)) {
      generations.push_back(*generation);
    }
  }
  std::sort(generations.begin(), generations.end());
  if (!generations.empty()) store->generation_ = generations.back();
  for (uint64_t old : generations) {
    if (old != store->generation_) DEPOT_TRY(fs.remove_all(generation_path(dir, old)));
  }
  DEPOT_TRY(store->journal_, store->open_journal(generation_path(dir, store->generation_)));
  DEPOT_TRY(store->replay());
  for (const Periodic& p : store->periodic_) {
    spdlog::info("jobs: periodic job {} on queue {} at \"{}\" (UTC)", p.entry.job.jobtype,
                 p.entry.job.queue, p.entry.schedule.text());
  }
  return store;
}

Result<JobStore::CompactionStats> JobStore::compact() {
  std::lock_guard lock(mutex_);
  return compact_locked();
}

Result<JobStore::CompactionStats> JobStore::compact_locked() {
  CompactionStats stats;
  stats.records_before = journal_->log_end_offset() - journal_->log_start_offset();
  storage::FileSystem& fs = storage::posix_file_system();
  const uint64_t next = generation_ + 1;
  const auto final_path = generation_path(options_.dir, next);
  const auto tmp_path = std::filesystem::path(final_path.string() + ".tmp");
  DEPOT_TRY(fs.remove_all(tmp_path));
  DEPOT_TRY(auto fresh, open_journal(tmp_path));

  auto copy = [&](const std::string& key, const JournalRecord& record) -> Result<int64_t> {
    storage::RecordBatchBuilder builder;
    Bytes value = encode_record(record);
    builder.add(as_bytes(key), ByteSpan(value), options_.clock() / 1'000'000);
    Bytes batch = builder.build();
    DEPOT_TRY(auto appended, fresh->append(batch));
    return appended.base_offset;
  };
  // Same jobs, same order, new offsets.
  std::map<std::string, QueueState, std::less<>> queues;
  for (const auto& [name, queue] : queues_) {
    QueueState& copied = queues[name];
    copied.paused = queue.paused;
    if (queue.paused) {
      DEPOT_TRY(copy({}, JournalRecord{RecordKind::queue_paused, {}, name, 0, 0}));
    }
    for (int64_t offset : queue.ready) {
      DEPOT_TRY(JournalRecord record, read_locked(offset));
      DEPOT_TRY(int64_t moved, copy(record.job.jid, record));
      copied.ready.push_back(moved);
    }
  }
  TimedSet scheduled, retries, dead;
  for (auto [from, to] : {std::pair{&scheduled_, &scheduled}, std::pair{&retries_, &retries},
                          std::pair{&dead_, &dead}}) {
    for (const auto& [due, offset] : *from) {
      DEPOT_TRY(JournalRecord record, read_locked(offset));
      DEPOT_TRY(int64_t moved, copy(record.job.jid, record));
      to->emplace(due, moved);
    }
  }
  for (const auto& [jid, r] : working_) {
    DEPOT_TRY(
        copy(jid, JournalRecord{RecordKind::working, r.job, r.wid, r.reserved_at, r.expires_at}));
  }
  // Entries no longer configured are forgotten; should one come back, it starts afresh.
  std::map<std::string, UnixNanos> fired;
  for (const Periodic& p : periodic_) {
    auto it = periodic_fired_.find(p.key);
    if (it == periodic_fired_.end() || fired.contains(p.key)) continue;
    DEPOT_TRY(copy(p.key, JournalRecord{RecordKind::periodic_fired, {}, {}, it->second, 0}));
    fired.insert(*it);
  }
  stats.records_after = fresh->log_end_offset();
  DEPOT_TRY(fresh->close());
  fresh.reset();
  // The rename is the switch: before it the old generation is the journal, after it the new one.
  DEPOT_TRY(fs.rename(tmp_path, final_path));
  DEPOT_TRY(fs.sync_directory(options_.dir));
  DEPOT_TRY(auto reopened, open_journal(final_path));
  auto old = std::exchange(journal_, std::move(reopened));
  generation_ = next;
  queues_ = std::move(queues);
  scheduled_ = std::move(scheduled);
  retries_ = std::move(retries);
  dead_ = std::move(dead);
  periodic_fired_ = std::move(fired);
  // Offsets name records of the old generation.
  recent_jobs_.clear();
  recent_order_.clear();
  recent_bytes_ = 0;
  if (auto removed = old->remove(); !removed) {
    spdlog::warn("jobs: could not delete the old journal: {}", removed.error().message());
  }
  spdlog::info("jobs: compacted the journal from {} to {} records", stats.records_before,
               stats.records_after);
  return stats;
}

Result<void> JobStore::replay() {
  // The newest record of each jid is its state. Kept small while the journal is read: the job
  // itself stays in the journal unless it is reserved, and its queue is an index into
  // queue_names. The per-jid maps live in an arena of large blocks (mmapped by malloc) that goes
  // back to the OS in one piece when replay ends; from the general heap, their millions of small
  // nodes would stay as fragments under the queues built after them.
  struct Latest {
    int64_t offset;
    UnixNanos due;
    uint32_t queue;
    RecordKind kind;
  };
  std::pmr::monotonic_buffer_resource arena(1 << 20);
  std::pmr::unordered_map<std::pmr::string, Latest> latest(&arena);
  latest.reserve(static_cast<size_t>(journal_->log_end_offset() - journal_->log_start_offset()));
  // jid -> unique key, locked until
  std::pmr::unordered_map<std::pmr::string, std::pair<std::pmr::string, UnixNanos>> locks(&arena);
  std::vector<std::string> queue_names;
  auto queue_index = [&queue_names](const std::string& name) {
    auto it = std::find(queue_names.begin(), queue_names.end(), name);
    if (it == queue_names.end()) it = queue_names.insert(queue_names.end(), name);
    return static_cast<uint32_t>(it - queue_names.begin());
  };
  std::map<std::string, bool, std::less<>> paused;
  size_t records = 0;

  int64_t offset = journal_->log_start_offset();
  const int64_t end = journal_->log_end_offset();
  while (offset < end) {
    DEPOT_TRY(auto chunk, journal_->read(offset, 1 << 20));
    if (chunk.data.empty()) break;
    ByteSpan data = chunk.data;
    while (!data.empty()) {
      DEPOT_TRY(auto header, storage::parse_batch_header(data));
      DEPOT_TRY(auto batch_records, storage::decode_records(data.first(header.size_bytes())));
      for (const auto& r : batch_records) {
        ++records;
        std::pmr::string jid(r.key ? as_chars(*r.key) : std::string_view(), &arena);
        if (!r.value) {  // tombstone: the job is finished or discarded
          latest.erase(jid);
          locks.erase(jid);
          continue;
        }
        DEPOT_TRY(JournalRecord rec, decode_record(*r.value));
        switch (rec.kind) {
          case RecordKind::flushed:
            latest.clear();
            locks.clear();
            paused.clear();
            continue;
          case RecordKind::queue_removed:
            std::erase_if(latest, [&](const auto& entry) {
              return entry.second.kind == RecordKind::enqueued &&
                     queue_names[entry.second.queue] == rec.name;
            });
            paused.erase(rec.name);
            continue;
          case RecordKind::queue_paused:
            paused[rec.name] = true;
            continue;
          case RecordKind::queue_resumed:
            paused.erase(rec.name);
            continue;
          case RecordKind::periodic_fired: {
            // Not cleared by FLUSH: it is the schedule's state, not a job.
            UnixNanos& fired = periodic_fired_[std::string(jid)];
            fired = std::max(fired, rec.since);
            continue;
          }
          default:
            break;
        }
        UnixNanos due = rec.kind == RecordKind::scheduled ? rec.job.at
                        : rec.kind == RecordKind::retry   ? rec.job.failure->next_at
                                                          : rec.since;
        if (rec.job.unique_for) {
          locks[jid] = {std::pmr::string(unique_key(rec.job), &arena),
                        rec.job.created_at + *rec.job.unique_for * kNanosPerSecond};
        }
        latest[jid] = Latest{r.offset, due, queue_index(rec.job.queue), rec.kind};
      }
      data = data.subspan(header.size_bytes());
    }
    offset = chunk.next_offset;
  }

  for (auto& [jid, entry] : latest) {
    switch (entry.kind) {
      case RecordKind::enqueued:
        queues_[queue_names[entry.queue]].ready.push_back(entry.offset);
        break;
      case RecordKind::scheduled:
        scheduled_.emplace(entry.due, entry.offset);
        break;
      case RecordKind::retry:
        retries_.emplace(entry.due, entry.offset);
        break;
      case RecordKind::dead:
        dead_.emplace(entry.due, entry.offset);
        break;
      case RecordKind::working: {
        DEPOT_TRY(JournalRecord rec, read_locked(entry.offset));
        working_[std::string(jid)] =
            Reservation{std::move(rec.job), rec.name, rec.since, rec.until, {}, 0};
        break;
      }
      default:
        break;
    }
  }
  for (auto& [name, queue] : queues_)
    std::sort(queue.ready.begin(), queue.ready.end());
  for (const auto& [name, flag] : paused)
    queues_[name].paused = flag;
  for (auto& [jid, lock] : locks)
    unique_locks_[std::string(lock.first)] = UniqueLock{std::string(jid), lock.second};
  if (records > 0) {
    size_t waiting = 0;
    for (const auto& [name, queue] : queues_)
      waiting += queue.ready.size();
    spdlog::info(
        "jobs: replayed {} journal records: {} waiting, {} scheduled, {} retries, {} dead, "
        "{} reserved",
        records, waiting, scheduled_.size(), retries_.size(), dead_.size(), working_.size());
  }
  return success();
}

Result<int64_t> JobStore::append_locked(const std::string& key,
                                        const std::optional<JournalRecord>& record, Done durable,
                                        const KeyedRecord* also) {
  storage::RecordBatchBuilder builder;
  std::optional<Bytes> value;
  if (record) value = encode_record(*record);
  std::optional<ByteSpan> value_span;
  if (value) value_span = ByteSpan(*value);
  const int64_t timestamp_ms = options_.clock() / 1'000'000;
  builder.add(as_bytes(key), value_span, timestamp_ms);
  if (also) builder.add(as_bytes(also->key), ByteSpan(encode_record(also->record)), timestamp_ms);
  Bytes batch = builder.build();
  DEPOT_TRY(auto appended, journal_->append(batch));
  if (durable) journal_->when_durable(appended.last_offset, std::move(durable));
  return appended.base_offset;
}

Result<JournalRecord> JobStore::read_locked(int64_t offset) const {
  DEPOT_TRY(auto chunk, journal_->read(offset, 1));
  DEPOT_TRY(auto records, storage::decode_records(chunk.data));
  for (const auto& r : records) {
    if (r.offset == offset && r.value) return decode_record(*r.value);
  }
  return errc::corrupt_journal;
}

namespace {

constexpr size_t kRecentJobsBytes = 8 << 20;

// What a job costs in recent_jobs_, roughly: its variable-length fields and the fixed part.
size_t recent_cost(const Job& job) {
  return job.jid.size() + job.jobtype.size() + job.queue.size() + job.args.size() +
         job.custom.size() + sizeof(Job) + 64;
}

}  // namespace

void JobStore::remember_recent_locked(int64_t offset, const Job& job) {
  recent_bytes_ += recent_cost(job);
  recent_jobs_.emplace(offset, job);
  recent_order_.push_back(offset);
  // Drop the oldest while over budget; offsets already taken cost nothing but a slot, and are
  // dropped too once there are many.
  while (!recent_order_.empty() &&
         (recent_bytes_ > kRecentJobsBytes || recent_order_.size() > 4 * recent_jobs_.size() + 64 ||
          !recent_jobs_.contains(recent_order_.front()))) {
    if (auto it = recent_jobs_.find(recent_order_.front()); it != recent_jobs_.end()) {
      recent_bytes_ -= recent_cost(it->second);
      recent_jobs_.erase(it);
    }
    recent_order_.pop_front();
  }
}

Result<Job> JobStore::take_waiting_locked(int64_t offset) {
  if (auto it = recent_jobs_.find(offset); it != recent_jobs_.end()) {
    Job job = std::move(it->second);
    recent_bytes_ -= recent_cost(job);
    recent_jobs_.erase(it);
    return job;
  }
  DEPOT_TRY(JournalRecord record, read_locked(offset));
  return std::move(record.job);
}

Result<void> JobStore::enqueue_locked(Job job, UnixNanos now, Done durable,
                                      std::vector<std::string>& woken, const KeyedRecord* also) {
  job.enqueued_at = now;
  JournalRecord record{RecordKind::enqueued, job, {}, 0, 0};
  DEPOT_TRY(int64_t offset, append_locked(job.jid, record, std::move(durable), also));
  queues_[job.queue].ready.push_back(offset);
  remember_recent_locked(offset, job);
  woken.push_back(job.queue);
  return success();
}

Result<void> JobStore::push(Job job, Done durable) {
  std::vector<std::string> woken;
  {
    std::lock_guard lock(mutex_);
    DEPOT_TRY(push_locked(std::move(job), options_.clock(), std::move(durable), woken, nullptr));
  }
  notify(woken);
  return success();
}

Result<void> JobStore::push_locked(Job job, UnixNanos now, Done durable,
                                   std::vector<std::string>& woken, const KeyedRecord* also) {
  if (job.created_at == 0) job.created_at = now;
  if (job.expires_at != 0 && job.expires_at <= now) return errc::expired;
  // The jid of a reserved job: it is being re-enqueued (see push()). Its lock is its own.
  auto reserved = working_.find(job.jid);
  const bool repush = reserved != working_.end();
  if (job.unique_for) {
    auto it = unique_locks_.find(unique_key(job));
    const bool own = repush && it != unique_locks_.end() && it->second.jid == job.jid;
    if (it != unique_locks_.end() && it->second.until > now && !own) return errc::not_unique;
  }
  if (repush) release_unique_locked(reserved->second.job);
  if (job.unique_for) {
    unique_locks_[unique_key(job)] = UniqueLock{job.jid, now + *job.unique_for * kNanosPerSecond};
  }
  const std::string jid = repush ? job.jid : std::string();
  if (job.at > now) {
    JournalRecord record{RecordKind::scheduled, job, {}, 0, 0};
    DEPOT_TRY(int64_t offset, append_locked(job.jid, record, std::move(durable), also));
    scheduled_.emplace(job.at, offset);
  } else {
    DEPOT_TRY(enqueue_locked(std::move(job), now, std::move(durable), woken, also));
  }
  // The record just appended, keyed by the jid, supersedes the working one: on replay as here.
  if (repush) {
    working_.erase(jid);
    spdlog::debug("jobs: {} pushed again while reserved; its reservation ended", jid);
  }
  return success();
}

Result<void> JobStore::fire_periodic_locked(UnixNanos now, std::vector<std::string>& woken) {
  for (const Periodic& p : periodic_) {
    const auto due = p.entry.schedule.latest_at_or_before(now);
    if (!due) continue;
    auto last = periodic_fired_.find(p.key);
    if (last != periodic_fired_.end() && last->second >= *due) continue;
    const KeyedRecord fired{p.key, JournalRecord{RecordKind::periodic_fired, {}, {}, *due, 0}};
    if (last != periodic_fired_.end() && now - *due > kPeriodicCatchUpWindow) {
      // Down across the tick for longer than a restart takes: a daily 09:00 report does not run
      // at 17:30 after an outage. The tick is spent and the schedule resumes with the next one.
      DEPOT_TRY(append_locked(fired.key, fired.record, nullptr));
      spdlog::info(
          "jobs: periodic job {} ({}) missed its tick {} s ago while depot was down; "
          "skipped",
          p.entry.job.jobtype, p.entry.schedule.text(), (now - *due) / kNanosPerSecond);
    } else if (last == periodic_fired_.end()) {
      DEPOT_TRY(append_locked(fired.key, fired.record, nullptr));
      spdlog::debug("jobs: periodic job {} ({}) first seen; it fires from its next tick",
                    p.entry.job.jobtype, p.entry.schedule.text());
    } else {
      Job job = p.entry.job;
      job.jid = new_jid();
      job.created_at = now;
      const std::string jid = job.jid;
      auto pushed = push_locked(std::move(job), now, nullptr, woken, &fired);
      if (pushed) {
        spdlog::debug("jobs: enqueued periodic job {} ({}) as {}", p.entry.job.jobtype,
                      p.entry.schedule.text(), jid);
      } else if (pushed.error() == errc::not_unique || pushed.error() == errc::expired) {
        // The tick is spent either way: the job is refused as a client's push would be.
        spdlog::info("jobs: periodic job {} ({}) not enqueued: {}", p.entry.job.jobtype,
                     p.entry.schedule.text(), pushed.error().message());
        DEPOT_TRY(append_locked(fired.key, fired.record, nullptr));
      } else {
        return pushed.error();
      }
    }
    periodic_fired_[p.key] = *due;
  }
  return success();
}

// 24 lowercase hex digits, like the jids Faktory's clients make.
std::string JobStore::new_jid() {
  return fmt::format("{:016x}{:08x}", jid_random_(), static_cast<uint32_t>(jid_random_()));
}

Result<std::optional<Job>> JobStore::fetch(std::span<const std::string> queues,
                                           const std::string& wid) {
  std::lock_guard lock(mutex_);
  const UnixNanos now = options_.clock();
  for (const auto& name : queues) {
    auto it = queues_.find(name);
    if (it == queues_.end() || it->second.paused) continue;
    auto& ready = it->second.ready;
    while (!ready.empty()) {
      DEPOT_TRY(Job job, take_waiting_locked(ready.front()));
      ready.pop_front();
      if (job.expires_at != 0 && job.expires_at <= now) {
        DEPOT_TRY(append_locked(job.jid, std::nullopt, nullptr));
        release_unique_locked(job);
        continue;
      }
      const int32_t reserve =
          std::clamp(job.reserve_for, kMinReserveForSeconds, kMaxReserveForSeconds);
      Reservation reservation{job, wid, now, now + int64_t{reserve} * kNanosPerSecond, {}, 0};
      // Not waited for: if the reservation is lost in a crash the job is simply still waiting.
      JournalRecord working{RecordKind::working, job, wid, reservation.reserved_at,
                            reservation.expires_at};
      DEPOT_TRY(append_locked(job.jid, working, nullptr));
      working_[job.jid] = std::move(reservation);
      return std::optional<Job>(std::move(job));
    }
  }
  return std::optional<Job>{};
}

Result<void> JobStore::update_reserved(const std::string& jid, const std::string& wid,
                                       const std::function<Result<void>(Job&)>& edit,
                                       std::optional<Progress> progress, Done durable) {
  std::lock_guard lock(mutex_);
  auto it = working_.find(jid);
  if (it == working_.end()) return errc::job_not_found;
  Reservation& reservation = it->second;
  if (reservation.wid != wid) return errc::reserved_by_other;
  Job job = reservation.job;
  if (edit) DEPOT_TRY(edit(job));
  job.jid = jid;  // the record's key and the reservation's: not the edit's to change
  const UnixNanos now = options_.clock();
  const int32_t reserve = std::clamp(job.reserve_for, kMinReserveForSeconds, kMaxReserveForSeconds);
  const UnixNanos expires_at = now + int64_t{reserve} * kNanosPerSecond;
  JournalRecord working{RecordKind::working, job, wid, reservation.reserved_at, expires_at};
  DEPOT_TRY(append_locked(jid, working, std::move(durable)));
  const Job& old = reservation.job;
  if (job.unique_for != old.unique_for || unique_key(job) != unique_key(old)) {
    release_unique_locked(old);
    if (job.unique_for) {
      auto [lock_it, fresh] = unique_locks_.try_emplace(unique_key(job));
      if (fresh || lock_it->second.jid == jid || lock_it->second.until <= now) {
        lock_it->second = UniqueLock{jid, now + *job.unique_for * kNanosPerSecond};
      }
    }
  }
  reservation.job = std::move(job);
  reservation.expires_at = expires_at;
  if (progress) {
    reservation.progress = *progress;
    reservation.progress_at = now;
  }
  return success();
}

ReservedJob JobStore::describe(const Reservation& reservation) {
  const Job& job = reservation.job;
  return ReservedJob{job.jid,
                     job.jobtype,
                     job.queue,
                     reservation.wid,
                     reservation.reserved_at,
                     reservation.expires_at,
                     reservation.progress,
                     reservation.progress_at};
}

std::vector<ReservedJob> JobStore::reservations(size_t limit) const {
  std::vector<const Reservation*> all;
  std::lock_guard lock(mutex_);
  all.reserve(working_.size());
  for (const auto& [jid, reservation] : working_)
    all.push_back(&reservation);
  auto older = [](const Reservation* a, const Reservation* b) {
    return std::tie(a->reserved_at, a->job.jid) < std::tie(b->reserved_at, b->job.jid);
  };
  const size_t n = std::min(limit, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), older);
  std::vector<ReservedJob> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.push_back(describe(*all[i]));
  return out;
}

void JobStore::release_unique_locked(const Job& job) {
  if (!job.unique_for) return;
  auto it = unique_locks_.find(unique_key(job));
  if (it != unique_locks_.end() && it->second.jid == job.jid) unique_locks_.erase(it);
}

Result<void> JobStore::ack(const std::string& jid, Done durable) {
  {
    std::lock_guard lock(mutex_);
    auto it = working_.find(jid);
    if (it != working_.end()) {
      DEPOT_TRY(append_locked(jid, std::nullopt, std::move(durable)));
      release_unique_locked(it->second.job);
      working_.erase(it);
      ++total_processed_;
      return success();
    }
  }
  // Faktory answers OK for a jid it does not know (a duplicate ACK, or a reservation that expired).
  if (durable) durable({});
  return success();
}

Result<void> JobStore::fail(const std::string& jid, FailInfo info, Done durable) {
  std::vector<std::string> woken;
  {
    std::lock_guard lock(mutex_);
    auto it = working_.find(jid);
    if (it == working_.end()) return errc::job_not_found;
    Reservation reservation = std::move(it->second);
    working_.erase(it);
    DEPOT_TRY(fail_locked(std::move(reservation), std::move(info), options_.clock(),
                          std::move(durable), woken));
  }
  notify(woken);
  return success();
}

Result<void> JobStore::fail_locked(Reservation reservation, FailInfo info, UnixNanos now,
                                   Done durable, std::vector<std::string>& /*woken*/) {
  ++total_failures_;
  Job& job = reservation.job;
  if (!job.failure) {
    job.failure = Failure{0, job.retry, now, 0, {}, {}, {}};
  } else {
    job.failure->retry_count += 1;
    job.failure->remaining = std::max(0, job.failure->remaining - 1);
  }
  Failure& failure = *job.failure;
  failure.message = std::move(info.message);
  failure.errtype = std::move(info.errtype);
  failure.backtrace = std::move(info.backtrace);
  failure.next_at = 0;

  if (job.retry == 0) {  // discard: no retry, no dead set
    DEPOT_TRY(append_locked(job.jid, std::nullopt, std::move(durable)));
    release_unique_locked(job);
    return success();
  }
  if (failure.retry_count < job.retry) {
    failure.next_at =
        now + retry_delay_seconds(failure.retry_count, options_.random_below(30)) * kNanosPerSecond;
    JournalRecord record{RecordKind::retry, job, {}, 0, 0};
    DEPOT_TRY(int64_t offset, append_locked(job.jid, record, std::move(durable)));
    retries_.emplace(failure.next_at, offset);
    return success();
  }
  JournalRecord record{RecordKind::dead, job, {}, now, 0};
  DEPOT_TRY(int64_t offset, append_locked(job.jid, record, std::move(durable)));
  dead_.emplace(now, offset);
  return success();
}

Result<void> JobStore::tick() {
  std::vector<std::string> woken;
  {
    std::lock_guard lock(mutex_);
    const UnixNanos now = options_.clock();
    for (TimedSet* set : {&scheduled_, &retries_}) {
      while (!set->empty() && set->begin()->first <= now) {
        DEPOT_TRY(JournalRecord record, read_locked(set->begin()->second));
        set->erase(set->begin());
        if (record.job.expires_at != 0 && record.job.expires_at <= now) {
          DEPOT_TRY(append_locked(record.job.jid, std::nullopt, nullptr));
          release_unique_locked(record.job);
          continue;
        }
        DEPOT_TRY(enqueue_locked(std::move(record.job), now, nullptr, woken));
      }
    }
    DEPOT_TRY(fire_periodic_locked(now, woken));
    std::vector<std::string> expired;
    for (const auto& [jid, reservation] : working_) {
      if (reservation.expires_at <= now) expired.push_back(jid);
    }
    for (const auto& jid : expired) {
      auto node = working_.extract(jid);
      DEPOT_TRY(fail_locked(std::move(node.mapped()),
                            FailInfo{"ReservationExpired", "Faktory job reservation expired", {}},
                            now, nullptr, woken));
    }
    const UnixNanos dead_horizon = now - options_.dead_ttl_seconds * kNanosPerSecond;
    while (!dead_.empty() && dead_.begin()->first < dead_horizon) {
      DEPOT_TRY(JournalRecord record, read_locked(dead_.begin()->second));
      dead_.erase(dead_.begin());
      DEPOT_TRY(append_locked(record.job.jid, std::nullopt, nullptr));
      release_unique_locked(record.job);
    }
    std::erase_if(unique_locks_, [now](const auto& entry) { return entry.second.until <= now; });

    int64_t live = static_cast<int64_t>(scheduled_.size() + retries_.size() + dead_.size() +
                                        working_.size() + queues_.size() + periodic_.size());
    for (const auto& [name, queue] : queues_)
      live += static_cast<int64_t>(queue.ready.size());
    const int64_t records = journal_->log_end_offset() - journal_->log_start_offset();
    if (records > kCompactionMinRecords && records > kCompactionRatio * live) {
      DEPOT_TRY(compact_locked());
    }
  }
  notify(woken);
  return success();
}

Result<void> JobStore::pause_queues(std::span<const std::string> names) {
  std::lock_guard lock(mutex_);
  // A queue named before it has jobs is paused too, so that its first jobs wait (an operator
  // pauses a queue to stop work from starting, not only the work already there).
  if (!all_queues(names)) {
    for (const auto& name : names)
      queues_.try_emplace(name);
  }
  for (auto& [name, queue] : queues_) {
    bool named = all_queues(names) || std::find(names.begin(), names.end(), name) != names.end();
    if (!named || queue.paused) continue;
    queue.paused = true;
    DEPOT_TRY(append_locked({}, JournalRecord{RecordKind::queue_paused, {}, name, 0, 0}, nullptr));
  }
  return success();
}

Result<void> JobStore::resume_queues(std::span<const std::string> names) {
  std::vector<std::string> woken;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, queue] : queues_) {
      bool named = all_queues(names) || std::find(names.begin(), names.end(), name) != names.end();
      if (!named || !queue.paused) continue;
      queue.paused = false;
      DEPOT_TRY(
          append_locked({}, JournalRecord{RecordKind::queue_resumed, {}, name, 0, 0}, nullptr));
      woken.push_back(name);
    }
  }
  notify(woken);
  return success();
}

Result<void> JobStore::remove_queues(std::span<const std::string> names, Done durable) {
  {
    std::lock_guard lock(mutex_);
    std::vector<std::string> doomed;
    for (const auto& [name, queue] : queues_) {
      if (all_queues(names) || std::find(names.begin(), names.end(), name) != names.end()) {
        doomed.push_back(name);
      }
    }
    if (!doomed.empty()) {
      for (const auto& name : doomed) {
        queues_.erase(name);
      }
      for (size_t i = 0; i + 1 < doomed.size(); ++i) {
        DEPOT_TRY(append_locked({}, JournalRecord{RecordKind::queue_removed, {}, doomed[i], 0, 0},
                                nullptr));
      }
      DEPOT_TRY(append_locked({}, JournalRecord{RecordKind::queue_removed, {}, doomed.back(), 0, 0},
                              std::move(durable)));
      return success();
    }
  }
  if (durable) durable({});  // nothing was removed: nothing waits for the disk
  return success();
}

Result<void> JobStore::flush(Done durable) {
  std::lock_guard lock(mutex_);
  queues_.clear();
  scheduled_.clear();
  retries_.clear();
  dead_.clear();
  working_.clear();
  unique_locks_.clear();
  DEPOT_TRY(
      append_locked({}, JournalRecord{RecordKind::flushed, {}, {}, 0, 0}, std::move(durable)));
  return success();
}

StoreStats JobStore::stats() const {
  std::lock_guard lock(mutex_);
  StoreStats s;
  for (const auto& [name, queue] : queues_) {
    s.queues[name] = queue.ready.size();
    if (queue.paused) s.paused.push_back(name);
  }
  s.scheduled = scheduled_.size();
  s.retries = retries_.size();
  s.dead = dead_.size();
  s.working = working_.size();
  s.total_processed = total_processed_;
  s.total_failures = total_failures_;
  std::vector<const Reservation*> reporting;
  for (const auto& [jid, reservation] : working_) {
    if (reservation.progress) reporting.push_back(&reservation);
  }
  auto newer = [](const Reservation* a, const Reservation* b) {
    return std::tie(b->progress_at, a->job.jid) < std::tie(a->progress_at, b->job.jid);
  };
  const size_t n = std::min(kMaxProgressInStats, reporting.size());
  std::partial_sort(reporting.begin(), reporting.begin() + static_cast<std::ptrdiff_t>(n),
                    reporting.end(), newer);
  s.progress.reserve(n);
  for (size_t i = 0; i < n; ++i)
    s.progress.push_back(describe(*reporting[i]));
  return s;
}

double JobStore::queue_latency(const std::string& queue) const {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(queue);
  if (it == queues_.end() || it->second.ready.empty()) return 0;
  auto record = read_locked(it->second.ready.front());
  if (!record) return 0;
  return static_cast<double>(options_.clock() - record.value().job.enqueued_at) / kNanosPerSecond;
}

Result<size_t> JobStore::mutate(MutateOp op, JobSet target,
                                const std::function<bool(const Job&)>& matches, Done durable) {
  if (op == MutateOp::kill && target == JobSet::dead) {  // already dead: nothing to move
    if (durable) durable({});
    return size_t{0};
  }
  std::vector<std::string> woken;
  size_t changed = 0;
  Done on_durable = std::move(durable);
  {
    std::lock_guard lock(mutex_);
    const UnixNanos now = options_.clock();
    TimedSet& set = set_for(target);
    for (auto it = set.begin(); it != set.end();) {
      DEPOT_TRY(JournalRecord record, read_locked(it->second));
      if (op != MutateOp::clear && !matches(record.job)) {
        ++it;
        continue;
      }
      it = set.erase(it);
      ++changed;
      Job& job = record.job;
      switch (op) {
        case MutateOp::clear:
        case MutateOp::discard:
          DEPOT_TRY(append_locked(job.jid, std::nullopt, nullptr));
          release_unique_locked(job);
          break;
        case MutateOp::kill: {
          DEPOT_TRY(
              int64_t offset,
              append_locked(job.jid, JournalRecord{RecordKind::dead, job, {}, now, 0}, nullptr));
          dead_.emplace(now, offset);
          break;
        }
        case MutateOp::requeue:
          DEPOT_TRY(enqueue_locked(std::move(job), now, nullptr, woken));
          break;
      }
    }
    if (changed > 0 && on_durable) {
      journal_->when_durable(journal_->log_end_offset() - 1, std::exchange(on_durable, nullptr));
    }
  }
  if (on_durable) on_durable({});  // nothing changed: nothing waits for the disk
  notify(woken);
  return changed;
}

JobStore::TimedSet& JobStore::set_for(JobSet set) {
  return set == JobSet::scheduled ? scheduled_ : set == JobSet::retries ? retries_ : dead_;
}
const JobStore::TimedSet& JobStore::set_for(JobSet set) const {
  return set == JobSet::scheduled ? scheduled_ : set == JobSet::retries ? retries_ : dead_;
}

Result<std::vector<Job>> JobStore::list(JobSet set, size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<Job> out;
  for (const auto& [due, offset] : set_for(set)) {
    if (out.size() >= limit) break;
    DEPOT_TRY(JournalRecord record, read_locked(offset));
    out.push_back(std::move(record.job));
  }
  return out;
}

void JobStore::set_ready_listener(std::function<void(const std::string& queue)> listener) {
  std::lock_guard lock(mutex_);
  ready_listener_ = std::move(listener);
}

void JobStore::notify(const std::vector<std::string>& queues) {
  if (queues.empty()) return;
  std::function<void(const std::string&)> listener;
  {
    std::lock_guard lock(mutex_);
    listener = ready_listener_;
  }
  if (listener) {
    for (const auto& q : queues)
      listener(q);
  }
}

Result<void> JobStore::close() {
  if (!journal_) return success();
  auto closed = journal_->close();
  journal_.reset();
  return closed;
}

}  // namespace depot::jobs
