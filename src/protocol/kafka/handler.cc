#include "protocol/kafka/handler.h"

#include <spdlog/spdlog.h>

#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"
#include "server/connection.h"

namespace depot::kafka {
namespace {

namespace asio = boost::asio;

// Kafka's error codes used here.
constexpr int16_t kNone = 0;
constexpr int16_t kUnknownTopicOrPartition = 3;
constexpr int16_t kInvalidTopic = 17;
constexpr int16_t kUnsupportedVersion = 35;
constexpr int16_t kInvalidRequest = 42;
constexpr int16_t kUnknownTopicId = 100;

// What this face answers: exactly what ApiVersions advertises.
constexpr ApiVersionRange kSupported[] = {
    {static_cast<int16_t>(ApiKey::metadata), 0, 12},
    {static_cast<int16_t>(ApiKey::api_versions), 0, 4},
};

const ApiVersionRange* supported(int16_t api_key) {
  for (const ApiVersionRange& range : kSupported) {
    if (range.api_key == api_key) return &range;
  }
  return nullptr;
}

ApiVersionsResponse api_versions(int16_t error_code) {
  ApiVersionsResponse response;
  response.error_code = error_code;
  response.api_keys.assign(std::begin(kSupported), std::end(kSupported));
  return response;
}

class Session {
 public:
  Session(KafkaService& service, server::Connection& conn) : service_(service), conn_(conn) {}

  // The response's body for a request, or nullopt when the connection must close.
  std::optional<Bytes> answer(const ParsedRequest& request);

 private:
  Bytes metadata(const MetadataRequest& request, int16_t version);
  MetadataTopic describe(const std::string& name, bool may_create);

  KafkaService& service_;
  server::Connection& conn_;
};

std::optional<Bytes> Session::answer(const ParsedRequest& request) {
  const RequestHeader& h = request.header;
  const ApiVersionRange* range = supported(h.api_key);
  const bool known_version = range != nullptr && h.api_version >= range->min_version &&
                             h.api_version <= range->max_version;
  const bool flexible = is_flexible(h.api_key, h.api_version);
  Bytes body;
  if (h.api_key == static_cast<int16_t>(ApiKey::api_versions)) {
    if (!known_version) {
      // A newer client: tell it, in v0's format, what this broker speaks, and it retries lower.
      encode(api_versions(kUnsupportedVersion), 0, false, body);
      return body;
    }
    const bool parsed =
        decode<ApiVersionsRequest>(request.body, h.api_version, flexible).has_value();
    encode(api_versions(parsed ? kNone : kInvalidRequest), h.api_version, flexible, body);
    return body;
  }
  if (!known_version) {
    spdlog::info("{}: API {} version {} is not served by depot; closing, as Kafka does",
                 conn_.name(), h.api_key, h.api_version);
    return std::nullopt;
  }
  if (h.api_key == static_cast<int16_t>(ApiKey::metadata)) {
    auto parsed = decode<MetadataRequest>(request.body, h.api_version, flexible);
    if (!parsed) {
      spdlog::info("{}: malformed Metadata v{} request; closing", conn_.name(), h.api_version);
      return std::nullopt;
    }
    return metadata(*parsed, h.api_version);
  }
  return std::nullopt;
}

MetadataTopic Session::describe(const std::string& name, bool may_create) {
  eventlog::TopicStore& topics = service_.topics();
  MetadataTopic topic;
  topic.name = name;
  auto found = topics.find(name);
  if (!found && may_create && topics.auto_create()) {
    if (eventlog::TopicStore::invalid_name(name)) {
      topic.error_code = kInvalidTopic;
      return topic;
    }
    auto created = topics.create(name);
    if (!created) {
      spdlog::error("{}: cannot create topic '{}': {}", conn_.name(), name,
                    created.error().message());
    }
    found = topics.find(name);
  }
  if (!found) {
    topic.error_code =
        eventlog::TopicStore::invalid_name(name) ? kInvalidTopic : kUnknownTopicOrPartition;
    return topic;
  }
  const int32_t node = service_.options().node_id;
  for (int32_t i = 0; i < found->partitions; ++i) {
    topic.partitions.push_back({kNone, i, node, 0, {node}, {node}, {}});
  }
  return topic;
}

Bytes Session::metadata(const MetadataRequest& request, int16_t version) {
  const KafkaOptions& options = service_.options();
  MetadataResponse response;
  response.brokers.push_back(
      {options.node_id, conn_.local().address().to_string(), conn_.local().port(), std::nullopt});
  response.cluster_id = options.cluster_id;
  response.controller_id = options.node_id;
  // v0: an empty list means every topic; v1+: null does. v4+ asks whether to create.
  const bool all = !request.topics || (version == 0 && request.topics->empty());
  const bool may_create = version < 4 || request.allow_auto_topic_creation;
  if (all) {
    for (const eventlog::TopicInfo& info : service_.topics().list())
      response.topics.push_back(describe(info.name, false));
  } else {
    for (const MetadataRequestTopic& wanted : *request.topics) {
      if (!wanted.name) {
        MetadataTopic unknown;  // asked for by topic id, which depot does not assign yet
        unknown.error_code = kUnknownTopicId;
        unknown.topic_id = wanted.topic_id;
        response.topics.push_back(std::move(unknown));
        continue;
      }
      response.topics.push_back(describe(*wanted.name, may_create));
    }
  }
  Bytes body;
  encode(response, version, is_flexible(static_cast<int16_t>(ApiKey::metadata), version), body);
  return body;
}

}  // namespace

asio::awaitable<void> KafkaHandler::serve(server::Connection& conn) {
  Session session(*service_, conn);
  const size_t max = service_->options().max_request_bytes;
  for (;;) {
    if (conn.stopping() && conn.buffered().empty()) co_return;
    if (!co_await conn.read_at_least(4)) co_return;
    const int32_t size = load_be<int32_t>(conn.buffered().data());
    if (size < 0 || static_cast<size_t>(size) > max) {
      spdlog::info("{}: a request of {} bytes is over the limit of {}; closing", conn.name(), size,
                   max);
      co_return;
    }
    if (!co_await conn.read_at_least(4 + static_cast<size_t>(size))) co_return;
    auto parsed = parse_request(conn.buffered().subspan(4, static_cast<size_t>(size)));
    if (!parsed) {
      spdlog::info("{}: malformed request header; closing", conn.name());
      co_return;
    }
    auto body = session.answer(*parsed);
    if (!body) co_return;
    Bytes response;
    append_response(response, parsed->header, *body);
    conn.consume(4 + static_cast<size_t>(size));
    if (!co_await conn.write(std::move(response))) co_return;
  }
}

}  // namespace depot::kafka
