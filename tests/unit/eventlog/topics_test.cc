// The event log's topics: Kafka's naming rules, partitions as logs, and a registry that is the
// directory itself (found again on reopening).
#include "eventlog/topics.h"

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "eventlog/offsets.h"
#include "storage/sync_service.h"
#include "unit/server/test_support.h"

namespace depot::eventlog {
namespace {

class TopicStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<TopicStore> open(int32_t default_partitions = 1) {
    TopicStoreOptions options;
    options.dir = dir_.path() / "eventlog";
    options.sync = &sync_;
    options.default_partitions = default_partitions;
    options.log.preallocate_bytes = 0;
    auto store = TopicStore::open(std::move(options));
    EXPECT_TRUE(store) << store.error().message();
    return std::move(store).value();
  }

  testing::TempDir dir_;
  storage::SyncService sync_{storage::FsyncPolicy{}};
};

TEST_F(TopicStoreTest, NamesFollowKafkasRules) {
  EXPECT_FALSE(TopicStore::invalid_name("orders.v1_eu-west"));
  EXPECT_TRUE(TopicStore::invalid_name(""));
  EXPECT_TRUE(TopicStore::invalid_name("."));
  EXPECT_TRUE(TopicStore::invalid_name(".."));
  EXPECT_TRUE(TopicStore::invalid_name("has space"));
  EXPECT_TRUE(TopicStore::invalid_name("slash/"));
  EXPECT_FALSE(TopicStore::invalid_name(std::string(249, 'a')));
  EXPECT_EQ(*TopicStore::invalid_name(std::string(250, 'a')),
            "topic name is 250 characters, over the limit of 249");
}

TEST_F(TopicStoreTest, TopicsArePartitionLogsFoundAgainOnReopening) {
  {
    auto store = open(3);
    EXPECT_EQ(store->create("orders").value(), CreateResult::created);  // the default: 3
    EXPECT_EQ(store->create("orders", 5).value(), CreateResult::already_exists);
    EXPECT_EQ(store->create("audit-log", 2).value(), CreateResult::created);
    EXPECT_EQ(store->create("bad name").value(), CreateResult::invalid_name);
    EXPECT_EQ(store->create("huge", TopicStore::kMaxPartitions + 1).value(),
              CreateResult::invalid_partitions);
    ASSERT_TRUE(store->partition("orders", 2));
    EXPECT_FALSE(store->partition("orders", 3));
    EXPECT_FALSE(store->partition("nothing", 0));
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  auto topics = store->list();
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0].name, "audit-log");  // a '-' in the name is not taken for a partition
  EXPECT_EQ(topics[0].partitions, 2);
  EXPECT_EQ(topics[1].name, "orders");
  EXPECT_EQ(topics[1].partitions, 3);
  EXPECT_EQ(store->find("orders")->partitions, 3);
  EXPECT_FALSE(store->find("bad name"));
}

TEST_F(TopicStoreTest, TopicIdsAndSettingsAreKeptAcrossReopening) {
  TopicId id{};
  {
    auto store = open();
    TopicConfig config;
    EXPECT_FALSE(config.set("retention.ms", "60000"));
    EXPECT_FALSE(config.set("cleanup.policy", "compact"));
    EXPECT_EQ(*config.set("cleanup.policy", "sometimes"),
              "'sometimes' is not a valid value for cleanup.policy");
    EXPECT_EQ(*config.set("flush.msec", "1"), "'flush.msec' is not a Kafka topic setting");
    EXPECT_FALSE(config.set("min.insync.replicas", "2"));  // kept and shown, not acted on
    ASSERT_EQ(store->create("ledger", 2, config).value(), CreateResult::created);
    ASSERT_EQ(store->create("other").value(), CreateResult::created);
    id = store->find("ledger")->id;
    EXPECT_NE(id, TopicId{});
    EXPECT_NE(store->find("other")->id, id);
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  auto found = store->find(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "ledger");
  EXPECT_EQ(found->config.retention_ms, 60000);
  EXPECT_TRUE(found->config.compact);
  EXPECT_EQ(store->partition("ledger", 1)->config().retention_ms, 60000);
  EXPECT_EQ(found->config.overridden,
            (std::vector<std::string>{"cleanup.policy", "min.insync.replicas", "retention.ms"}));
  EXPECT_EQ(found->config.kept.at("min.insync.replicas"), "2");
}

Bytes batch(int records, storage::BatchOptions options = {}, int64_t timestamp = 1000) {
  storage::RecordBatchBuilder builder(0, options);
  for (int i = 0; i < records; ++i) {
    const std::string value = "value " + std::to_string(i);
    builder.add(std::nullopt, as_bytes(value), timestamp + i);
  }
  return builder.build();
}

TEST_F(TopicStoreTest, AppendsAssignOffsetsAndRefuseBadBatches) {
  auto store = open();
  TopicConfig config;
  EXPECT_FALSE(config.set("max.message.bytes", "200"));
  ASSERT_EQ(store->create("t", 1, config).value(), CreateResult::created);
  Bytes two = batch(2);
  Bytes three = batch(3);
  Bytes both = two;
  both.insert(both.end(), three.begin(), three.end());
  // Two batches in one record set: refused whole, as Kafka refuses them from Produce v3+.
  EXPECT_EQ(store->append("t", 0, both, 5000).error, AppendError::invalid_record);
  EXPECT_EQ(store->append("t", 0, two, 5000).base_offset, 0);
  AppendOutcome first = store->append("t", 0, three, 5000);
  EXPECT_EQ(first.error, AppendError::none);
  EXPECT_EQ(first.base_offset, 2);
  EXPECT_EQ(first.last_offset, 4);
  EXPECT_EQ(first.log_append_time, -1);  // CreateTime

  Bytes corrupt = batch(1);
  corrupt.back() ^= std::byte{1};
  EXPECT_EQ(store->append("t", 0, corrupt, 5000).error, AppendError::corrupt_message);
  Bytes cut = batch(1);
  cut.resize(30);
  EXPECT_EQ(store->append("t", 0, cut, 5000).error, AppendError::corrupt_message);
  Bytes large = batch(20);
  EXPECT_EQ(store->append("t", 0, large, 5000).error, AppendError::message_too_large);
  Bytes none;
  EXPECT_EQ(store->append("t", 0, none, 5000).error, AppendError::invalid_record);
  EXPECT_EQ(store->append("t", 1, two, 5000).error, AppendError::unknown_topic_or_partition);
  EXPECT_EQ(store->append("nope", 0, two, 5000).error, AppendError::unknown_topic_or_partition);
  Bytes control = batch(1, {.attributes = storage::attr::kControl});
  EXPECT_EQ(store->append("t", 0, control, 5000).error, AppendError::invalid_record);
  EXPECT_EQ(store->partition("t", 0)->log_end_offset(), 5);  // nothing refused was written
}

TEST_F(TopicStoreTest, LogAppendTimeTopicsStampTheBrokersTime) {
  auto store = open();
  TopicConfig config;
  EXPECT_FALSE(config.set("message.timestamp.type", "LogAppendTime"));
  ASSERT_EQ(store->create("stamped", 1, config).value(), CreateResult::created);
  Bytes one = batch(3);
  AppendOutcome outcome = store->append("stamped", 0, one, 777777);
  ASSERT_EQ(outcome.error, AppendError::none);
  EXPECT_EQ(outcome.log_append_time, 777777);
  auto read = store->partition("stamped", 0)->read(0, 1 << 20);
  ASSERT_TRUE(read);
  auto header = storage::validate_batch(read.value().data);  // the CRC was recomputed
  ASSERT_TRUE(header);
  EXPECT_EQ(header.value().timestamp_type(), storage::TimestampType::log_append_time);
  EXPECT_EQ(header.value().max_timestamp, 777777);
}

TEST_F(TopicStoreTest, IdempotentProducersAreNotWrittenTwice) {
  auto store = open();
  ASSERT_EQ(store->create("once").value(), CreateResult::created);
  const int64_t producer = store->new_producer_id().value();
  auto from = [&](int32_t sequence, int records, int16_t epoch = 0) {
    return batch(records,
                 {.producer_id = producer, .producer_epoch = epoch, .base_sequence = sequence});
  };
  Bytes b0 = from(0, 3);
  Bytes b1 = from(3, 2);
  EXPECT_EQ(store->append("once", 0, b0, 1).base_offset, 0);
  EXPECT_EQ(store->append("once", 0, b1, 1).base_offset, 3);
  // A retry of either is answered with its first offsets and not written again.
  Bytes retry = from(0, 3);
  AppendOutcome again = store->append("once", 0, retry, 1);
  EXPECT_EQ(again.error, AppendError::none);
  EXPECT_EQ(again.base_offset, 0);
  EXPECT_EQ(again.last_offset, 2);
  EXPECT_EQ(store->partition("once", 0)->log_end_offset(), 5);
  // A gap is refused; so is an older epoch once a newer one has written.
  Bytes gap = from(9, 1);
  EXPECT_EQ(store->append("once", 0, gap, 1).error, AppendError::out_of_order_sequence);
  Bytes bumped = from(0, 1, 1);
  EXPECT_EQ(store->append("once", 0, bumped, 1).base_offset, 5);
  Bytes stale = from(5, 1, 0);
  EXPECT_EQ(store->append("once", 0, stale, 1).error, AppendError::invalid_producer_epoch);
  Bytes skipped = from(4, 1, 2);  // a new epoch must start at sequence 0
  EXPECT_EQ(store->append("once", 0, skipped, 1).error, AppendError::out_of_order_sequence);
  // Producer ids are never handed out twice, across reopening too; and a retry of a batch
  // written before the restart is still recognised.
  ASSERT_TRUE(store->close());
  store.reset();
  auto reopened = open();
  EXPECT_GT(reopened->new_producer_id().value(), producer);
  Bytes retried = from(0, 1, 1);
  AppendOutcome recognised = reopened->append("once", 0, retried, 1);
  EXPECT_EQ(recognised.error, AppendError::none);
  EXPECT_EQ(recognised.base_offset, 5);
  EXPECT_EQ(reopened->partition("once", 0)->log_end_offset(), 6);
}

TEST_F(TopicStoreTest, ACreateOrGrowThatFailsMidwayLeavesNothingBehind) {
  auto store = open();
  // A file where partition 2's directory would go makes creating it fail.
  const auto blocker = dir_.path() / "eventlog" / "half-2";
  std::ofstream(blocker) << "in the way";
  EXPECT_FALSE(store->create("half", 4));
  EXPECT_FALSE(store->find("half"));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "eventlog"))
    EXPECT_FALSE(entry.path().filename().string().starts_with("half-")) << entry.path();
  // Growing: the partitions added before the failure go again; the topic keeps its two.
  ASSERT_EQ(store->create("grow", 2).value(), CreateResult::created);
  std::ofstream(dir_.path() / "eventlog" / "grow-3") << "in the way";
  EXPECT_FALSE(store->add_partitions("grow", 5));
  EXPECT_EQ(store->find("grow")->partitions, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "eventlog" / "grow-2"));
  ASSERT_TRUE(store->close());
  store.reset();
  auto reopened = open();
  EXPECT_FALSE(reopened->find("half"));
  EXPECT_EQ(reopened->find("grow")->partitions, 2);
}

TEST_F(TopicStoreTest, ProducersIdleForADayAreForgotten) {
  auto store = open();
  ASSERT_EQ(store->create("quiet").value(), CreateResult::created);
  const int64_t producer = store->new_producer_id().value();
  Bytes first = batch(2, {.producer_id = producer, .producer_epoch = 0, .base_sequence = 0});
  const int64_t written = 1'000'000;
  ASSERT_EQ(store->append("quiet", 0, first, written).error, AppendError::none);
  // Within the day the producer is remembered: its retry is not written again.
  store->maintain(written + ProducerStates::kExpirationMs - 1);
  Bytes retry = first;
  EXPECT_EQ(store->append("quiet", 0, retry, written + 1).base_offset, 0);
  EXPECT_EQ(store->partition("quiet", 0)->log_end_offset(), 2);
  // A day after its last batch it is forgotten: its next batch may start anywhere, as a new
  // producer's, and the old retry is no longer recognised.
  store->maintain(written + 1 + ProducerStates::kExpirationMs + 1);
  Bytes later = batch(1, {.producer_id = producer, .producer_epoch = 0, .base_sequence = 40});
  EXPECT_EQ(store->append("quiet", 0, later, written + 2).base_offset, 2);
}

TEST_F(TopicStoreTest, MaintenanceAppliesRetentionAndCompactionPerTopic) {
  auto store = open();
  TopicConfig expiring;
  EXPECT_FALSE(expiring.set("segment.bytes", "1024"));
  EXPECT_FALSE(expiring.set("retention.ms", "60000"));
  TopicConfig compacted;
  EXPECT_FALSE(compacted.set("segment.bytes", "1024"));
  EXPECT_FALSE(compacted.set("cleanup.policy", "compact"));
  ASSERT_EQ(store->create("clicks", 1, expiring).value(), CreateResult::created);
  ASSERT_EQ(store->create("accounts", 1, compacted).value(), CreateResult::created);
  const int64_t now = storage::system_clock_ms();
  for (int i = 0; i < 40; ++i) {
    // Clicks from two hours ago: past retention once their segment is closed.
    Bytes old = batch(3, {}, now - 2 * 3600 * 1000);
    ASSERT_EQ(store->append("clicks", 0, old, now).error, AppendError::none);
    // Account balances: 4 keys, each rewritten 10 times.
    storage::RecordBatchBuilder builder;
    const std::string key = "acct-" + std::to_string(i % 4);
    const std::string value = "balance " + std::to_string(i);
    builder.add(as_bytes(key), as_bytes(value), now);
    Bytes update = builder.build();
    ASSERT_EQ(store->append("accounts", 0, update, now).error, AppendError::none);
  }
  auto clicks = store->partition("clicks", 0);
  auto accounts = store->partition("accounts", 0);
  ASSERT_GT(clicks->segment_count(), 2u);
  EXPECT_EQ(clicks->log_start_offset(), 0);
  EXPECT_GT(store->maintain(now), 0u);
  // Every closed segment of clicks went; the active one stays (Kafka keeps it too).
  EXPECT_EQ(clicks->segment_count(), 1u);
  EXPECT_GT(clicks->log_start_offset(), 0);
  // Accounts kept everything's latest value per key, and nothing by age.
  EXPECT_EQ(accounts->log_start_offset(), 0);
  std::map<std::string, std::string> latest;
  size_t records = 0;
  ASSERT_TRUE(storage::for_each_record(*accounts, 0, [&](const storage::RecordView& r) {
    ++records;
    const std::string key(reinterpret_cast<const char*>(r.key->data()), r.key->size());
    latest[key] = std::string(reinterpret_cast<const char*>(r.value->data()), r.value->size());
  }));
  EXPECT_LT(records, 40u);
  EXPECT_EQ(latest["acct-0"], "balance 36");
  EXPECT_EQ(latest["acct-3"], "balance 39");
}

TEST_F(TopicStoreTest, ConsumerLagIsTheDistanceFromCommittedToTheEnd) {
  auto store = open();
  ASSERT_EQ(store->create("orders", 2).value(), CreateResult::created);
  Bytes five = batch(5);
  ASSERT_EQ(store->append("orders", 1, five, 1).error, AppendError::none);
  auto offsets = OffsetStore::open(dir_.path() / "offsets", &sync_).value();
  const OffsetCommit commits[] = {
      {"orders", 0, 0, -1, ""}, {"orders", 1, 2, -1, ""}, {"deleted", 0, 9, -1, ""}};
  ASSERT_TRUE(offsets->commit("billing", commits, 1));
  auto lags = consumer_lag(*store, *offsets);
  ASSERT_EQ(lags.size(), 3u);
  EXPECT_EQ(lags[0].topic, "deleted");  // by topic within the group
  EXPECT_EQ(lags[0].end, -1);
  EXPECT_EQ(lags[0].lag, -1);
  EXPECT_EQ(lags[1].partition, 0);
  EXPECT_EQ(lags[1].lag, 0);
  EXPECT_EQ(lags[2].group, "billing");
  EXPECT_EQ(lags[2].committed, 2);
  EXPECT_EQ(lags[2].end, 5);
  EXPECT_EQ(lags[2].lag, 3);
  ASSERT_TRUE(offsets->close());
}

}  // namespace
}  // namespace depot::eventlog
