// Key compaction: the newest record per key survives, offsets never move, tombstones go after
// delete_retention_ms, and replaying the log gives the same final state as before.
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "test_support.h"

namespace depot::storage {
namespace {
using namespace testing;

std::map<std::string, std::string> final_state(const std::vector<Row>& rows) {
  std::map<std::string, std::string> state;
  for (const auto& row : rows) {
    if (row.value == "<null>") {
      state.erase(row.key);
    } else {
      state[row.key] = row.value;
    }
  }
  return state;
}

class CompactionTest : public ::testing::Test {
 protected:
  std::shared_ptr<Log> open_log() {
    LogConfig config{
        .segment_bytes = 2048, .index_interval_bytes = 256, .delete_retention_ms = 60'000};
    return Log::open({dir_.path() / "log", config, &sync_, nullptr, [this] { return now_; }})
        .value();
  }
  TempDir dir_;
  SyncService sync_{FsyncPolicy{FsyncMode::never, {}}};
  int64_t now_ = 10'000'000;
};

TEST_F(CompactionTest, KeepsTheNewestRecordPerKeyAtItsOffset) {
  auto log = open_log();
  std::mt19937 rng(3);
  for (int i = 0; i < 400; ++i) {
    // Batches of 1-3 records over 20 keys, so some batches lose only part of their records.
    RecordBatchBuilder builder;
    int n = 1 + static_cast<int>(rng() % 3);
    for (int r = 0; r < n; ++r) {
      std::string key = "key-" + std::to_string(rng() % 20);
      std::string value = "v" + std::to_string(i) + "." + std::to_string(r);
      std::string hv = "h";
      std::vector<HeaderInput> headers = {{"trace", as_bytes(hv)}};
      builder.add(as_bytes(key), as_bytes(value), now_, headers);
    }
    Bytes batch = builder.build();
    ASSERT_TRUE(log->append(batch));
  }
  auto before = read_all(*log);
  uint64_t size_before = log->size_bytes();
  auto stats = log->compact();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_GT(stats.value().records_removed, 300u);
  EXPECT_LT(log->size_bytes(), size_before);

  auto after = read_all(*log);
  EXPECT_EQ(final_state(after), final_state(before));
  // Each survivor is exactly the record that was at its offset before.
  std::map<int64_t, Row> by_offset;
  for (const auto& row : before)
    by_offset[row.offset] = row;
  for (const auto& row : after)
    EXPECT_EQ(by_offset.at(row.offset), row);
  // Offsets are unchanged: the log end and the next append's offset are what they were.
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(append_now(*log, make_batch(1, "x", "y")).value().base_offset,
            before.back().offset + 1);
  // Reading from any old offset works (it may land on the next survivor).
  for (const auto& row : before)
    ASSERT_TRUE(log->read(row.offset, 100)) << row.offset;
  // And the compacted log reopens the same after a crash (full verification).
  auto compacted = read_all(*log);
  log->close().value();
  log.reset();
  std::filesystem::remove(dir_.path() / "log" / ".clean-shutdown");
  log = open_log();
  EXPECT_EQ(read_all(*log), compacted);
  EXPECT_EQ(log->recovered_truncated_bytes(), 0u);
}

TEST_F(CompactionTest, DropsTombstonesOnlyAfterTheDeleteRetention) {
  auto log = open_log();
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(append_only(
        *log, make_keyed("k" + std::to_string(i % 3), "value" + std::to_string(i), now_)));
  }
  ASSERT_TRUE(append_only(*log, make_keyed("k1", std::nullopt, now_)));  // delete k1
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(
        append_only(*log, make_keyed("other" + std::to_string(i), std::string(40, 'x'), now_)));
  }
  ASSERT_TRUE(log->roll());
  ASSERT_TRUE(log->compact());
  auto rows = read_all(*log);
  auto tombstone =
      std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.key == "k1"; });
  ASSERT_NE(tombstone, rows.end());  // still there: consumers must get to see the delete
  EXPECT_EQ(tombstone->value, "<null>");
  EXPECT_EQ(final_state(rows).count("k1"), 0u);

  now_ += 61'000;
  ASSERT_TRUE(log->compact());
  rows = read_all(*log);
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.key == "k1"; }), 0);
  EXPECT_EQ(final_state(rows).at("k0"), "value27");
  EXPECT_EQ(final_state(rows).at("k2"), "value29");
}

TEST_F(CompactionTest, LeavesTheActiveSegmentAlone) {
  auto log = open_log();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(append_only(*log, make_keyed("same", std::to_string(i), now_)));
  auto stats = log->compact();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats.value().records_removed, 0u);
  EXPECT_EQ(read_all(*log).size(), 5u);
}

}  // namespace
}  // namespace depot::storage
