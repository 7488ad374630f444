// Queued messages through a virtual host, as RabbitMQ's classic queues behave: round-robin to
// consumers within their credit, requeue to the original place, TTL, x-expires, max-length with
// each overflow mode, dead-lettering with x-death, priorities, single active consumer.
#include "messaging/queue.h"

#include <gtest/gtest.h>

#include "messaging/vhost.h"

namespace depot::messaging {
namespace {

// Takes what it is given, up to `credit` unsettled messages.
class TestConsumer final : public Consumer {
 public:
  explicit TestConsumer(size_t credit = 1000, bool acks = true) : credit_(credit), acks_(acks) {}
  bool ready() const override { return !acks_ || pending.size() < credit_; }
  bool acks() const override { return acks_; }
  void deliver(const std::shared_ptr<MessageQueue>& from, const QueuedMessage& message) override {
    queue = from;
    pending.push_back(message);
    bodies.push_back(body(message));
  }
  void cancelled() override { was_cancelled = true; }

  static std::string body(const QueuedMessage& m) {
    return std::string(reinterpret_cast<const char*>(m.message->body.data()),
                       m.message->body.size());
  }

  std::shared_ptr<MessageQueue> queue;
  std::vector<QueuedMessage> pending;  // unsettled, in delivery order
  std::vector<std::string> bodies;     // everything delivered
  bool was_cancelled = false;

 private:
  size_t credit_;
  bool acks_;
};

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : vhost_("/") {
    vhost_.clock = [this] { return now_; };
  }

  void declare(const std::string& name, FieldTable arguments = {}) {
    ASSERT_TRUE(vhost_.declare_queue({.name = name, .arguments = std::move(arguments)}));
  }

  VirtualHost::Published publish(const std::string& exchange, const std::string& key,
                                 const std::string& body, MessageProperties properties = {}) {
    auto message = std::make_shared<Message>();
    message->routing_key = key;
    message->properties = std::move(properties);
    message->raw_properties = encode_properties(message->properties);
    message->body.assign(reinterpret_cast<const std::byte*>(body.data()),
                         reinterpret_cast<const std::byte*>(body.data()) + body.size());
    auto published = vhost_.publish(exchange, message);
    EXPECT_TRUE(published);
    return published ? published.value() : VirtualHost::Published{};
  }

  // Every ready message's body, in delivery order, each acked.
  std::vector<std::string> drain(const std::string& queue) {
    std::vector<std::string> bodies;
    for (;;) {
      auto got = vhost_.get(queue, true, 0);
      EXPECT_TRUE(got);
      if (!got || !got.value()) return bodies;
      bodies.push_back(TestConsumer::body(got.value()->message));
    }
  }

  std::shared_ptr<Message> get_message(const std::string& queue) {
    auto got = vhost_.get(queue, true, 0);
    if (!got || !got.value()) return nullptr;
    return std::make_shared<Message>(*got.value()->message.message);
  }

  const MessageQueue& queue(const std::string& name) { return *vhost_.queue(name)->messages; }

  int64_t now_ = 1'700'000'000'000;
  VirtualHost vhost_;
};

using Strings = std::vector<std::string>;

TEST_F(QueueTest, ConsumersTakeTurnsWithinTheirCredit) {
  declare("work");
  TestConsumer a(2), b(2);
  ASSERT_TRUE(vhost_.consume("work", &a, false, 0));
  ASSERT_TRUE(vhost_.consume("work", &b, false, 0));
  for (int i = 0; i < 6; ++i)
    publish("", "work", "m" + std::to_string(i));
  EXPECT_EQ(a.bodies, (Strings{"m0", "m2"}));
  EXPECT_EQ(b.bodies, (Strings{"m1", "m3"}));
  EXPECT_EQ(queue("work").ready_count(), 2u);
  EXPECT_EQ(queue("work").unacked_count(), 4u);

  // An ack gives credit back: the next ready message goes to that consumer.
  vhost_.settle(a.queue, a.pending[0].seq, VirtualHost::Settlement::ack);
  a.pending.erase(a.pending.begin());
  vhost_.dispatch(a.queue);
  EXPECT_EQ(a.bodies, (Strings{"m0", "m2", "m4"}));
  EXPECT_EQ(queue("work").unacked_count(), 4u);
}

TEST_F(QueueTest, RequeuedMessagesGoBackToTheirPlaceMarkedRedelivered) {
  declare("work");
  for (int i = 0; i < 4; ++i)
    publish("", "work", "m" + std::to_string(i));
  TestConsumer c(2);
  auto q = vhost_.consume("work", &c, false, 0);
  ASSERT_TRUE(q);
  vhost_.dispatch(q.value());
  ASSERT_EQ(c.bodies, (Strings{"m0", "m1"}));
  vhost_.cancel(q.value(), &c);
  // Requeued in reverse: each still lands where it was.
  vhost_.settle(q.value(), c.pending[1].seq, VirtualHost::Settlement::requeue);
  vhost_.settle(q.value(), c.pending[0].seq, VirtualHost::Settlement::requeue);
  auto first = vhost_.get("work", true, 0);
  ASSERT_TRUE(first && first.value());
  EXPECT_EQ(TestConsumer::body(first.value()->message), "m0");
  EXPECT_TRUE(first.value()->message.redelivered);
  EXPECT_EQ(first.value()->remaining, 3u);
  EXPECT_EQ(drain("work"), (Strings{"m1", "m2", "m3"}));
}

TEST_F(QueueTest, MessageTtlExpiresAtTheHeadAndDeadLettersWithXDeath) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "dlx", .type = "fanout"}));
  declare("dead");
  ASSERT_TRUE(vhost_.bind_queue("dead", "dlx", "", {}, 0));
  declare("short",
          {{"x-message-ttl", {int32_t{1000}}}, {"x-dead-letter-exchange", {std::string("dlx")}}});
  publish("", "short", "old");
  now_ += 600;
  publish("", "short", "young");
  now_ += 500;  // "old" is 1100 ms old, "young" 500
  vhost_.expire_messages();
  EXPECT_EQ(queue("short").ready_count(), 1u);
  auto dead = get_message("dead");
  ASSERT_TRUE(dead);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(dead->body.data()), dead->body.size()),
            "old");
  EXPECT_EQ(dead->exchange, "dlx");
  EXPECT_EQ(dead->routing_key, "short");  // no x-dead-letter-routing-key: the original key
  ASSERT_TRUE(dead->properties.headers);
  const FieldTable& headers = *dead->properties.headers;
  const FieldValue* deaths = find_field(headers, "x-death");
  ASSERT_TRUE(deaths);
  const auto& array = std::get<FieldArray>(deaths->value);
  ASSERT_EQ(array.size(), 1u);
  const FieldTable& death = *array[0].as_table();
  EXPECT_EQ(*find_field(death, "reason")->as_string(), "expired");
  EXPECT_EQ(*find_field(death, "queue")->as_string(), "short");
  EXPECT_EQ(*find_field(death, "exchange")->as_string(), "");
  EXPECT_EQ(find_field(death, "count")->as_integer(), 1);
  EXPECT_EQ(std::get<FieldArray>(find_field(death, "routing-keys")->value),
            (FieldArray{FieldValue{std::string("short")}}));
  EXPECT_EQ(*find_field(headers, "x-first-death-reason")->as_string(), "expired");
  EXPECT_EQ(*find_field(headers, "x-first-death-queue")->as_string(), "short");
  // The properties sent to consumers say the same as the decoded ones.
  EXPECT_EQ(dead->raw_properties, encode_properties(dead->properties));

  // A consumer is never handed an expired message.
  now_ += 2000;
  TestConsumer c;
  auto q = vhost_.consume("short", &c, false, 0);
  ASSERT_TRUE(q);
  vhost_.dispatch(q.value());
  EXPECT_TRUE(c.bodies.empty());
  EXPECT_EQ(drain("dead"), (Strings{"young"}));
}

TEST_F(QueueTest, PerMessageExpirationIsKeptAsOriginalExpiration) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "dlx", .type = "fanout"}));
  declare("dead");
  ASSERT_TRUE(vhost_.bind_queue("dead", "dlx", "", {}, 0));
  declare("q", {{"x-dead-letter-exchange", {std::string("dlx")}},
                {"x-dead-letter-routing-key", {std::string("expired")}}});
  MessageProperties p;
  p.expiration = "100";
  publish("", "q", "brief", p);
  publish("", "q", "lasting");
  now_ += 101;
  vhost_.expire_messages();
  auto dead = get_message("dead");
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->routing_key, "expired");
  EXPECT_FALSE(dead->properties.expiration);  // it must not expire again in the next queue
  const auto& array = std::get<FieldArray>(find_field(*dead->properties.headers, "x-death")->value);
  EXPECT_EQ(*find_field(*array[0].as_table(), "original-expiration")->as_string(), "100");
  EXPECT_EQ(drain("q"), (Strings{"lasting"}));
}

TEST_F(QueueTest, MaxLengthDropsTheHeadIntoTheDeadLetterExchange) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "dlx", .type = "fanout"}));
  declare("dead");
  ASSERT_TRUE(vhost_.bind_queue("dead", "dlx", "", {}, 0));
  declare("bounded",
          {{"x-max-length", {int32_t{2}}}, {"x-dead-letter-exchange", {std::string("dlx")}}});
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(publish("", "bounded", "m" + std::to_string(i)).queues, 1u);
  EXPECT_EQ(drain("dead"), (Strings{"m0", "m1", "m2"}));
  EXPECT_EQ(drain("bounded"), (Strings{"m3", "m4"}));
}

TEST_F(QueueTest, MaxLengthBytesWithRejectPublishRefusesTheNewcomer) {
  declare("bytes",
          {{"x-max-length-bytes", {int32_t{10}}}, {"x-overflow", {std::string("reject-publish")}}});
  EXPECT_FALSE(publish("", "bytes", "12345").refused);
  EXPECT_FALSE(publish("", "bytes", "67890").refused);
  auto refused = publish("", "bytes", "x");
  EXPECT_TRUE(refused.refused);
  EXPECT_EQ(refused.queues, 0u);
  EXPECT_EQ(drain("bytes"), (Strings{"12345", "67890"}));
}

TEST_F(QueueTest, RejectPublishDlxDeadLettersTheNewcomer) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "dlx", .type = "fanout"}));
  declare("dead");
  ASSERT_TRUE(vhost_.bind_queue("dead", "dlx", "", {}, 0));
  declare("full", {{"x-max-length", {int32_t{1}}},
                   {"x-overflow", {std::string("reject-publish-dlx")}},
                   {"x-dead-letter-exchange", {std::string("dlx")}}});
  publish("", "full", "first");
  publish("", "full", "second");
  EXPECT_EQ(drain("full"), (Strings{"first"}));
  EXPECT_EQ(drain("dead"), (Strings{"second"}));
}

TEST_F(QueueTest, RejectedMessagesDeadLetterAndCountTheirDeaths) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "retry", .type = "fanout"}));
  declare("work", {{"x-dead-letter-exchange", {std::string("retry")}}});
  ASSERT_TRUE(vhost_.bind_queue("work", "retry", "", {}, 0));  // rejected ones come back
  publish("", "work", "job");
  for (int round = 1; round <= 3; ++round) {
    auto got = vhost_.get("work", false, 0);
    ASSERT_TRUE(got && got.value());
    vhost_.settle(got.value()->queue, got.value()->message.seq, VirtualHost::Settlement::reject);
  }
  auto message = get_message("work");
  ASSERT_TRUE(message);
  const auto& array =
      std::get<FieldArray>(find_field(*message->properties.headers, "x-death")->value);
  ASSERT_EQ(array.size(), 1u);  // one entry per (queue, reason), counted
  EXPECT_EQ(find_field(*array[0].as_table(), "count")->as_integer(), 3);
  EXPECT_EQ(*find_field(*array[0].as_table(), "reason")->as_string(), "rejected");
}

TEST_F(QueueTest, AnExpiryCycleEndsInsteadOfLoopingForever) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "loop", .type = "fanout"}));
  declare("q",
          {{"x-message-ttl", {int32_t{10}}}, {"x-dead-letter-exchange", {std::string("loop")}}});
  ASSERT_TRUE(vhost_.bind_queue("q", "loop", "", {}, 0));
  publish("", "q", "m");
  now_ += 20;
  vhost_.expire_messages();  // dead-lettered back to q: RabbitMQ drops it
  EXPECT_EQ(queue("q").ready_count(), 0u);
}

TEST_F(QueueTest, HigherPrioritiesGoFirstAndEqualOnesInOrder) {
  declare("p", {{"x-max-priority", {int32_t{5}}}});
  auto with = [](uint8_t priority) {
    MessageProperties p;
    p.priority = priority;
    return p;
  };
  publish("", "p", "low-1", with(1));
  publish("", "p", "none");
  publish("", "p", "high-1", with(5));
  publish("", "p", "over", with(9));  // above x-max-priority: treated as the maximum
  publish("", "p", "low-2", with(1));
  EXPECT_EQ(drain("p"), (Strings{"high-1", "over", "low-1", "low-2", "none"}));
}

TEST_F(QueueTest, ASingleActiveConsumerGetsEverythingUntilItLeaves) {
  declare("sac", {{"x-single-active-consumer", {true}}});
  TestConsumer first, second;
  auto q = vhost_.consume("sac", &first, false, 0);
  ASSERT_TRUE(q);
  ASSERT_TRUE(vhost_.consume("sac", &second, false, 0));
  for (int i = 0; i < 3; ++i)
    publish("", "sac", "m" + std::to_string(i));
  EXPECT_EQ(first.bodies.size(), 3u);
  EXPECT_TRUE(second.bodies.empty());
  vhost_.cancel(q.value(), &first);
  publish("", "sac", "m3");
  EXPECT_EQ(second.bodies, (Strings{"m3"}));
}

TEST_F(QueueTest, AnExclusiveConsumerKeepsOthersOut) {
  declare("mine");
  TestConsumer a, b;
  ASSERT_TRUE(vhost_.consume("mine", &a, true, 0));
  auto refused = vhost_.consume("mine", &b, false, 0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::access_refused);
  EXPECT_EQ(refused.error().message, "queue 'mine' in vhost '/' in exclusive use");
}

TEST_F(QueueTest, UnusedQueuesExpireAndAutoDeleteQueuesGoWithTheirLastConsumer) {
  declare("idle", {{"x-expires", {int32_t{5000}}}});
  now_ += 4999;
  EXPECT_TRUE(vhost_.unused_queues().empty());
  now_ += 1;
  EXPECT_EQ(vhost_.unused_queues(), (Strings{"idle"}));
  // A consumer keeps it in use.
  TestConsumer c;
  auto q = vhost_.consume("idle", &c, false, 0);
  now_ += 60000;
  EXPECT_TRUE(vhost_.unused_queues().empty());

  ASSERT_TRUE(vhost_.declare_queue({.name = "auto", .auto_delete = true}));
  TestConsumer d;
  auto a = vhost_.consume("auto", &d, false, 0);
  ASSERT_TRUE(a);
  EXPECT_TRUE(vhost_.cancel(a.value(), &d));
}

TEST_F(QueueTest, DeletingAQueueCancelsItsConsumersAndHonoursIfUnusedAndIfEmpty) {
  declare("q");
  publish("", "q", "m");
  auto not_empty = vhost_.delete_queue("q", 0, false, true);
  ASSERT_FALSE(not_empty);
  EXPECT_EQ(not_empty.error().message, "queue 'q' in vhost '/' not empty");
  TestConsumer c;
  auto q = vhost_.consume("q", &c, false, 0);
  ASSERT_TRUE(q);
  vhost_.dispatch(q.value());
  auto in_use = vhost_.delete_queue("q", 0, true, false);
  ASSERT_FALSE(in_use);
  EXPECT_EQ(in_use.error().message, "queue 'q' in vhost '/' in use");
  auto deleted = vhost_.delete_queue("q", 0);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted.value(), 0u);  // the one message was with the consumer, unacked
  EXPECT_TRUE(c.was_cancelled);
}

TEST_F(QueueTest, PublishingToMissingOrInternalExchangesIsRefused) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "inner", .type = "fanout", .internal = true}));
  auto message = std::make_shared<Message>();
  auto missing = vhost_.publish("nowhere", message);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::not_found);
  EXPECT_EQ(missing.error().message, "no exchange 'nowhere' in vhost '/'");
  auto internal = vhost_.publish("inner", message);
  ASSERT_FALSE(internal);
  EXPECT_EQ(internal.error().kind, ErrorKind::access_refused);
  // Unroutable: no queue took it.
  EXPECT_EQ(publish("", "no-such-queue", "m").queues, 0u);
}

}  // namespace
}  // namespace depot::messaging
