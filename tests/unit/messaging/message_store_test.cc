// The message journal: recoverable messages come back after a reopen, in order and byte for
// byte, unless settled; others never do; settled segments are deleted; bodies past the RAM
// budget are read back from the journal.
#include "messaging/message_store.h"

#include <gtest/gtest.h>

#include "messaging/vhost.h"
#include "storage/sync_service.h"
#include "unit/server/test_support.h"

namespace depot::messaging {
namespace {

Message make_message(const std::string& key, const std::string& body) {
  Message m;
  m.exchange = "ex";
  m.routing_key = key;
  m.properties.content_type = "text/plain";
  m.properties.delivery_mode = 2;
  m.properties.headers = FieldTable{{"n", FieldValue{int32_t{7}}}};
  m.raw_properties = encode_properties(m.properties);
  m.body.assign(reinterpret_cast<const std::byte*>(body.data()),
                reinterpret_cast<const std::byte*>(body.data()) + body.size());
  return m;
}

std::string text(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

class MessageStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<MessageStore> open(uint64_t segment_bytes = MessageStore::kSegmentBytes) {
    auto s = MessageStore::open(dir_.path() / "messages", &sync_, segment_bytes);
    EXPECT_TRUE(s) << s.error().message();
    return std::move(s).value();
  }
  std::vector<MessageStore::Recovered> recover(MessageStore& store) {
    std::vector<MessageStore::Recovered> out;
    auto n = store.recover([&](MessageStore::Recovered r) { out.push_back(std::move(r)); });
    EXPECT_TRUE(n);
    return out;
  }

  testing::TempDir dir_;
  storage::SyncService sync_{storage::FsyncPolicy{}};
};

TEST_F(MessageStoreTest, RecoverableUnsettledMessagesComeBackInOrder) {
  int64_t kept_id = -1;
  {
    auto store = open();
    EXPECT_TRUE(recover(*store).empty());
    auto a = store->append("/", "q", make_message("a", "first"), 123, true);
    auto b = store->append("/", "q", make_message("b", "second"), kNever, true);
    auto t = store->append("/", "q", make_message("t", "paged"), kNever, false);
    auto c = store->append("/", "other", make_message("c", "third"), kNever, true);
    ASSERT_TRUE(a && b && t && c);
    store->settle(b.value());
    kept_id = c.value();
    auto read = store->read(t.value());  // a paged-out body reads back
    ASSERT_TRUE(read);
    EXPECT_EQ(text(read.value()->body), "paged");
    EXPECT_EQ(store->live_count(), 3u);
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  auto recovered = recover(*store);
  ASSERT_EQ(recovered.size(), 2u);
  EXPECT_EQ(recovered[0].queue, "q");
  EXPECT_EQ(recovered[0].expires_at, 123);
  EXPECT_EQ(text(recovered[0].message->body), "first");
  EXPECT_EQ(recovered[0].message->routing_key, "a");
  EXPECT_EQ(recovered[0].message->exchange, "ex");
  EXPECT_EQ(recovered[0].message->properties, make_message("a", "first").properties);
  EXPECT_EQ(recovered[0].message->raw_properties, make_message("a", "first").raw_properties);
  EXPECT_EQ(recovered[1].queue, "other");
  EXPECT_EQ(recovered[1].id, kept_id);
  EXPECT_EQ(store->live_count(), 2u);
}

TEST_F(MessageStoreTest, SettlesSurviveAnUncleanStopOnceWritten) {
  {
    auto store = open();
    recover(*store);
    std::vector<int64_t> ids;
    for (int i = 0; i < 600; ++i) {
      auto id = store->append("/", "q", make_message("k", std::to_string(i)), kNever, true);
      ASSERT_TRUE(id);
      ids.push_back(id.value());
    }
    for (int i = 0; i < 590; ++i)
      store->settle(ids[static_cast<size_t>(i)]);
    ASSERT_TRUE(store->collect_garbage());  // writes the settles still buffered
    // No close(): as after a crash (the log recovers its tail).
  }
  auto store = open();
  auto recovered = recover(*store);
  ASSERT_EQ(recovered.size(), 10u);
  EXPECT_EQ(text(recovered.front().message->body), "590");
  EXPECT_EQ(text(recovered.back().message->body), "599");
}

TEST_F(MessageStoreTest, SegmentsWhoseMessagesAreAllSettledAreDeleted) {
  auto store = open(64 * 1024);
  recover(*store);
  const std::string body(1000, 'x');
  std::vector<int64_t> ids;
  for (int i = 0; i < 300; ++i)
    ids.push_back(store->append("/", "q", make_message("k", body), kNever, true).value());
  const size_t before = store->segment_count();
  ASSERT_GE(before, 4u);
  // The oldest message pins everything after it.
  for (size_t i = 1; i < ids.size(); ++i)
    store->settle(ids[i]);
  ASSERT_TRUE(store->collect_garbage());
  EXPECT_EQ(store->segment_count(), before);
  store->settle(ids[0]);
  ASSERT_TRUE(store->collect_garbage());
  EXPECT_LE(store->segment_count(), 2u);
  EXPECT_EQ(store->live_count(), 0u);
}

TEST_F(MessageStoreTest, BodiesPastTheRamBudgetAreReadBackFromTheJournal) {
  auto store = open();
  recover(*store);
  ResidentBudget budget(10);  // bytes: nothing fits
  VirtualHost vhost("/");
  vhost.attach_journal(store.get(), &budget);
  ASSERT_TRUE(vhost.declare_queue({.name = "transient"}));
  auto message = std::make_shared<Message>(make_message("transient", "a body too big for RAM"));
  message->properties.delivery_mode.reset();  // not persistent: journaled only to leave RAM
  ASSERT_TRUE(vhost.publish("", message));
  EXPECT_EQ(budget.used_bytes(), 0);
  EXPECT_EQ(store->live_count(), 1u);
  auto got = vhost.get("transient", true, 0);
  ASSERT_TRUE(got && got.value());
  EXPECT_FALSE(got.value()->message.message);
  auto body = vhost.body_of(got.value()->message);
  ASSERT_TRUE(body);
  EXPECT_EQ(text(body.value()->body), "a body too big for RAM");
  EXPECT_EQ(store->live_count(), 0u);  // settled by the no-ack get
}

TEST_F(MessageStoreTest, TheBudgetChargesResidentBodiesUntilTheirLastHolderLetsGo) {
  ResidentBudget budget(100);
  auto kept = budget.keep(std::make_shared<Message>(make_message("k", std::string(60, 'x'))));
  ASSERT_TRUE(kept);
  EXPECT_GE(budget.used_bytes(), 60);
  EXPECT_FALSE(budget.keep(std::make_shared<Message>(make_message("k", std::string(60, 'y')))));
  auto copy = kept;
  kept.reset();
  EXPECT_GE(budget.used_bytes(), 60);
  copy.reset();
  EXPECT_EQ(budget.used_bytes(), 0);
}

}  // namespace
}  // namespace depot::messaging
