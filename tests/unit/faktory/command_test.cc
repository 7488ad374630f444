// Faktory commands: each verb parsed into its typed command, each error with Faktory's text.
#include "protocol/faktory/command.h"

#include <string>

#include <gtest/gtest.h>

namespace depot::faktory {
namespace {

template <class T>
T parsed(std::string_view verb, std::string_view payload) {
  auto command = parse_command(verb, payload);
  EXPECT_TRUE(command) << verb << " " << payload << " -> "
                       << (command ? "" : command.error().message);
  if (!command || !std::holds_alternative<T>(command.value())) {
    ADD_FAILURE() << "wrong command for " << verb;
    return T{};
  }
  return std::get<T>(command.value());
}

std::string error_of(std::string_view verb, std::string_view payload) {
  auto command = parse_command(verb, payload);
  EXPECT_FALSE(command) << verb << " " << payload;
  if (command) return {};
  EXPECT_EQ(command.error().code, "ERR");
  return command.error().message;
}

TEST(FaktoryCommand, ParsesFromALine) {
  auto line = next_line(std::string_view("FETCH critical default\r\n")).value();
  ASSERT_TRUE(line);
  auto command = parse_command(*line);
  ASSERT_TRUE(command);
  EXPECT_EQ(std::get<Fetch>(command.value()).queues,
            (std::vector<std::string>{"critical", "default"}));
}

TEST(FaktoryCommand, UnknownAndEnterpriseVerbs) {
  EXPECT_EQ(error_of("FOO", ""), "unknown command FOO");
  EXPECT_EQ(error_of("push", "{}"), "unknown command push");  // verbs are case-sensitive
  EXPECT_EQ(error_of("", ""), "unknown command ");
  EXPECT_EQ(error_of("BATCH", "NEW {}"), "batch subsystem is only available in Faktory Enterprise");
  EXPECT_EQ(error_of("TRACK", "GET x"),
            "tracking subsystem is only available in Faktory Enterprise");
}

TEST(FaktoryCommand, HelloFromANodeWorker) {
  Hello hello = parsed<Hello>(
      "HELLO", R"({"hostname":"box","v":2,"labels":["node"],"pid":4242,"wid":"f00dcafe",)"
               R"("pwdhash":"ab12"})");
  EXPECT_EQ(hello, (Hello{2, "box", "f00dcafe", 4242, {"node"}, "ab12", ""}));
}

TEST(FaktoryCommand, HelloFromAProducer) {
  Hello hello = parsed<Hello>("HELLO", R"({"hostname":"box","v":2,"username":"u"})");
  EXPECT_EQ(hello.wid, "");
  EXPECT_EQ(hello.username, "u");
  EXPECT_EQ(hello.pid, 0);
  EXPECT_TRUE(hello.labels.empty());
  EXPECT_EQ(parsed<Hello>("HELLO", R"({"v":1,"labels":null,"extra":{"x":[1]}})").version, 1);
}

TEST(FaktoryCommand, HelloErrors) {
  EXPECT_EQ(error_of("HELLO", ""), "invalid HELLO: expected a JSON object");
  EXPECT_EQ(error_of("HELLO", " {\"v\":2}"), "invalid HELLO: expected a JSON object");
  EXPECT_EQ(error_of("HELLO", "{\"v\":\"2\"}"), "invalid HELLO: v must be an integer, not string");
  EXPECT_EQ(error_of("HELLO", "{\"v\":256}"), "invalid HELLO: v must be between 0 and 255");
  EXPECT_EQ(error_of("HELLO", "{\"pid\":1.5}"), "invalid HELLO: pid must be an integer");
  EXPECT_EQ(error_of("HELLO", "{\"labels\":[1]}"),
            "invalid HELLO: labels items must be a string, not number");
  EXPECT_EQ(error_of("HELLO", "{\"labels\":\"node\"}"),
            "invalid HELLO: labels must be an array of strings, not string");
  EXPECT_EQ(error_of("HELLO", "{\"v\":2"),
            "invalid HELLO: JSON document ended early in the middle of an object or array.");
}

TEST(FaktoryCommand, Push) {
  Push push = parsed<Push>("PUSH", R"({"jid":"abcdefgh","jobtype":"T","args":[1]})");
  EXPECT_EQ(push.job.jid, "abcdefgh");
  EXPECT_EQ(push.job.args, "[1]");
  EXPECT_EQ(error_of("PUSH", R"({"jid":"abcdefgh","args":[1]})"),
            "jobs must have a jobtype parameter");
  EXPECT_EQ(error_of("PUSH", ""), "invalid JSON: Empty: no JSON found");
}

TEST(FaktoryCommand, PushBulk) {
  PushBulk bulk = parsed<PushBulk>(
      "PUSHB",
      R"([{"jid":"abcdefgh","jobtype":"T","args":[]},{"jid":"x","jobtype":"T","args":[]}])");
  ASSERT_EQ(bulk.items.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<jobs::Job>(bulk.items[0]));
  EXPECT_EQ(std::get<RejectedJob>(bulk.items[1]).error,
            "jobs must have a reasonable jid parameter");
  EXPECT_EQ(error_of("PUSHB", "[1]"), "invalid JSON: each job must be an object");
}

TEST(FaktoryCommand, Fetch) {
  EXPECT_EQ(parsed<Fetch>("FETCH", "critical default bulk").queues,
            (std::vector<std::string>{"critical", "default", "bulk"}));
  EXPECT_EQ(parsed<Fetch>("FETCH", "").queues, (std::vector<std::string>{"default"}));
  EXPECT_EQ(parsed<Fetch>("FETCH", "  a   b ").queues, (std::vector<std::string>{"a", "b"}));
}

TEST(FaktoryCommand, Ack) {
  EXPECT_EQ(parsed<Ack>("ACK", R"({"jid":"abcdefgh"})").jid, "abcdefgh");
  EXPECT_EQ(parsed<Ack>("ACK", R"({"jid":"abcdefgh","extra":"x"})").jid, "abcdefgh");
  EXPECT_EQ(parsed<Ack>("ACK", R"({"jid":null})").jid, "");
  EXPECT_EQ(error_of("ACK", R"({"JID":"abcdefgh"})"), R"(invalid ACK {"JID":"abcdefgh"})");
  EXPECT_EQ(error_of("ACK", R"({"jid":12})"), R"(invalid ACK {"jid":12})");
  EXPECT_EQ(error_of("ACK", R"({"jid":"a","n":1})"), R"(invalid ACK {"jid":"a","n":1})");
  EXPECT_EQ(error_of("ACK", "abcdefgh"), "invalid ACK abcdefgh");
  EXPECT_EQ(error_of("ACK", ""), "invalid ACK ");
}

TEST(FaktoryCommand, FailIsCleansedLikeFaktory) {
  Fail fail = parsed<Fail>(
      "FAIL",
      R"({"message":"  boom \n","errtype":"\tRuntimeError ","backtrace":["a","b"],"jid":"abcdefgh"})");
  EXPECT_EQ(fail, (Fail{"abcdefgh", "RuntimeError", "boom", {"a", "b"}}));

  fail = parsed<Fail>("FAIL", R"({"jid":"abcdefgh","errtype":" ","backtrace":null})");
  EXPECT_EQ(fail.errtype, "unknown");
  EXPECT_EQ(fail.message, "unknown");
  EXPECT_TRUE(fail.backtrace.empty());

  std::string lines = "[";
  for (int i = 0; i < 60; ++i)
    lines += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  lines += "]";
  const std::string long_type(150, 'T');
  // 999 ASCII bytes then a two-byte character: cut before it, not in it.
  const std::string long_message = std::string(999, 'm') + "\\u00e9" + std::string(20, 'n');
  fail = parsed<Fail>("FAIL", R"({"jid":"abcdefgh","errtype":")" + long_type + R"(","message":")" +
                                  long_message + R"(","backtrace":)" + lines + "}");
  EXPECT_EQ(fail.errtype, std::string(100, 'T'));
  EXPECT_EQ(fail.message, std::string(999, 'm'));
  ASSERT_EQ(fail.backtrace.size(), 50u);
  EXPECT_EQ(fail.backtrace.back(), "49");
}

TEST(FaktoryCommand, FailErrors) {
  EXPECT_EQ(error_of("FAIL", R"({"message":"x"})"), "missing JID");
  EXPECT_EQ(error_of("FAIL", R"({"jid":""})"), "missing JID");
  EXPECT_EQ(error_of("FAIL", R"({"jid":"abcdefgh","backtrace":"x"})"),
            R"(invalid FAIL {"jid":"abcdefgh","backtrace":"x"})");
  EXPECT_EQ(error_of("FAIL", R"({"jid":"abcdefgh","message":1})"),
            R"(invalid FAIL {"jid":"abcdefgh","message":1})");
  EXPECT_EQ(error_of("FAIL", "{"), "invalid FAIL {");
}

TEST(FaktoryCommand, Beat) {
  EXPECT_EQ(parsed<Beat>("BEAT", R"({"wid":"f00dcafe"})"), (Beat{"f00dcafe", std::nullopt, 0}));
  EXPECT_EQ(parsed<Beat>("BEAT", R"({"wid":"w","current_state":"quiet","rss_kb":54176})"),
            (Beat{"w", WorkerState::quiet, 54176}));
  EXPECT_EQ(parsed<Beat>("BEAT", R"({"wid":"w","current_state":"terminate"})").current_state,
            WorkerState::terminate);
  // Faktory maps any other name to running.
  EXPECT_EQ(parsed<Beat>("BEAT", R"({"wid":"w","current_state":"busy"})").current_state,
            WorkerState::running);
  EXPECT_EQ(parsed<Beat>("BEAT", R"({"wid":"w","current_state":""})").current_state, std::nullopt);
  EXPECT_EQ(error_of("BEAT", R"({"wid":5})"), R"(invalid BEAT {"wid":5})");
  EXPECT_EQ(error_of("BEAT", R"({"wid":"w","rss_kb":"1"})"),
            R"(invalid BEAT {"wid":"w","rss_kb":"1"})");
  EXPECT_EQ(error_of("BEAT", ""), "invalid BEAT ");
}

TEST(FaktoryCommand, PayloadlessCommands) {
  EXPECT_TRUE(std::holds_alternative<Info>(parse_command("INFO", "").value()));
  EXPECT_TRUE(std::holds_alternative<Flush>(parse_command("FLUSH", "").value()));
  EXPECT_TRUE(std::holds_alternative<End>(parse_command("END", "").value()));
}

TEST(FaktoryCommand, Queue) {
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "PAUSE a b"),
            (QueueCommand{QueueOp::pause, {"a", "b"}, false}));
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "pause *"), (QueueCommand{QueueOp::pause, {}, true}));
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "RESUME *"), (QueueCommand{QueueOp::resume, {}, true}));
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "Remove q"),
            (QueueCommand{QueueOp::remove, {"q"}, false}));
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "LATENCY a b"),
            (QueueCommand{QueueOp::latency, {"a", "b"}, false}));
  // Only a lone "*" is a wildcard for LATENCY's check, as in Faktory.
  EXPECT_EQ(parsed<QueueCommand>("QUEUE", "LATENCY a *").names,
            (std::vector<std::string>{"a", "*"}));
  EXPECT_EQ(error_of("QUEUE", "LATENCY *"), "QUEUE LATENCY does not support wildcards");
  EXPECT_EQ(error_of("QUEUE", "FOO a"), "no such QUEUE subcommand: FOO");
  EXPECT_EQ(error_of("QUEUE", "foo"), "no such QUEUE subcommand: FOO");
  EXPECT_EQ(error_of("QUEUE", ""), "no such QUEUE subcommand: ");
  EXPECT_EQ(error_of("QUEUE", "PAUSE"), "QUEUE needs queue names or *");
}

TEST(FaktoryCommand, Mutate) {
  EXPECT_EQ(
      parsed<Mutate>(
          "MUTATE",
          R"({"cmd":"kill","target":"retries","filter":{"jids":["a","b"],"regexp":"*x*","jobtype":"T"}})"),
      (Mutate{MutateOp::kill, MutateTarget::retries, MutateFilter{{"a", "b"}, "*x*", "T"}}));
  EXPECT_EQ(parsed<Mutate>("MUTATE", R"({"cmd":"discard","target":"dead"})"),
            (Mutate{MutateOp::discard, MutateTarget::dead, std::nullopt}));
  EXPECT_EQ(parsed<Mutate>("MUTATE", R"({"cmd":"requeue","target":"scheduled","filter":null})"),
            (Mutate{MutateOp::requeue, MutateTarget::scheduled, std::nullopt}));
  EXPECT_EQ(parsed<Mutate>("MUTATE", R"({"cmd":"clear","target":"retries","filter":{}})"),
            (Mutate{MutateOp::clear, MutateTarget::retries, MutateFilter{}}));
  // Spaces inside the JSON are fine here (Faktory itself splits the line on spaces).
  EXPECT_EQ(parsed<Mutate>("MUTATE", R"({"cmd": "kill", "target": "dead"})").op, MutateOp::kill);
}

TEST(FaktoryCommand, MutateErrors) {
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":"explode","target":"retries"})"),
            "unknown mutate operation");
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":"kill","target":"queues"})"),
            "invalid target for mutation command");
  // The operation is checked before the target.
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":"explode","target":"queues"})"),
            "unknown mutate operation");
  EXPECT_EQ(error_of("MUTATE", R"({"target":"dead"})"), "unknown mutate operation");
  EXPECT_EQ(error_of("MUTATE", ""), "invalid format");
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":1})"), "invalid JSON: cmd must be a string, not number");
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":"kill","target":"dead","filter":[]})"),
            "invalid JSON: filter must be an object");
  EXPECT_EQ(error_of("MUTATE", R"({"cmd":"kill","target":"dead","filter":{"jids":"a"}})"),
            "invalid JSON: filter.jids must be an array of strings, not string");
}

TEST(FaktoryCommand, CheckpointCarriesCustomMembersAndProgress) {
  auto cp = parsed<Checkpoint>(
      "CHECKPOINT", R"({"jid":"iter-0001","custom":{"cursor":{"page": 3},"note":"a\"b"},)"
                    R"("progress":{"done":123,"total":1000,"eta":[1]},"extra":null})");
  EXPECT_EQ(cp.jid, "iter-0001");
  ASSERT_TRUE(cp.custom);
  EXPECT_EQ(*cp.custom,
            (std::vector<JsonMember>{{"cursor", R"({"page": 3})"}, {"note", R"("a\"b")"}}));
  EXPECT_EQ(cp.progress, (jobs::Progress{123, 1000}));

  auto bare = parsed<Checkpoint>("CHECKPOINT", R"({"jid":"iter-0001"})");
  EXPECT_FALSE(bare.custom);
  EXPECT_FALSE(bare.progress);
  auto nulls =
      parsed<Checkpoint>("CHECKPOINT", R"({"jid":"iter-0001","custom":null,"progress":null})");
  EXPECT_FALSE(nulls.custom);
  EXPECT_FALSE(nulls.progress);
  auto empty = parsed<Checkpoint>("CHECKPOINT", R"({"jid":"x","custom":{},"progress":{"done":0}})");
  EXPECT_EQ(empty.custom, std::vector<JsonMember>{});
  EXPECT_EQ(empty.progress, (jobs::Progress{0, std::nullopt}));
  // "total": null is an unknown total.
  EXPECT_EQ(parsed<Checkpoint>("CHECKPOINT", R"({"jid":"x","progress":{"done":5,"total":null}})")
                .progress,
            (jobs::Progress{5, std::nullopt}));
}

TEST(FaktoryCommand, CheckpointErrorsSayWhatIsWrong) {
  EXPECT_EQ(error_of("CHECKPOINT", ""), "invalid CHECKPOINT: expected a JSON object");
  EXPECT_EQ(error_of("CHECKPOINT", "[1]"), "invalid CHECKPOINT: expected an object, not array");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x")").rfind("invalid CHECKPOINT: ", 0), 0u);
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x"} trailing)").rfind("invalid CHECKPOINT: ", 0), 0u);
  EXPECT_EQ(error_of("CHECKPOINT", R"({"custom":{}})"), "invalid CHECKPOINT: jid is required");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":""})"), "invalid CHECKPOINT: jid is required");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":7})"),
            "invalid CHECKPOINT: jid must be a string, not number");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","custom":[1]})"),
            "invalid CHECKPOINT: custom must be an object");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","custom":"{}"})"),
            "invalid CHECKPOINT: custom must be an object");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":5})"),
            "invalid CHECKPOINT: progress must be an object");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":{}})"),
            "invalid CHECKPOINT: progress.done is required (an integer >= 0)");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":{"done":"5"}})"),
            "invalid CHECKPOINT: progress.done must be an integer, not string");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":{"done":1.5}})"),
            "invalid CHECKPOINT: progress.done must be an integer");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":{"done":-1}})"),
            "invalid CHECKPOINT: progress.done must be between 0 and 9223372036854775807");
  EXPECT_EQ(error_of("CHECKPOINT", R"({"jid":"x","progress":{"done":1,"total":true}})"),
            "invalid CHECKPOINT: progress.total must be an integer, not boolean");
  EXPECT_EQ(
      error_of("CHECKPOINT", R"({"jid":"x","custom":{"a":tru}})").rfind("invalid CHECKPOINT: ", 0),
      0u);
}

TEST(FaktoryCommand, TrimSpaceLikeGo) {
  EXPECT_EQ(trim_space(""), "");
  EXPECT_EQ(trim_space(" \t\n\v\f\r"), "");
  EXPECT_EQ(trim_space("  a b  "), "a b");
  // U+00A0, U+0085, U+2003, U+3000 are spaces to Go; U+200B (zero-width) is not.
  EXPECT_EQ(trim_space("\xc2\xa0\xc2\x85x\xe2\x80\x83\xe3\x80\x80"), "x");
  EXPECT_EQ(trim_space("\xe2\x80\x8bx"), "\xe2\x80\x8bx");
  EXPECT_EQ(trim_space(std::string("\0x", 2)), std::string("\0x", 2));
  EXPECT_EQ(trim_space("\xffx\xff"), "\xffx\xff");
}

TEST(FaktoryCommand, TruncateOnCharacterBoundaries) {
  EXPECT_EQ(truncate_utf8("abc", 5), "abc");
  EXPECT_EQ(truncate_utf8("abcdef", 3), "abc");
  EXPECT_EQ(truncate_utf8("ab\xc3\xa9", 3), "ab");
  EXPECT_EQ(truncate_utf8("ab\xc3\xa9", 4), "ab\xc3\xa9");
  EXPECT_EQ(truncate_utf8("a\xf0\x9f\x98\x80z", 4), "a");
  EXPECT_EQ(truncate_utf8("a\xf0\x9f\x98\x80z", 5), "a\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace depot::faktory
