// The segmented log: offsets, reads, rolls, indexes, time look-up, truncation, retention, reopen,
// index rebuild, fault injection and group commit.
#include <fstream>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/errc.h"
#include "test_support.h"

namespace depot::storage {
namespace {
using namespace testing;

class LogTest : public ::testing::Test {
 protected:
  std::shared_ptr<Log> open_log(LogConfig config = {}, FileSystem* fs = nullptr) {
    auto log = Log::open({dir_.path() / "log", config, &sync_, fs, [this] { return now_; }});
    EXPECT_TRUE(log) << log.error().message();
    return log.value();
  }
  AppendInfo append(Log& log, Bytes batch) {
    auto r = log.append_and_wait(batch);
    EXPECT_TRUE(r) << r.error().message();
    return r.value();
  }

  TempDir dir_;
  SyncService sync_{FsyncPolicy{}};
  int64_t now_ = 1'000'000;
};

TEST_F(LogTest, AssignsOffsetsAndReadsBack) {
  auto log = open_log();
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 0);
  EXPECT_EQ(append(*log, make_batch(3, "a", "x")).base_offset, 0);
  AppendInfo second = append(*log, make_batch(2, "b", "y"));
  EXPECT_EQ(second.base_offset, 3);
  EXPECT_EQ(second.last_offset, 4);
  EXPECT_EQ(log->log_end_offset(), 5);
  EXPECT_EQ(log->durable_offset(), 4);

  auto rows = read_all(*log);
  ASSERT_EQ(rows.size(), 5u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(rows[i].offset, i);
  EXPECT_EQ(rows[3].key, "b0");
  EXPECT_EQ(rows[4].value, "y");

  // Reading from the middle of a batch returns the whole batch containing the offset.
  auto mid = log->read(1, 1);
  ASSERT_TRUE(mid);
  EXPECT_EQ(validate_batch(mid.value().data).value().base_offset, 0);
  EXPECT_EQ(mid.value().next_offset, 3);
  // At the end: nothing, and no error. Past either end: out of range.
  auto end = log->read(5, 1000);
  ASSERT_TRUE(end);
  EXPECT_TRUE(end.value().data.empty());
  EXPECT_EQ(log->read(6, 1000).error(), errc::offset_out_of_range);
  EXPECT_EQ(log->read(-1, 1000).error(), errc::offset_out_of_range);
}

TEST_F(LogTest, AnOpenThatFailsReturnsTheError) {
  std::ofstream(dir_.path() / "log") << "a file where the log's directory should be";
  auto log = Log::open({dir_.path() / "log", {}, &sync_, nullptr, [this] { return now_; }});
  EXPECT_FALSE(log);
}

TEST_F(LogTest, RefusesInvalidBatches) {
  auto log = open_log(LogConfig{.max_batch_bytes = 200});
  Bytes big = make_batch(10, "k", std::string(100, 'v'));
  EXPECT_EQ(log->append(big).error(), errc::batch_too_large);
  Bytes corrupt = make_batch(1, "k", "v");
  corrupt.back() ^= std::byte{1};
  EXPECT_EQ(log->append(corrupt).error(), errc::crc_mismatch);
  Bytes two = make_batch(1, "k", "v");
  Bytes extra = make_batch(1, "k", "v");
  two.insert(two.end(), extra.begin(), extra.end());
  EXPECT_EQ(log->append(two).error(), errc::bad_batch_length);
  EXPECT_EQ(log->log_end_offset(), 0);
}

TEST_F(LogTest, AppendCheckedTrustsTheCrcButNotTheShape) {
  auto log = open_log(LogConfig{.max_batch_bytes = 200});
  Bytes good = make_batch(2, "k", "v", now_);
  auto header = parse_batch_header(good);
  ASSERT_TRUE(header);
  // Sizes are still checked: a header of another batch, or a batch over the limit, is refused.
  Bytes two = make_batch(1, "k", "v");
  Bytes extra = make_batch(1, "k", "v");
  auto first = parse_batch_header(two).value();
  two.insert(two.end(), extra.begin(), extra.end());
  EXPECT_EQ(log->append_checked(two, first).error(), errc::bad_batch_length);
  Bytes big = make_batch(10, "k", std::string(100, 'v'));
  EXPECT_EQ(log->append_checked(big, parse_batch_header(big).value()).error(),
            errc::batch_too_large);
  EXPECT_EQ(log->log_end_offset(), 0);

  auto appended = log->append_checked(good, header.value());
  ASSERT_TRUE(appended) << appended.error().message();
  EXPECT_EQ(appended.value().last_offset, 1);
  // What was appended is a valid batch at its new offsets, read back the same after reopening.
  EXPECT_EQ(read_all(*log), (std::vector<Row>{{0, "k0", "v", now_}, {1, "k1", "v", now_ + 1}}));
  ASSERT_TRUE(log->close());
  log = open_log(LogConfig{.max_batch_bytes = 200});
  EXPECT_EQ(read_all(*log), (std::vector<Row>{{0, "k0", "v", now_}, {1, "k1", "v", now_ + 1}}));
}

TEST_F(LogTest, ReadsAreBoundedByMaxBytesButNeverSplitABatch) {
  auto log = open_log();
  size_t batch_size = make_batch(10, "k", std::string(100, 'v')).size();
  for (int i = 0; i < 10; ++i)
    append(*log, make_batch(10, "k", std::string(100, 'v')));
  auto r = log->read(0, batch_size * 3 + batch_size / 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().data.size(), batch_size * 3);
  EXPECT_EQ(r.value().next_offset, 30);
  auto tiny = log->read(0, 10);  // smaller than one batch: the first batch still comes whole
  ASSERT_TRUE(tiny);
  EXPECT_EQ(tiny.value().data.size(), batch_size);
}

TEST_F(LogTest, RollsBySizeAndFindsEveryOffsetThroughTheIndex) {
  auto log = open_log(LogConfig{.segment_bytes = 8 * 1024, .index_interval_bytes = 512});
  std::vector<Row> expected;
  for (int b = 0; b < 200; ++b) {
    append(*log, make_batch(1 + b % 4, "k" + std::to_string(b) + "-", std::string(b % 97, 'v')));
  }
  EXPECT_GT(log->segment_count(), 5u);
  auto rows = read_all(*log, 700);
  ASSERT_EQ(static_cast<int64_t>(rows.size()), log->log_end_offset());
  for (const auto& row : rows) {
    auto r = log->read(row.offset, 1);
    ASSERT_TRUE(r);
    auto h = validate_batch(r.value().data).value();
    EXPECT_LE(h.base_offset, row.offset);
    EXPECT_GE(h.last_offset(), row.offset);
  }
  // Reopening (clean) loads indexes and gives identical reads.
  log->close().value();
  log.reset();
  log = open_log(LogConfig{.segment_bytes = 8 * 1024, .index_interval_bytes = 512});
  EXPECT_EQ(read_all(*log, 700), rows);
}

TEST_F(LogTest, RollsByAge) {
  auto log = open_log(LogConfig{.segment_ms = 60'000});
  append(*log, make_batch(1, "k", "v", now_));
  now_ += 30'000;
  append(*log, make_batch(1, "k", "v", now_));
  EXPECT_EQ(log->segment_count(), 1u);
  now_ += 31'000;
  append(*log, make_batch(1, "k", "v", now_));
  EXPECT_EQ(log->segment_count(), 2u);
}

TEST_F(LogTest, LooksUpOffsetsByTimestamp) {
  auto log = open_log(LogConfig{.segment_bytes = 4096, .index_interval_bytes = 256});
  // Timestamps 0, 10, 20, ... one record per batch, with one out-of-order record.
  for (int i = 0; i < 300; ++i) {
    int64_t ts = i == 150 ? 5 : i * 10;
    append(*log, make_batch(1, "k", std::string(40, 'v'), ts));
  }
  EXPECT_GT(log->segment_count(), 3u);
  EXPECT_EQ(log->offset_for_timestamp(0).value()->offset, 0);
  EXPECT_EQ(log->offset_for_timestamp(10).value()->offset, 1);
  EXPECT_EQ(log->offset_for_timestamp(11).value()->offset, 2);
  EXPECT_EQ(log->offset_for_timestamp(1495).value()->offset, 151);  // 150 holds ts 5
  EXPECT_EQ(log->offset_for_timestamp(2990).value()->offset, 299);
  EXPECT_FALSE(log->offset_for_timestamp(2991).value().has_value());
  // Within one multi-record batch the first record at or after the time is chosen.
  append(*log, make_batch(5, "m", "v", 5000));  // timestamps 5000..5004 at offsets 300..304
  EXPECT_EQ(log->offset_for_timestamp(5003).value()->offset, 303);
}

TEST_F(LogTest, TruncatesToABatchBoundary) {
  auto log = open_log(LogConfig{.segment_bytes = 2048});
  for (int i = 0; i < 50; ++i)
    append(*log, make_batch(2, "k", std::string(50, 'v')));
  size_t segments = log->segment_count();
  ASSERT_GT(segments, 2u);
  ASSERT_TRUE(log->truncate(41));  // inside batch [40, 41]: that batch goes too
  EXPECT_EQ(log->log_end_offset(), 40);
  EXPECT_LT(log->segment_count(), segments);
  EXPECT_EQ(append(*log, make_batch(1, "n", "new")).base_offset, 40);
  auto rows = read_all(*log);
  ASSERT_EQ(rows.size(), 41u);
  EXPECT_EQ(rows.back().key, "n0");
  log->close().value();
  log.reset();
  log = open_log(LogConfig{.segment_bytes = 2048});
  EXPECT_EQ(read_all(*log), rows);
}

TEST_F(LogTest, RetentionBySizeDeletesOldestWholeSegments) {
  LogConfig config{.segment_bytes = 1024, .retention_bytes = 3000};
  auto log = open_log(config);
  for (int i = 0; i < 40; ++i)
    append(*log, make_batch(1, "k", std::string(200, 'v')));
  uint64_t before = log->size_bytes();
  auto deleted = log->enforce_retention();
  ASSERT_TRUE(deleted);
  EXPECT_GT(deleted.value(), 0u);
  EXPECT_GE(log->size_bytes(), 3000u);          // Kafka keeps at least retention.bytes...
  EXPECT_LT(log->size_bytes(), 3000u + 1024u);  // ...and at most one segment more
  EXPECT_LT(log->size_bytes(), before);
  int64_t start = log->log_start_offset();
  EXPECT_GT(start, 0);
  EXPECT_EQ(log->read(start - 1, 100).error(), errc::offset_out_of_range);
  auto rows = read_all(*log);
  EXPECT_EQ(rows.front().offset, start);
  EXPECT_EQ(rows.back().offset, 39);
}

TEST_F(LogTest, RetentionByTimeDeletesExpiredSegmentsIncludingTheActiveOne) {
  LogConfig config{.segment_bytes = 1024, .retention_ms = 60'000};
  auto log = open_log(config);
  for (int i = 0; i < 20; ++i)
    append(*log, make_batch(1, "k", std::string(200, 'v'), now_ - 120'000));
  for (int i = 0; i < 5; ++i)
    append(*log, make_batch(1, "k", std::string(200, 'v'), now_));
  ASSERT_TRUE(log->enforce_retention());
  EXPECT_EQ(read_all(*log).front().offset, log->log_start_offset());
  EXPECT_LE(log->log_start_offset(), 20);
  EXPECT_GE(log->log_start_offset(), 16);  // the segment holding offset 20 also holds old ones
  now_ += 10 * 60'000;                     // everything is old now
  ASSERT_TRUE(log->enforce_retention());
  EXPECT_EQ(log->log_start_offset(), 25);
  EXPECT_EQ(log->log_end_offset(), 25);
  EXPECT_EQ(append(*log, make_batch(1, "k", "v", now_)).base_offset, 25);
}

TEST_F(LogTest, RebuildsAMissingOrDamagedIndex) {
  LogConfig config{.segment_bytes = 16 * 1024, .index_interval_bytes = 256};
  auto log = open_log(config);
  for (int i = 0; i < 300; ++i)
    append(*log, make_batch(2, "k", std::string(30, 'v'), i));
  auto rows = read_all(*log);
  log->close().value();
  log.reset();
  auto index0 = segment_index_path(dir_.path() / "log", 0);
  std::filesystem::remove(index0);
  auto index1 = segment_index_path(dir_.path() / "log", rows[rows.size() / 2].offset);
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "log")) {
    if (entry.path().extension() == ".index" && entry.path() != index0) {
      std::filesystem::resize_file(entry.path(), 20);  // not a multiple of the entry size
      break;
    }
  }
  (void)index1;
  log = open_log(config);
  EXPECT_EQ(read_all(*log), rows);
  EXPECT_EQ(log->offset_for_timestamp(200).value()->offset, 399);  // batch 199 holds ts 199, 200
  EXPECT_TRUE(std::filesystem::exists(index0));
}

TEST_F(LogTest, RecoversFromATornTailAtEveryByte) {
  // Cut the last segment at every byte of its last batch: the log must come back with exactly
  // the earlier batches, and accept new appends at the right offset.
  auto path = dir_.path() / "log";
  std::vector<Row> before_last;
  uint64_t last_start = 0, last_end = 0;
  {
    auto log = open_log();
    for (int i = 0; i < 5; ++i)
      append(*log, make_batch(3, "k", "value-" + std::to_string(i)));
    before_last = read_all(*log);
    last_start = log->size_bytes();
    append(*log, make_batch(4, "last", "the last batch"));
    last_end = log->size_bytes();
    log->close().value();
  }
  auto seg = segment_log_path(path, 0);
  Bytes full(last_end);
  {
    FILE* f = std::fopen(seg.c_str(), "rb");
    ASSERT_EQ(std::fread(full.data(), 1, full.size(), f), full.size());
    std::fclose(f);
  }
  for (uint64_t cut = last_start; cut < last_end; ++cut) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    FILE* f = std::fopen(seg.c_str(), "wb");
    std::fwrite(full.data(), 1, cut, f);
    std::fclose(f);  // no clean-shutdown marker and no index: a crash
    auto log = open_log();
    ASSERT_EQ(read_all(*log), before_last) << "cut at " << cut;
    // A torn prefix of zero bytes (the high bytes of the base offset) looks exactly like space
    // allocated ahead of the writer, and is dropped without being counted as damage.
    bool zeros = std::all_of(full.begin() + static_cast<ptrdiff_t>(last_start),
                             full.begin() + static_cast<ptrdiff_t>(cut),
                             [](std::byte b) { return b == std::byte{0}; });
    EXPECT_EQ(log->recovered_truncated_bytes(), zeros ? 0 : cut - last_start) << "cut at " << cut;
    EXPECT_EQ(append(*log, make_batch(1, "n", "v")).base_offset, 15);
    // Closed here, not by the last reference: that may be the sync thread's, a moment later,
    // while the next round is already emptying the directory.
    log->close().value();
  }
}

TEST_F(LogTest, RecoveryCutsACorruptTailBatch) {
  auto path = dir_.path() / "log";
  std::vector<Row> good;
  {
    auto log = open_log();
    for (int i = 0; i < 4; ++i)
      append(*log, make_batch(2, "k", "v"));
    good = read_all(*log);
    append(*log, make_batch(2, "bad", "soon corrupt"));
    // No close(): the log will be opened as after a crash.
    std::filesystem::remove(path / ".clean-shutdown");
    // Into the last batch, which ends before the file does (space is allocated ahead).
    FILE* f = std::fopen(segment_log_path(path, 0).c_str(), "r+b");
    std::fseek(f, static_cast<long>(log->size_bytes()) - 3, SEEK_SET);
    std::fputc('X', f);
    std::fclose(f);
    log->close().value();
    std::filesystem::remove(path / ".clean-shutdown");
  }
  auto log = open_log();
  EXPECT_EQ(read_all(*log), good);
  EXPECT_GT(log->recovered_truncated_bytes(), 0u);
}

TEST_F(LogTest, AllocatesAheadOfTheWriterAndRecoveryDropsTheZeros) {
  LogConfig config;
  config.preallocate_bytes = 64 * 1024;
  config.segment_bytes = 256 * 1024;
  auto path = dir_.path() / "log";
  auto log = open_log(config);
  for (int i = 0; i < 10; ++i)
    append(*log, make_batch(2, "k", "value-" + std::to_string(i)));
  const auto rows = read_all(*log);
  const uint64_t logical = log->size_bytes();
  EXPECT_GT(std::filesystem::file_size(segment_log_path(path, 0)), logical);

  // A crash now leaves the allocated zeros behind the last batch: a copy of the files is what a
  // restart would find. They are not damage, and appends continue at the right offset.
  auto crashed = dir_.path() / "crashed";
  std::filesystem::copy(path, crashed);
  std::filesystem::remove(crashed / ".clean-shutdown");
  {
    auto copy = Log::open({crashed, config, &sync_, nullptr, [this] { return now_; }}).value();
    EXPECT_EQ(read_all(*copy), rows);
    EXPECT_EQ(copy->recovered_truncated_bytes(), 0u);
    EXPECT_EQ(append(*copy, make_batch(1, "n", "v")).base_offset, 20);
    copy->close().value();
  }

  // Rolling gives the old segment's space back; so does a clean close for the active one.
  while (log->segment_count() < 2)
    append(*log, make_batch(8, "k", std::string(1000, 'x')));
  const uint64_t first_at_roll = std::filesystem::file_size(segment_log_path(path, 0));
  log->close().value();
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() == ".log") total += entry.file_size();
  }
  EXPECT_EQ(total, log->size_bytes());
  EXPECT_EQ(std::filesystem::file_size(segment_log_path(path, 0)),
            first_at_roll);  // already trimmed at the roll
}

TEST_F(LogTest, AppendsWorkWhenSpaceCannotBeAllocatedAhead) {
  FaultyFileSystem fs;
  fs.fail_allocate = true;
  auto log = open_log({}, &fs);
  for (int i = 0; i < 3; ++i)
    append(*log, make_batch(2, "k", "v"));
  EXPECT_EQ(std::filesystem::file_size(segment_log_path(dir_.path() / "log", 0)),
            log->size_bytes());
  EXPECT_EQ(read_all(*log).size(), 6u);
  // Closed before `fs` goes (here and in the tests below): the sync thread may hold the last
  // reference a moment after the last append completes, and would close through a destroyed
  // file system.
  log->close().value();
}

TEST_F(LogTest, AFailedWriteLeavesNoPartialBatch) {
  FaultyFileSystem fs;
  auto log = open_log({}, &fs);
  append(*log, make_batch(2, "k", "v"));
  fs.fail_write_number = fs.writes + 1;
  fs.short_write_bytes = 10;  // a torn write: 10 bytes land, then ENOSPC
  Bytes batch = make_batch(2, "k", "w");
  auto failed = log->append(batch);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), std::errc::no_space_on_device);
  EXPECT_EQ(log->log_end_offset(), 2);
  EXPECT_EQ(log->size_bytes(), make_batch(2, "k", "v").size());
  // The disk has room again: appends continue where they were.
  EXPECT_EQ(append(*log, make_batch(1, "k", "again")).base_offset, 2);
  log->close().value();
  log.reset();
  log = open_log({}, &fs);
  EXPECT_EQ(read_all(*log).size(), 3u);
  log->close().value();
}

TEST_F(LogTest, AFailedFsyncFailsTheWaitersAndTheLog) {
  FaultyFileSystem fs;
  auto log = open_log({}, &fs);
  append(*log, make_batch(1, "k", "v"));
  fs.fail_datasync = true;
  Bytes batch = make_batch(1, "k", "v");
  auto r = log->append_and_wait(batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::log_failed);
  Bytes next = make_batch(1, "k", "v");
  EXPECT_EQ(log->append(next).error(), errc::log_failed);  // no retry after a failed fsync
  (void)log->close();                                      // fails: the log has failed
}

TEST_F(LogTest, GroupCommitSharesOneFsyncAmongConcurrentAppenders) {
  FaultyFileSystem fs;
  auto log = open_log({}, &fs);
  constexpr int kThreads = 32, kAppends = 50;
  int syncs_before = fs.datasyncs;
  std::vector<std::thread> threads;
  std::atomic<int> done{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        Bytes batch = make_batch(1, "t" + std::to_string(t), std::to_string(i));
        auto r = log->append_and_wait(batch);
        ASSERT_TRUE(r) << r.error().message();
        // Completion means durable: the durable offset already covers this append.
        EXPECT_GE(log->durable_offset(), r.value().last_offset);
        ++done;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(done, kThreads * kAppends);
  int syncs = fs.datasyncs - syncs_before;
  EXPECT_GT(syncs, 0);
  EXPECT_LT(syncs, kThreads * kAppends / 2) << "fsyncs were not shared";
  EXPECT_EQ(read_all(*log).size(), static_cast<size_t>(kThreads * kAppends));
  log->close().value();
}

TEST_F(LogTest, IntervalAndNeverPoliciesCompleteWithoutWaitingForFsync) {
  // An interval far longer than the appends take, so that no timer sync can land among them.
  for (auto policy : {FsyncPolicy{FsyncMode::interval, std::chrono::milliseconds(60'000)},
                      FsyncPolicy{FsyncMode::never, {}}}) {
    SyncService sync(policy);
    FaultyFileSystem fs;
    TempDir dir;
    auto log = Log::open({dir.path() / "log", {}, &sync, &fs, {}}).value();
    int before = fs.datasyncs;
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(append_now(*log, make_batch(1, "k", "v")));
    EXPECT_EQ(fs.datasyncs - before, 0) << policy.to_string();
    EXPECT_LT(log->durable_offset(), 19) << policy.to_string();
    // Readers see everything written: the policy promises no more than that.
    EXPECT_EQ(log->readable_end(), 20) << policy.to_string();
    log->close().value();
  }
}

TEST_F(LogTest, UnderFsyncAlwaysReadersSeeOnlyWhatIsDurable) {
  auto log = open_log();
  auto first = make_batch(3, "k", "v");
  ASSERT_TRUE(log->append_and_wait(first));
  EXPECT_EQ(log->readable_end(), 3);
  auto pending = make_batch(2, "k", "v");
  ASSERT_TRUE(log->append(pending));  // written, no sync asked for yet
  EXPECT_EQ(log->log_end_offset(), 5);
  EXPECT_EQ(log->readable_end(), 3);
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(log->readable_end(), 5);
}

// A file range's bytes, as the kernel would send them.
Bytes bytes_of(const FileRange& range) {
  Bytes out(range.size);
  EXPECT_EQ(::pread(range.fd, out.data(), out.size(), static_cast<off_t>(range.offset)),
            static_cast<ssize_t>(out.size()));
  return out;
}

TEST_F(LogTest, ReadsForSendingGiveWhatReadGivesLargeRunsAsFileRanges) {
  const LogConfig config{.segment_bytes = 256 * 1024, .index_interval_bytes = 4096};
  auto log = open_log(config);
  for (int b = 0; b < 400; ++b)
    append(*log, make_batch(1 + b % 5, "k", std::string((b * 37) % 3000, 'v')));
  ASSERT_GT(log->segment_count(), 2u);
  const int64_t end = log->log_end_offset();
  size_t ranges = 0;
  for (int64_t offset = 0; offset <= end; offset += 13) {
    for (size_t max_bytes : {size_t{1}, size_t{5000}, size_t{70000}, size_t{200000}}) {
      for (int64_t end_offset : {end, offset + 40, end - 7}) {
        auto read = log->read(offset, max_bytes, end_offset);
        auto sent = log->read_for_sending(offset, max_bytes, end_offset);
        ASSERT_TRUE(read && sent) << offset;
        const bool from_file = sent.value().file.size > 0;
        ranges += from_file ? 1 : 0;
        EXPECT_EQ(from_file, sent.value().file.size >= Log::kSendFromFileMin);
        EXPECT_TRUE(!from_file || sent.value().data.empty());
        const Bytes got = from_file ? bytes_of(sent.value().file) : sent.value().data;
        EXPECT_EQ(got, read.value().data) << offset << " " << max_bytes << " " << end_offset;
        EXPECT_EQ(sent.value().next_offset, read.value().next_offset) << offset;
        EXPECT_EQ(sent.value().log_end_offset, read.value().log_end_offset);
      }
    }
  }
  EXPECT_GT(ranges, 50u);
  EXPECT_EQ(log->read_for_sending(end + 1, 100, end + 1).error(), errc::offset_out_of_range);

  // A file system without descriptors to send from: the same reads come as bytes.
  log->close().value();
  log.reset();
  FaultyFileSystem fs;
  auto faulty = open_log(config, &fs);  // declared after `fs`, so it goes first
  auto sent = faulty->read_for_sending(0, 200000, end);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent.value().file.size, 0u);
  EXPECT_EQ(sent.value().data, faulty->read(0, 200000, end).value().data);
}

TEST_F(LogTest, IntervalPolicySyncsInTheBackground) {
  SyncService sync(FsyncPolicy{FsyncMode::interval, std::chrono::milliseconds(20)});
  TempDir dir;
  auto log = Log::open({dir.path() / "log", {}, &sync, nullptr, {}}).value();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(append_now(*log, make_batch(1, "k", "v")));
  for (int i = 0; i < 1000 && log->durable_offset() < 19; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log->durable_offset(), 19);
}

TEST(FsyncPolicy, Parses) {
  EXPECT_EQ(FsyncPolicy::parse("always").value().mode, FsyncMode::always);
  EXPECT_EQ(FsyncPolicy::parse("never").value().mode, FsyncMode::never);
  auto interval = FsyncPolicy::parse("interval:250").value();
  EXPECT_EQ(interval.mode, FsyncMode::interval);
  EXPECT_EQ(interval.interval, std::chrono::milliseconds(250));
  EXPECT_EQ(interval.to_string(), "interval:250");
  EXPECT_FALSE(FsyncPolicy::parse("interval:0"));
  EXPECT_FALSE(FsyncPolicy::parse("interval:x"));
  EXPECT_FALSE(FsyncPolicy::parse("sometimes"));
}

}  // namespace
}  // namespace depot::storage
