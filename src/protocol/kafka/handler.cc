#include "protocol/kafka/handler.h"

#include <algorithm>
#include <map>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"
#include "server/connection.h"
#include "server/durable_wait.h"
#include "storage/errc.h"

namespace depot::kafka {
namespace {

namespace asio = boost::asio;
using asio::awaitable;

// Kafka's error codes used here (clients/.../common/protocol/Errors.java).
constexpr int16_t kNone = 0;
constexpr int16_t kOffsetOutOfRange = 1;
constexpr int16_t kCorruptMessage = 2;
constexpr int16_t kUnknownTopicOrPartition = 3;
constexpr int16_t kMessageTooLarge = 10;
constexpr int16_t kInvalidTopic = 17;
constexpr int16_t kInvalidRequiredAcks = 21;
constexpr int16_t kUnsupportedVersion = 35;
constexpr int16_t kInvalidRequest = 42;
constexpr int16_t kOutOfOrderSequence = 45;
constexpr int16_t kInvalidProducerEpoch = 47;
constexpr int16_t kTransactionalIdAuthorizationFailed = 53;
constexpr int16_t kKafkaStorageError = 56;
constexpr int16_t kInvalidRecord = 87;
constexpr int16_t kUnknownTopicId = 100;

constexpr int16_t key(ApiKey api) {
  return static_cast<int16_t>(api);
}

// What this face answers: exactly what ApiVersions advertises. The lowest versions are Kafka
// 4's (RecordBatch v2 only); they cover librdkafka, kafkajs and kafka-python as well.
constexpr ApiVersionRange kSupported[] = {
    {key(ApiKey::produce), 3, 11},      {key(ApiKey::fetch), 4, 17},
    {key(ApiKey::list_offsets), 1, 10}, {key(ApiKey::metadata), 0, 12},
    {key(ApiKey::api_versions), 0, 4},  {key(ApiKey::init_producer_id), 0, 5},
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

int64_t now_ms() {
  return storage::system_clock_ms();
}

int16_t append_error_code(eventlog::AppendError error) {
  using eventlog::AppendError;
  switch (error) {
    case AppendError::none:
      return kNone;
    case AppendError::unknown_topic_or_partition:
      return kUnknownTopicOrPartition;
    case AppendError::corrupt_message:
      return kCorruptMessage;
    case AppendError::invalid_record:
      return kInvalidRecord;
    case AppendError::message_too_large:
      return kMessageTooLarge;
    case AppendError::out_of_order_sequence:
      return kOutOfOrderSequence;
    case AppendError::invalid_producer_epoch:
      return kInvalidProducerEpoch;
    case AppendError::storage_error:
      return kKafkaStorageError;
  }
  return kKafkaStorageError;
}

// A response body, with the record sets sent after it in their own buffers.
struct Response {
  Bytes body;
  std::vector<Splice> splices;
};

// What to do with a request: answer it, send nothing (Produce with acks=0), or close.
struct Answer {
  enum class Kind { reply, silent, close } kind = Kind::close;
  Response response;
};

template <class M>
Answer reply(M& message, const RequestHeader& h) {
  Answer answer{Answer::Kind::reply, {}};
  encode_spliced(message, h.api_version, is_flexible(h.api_key, h.api_version),
                 answer.response.body, answer.response.splices);
  return answer;
}

class Session {
 public:
  Session(KafkaService& service, server::Connection& conn) : service_(service), conn_(conn) {}

  awaitable<Answer> answer(const ParsedRequest& request);

 private:
  template <class M>
  std::optional<M> parse(const ParsedRequest& request, const char* api);

  Answer metadata(const RequestHeader& h, const MetadataRequest& request);
  MetadataTopic describe(const std::string& name, bool may_create);
  awaitable<Answer> produce(const RequestHeader& h, ProduceRequest& request);
  awaitable<Answer> fetch(const RequestHeader& h, const FetchRequest& request);
  // One pass over the fetched partitions; returns the record bytes gathered.
  size_t read_partitions(const FetchRequest& request, int16_t version, FetchResponse& response);
  Answer list_offsets(const RequestHeader& h, const ListOffsetsRequest& request);
  Answer init_producer_id(const RequestHeader& h, const InitProducerIdRequest& request);

  KafkaService& service_;
  server::Connection& conn_;
};

template <class M>
std::optional<M> Session::parse(const ParsedRequest& request, const char* api) {
  const RequestHeader& h = request.header;
  auto parsed = decode<M>(request.body, h.api_version, is_flexible(h.api_key, h.api_version));
  if (!parsed)
    spdlog::info("{}: malformed {} v{} request; closing", conn_.name(), api, h.api_version);
  return parsed;
}

awaitable<Answer> Session::answer(const ParsedRequest& request) {
  const RequestHeader& h = request.header;
  const ApiVersionRange* range = supported(h.api_key);
  const bool known_version = range != nullptr && h.api_version >= range->min_version &&
                             h.api_version <= range->max_version;
  if (h.api_key == key(ApiKey::api_versions)) {
    Answer answer{Answer::Kind::reply, {}};
    if (!known_version) {
      // A newer client: tell it, in v0's format, what this broker speaks, and it retries lower.
      encode(api_versions(kUnsupportedVersion), 0, false, answer.response.body);
      co_return answer;
    }
    const bool flexible = is_flexible(h.api_key, h.api_version);
    const bool parsed =
        decode<ApiVersionsRequest>(request.body, h.api_version, flexible).has_value();
    encode(api_versions(parsed ? kNone : kInvalidRequest), h.api_version, flexible,
           answer.response.body);
    co_return answer;
  }
  if (!known_version) {
    spdlog::info("{}: API {} version {} is not served by depot; closing, as Kafka does",
                 conn_.name(), h.api_key, h.api_version);
    co_return Answer{};
  }
  switch (static_cast<ApiKey>(h.api_key)) {
    case ApiKey::metadata:
      if (auto m = parse<MetadataRequest>(request, "Metadata")) co_return metadata(h, *m);
      break;
    case ApiKey::produce:
      if (auto m = parse<ProduceRequest>(request, "Produce")) co_return co_await produce(h, *m);
      break;
    case ApiKey::fetch:
      if (auto m = parse<FetchRequest>(request, "Fetch")) co_return co_await fetch(h, *m);
      break;
    case ApiKey::list_offsets:
      if (auto m = parse<ListOffsetsRequest>(request, "ListOffsets")) co_return list_offsets(h, *m);
      break;
    case ApiKey::init_producer_id:
      if (auto m = parse<InitProducerIdRequest>(request, "InitProducerId")) {
        co_return init_producer_id(h, *m);
      }
      break;
    default:
      break;
  }
  co_return Answer{};
}

// --- Metadata

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
  topic.topic_id = found->id;
  const int32_t node = service_.options().node_id;
  for (int32_t i = 0; i < found->partitions; ++i) {
    topic.partitions.push_back({kNone, i, node, 0, {node}, {node}, {}});
  }
  return topic;
}

Answer Session::metadata(const RequestHeader& h, const MetadataRequest& request) {
  const int16_t version = h.api_version;
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
        auto found = service_.topics().find(wanted.topic_id);
        if (found) {
          response.topics.push_back(describe(found->name, false));
          continue;
        }
        MetadataTopic unknown;
        unknown.error_code = kUnknownTopicId;
        unknown.topic_id = wanted.topic_id;
        response.topics.push_back(std::move(unknown));
        continue;
      }
      response.topics.push_back(describe(*wanted.name, may_create));
    }
  }
  return reply(response, h);
}

// --- Produce

awaitable<Answer> Session::produce(const RequestHeader& h, ProduceRequest& request) {
  ProduceResponse response;
  const bool acks_valid = request.acks == 0 || request.acks == 1 || request.acks == -1;
  server::DurableWait durable(conn_.executor());
  bool appended = false;
  const int64_t now = now_ms();
  for (ProduceTopic& topic : request.topics) {
    ProduceTopicResponse& out = response.topics.emplace_back();
    out.name = topic.name;
    for (ProducePartition& partition : topic.partitions) {
      ProducePartitionResponse& result = out.partitions.emplace_back();
      result.index = partition.index;
      if (!acks_valid) {
        result.error_code = kInvalidRequiredAcks;
        continue;
      }
      if (request.transactional_id) {
        result.error_code = kTransactionalIdAuthorizationFailed;  // no transactions here
        continue;
      }
      if (!partition.records) {
        result.error_code = kInvalidRecord;
        continue;
      }
      eventlog::AppendOutcome outcome =
          service_.topics().append(topic.name, partition.index, *partition.records, now);
      result.error_code = append_error_code(outcome.error);
      if (outcome.error != eventlog::AppendError::none) {
        spdlog::debug("{}: produce to {}-{} refused: error {}", conn_.name(), topic.name,
                      partition.index, result.error_code);
        continue;
      }
      result.base_offset = outcome.base_offset;
      result.log_append_time_ms = outcome.log_append_time;
      result.log_start_offset = outcome.log_start_offset;
      appended = true;
      if (request.acks != 0) {
        service_.topics()
            .partition(topic.name, partition.index)
            ->when_durable(outcome.last_offset, durable.callback());
      }
    }
  }
  if (appended) service_.notify_appended();
  if (request.acks == 0) co_return Answer{Answer::Kind::silent, {}};
  if (std::error_code ec = co_await durable.wait()) {
    // The log refuses writes from now on; nothing here may be counted on.
    spdlog::error("{}: produce not made durable: {}", conn_.name(), ec.message());
    for (ProduceTopicResponse& topic : response.topics) {
      for (ProducePartitionResponse& p : topic.partitions) {
        if (p.error_code == kNone) p.error_code = kKafkaStorageError;
      }
    }
  }
  co_return reply(response, h);
}

// --- Fetch

size_t Session::read_partitions(const FetchRequest& request, int16_t version,
                                FetchResponse& response) {
  response.responses.clear();
  eventlog::TopicStore& topics = service_.topics();
  size_t gathered = 0;
  const size_t max_bytes = static_cast<size_t>(std::max(request.max_bytes, 0));
  for (const FetchTopic& topic : request.topics) {
    FetchTopicResponse& out = response.responses.emplace_back();
    out.topic = topic.topic;
    out.topic_id = topic.topic_id;
    std::string name = topic.topic;
    if (version >= 13) {
      auto found = topics.find(topic.topic_id);
      name = found ? found->name : std::string();
    }
    for (const FetchPartition& partition : topic.partitions) {
      FetchPartitionResponse& result = out.partitions.emplace_back();
      result.partition_index = partition.partition;
      auto log = name.empty() ? nullptr : topics.partition(name, partition.partition);
      if (!log) {
        result.error_code =
            version >= 13 && name.empty() ? kUnknownTopicId : kUnknownTopicOrPartition;
        continue;
      }
      result.aborted_transactions.emplace();
      // KIP-74: past max_bytes only the first batch of the response is still sent whole.
      const size_t budget = gathered >= max_bytes ? 0 : max_bytes - gathered;
      const size_t want =
          std::min(static_cast<size_t>(std::max(partition.partition_max_bytes, 0)), budget);
      if (want == 0 && gathered > 0) {
        result.high_watermark = result.last_stable_offset = log->log_end_offset();
        result.log_start_offset = log->log_start_offset();
        result.records.emplace();
        continue;
      }
      auto read = log->read(partition.fetch_offset, want);
      if (!read) {
        result.error_code = read.error() == storage::errc::offset_out_of_range ? kOffsetOutOfRange
                                                                               : kKafkaStorageError;
        result.high_watermark = result.last_stable_offset = log->log_end_offset();
        result.log_start_offset = log->log_start_offset();
        if (result.error_code != kOffsetOutOfRange) {
          spdlog::error("{}: reading {}-{} failed: {}", conn_.name(), name, partition.partition,
                        read.error().message());
        }
        continue;
      }
      result.high_watermark = result.last_stable_offset = read.value().log_end_offset;
      result.log_start_offset = read.value().log_start_offset;
      gathered += read.value().data.size();
      result.records.emplace(std::move(read.value().data));
    }
  }
  return gathered;
}

awaitable<Answer> Session::fetch(const RequestHeader& h, const FetchRequest& request) {
  FetchResponse response;
  // No fetch sessions (KIP-227): session id 0 tells the client to send full requests.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max(request.max_wait_ms, 0));
  auto waiter = std::make_shared<KafkaService::AppendWaiter>(conn_.executor());
  for (;;) {
    service_.watch_appends(waiter);
    waiter->appended = false;
    const size_t gathered = read_partitions(request, h.api_version, response);
    bool failed = false;
    for (const FetchTopicResponse& topic : response.responses) {
      for (const FetchPartitionResponse& p : topic.partitions)
        failed = failed || p.error_code != kNone;
    }
    if (failed || gathered >= static_cast<size_t>(std::max(request.min_bytes, 1)) ||
        std::chrono::steady_clock::now() >= deadline || conn_.stopping()) {
      break;
    }
    // Long poll: sleep until something is appended or the wait is over, then look again.
    waiter->timer.expires_at(deadline);
    boost::system::error_code ignored;
    if (!waiter->appended) {
      co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  co_return reply(response, h);
}

// --- ListOffsets

Answer Session::list_offsets(const RequestHeader& h, const ListOffsetsRequest& request) {
  ListOffsetsResponse response;
  for (const ListOffsetsTopic& topic : request.topics) {
    ListOffsetsTopicResponse& out = response.topics.emplace_back();
    out.name = topic.name;
    for (const ListOffsetsPartition& partition : topic.partitions) {
      ListOffsetsPartitionResponse& result = out.partitions.emplace_back();
      result.partition_index = partition.partition_index;
      auto log = service_.topics().partition(topic.name, partition.partition_index);
      if (!log) {
        result.error_code = kUnknownTopicOrPartition;
        continue;
      }
      result.leader_epoch = 0;
      switch (partition.timestamp) {
        case kLatestTimestamp:
          result.offset = log->log_end_offset();
          break;
        case kEarliestTimestamp:
        case kEarliestLocalTimestamp:  // every segment is local
          result.offset = log->log_start_offset();
          break;
        case kMaxTimestamp: {
          auto found = log->max_timestamp();
          if (!found) {
            result.error_code = kKafkaStorageError;
          } else if (found.value()) {
            result.offset = found.value()->offset;
            result.timestamp = found.value()->timestamp;
          }
          break;
        }
        case kLatestTieredTimestamp:
          break;  // nothing is tiered: no offset, as Kafka answers without remote storage
        default: {
          auto found = log->offset_for_timestamp(partition.timestamp);
          if (!found) {
            result.error_code = kKafkaStorageError;
          } else if (found.value()) {
            result.offset = found.value()->offset;
            result.timestamp = found.value()->timestamp;
          }
        }
      }
    }
  }
  return reply(response, h);
}

// --- InitProducerId

Answer Session::init_producer_id(const RequestHeader& h, const InitProducerIdRequest& request) {
  InitProducerIdResponse response;
  if (request.transactional_id) {
    response.error_code = kTransactionalIdAuthorizationFailed;  // no transactions here
    return reply(response, h);
  }
  // KIP-360: a producer that knows its id asks for the next epoch instead of a new id.
  if (request.producer_id >= 0 && request.producer_epoch >= 0 &&
      request.producer_epoch < INT16_MAX - 1) {
    response.producer_id = request.producer_id;
    response.producer_epoch = static_cast<int16_t>(request.producer_epoch + 1);
    return reply(response, h);
  }
  auto id = service_.topics().new_producer_id();
  if (!id) {
    spdlog::error("{}: cannot reserve producer ids: {}", conn_.name(), id.error().message());
    response.error_code = kKafkaStorageError;
    return reply(response, h);
  }
  response.producer_id = id.value();
  response.producer_epoch = 0;
  return reply(response, h);
}

awaitable<bool> send(server::Connection& conn, const RequestHeader& header, Response& response) {
  size_t spliced = 0;
  for (const Splice& s : response.splices)
    spliced += s.data.size();
  Bytes head;
  append_response(head, header, {}, response.body.size() + spliced);
  // The body between splices, each splice as its own buffer: the connection gathers them.
  size_t at = 0;
  for (Splice& s : response.splices) {
    head.insert(head.end(), response.body.begin() + static_cast<ptrdiff_t>(at),
                response.body.begin() + static_cast<ptrdiff_t>(s.at));
    at = s.at;
    if (!co_await conn.write(std::move(head))) co_return false;
    head = Bytes();
    if (!co_await conn.write(std::move(s.data))) co_return false;
  }
  head.insert(head.end(), response.body.begin() + static_cast<ptrdiff_t>(at), response.body.end());
  co_return static_cast<bool>(co_await conn.write(std::move(head)));
}

}  // namespace

void KafkaService::watch_appends(const std::shared_ptr<AppendWaiter>& waiter) {
  std::lock_guard lock(waiters_mutex_);
  for (const auto& existing : waiters_) {
    if (existing.lock() == waiter) return;
  }
  waiters_.push_back(waiter);
}

void KafkaService::notify_appended() {
  std::vector<std::shared_ptr<AppendWaiter>> woken;
  {
    std::lock_guard lock(waiters_mutex_);
    for (auto& weak : waiters_) {
      if (auto waiter = weak.lock()) woken.push_back(std::move(waiter));
    }
    waiters_.clear();
  }
  for (auto& waiter : woken) {
    asio::post(waiter->timer.get_executor(), [waiter] {
      waiter->appended = true;
      waiter->timer.cancel();
    });
  }
}

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
    Answer answer = co_await session.answer(*parsed);
    const RequestHeader header = parsed->header;
    conn.consume(4 + static_cast<size_t>(size));
    if (answer.kind == Answer::Kind::close) co_return;
    if (answer.kind == Answer::Kind::silent) continue;
    if (!co_await send(conn, header, answer.response)) co_return;
  }
}

}  // namespace depot::kafka
