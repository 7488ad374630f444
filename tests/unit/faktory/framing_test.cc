// Faktory framing: request lines in, RESP replies out.
#include "protocol/faktory/framing.h"

#include <string>

#include <gtest/gtest.h>

namespace depot::faktory {
namespace {

TEST(FaktoryFraming, SplitsVerbAndPayloadAtTheFirstSpace) {
  auto line = next_line(std::string_view("PUSH {\"a\": 1}\r\nFETCH"));
  ASSERT_TRUE(line);
  ASSERT_TRUE(line.value());
  EXPECT_EQ(line.value()->verb, "PUSH");
  EXPECT_EQ(line.value()->payload, "{\"a\": 1}");
  EXPECT_EQ(line.value()->consumed, 15u);
}

TEST(FaktoryFraming, AcceptsBareLf) {
  auto line = next_line(std::string_view("FETCH critical default\nINFO\n"));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->verb, "FETCH");
  EXPECT_EQ(line.value()->payload, "critical default");
  EXPECT_EQ(line.value()->consumed, 23u);
}

TEST(FaktoryFraming, LineWithoutPayload) {
  auto line = next_line(std::string_view("INFO\r\n"));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->verb, "INFO");
  EXPECT_EQ(line.value()->payload, "");
  EXPECT_EQ(line.value()->consumed, 6u);
  // A trailing space gives an empty payload, a blank line an empty verb.
  line = next_line(std::string_view("END \r\n"));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->verb, "END");
  EXPECT_EQ(line.value()->payload, "");
  line = next_line(std::string_view("\r\n"));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->verb, "");
  EXPECT_EQ(line.value()->consumed, 2u);
}

TEST(FaktoryFraming, OnlyOneCrIsStripped) {
  // Faktory trims one "\r\n" or "\n"; another CR before it belongs to the payload.
  auto line = next_line(std::string_view("ACK x\r\r\n"));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->payload, "x\r");
}

TEST(FaktoryFraming, NeedsMoreBytesUntilTheTerminator) {
  const std::string whole = "PUSH {\"jid\":\"abcdefgh\"}\r\n";
  for (std::size_t n = 0; n < whole.size(); ++n) {
    auto line = next_line(std::string_view(whole).substr(0, n));
    ASSERT_TRUE(line) << n;
    EXPECT_FALSE(line.value()) << n;
  }
  auto line = next_line(std::string_view(whole));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->consumed, whole.size());
}

TEST(FaktoryFraming, ByteSpanOverload) {
  std::string text = "BEAT {}\n";
  auto line = next_line(as_bytes(text));
  ASSERT_TRUE(line && line.value());
  EXPECT_EQ(line.value()->verb, "BEAT");
}

TEST(FaktoryFraming, OversizedLineIsAnError) {
  constexpr std::size_t kMax = 16;
  // Exactly the limit is fine, with either terminator.
  std::string at_limit(kMax, 'x');
  EXPECT_TRUE(next_line(at_limit + "\r\n", kMax).value().has_value());
  EXPECT_TRUE(next_line(at_limit + "\n", kMax).value().has_value());
  // Incomplete at the limit (or the limit plus a CR that may start CRLF): wait for more.
  EXPECT_FALSE(next_line(at_limit, kMax).value().has_value());
  EXPECT_FALSE(next_line(at_limit + "\r", kMax).value().has_value());
  // One byte more, complete or not, is refused without waiting for the end.
  std::string over(kMax + 1, 'x');
  auto incomplete = next_line(over, kMax);
  ASSERT_FALSE(incomplete);
  EXPECT_EQ(incomplete.error().code, "ERR");
  EXPECT_EQ(incomplete.error().message, "command line too long (max 16 bytes)");
  EXPECT_FALSE(next_line(over + "\r\n", kMax));
  EXPECT_FALSE(next_line(at_limit + "\rx", kMax));
  // A long line after a short one only matters once the short one is consumed.
  EXPECT_TRUE(next_line("INFO\r\n" + over, kMax).value().has_value());
}

TEST(FaktoryFraming, DefaultLimitFitsAOneMebibyteJob) {
  EXPECT_GT(kDefaultMaxLineBytes, std::size_t{1} << 20);
  std::string line = "PUSH " + std::string(std::size_t{1} << 20, 'x') + "\r\n";
  auto parsed = next_line(line);
  ASSERT_TRUE(parsed && parsed.value());
  EXPECT_EQ(parsed.value()->payload.size(), std::size_t{1} << 20);
}

TEST(FaktoryReplies, HandCheckedBytes) {
  EXPECT_EQ(simple_reply("OK"), "+OK\r\n");
  std::string out;
  append_ok(out);
  EXPECT_EQ(out, "+OK\r\n");
  EXPECT_EQ(bulk_reply("{\"state\":\"quiet\"}"), "$17\r\n{\"state\":\"quiet\"}\r\n");
  EXPECT_EQ(bulk_reply(""), "$0\r\n\r\n");
  EXPECT_EQ(bulk_reply("a\r\nb"), "$4\r\na\r\nb\r\n");  // bulk is length-prefixed: bytes as-is
  EXPECT_EQ(null_reply(), "$-1\r\n");
  out.clear();
  append_null(out);
  EXPECT_EQ(out, "$-1\r\n");
  EXPECT_EQ(error_reply(error("unknown command FOO")), "-ERR unknown command FOO\r\n");
  EXPECT_EQ(error_reply(Error{"NOTUNIQUE", "Job not unique"}), "-NOTUNIQUE Job not unique\r\n");
}

TEST(FaktoryReplies, AppendsAfterExistingBytes) {
  std::string out = "+OK\r\n";
  append_bulk(out, "{}");
  append_error(out, error("x"));
  append_simple(out, "HI {\"v\":2}");
  EXPECT_EQ(out, "+OK\r\n$2\r\n{}\r\n-ERR x\r\n+HI {\"v\":2}\r\n");
}

TEST(FaktoryReplies, CrAndLfCannotSplitALine) {
  EXPECT_EQ(simple_reply("a\r\n+OK"), "+a  +OK\r\n");
  EXPECT_EQ(error_reply(error("invalid ACK {\r\n}")), "-ERR invalid ACK {  }\r\n");
  // The code is one word.
  EXPECT_EQ(error_reply(Error{"BAD CODE\n", "m"}), "-BAD_CODE_ m\r\n");
  EXPECT_EQ(error_reply(Error{"", "m"}), "-ERR m\r\n");
}

}  // namespace
}  // namespace depot::faktory
