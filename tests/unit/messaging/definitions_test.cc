// The durable definitions journal: what is durable is restored, in a usable order, with deletes
// (and the bindings that went with them) honoured.
#include "messaging/definitions.h"

#include <gtest/gtest.h>

#include "storage/sync_service.h"
#include "unit/server/test_support.h"

namespace depot::messaging {
namespace {

class DefinitionsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Definitions> open() {
    auto d = Definitions::open(dir_.path() / "definitions", &sync_);
    EXPECT_TRUE(d) << d.error().message();
    return std::move(d).value();
  }
  // A fresh virtual host with what the journal holds.
  std::unique_ptr<VirtualHost> restored(size_t* count = nullptr) {
    auto definitions = open();
    auto vhost = std::make_unique<VirtualHost>("/");
    auto n = definitions->restore(
        [&](const std::string& name) { return name == "/" ? vhost.get() : nullptr; });
    EXPECT_TRUE(n);
    if (count) *count = n.value();
    EXPECT_TRUE(definitions->close());
    return vhost;
  }

  testing::TempDir dir_;
  storage::SyncService sync_{storage::FsyncPolicy{}};
};

TEST_F(DefinitionsTest, DurableDefinitionsComeBackAndTransientOnesDoNot) {
  {
    auto journal = open();
    VirtualHost vhost("/");
    ASSERT_TRUE(vhost.declare_exchange({.name = "orders", .type = "topic", .durable = true}));
    ASSERT_TRUE(journal->exchange_declared(vhost, "orders"));
    ASSERT_TRUE(vhost.declare_exchange({.name = "scratch", .type = "fanout"}));
    ASSERT_TRUE(journal->exchange_declared(vhost, "scratch"));  // transient: not written
    const FieldTable args{{"x-message-ttl", {int32_t{1000}}}, {"x-note", {Decimal{2, 314}}}};
    ASSERT_TRUE(vhost.declare_queue({.name = "work", .durable = true, .arguments = args}));
    ASSERT_TRUE(journal->queue_declared(vhost, "work"));
    ASSERT_TRUE(
        vhost.declare_queue({.name = "mine", .durable = true, .exclusive = true, .owner = 3}));
    ASSERT_TRUE(journal->queue_declared(vhost, "mine"));  // exclusive: not written
    const Binding bound{"orders", {Destination::Kind::queue, "work"}, "order.*", {}};
    ASSERT_TRUE(vhost.bind_queue("work", "orders", "order.*", {}, 0));
    ASSERT_TRUE(journal->bound(vhost, bound));
    ASSERT_TRUE(journal->close());
  }
  size_t count = 0;
  auto vhost = restored(&count);
  EXPECT_EQ(count, 3U);
  ASSERT_NE(vhost->router().exchange("orders"), nullptr);
  EXPECT_EQ(vhost->router().exchange("orders")->type, ExchangeType::topic);
  EXPECT_EQ(vhost->router().exchange("scratch"), nullptr);
  ASSERT_NE(vhost->queue("work"), nullptr);
  // Arguments keep their types.
  EXPECT_EQ(vhost->queue("work")->arguments,
            (FieldTable{{"x-message-ttl", {int32_t{1000}}}, {"x-note", {Decimal{2, 314}}}}));
  EXPECT_EQ(vhost->queue("mine"), nullptr);
  EXPECT_EQ(vhost->router().route("orders", "order.new", nullptr),
            std::vector<std::string_view>{"work"});
}

TEST_F(DefinitionsTest, DeletesAndTheBindingsThatWentWithThemStayDeleted) {
  {
    auto journal = open();
    VirtualHost vhost("/");
    ASSERT_TRUE(vhost.declare_exchange({.name = "e", .type = "direct", .durable = true}));
    ASSERT_TRUE(journal->exchange_declared(vhost, "e"));
    ASSERT_TRUE(vhost.declare_queue({.name = "q", .durable = true}));
    ASSERT_TRUE(journal->queue_declared(vhost, "q"));
    ASSERT_TRUE(vhost.bind_queue("q", "e", "k", {}, 0));
    const Binding binding{"e", {Destination::Kind::queue, "q"}, "k", {}};
    ASSERT_TRUE(journal->bound(vhost, binding));
    // The queue goes, and its binding with it.
    auto going = bindings_involving(vhost.router(), {Destination::Kind::queue, "q"});
    ASSERT_EQ(going.size(), 1U);
    ASSERT_TRUE(vhost.delete_queue("q", 0));
    ASSERT_TRUE(journal->queue_deleted(vhost, "q", going));
    // Declared again, the queue comes back without the old binding.
    ASSERT_TRUE(vhost.declare_queue({.name = "q", .durable = true}));
    ASSERT_TRUE(journal->queue_declared(vhost, "q"));
    ASSERT_TRUE(journal->close());
  }
  auto vhost = restored();
  ASSERT_NE(vhost->queue("q"), nullptr);
  EXPECT_FALSE(vhost->router().has_bindings_from("e"));
  {
    auto journal = open();
    ASSERT_TRUE(journal->exchange_deleted(*vhost, "e", {}));
    ASSERT_TRUE(journal->close());
  }
  EXPECT_EQ(restored()->router().exchange("e"), nullptr);
}

}  // namespace
}  // namespace depot::messaging
