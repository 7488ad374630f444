// Declaring, binding and deleting exchanges and queues with RabbitMQ's rules and wording.
#include "messaging/vhost.h"

#include <gtest/gtest.h>

namespace depot::messaging {
namespace {

class VirtualHostTest : public ::testing::Test {
 protected:
  VirtualHostTest() : vhost_("/") {
    vhost_.make_queue_name = [this] { return "amq.gen-" + std::to_string(++generated_); };
  }
  Error exchange_error(const VirtualHost::ExchangeDeclare& request) {
    auto r = vhost_.declare_exchange(request);
    EXPECT_FALSE(r.has_value());
    return r.has_value() ? Error{} : r.error();
  }
  Error queue_error(const VirtualHost::QueueDeclare& request) {
    auto r = vhost_.declare_queue(request);
    EXPECT_FALSE(r.has_value());
    return r.has_value() ? Error{} : r.error();
  }
  VirtualHost vhost_;
  int generated_ = 0;
};

TEST_F(VirtualHostTest, ExchangesAreDeclaredOnceAndRedeclaredOnlyAsTheyAre) {
  auto created = vhost_.declare_exchange({.name = "logs", .type = "topic", .durable = true});
  ASSERT_TRUE(created);
  EXPECT_TRUE(created.value());
  auto again = vhost_.declare_exchange({.name = "logs", .type = "topic", .durable = true});
  ASSERT_TRUE(again);
  EXPECT_FALSE(again.value());

  Error e = exchange_error({.name = "logs", .type = "fanout", .durable = true});
  EXPECT_EQ(e.kind, ErrorKind::precondition_failed);
  EXPECT_EQ(e.message,
            "inequivalent arg 'type' for exchange 'logs' in vhost '/': received 'fanout' but "
            "current is 'topic'");
  e = exchange_error({.name = "logs", .type = "topic", .durable = false});
  EXPECT_EQ(e.kind, ErrorKind::precondition_failed);
  EXPECT_NE(e.message.find("'durable'"), std::string::npos);

  // A passive declare checks existence only.
  EXPECT_TRUE(vhost_.declare_exchange({.name = "logs", .type = "direct", .passive = true}));
  e = exchange_error({.name = "nope", .passive = true});
  EXPECT_EQ(e, (Error{ErrorKind::not_found, "no exchange 'nope' in vhost '/'"}));
  EXPECT_TRUE(vhost_.declare_exchange({.name = "amq.topic", .passive = true}));
  EXPECT_TRUE(vhost_.declare_exchange({.name = "", .passive = true}));

  e = exchange_error({.name = "amq.custom", .type = "direct"});
  EXPECT_EQ(e, (Error{ErrorKind::access_refused,
                      "exchange name 'amq.custom' contains reserved prefix 'amq.*'"}));
  e = exchange_error({.name = "", .type = "direct"});
  EXPECT_EQ(e.kind, ErrorKind::access_refused);
  e = exchange_error({.name = "odd", .type = "x-consistent-hash"});
  EXPECT_EQ(e,
            (Error{ErrorKind::precondition_failed, "unknown exchange type 'x-consistent-hash'"}));
}

TEST_F(VirtualHostTest, DeletingAnExchangeInUseNeedsIfUnusedFalse) {
  ASSERT_TRUE(vhost_.declare_exchange({.name = "e", .type = "fanout"}));
  ASSERT_TRUE(vhost_.declare_queue({.name = "q"}));
  ASSERT_TRUE(vhost_.bind_queue("q", "e", "", {}, 0));
  auto refused = vhost_.delete_exchange("e", /*if_unused=*/true);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(),
            (Error{ErrorKind::precondition_failed, "exchange 'e' in vhost '/' in use"}));
  EXPECT_TRUE(vhost_.delete_exchange("e", false));
  EXPECT_EQ(vhost_.router().exchange("e"), nullptr);
  EXPECT_TRUE(vhost_.delete_exchange("e", false));  // deleting again is not an error
  EXPECT_FALSE(vhost_.delete_exchange("", false));
  EXPECT_FALSE(vhost_.delete_exchange("amq.direct", false));
}

TEST_F(VirtualHostTest, QueuesAreNamedByTheServerWhenAskedAndCheckedWhenRedeclared) {
  auto named = vhost_.declare_queue({.name = ""});
  ASSERT_TRUE(named);
  EXPECT_EQ(named.value().name, "amq.gen-1");
  EXPECT_TRUE(named.value().created);
  EXPECT_TRUE(vhost_.router().has_queue("amq.gen-1"));

  ASSERT_TRUE(vhost_.declare_queue({.name = "jobs", .durable = true}));
  auto again = vhost_.declare_queue({.name = "jobs", .durable = true});
  ASSERT_TRUE(again);
  EXPECT_FALSE(again.value().created);
  Error e = queue_error({.name = "jobs", .durable = false});
  EXPECT_EQ(e.kind, ErrorKind::precondition_failed);
  EXPECT_EQ(e.message,
            "inequivalent arg 'durable': received 'false' but current is 'true' for queue 'jobs' "
            "in vhost '/'");
  e = queue_error(
      {.name = "jobs", .durable = true, .arguments = {{"x-message-ttl", {int32_t{100}}}}});
  EXPECT_EQ(e.kind, ErrorKind::precondition_failed);
  EXPECT_NE(e.message.find("'x-message-ttl': received '100' but current is none"),
            std::string::npos)
      << e.message;
  // The same value in another integer width is the same argument.
  ASSERT_TRUE(
      vhost_.declare_queue({.name = "ttl", .arguments = {{"x-message-ttl", {int32_t{5}}}}}));
  EXPECT_TRUE(
      vhost_.declare_queue({.name = "ttl", .arguments = {{"x-message-ttl", {int64_t{5}}}}}));

  e = queue_error({.name = "amq.mine"});
  EXPECT_EQ(e, (Error{ErrorKind::access_refused,
                      "queue name 'amq.mine' contains reserved prefix 'amq.*'"}));
  e = queue_error({.name = "missing", .passive = true});
  EXPECT_EQ(e, (Error{ErrorKind::not_found, "no queue 'missing' in vhost '/'"}));
}

TEST_F(VirtualHostTest, QueueArgumentsAreCheckedAsRabbitMqChecksThem) {
  auto ok = parse_queue_arguments({{"x-message-ttl", {int32_t{60000}}},
                                   {"x-expires", {int64_t{1800000}}},
                                   {"x-max-length", {int16_t{10}}},
                                   {"x-max-length-bytes", {int64_t{1 << 20}}},
                                   {"x-overflow", {std::string("reject-publish")}},
                                   {"x-dead-letter-exchange", {std::string("dlx")}},
                                   {"x-dead-letter-routing-key", {std::string("dead")}},
                                   {"x-max-priority", {uint8_t{10}}},
                                   {"x-single-active-consumer", {true}},
                                   {"x-queue-type", {std::string("classic")}},
                                   {"x-something-else", {std::string("kept")}}},
                                  "q", "/");
  ASSERT_TRUE(ok) << ok.error().message;
  const QueueArguments& a = ok.value();
  EXPECT_EQ(a.message_ttl_ms, 60000);
  EXPECT_EQ(a.expires_ms, 1800000);
  EXPECT_EQ(a.max_length, 10);
  EXPECT_EQ(a.max_length_bytes, 1 << 20);
  EXPECT_EQ(a.overflow, Overflow::reject_publish);
  EXPECT_EQ(a.dead_letter_exchange, "dlx");
  EXPECT_EQ(a.dead_letter_routing_key, "dead");
  EXPECT_EQ(a.max_priority, 10);
  EXPECT_TRUE(a.single_active_consumer);

  auto refused = [](FieldTable args) {
    auto r = parse_queue_arguments(args, "q", "/");
    EXPECT_FALSE(r.has_value());
    return r.has_value() ? std::string() : r.error().message;
  };
  EXPECT_EQ(refused({{"x-message-ttl", {int32_t{-1}}}}),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}");
  EXPECT_EQ(refused({{"x-expires", {int32_t{0}}}}),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}");
  EXPECT_NE(refused({{"x-max-length", {std::string("10")}}}).find("an integer is needed"),
            std::string::npos);
  EXPECT_NE(refused({{"x-overflow", {std::string("drop-tail")}}}).find("drop-tail"),
            std::string::npos);
  EXPECT_NE(refused({{"x-max-priority", {int32_t{256}}}}).find("value_too_large"),
            std::string::npos);
  EXPECT_NE(refused({{"x-dead-letter-routing-key", {std::string("k")}}})
                .find("needs x-dead-letter-exchange"),
            std::string::npos);
  EXPECT_NE(refused({{"x-queue-type", {std::string("quorum")}}}).find("'quorum' is not supported"),
            std::string::npos);
  EXPECT_NE(refused({{"x-single-active-consumer", {int32_t{1}}}}).find("a boolean"),
            std::string::npos);
}

TEST_F(VirtualHostTest, ExclusiveQueuesBelongToTheirConnection) {
  ASSERT_TRUE(vhost_.declare_queue({.name = "mine", .exclusive = true, .owner = 7}));
  EXPECT_TRUE(vhost_.declare_queue({.name = "mine", .exclusive = true, .owner = 7}));
  Error e = queue_error({.name = "mine", .exclusive = true, .owner = 8});
  EXPECT_EQ(e.kind, ErrorKind::resource_locked);
  e = queue_error({.name = "mine", .passive = true, .owner = 8});
  EXPECT_EQ(e.kind, ErrorKind::resource_locked);
  ASSERT_TRUE(vhost_.declare_exchange({.name = "e", .type = "direct"}));
  EXPECT_FALSE(vhost_.bind_queue("mine", "e", "k", {}, 8));
  EXPECT_TRUE(vhost_.bind_queue("mine", "e", "k", {}, 7));
  EXPECT_FALSE(vhost_.delete_queue("mine", 8));
  EXPECT_EQ(vhost_.queues_owned_by(7), std::vector<std::string>{"mine"});
  EXPECT_TRUE(vhost_.delete_queue("mine", 7));
  EXPECT_EQ(vhost_.queue("mine"), nullptr);
  EXPECT_FALSE(vhost_.router().has_bindings_from("e"));
  EXPECT_TRUE(vhost_.delete_queue("mine", 7));  // idempotent
}

TEST_F(VirtualHostTest, BindingsNeedBothEndsAndNeverTheDefaultExchange) {
  ASSERT_TRUE(vhost_.declare_queue({.name = "q"}));
  ASSERT_TRUE(vhost_.declare_exchange({.name = "src", .type = "topic"}));
  ASSERT_TRUE(vhost_.declare_exchange({.name = "dst", .type = "fanout"}));
  auto e = vhost_.bind_queue("q", "", "q", {}, 0);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(),
            (Error{ErrorKind::access_refused, "operation not permitted on the default exchange"}));
  e = vhost_.bind_queue("q", "nowhere", "k", {}, 0);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), (Error{ErrorKind::not_found, "no exchange 'nowhere' in vhost '/'"}));
  e = vhost_.bind_queue("gone", "src", "k", {}, 0);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), (Error{ErrorKind::not_found, "no queue 'gone' in vhost '/'"}));

  ASSERT_TRUE(vhost_.bind_exchange("dst", "src", "a.#", {}));
  ASSERT_TRUE(vhost_.bind_queue("q", "dst", "", {}, 0));
  EXPECT_EQ(vhost_.router().route("src", "a.b", nullptr), std::vector<std::string_view>{"q"});
  ASSERT_TRUE(vhost_.unbind_exchange("dst", "src", "a.#", {}));
  EXPECT_TRUE(vhost_.router().route("src", "a.b", nullptr).empty());
  EXPECT_FALSE(vhost_.bind_exchange("dst", "missing", "", {}));
  EXPECT_TRUE(vhost_.unbind_queue("q", "dst", "never-bound", {}, 0));  // not an error
}

}  // namespace
}  // namespace depot::messaging
