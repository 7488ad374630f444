// Kafka headers and bodies against hand-checked bytes, classic and flexible (KIP-482), and
// round trips of every version of ApiVersions and Metadata.
#include <initializer_list>

#include <gtest/gtest.h>

#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"

namespace depot::kafka {
namespace {

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values)
    out.push_back(static_cast<std::byte>(v));
  return out;
}

Bytes with_text(Bytes prefix, std::string_view text, std::initializer_list<int> suffix = {}) {
  prefix.insert(prefix.end(), reinterpret_cast<const std::byte*>(text.data()),
                reinterpret_cast<const std::byte*>(text.data()) + text.size());
  for (int v : suffix)
    prefix.push_back(static_cast<std::byte>(v));
  return prefix;
}

template <class M>
Bytes encoded(const M& m, int16_t version, bool flexible) {
  Bytes out;
  encode(m, version, flexible, out);
  return out;
}

TEST(KafkaCodec, FlexibleRequestHeaderAndApiVersionsV3Body) {
  // What librdkafka sends first: ApiVersions v3, header v2 (client_id stays an int16 string).
  Bytes request = with_text(bytes_of({0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07}),
                            "rdkafka", {0x00});
  request = with_text(with_text(request, "\x0b"), "librdkafka", {0x06});
  request = with_text(request, "2.0.2", {0x00});
  auto parsed = parse_request(request);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->header.api_key, 18);
  EXPECT_EQ(parsed->header.api_version, 3);
  EXPECT_EQ(parsed->header.correlation_id, 1);
  EXPECT_EQ(parsed->header.client_id, "rdkafka");
  auto body = decode<ApiVersionsRequest>(parsed->body, 3, true);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->client_software_name, "librdkafka");
  EXPECT_EQ(body->client_software_version, "2.0.2");
}

TEST(KafkaCodec, ClassicRequestHeaderWithANullClientId) {
  Bytes request = bytes_of(
      {0x00, 0x03, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  auto parsed = parse_request(request);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->header.api_key, 3);
  EXPECT_EQ(parsed->header.correlation_id, 0x7fffffff);
  EXPECT_FALSE(parsed->header.client_id);
  auto body = decode<MetadataRequest>(parsed->body, 1, false);
  ASSERT_TRUE(body);
  EXPECT_FALSE(body->topics);  // null: every topic
  EXPECT_FALSE(parse_request(bytes_of({0x00, 0x03, 0x00})));
}

TEST(KafkaCodec, ApiVersionsResponsesClassicAndFlexibleWithTheirHeaders) {
  ApiVersionsResponse response;
  response.api_keys = {{18, 0, 3}};
  EXPECT_EQ(encoded(response, 0, false),
            bytes_of({0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x03}));
  EXPECT_EQ(encoded(response, 3, true), bytes_of({0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
                                                  0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  // ApiVersions' response header is v0 even for the flexible v3: size, correlation id, body.
  Bytes framed;
  append_response(framed, RequestHeader{18, 3, 7, "c"}, encoded(response, 3, true));
  EXPECT_EQ(Bytes(framed.begin(), framed.begin() + 8),
            bytes_of({0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x07}));
  // Another API's flexible version gets header v1: an empty tagged-field section.
  framed.clear();
  append_response(framed, RequestHeader{3, 9, 7, "c"}, bytes_of({0xaa}));
  EXPECT_EQ(framed, bytes_of({0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x07, 0x00, 0xaa}));
}

TEST(KafkaCodec, MetadataRequestsAcrossVersions) {
  auto v0 = decode<MetadataRequest>(with_text(bytes_of({0, 0, 0, 1, 0, 1}), "t"), 0, false);
  ASSERT_TRUE(v0 && v0->topics);
  ASSERT_EQ(v0->topics->size(), 1u);
  EXPECT_EQ((*v0->topics)[0].name, "t");
  // v9 (flexible): null topics, allow_auto_topic_creation, the two authorized-operations flags.
  auto v9 = decode<MetadataRequest>(bytes_of({0x00, 0x00, 0x00, 0x01, 0x00}), 9, true);
  ASSERT_TRUE(v9);
  EXPECT_FALSE(v9->topics);
  EXPECT_FALSE(v9->allow_auto_topic_creation);
  EXPECT_TRUE(v9->include_topic_authorized_operations);
  // Bytes left over are an error, as is a count larger than what follows.
  EXPECT_FALSE(decode<MetadataRequest>(bytes_of({0x00, 0x01, 0x00, 0x00, 0x00, 0x00}), 9, true));
  EXPECT_FALSE(decode<MetadataRequest>(bytes_of({0x7f, 0xff, 0xff, 0xf0}), 1, false));
  EXPECT_FALSE(decode<MetadataRequest>(bytes_of({0xff, 0xff, 0xff, 0xff, 0x0f}), 9, true));
}

MetadataResponse single_node() {
  MetadataResponse m;
  m.brokers = {{1, "h", 9092, std::nullopt}};
  m.cluster_id = "c";
  m.controller_id = 1;
  MetadataTopic topic;
  topic.name = "t";
  topic.partitions = {{0, 0, 1, 0, {1}, {1}, {}}};
  m.topics = {topic};
  return m;
}

TEST(KafkaCodec, MetadataResponseV0AndV12AgainstHandCheckedBytes) {
  const Bytes v0 = with_text(bytes_of({0, 0, 0, 1, 0, 0, 0, 1, 0, 1}), "h",  // 1 broker: 1, "h"
                             {0, 0, 0x23, 0x84,                              // port 9092
                              0, 0, 0,    1,    0, 0, 0, 1, 't',             // 1 topic: ok, "t"
                              0, 0, 0,    1,    0, 0, 0, 0, 0,   0,          // 1 partition: ok, 0
                              0, 0, 0,    1,                                 // leader 1
                              0, 0, 0,    1,    0, 0, 0, 1,                  // replicas [1]
                              0, 0, 0,    1,    0, 0, 0, 1});                // isr [1]
  EXPECT_EQ(encoded(single_node(), 0, false), v0);

  Bytes v12 = bytes_of({0,    0,   0,    0,                      // throttle
                        0x02, 0,   0,    0,    1,    0x02, 'h',  // brokers: node 1, "h"
                        0,    0,   0x23, 0x84, 0x00, 0x00,       // port, rack null, tags
                        0x02, 'c',                               // cluster id
                        0,    0,   0,    1,                      // controller
                        0x02, 0,   0,    0x02, 't'});            // topics: error 0, name "t"
  for (int i = 0; i < 16; ++i)
    v12.push_back(std::byte{0});                                          // topic id
  const Bytes rest = bytes_of({0x00,                                      // not internal
                               0x02, 0, 0, 0, 0, 0,    0, 0, 0, 0, 1,     // partition 0, leader 1
                               0,    0, 0, 0,                             // leader epoch
                               0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1, 0x01,  // replicas, isr, offline
                               0x00,                                      // partition tags
                               0x80, 0, 0, 0,                             // authorized ops omitted
                               0x00,                                      // topic tags
                               0x00});                                    // response tags
  v12.insert(v12.end(), rest.begin(), rest.end());
  EXPECT_EQ(encoded(single_node(), 12, true), v12);
}

TEST(KafkaCodec, EveryVersionOfApiVersionsAndMetadataRoundTrips) {
  for (int16_t v = 0; v <= 4; ++v) {
    ApiVersionsResponse response;
    response.api_keys = {{0, 0, 11}, {3, 0, 12}, {18, 0, 4}};
    response.throttle_time_ms = v >= 1 ? 5 : 0;
    const bool flexible = is_flexible(18, v);
    auto back = decode<ApiVersionsResponse>(encoded(response, v, flexible), v, flexible);
    ASSERT_TRUE(back) << "ApiVersions v" << v;
    EXPECT_EQ(back->api_keys.size(), 3u);
    EXPECT_EQ(back->api_keys[1].max_version, 12);
    EXPECT_EQ(back->throttle_time_ms, response.throttle_time_ms);
  }
  for (int16_t v = 0; v <= 12; ++v) {
    const bool flexible = is_flexible(3, v);
    MetadataRequest request;
    request.topics = std::vector<MetadataRequestTopic>{{{}, std::string("orders")}};
    auto request_back = decode<MetadataRequest>(encoded(request, v, flexible), v, flexible);
    ASSERT_TRUE(request_back && request_back->topics) << "Metadata request v" << v;
    EXPECT_EQ((*request_back->topics)[0].name, "orders");

    auto back = decode<MetadataResponse>(encoded(single_node(), v, flexible), v, flexible);
    ASSERT_TRUE(back) << "Metadata response v" << v;
    EXPECT_EQ(back->brokers[0].host, "h");
    EXPECT_EQ(back->brokers[0].port, 9092);
    EXPECT_EQ(back->topics[0].name, "t");
    EXPECT_EQ(back->topics[0].partitions[0].replica_nodes, std::vector<int32_t>{1});
    EXPECT_EQ(back->controller_id, v >= 1 ? 1 : -1);
    EXPECT_EQ(back->cluster_id, v >= 2 ? std::optional<std::string>("c") : std::nullopt);
  }
}

TEST(KafkaCodec, TaggedFieldsAreSkippedAndMalformedOnesRefused) {
  // ApiVersions v3 request with one unknown tagged field (tag 5, 2 bytes).
  const Bytes with_tag = bytes_of({0x02, 'a', 0x02, 'b', 0x01, 0x05, 0x02, 0xaa, 0xbb});
  auto request = decode<ApiVersionsRequest>(with_tag, 3, true);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->client_software_name, "a");
  // The field claims more bytes than there are.
  EXPECT_FALSE(decode<ApiVersionsRequest>(bytes_of({0x02, 'a', 0x02, 'b', 0x01, 0x05, 0x09, 0xaa}),
                                          3, true));
  // A null where a string is required.
  EXPECT_FALSE(decode<ApiVersionsRequest>(bytes_of({0x00, 0x02, 'b', 0x00}), 3, true));
}

}  // namespace
}  // namespace depot::kafka
