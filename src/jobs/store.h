#pragma once
// The job store: Faktory's model of background jobs on a storage-engine log. Waiting jobs live in
// the journal (the log); memory holds only where each one is (8 bytes per waiting job, plus the
// sets' ordering), the reservations of running jobs, and unique locks. Every change is a journal
// record; a mutation's `durable` callback fires once that record is durable under the fsync
// policy, and the protocol replies only then. Opening the store replays the journal.
//
// Thread-safe (one mutex); no sockets, no wire formats.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "jobs/cron.h"
#include "jobs/job.h"
#include "jobs/journal.h"
#include "storage/log.h"

namespace depot::jobs {

using Done = std::function<void(std::error_code)>;

// A job enqueued once per tick of its schedule (the config file's [[cron]] entries). The store
// knows an entry by its schedule text and job definition: an edited entry is a new one, and
// identical entries are one. A tick missed while depot was down is enqueued late if depot is
// back within kPeriodicCatchUpWindow of it (a restart or a deploy), and skipped otherwise.
inline constexpr UnixNanos kPeriodicCatchUpWindow = 10LL * 60 * 1'000'000'000;

struct PeriodicJob {
  CronSchedule schedule;
  Job job;  // each tick enqueues a copy with a fresh jid; created_at is the time it is enqueued
};

struct StoreOptions {
  std::filesystem::path dir;             // the journal's directory
  storage::SyncService* sync = nullptr;  // required
  std::function<UnixNanos()> clock;      // defaults to the system clock
  std::function<int(int)> random_below;  // uniform in [0, n): retry jitter; defaults to a PRNG
  int64_t dead_ttl_seconds = 180LL * 24 * 3600;  // Faktory's DeadTTL
  std::vector<PeriodicJob> periodic = {};        // enqueued by tick(), each on its schedule
};

struct FailInfo {
  std::string errtype = "unknown";
  std::string message = "unknown";
  std::vector<std::string> backtrace;
};

enum class JobSet { scheduled, retries, dead };

// Faktory's MUTATE operations on a set: clear (delete all), discard (delete matches), kill (move
// matches to the dead set), requeue (put matches back on their queues now).
enum class MutateOp { clear, discard, kill, requeue };

// What a running job last reported of its progress (CHECKPOINT), with the time it did. Kept in
// memory on the reservation only, never journaled: after a restart a restored reservation's
// progress is unknown until the job's next checkpoint.
struct Progress {
  int64_t done = 0;
  std::optional<int64_t> total;  // nullopt when the job does not know its total

  bool operator==(const Progress&) const = default;
};

// A reservation as stats() and reservations() show it.
struct ReservedJob {
  std::string jid;
  std::string jobtype;
  std::string queue;
  std::string wid;
  UnixNanos reserved_at = 0;
  UnixNanos expires_at = 0;
  std::optional<Progress> progress;  // nullopt until the job reports some
  UnixNanos progress_at = 0;         // when it last did

  bool operator==(const ReservedJob&) const = default;
};

// stats() lists at most this many reservations with progress.
inline constexpr size_t kMaxProgressInStats = 100;

struct StoreStats {
  std::map<std::string, size_t> queues;  // waiting jobs per queue
  size_t scheduled = 0;
  size_t retries = 0;
  size_t dead = 0;
  size_t working = 0;
  uint64_t total_processed = 0;  // ACKs since start
  uint64_t total_failures = 0;   // FAILs and expired reservations since start
  std::vector<std::string> paused;
  // Reservations whose job has reported progress, most recently reported first, at most
  // kMaxProgressInStats of them.
  std::vector<ReservedJob> progress;
};

class JobStore {
 public:
  static Result<std::unique_ptr<JobStore>> open(StoreOptions options);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Enqueues the job, or schedules it when `at` is in the future. created_at is set when 0.
  // Fails with not_unique while an equal unique job holds its lock, expired past expires_at.
  //
  // A job pushed with the jid of a reserved job (an interrupted iteration job re-enqueued with
  // its cursor, as Sidekiq and job-iteration do) ends that reservation: its record supersedes the
  // working one in the same single journal record, a later ACK of the jid is a no-op, and a
  // unique lock the reserved job holds is renewed for the pushed one instead of refusing it.
  Result<void> push(Job job, Done durable);
  // The first waiting job of the first non-paused, non-empty queue, in the order given; it is
  // reserved for `wid` for reserve_for seconds (clamped to [60, 86400]). Jobs past expires_at
  // are discarded on the way. nullopt when every queue is empty or paused.
  Result<std::optional<Job>> fetch(std::span<const std::string> queues, const std::string& wid);
  // Finishes a reserved job (an unknown jid is not an error, as in Faktory).
  Result<void> ack(const std::string& jid, Done durable);
  // Records a failure of a reserved job and retries it with Faktory's backoff, sends it to the dead
  // set when its retries are used up, or discards it (retry 0). job_not_found if not reserved.
  Result<void> fail(const std::string& jid, FailInfo info, Done durable);

  // A running job's checkpoint (CHECKPOINT): `edit` changes a copy of the reserved job (its
  // custom, say) under the store's lock; the result is journaled as the reservation's new working
  // record, so that a restart, an expiry (back to its queue) and a FAIL (retried) all see it. The
  // reservation is renewed: it now expires reserve_for seconds (clamped as by fetch) from now.
  // `progress`, when given, replaces what the job last reported (see Progress). `durable` fires
  // once the record is durable. job_not_found when `jid` is not reserved, reserved_by_other when
  // `wid` does not hold it; an error from `edit` is returned and changes nothing.
  Result<void> update_reserved(const std::string& jid, const std::string& wid,
                               const std::function<Result<void>(Job&)>& edit,
                               std::optional<Progress> progress, Done durable);
  // The reservations, oldest first, at most `limit` (for the admin API).
  std::vector<ReservedJob> reservations(size_t limit) const;

  // Moves due scheduled jobs and retries to their queues, enqueues periodic jobs whose tick has
  // come, fails expired reservations (ReservationExpired), purges dead jobs past the dead TTL and
  // releases expired unique locks.
  //
  // A periodic job is enqueued when its latest tick (at or before now) is later than the one it
  // last fired for, and at most once however many ticks passed since (while depot was down, say).
  // The journal records the tick it fired for, in the same batch as the job, so a restart neither
  // repeats nor loses it. An entry seen for the first time only records its latest tick, as
  // Faktory Enterprise does: added at 12:00:30, "* * * * *" first fires at 12:01.
  Result<void> tick();

  Result<void> pause_queues(std::span<const std::string> names);  // "*" = every queue
  Result<void> resume_queues(std::span<const std::string> names);
  Result<void> remove_queues(std::span<const std::string> names, Done durable);
  Result<void> flush(Done durable);  // everything: queues, sets, reservations, locks

  StoreStats stats() const;
  // Seconds since the oldest waiting job of `queue` was enqueued; 0 when empty.
  double queue_latency(const std::string& queue) const;
  // Applies `op` to the jobs of `target` that `matches` accepts (all of them for clear); returns
  // how many changed. `durable` fires once every change is durable.
  Result<size_t> mutate(MutateOp op, JobSet target, const std::function<bool(const Job&)>& matches,
                        Done durable);

  // Jobs in a set, oldest first (for MUTATE and the admin API).
  Result<std::vector<Job>> list(JobSet set, size_t limit) const;

  // Called (outside the store's lock) with a queue's name whenever a job becomes ready in it, so
  // a blocked FETCH can wake up.
  void set_ready_listener(std::function<void(const std::string& queue)> listener);

  // Rewrites the journal with only what is live (waiting, scheduled, retrying, dead and reserved
  // jobs, pause flags, and the last tick of each configured periodic job) and switches to it, so
  // the journal stays proportional to live jobs. tick() runs it when the journal holds several
  // times more records than live jobs.
  struct CompactionStats {
    int64_t records_before = 0;
    int64_t records_after = 0;
  };
  Result<CompactionStats> compact();

  Result<void> close();

 private:
  struct QueueState {
    std::deque<int64_t> ready;  // journal offsets of waiting jobs, oldest first
    bool paused = false;
  };
  struct Reservation {
    Job job;
    std::string wid;
    UnixNanos reserved_at = 0;
    UnixNanos expires_at = 0;
    std::optional<Progress> progress;  // memory only: see Progress
    UnixNanos progress_at = 0;
  };
  struct UniqueLock {
    std::string jid;
    UnixNanos until = 0;
  };
  using TimedSet = std::set<std::pair<UnixNanos, int64_t>>;  // (due or died-at, journal offset)
  struct KeyedRecord {
    std::string key;
    JournalRecord record;
  };
  struct Periodic {
    PeriodicJob entry;
    std::string key;  // the entry's identity: its journal records' key
  };

  explicit JobStore(StoreOptions options);
  Result<std::shared_ptr<storage::Log>> open_journal(const std::filesystem::path& path);
  Result<CompactionStats> compact_locked();
  Result<void> replay();
  // Appends one record; returns its offset. `durable` (if any) fires when it is durable. `also`
  // goes after it in the same batch: both reach the disk or neither does.
  Result<int64_t> append_locked(const std::string& key, const std::optional<JournalRecord>& record,
                                Done durable, const KeyedRecord* also = nullptr);
  Result<JournalRecord> read_locked(int64_t offset) const;
  // The waiting job at `offset`, from recent_jobs_ when it is there (and then no longer), else
  // from the journal.
  Result<Job> take_waiting_locked(int64_t offset);
  void remember_recent_locked(int64_t offset, const Job& job);
  // push() under the lock; `also` is journaled with the job.
  Result<void> push_locked(Job job, UnixNanos now, Done durable, std::vector<std::string>& woken,
                           const KeyedRecord* also);
  Result<void> enqueue_locked(Job job, UnixNanos now, Done durable, std::vector<std::string>& woken,
                              const KeyedRecord* also = nullptr);
  Result<void> fire_periodic_locked(UnixNanos now, std::vector<std::string>& woken);
  std::string new_jid();
  Result<void> fail_locked(Reservation reservation, FailInfo info, UnixNanos now, Done durable,
                           std::vector<std::string>& woken);
  void release_unique_locked(const Job& job);
  static ReservedJob describe(const Reservation& reservation);
  TimedSet& set_for(JobSet set);
  const TimedSet& set_for(JobSet set) const;
  void notify(const std::vector<std::string>& queues);
  UnixNanos retry_delay_nanos(int32_t retry_count);

  StoreOptions options_;
  std::shared_ptr<storage::Log> journal_;
  uint64_t generation_ = 0;  // the journal lives in <dir>/journal-<generation>
  mutable std::mutex mutex_;
  std::map<std::string, QueueState, std::less<>> queues_;
  TimedSet scheduled_;
  TimedSet retries_;
  TimedSet dead_;
  std::unordered_map<std::string, Reservation> working_;
  std::unordered_map<std::string, UniqueLock> unique_locks_;  // key: jobtype + args + queue
  // The most recently enqueued jobs by journal offset, oldest first in recent_order_ (which may
  // also hold offsets already taken): a FETCH soon after its PUSH, the usual case when workers
  // keep up, then reads nothing from the journal. Bounded by kRecentJobsBytes, not by the
  // number of waiting jobs.
  std::unordered_map<int64_t, Job> recent_jobs_;
  std::deque<int64_t> recent_order_;
  size_t recent_bytes_ = 0;
  std::vector<Periodic> periodic_;
  std::map<std::string, UnixNanos> periodic_fired_;  // entry key -> the last tick it fired for
  std::mt19937_64 jid_random_;
  uint64_t total_processed_ = 0;
  uint64_t total_failures_ = 0;
  std::function<void(const std::string&)> ready_listener_;
};

// The unique-lock key of a job: jobtype, args and queue (Faktory Enterprise's definition).
std::string unique_key(const Job& job);

// Faktory's retry delay in seconds for the Nth retry: count^4 + 15 + rand(30) * (count + 1).
int64_t retry_delay_seconds(int32_t retry_count, int random_below_30);

}  // namespace depot::jobs
