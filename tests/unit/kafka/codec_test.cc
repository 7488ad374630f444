// Kafka headers and bodies against hand-checked bytes, classic and flexible (KIP-482), and
// round trips of every version of every served API.
#include <initializer_list>

#include <gtest/gtest.h>

#include "protocol/kafka/admin_messages.h"
#include "protocol/kafka/group_messages.h"
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

TEST(KafkaCodec, ProduceRequestsClassicAndFlexibleAgainstHandCheckedBytes) {
  ProduceRequest request;
  request.acks = -1;
  request.timeout_ms = 1000;
  const Bytes records = bytes_of({0xaa, 0xbb, 0xcc});
  request.topics.push_back({"t", {{0, ByteSpan(records)}}});
  // v3: nullable int16 transactional id, int32 counts and lengths.
  EXPECT_EQ(encoded(request, 3, false),
            bytes_of({0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00,
                      0x00, 0x01, 0x00, 0x01, 0x74, 0x00, 0x00, 0x00, 0x01, 0x00,
                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xaa, 0xbb, 0xcc}));
  // v9: compact everything (length + 1), a tagged-field section after each struct.
  const Bytes v9 = bytes_of({0x00, 0xff, 0xff, 0x00, 0x00, 0x03, 0xe8, 0x02, 0x02, 0x74, 0x02,
                             0x00, 0x00, 0x00, 0x00, 0x04, 0xaa, 0xbb, 0xcc, 0x00, 0x00, 0x00});
  EXPECT_EQ(encoded(request, 9, true), v9);
  auto back = decode<ProduceRequest>(v9, 9, true);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->transactional_id);
  // The record set is read in place: a view of the request's bytes, not a copy.
  const std::optional<ByteSpan>& read = back->topics.at(0).partitions.at(0).records;
  ASSERT_TRUE(read);
  EXPECT_EQ(read->data(), v9.data() + 16);
  EXPECT_EQ(Bytes(read->begin(), read->end()), records);
}

TEST(KafkaCodec, ProduceAndFetchResponsesAgainstHandCheckedBytes) {
  ProduceResponse produce;
  produce.topics.push_back({"t", {{0, 0, 42, -1, 7, {}, std::nullopt}}});
  // v7: index, error, base offset, log append time, log start offset; throttle after the array.
  EXPECT_EQ(encoded(produce, 7, false),
            bytes_of({0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x74, 0x00, 0x00, 0x00, 0x01, 0x00,
                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                      0x2a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
                      0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00}));
  FetchResponse fetch;
  FetchPartitionResponse partition;
  partition.high_watermark = 5;
  partition.last_stable_offset = 5;
  partition.log_start_offset = 0;
  partition.aborted_transactions.emplace();
  partition.records = bytes_of({0x01, 0x02});
  fetch.responses.push_back({"t", {}, {partition}});
  // v4: throttle, topics, partition, error, high watermark, last stable offset, aborted
  // transactions (empty, not null), records.
  EXPECT_EQ(encoded(fetch, 4, false),
            bytes_of({0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x74, 0x00,
                      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                      0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                      0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02}));
  // Spliced: the record set leaves the body (the 4-byte length stays) when it is large.
  FetchResponse big = fetch;
  big.responses[0].partitions[0].records = Bytes(5000, std::byte{7});
  Bytes body;
  std::vector<Splice> splices;
  encode_spliced(big, 4, false, body, splices);
  ASSERT_EQ(splices.size(), 1u);
  EXPECT_EQ(splices[0].at, body.size());
  EXPECT_EQ(splices[0].data.size(), 5000u);
  EXPECT_EQ(load_be<int32_t>(body.data() + body.size() - 4), 5000);
}

// Encodes `m` at every version from `min` to `max` with `flexible_from`, decodes it, and
// encodes again: the same bytes each time. Returns the last decoded message.
template <class M>
M round_trips(const M& m, int16_t min, int16_t max, int16_t flexible_from) {
  M back;
  for (int16_t v = min; v <= max; ++v) {
    const bool flexible = v >= flexible_from;
    const Bytes once = encoded(m, v, flexible);
    auto decoded = decode<M>(once, v, flexible);
    EXPECT_TRUE(decoded) << "version " << v;
    if (!decoded) continue;
    EXPECT_EQ(encoded(*decoded, v, flexible), once) << "version " << v;
    back = *decoded;
  }
  return back;
}

TEST(KafkaCodec, EveryVersionOfTheDataAndGroupApisRoundTrips) {
  FetchRequest fetch;
  fetch.max_wait_ms = 500;
  fetch.min_bytes = 1;
  fetch.topics.push_back({"orders", Uuid{1, 2, 3}, {{2, -1, 100, -1, 0, 1 << 20}}});
  fetch.forgotten_topics.push_back({"old", Uuid{4}, {1, 2}});
  fetch.rack_id = "rack";
  EXPECT_EQ(round_trips(fetch, 4, 17, 12).topics[0].partitions[0].fetch_offset, 100);

  ListOffsetsRequest list;
  list.topics.push_back({"orders", {{0, -1, kEarliestTimestamp}}});
  EXPECT_EQ(round_trips(list, 1, 10, 6).topics[0].partitions[0].timestamp, kEarliestTimestamp);
  ListOffsetsResponse listed;
  listed.topics.push_back({"orders", {{0, 0, 123, 9, 0}}});
  EXPECT_EQ(round_trips(listed, 1, 10, 6).topics[0].partitions[0].offset, 9);

  InitProducerIdRequest init;
  init.producer_id = 5;
  init.producer_epoch = 1;
  round_trips(init, 0, 5, 2);

  JoinGroupRequest join;
  join.group_id = "g";
  join.session_timeout_ms = 10000;
  join.member_id = "m";
  join.group_instance_id = "i";
  join.protocol_type = "consumer";
  join.protocols.push_back({"range", bytes_of({1, 2})});
  join.reason = "why";
  EXPECT_EQ(round_trips(join, 0, 9, 6).protocols.at(0).name, "range");
  JoinGroupResponse joined;
  joined.generation_id = 3;
  joined.protocol_type = "consumer";
  joined.protocol_name = "range";
  joined.leader = "m";
  joined.member_id = "m";
  joined.members.push_back({"m", "i", bytes_of({9})});
  EXPECT_EQ(round_trips(joined, 0, 9, 6).generation_id, 3);

  SyncGroupRequest sync;
  sync.group_id = "g";
  sync.member_id = "m";
  sync.assignments.push_back({"m", bytes_of({0, 1})});
  round_trips(sync, 0, 5, 4);
  SyncGroupResponse synced;
  synced.assignment = bytes_of({0, 1});
  round_trips(synced, 0, 5, 4);

  HeartbeatRequest heartbeat{"g", 3, "m", "i"};
  round_trips(heartbeat, 0, 4, 4);
  LeaveGroupRequest leave;
  leave.group_id = "g";
  leave.member_id = "m";
  leave.members.push_back({"m", std::nullopt, "bye"});
  round_trips(leave, 0, 5, 4);

  OffsetCommitRequest commit;
  commit.group_id = "g";
  commit.generation_id = 3;
  commit.member_id = "m";
  commit.topics.push_back({"orders", {{0, 42, -1, -1, "meta"}}});
  EXPECT_EQ(round_trips(commit, 0, 9, 8).topics[0].partitions[0].committed_offset, 42);

  OffsetFetchRequest fetch_offsets;
  fetch_offsets.groups.push_back(
      {"g", std::nullopt, -1, std::vector<OffsetFetchTopic>{{"orders", {0, 1}}}});
  EXPECT_EQ(round_trips(fetch_offsets, 0, 9, 6).groups.at(0).group_id, "g");
  OffsetFetchResponse fetched;
  fetched.groups.push_back({"g", {{"orders", {{0, 42, -1, "meta", 0}}}}, 0});
  EXPECT_EQ(round_trips(fetched, 0, 9, 6).groups.at(0).topics.at(0).partitions.at(0).metadata,
            "meta");

  FindCoordinatorRequest find;
  find.key = "g";
  find.coordinator_keys = {"g"};
  round_trips(find, 0, 6, 3);
  FindCoordinatorResponse found;
  found.coordinators.push_back({"g", 1, "127.0.0.1", 9092, 0, std::nullopt});
  EXPECT_EQ(round_trips(found, 0, 6, 3).coordinators.at(0).port, 9092);

  DescribeGroupsResponse described;
  described.groups.push_back(
      {0, "g", "Stable", "consumer", "range", {{"m", "i", "c", "/h", {}, {}}}, INT32_MIN});
  round_trips(described, 0, 5, 5);
  ListGroupsResponse listed_groups;
  listed_groups.groups.push_back({"g", "consumer", "Stable", "classic"});
  round_trips(listed_groups, 0, 5, 3);
}

TEST(KafkaCodec, EveryVersionOfTheAdminAndSaslApisRoundTrips) {
  CreateTopicsRequest create;
  create.topics.push_back({"t", 3, 1, {}, {{"retention.ms", "1000"}}});
  create.validate_only = true;
  EXPECT_EQ(round_trips(create, 0, 7, 5).topics.at(0).num_partitions, 3);
  CreateTopicsResponse created;
  CreatableTopicResult result;
  result.name = "t";
  result.num_partitions = 3;
  result.replication_factor = 1;
  result.configs.emplace();
  result.configs->push_back({"retention.ms", "1000", false, 1, false});
  created.topics.push_back(result);
  round_trips(created, 0, 7, 5);

  DeleteTopicsRequest del;
  del.topics.push_back({"t", Uuid{}});
  EXPECT_EQ(round_trips(del, 0, 6, 4).topics.at(0).name, "t");
  DeleteTopicsResponse deleted;
  deleted.responses.push_back({"t", Uuid{}, 0, std::nullopt});
  round_trips(deleted, 0, 6, 4);

  CreatePartitionsRequest grow;
  grow.topics.push_back({"t", 5, std::nullopt});
  round_trips(grow, 0, 3, 2);

  DescribeConfigsRequest describe;
  describe.resources.push_back({kResourceTopic, "t", std::vector<std::string>{"retention.ms"}});
  round_trips(describe, 0, 4, 4);
  DescribeConfigsResponse configs;
  DescribeConfigsResult r;
  r.resource_type = kResourceTopic;
  r.resource_name = "t";
  DescribedConfig c;
  c.name = "retention.ms";
  c.value = "1000";
  c.config_source = 1;
  c.synonyms.push_back({"retention.ms", "1000", 1});
  r.configs.push_back(c);
  configs.results.push_back(r);
  round_trips(configs, 0, 4, 4);

  IncrementalAlterConfigsRequest alter;
  alter.resources.push_back({kResourceTopic, "t", {{"retention.ms", kConfigDelete, std::nullopt}}});
  EXPECT_EQ(round_trips(alter, 0, 1, 1).resources.at(0).configs.at(0).operation, kConfigDelete);
  AlterConfigsRequest replace;
  replace.resources.push_back({kResourceTopic, "t", {{"retention.ms", kConfigSet, "5"}}});
  round_trips(replace, 0, 2, 2);

  SaslHandshakeResponse handshake{0, {"PLAIN", "SCRAM-SHA-256"}};
  EXPECT_EQ(round_trips(handshake, 0, 1, 99).mechanisms.size(), 2u);
  SaslAuthenticateResponse authenticated{0, std::nullopt, bytes_of({'v', '='}), 0};
  round_trips(authenticated, 0, 2, 2);
}

}  // namespace
}  // namespace depot::kafka
