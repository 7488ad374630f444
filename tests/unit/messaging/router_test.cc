// Routing as RabbitMQ routes: topic patterns, headers matching, direct and fanout, the default
// exchange, exchange-to-exchange bindings (with cycles) and alternate exchanges.
#include "messaging/router.h"

#include <gtest/gtest.h>

namespace depot::messaging {
namespace {

TEST(TopicMatch, FollowsRabbitMqsRules) {
  struct Case {
    const char* pattern;
    const char* key;
    bool matches;
  };
  const Case cases[] = {
      {"a.b.c", "a.b.c", true},
      {"a.b.c", "a.b", false},
      {"a.b", "a.b.c", false},
      {"*.b.c", "a.b.c", true},
      {"*.b.c", "b.c", false},
      {"*", "a", true},
      {"*", "a.b", false},
      {"*", "", false},
      {"#", "", true},
      {"#", "a", true},
      {"#", "a.b.c", true},
      {"a.#", "a", true},
      {"a.#", "a.b", true},
      {"a.#", "a.b.c", true},
      {"a.#", "b.a", false},
      {"#.c", "c", true},
      {"#.c", "a.b.c", true},
      {"#.c", "a.b.c.d", false},
      {"a.#.c", "a.c", true},
      {"a.#.c", "a.b.b.c", true},
      {"a.#.c", "a.b.b.d", false},
      {"#.#", "", true},
      {"#.#", "a.b", true},
      {"a.*.#", "a", false},
      {"a.*.#", "a.b", true},
      {"a.*.#", "a.b.c.d", true},
      {"*.#.*", "a", false},
      {"*.#.*", "a.b", true},
      {"", "", true},
      {"", "a", false},
      {"a..b", "a..b", true},
      {"a.*.b", "a..b", true},
      {"*.*", "a.", true},
      {"#.*", ".", true},
      {"a.b", "a.B", false},
      {"#.b.#", "b", true},
      {"#.b.#", "x.y.b.z", true},
      {"#.b.#", "x.y.z", false},
      {"stock.#", "stock.usd.nyse", true},
      {"*.orange.*", "quick.orange.rabbit", true},
      {"*.*.rabbit", "lazy.orange.elephant", false},
      {"lazy.#", "lazy.pink.rabbit", true},
      {"*.orange.*", "quick.orange.male.rabbit", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(topic_matches(c.pattern, c.key), c.matches)
        << "pattern '" << c.pattern << "' key '" << c.key << "'";
  }
  // Many '#' in a row stay linear, not exponential.
  std::string pattern;
  for (int i = 0; i < 200; ++i)
    pattern += "#.";
  pattern += "z";
  std::string key;
  for (int i = 0; i < 200; ++i)
    key += "a.";
  key += "y";
  EXPECT_FALSE(topic_matches(pattern, key));
}

FieldTable table(std::initializer_list<FieldEntry> entries) {
  return FieldTable(entries);
}

TEST(HeadersMatch, AllAnyAndTheXKeys) {
  const FieldTable headers = table({{"format", {std::string("pdf")}},
                                    {"type", {std::string("report")}},
                                    {"pages", {int32_t{12}}},
                                    {"x-trace", {std::string("t")}}});
  EXPECT_TRUE(headers_match(table({{"format", {std::string("pdf")}}}), &headers));
  EXPECT_TRUE(headers_match(table({{"x-match", {std::string("all")}},
                                   {"format", {std::string("pdf")}},
                                   {"type", {std::string("report")}}}),
                            &headers));
  EXPECT_FALSE(headers_match(
      table({{"format", {std::string("pdf")}}, {"type", {std::string("log")}}}), &headers));
  EXPECT_TRUE(headers_match(table({{"x-match", {std::string("any")}},
                                   {"format", {std::string("zip")}},
                                   {"type", {std::string("report")}}}),
                            &headers));
  EXPECT_FALSE(headers_match(
      table({{"x-match", {std::string("any")}}, {"format", {std::string("zip")}}}), &headers));
  // Integers match across widths; a different type class does not.
  EXPECT_TRUE(headers_match(table({{"pages", {int64_t{12}}}}), &headers));
  EXPECT_TRUE(headers_match(table({{"pages", {uint8_t{12}}}}), &headers));
  EXPECT_FALSE(headers_match(table({{"pages", {std::string("12")}}}), &headers));
  // A void argument asks only that the header be there.
  EXPECT_TRUE(headers_match(table({{"type", {Void{}}}}), &headers));
  EXPECT_FALSE(headers_match(table({{"missing", {Void{}}}}), &headers));
  // x- arguments are ignored, unless x-match says -with-x.
  EXPECT_TRUE(headers_match(table({{"x-trace", {std::string("other")}}}), &headers));
  EXPECT_FALSE(headers_match(
      table({{"x-match", {std::string("all-with-x")}}, {"x-trace", {std::string("other")}}}),
      &headers));
  EXPECT_TRUE(headers_match(
      table({{"x-match", {std::string("any-with-x")}}, {"x-trace", {std::string("t")}}}),
      &headers));
  // No arguments: "all" of nothing matches everything, "any" of nothing matches nothing.
  EXPECT_TRUE(headers_match({}, nullptr));
  EXPECT_FALSE(headers_match(table({{"x-match", {std::string("any")}}}), &headers));
  EXPECT_FALSE(headers_match(table({{"format", {std::string("pdf")}}}), nullptr));
}

ExchangeSettings settings(ExchangeType type, FieldTable arguments = {}) {
  ExchangeSettings s;
  s.type = type;
  s.arguments = std::move(arguments);
  return s;
}

Destination queue(const std::string& name) {
  return {Destination::Kind::queue, name};
}
Destination exchange(const std::string& name) {
  return {Destination::Kind::exchange, name};
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* q : {"q1", "q2", "q3", "q4"})
      router_.add_queue(q);
  }
  std::vector<std::string> route(const std::string& exchange, const std::string& key,
                                 const FieldTable* headers = nullptr) {
    auto routed = router_.route(exchange, key, headers);
    std::vector<std::string> queues(routed.begin(), routed.end());
    std::sort(queues.begin(), queues.end());
    return queues;
  }
  Router router_;
};

using Names = std::vector<std::string>;

TEST_F(RouterTest, TheDefaultExchangeRoutesToTheQueueNamedByTheKey) {
  EXPECT_EQ(route("", "q2"), Names{"q2"});
  EXPECT_EQ(route("", "nope"), Names{});
  EXPECT_NE(router_.exchange("amq.topic"), nullptr);
  EXPECT_EQ(router_.exchange("amq.match")->type, ExchangeType::headers);
}

TEST_F(RouterTest, DirectFanoutTopicAndHeadersExchanges) {
  router_.add_exchange("d", settings(ExchangeType::direct));
  router_.add_exchange("f", settings(ExchangeType::fanout));
  router_.add_exchange("t", settings(ExchangeType::topic));
  router_.add_exchange("h", settings(ExchangeType::headers));
  EXPECT_TRUE(router_.bind({"d", queue("q1"), "red", {}}));
  EXPECT_TRUE(router_.bind({"d", queue("q2"), "red", {}}));
  EXPECT_TRUE(router_.bind({"d", queue("q3"), "blue", {}}));
  EXPECT_FALSE(router_.bind({"d", queue("q3"), "blue", {}}));  // already bound
  EXPECT_EQ(route("d", "red"), (Names{"q1", "q2"}));
  EXPECT_EQ(route("d", "green"), Names{});

  router_.bind({"f", queue("q1"), "ignored", {}});
  router_.bind({"f", queue("q4"), "", {}});
  EXPECT_EQ(route("f", "anything"), (Names{"q1", "q4"}));

  router_.bind({"t", queue("q1"), "*.error", {}});
  router_.bind({"t", queue("q2"), "kern.#", {}});
  router_.bind({"t", queue("q2"), "#.error", {}});  // a second path to q2: delivered once
  EXPECT_EQ(route("t", "kern.error"), (Names{"q1", "q2"}));
  EXPECT_EQ(router_.route("t", "kern.error", nullptr).size(), 2U);
  EXPECT_EQ(route("t", "app.info"), Names{});

  router_.bind({"h", queue("q3"), "", {{"x-match", {std::string("any")}}, {"a", {int32_t{1}}}}});
  FieldTable headers{{"a", {int32_t{1}}}};
  EXPECT_EQ(route("h", "", &headers), Names{"q3"});
  EXPECT_EQ(route("h", ""), Names{});

  EXPECT_TRUE(router_.unbind({"d", queue("q2"), "red", {}}));
  EXPECT_FALSE(router_.unbind({"d", queue("q2"), "red", {}}));
  EXPECT_EQ(route("d", "red"), Names{"q1"});
}

TEST_F(RouterTest, ExchangeToExchangeBindingsFollowOnAndCyclesEnd) {
  router_.add_exchange("front", settings(ExchangeType::topic));
  router_.add_exchange("audit", settings(ExchangeType::fanout));
  router_.add_exchange("loop", settings(ExchangeType::fanout));
  router_.bind({"front", exchange("audit"), "#", {}});
  router_.bind({"front", queue("q1"), "orders.*", {}});
  router_.bind({"audit", queue("q2"), "", {}});
  router_.bind({"audit", queue("q1"), "", {}});  // q1 twice by two paths: once
  router_.bind({"audit", exchange("loop"), "", {}});
  router_.bind({"loop", exchange("audit"), "", {}});  // a cycle
  router_.bind({"loop", queue("q3"), "", {}});
  EXPECT_EQ(route("front", "orders.new"), (Names{"q1", "q2", "q3"}));
  EXPECT_EQ(router_.route("front", "orders.new", nullptr).size(), 3U);
  EXPECT_TRUE(router_.has_bindings_to(exchange("audit")));

  router_.remove_exchange("audit");  // its bindings, both ways, go with it
  EXPECT_FALSE(router_.has_bindings_to(exchange("audit")));
  EXPECT_EQ(route("front", "orders.new"), Names{"q1"});
  EXPECT_EQ(route("loop", "x"), Names{"q3"});
}

TEST_F(RouterTest, AnAlternateExchangeTakesWhatAnExchangeCannotRoute) {
  router_.add_exchange("unrouted", settings(ExchangeType::fanout));
  router_.bind({"unrouted", queue("q4"), "", {}});
  ExchangeSettings main = settings(ExchangeType::direct);
  main.arguments = {{"alternate-exchange", {std::string("unrouted")}}};
  router_.add_exchange("main", main);
  router_.bind({"main", queue("q1"), "known", {}});
  EXPECT_EQ(route("main", "known"), Names{"q1"});
  EXPECT_EQ(route("main", "other"), Names{"q4"});
  // Alternate exchanges chain, and a missing one routes nowhere.
  ExchangeSettings second = settings(ExchangeType::direct);
  second.arguments = {{"alternate-exchange", {std::string("main")}}};
  router_.add_exchange("second", second);
  EXPECT_EQ(route("second", "known"), Names{"q1"});
  ExchangeSettings dangling = settings(ExchangeType::direct);
  dangling.arguments = {{"alternate-exchange", {std::string("nowhere")}}};
  router_.add_exchange("dangling", dangling);
  EXPECT_EQ(route("dangling", "x"), Names{});
  // A cycle of alternates ends.
  ExchangeSettings a = settings(ExchangeType::direct);
  a.arguments = {{"alternate-exchange", {std::string("b")}}};
  ExchangeSettings b = settings(ExchangeType::direct);
  b.arguments = {{"alternate-exchange", {std::string("a")}}};
  router_.add_exchange("a", a);
  router_.add_exchange("b", b);
  EXPECT_EQ(route("a", "x"), Names{});
}

TEST_F(RouterTest, RemovingAQueueRemovesItsBindings) {
  router_.add_exchange("f", settings(ExchangeType::fanout));
  router_.bind({"f", queue("q1"), "", {}});
  router_.bind({"f", queue("q2"), "", {}});
  router_.remove_queue("q1");
  EXPECT_EQ(route("f", ""), Names{"q2"});
  EXPECT_EQ(route("", "q1"), Names{});
  EXPECT_FALSE(router_.has_bindings_to(queue("q1")));
  ASSERT_EQ(router_.bindings().size(), 1U);
  EXPECT_EQ(router_.bindings()[0], (Binding{"f", queue("q2"), "", {}}));
}

}  // namespace
}  // namespace depot::messaging
