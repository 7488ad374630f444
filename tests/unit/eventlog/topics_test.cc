// The event log's topics: Kafka's naming rules, partitions as logs, and a registry that is the
// directory itself (found again on reopening).
#include "eventlog/topics.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace depot::eventlog
