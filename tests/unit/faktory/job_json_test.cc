// The Faktory job JSON codec: PUSH validation and defaults, FETCH output, exact round trips.
#include "protocol/faktory/job_json.h"

#include <string>

#include <gtest/gtest.h>

namespace depot::faktory {
namespace {

constexpr int64_t kMay1Noon = 1714564800000000000;  // 2024-05-01T12:00:00Z

jobs::Job parsed(std::string_view json) {
  auto job = parse_job(json);
  EXPECT_TRUE(job) << json << " -> " << (job ? "" : job.error().message);
  return job ? job.value() : jobs::Job{};
}

std::string error_of(std::string_view json) {
  auto job = parse_job(json);
  EXPECT_FALSE(job) << json;
  return job ? std::string() : job.error().message;
}

TEST(FaktoryJobJson, MinimalJobGetsFaktoryDefaults) {
  jobs::Job job = parsed(R"({"jid":"abcdefgh","jobtype":"SomeJob","args":[]})");
  EXPECT_EQ(job.jid, "abcdefgh");
  EXPECT_EQ(job.jobtype, "SomeJob");
  EXPECT_EQ(job.args, "[]");
  EXPECT_EQ(job.queue, "default");
  EXPECT_EQ(job.reserve_for, 1800);
  EXPECT_EQ(job.retry, 25);
  EXPECT_EQ(job.created_at, 0);  // the store sets it
  EXPECT_EQ(job.enqueued_at, 0);
  EXPECT_EQ(job.at, 0);
  EXPECT_EQ(job.custom, "");
  EXPECT_FALSE(job.backtrace);
  EXPECT_FALSE(job.failure);
  EXPECT_FALSE(job.unique_for);
  EXPECT_EQ(job.expires_at, 0);
}

TEST(FaktoryJobJson, NodeClientPushDropsPriority) {
  // faktory-worker 4.x merges {jid, queue, args, priority: 5, retry: 25} into every job.
  jobs::Job job = parsed(
      R"({"jid":"0b6ab2c4-4c0b-4b8c-9a0e-2f1c3d4e5f60","queue":"critical","args":[1,"two",{"3":null}],)"
      R"("priority":5,"retry":25,"jobtype":"MyJob","reserve_for":300,"at":"2024-05-01T14:00:00+02:00"})");
  EXPECT_EQ(job.jid, "0b6ab2c4-4c0b-4b8c-9a0e-2f1c3d4e5f60");
  EXPECT_EQ(job.queue, "critical");
  EXPECT_EQ(job.args, R"([1,"two",{"3":null}])");
  EXPECT_EQ(job.reserve_for, 300);
  EXPECT_EQ(job.at, kMay1Noon);
  EXPECT_EQ(write_job(job).find("priority"), std::string::npos);
}

TEST(FaktoryJobJson, RetryAndReserveForDefaults) {
  const std::string base = R"({"jid":"abcdefgh","jobtype":"T","args":[])";
  EXPECT_EQ(parsed(base + R"(,"retry":null})").retry, 25);
  EXPECT_EQ(parsed(base + R"(,"retry":0})").retry, 0);
  EXPECT_EQ(parsed(base + R"(,"retry":-1})").retry, -1);
  EXPECT_EQ(parsed(base + R"(,"retry":3})").retry, 3);
  EXPECT_EQ(parsed(base + R"(,"reserve_for":0})").reserve_for, 1800);
  EXPECT_EQ(parsed(base + R"(,"reserve_for":null})").reserve_for, 1800);
  EXPECT_EQ(parsed(base + R"(,"reserve_for":60})").reserve_for, 60);
  EXPECT_EQ(parsed(base + R"(,"reserve_for":86400})").reserve_for, 86400);
  // Below the fetch-time minimum is accepted; the store clamps at FETCH, as Faktory does.
  EXPECT_EQ(parsed(base + R"(,"reserve_for":-5})").reserve_for, -5);
  EXPECT_EQ(error_of(base + R"(,"reserve_for":86401})"),
            "jobs cannot be reserved for more than one day");
  EXPECT_EQ(error_of(base + R"(,"reserve_for":9223372036854775807})"),
            "jobs cannot be reserved for more than one day");
  EXPECT_EQ(parsed(base + R"(,"queue":""})").queue, "default");
  EXPECT_EQ(parsed(base + R"(,"queue":null})").queue, "default");
  EXPECT_EQ(parsed(base + R"(,"backtrace":0})").backtrace, 0);
  EXPECT_EQ(parsed(base + R"(,"backtrace":12})").backtrace, 12);
  EXPECT_FALSE(parsed(base + R"(,"backtrace":null})").backtrace);
}

TEST(FaktoryJobJson, ValidationErrorsInFaktorysOrder) {
  EXPECT_EQ(error_of(R"({"jobtype":"T","args":[]})"), "jobs must have a reasonable jid parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefg","jobtype":"T","args":[]})"),
            "jobs must have a reasonable jid parameter");
  EXPECT_EQ(error_of(R"({"jid":null,"jobtype":"T","args":[]})"),
            "jobs must have a reasonable jid parameter");
  EXPECT_EQ(error_of(R"({})"), "jobs must have a reasonable jid parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","args":[]})"), "jobs must have a jobtype parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"","args":[]})"),
            "jobs must have a jobtype parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T"})"), "jobs must have an args parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T","args":null})"),
            "jobs must have an args parameter");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T","args":[],"at":"tomorrow"})"),
            R"(invalid timestamp for 'at': "tomorrow": not an RFC 3339 time)");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T","args":[],"at":"2024-05-01 12:00"})"),
            R"(invalid timestamp for 'at': "2024-05-01 12:00": not an RFC 3339 time)");
  // jid length counts bytes, as Go's len() does.
  EXPECT_EQ(parsed(R"({"jid":"\u00e9\u00e9\u00e9\u00e9","jobtype":"T","args":[]})").jid,
            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
}

// A periodic job's definition has no jid; everything else is checked as for PUSH.
TEST(FaktoryJobJson, TemplateNeedsNoJidButTheRestIsChecked) {
  auto job = parse_job_template(R"({"jobtype":"Report","args":[1],"custom":{"unique_for":60}})");
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job.value().jid, "");
  EXPECT_EQ(job.value().jobtype, "Report");
  EXPECT_EQ(job.value().queue, "default");
  EXPECT_EQ(job.value().unique_for, 60);
  EXPECT_EQ(parse_job_template(R"({"args":[]})").error().message,
            "jobs must have a jobtype parameter");
  EXPECT_EQ(parse_job_template(R"({"jobtype":"T"})").error().message,
            "jobs must have an args parameter");
  EXPECT_EQ(parse_job_template(R"({"jobtype":"T","args":[],"reserve_for":86401})").error().message,
            "jobs cannot be reserved for more than one day");
  EXPECT_EQ(parse_job_template(R"({"jobtype":"T","args":{}})").error().message,
            "invalid JSON: args must be an array");
}

TEST(FaktoryJobJson, AtIsOptional) {
  const std::string base = R"({"jid":"abcdefgh","jobtype":"T","args":[])";
  EXPECT_EQ(parsed(base + R"(,"at":""})").at, 0);
  EXPECT_EQ(parsed(base + R"(,"at":null})").at, 0);
  EXPECT_EQ(parsed(base + R"(,"at":"2024-05-01T12:00:00.000000001Z"})").at, kMay1Noon + 1);
}

TEST(FaktoryJobJson, WrongTypesAreClearErrors) {
  const std::string base = R"("jobtype":"T","args":[])";
  EXPECT_EQ(error_of(R"({"jid":12345678,)" + base + "}"),
            "invalid JSON: jid must be a string, not number");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":["T"],"args":[]})"),
            "invalid JSON: jobtype must be a string, not array");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T","args":{}})"),
            "invalid JSON: args must be an array");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh","jobtype":"T","args":"x"})"),
            "invalid JSON: args must be an array");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"custom":[1]})"),
            "invalid JSON: custom must be an object");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"retry":"5"})"),
            "invalid JSON: retry must be an integer, not string");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"retry":1.5})"),
            "invalid JSON: retry must be an integer");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"retry":4294967296})"),
            "invalid JSON: retry must be between -2147483648 and 2147483647");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"reserve_for":1e3})"),
            "invalid JSON: reserve_for must be an integer");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"reserve_for":true})"),
            "invalid JSON: reserve_for must be an integer, not boolean");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"at":1714564800})"),
            "invalid JSON: at must be a string, not number");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"created_at":{}})"),
            "invalid JSON: created_at must be a string, not object");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"failure":"boom"})"),
            "invalid JSON: failure must be an object");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"failure":{"retry_count":"1"}})"),
            "invalid JSON: failure.retry_count must be an integer, not string");
  EXPECT_EQ(error_of(R"({"jid":"abcdefgh",)" + base + R"(,"failure":{"backtrace":[1]}})"),
            "invalid JSON: failure.backtrace items must be a string, not number");
  EXPECT_EQ(error_of("[]"), "invalid JSON: expected an object, not array");
  EXPECT_EQ(error_of("\"job\""), "invalid JSON: expected an object, not string");
}

TEST(FaktoryJobJson, MalformedJsonIsRefused) {
  for (const char* bad : {"", " ", "{", "}", "{\"jid\":}", "{\"jid\" \"abcdefgh\"}",
                          "{\"jid\":\"abcdefgh\",}", "{\"jid\":\"abc\\x\"}", "{'jid':'abcdefgh'}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[1,]}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[tru]}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[01]}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"priority\":nul}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"x\":{\"a\":}}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[]} x",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[]}{}",
                          "{\"jid\":\"abcd\tefgh\",\"jobtype\":\"T\",\"args\":[]}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[\"\xff\"]}",
                          "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[1e999]}"}) {
    auto job = parse_job(bad);
    ASSERT_FALSE(job) << bad;
    EXPECT_EQ(job.error().code, "ERR");
    EXPECT_EQ(job.error().message.rfind("invalid JSON: ", 0), 0u)
        << bad << " -> " << job.error().message;
  }
  // Malformed JSON wins over a validation failure, as Go checks syntax first.
  EXPECT_EQ(parse_job("{\"jid\":\"a\"} x").error().message.rfind("invalid JSON: ", 0), 0u);
}

TEST(FaktoryJobJson, KeysMatchCaseInsensitivelyLikeGo) {
  jobs::Job job = parsed(R"({"JID":"abcdefgh","JobType":"T","Args":[1],"RETRY":2})");
  EXPECT_EQ(job.jid, "abcdefgh");
  EXPECT_EQ(job.jobtype, "T");
  EXPECT_EQ(job.args, "[1]");
  EXPECT_EQ(job.retry, 2);
  // The last of duplicate keys wins.
  EXPECT_EQ(parsed(R"({"jid":"xxxxxxxx","jid":"abcdefgh","jobtype":"T","args":[]})").jid,
            "abcdefgh");
}

TEST(FaktoryJobJson, ArgsAndCustomKeepTheClientsExactText) {
  const std::string args =
      R"([ 1 , 2.50 , "\u00e9\n" , {"deep" : [ [ [] ] ]}, 123456789012345678901234567890 ])";
  const std::string custom =
      R"({ "a" : [ 1 , {"b":"\ud83d\ude00 \/ \"q\""} ] ,"n": -0.0e+0, "t":true,"f":false,"z":null, "e": {} })";
  jobs::Job job = parsed(R"({"jid":"abcdefgh","jobtype":"T","args":)" + args +
                         " \n\t, \"custom\" :" + custom + "  }");
  EXPECT_EQ(job.args, args);
  EXPECT_EQ(job.custom, custom);
  const std::string written = write_job(job);
  EXPECT_NE(written.find("\"args\":" + args + ","), std::string::npos) << written;
  EXPECT_NE(written.find("\"custom\":" + custom + "}"), std::string::npos) << written;
  EXPECT_EQ(parsed(written), job);
}

TEST(FaktoryJobJson, RawTextExcludesSurroundingWhitespace) {
  jobs::Job job = parsed(
      "{ \"jid\" : \"abcdefgh\" , \"jobtype\":\"T\",\"args\" :\r\n\t [ 1 ,2 ]\t,"
      "\"custom\":  {\"a\" : 1 }\n }  ");
  EXPECT_EQ(job.args, "[ 1 ,2 ]");
  EXPECT_EQ(job.custom, "{\"a\" : 1 }");
  // Inside a PUSHB array the job object is followed by ',' or ']', not the end of the text.
  auto items = parse_jobs(
      "[{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"custom\":{ }, \"args\":[ ] } ,"
      "{\"jid\":\"ijklmnop\",\"jobtype\":\"T\",\"args\":[2]}]");
  ASSERT_TRUE(items);
  EXPECT_EQ(std::get<jobs::Job>(items.value()[0]).args, "[ ]");
  EXPECT_EQ(std::get<jobs::Job>(items.value()[0]).custom, "{ }");
  EXPECT_EQ(std::get<jobs::Job>(items.value()[1]).args, "[2]");
}

TEST(FaktoryJobJson, DeeplyNestedCustomRoundTrips) {
  std::string custom;
  for (int i = 0; i < 300; ++i)
    custom += (i % 2 ? "[" : "{\"k\":");
  custom += "\"leaf\"";
  for (int i = 299; i >= 0; --i)
    custom += (i % 2 ? "]" : "}");
  jobs::Job job = parsed(R"({"jid":"abcdefgh","jobtype":"T","args":[],"custom":)" + custom + "}");
  EXPECT_EQ(job.custom, custom);
  EXPECT_EQ(parsed(write_job(job)), job);
}

TEST(FaktoryJobJson, AbsurdNestingIsAnErrorNotACrash) {
  std::string deep(20000, '[');
  deep += std::string(20000, ']');
  auto job = parse_job(R"({"jid":"abcdefgh","jobtype":"T","args":)" + deep + "}");
  ASSERT_FALSE(job);
  EXPECT_EQ(job.error().message.rfind("invalid JSON: ", 0), 0u);
  job = parse_job(R"({"jid":"abcdefgh","jobtype":"T","args":[],"x":)" + deep + "}");
  ASSERT_FALSE(job);
}

TEST(FaktoryJobJson, UniqueForAndExpiresAtComeFromCustom) {
  const std::string base = R"({"jid":"abcdefgh","jobtype":"T","args":[],"custom":)";
  jobs::Job job =
      parsed(base + R"({"unique_for":300,"expires_at":"2024-05-01T14:00:00+02:00","x":1}})");
  EXPECT_EQ(job.unique_for, 300);
  EXPECT_EQ(job.expires_at, kMay1Noon);
  EXPECT_EQ(parsed(base + R"({"unique_for":1.9}})").unique_for, 1);
  EXPECT_EQ(parsed(base + R"({"unique_for":1e30}})").unique_for, 9200000000000000000);
  // Other types are the client's business: ignored, and the custom text is still kept.
  job = parsed(base + R"({"unique_for":"300","expires_at":"soon"}})");
  EXPECT_FALSE(job.unique_for);
  EXPECT_EQ(job.expires_at, 0);
  EXPECT_EQ(job.custom, R"({"unique_for":"300","expires_at":"soon"})");
  // Only top-level keys, spelled exactly (custom is a map in Go, not a struct).
  job = parsed(base + R"({"inner":{"unique_for":5},"Unique_For":6}})");
  EXPECT_FALSE(job.unique_for);
  EXPECT_FALSE(parsed(base + "null}").unique_for);
  EXPECT_EQ(parsed(base + "null}").custom, "");
}

TEST(FaktoryJobJson, ServerTimestampsAndFailure) {
  jobs::Job job = parsed(
      R"({"jid":"abcdefgh","jobtype":"T","args":[],"created_at":"2024-05-01T12:00:00.5Z",)"
      R"("enqueued_at":"2024-05-01T12:00:01Z","failure":{"retry_count":2,"remaining":22,)"
      R"("failed_at":"2024-05-01T12:00:02Z","next_at":"2024-05-01T12:01:00Z","message":"boom",)"
      R"("errtype":"RuntimeError","backtrace":["a.rb:1","b.rb:2"]}})");
  EXPECT_EQ(job.created_at, kMay1Noon + 500000000);
  EXPECT_EQ(job.enqueued_at, kMay1Noon + 1000000000);
  ASSERT_TRUE(job.failure);
  EXPECT_EQ(job.failure->retry_count, 2);
  EXPECT_EQ(job.failure->remaining, 22);
  EXPECT_EQ(job.failure->failed_at, kMay1Noon + 2000000000);
  EXPECT_EQ(job.failure->next_at, kMay1Noon + 60000000000);
  EXPECT_EQ(job.failure->message, "boom");
  EXPECT_EQ(job.failure->errtype, "RuntimeError");
  EXPECT_EQ(job.failure->backtrace, (std::vector<std::string>{"a.rb:1", "b.rb:2"}));
  // Faktory stores these as opaque strings: one we cannot read is "unset", not an error.
  job = parsed(R"({"jid":"abcdefgh","jobtype":"T","args":[],"created_at":"yesterday"})");
  EXPECT_EQ(job.created_at, 0);
  EXPECT_FALSE(parsed(R"({"jid":"abcdefgh","jobtype":"T","args":[],"failure":null})").failure);
}

TEST(FaktoryJobJson, WritesWhatFetchReturns) {
  jobs::Job job;
  job.jid = "abcdefgh";
  job.jobtype = "SomeJob";
  job.queue = "critical";
  job.args = R"([1,"x"])";
  job.created_at = kMay1Noon + 123456789;
  job.enqueued_at = kMay1Noon + 1000000000;
  job.reserve_for = 600;
  job.retry = 3;
  EXPECT_EQ(write_job(job),
            R"({"jid":"abcdefgh","queue":"critical","jobtype":"SomeJob","args":[1,"x"],)"
            R"("created_at":"2024-05-01T12:00:00.123456789Z","enqueued_at":"2024-05-01T12:00:01Z",)"
            R"("reserve_for":600,"retry":3})");
  job.at = kMay1Noon + 120000000;
  job.backtrace = 10;
  job.failure = jobs::Failure{1, 2, kMay1Noon, 0, "it \"broke\"", "Err", {"l1", "l2"}};
  job.custom = R"({"unique_for":60})";
  job.unique_for = 60;
  EXPECT_EQ(write_job(job),
            R"({"jid":"abcdefgh","queue":"critical","jobtype":"SomeJob","args":[1,"x"],)"
            R"("created_at":"2024-05-01T12:00:00.123456789Z","enqueued_at":"2024-05-01T12:00:01Z",)"
            R"("at":"2024-05-01T12:00:00.12Z","reserve_for":600,"retry":3,"backtrace":10,)"
            R"("failure":{"retry_count":1,"remaining":2,"failed_at":"2024-05-01T12:00:00Z",)"
            R"("message":"it \"broke\"","errtype":"Err","backtrace":["l1","l2"]},)"
            R"("custom":{"unique_for":60}})");
  EXPECT_EQ(parsed(write_job(job)), job);
  std::string appended = "x";
  append_job(appended, job);
  EXPECT_EQ(appended, "x" + write_job(job));
}

TEST(FaktoryJobJson, EscapesAnyString) {
  jobs::Job job;
  job.jid = "abcdefgh";
  job.jobtype = std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f", 14) + "\xc3\xa9\xf0\x9f\x98\x80" +
                "\xe2\x80\xa8\xe2\x80\xa9" + std::string(1, '\0');
  const std::string written = write_job(job);
  EXPECT_NE(written.find(R"("jobtype":"q\"b\\s/\n\r\t\b\f\u0001\u001f)"
                         "\x7f\xc3\xa9\xf0\x9f\x98\x80"
                         R"(\u2028\u2029\u0000")"),
            std::string::npos)
      << written;
  EXPECT_EQ(parsed(written), job);
  // Invalid UTF-8 becomes U+FFFD, so the JSON stays valid (as Go's encoder does).
  job.jobtype = "a\xff\xc3(\xed\xa0\x80z";
  const std::string replaced = write_job(job);
  EXPECT_NE(replaced.find(R"("jobtype":"a\ufffd\ufffd(\ufffd\ufffd\ufffdz")"), std::string::npos)
      << replaced;
  EXPECT_TRUE(parse_job(replaced));
}

TEST(FaktoryJobJson, RoundTripsParsedJobs) {
  for (const char* json : {
           R"({"jid":"abcdefgh","jobtype":"T","args":[]})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"at":"1677-01-01T00:00:00Z"})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"at":"9999-01-01T00:00:00-23:59"})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"created_at":"1969-12-31T23:59:59.9Z"})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"failure":{}})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"custom":{}})",
           R"({"jid":"abcdefgh","jobtype":"T","args":[],"reserve_for":-2147483648,"retry":-7})",
           R"({"jid":"abc\u0000defgh","jobtype":"\u2028","queue":"\ud83d\ude00","args":[null]})",
       }) {
    jobs::Job job = parsed(json);
    EXPECT_EQ(parsed(write_job(job)), job) << json << " -> " << write_job(job);
  }
}

TEST(FaktoryJobJson, PushBulkSeparatesInvalidJobsFromMalformedJson) {
  auto items =
      parse_jobs(R"([{"jid":"abcdefgh","jobtype":"T","args":[]},{"jid":"ijklmnop","args":[]},null,)"
                 R"({"jid":"short","jobtype":"T","args":[]}])");
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items.value().size(), 4u);
  ASSERT_TRUE(std::holds_alternative<jobs::Job>(items.value()[0]));
  EXPECT_EQ(std::get<jobs::Job>(items.value()[0]).jid, "abcdefgh");
  EXPECT_EQ(std::get<RejectedJob>(items.value()[1]),
            (RejectedJob{"ijklmnop", "jobs must have a jobtype parameter"}));
  EXPECT_EQ(std::get<RejectedJob>(items.value()[2]),
            (RejectedJob{"", "jobs must have a reasonable jid parameter"}));
  EXPECT_EQ(std::get<RejectedJob>(items.value()[3]),
            (RejectedJob{"short", "jobs must have a reasonable jid parameter"}));

  EXPECT_TRUE(parse_jobs("[]").value().empty());
  EXPECT_TRUE(parse_jobs(" [ ] ").value().empty());
  for (const char* bad : {"", "{}", "[1]", "[{\"jid\":1}]", "[{}", "[{},]", "[] []",
                          R"([{"jid":"abcdefgh","jobtype":"T","args":{}}])"}) {
    auto result = parse_jobs(bad);
    ASSERT_FALSE(result) << bad;
    EXPECT_EQ(result.error().message.rfind("invalid JSON: ", 0), 0u) << result.error().message;
  }
}

TEST(FaktoryJobJson, PushBulkReply) {
  EXPECT_EQ(write_rejections({}), "{}");
  EXPECT_EQ(write_rejections({{"zz", "b"}, {"aa", "a\"1"}, {"zz", "c"}}),
            R"({"aa":"a\"1","zz":"c"})");
}

TEST(FaktoryJobJson, MergeCustomReplacesTopLevelKeysAndKeepsTheOthers) {
  jobs::Job job = parsed(R"({"jid":"abcdefgh","jobtype":"J","args":[],)"
                         R"("custom":{"cursor":{"page":1,"of":9},"keep":[1, 2],"unique_for":60}})");
  ASSERT_TRUE(merge_custom(job, {{"cursor", R"({"page":2})"}, {"new\"key", "true"}}));
  EXPECT_EQ(job.custom, R"({"cursor":{"page":2},"keep":[1, 2],"unique_for":60,"new\"key":true})");
  EXPECT_EQ(job.unique_for, 60);
  // unique_for and expires_at are re-read from the merged custom as PUSH reads them.
  ASSERT_TRUE(
      merge_custom(job, {{"unique_for", "null"}, {"expires_at", R"("2024-05-01T12:00:00Z")"}}));
  EXPECT_FALSE(job.unique_for);
  EXPECT_EQ(job.expires_at, kMay1Noon);
  EXPECT_EQ(parse_job(write_job(job)).value(), job);

  jobs::Job bare = parsed(R"({"jid":"abcdefgh","jobtype":"J","args":[]})");
  ASSERT_TRUE(merge_custom(bare, {}));
  EXPECT_EQ(bare.custom, "{}");
  ASSERT_TRUE(merge_custom(bare, {{"unique_for", "30"}}));
  EXPECT_EQ(bare.custom, R"({"unique_for":30})");
  EXPECT_EQ(bare.unique_for, 30);

  jobs::Job broken = bare;
  broken.custom = "{nope";
  EXPECT_FALSE(merge_custom(broken, {{"a", "1"}}));
  EXPECT_EQ(broken.custom, "{nope");  // unchanged
}

}  // namespace
}  // namespace depot::faktory
