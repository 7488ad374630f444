// The job store with a controllable clock: queues, scheduling, retries and the dead set,
// reservations, pause/remove/flush, unique jobs, expiry, recovery from the journal, re-enqueued
// reserved jobs and checkpoints.
#include "jobs/store.h"

#include <algorithm>
#include <cctype>
#include <future>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "jobs/errc.h"
#include "storage/sync_service.h"
#include "support/temp_dir.h"

namespace depot::jobs {
namespace {

constexpr UnixNanos kSecond = 1'000'000'000;
constexpr UnixNanos kMinute = 60 * kSecond;
constexpr UnixNanos kNoon = 1'714'564'800 * kSecond;  // 2024-05-01T12:00:00Z

Job make_job(const std::string& jid, const std::string& queue = "default",
             const std::string& args = "[1,2]") {
  Job job;
  job.jid = jid;
  job.jobtype = "SendEmail";
  job.queue = queue;
  job.args = args;
  job.custom = R"({"trace":{"id":[1,{"deep":true}]}})";
  return job;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    if (store_) {
      ASSERT_TRUE(store_->close());
    }
    store_.reset();
    StoreOptions options{dir_.path() / "jobs", &sync_, [this] { return now_; },
                         [](int) { return 0; }};
    options.periodic = periodic_;
    auto opened = JobStore::open(std::move(options));
    ASSERT_TRUE(opened) << opened.error().message();
    store_ = std::move(opened).value();
  }

  // push() and wait until the journal says it is durable.
  std::error_code push(Job job) {
    std::promise<std::error_code> durable;
    auto result = store_->push(std::move(job), [&](std::error_code ec) { durable.set_value(ec); });
    if (!result) return result.error();
    return durable.get_future().get();
  }
  std::optional<Job> fetch(std::vector<std::string> queues = {"default"}) {
    auto r = store_->fetch(queues, "worker-1");
    EXPECT_TRUE(r) << r.error().message();
    return r ? r.value() : std::nullopt;
  }
  void ack(const std::string& jid) { ASSERT_TRUE(store_->ack(jid, nullptr)); }
  void fail(const std::string& jid) {
    ASSERT_TRUE(store_->fail(jid, FailInfo{"RuntimeError", "boom", {"a.rb:1", "b.rb:2"}}, nullptr));
  }
  size_t waiting(const std::string& queue) const {
    auto queues = store_->stats().queues;
    return queues.contains(queue) ? queues.at(queue) : 0;
  }
  // Moves the clock to `at` and ticks.
  void tick_at(UnixNanos at) {
    now_ = at;
    ASSERT_TRUE(store_->tick());
  }
  // Configures `entries`, first seen at 12:00:30, and ticks at 12:01 when they first fire.
  void start_periodic(std::vector<PeriodicJob> entries) {
    periodic_ = std::move(entries);
    now_ = kNoon + 30 * kSecond;
    reopen();
    tick_at(now_);
    tick_at(kNoon + kMinute);
  }

  testing::TempDir dir_;
  storage::SyncService sync_{storage::FsyncPolicy{}};
  UnixNanos now_ = 1'700'000'000 * kSecond;
  std::vector<PeriodicJob> periodic_;  // configured at the next reopen()
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, QueuesAreFifoAndCheckedInTheOrderGiven) {
  ASSERT_FALSE(push(make_job("job-0001")));
  ASSERT_FALSE(push(make_job("job-0002")));
  ASSERT_FALSE(push(make_job("urgent-01", "critical")));
  EXPECT_EQ(store_->stats().queues.at("default"), 2u);

  auto first = fetch({"critical", "default"});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->jid, "urgent-01");
  EXPECT_EQ(fetch({"critical", "default"})->jid, "job-0001");
  auto third = fetch({"critical", "default"});
  ASSERT_TRUE(third);
  EXPECT_EQ(third->jid, "job-0002");
  EXPECT_EQ(third->custom, R"({"trace":{"id":[1,{"deep":true}]}})");
  EXPECT_EQ(third->created_at, now_);
  EXPECT_EQ(third->enqueued_at, now_);
  EXPECT_FALSE(fetch({"critical", "default"}));
  EXPECT_EQ(store_->stats().working, 3u);
  ack("job-0001");
  EXPECT_EQ(store_->stats().working, 2u);
  EXPECT_EQ(store_->stats().total_processed, 1u);
  // ACK of an unknown jid is accepted, as Faktory does.
  EXPECT_TRUE(store_->ack("no-such-job", nullptr));
}

TEST_F(JobStoreTest, ScheduledJobsEnterTheirQueueWhenDue) {
  Job job = make_job("later-001");
  job.at = now_ + 10 * kSecond;
  ASSERT_FALSE(push(job));
  EXPECT_EQ(store_->stats().scheduled, 1u);
  EXPECT_FALSE(fetch());
  now_ += 9 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_FALSE(fetch());
  now_ += 1 * kSecond;
  ASSERT_TRUE(store_->tick());
  auto due = fetch();
  ASSERT_TRUE(due);
  EXPECT_EQ(due->jid, "later-001");
  EXPECT_EQ(due->enqueued_at, now_);
  EXPECT_EQ(store_->stats().scheduled, 0u);
}

TEST_F(JobStoreTest, FailuresRetryWithFaktorysBackoffThenDie) {
  Job job = make_job("flaky-001");
  job.retry = 2;
  ASSERT_FALSE(push(job));
  ASSERT_TRUE(fetch());
  const UnixNanos first_failure = now_;
  fail("flaky-001");
  auto retries = store_->list(JobSet::retries, 10).value();
  ASSERT_EQ(retries.size(), 1u);
  const Failure& f = *retries[0].failure;
  EXPECT_EQ(f.retry_count, 0);
  EXPECT_EQ(f.remaining, 2);
  EXPECT_EQ(f.failed_at, first_failure);
  EXPECT_EQ(f.next_at, now_ + 15 * kSecond);  // 0^4 + 15 + 0 * 1
  EXPECT_EQ(f.errtype, "RuntimeError");
  EXPECT_EQ(f.message, "boom");
  EXPECT_EQ(f.backtrace, (std::vector<std::string>{"a.rb:1", "b.rb:2"}));

  now_ += 14 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_FALSE(fetch());
  now_ += 1 * kSecond;
  ASSERT_TRUE(store_->tick());
  auto again = fetch();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->failure->retry_count, 0);
  fail("flaky-001");
  retries = store_->list(JobSet::retries, 10).value();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].failure->retry_count, 1);
  EXPECT_EQ(retries[0].failure->remaining, 1);
  EXPECT_EQ(retries[0].failure->failed_at, first_failure);      // not moved by later failures
  EXPECT_EQ(retries[0].failure->next_at, now_ + 16 * kSecond);  // 1^4 + 15

  now_ += 16 * kSecond;
  ASSERT_TRUE(store_->tick());
  ASSERT_TRUE(fetch());
  fail("flaky-001");  // retry_count 2 == retry: dead
  EXPECT_EQ(store_->stats().retries, 0u);
  auto dead = store_->list(JobSet::dead, 10).value();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].failure->retry_count, 2);
  EXPECT_EQ(store_->stats().total_failures, 3u);
}

TEST(RetryDelay, FollowsFaktorysFormula) {
  EXPECT_EQ(retry_delay_seconds(0, 0), 15);
  EXPECT_EQ(retry_delay_seconds(0, 29), 44);
  EXPECT_EQ(retry_delay_seconds(3, 10), 81 + 15 + 40);
  EXPECT_EQ(retry_delay_seconds(24, 0), 331776 + 15);
}

TEST_F(JobStoreTest, RetryZeroDiscardsAndRetryMinusOneGoesStraightToDead) {
  Job discard = make_job("discard-1");
  discard.retry = 0;
  Job dies = make_job("dies-0001");
  dies.retry = -1;
  ASSERT_FALSE(push(discard));
  ASSERT_FALSE(push(dies));
  ASSERT_TRUE(fetch());
  ASSERT_TRUE(fetch());
  fail("discard-1");
  fail("dies-0001");
  auto s = store_->stats();
  EXPECT_EQ(s.retries, 0u);
  EXPECT_EQ(s.dead, 1u);
  EXPECT_EQ(store_->list(JobSet::dead, 10).value()[0].jid, "dies-0001");
  EXPECT_EQ(store_->fail("discard-1", {}, nullptr).error(), errc::job_not_found);
}

TEST_F(JobStoreTest, ExpiredReservationsAreFailedAndRetried) {
  Job job = make_job("slow-0001");
  job.reserve_for = 10;  // clamped up to Faktory's minimum of 60 s
  ASSERT_FALSE(push(job));
  ASSERT_TRUE(fetch());
  now_ += 59 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_EQ(store_->stats().working, 1u);
  now_ += 1 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_EQ(store_->stats().working, 0u);
  auto retries = store_->list(JobSet::retries, 10).value();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].failure->errtype, "ReservationExpired");
  EXPECT_EQ(retries[0].failure->message, "Faktory job reservation expired");
  EXPECT_EQ(store_->ack("slow-0001", nullptr).has_value(), true);  // late ACK: accepted, no-op
}

TEST_F(JobStoreTest, PausedQueuesAreSkippedAndRemovedQueuesLoseTheirJobs) {
  ASSERT_FALSE(push(make_job("a-000001", "mail")));
  ASSERT_FALSE(push(make_job("b-000001", "default")));
  std::vector<std::string> mail = {"mail"};
  ASSERT_TRUE(store_->pause_queues(mail));
  auto job = fetch({"mail", "default"});
  ASSERT_TRUE(job);
  EXPECT_EQ(job->jid, "b-000001");
  EXPECT_FALSE(fetch({"mail"}));
  EXPECT_EQ(store_->stats().paused, mail);
  reopen();  // pause flags survive a restart
  EXPECT_FALSE(fetch({"mail"}));
  std::vector<std::string> all = {"*"};
  ASSERT_TRUE(store_->resume_queues(all));
  ASSERT_FALSE(push(make_job("a-000002", "mail")));
  ASSERT_TRUE(store_->remove_queues(mail, nullptr));
  EXPECT_FALSE(fetch({"mail"}));
  EXPECT_EQ(store_->stats().queues.count("mail"), 0u);
  reopen();
  EXPECT_FALSE(fetch({"mail"}));
}

TEST_F(JobStoreTest, AQueuePausedBeforeItHasJobsKeepsItsFirstJobsWaiting) {
  std::vector<std::string> later = {"later"};
  ASSERT_TRUE(store_->pause_queues(later));
  ASSERT_FALSE(push(make_job("l-000001", "later")));
  EXPECT_FALSE(fetch({"later"}));
  reopen();
  EXPECT_FALSE(fetch({"later"}));
  ASSERT_TRUE(store_->resume_queues(later));
  auto job = fetch({"later"});
  ASSERT_TRUE(job);
  EXPECT_EQ(job->jid, "l-000001");
}

TEST_F(JobStoreTest, UniqueJobsAreRefusedWhileLockedAndReleasedOnAck) {
  Job job = make_job("uniq-0001");
  job.unique_for = 60;
  ASSERT_FALSE(push(job));
  Job twin = job;
  twin.jid = "uniq-0002";
  EXPECT_EQ(push(twin), errc::not_unique);
  Job other_args = twin;
  other_args.args = "[3]";
  EXPECT_FALSE(push(other_args));  // different args: a different job
  reopen();                        // the lock survives a restart
  EXPECT_EQ(push(twin), errc::not_unique);
  ASSERT_EQ(fetch()->jid, "uniq-0001");
  ack("uniq-0001");
  EXPECT_FALSE(push(twin));
  // And a lock also ends when unique_for has passed.
  Job third = twin;
  third.jid = "uniq-0003";
  EXPECT_EQ(push(third), errc::not_unique);
  now_ += 61 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_FALSE(push(third));
}

TEST_F(JobStoreTest, ExpiredJobsAreDiscardedUnfetched) {
  Job stale = make_job("stale-001");
  stale.expires_at = now_ - 1;
  EXPECT_EQ(push(stale), errc::expired);
  Job soon = make_job("soon-0001");
  soon.expires_at = now_ + 5 * kSecond;
  ASSERT_FALSE(push(soon));
  ASSERT_FALSE(push(make_job("fresh-001")));
  now_ += 6 * kSecond;
  auto job = fetch();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->jid, "fresh-001");
  reopen();
  ack("fresh-001");
  EXPECT_FALSE(fetch());
}

TEST_F(JobStoreTest, RestartRestoresQueuesSetsAndReservations) {
  for (int i = 0; i < 5; ++i)
    ASSERT_FALSE(push(make_job("ready-00" + std::to_string(i))));
  Job later = make_job("later-001");
  later.at = now_ + 100 * kSecond;
  ASSERT_FALSE(push(later));
  ASSERT_EQ(fetch()->jid, "ready-000");  // stays reserved
  ASSERT_EQ(fetch()->jid, "ready-001");
  fail("ready-001");  // to the retries
  ASSERT_EQ(fetch()->jid, "ready-002");
  ack("ready-002");  // gone
  Job dead = make_job("dead-0001", "other");
  dead.retry = -1;
  ASSERT_FALSE(push(dead));
  ASSERT_TRUE(fetch({"other"}));
  fail("dead-0001");
  auto before = store_->stats();

  reopen();
  auto after = store_->stats();
  std::erase_if(before.queues, [](const auto& q) { return q.second == 0; });  // as Redis lists
  EXPECT_EQ(after.queues, before.queues);
  EXPECT_EQ(after.scheduled, 1u);
  EXPECT_EQ(after.retries, 1u);
  EXPECT_EQ(after.dead, 1u);
  EXPECT_EQ(after.working, 1u);
  EXPECT_EQ(fetch()->jid, "ready-003");
  EXPECT_EQ(fetch()->jid, "ready-004");
  EXPECT_FALSE(fetch());
  ack("ready-000");  // the reservation made before the restart still holds
  EXPECT_EQ(store_->stats().working, 2u);
  EXPECT_EQ(store_->list(JobSet::retries, 10).value()[0].failure->message, "boom");
}

TEST_F(JobStoreTest, FlushEmptiesEverythingDurably) {
  ASSERT_FALSE(push(make_job("gone-0001")));
  Job later = make_job("gone-0002");
  later.at = now_ + kSecond;
  ASSERT_FALSE(push(later));
  std::promise<std::error_code> durable;
  ASSERT_TRUE(store_->flush([&](std::error_code ec) { durable.set_value(ec); }));
  EXPECT_FALSE(durable.get_future().get());
  reopen();
  auto s = store_->stats();
  EXPECT_TRUE(s.queues.empty());
  EXPECT_EQ(s.scheduled, 0u);
  ASSERT_FALSE(push(make_job("after-001")));
  reopen();
  EXPECT_EQ(fetch()->jid, "after-001");
}

TEST_F(JobStoreTest, DeadJobsArePurgedAfterTheDeadTtl) {
  Job job = make_job("old-dead1");
  job.retry = -1;
  ASSERT_FALSE(push(job));
  ASSERT_TRUE(fetch());
  fail("old-dead1");
  now_ += 179LL * 24 * 3600 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_EQ(store_->stats().dead, 1u);
  now_ += 2LL * 24 * 3600 * kSecond;
  ASSERT_TRUE(store_->tick());
  EXPECT_EQ(store_->stats().dead, 0u);
  reopen();
  EXPECT_EQ(store_->stats().dead, 0u);
}

TEST_F(JobStoreTest, QueueLatencyIsTheAgeOfTheOldestWaitingJob) {
  EXPECT_EQ(store_->queue_latency("default"), 0.0);
  ASSERT_FALSE(push(make_job("wait-0001")));
  now_ += 3 * kSecond;
  ASSERT_FALSE(push(make_job("wait-0002")));
  EXPECT_DOUBLE_EQ(store_->queue_latency("default"), 3.0);
}

}  // namespace
}  // namespace depot::jobs

namespace depot::jobs {
namespace {

TEST_F(JobStoreTest, MutateKillsRequeuesDiscardsAndClears) {
  for (const char* jid : {"mut-00001", "mut-00002", "mut-00003", "mut-00004"}) {
    Job job = make_job(jid);
    job.jobtype = std::string(jid) == "mut-00003" ? "Other" : "SendEmail";
    job.at = now_ + 3600 * kSecond;
    ASSERT_FALSE(push(job));
  }
  auto by_jid = [](const char* jid) { return [jid](const Job& j) { return j.jid == jid; }; };
  EXPECT_EQ(store_->mutate(MutateOp::kill, JobSet::scheduled, by_jid("mut-00001"), nullptr).value(),
            1u);
  EXPECT_EQ(store_->stats().dead, 1u);
  EXPECT_EQ(
      store_->mutate(MutateOp::requeue, JobSet::scheduled, by_jid("mut-00002"), nullptr).value(),
      1u);
  EXPECT_EQ(fetch()->jid, "mut-00002");
  auto other = [](const Job& j) { return j.jobtype == "Other"; };
  EXPECT_EQ(store_->mutate(MutateOp::discard, JobSet::scheduled, other, nullptr).value(), 1u);
  EXPECT_EQ(store_->stats().scheduled, 1u);
  std::promise<std::error_code> durable;
  auto cleared = store_->mutate(MutateOp::clear, JobSet::scheduled, nullptr,
                                [&](std::error_code ec) { durable.set_value(ec); });
  EXPECT_EQ(cleared.value(), 1u);
  EXPECT_FALSE(durable.get_future().get());
  EXPECT_EQ(store_->mutate(MutateOp::kill, JobSet::dead, by_jid("mut-00001"), nullptr).value(), 0u);
  reopen();
  auto s = store_->stats();
  EXPECT_EQ(s.scheduled, 0u);
  EXPECT_EQ(s.dead, 1u);
  EXPECT_EQ(store_->list(JobSet::dead, 10).value()[0].jid, "mut-00001");
}

}  // namespace
}  // namespace depot::jobs

namespace depot::jobs {
namespace {

TEST_F(JobStoreTest, CompactionKeepsOnlyLiveJobsAndSurvivesRestart) {
  // Lots of history: 300 jobs pushed, fetched and acked; a few of every kind left live.
  for (int i = 0; i < 300; ++i) {
    ASSERT_FALSE(push(make_job("done-" + std::to_string(1000 + i))));
    ASSERT_TRUE(fetch());
    ack("done-" + std::to_string(1000 + i));
  }
  for (int i = 0; i < 3; ++i)
    ASSERT_FALSE(push(make_job("wait-000" + std::to_string(i))));
  ASSERT_FALSE(push(make_job("mail-0001", "mail")));
  std::vector<std::string> mail = {"mail"};
  ASSERT_TRUE(store_->pause_queues(mail));
  Job later = make_job("later-001");
  later.at = now_ + 100 * kSecond;
  ASSERT_FALSE(push(later));
  Job retried = make_job("retry-001", "other");
  ASSERT_FALSE(push(retried));
  ASSERT_TRUE(fetch({"other"}));
  fail("retry-001");
  ASSERT_FALSE(push(make_job("busy-0001", "busy")));
  ASSERT_TRUE(fetch({"busy"}));
  const StoreStats before = store_->stats();

  auto compacted = store_->compact();
  ASSERT_TRUE(compacted) << compacted.error().message();
  EXPECT_GT(compacted.value().records_before, 900);
  EXPECT_LE(compacted.value().records_after, 10);
  auto check = [&] {
    StoreStats s = store_->stats();
    EXPECT_EQ(s.queues.at("default"), 3u);
    EXPECT_EQ(s.queues.at("mail"), 1u);
    EXPECT_EQ(s.paused, mail);
    EXPECT_EQ(s.scheduled, 1u);
    EXPECT_EQ(s.retries, 1u);
    EXPECT_EQ(s.working, 1u);
  };
  check();
  EXPECT_EQ(store_->stats().queues, before.queues);
  // Appends continue in the new journal, and a restart finds the compacted state.
  ASSERT_FALSE(push(make_job("wait-0003")));
  reopen();
  StoreStats s = store_->stats();
  EXPECT_EQ(s.queues.at("default"), 4u);
  EXPECT_EQ(s.working, 1u);
  EXPECT_EQ(fetch()->jid, "wait-0000");
  ack("busy-0001");
  EXPECT_EQ(store_->list(JobSet::retries, 10).value()[0].failure->message, "boom");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path() / "jobs"),
                          std::filesystem::directory_iterator()),
            1);  // the old generation is gone
}

TEST_F(JobStoreTest, FetchAfterCompactionReadsTheNewGeneration) {
  // Recently pushed jobs are served from memory by journal offset; compaction renumbers the
  // records, so a job must not be found under its old offset.
  ASSERT_FALSE(push(make_job("second-q2", "q2")));
  ASSERT_FALSE(push(make_job("first-default")));
  ASSERT_TRUE(store_->compact());
  EXPECT_EQ(fetch({"default"})->jid, "first-default");
  EXPECT_EQ(fetch({"q2"})->jid, "second-q2");
  EXPECT_FALSE(fetch({"default", "q2"}));
}

}  // namespace
}  // namespace depot::jobs

namespace depot::jobs {
namespace {

PeriodicJob periodic(std::string_view schedule, const std::string& jobtype = "Report",
                     const std::string& queue = "cron") {
  Job job;
  job.jobtype = jobtype;
  job.queue = queue;
  job.args = R"([1,"two"])";
  job.custom = R"({"team":{"name":"ops"}})";
  job.retry = 3;
  return PeriodicJob{CronSchedule::parse(schedule).value(), job};
}

TEST_F(JobStoreTest, PeriodicJobFirstSeenFiresFromItsNextTick) {
  now_ = kNoon + 30 * kSecond;
  periodic_ = {periodic("* * * * *")};
  reopen();
  tick_at(kNoon + 30 * kSecond);  // seen at 12:00:30: 12:00 is recorded, not enqueued
  EXPECT_EQ(waiting("cron"), 0u);
  tick_at(kNoon + 59 * kSecond);
  EXPECT_EQ(waiting("cron"), 0u);
  tick_at(kNoon + kMinute);
  ASSERT_EQ(waiting("cron"), 1u);
  auto job = fetch({"cron"});
  ASSERT_TRUE(job);
  EXPECT_EQ(job->jobtype, "Report");
  EXPECT_EQ(job->queue, "cron");
  EXPECT_EQ(job->args, R"([1,"two"])");
  EXPECT_EQ(job->custom, R"({"team":{"name":"ops"}})");
  EXPECT_EQ(job->retry, 3);
  EXPECT_EQ(job->created_at, now_);
  EXPECT_EQ(job->enqueued_at, now_);
  EXPECT_EQ(job->jid.size(), 24u);
  EXPECT_TRUE(
      std::all_of(job->jid.begin(), job->jid.end(), [](char c) { return std::isxdigit(c); }));
  tick_at(kNoon + kMinute + 30 * kSecond);
  EXPECT_EQ(waiting("cron"), 0u);
  tick_at(kNoon + 2 * kMinute + 5 * kSecond);
  auto second = fetch({"cron"});
  ASSERT_TRUE(second);
  EXPECT_NE(second->jid, job->jid);
}

TEST_F(JobStoreTest, PeriodicJobsFireOncePerTick) {
  now_ = kNoon - 90 * kSecond;  // 11:58:30
  periodic_ = {periodic("*/5 * * * *", "Five", "five"), periodic("@hourly", "Hourly", "hourly")};
  reopen();
  for (UnixNanos t = now_; t <= kNoon + 61 * kMinute; t += 20 * kSecond)
    tick_at(t);
  EXPECT_EQ(waiting("five"), 13u);   // 12:00, 12:05, ... 13:00
  EXPECT_EQ(waiting("hourly"), 2u);  // 12:00 and 13:00
}

TEST_F(JobStoreTest, PeriodicJobDoesNotFireTwiceForATickAcrossRestarts) {
  start_periodic({periodic("* * * * *")});
  EXPECT_EQ(waiting("cron"), 1u);
  now_ = kNoon + kMinute + 40 * kSecond;
  reopen();  // restarted within the minute it fired in
  tick_at(now_);
  EXPECT_EQ(waiting("cron"), 1u);  // the job replayed, and no second one
  // FLUSH removes the job but not the entry's last tick.
  ASSERT_TRUE(store_->flush(nullptr));
  tick_at(now_);
  reopen();
  tick_at(now_);
  EXPECT_EQ(waiting("cron"), 0u);
  tick_at(kNoon + 2 * kMinute);
  EXPECT_EQ(waiting("cron"), 1u);
}

TEST_F(JobStoreTest, PeriodicJobCatchesUpOnceAfterDowntime) {
  start_periodic({periodic("* * * * *")});
  ASSERT_TRUE(store_->close());
  now_ = kNoon + 7 * kMinute + 30 * kSecond;  // down from 12:01 to 12:07:30: six ticks missed
  reopen();
  tick_at(now_);
  EXPECT_EQ(waiting("cron"), 2u);
  tick_at(now_ + 10 * kSecond);
  EXPECT_EQ(waiting("cron"), 2u);
  tick_at(kNoon + 8 * kMinute);
  EXPECT_EQ(waiting("cron"), 3u);
}

TEST_F(JobStoreTest, PeriodicJobSkipsATickMissedLongAgo) {
  start_periodic({periodic("0 12 * * *")});  // daily at noon; first seen at noon: no job
  EXPECT_EQ(waiting("cron"), 0u);
  ASSERT_TRUE(store_->close());
  now_ = kNoon + 24 * 60 * kMinute + 9 * kMinute;  // back at 12:09 the next day: still in time
  reopen();
  tick_at(now_);
  EXPECT_EQ(waiting("cron"), 1u);
  ASSERT_TRUE(store_->close());
  now_ = kNoon + 2 * 24 * 60 * kMinute + 5 * 60 * kMinute;  // back at 17:00 on the third day
  reopen();
  tick_at(now_);
  EXPECT_EQ(waiting("cron"), 1u);  // the missed noon is not run five hours late
  tick_at(kNoon + 3 * 24 * 60 * kMinute);
  EXPECT_EQ(waiting("cron"), 2u);  // the next noon is
}

TEST_F(JobStoreTest, PeriodicJobEditedIsANewEntry) {
  start_periodic({periodic("* * * * *")});
  EXPECT_EQ(waiting("cron"), 1u);
  periodic_[0].job.args = "[2]";
  now_ = kNoon + 3 * kMinute + 30 * kSecond;
  reopen();
  tick_at(now_);  // first seen: no catch-up for the old definition's missed ticks
  EXPECT_EQ(waiting("cron"), 1u);
  tick_at(kNoon + 4 * kMinute);
  EXPECT_EQ(waiting("cron"), 2u);
  fetch({"cron"});
  EXPECT_EQ(fetch({"cron"})->args, "[2]");
}

TEST_F(JobStoreTest, PeriodicJobIsPushedAsAnyJobIsSoUniquenessHolds) {
  PeriodicJob unique = periodic("* * * * *");
  unique.job.unique_for = 3600;
  start_periodic({unique});
  EXPECT_EQ(waiting("cron"), 1u);
  tick_at(kNoon + 2 * kMinute);  // the first one still holds the unique lock
  EXPECT_EQ(waiting("cron"), 1u);
  auto job = fetch({"cron"});
  ASSERT_TRUE(job);
  ack(job->jid);
  tick_at(kNoon + 2 * kMinute + 30 * kSecond);  // 12:02's tick was spent on the refused push
  EXPECT_EQ(waiting("cron"), 0u);
  tick_at(kNoon + 3 * kMinute);
  EXPECT_EQ(waiting("cron"), 1u);
}

TEST_F(JobStoreTest, CompactionKeepsTheLastTickOfConfiguredPeriodicJobs) {
  start_periodic({periodic("* * * * *", "Kept"), periodic("* * * * *", "Dropped")});
  ASSERT_EQ(waiting("cron"), 2u);
  for (int i = 0; i < 2; ++i)
    ack(fetch({"cron"})->jid);
  periodic_ = {periodic("* * * * *", "Kept")};  // Dropped is no longer configured
  reopen();
  auto compacted = store_->compact();
  ASSERT_TRUE(compacted) << compacted.error().message();
  EXPECT_EQ(compacted.value().records_after, 1);  // Kept's last tick

  // Down until 12:03:10 with both configured again: Kept catches up once, Dropped starts afresh.
  periodic_ = {periodic("* * * * *", "Kept"), periodic("* * * * *", "Dropped")};
  now_ = kNoon + 3 * kMinute + 10 * kSecond;
  reopen();
  tick_at(now_);
  ASSERT_EQ(waiting("cron"), 1u);
  EXPECT_EQ(fetch({"cron"})->jobtype, "Kept");
  tick_at(kNoon + 4 * kMinute);
  EXPECT_EQ(waiting("cron"), 2u);
}

}  // namespace
}  // namespace depot::jobs

namespace depot::jobs {
namespace {

// An interrupted iteration job is pushed again under its own jid while still reserved, then the
// worker ACKs the old run (Sidekiq, job-iteration).
TEST_F(JobStoreTest, PushOfAReservedJidReenqueuesItAndTheLaterAckIsANoOp) {
  ASSERT_FALSE(push(make_job("iter-0001")));
  ASSERT_TRUE(fetch());
  Job again = make_job("iter-0001");
  again.custom = R"({"cursor":5})";
  again.failure = Failure{2, 23, now_ - kMinute, 0, "boom", "RuntimeError", {}};
  ASSERT_FALSE(push(again));
  EXPECT_EQ(store_->stats().working, 0u);
  EXPECT_EQ(waiting("default"), 1u);
  ack("iter-0001");  // the old run's ACK: the reservation already ended
  EXPECT_EQ(store_->stats().total_processed, 0u);
  EXPECT_EQ(waiting("default"), 1u);
  EXPECT_EQ(store_->fail("iter-0001", {}, nullptr).error(), errc::job_not_found);

  reopen();  // the ACK wrote no tombstone over the re-enqueued job
  EXPECT_EQ(store_->stats().working, 0u);
  EXPECT_EQ(waiting("default"), 1u);
  auto job = fetch();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->jid, "iter-0001");
  EXPECT_EQ(job->custom, R"({"cursor":5})");
  ASSERT_TRUE(job->failure);
  EXPECT_EQ(job->failure->retry_count, 2);  // as pushed
  EXPECT_FALSE(fetch());
  ack("iter-0001");
  reopen();
  EXPECT_FALSE(fetch());
  EXPECT_EQ(store_->stats().working, 0u);
}

TEST_F(JobStoreTest, PushOfAReservedJidWithAtIsScheduledAndSurvivesRestartAndCompaction) {
  ASSERT_FALSE(push(make_job("iter-0002")));
  ASSERT_TRUE(fetch());
  Job later = make_job("iter-0002");
  later.custom = R"({"cursor":9})";
  later.at = now_ + 30 * kSecond;
  ASSERT_FALSE(push(later));
  ack("iter-0002");
  EXPECT_EQ(store_->stats().scheduled, 1u);
  EXPECT_EQ(store_->stats().working, 0u);
  reopen();
  EXPECT_EQ(store_->stats().scheduled, 1u);
  EXPECT_EQ(store_->stats().working, 0u);
  ASSERT_TRUE(store_->compact());
  reopen();
  EXPECT_EQ(store_->stats().scheduled, 1u);
  EXPECT_EQ(store_->stats().working, 0u);
  EXPECT_FALSE(fetch());
  tick_at(now_ + 30 * kSecond);
  auto job = fetch();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->custom, R"({"cursor":9})");
  EXPECT_FALSE(fetch());
}

TEST_F(JobStoreTest, CompactionAfterAReenqueueKeepsOnlyTheNewJob) {
  ASSERT_FALSE(push(make_job("iter-0003")));
  ASSERT_TRUE(fetch());
  Job again = make_job("iter-0003");
  again.custom = R"({"cursor":2})";
  ASSERT_FALSE(push(again));
  // Compaction between the re-push and the old run's ACK, and after it.
  ASSERT_TRUE(store_->compact());
  ack("iter-0003");
  ASSERT_TRUE(store_->compact());
  reopen();
  EXPECT_EQ(store_->stats().working, 0u);
  auto job = fetch();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->custom, R"({"cursor":2})");
  EXPECT_FALSE(fetch());
}

TEST_F(JobStoreTest, PushOfAReservedUniqueJobKeepsItsLock) {
  Job job = make_job("uniq-iter1");
  job.unique_for = 3600;
  ASSERT_FALSE(push(job));
  EXPECT_EQ(push(job), errc::not_unique);  // waiting, not reserved: its own lock still refuses
  ASSERT_TRUE(fetch());
  job.custom = R"({"cursor":3,"unique_for":3600})";
  EXPECT_FALSE(push(job));  // reserved: the lock is its own
  ack("uniq-iter1");        // no-op: the lock stays with the re-enqueued job
  Job twin = job;
  twin.jid = "uniq-iter2";
  EXPECT_EQ(push(twin), errc::not_unique);
  reopen();
  EXPECT_EQ(push(twin), errc::not_unique);
  auto again = fetch();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->custom, R"({"cursor":3,"unique_for":3600})");
  ack("uniq-iter1");
  EXPECT_FALSE(push(twin));
}

}  // namespace
}  // namespace depot::jobs

namespace depot::jobs {
namespace {

class CheckpointTest : public JobStoreTest {
 protected:
  // update_reserved() setting the job's custom, waiting until it is durable.
  std::error_code checkpoint(const std::string& jid, std::optional<std::string> custom,
                             std::optional<Progress> progress = std::nullopt,
                             const std::string& wid = "worker-1") {
    std::promise<std::error_code> durable;
    std::function<Result<void>(Job&)> edit;
    if (custom) {
      edit = [custom](Job& job) -> Result<void> {
        job.custom = *custom;
        return success();
      };
    }
    auto result = store_->update_reserved(jid, wid, edit, progress,
                                          [&](std::error_code ec) { durable.set_value(ec); });
    if (!result) return result.error();
    return durable.get_future().get();
  }
  Job reserved(const std::string& jid) {
    Job job = make_job(jid);
    job.reserve_for = 60;
    EXPECT_FALSE(push(job));
    auto fetched = fetch();
    EXPECT_TRUE(fetched && fetched->jid == jid);
    return job;
  }
};

TEST_F(CheckpointTest, TheEditIsJournaledAndTheReservationRenewed) {
  reserved("long-0001");
  const UnixNanos reserved_at = now_;
  now_ += 50 * kSecond;
  ASSERT_FALSE(checkpoint("long-0001", R"({"cursor":7})", Progress{3, 10}));
  const UnixNanos checkpointed_at = now_;
  auto listed = store_->reservations(10);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].reserved_at, reserved_at);
  EXPECT_EQ(listed[0].expires_at, checkpointed_at + 60 * kSecond);
  EXPECT_EQ(listed[0].progress, (Progress{3, 10}));
  EXPECT_EQ(listed[0].progress_at, checkpointed_at);
  tick_at(reserved_at + 100 * kSecond);  // past the first reservation's end: renewed
  EXPECT_EQ(store_->stats().working, 1u);

  // Restart and compaction restore the checkpointed job; its progress is not journaled.
  reopen();
  EXPECT_EQ(store_->stats().working, 1u);
  EXPECT_TRUE(store_->stats().progress.empty());
  EXPECT_EQ(store_->reservations(10).at(0).expires_at, checkpointed_at + 60 * kSecond);
  EXPECT_FALSE(store_->reservations(10).at(0).progress);
  ASSERT_TRUE(store_->compact());
  reopen();
  EXPECT_EQ(store_->reservations(10).at(0).wid, "worker-1");

  // Expiry fails the checkpointed job into the retries; it comes back as checkpointed.
  tick_at(checkpointed_at + 60 * kSecond);
  EXPECT_EQ(store_->stats().working, 0u);
  auto retries = store_->list(JobSet::retries, 10).value();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].custom, R"({"cursor":7})");
  EXPECT_EQ(retries[0].failure->errtype, "ReservationExpired");
  tick_at(retries[0].failure->next_at);
  auto job = fetch();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->custom, R"({"cursor":7})");
}

TEST_F(CheckpointTest, FailAfterACheckpointRetriesTheCheckpointedJob) {
  reserved("long-0002");
  ASSERT_FALSE(checkpoint("long-0002", R"({"cursor":42})"));
  fail("long-0002");
  auto retries = store_->list(JobSet::retries, 10).value();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].custom, R"({"cursor":42})");
  EXPECT_EQ(retries[0].failure->message, "boom");
}

TEST_F(CheckpointTest, OnlyTheReservingWorkerMayCheckpoint) {
  const Job job = reserved("long-0003");
  EXPECT_EQ(checkpoint("long-0003", R"({"x":1})", std::nullopt, "worker-2"),
            errc::reserved_by_other);
  EXPECT_EQ(checkpoint("no-such-job", R"({"x":1})"), errc::job_not_found);
  // An edit that fails changes nothing.
  auto refused = store_->update_reserved(
      "long-0003", "worker-1",
      [](Job& j) -> Result<void> {
        j.custom = "changed";
        return std::make_error_code(std::errc::invalid_argument);
      },
      Progress{1, std::nullopt}, nullptr);
  EXPECT_EQ(refused.error(), std::errc::invalid_argument);
  EXPECT_TRUE(store_->stats().progress.empty());
  reopen();
  fail("long-0003");
  EXPECT_EQ(store_->list(JobSet::retries, 10).value().at(0).custom, job.custom);
  EXPECT_EQ(checkpoint("long-0003", R"({"x":1})"), errc::job_not_found);  // no longer reserved
}

TEST_F(CheckpointTest, StatsListProgressMostRecentFirst) {
  reserved("long-0004");
  reserved("long-0005");
  reserved("long-0006");  // never reports progress
  ASSERT_FALSE(checkpoint("long-0004", std::nullopt, Progress{1, 100}));
  now_ += kSecond;
  ASSERT_FALSE(checkpoint("long-0005", std::nullopt, Progress{5, std::nullopt}));
  now_ += kSecond;
  ASSERT_FALSE(checkpoint("long-0004", std::nullopt));  // no progress: the last report stays
  auto progress = store_->stats().progress;
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].jid, "long-0005");
  EXPECT_EQ(progress[0].progress, (Progress{5, std::nullopt}));
  EXPECT_EQ(progress[1].jid, "long-0004");
  EXPECT_EQ(progress[1].progress, (Progress{1, 100}));
  EXPECT_EQ(progress[1].progress_at, now_ - 2 * kSecond);
  EXPECT_EQ(progress[1].queue, "default");
  EXPECT_EQ(progress[1].jobtype, "SendEmail");
  EXPECT_EQ(progress[1].wid, "worker-1");
  EXPECT_EQ(store_->stats().working, 3u);
  EXPECT_EQ(store_->reservations(2).size(), 2u);
  ack("long-0005");
  EXPECT_EQ(store_->stats().progress.size(), 1u);
}

TEST_F(CheckpointTest, StatsListAtMostAHundredReservationsWithProgress) {
  for (int i = 0; i < 105; ++i) {
    const std::string jid = fmt::format("many-{:04d}", i);
    reserved(jid);
    now_ += kSecond;
    ASSERT_FALSE(checkpoint(jid, std::nullopt, Progress{i, std::nullopt}));
  }
  auto progress = store_->stats().progress;
  ASSERT_EQ(progress.size(), kMaxProgressInStats);
  EXPECT_EQ(progress.front().jid, "many-0104");
  EXPECT_EQ(progress.back().jid, "many-0005");
}

TEST_F(CheckpointTest, AUniqueForChangedByACheckpointMovesTheLock) {
  Job job = reserved("uniq-long1");
  ASSERT_FALSE(checkpoint("uniq-long1", std::nullopt));
  auto edit = [](Job& j) -> Result<void> {
    j.unique_for = 3600;
    return success();
  };
  ASSERT_TRUE(store_->update_reserved("uniq-long1", "worker-1", edit, std::nullopt, nullptr));
  Job twin = job;
  twin.jid = "uniq-long2";
  twin.unique_for = 3600;
  EXPECT_EQ(push(twin), errc::not_unique);
  ack("uniq-long1");
  EXPECT_FALSE(push(twin));
}

}  // namespace
}  // namespace depot::jobs
