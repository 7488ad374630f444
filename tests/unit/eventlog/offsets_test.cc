// Committed offsets: what is committed is fetched back, survives reopening, is deleted with its
// group (tombstones that survive reopening too), and compaction keeps the newest of each.
#include "eventlog/offsets.h"

#include <future>
#include <map>

#include <gtest/gtest.h>

#include "storage/record_batch.h"
#include "storage/sync_service.h"
#include "unit/server/test_support.h"

namespace depot::eventlog {
namespace {

class OffsetStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<OffsetStore> open(storage::LogConfig config = OffsetStore::default_log_config()) {
    auto store = OffsetStore::open(dir(), &sync_, config);
    EXPECT_TRUE(store) << store.error().message();
    return std::move(store).value();
  }
  std::filesystem::path dir() const { return dir_.path() / "offsets"; }

  // Every record in the log, read without the store: (key bytes, whether it has a value).
  std::vector<std::pair<std::string, bool>> raw_records() {
    auto log = storage::Log::open({dir(), OffsetStore::default_log_config(), &sync_, nullptr, {}});
    EXPECT_TRUE(log);
    std::vector<std::pair<std::string, bool>> out;
    EXPECT_TRUE(storage::for_each_record(*log.value(), 0, [&](const storage::RecordView& r) {
      out.emplace_back(std::string(as_chars(*r.key)), r.value.has_value());
    }));
    EXPECT_TRUE(log.value()->close());
    return out;
  }

  testing::TempDir dir_;
  storage::SyncService sync_{storage::FsyncPolicy{}};
  const int64_t now_ = storage::system_clock_ms();
};

TEST_F(OffsetStoreTest, CommittedOffsetsAreFetchedBackAndSurviveReopening) {
  {
    auto store = open();
    auto written = store->commit(
        "billing",
        std::vector<OffsetCommit>{
            {"orders", 0, 10, 3, "first"}, {"orders", 1, 20, -1, ""}, {"audit", 0, 7, 1, "a"}},
        now_);
    ASSERT_TRUE(written) << written.error().message();
    EXPECT_EQ(written.value(), 2);  // the log offset of the batch's last record
    std::promise<std::error_code> durable;
    store->when_durable(written.value(), [&](std::error_code ec) { durable.set_value(ec); });
    EXPECT_FALSE(durable.get_future().get());

    ASSERT_TRUE(store->commit("billing", std::vector<OffsetCommit>{{"orders", 0, 15, 4, "second"}},
                              now_ + 1));
    ASSERT_TRUE(store->commit("search", std::vector<OffsetCommit>{{"orders", 0, 5, -1, ""}}, now_));
    EXPECT_EQ(store->commit("search", {}, now_).value(), -1);  // nothing to write

    EXPECT_EQ(store->fetch("billing", "orders", 0), (CommittedOffset{15, 4, "second", now_ + 1}));
    EXPECT_FALSE(store->fetch("billing", "orders", 2));
    EXPECT_FALSE(store->fetch("billing", "nothing", 0));
    EXPECT_FALSE(store->fetch("nobody", "orders", 0));
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  EXPECT_EQ(store->groups(), (std::vector<std::string>{"billing", "search"}));
  const TopicOffsets billing = store->all("billing");
  ASSERT_EQ(billing.size(), 2u);
  EXPECT_EQ(billing.at("audit").at(0), (CommittedOffset{7, 1, "a", now_}));
  ASSERT_EQ(billing.at("orders").size(), 2u);
  EXPECT_EQ(billing.at("orders").at(0), (CommittedOffset{15, 4, "second", now_ + 1}));
  EXPECT_EQ(billing.at("orders").at(1), (CommittedOffset{20, -1, "", now_}));
  EXPECT_EQ(store->fetch("search", "orders", 0)->offset, 5);
  EXPECT_TRUE(store->all("nobody").empty());
}

TEST_F(OffsetStoreTest, DeletingAGroupWritesTombstonesThatSurviveReopening) {
  {
    auto store = open();
    ASSERT_TRUE(store->commit(
        "billing", std::vector<OffsetCommit>{{"orders", 0, 10, -1, ""}, {"orders", 1, 11, -1, ""}},
        now_));
    ASSERT_TRUE(store->commit("search", std::vector<OffsetCommit>{{"orders", 0, 5, -1, ""}}, now_));
    auto deleted = store->delete_group("billing", now_);
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted.value(), 4);  // two tombstones after three commits
    EXPECT_EQ(store->delete_group("billing", now_).value(), -1);  // nothing left to delete
    EXPECT_FALSE(store->fetch("billing", "orders", 0));
    EXPECT_EQ(store->groups(), std::vector<std::string>{"search"});
    ASSERT_TRUE(store->close());
  }
  const auto records = raw_records();
  ASSERT_EQ(records.size(), 5u);
  EXPECT_FALSE(records[3].second);  // tombstones: keys without values
  EXPECT_FALSE(records[4].second);
  EXPECT_EQ(records[3].first, records[0].first);

  {
    auto store = open();
    EXPECT_EQ(store->groups(), std::vector<std::string>{"search"});
    EXPECT_FALSE(store->fetch("billing", "orders", 1));
    // The group can start over.
    ASSERT_TRUE(
        store->commit("billing", std::vector<OffsetCommit>{{"orders", 1, 99, -1, ""}}, now_));
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  EXPECT_EQ(store->groups(), (std::vector<std::string>{"billing", "search"}));
  EXPECT_EQ(store->fetch("billing", "orders", 1)->offset, 99);
  EXPECT_FALSE(store->fetch("billing", "orders", 0));
}

TEST_F(OffsetStoreTest, CompactionKeepsTheNewestOffsetOfEachPartition) {
  storage::LogConfig config = OffsetStore::default_log_config();
  config.segment_bytes = 4096;  // many closed segments
  constexpr int kPartitions = 20;
  constexpr int kRounds = 60;
  {
    auto store = open(config);
    ASSERT_TRUE(store->commit("gone", std::vector<OffsetCommit>{{"orders", 0, 1, -1, ""}}, now_));
    for (int round = 0; round < kRounds; ++round) {
      std::vector<OffsetCommit> commits;
      commits.reserve(kPartitions);
      for (int p = 0; p < kPartitions; ++p)
        commits.push_back({"orders", p, round * 100 + p, round, "round " + std::to_string(round)});
      ASSERT_TRUE(store->commit("billing", commits, now_ + round));
      if (round == kRounds / 2) {
        ASSERT_TRUE(store->delete_group("gone", now_ + round));
      }
    }
    auto compacted = store->maybe_compact();
    ASSERT_TRUE(compacted) << compacted.error().message();
    EXPECT_TRUE(compacted.value());
    EXPECT_FALSE(store->maybe_compact().value());  // nothing new superseded since
    ASSERT_TRUE(store->close());
  }
  // Each partition's earlier offsets are gone from the closed segments; what is left is one
  // record per key there, plus whatever the active segment holds.
  const auto records = raw_records();
  std::map<std::string, int> per_key;
  for (const auto& [key, has_value] : records)
    per_key[key]++;
  EXPECT_EQ(per_key.size(), static_cast<size_t>(kPartitions + 1));
  EXPECT_LT(records.size(), static_cast<size_t>(kPartitions * kRounds / 4));

  auto store = open(config);
  EXPECT_EQ(store->groups(), std::vector<std::string>{"billing"});
  for (int p = 0; p < kPartitions; ++p) {
    const auto committed = store->fetch("billing", "orders", p);
    ASSERT_TRUE(committed);
    EXPECT_EQ(committed->offset, (kRounds - 1) * 100 + p);
    EXPECT_EQ(committed->metadata, "round " + std::to_string(kRounds - 1));
  }
}

TEST_F(OffsetStoreTest, CompactionWaitsUntilEnoughHasBeenSuperseded) {
  storage::LogConfig config = OffsetStore::default_log_config();
  config.segment_bytes = 4096;
  auto store = open(config);
  // Many segments of offsets that are all still current: nothing for compaction to gain.
  for (int round = 0; round < 10; ++round) {
    std::vector<OffsetCommit> commits;
    commits.reserve(100);
    for (int p = 0; p < 100; ++p)
      commits.push_back({"topic-" + std::to_string(round), p, p, -1, ""});
    ASSERT_TRUE(store->commit("billing", commits, now_));
  }
  EXPECT_FALSE(store->maybe_compact().value());
  ASSERT_TRUE(store->close());
}

Bytes bytes(std::initializer_list<uint8_t> values) {
  Bytes out;
  for (uint8_t v : values)
    out.push_back(std::byte{v});
  return out;
}

Bytes bytes(std::string_view text) {
  auto span = as_bytes(text);
  return Bytes(span.begin(), span.end());
}

GroupMetadata stable_group(int32_t generation, std::string_view assignment) {
  GroupMetadata group{"consumer", generation, "range", "a-1", {}};
  group.members.push_back(
      {"a-1", std::nullopt, "a", "/127.0.0.1", 5'000, 10'000, bytes({1, 2, 3}), bytes(assignment)});
  group.members.push_back({"b-1", "host-2", "b", "/10.0.0.2", 6'000, 12'000, Bytes{}, bytes({9})});
  return group;
}

TEST_F(OffsetStoreTest, GroupMetadataIsReplacedSurvivesReopeningAndGoesWithItsGroup) {
  {
    auto store = open();
    ASSERT_TRUE(store->store_group("billing", stable_group(1, "first"), now_));
    ASSERT_TRUE(store->store_group("billing", stable_group(2, "second"), now_));
    ASSERT_TRUE(store->store_group("search", GroupMetadata{"consumer", 4, {}, {}, {}}, now_));
    ASSERT_TRUE(
        store->commit("billing", std::vector<OffsetCommit>{{"orders", 0, 10, -1, ""}}, now_));
    EXPECT_EQ(store->group_metadata().at("billing"), stable_group(2, "second"));
    ASSERT_TRUE(store->close());
  }
  {
    auto store = open();
    const auto groups = store->group_metadata();
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups.at("billing"), stable_group(2, "second"));
    EXPECT_EQ(groups.at("search"), (GroupMetadata{"consumer", 4, {}, {}, {}}));
    // Offsets and metadata are separate records: a group's offsets are there as before.
    EXPECT_EQ(store->groups(), std::vector<std::string>{"billing"});
    EXPECT_EQ(store->fetch("billing", "orders", 0)->offset, 10);

    // Deleting the group tombstones both its offsets and its metadata; a group with metadata
    // and no offsets is deleted too.
    EXPECT_EQ(store->delete_group("billing", now_).value(), 5);
    EXPECT_GE(store->delete_group("search", now_).value(), 6);
    EXPECT_EQ(store->delete_group("search", now_).value(), -1);
    EXPECT_TRUE(store->group_metadata().empty());
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  EXPECT_TRUE(store->group_metadata().empty());
  EXPECT_TRUE(store->groups().empty());
}

TEST_F(OffsetStoreTest, CompactionKeepsTheNewestMetadataOfEachGroup) {
  storage::LogConfig config = OffsetStore::default_log_config();
  config.segment_bytes = 4096;
  {
    auto store = open(config);
    for (int generation = 1; generation <= 1'200; ++generation)
      ASSERT_TRUE(store->store_group("billing", stable_group(generation, "parts"), now_));
    auto compacted = store->maybe_compact();
    ASSERT_TRUE(compacted) << compacted.error().message();
    EXPECT_TRUE(compacted.value());
    ASSERT_TRUE(store->close());
  }
  EXPECT_LT(raw_records().size(), 100u);
  auto store = open(config);
  EXPECT_EQ(store->group_metadata().at("billing"), stable_group(1'200, "parts"));
}

TEST_F(OffsetStoreTest, RecordsThatDoNotDecodeAreSkippedAndTheRestIsRead) {
  {
    auto store = open();
    ASSERT_TRUE(store->store_group("billing", stable_group(3, "parts"), now_));
    ASSERT_TRUE(store->close());
  }
  {
    // A group key whose value claims a billion members, an unknown kind of key, and a group key
    // cut short: written as another program might have, beside a good record.
    auto log = storage::Log::open({dir(), OffsetStore::default_log_config(), &sync_, nullptr, {}});
    ASSERT_TRUE(log);
    storage::RecordBatchBuilder builder;
    // Version 0, protocol type "", generation 0, no protocol, no leader, 1'000'000'000 members.
    const Bytes huge = bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00});
    const Bytes group_key = bytes({2, 0, 0, 0, 6, 's', 'e', 'a', 'r', 'c', 'h'});
    builder.add(ByteSpan(group_key), ByteSpan(huge), now_);
    const Bytes unknown_kind = bytes({9, 1, 2});
    builder.add(ByteSpan(unknown_kind), ByteSpan(huge), now_);
    const Bytes short_key = bytes({2, 0, 0, 0, 60, 'x'});
    builder.add(ByteSpan(short_key), std::nullopt, now_);
    Bytes batch = builder.build();
    ASSERT_TRUE(log.value()->append(batch));
    ASSERT_TRUE(log.value()->close());
  }
  auto store = open();
  const auto groups = store->group_metadata();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups.at("billing"), stable_group(3, "parts"));
}

}  // namespace
}  // namespace depot::eventlog
