#include "server/endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace depot::server {
namespace {

using ::testing::HasSubstr;

TEST(ServerEndpointTest, ParsesHostsAndPorts) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:7419").value(), (Endpoint{"127.0.0.1", 7419}));
  EXPECT_EQ(parse_endpoint("0.0.0.0:0").value(), (Endpoint{"0.0.0.0", 0}));
  EXPECT_EQ(parse_endpoint("[::1]:5672").value(), (Endpoint{"::1", 5672}));
  EXPECT_EQ(parse_endpoint("[::]:65535").value(), (Endpoint{"::", 65535}));
  EXPECT_EQ(parse_endpoint("[fe80::1%lo]:9092").value(), (Endpoint{"fe80::1%lo", 9092}));
  EXPECT_EQ(parse_endpoint("broker-1.example.com:9092").value(),
            (Endpoint{"broker-1.example.com", 9092}));
}

TEST(ServerEndpointTest, RoundTripsThroughText) {
  for (const char* text : {"127.0.0.1:7419", "[::1]:5672", "localhost:0"}) {
    EXPECT_EQ(parse_endpoint(text).value().to_string(), text);
  }
}

TEST(ServerEndpointTest, ExplainsWhatIsWrong) {
  auto reason = [](std::string_view text) {
    auto parsed = parse_endpoint(text);
    EXPECT_FALSE(parsed) << text;
    return parsed ? std::string() : parsed.error();
  };
  EXPECT_THAT(reason(""), HasSubstr("empty"));
  EXPECT_THAT(reason("localhost"), HasSubstr(":PORT"));
  EXPECT_THAT(reason("localhost:"), HasSubstr("port is missing"));
  EXPECT_THAT(reason(":7419"), HasSubstr("host is missing"));
  EXPECT_THAT(reason("127.0.0.1:65536"), HasSubstr("between 0 and 65535"));
  EXPECT_THAT(reason("127.0.0.1:99999999999999999999"), HasSubstr("between 0 and 65535"));
  EXPECT_THAT(reason("127.0.0.1:http"), HasSubstr("not a number"));
  EXPECT_THAT(reason("127.0.0.1:-1"), HasSubstr("not a number"));
  EXPECT_THAT(reason("::1:7419"), HasSubstr("brackets"));
  EXPECT_THAT(reason("[::1]7419"), HasSubstr("':PORT'"));
  EXPECT_THAT(reason("[::1:7419"), HasSubstr("not closed"));
  EXPECT_THAT(reason("[1.2.3.4]:80"), HasSubstr("not an IPv6 address"));
  EXPECT_THAT(reason("bad host:80"), HasSubstr("not a host name"));
}

TEST(ServerEndpointTest, LoopbackIncludesIpv4MappedAddresses) {
  using boost::asio::ip::make_address;
  for (const char* text : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"})
    EXPECT_TRUE(is_loopback(make_address(text))) << text;
  for (const char* text : {"10.0.0.1", "::", "::ffff:10.0.0.1", "2001:db8::1", "::ffff:0.0.0.0"})
    EXPECT_FALSE(is_loopback(make_address(text))) << text;
}

}  // namespace
}  // namespace depot::server
