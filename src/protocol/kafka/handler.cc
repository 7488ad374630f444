#include "protocol/kafka/handler.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "protocol/kafka/admin_messages.h"
#include "protocol/kafka/group_messages.h"
#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"
#include "protocol/kafka/sasl.h"
#include "server/async_event.h"
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
constexpr int16_t kOffsetMetadataTooLarge = 12;
constexpr int16_t kCoordinatorNotAvailable = 15;
constexpr int16_t kInvalidTopic = 17;
constexpr int16_t kTopicAlreadyExists = 36;
constexpr int16_t kInvalidPartitions = 37;
constexpr int16_t kInvalidReplicationFactor = 38;
constexpr int16_t kInvalidReplicaAssignment = 39;
constexpr int16_t kInvalidConfig = 40;
constexpr int16_t kInvalidRequiredAcks = 21;
constexpr int16_t kUnsupportedSaslMechanism = 33;
constexpr int16_t kIllegalSaslState = 34;
constexpr int16_t kUnsupportedVersion = 35;
constexpr int16_t kInvalidRequest = 42;
constexpr int16_t kOutOfOrderSequence = 45;
constexpr int16_t kInvalidProducerEpoch = 47;
constexpr int16_t kTransactionalIdAuthorizationFailed = 53;
constexpr int16_t kKafkaStorageError = 56;
constexpr int16_t kSaslAuthenticationFailed = 58;
constexpr int16_t kInvalidRecord = 87;
constexpr int16_t kUnknownTopicId = 100;

// A long-polling Fetch looks at the server's stop flag and its connection this often.
constexpr std::chrono::milliseconds kPollSlice{500};

// Kafka's offset.metadata.max.bytes.
constexpr size_t kMaxOffsetMetadata = 4096;

ApiVersionsResponse api_versions(int16_t error_code) {
  ApiVersionsResponse response;
  response.error_code = error_code;
  const std::span<const ApiVersionRange> served = advertised_api_versions();
  response.api_keys.assign(served.begin(), served.end());
  return response;
}

int64_t now_ms() {
  return storage::system_clock_ms();
}

// Whether a ListOffsets request asks where a time is (a timestamp, or the max timestamp) rather
// than for the log's ends.
bool looks_up_by_time(const ListOffsetsRequest& request) {
  for (const ListOffsetsTopic& topic : request.topics) {
    for (const ListOffsetsPartition& p : topic.partitions) {
      if (p.timestamp >= 0 || p.timestamp == kMaxTimestamp) return true;
    }
  }
  return false;
}

// Names an admin request gives more than once. Kafka acts on none of those entries: each such name
// is answered once, with INVALID_REQUEST, and its other entries are left out of the response.
class RepeatedNames {
 public:
  enum class Verdict { act, refuse, skip };

  template <class Items, class NameOf>
  RepeatedNames(const Items& items, NameOf name_of) {
    std::set<std::string> seen;
    for (const auto& item : items) {
      std::string name = name_of(item);
      if (!seen.insert(name).second) repeated_.insert(std::move(name));
    }
  }
  // What to do with the entry named `name`: refuse its first entry, skip the ones after.
  Verdict verdict(const std::string& name) {
    if (!repeated_.contains(name)) return Verdict::act;
    return answered_.insert(name).second ? Verdict::refuse : Verdict::skip;
  }
  // One of the repeated names (the least), or nullptr when no name is repeated.
  const std::string* first() const { return repeated_.empty() ? nullptr : &*repeated_.begin(); }

 private:
  std::set<std::string> repeated_;
  std::set<std::string> answered_;
};

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

// What to do with a request: answer it, send nothing (Produce with acks=0), close, answer and
// then close (a failed authentication), or send a bare frame (SASL tokens after handshake v0).
struct Answer {
  enum class Kind { reply, silent, close, reply_then_close, bare } kind = Kind::close;
  Response response;
  // A Produce's answer, encoded once its appends are durable (the writer waits, not the reader).
  std::optional<server::DurableWait> durable;
  std::optional<ProduceResponse> produce;
};

template <class M>
Answer reply(M& message, const RequestHeader& h) {
  Answer answer{Answer::Kind::reply, {}, {}, {}};
  encode_spliced(message, h.api_version, is_flexible(h.api_key, h.api_version),
                 answer.response.body, answer.response.splices);
  return answer;
}

// A value delivered by a callback that may run on another thread or inside a lock, awaited on
// the connection's executor.
template <class T>
class Completion {
 public:
  explicit Completion(const asio::any_io_executor& executor)
      : state_(std::make_shared<State>(executor)) {}

  std::function<void(T)> callback() {
    return [state = state_](T value) {
      asio::post(state->timer.get_executor(), [state, value = std::move(value)]() mutable {
        state->value = std::move(value);
        state->timer.cancel();
      });
    };
  }

  awaitable<T> wait() {
    while (!state_->value) {
      boost::system::error_code ignored;  // operation_aborted is the wake-up
      co_await state_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    co_return std::move(*state_->value);
  }

 private:
  struct State {
    explicit State(const asio::any_io_executor& executor)
        : timer(executor, asio::steady_timer::time_point::max()) {}
    asio::steady_timer timer;
    std::optional<T> value;
  };
  std::shared_ptr<State> state_;
};

class Session {
 public:
  Session(KafkaService& service, server::Connection& conn)
      : service_(service), conn_(conn), authenticated_(service.options().users.empty()) {}

  awaitable<Answer> answer(const ParsedRequest& request);

  // After SaslHandshake v0 the client sends bare SASL tokens, framed by a size only.
  bool expects_raw_sasl() const { return raw_sasl_; }
  // The reply frame's payload for a bare token, or nullopt to close.
  awaitable<std::optional<Bytes>> raw_sasl(ByteSpan token);

 private:
  template <class M>
  std::optional<M> parse(const ParsedRequest& request, const char* api);

  Answer metadata(const RequestHeader& h, const MetadataRequest& request);
  MetadataTopic describe(const std::string& name, bool may_create);
  Answer produce(ProduceRequest& request);
  awaitable<Answer> fetch(const RequestHeader& h, const FetchRequest& request);
  // One pass over the fetched partitions; returns the record bytes gathered.
  // A partition a fetch read, and how far it was readable then.
  struct ReadPartition {
    std::shared_ptr<storage::Log> log;
    int64_t readable_end = 0;
  };
  // Reads what the request asks for into `response`; `partitions` gets the logs read. Returns
  // the bytes of record sets gathered.
  size_t read_partitions(const FetchRequest& request, int16_t version, FetchResponse& response,
                         std::vector<ReadPartition>& partitions);
  Answer list_offsets(const RequestHeader& h, const ListOffsetsRequest& request);
  Answer init_producer_id(const RequestHeader& h, const InitProducerIdRequest& request);
  Answer find_coordinator(const RequestHeader& h, const FindCoordinatorRequest& request);
  awaitable<Answer> join_group(const RequestHeader& h, JoinGroupRequest& request);
  awaitable<Answer> sync_group(const RequestHeader& h, SyncGroupRequest& request);
  Answer heartbeat(const RequestHeader& h, const HeartbeatRequest& request);
  Answer leave_group(const RequestHeader& h, const LeaveGroupRequest& request);
  awaitable<Answer> offset_commit(const RequestHeader& h, const OffsetCommitRequest& request);
  Answer offset_fetch(const RequestHeader& h, const OffsetFetchRequest& request);
  Answer describe_groups(const RequestHeader& h, const DescribeGroupsRequest& request);
  Answer list_groups(const RequestHeader& h, const ListGroupsRequest& request);
  awaitable<Answer> delete_groups(const RequestHeader& h, const DeleteGroupsRequest& request);
  Answer create_topics(const RequestHeader& h, const CreateTopicsRequest& request);
  Answer delete_topics(const RequestHeader& h, const DeleteTopicsRequest& request);
  Answer create_partitions(const RequestHeader& h, const CreatePartitionsRequest& request);
  Answer describe_configs(const RequestHeader& h, const DescribeConfigsRequest& request);
  template <bool Incremental>
  Answer alter_configs(const RequestHeader& h, const AlterConfigsRequestOf<Incremental>& request);
  // Waits for a store write to be durable; false (logged) when it could not be.
  awaitable<bool> durable(int64_t offset);

  Answer sasl_handshake(const RequestHeader& h, const SaslHandshakeRequest& request);
  awaitable<Answer> sasl_authenticate(const RequestHeader& h,
                                      const SaslAuthenticateRequest& request);
  // Runs one SASL step; logs the outcome.
  // The exchange's next step, computed on the service's CPU thread.
  awaitable<SaslExchange::Step> sasl_step(ByteSpan token);

  KafkaService& service_;
  server::Connection& conn_;
  bool authenticated_;
  std::optional<SaslExchange> sasl_;
  bool raw_sasl_ = false;
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
  const ApiVersionRange* range = advertised_versions(h.api_key);
  const bool known_version = range != nullptr && h.api_version >= range->min_version &&
                             h.api_version <= range->max_version;
  if (h.api_key == key(ApiKey::api_versions)) {
    Answer answer{Answer::Kind::reply, {}, {}, {}};
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
  const bool sasl_request =
      h.api_key == key(ApiKey::sasl_handshake) || h.api_key == key(ApiKey::sasl_authenticate);
  if (!authenticated_ && !sasl_request) {
    spdlog::info("{}: API {} before SASL authentication; closing, as Kafka does", conn_.name(),
                 h.api_key);
    co_return Answer{};
  }
  switch (static_cast<ApiKey>(h.api_key)) {
    case ApiKey::sasl_handshake:
      if (auto m = parse<SaslHandshakeRequest>(request, "SaslHandshake")) {
        co_return sasl_handshake(h, *m);
      }
      break;
    case ApiKey::sasl_authenticate:
      if (auto m = parse<SaslAuthenticateRequest>(request, "SaslAuthenticate")) {
        co_return co_await sasl_authenticate(h, *m);
      }
      break;
    case ApiKey::metadata:
      if (auto m = parse<MetadataRequest>(request, "Metadata")) co_return metadata(h, *m);
      break;
    case ApiKey::produce:
      if (auto m = parse<ProduceRequest>(request, "Produce")) co_return produce(*m);
      break;
    case ApiKey::fetch:
      if (auto m = parse<FetchRequest>(request, "Fetch")) co_return co_await fetch(h, *m);
      break;
    case ApiKey::list_offsets:
      if (auto m = parse<ListOffsetsRequest>(request, "ListOffsets")) {
        // Looking up by time reads batch headers from segment files: off the I/O thread.
        if (!looks_up_by_time(*m)) co_return list_offsets(h, *m);
        co_await asio::post(service_.cpu_executor(), asio::use_awaitable);
        Answer answer = list_offsets(h, *m);
        co_await asio::post(conn_.executor(), asio::use_awaitable);
        co_return answer;
      }
      break;
    case ApiKey::init_producer_id:
      if (auto m = parse<InitProducerIdRequest>(request, "InitProducerId")) {
        co_return init_producer_id(h, *m);
      }
      break;
    case ApiKey::find_coordinator:
      if (auto m = parse<FindCoordinatorRequest>(request, "FindCoordinator")) {
        co_return find_coordinator(h, *m);
      }
      break;
    case ApiKey::join_group:
      if (auto m = parse<JoinGroupRequest>(request, "JoinGroup")) {
        co_return co_await join_group(h, *m);
      }
      break;
    case ApiKey::sync_group:
      if (auto m = parse<SyncGroupRequest>(request, "SyncGroup")) {
        co_return co_await sync_group(h, *m);
      }
      break;
    case ApiKey::heartbeat:
      if (auto m = parse<HeartbeatRequest>(request, "Heartbeat")) co_return heartbeat(h, *m);
      break;
    case ApiKey::leave_group:
      if (auto m = parse<LeaveGroupRequest>(request, "LeaveGroup")) co_return leave_group(h, *m);
      break;
    case ApiKey::offset_commit:
      if (auto m = parse<OffsetCommitRequest>(request, "OffsetCommit")) {
        co_return co_await offset_commit(h, *m);
      }
      break;
    case ApiKey::offset_fetch:
      if (auto m = parse<OffsetFetchRequest>(request, "OffsetFetch")) co_return offset_fetch(h, *m);
      break;
    case ApiKey::describe_groups:
      if (auto m = parse<DescribeGroupsRequest>(request, "DescribeGroups")) {
        co_return describe_groups(h, *m);
      }
      break;
    case ApiKey::list_groups:
      if (auto m = parse<ListGroupsRequest>(request, "ListGroups")) co_return list_groups(h, *m);
      break;
    case ApiKey::delete_groups:
      if (auto m = parse<DeleteGroupsRequest>(request, "DeleteGroups")) {
        co_return co_await delete_groups(h, *m);
      }
      break;
    case ApiKey::create_topics:
      if (auto m = parse<CreateTopicsRequest>(request, "CreateTopics")) {
        co_return create_topics(h, *m);
      }
      break;
    case ApiKey::delete_topics:
      if (auto m = parse<DeleteTopicsRequest>(request, "DeleteTopics")) {
        co_return delete_topics(h, *m);
      }
      break;
    case ApiKey::create_partitions:
      if (auto m = parse<CreatePartitionsRequest>(request, "CreatePartitions")) {
        co_return create_partitions(h, *m);
      }
      break;
    case ApiKey::describe_configs:
      if (auto m = parse<DescribeConfigsRequest>(request, "DescribeConfigs")) {
        co_return describe_configs(h, *m);
      }
      break;
    case ApiKey::alter_configs:
      if (auto m = parse<AlterConfigsRequest>(request, "AlterConfigs")) {
        co_return alter_configs(h, *m);
      }
      break;
    case ApiKey::incremental_alter_configs:
      if (auto m = parse<IncrementalAlterConfigsRequest>(request, "IncrementalAlterConfigs")) {
        co_return alter_configs(h, *m);
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

// Appends now, in request order; the reply goes out once the appends are durable (pipelined
// Produce requests on one connection share a sync).
Answer Session::produce(ProduceRequest& request) {
  ProduceResponse response;
  const bool acks_valid = request.acks == 0 || request.acks == 1 || request.acks == -1;
  server::DurableWait durable(conn_.executor());
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
      // Appended from the request's bytes where they lie (the store sets offsets in place).
      eventlog::AppendOutcome outcome = service_.topics().append(
          topic.name, partition.index, conn_.writable(*partition.records), now);
      result.error_code = append_error_code(outcome.error);
      if (outcome.error != eventlog::AppendError::none) {
        spdlog::debug("{}: produce to {}-{} refused: error {}", conn_.name(), topic.name,
                      partition.index, result.error_code);
        continue;
      }
      result.base_offset = outcome.base_offset;
      result.log_append_time_ms = outcome.log_append_time;
      result.log_start_offset = outcome.log_start_offset;
      auto log = service_.topics().partition(topic.name, partition.index);
      // Long polls are woken once the records are readable: durable, under fsync=always.
      log->when_durable(outcome.last_offset,
                        [service = &service_, key = log.get()](std::error_code) {
                          service->notify_appended(key);
                        });
      if (request.acks != 0) log->when_durable(outcome.last_offset, durable.callback());
    }
  }
  if (request.acks == 0) {
    // No answer to carry an error: Kafka closes the connection so that the producer notices.
    for (const ProduceTopicResponse& topic : response.topics) {
      for (const ProducePartitionResponse& p : topic.partitions) {
        if (p.error_code != kNone) {
          spdlog::info("{}: an acks=0 produce to '{}' failed with error {}; closing", conn_.name(),
                       topic.name, p.error_code);
          return Answer{Answer::Kind::close, {}, {}, {}};
        }
      }
    }
    return Answer{Answer::Kind::silent, {}, {}, {}};
  }
  return Answer{Answer::Kind::reply, {}, std::move(durable), std::move(response)};
}

// The reply to a Produce whose appends are now durable, or failed to become so.
void finish_produce(Answer& answer, const RequestHeader& h, std::error_code ec,
                    const std::string& connection) {
  if (ec) {
    // The log refuses writes from now on; nothing here may be counted on.
    spdlog::error("{}: produce not made durable: {}", connection, ec.message());
    for (ProduceTopicResponse& topic : answer.produce->topics) {
      for (ProducePartitionResponse& p : topic.partitions) {
        if (p.error_code == kNone) p.error_code = kKafkaStorageError;
      }
    }
  }
  answer.response = reply(*answer.produce, h).response;
}

// --- Fetch

size_t Session::read_partitions(const FetchRequest& request, int16_t version,
                                FetchResponse& response, std::vector<ReadPartition>& partitions) {
  response.responses.clear();
  partitions.clear();
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
      const int64_t readable_end = log->readable_end();
      partitions.push_back({log, readable_end});
      auto read = log->read_for_sending(partition.fetch_offset, want, readable_end);
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
      result.high_watermark = result.last_stable_offset = readable_end;
      result.log_start_offset = read.value().log_start_offset;
      // The log returns its first batch whole; only the response's first data may exceed the
      // budget (KIP-74), a later partition's batch waits for the next fetch.
      const size_t size = read.value().data.size() + read.value().file.size;
      if (gathered > 0 && size > want) {
        result.records.emplace();
        continue;
      }
      gathered += size;
      result.records.emplace(std::move(read.value().data));
      result.records_file = std::move(read.value().file);
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
  std::vector<ReadPartition> partitions;
  std::vector<const storage::Log*> watched;
  for (;;) {
    waiter->appended = false;
    const size_t gathered = read_partitions(request, h.api_version, response, partitions);
    bool failed = false;
    for (const FetchTopicResponse& topic : response.responses) {
      for (const FetchPartitionResponse& p : topic.partitions)
        failed = failed || p.error_code != kNone;
    }
    if (failed || gathered >= static_cast<size_t>(std::max(request.min_bytes, 0)) ||
        std::chrono::steady_clock::now() >= deadline || conn_.stopping() || conn_.closed()) {
      break;
    }
    // Long poll: sleep until something is appended or the wait is over, then look again. In
    // slices, so that a server shutting down or a peer gone is noticed within half a second.
    // Registered after the read, so records that became readable in between are looked for
    // once registered: from then on their wake-up cannot be missed.
    watched.clear();
    for (const ReadPartition& p : partitions)
      watched.push_back(p.log.get());
    service_.watch_appends(waiter, watched);
    const bool grown =
        std::any_of(partitions.begin(), partitions.end(),
                    [](const ReadPartition& p) { return p.log->readable_end() > p.readable_end; });
    if (grown) continue;
    waiter->timer.expires_at(std::min(deadline, std::chrono::steady_clock::now() + kPollSlice));
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
          result.offset = log->readable_end();
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
  // An idempotent producer (no transactional id) always gets a new id, as from Kafka, even when
  // it names its current one (KIP-360): its sequences then restart at 0 under the new id.
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

// --- Consumer groups

awaitable<bool> Session::durable(int64_t offset) {
  if (offset < 0) co_return true;
  server::DurableWait wait(conn_.executor());
  service_.offsets().when_durable(offset, wait.callback());
  if (std::error_code ec = co_await wait.wait()) {
    spdlog::error("{}: committed offsets not made durable: {}", conn_.name(), ec.message());
    co_return false;
  }
  co_return true;
}

Answer Session::find_coordinator(const RequestHeader& h, const FindCoordinatorRequest& request) {
  // This node coordinates every group; there is no transaction coordinator.
  std::vector<std::string> keys = request.coordinator_keys;
  if (h.api_version <= 3) keys = {request.key};
  FindCoordinatorResponse response;
  for (const std::string& k : keys) {
    Coordinator& c = response.coordinators.emplace_back();
    c.key = k;
    if (request.key_type != 0) {
      c.node_id = -1;
      c.port = -1;
      c.error_code = kCoordinatorNotAvailable;
      c.error_message = "depot has no transaction coordinator";
      continue;
    }
    c.node_id = service_.options().node_id;
    c.host = conn_.local().address().to_string();
    c.port = conn_.local().port();
  }
  return reply(response, h);
}

awaitable<Answer> Session::join_group(const RequestHeader& h, JoinGroupRequest& request) {
  eventlog::JoinRequest join;
  join.group_id = request.group_id;
  join.member_id = request.member_id;
  join.group_instance_id = request.group_instance_id;
  join.client_id = h.client_id.value_or("");
  join.client_host = "/" + conn_.remote().address().to_string();
  join.session_timeout_ms = request.session_timeout_ms;
  // v0 has no rebalance timeout: Kafka takes the session timeout.
  join.rebalance_timeout_ms =
      h.api_version == 0 ? request.session_timeout_ms : request.rebalance_timeout_ms;
  join.protocol_type = request.protocol_type;
  for (JoinGroupProtocol& p : request.protocols)
    join.protocols.push_back({p.name, std::move(p.metadata)});
  join.require_known_member_id = h.api_version >= 4;
  Completion<eventlog::JoinResult> done(conn_.executor());
  {
    std::lock_guard lock(service_.groups_mutex());
    service_.groups().join(std::move(join), now_ms(), done.callback());
  }
  eventlog::JoinResult result = co_await done.wait();
  JoinGroupResponse response;
  response.error_code = result.error;
  response.generation_id = result.generation_id;
  response.protocol_type = result.protocol_type;
  response.protocol_name = result.protocol_name;
  response.leader = result.leader_id;
  response.member_id = result.member_id;
  for (eventlog::JoinedMember& m : result.members)
    response.members.push_back({m.member_id, m.group_instance_id, std::move(m.metadata)});
  co_return reply(response, h);
}

awaitable<Answer> Session::sync_group(const RequestHeader& h, SyncGroupRequest& request) {
  eventlog::SyncRequest sync;
  sync.group_id = request.group_id;
  sync.generation_id = request.generation_id;
  sync.member_id = request.member_id;
  sync.group_instance_id = request.group_instance_id;
  sync.protocol_type = request.protocol_type;
  sync.protocol_name = request.protocol_name;
  for (SyncGroupAssignment& a : request.assignments)
    sync.assignments.push_back({a.member_id, std::move(a.assignment)});
  Completion<eventlog::SyncResult> done(conn_.executor());
  {
    std::lock_guard lock(service_.groups_mutex());
    service_.groups().sync(std::move(sync), now_ms(), done.callback());
  }
  eventlog::SyncResult result = co_await done.wait();
  SyncGroupResponse response;
  response.error_code = result.error;
  response.protocol_type = result.protocol_type;
  response.protocol_name = result.protocol_name;
  response.assignment = std::move(result.assignment);
  co_return reply(response, h);
}

Answer Session::heartbeat(const RequestHeader& h, const HeartbeatRequest& request) {
  ErrorOnlyResponse response;
  std::lock_guard lock(service_.groups_mutex());
  response.error_code =
      service_.groups().heartbeat(request.group_id, request.generation_id, request.member_id,
                                  request.group_instance_id, now_ms());
  return reply(response, h);
}

Answer Session::leave_group(const RequestHeader& h, const LeaveGroupRequest& request) {
  std::vector<eventlog::MemberIdentity> members;
  if (h.api_version <= 2) {
    members.push_back({request.member_id, std::nullopt});
  } else {
    for (const LeaveGroupMember& m : request.members)
      members.push_back({m.member_id, m.group_instance_id});
  }
  eventlog::LeaveResult result;
  {
    std::lock_guard lock(service_.groups_mutex());
    result = service_.groups().leave(request.group_id, members, now_ms());
  }
  LeaveGroupResponse response;
  response.error_code = result.error;
  if (h.api_version <= 2) {
    // One member: its own error is the answer's.
    if (response.error_code == kNone && !result.members.empty()) {
      response.error_code = result.members.front();
    }
  } else {
    for (size_t i = 0; i < members.size(); ++i) {
      response.members.push_back({members[i].member_id, members[i].group_instance_id,
                                  i < result.members.size() ? result.members[i] : kNone});
    }
  }
  return reply(response, h);
}

awaitable<Answer> Session::offset_commit(const RequestHeader& h,
                                         const OffsetCommitRequest& request) {
  OffsetCommitResponse response;
  int16_t group_error = kNone;
  {
    std::lock_guard lock(service_.groups_mutex());
    group_error =
        service_.groups().validate_commit(request.group_id, request.generation_id,
                                          request.member_id, request.group_instance_id, now_ms());
  }
  std::vector<eventlog::OffsetCommit> commits;
  for (const OffsetCommitTopic& topic : request.topics) {
    TopicPartitionErrors& out = response.topics.emplace_back();
    out.name = topic.name;
    auto info = service_.topics().find(topic.name);
    for (const OffsetCommitPartition& p : topic.partitions) {
      int16_t error = group_error;
      if (error == kNone &&
          (!info || p.partition_index < 0 || p.partition_index >= info->partitions)) {
        error = kUnknownTopicOrPartition;
      }
      const std::string metadata = p.committed_metadata.value_or("");
      if (error == kNone && metadata.size() > kMaxOffsetMetadata) error = kOffsetMetadataTooLarge;
      out.partitions.push_back({p.partition_index, error});
      if (error == kNone) {
        commits.push_back({topic.name, p.partition_index, p.committed_offset,
                           p.committed_leader_epoch, metadata});
      }
    }
  }
  if (!commits.empty()) {
    auto written = service_.offsets().commit(request.group_id, commits, now_ms());
    bool ok = false;
    if (written) ok = co_await durable(written.value());
    if (!written) {
      spdlog::error("{}: cannot write committed offsets: {}", conn_.name(),
                    written.error().message());
    }
    if (!ok) {
      for (TopicPartitionErrors& topic : response.topics) {
        for (PartitionError& p : topic.partitions) {
          if (p.error_code == kNone) p.error_code = kKafkaStorageError;
        }
      }
    }
  }
  co_return reply(response, h);
}

Answer Session::offset_fetch(const RequestHeader& h, const OffsetFetchRequest& request) {
  OffsetFetchResponse response;
  for (const OffsetFetchGroup& group : request.groups) {
    OffsetFetchResponseGroup& out = response.groups.emplace_back();
    out.group_id = group.group_id;
    auto committed = [](OffsetFetchResponseTopic& topic, int32_t partition,
                        const std::optional<eventlog::CommittedOffset>& found) {
      OffsetFetchPartition& p = topic.partitions.emplace_back();
      p.partition_index = partition;
      p.metadata = "";
      if (found) {
        p.committed_offset = found->offset;
        p.committed_leader_epoch = found->leader_epoch;
        p.metadata = found->metadata;
      }
    };
    if (!group.topics) {
      for (const auto& [topic, partitions] : service_.offsets().all(group.group_id)) {
        OffsetFetchResponseTopic& t = out.topics.emplace_back();
        t.name = topic;
        for (const auto& [index, offset] : partitions)
          committed(t, index, offset);
      }
      continue;
    }
    for (const OffsetFetchTopic& topic : *group.topics) {
      OffsetFetchResponseTopic& t = out.topics.emplace_back();
      t.name = topic.name;
      for (int32_t index : topic.partition_indexes)
        committed(t, index, service_.offsets().fetch(group.group_id, topic.name, index));
    }
  }
  return reply(response, h);
}

Answer Session::describe_groups(const RequestHeader& h, const DescribeGroupsRequest& request) {
  DescribeGroupsResponse response;
  std::lock_guard lock(service_.groups_mutex());
  for (const std::string& id : request.groups) {
    eventlog::GroupDescription d = service_.groups().describe(id);
    DescribedGroup& g = response.groups.emplace_back();
    g.error_code = d.error;
    g.group_id = id;
    g.group_state = d.state;
    g.protocol_type = d.protocol_type;
    g.protocol_data = d.protocol;
    for (eventlog::MemberDescription& m : d.members) {
      g.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host,
                           std::move(m.metadata), std::move(m.assignment)});
    }
  }
  return reply(response, h);
}

Answer Session::list_groups(const RequestHeader& h, const ListGroupsRequest& request) {
  ListGroupsResponse response;
  auto wanted = [](const std::vector<std::string>& filter, const std::string& value) {
    if (filter.empty()) return true;
    return std::any_of(filter.begin(), filter.end(), [&value](const std::string& f) {
      return f.size() == value.size() &&
             std::equal(f.begin(), f.end(), value.begin(),
                        [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    });
  };
  std::lock_guard lock(service_.groups_mutex());
  for (const eventlog::GroupListing& g : service_.groups().list()) {
    // Every group here is of the classic protocol (KIP-848's "consumer" groups are not served).
    if (!wanted(request.states_filter, g.state) || !wanted(request.types_filter, "classic")) {
      continue;
    }
    response.groups.push_back({g.group_id, g.protocol_type, g.state, "classic"});
  }
  return reply(response, h);
}

awaitable<Answer> Session::delete_groups(const RequestHeader& h,
                                         const DeleteGroupsRequest& request) {
  DeleteGroupsResponse response;
  int64_t wait_for = -1;
  for (const std::string& id : request.groups_names) {
    int16_t error = kNone;
    {
      std::lock_guard lock(service_.groups_mutex());
      error = service_.groups().remove_group(id);
    }
    if (error == kNone) {
      auto deleted = service_.offsets().delete_group(id, now_ms());
      if (!deleted) {
        spdlog::error("{}: cannot delete the offsets of group '{}': {}", conn_.name(), id,
                      deleted.error().message());
        error = kKafkaStorageError;
      } else {
        wait_for = std::max(wait_for, deleted.value());
      }
    }
    response.results.push_back({id, error});
  }
  if (!co_await durable(wait_for)) {
    for (DeletableGroupResult& r : response.results) {
      if (r.error_code == kNone) r.error_code = kKafkaStorageError;
    }
  }
  co_return reply(response, h);
}

// --- Topic administration

// Kafka's type of each topic setting depot keeps (DescribeConfigs v3+ ConfigType).
int8_t config_type(const std::string& name) {
  constexpr int8_t kString = 2, kInt = 3, kLong = 5, kList = 7;
  if (name == "cleanup.policy") return kList;
  if (name == "message.timestamp.type") return kString;
  if (name == "max.message.bytes" || name == "segment.bytes") return kInt;
  return kLong;
}

// The broker setting that gives a topic setting its default (Kafka's
// LogConfig.TopicConfigSynonyms), or "" when there is none.
std::string_view broker_synonym(std::string_view topic_setting) {
  static const std::map<std::string_view, std::string_view> topic_to_broker = {
      {"cleanup.policy", "log.cleanup.policy"},
      {"compression.type", "compression.type"},
      {"delete.retention.ms", "log.cleaner.delete.retention.ms"},
      {"file.delete.delay.ms", "log.segment.delete.delay.ms"},
      {"flush.messages", "log.flush.interval.messages"},
      {"flush.ms", "log.flush.interval.ms"},
      {"index.interval.bytes", "log.index.interval.bytes"},
      {"local.retention.bytes", "log.local.retention.bytes"},
      {"local.retention.ms", "log.local.retention.ms"},
      {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"},
      {"max.message.bytes", "message.max.bytes"},
      {"message.downconversion.enable", "log.message.downconversion.enable"},
      {"message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms"},
      {"message.timestamp.type", "log.message.timestamp.type"},
      {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio"},
      {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"},
      {"min.insync.replicas", "min.insync.replicas"},
      {"preallocate", "log.preallocate"},
      {"retention.bytes", "log.retention.bytes"},
      {"retention.ms", "log.retention.ms"},
      {"segment.bytes", "log.segment.bytes"},
      {"segment.index.bytes", "log.index.size.max.bytes"},
      {"segment.jitter.ms", "log.roll.jitter.ms"},
      {"segment.ms", "log.roll.ms"},
      {"unclean.leader.election.enable", "unclean.leader.election.enable"},
  };
  auto found = topic_to_broker.find(topic_setting);
  return found == topic_to_broker.end() ? std::string_view() : found->second;
}

bool is_overridden(const eventlog::TopicConfig& config, const std::string& name) {
  return std::binary_search(config.overridden.begin(), config.overridden.end(), name);
}

Answer Session::create_topics(const RequestHeader& h, const CreateTopicsRequest& request) {
  CreateTopicsResponse response;
  eventlog::TopicStore& topics = service_.topics();
  const int32_t node = service_.options().node_id;
  RepeatedNames names(request.topics, [](const CreatableTopic& t) { return t.name; });
  for (const CreatableTopic& wanted : request.topics) {
    const auto verdict = names.verdict(wanted.name);
    if (verdict == RepeatedNames::Verdict::skip) continue;
    CreatableTopicResult& result = response.topics.emplace_back();
    result.name = wanted.name;
    auto fail = [&result](int16_t code, std::string message) {
      result.error_code = code;
      result.error_message = std::move(message);
    };
    if (verdict == RepeatedNames::Verdict::refuse) {
      fail(kInvalidRequest, "the request names topic '" + wanted.name + "' more than once");
      continue;
    }
    int32_t partitions =
        wanted.num_partitions == -1 ? topics.default_partitions() : wanted.num_partitions;
    if (!wanted.assignments.empty()) {
      partitions = static_cast<int32_t>(wanted.assignments.size());
      const bool here = std::all_of(wanted.assignments.begin(), wanted.assignments.end(),
                                    [node](const CreatableTopic::Assignment& a) {
                                      return a.broker_ids == std::vector<int32_t>{node};
                                    });
      if (!here) {
        fail(kInvalidReplicaAssignment, "every replica must be on broker " + std::to_string(node));
        continue;
      }
    }
    eventlog::TopicConfig config;
    std::optional<std::string> bad;
    for (const ConfigEntry& c : wanted.configs) {
      if (c.value && (bad = config.set(c.name, *c.value))) break;
    }
    if (auto invalid = eventlog::TopicStore::invalid_name(wanted.name)) {
      fail(kInvalidTopic, *invalid);
    } else if (partitions < 1 || partitions > eventlog::TopicStore::kMaxPartitions) {
      fail(kInvalidPartitions, "the number of partitions must be from 1 to " +
                                   std::to_string(eventlog::TopicStore::kMaxPartitions));
    } else if (wanted.replication_factor != -1 && wanted.replication_factor != 1 &&
               wanted.assignments.empty()) {
      fail(kInvalidReplicationFactor, "replication factor " +
                                          std::to_string(wanted.replication_factor) +
                                          " is larger than the 1 broker depot is");
    } else if (bad) {
      fail(kInvalidConfig, *bad);
    } else if (topics.find(wanted.name)) {
      fail(kTopicAlreadyExists, "topic '" + wanted.name + "' already exists");
    } else if (!request.validate_only) {
      auto created = topics.create(wanted.name, partitions, config);
      if (!created) {
        spdlog::error("{}: cannot create topic '{}': {}", conn_.name(), wanted.name,
                      created.error().message());
        fail(kKafkaStorageError, created.error().message());
      } else if (created.value() == eventlog::CreateResult::already_exists) {
        fail(kTopicAlreadyExists, "topic '" + wanted.name + "' already exists");
      }
    }
    if (result.error_code != kNone) continue;
    result.num_partitions = partitions;
    result.replication_factor = 1;
    if (auto info = topics.find(wanted.name)) result.topic_id = info->id;
    result.configs.emplace();
    for (const auto& [name, value] : config.entries()) {
      const bool set = is_overridden(config, name);
      result.configs->push_back(
          {name, value, false,
           static_cast<int8_t>(set ? ConfigSource::dynamic_topic : ConfigSource::default_config),
           false});
    }
  }
  return reply(response, h);
}

Answer Session::delete_topics(const RequestHeader& h, const DeleteTopicsRequest& request) {
  DeleteTopicsResponse response;
  eventlog::TopicStore& topics = service_.topics();
  auto key = [](const DeleteTopicState& t) {
    return t.name ? "name " + *t.name
                  : "id " + std::string(reinterpret_cast<const char*>(t.topic_id.data()),
                                        t.topic_id.size());
  };
  RepeatedNames names(request.topics, key);
  for (const DeleteTopicState& wanted : request.topics) {
    const auto verdict = names.verdict(key(wanted));
    if (verdict == RepeatedNames::Verdict::skip) continue;
    DeletableTopicResult& result = response.responses.emplace_back();
    result.name = wanted.name;
    result.topic_id = wanted.topic_id;
    if (verdict == RepeatedNames::Verdict::refuse) {
      result.error_code = kInvalidRequest;
      result.error_message = "the request names this topic more than once";
      continue;
    }
    std::optional<eventlog::TopicInfo> info =
        wanted.name ? topics.find(*wanted.name) : topics.find(wanted.topic_id);
    if (!info) {
      result.error_code = wanted.name ? kUnknownTopicOrPartition : kUnknownTopicId;
      continue;
    }
    result.name = info->name;
    result.topic_id = info->id;
    auto removed = topics.remove(info->name);
    if (removed && removed.value() == eventlog::ChangeResult::done) {
      // Committed offsets go with the topic (not waited for: a crash can at worst bring back
      // offsets of a topic that no longer exists).
      if (auto dropped = service_.offsets().delete_topic(info->name, now_ms()); !dropped) {
        spdlog::error("{}: cannot drop the committed offsets of topic '{}': {}", conn_.name(),
                      info->name, dropped.error().message());
      }
    }
    if (!removed) {
      spdlog::error("{}: cannot delete topic '{}': {}", conn_.name(), info->name,
                    removed.error().message());
      result.error_code = kKafkaStorageError;
      result.error_message = removed.error().message();
    } else if (removed.value() != eventlog::ChangeResult::done) {
      result.error_code = kUnknownTopicOrPartition;
    }
  }
  return reply(response, h);
}

Answer Session::create_partitions(const RequestHeader& h, const CreatePartitionsRequest& request) {
  CreatePartitionsResponse response;
  eventlog::TopicStore& topics = service_.topics();
  RepeatedNames names(request.topics, [](const CreatePartitionsTopic& t) { return t.name; });
  for (const CreatePartitionsTopic& wanted : request.topics) {
    const auto verdict = names.verdict(wanted.name);
    if (verdict == RepeatedNames::Verdict::skip) continue;
    ResourceResult& result = response.results.emplace_back();
    result.resource_name = wanted.name;
    if (verdict == RepeatedNames::Verdict::refuse) {
      result.error_code = kInvalidRequest;
      result.error_message = "the request names topic '" + wanted.name + "' more than once";
      continue;
    }
    auto info = topics.find(wanted.name);
    if (!info) {
      result.error_code = kUnknownTopicOrPartition;
      result.error_message = "topic '" + wanted.name + "' does not exist";
      continue;
    }
    if (wanted.count <= info->partitions || wanted.count > eventlog::TopicStore::kMaxPartitions) {
      result.error_code = kInvalidPartitions;
      result.error_message = "topic '" + wanted.name + "' has " + std::to_string(info->partitions) +
                             " partitions; it can only grow";
      continue;
    }
    if (request.validate_only) continue;
    auto grown = topics.add_partitions(wanted.name, wanted.count);
    if (!grown || grown.value() != eventlog::ChangeResult::done) {
      result.error_code = grown ? kInvalidPartitions : kKafkaStorageError;
      if (!grown) result.error_message = grown.error().message();
    }
  }
  return reply(response, h);
}

Answer Session::describe_configs(const RequestHeader& h, const DescribeConfigsRequest& request) {
  DescribeConfigsResponse response;
  eventlog::TopicStore& topics = service_.topics();
  for (const DescribeConfigsResource& resource : request.resources) {
    DescribeConfigsResult& result = response.results.emplace_back();
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    auto wanted = [&resource](const std::string& name) {
      return !resource.configuration_keys ||
             std::find(resource.configuration_keys->begin(), resource.configuration_keys->end(),
                       name) != resource.configuration_keys->end();
    };
    // Synonyms are listed most specific first, as Kafka does; without any, the setting itself.
    using Synonym = std::pair<std::string, std::string>;  // name, value
    auto add = [&](const std::string& name, const std::string& value, ConfigSource source,
                   bool read_only,
                   const std::vector<std::pair<Synonym, ConfigSource>>& synonyms = {}) {
      if (!wanted(name)) return;
      DescribedConfig& c = result.configs.emplace_back();
      c.name = name;
      c.value = value;
      c.read_only = read_only;
      c.is_default = source == ConfigSource::default_config;
      c.config_source = static_cast<int8_t>(source);
      c.config_type = config_type(name);
      if (!request.include_synonyms) return;
      if (synonyms.empty()) c.synonyms.push_back({name, value, c.config_source});
      for (const auto& [synonym, from] : synonyms)
        c.synonyms.push_back({synonym.first, synonym.second, static_cast<int8_t>(from)});
    };
    // A topic setting: its own value when the topic has one, then the broker setting its
    // default comes from.
    const eventlog::TopicConfig defaults;
    const auto default_entries = defaults.entries();
    auto add_topic_setting = [&](const std::string& name, const std::string& value,
                                 bool overridden) {
      std::vector<std::pair<Synonym, ConfigSource>> synonyms;
      if (overridden) synonyms.push_back({{name, value}, ConfigSource::dynamic_topic});
      const auto fallback = std::find_if(default_entries.begin(), default_entries.end(),
                                         [&name](const auto& e) { return e.first == name; });
      if (const std::string_view broker = broker_synonym(name);
          !broker.empty() && fallback != default_entries.end()) {
        synonyms.push_back({{std::string(broker), fallback->second}, ConfigSource::default_config});
      }
      add(name, value, overridden ? ConfigSource::dynamic_topic : ConfigSource::default_config,
          false, synonyms);
    };
    if (resource.resource_type == kResourceTopic) {
      auto info = topics.find(resource.resource_name);
      if (!info) {
        result.error_code = kUnknownTopicOrPartition;
        result.error_message = "topic '" + resource.resource_name + "' does not exist";
        continue;
      }
      for (const auto& [name, value] : info->config.entries())
        add_topic_setting(name, value, is_overridden(info->config, name));
    } else if (resource.resource_type == kResourceBroker) {
      // The broker's settings are depot's command line: shown, not changed over Kafka.
      add("auto.create.topics.enable", topics.auto_create() ? "true" : "false",
          ConfigSource::static_broker, true);
      add("num.partitions", std::to_string(topics.default_partitions()),
          ConfigSource::static_broker, true);
      add("default.replication.factor", "1", ConfigSource::default_config, true);
      add("log.retention.ms", std::to_string(defaults.retention_ms), ConfigSource::default_config,
          true);
      add("message.max.bytes", std::to_string(defaults.max_message_bytes),
          ConfigSource::default_config, true);
      add("group.initial.rebalance.delay.ms",
          std::to_string(service_.options().groups.initial_rebalance_delay_ms),
          ConfigSource::static_broker, true);
    } else {
      result.error_code = kInvalidRequest;
      result.error_message = "depot describes topic (2) and broker (4) resources only";
    }
  }
  return reply(response, h);
}

template <bool Incremental>
Answer Session::alter_configs(const RequestHeader& h,
                              const AlterConfigsRequestOf<Incremental>& request) {
  AlterConfigsResponse response;
  eventlog::TopicStore& topics = service_.topics();
  auto key = [](const AlterConfigsResource& r) {
    return std::to_string(r.resource_type) + ":" + r.resource_name;
  };
  RepeatedNames names(request.resources, key);
  for (const AlterConfigsResource& resource : request.resources) {
    const auto verdict = names.verdict(key(resource));
    if (verdict == RepeatedNames::Verdict::skip) continue;
    ResourceResult& result = response.responses.emplace_back();
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    if (verdict == RepeatedNames::Verdict::refuse) {
      result.error_code = kInvalidRequest;
      result.error_message = "the request names '" + resource.resource_name + "' more than once";
      continue;
    }
    const RepeatedNames settings(resource.configs, [](const AlterableConfig& c) { return c.name; });
    if (const std::string* setting = settings.first()) {
      result.error_code = kInvalidRequest;
      result.error_message = "the request sets '" + *setting + "' more than once";
      continue;
    }
    if (resource.resource_type != kResourceTopic) {
      result.error_code = kInvalidRequest;
      result.error_message = "depot's broker settings are set when it starts, not over Kafka";
      continue;
    }
    auto info = topics.find(resource.resource_name);
    if (!info) {
      result.error_code = kUnknownTopicOrPartition;
      result.error_message = "topic '" + resource.resource_name + "' does not exist";
      continue;
    }
    // AlterConfigs replaces every setting (the ones not named go back to their defaults);
    // IncrementalAlterConfigs changes only the ones named.
    eventlog::TopicConfig config = Incremental ? info->config : eventlog::TopicConfig{};
    std::optional<std::string> bad;
    for (const AlterableConfig& c : resource.configs) {
      if (c.operation == kConfigDelete) {
        bad = config.reset(c.name);
      } else if (c.operation == kConfigSet) {
        bad = c.value ? config.set(c.name, *c.value) : config.reset(c.name);
      } else {
        bad = "depot's topic settings take SET and DELETE only; '" + c.name + "' is not a list";
      }
      if (bad) break;
    }
    if (bad) {
      result.error_code = kInvalidConfig;
      result.error_message = *bad;
      continue;
    }
    if (request.validate_only) continue;
    auto changed = topics.configure(resource.resource_name, config);
    if (!changed || changed.value() != eventlog::ChangeResult::done) {
      result.error_code = changed ? kUnknownTopicOrPartition : kKafkaStorageError;
      if (!changed) result.error_message = changed.error().message();
    }
  }
  return reply(response, h);
}

// --- SASL

Answer Session::sasl_handshake(const RequestHeader& h, const SaslHandshakeRequest& request) {
  SaslHandshakeResponse response;
  const auto& users = service_.options().users;
  if (users.empty() || authenticated_ || sasl_) {
    // No users configured (a plaintext listener), or a second handshake.
    response.error_code = kIllegalSaslState;
    Answer answer = reply(response, h);
    answer.kind = Answer::Kind::reply_then_close;
    return answer;
  }
  response.mechanisms = SaslExchange::mechanisms();
  if (!SaslExchange::supported(request.mechanism)) {
    response.error_code = kUnsupportedSaslMechanism;
    return reply(response, h);
  }
  sasl_.emplace(request.mechanism, users);
  raw_sasl_ = h.api_version == 0;
  return reply(response, h);
}

awaitable<SaslExchange::Step> Session::sasl_step(ByteSpan token) {
  // SCRAM derives a key with 4096 rounds of HMAC (milliseconds): off the I/O thread, so that
  // logins do not hold up every other connection. The session waits, touching nothing meanwhile.
  const Bytes copy(token.begin(), token.end());
  co_await asio::post(service_.cpu_executor(), asio::use_awaitable);
  SaslExchange::Step step = sasl_->step(copy);
  co_await asio::post(conn_.executor(), asio::use_awaitable);
  if (step.outcome == SaslExchange::Step::Outcome::success) {
    authenticated_ = true;
    raw_sasl_ = false;
    spdlog::info("{}: authenticated as '{}'", conn_.name(), sasl_->user());
  } else if (step.outcome == SaslExchange::Step::Outcome::failure) {
    spdlog::info("{}: SASL authentication failed: {}", conn_.name(), step.error);
  }
  co_return step;
}

awaitable<Answer> Session::sasl_authenticate(const RequestHeader& h,
                                             const SaslAuthenticateRequest& request) {
  SaslAuthenticateResponse response;
  if (!sasl_ || raw_sasl_ || authenticated_) {
    response.error_code = kIllegalSaslState;
    response.error_message = "SaslAuthenticate without a SaslHandshake v1 first";
    Answer answer = reply(response, h);
    answer.kind = Answer::Kind::reply_then_close;
    co_return answer;
  }
  SaslExchange::Step step = co_await sasl_step(request.auth_bytes);
  response.auth_bytes = std::move(step.reply);
  if (step.outcome == SaslExchange::Step::Outcome::failure) {
    response.error_code = kSaslAuthenticationFailed;
    response.error_message = step.error;
    Answer answer = reply(response, h);
    answer.kind = Answer::Kind::reply_then_close;
    co_return answer;
  }
  co_return reply(response, h);
}

awaitable<std::optional<Bytes>> Session::raw_sasl(ByteSpan token) {
  SaslExchange::Step step = co_await sasl_step(token);
  if (step.outcome == SaslExchange::Step::Outcome::failure) co_return std::nullopt;
  co_return std::move(step.reply);
}

awaitable<bool> send(server::Connection& conn, const RequestHeader& header, Response& response) {
  size_t spliced = 0;
  for (const Splice& s : response.splices)
    spliced += s.size();
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
    if (s.file.size > 0) {
      if (!co_await conn.write(s.file)) co_return false;
    } else if (!co_await conn.write(std::move(s.data))) {
      co_return false;
    }
  }
  head.insert(head.end(), response.body.begin() + static_cast<ptrdiff_t>(at), response.body.end());
  co_return static_cast<bool>(co_await conn.write(std::move(head)));
}

// Responses leave in request order, from a writer of their own: the reader goes on to the next
// request while a Produce waits for its sync, so that the Produce requests a client pipelines
// share one fdatasync instead of taking one each.
class Pipeline : public std::enable_shared_from_this<Pipeline> {
 public:
  struct Item {
    RequestHeader header;
    Answer answer;
  };
  // Requests read ahead of their responses, at most (a client keeps up to 5 in flight), and the
  // bytes of answers waiting to be written: reading stops past either.
  static constexpr size_t kMaxPending = 32;
  static constexpr size_t kMaxPendingBytes = 16 << 20;

  explicit Pipeline(const asio::any_io_executor& executor) : changed_(executor) {}

  void start(server::Connection& conn) {
    asio::co_spawn(
        conn.executor(),
        [self = shared_from_this(), keep = conn.shared_from_this()]() -> awaitable<void> {
          co_await self->write(*keep);
        },
        asio::detached);
  }

  // Queues a response (moved from `item`); waits while kMaxPending are queued. False once the
  // writer has stopped. By reference: GCC 12 destroys a temporary in a co_await expression twice.
  awaitable<bool> push(Item& item) {
    while ((items_.size() >= kMaxPending || pending_bytes_ >= kMaxPendingBytes) && !writer_done_)
      co_await changed_.wait();
    if (writer_done_) co_return false;
    pending_bytes_ += size_of(item.answer);
    items_.push_back(std::move(item));
    changed_.notify_all();
    co_return true;
  }

  // Called however serve() ends (an exception included): the writer finishes what is queued.
  void reading_stopped() {
    reading_done_ = true;
    changed_.notify_all();
  }

  // No more requests: waits until everything queued has been written (or the writer stopped).
  awaitable<void> finish() {
    reading_stopped();
    while (!writer_done_)
      co_await changed_.wait();
  }

 private:
  static size_t size_of(const Answer& answer) {
    size_t size = answer.response.body.size();
    for (const Splice& s : answer.response.splices)
      size += s.size();
    return size;
  }

  awaitable<void> write(server::Connection& conn) {
    // However this ends, the reader must not wait for it any longer.
    struct Done {
      Pipeline& pipeline;
      ~Done() {
        pipeline.writer_done_ = true;
        pipeline.items_.clear();
        pipeline.pending_bytes_ = 0;
        pipeline.changed_.notify_all();
      }
    } done{*this};
    for (;;) {
      if (items_.empty()) {
        if (reading_done_) break;
        co_await changed_.wait();
        continue;
      }
      Item item = std::move(items_.front());
      items_.pop_front();
      pending_bytes_ -= size_of(item.answer);
      changed_.notify_all();  // room for the reader
      Answer& answer = item.answer;
      if (answer.durable) {
        const std::error_code ec = co_await answer.durable->wait();
        finish_produce(answer, item.header, ec, conn.name());
      }
      if (answer.kind == Answer::Kind::silent) continue;
      if (answer.kind == Answer::Kind::close) break;
      if (answer.kind == Answer::Kind::bare) {
        if (!co_await conn.write(std::move(answer.response.body))) break;
        continue;
      }
      if (!co_await send(conn, item.header, answer.response)) break;
      if (answer.kind == Answer::Kind::reply_then_close) break;
    }
  }

  std::deque<Item> items_;
  size_t pending_bytes_ = 0;
  server::AsyncEvent changed_;
  bool reading_done_ = false;
  bool writer_done_ = false;
};

}  // namespace

struct KafkaService::Ticker {
  explicit Ticker(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool stopped = false;
};

KafkaService::KafkaService(std::unique_ptr<eventlog::TopicStore> topics,
                           std::unique_ptr<eventlog::OffsetStore> offsets, KafkaOptions options)
    : topics_(std::move(topics)),
      offsets_(std::move(offsets)),
      options_(std::move(options)),
      groups_(options_.groups) {
  // Groups come back as last written: a Stable generation's members carry on heartbeating, as
  // they do after a Kafka coordinator moves. Groups known only from their committed offsets are
  // listed and described as Empty.
  const auto resumed = offsets_->group_metadata();
  for (const auto& [group, metadata] : resumed)
    groups_.restore(group, metadata, now_ms());
  for (const std::string& group : offsets_->groups())
    groups_.ensure_group(group);
  if (!resumed.empty()) spdlog::info("eventlog: {} consumer group(s) resumed", resumed.size());
  // Not waited for: losing the newest metadata costs the group one rebalance, never an offset.
  groups_.persist_with(
      [offsets = offsets_.get()](std::string_view group, const eventlog::GroupMetadata& metadata) {
        if (auto stored = offsets->store_group(group, metadata, now_ms()); !stored) {
          spdlog::error("eventlog: cannot write the metadata of group {}: {}", group,
                        stored.error().message());
        }
      });
}

KafkaService::~KafkaService() {
  (void)close();
}

void KafkaService::start(const asio::any_io_executor& executor) {
  ticker_ = std::make_shared<Ticker>(executor);
  asio::co_spawn(
      executor,
      [this, ticker = ticker_]() -> awaitable<void> {
        while (!ticker->stopped) {
          // Session timeouts are seconds; a tenth of a second is precise enough.
          ticker->timer.expires_after(std::chrono::milliseconds(100));
          boost::system::error_code ignored;
          co_await ticker->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          if (ticker->stopped) break;
          std::lock_guard lock(groups_mutex_);
          groups_.tick(now_ms());
        }
      },
      asio::detached);
  maintenance_ = std::thread([this] { maintain(); });
}

void KafkaService::maintain() {
  std::unique_lock lock(maintenance_mutex_);
  while (!stopping_) {
    maintenance_wake_.wait_for(lock, options_.maintenance_interval);
    if (stopping_) break;
    lock.unlock();
    if (size_t changed = topics_->maintain(now_ms()); changed > 0) {
      spdlog::info("eventlog: retention and compaction removed or rewrote {} segment(s)", changed);
    }
    if (auto compacted = offsets_->maybe_compact(); !compacted) {
      spdlog::error("eventlog: compacting committed offsets failed: {}",
                    compacted.error().message());
    }
    lock.lock();
  }
}

Result<void> KafkaService::close() {
  if (ticker_) {
    ticker_->stopped = true;
    ticker_->timer.cancel();
  }
  {
    std::lock_guard lock(maintenance_mutex_);
    stopping_ = true;
  }
  maintenance_wake_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  DEPOT_TRY(offsets_->close());
  return topics_->close();
}

void KafkaService::watch_appends(const std::shared_ptr<AppendWaiter>& waiter,
                                 const std::vector<const storage::Log*>& partitions) {
  std::lock_guard lock(waiters_mutex_);
  for (const storage::Log* partition : partitions) {
    auto& watching = waiters_[partition];
    // Fetches that ended without an append leave expired entries: drop them here.
    std::erase_if(watching, [](const std::weak_ptr<AppendWaiter>& w) { return w.expired(); });
    const bool already = std::any_of(watching.begin(), watching.end(),
                                     [&](const auto& w) { return w.lock() == waiter; });
    if (!already) watching.push_back(waiter);
  }
}

void KafkaService::notify_appended(const storage::Log* partition) {
  std::vector<std::shared_ptr<AppendWaiter>> woken;
  {
    std::lock_guard lock(waiters_mutex_);
    auto found = waiters_.find(partition);
    if (found == waiters_.end()) return;
    for (auto& weak : found->second) {
      if (auto waiter = weak.lock()) woken.push_back(std::move(waiter));
    }
    waiters_.erase(found);
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
  auto pipeline = std::make_shared<Pipeline>(conn.executor());
  pipeline->start(conn);
  // If serve() ends by an exception, the writer must still finish and let the connection go.
  struct StopReading {
    Pipeline& pipeline;
    ~StopReading() { pipeline.reading_stopped(); }
  } stop_reading{*pipeline};
  const size_t max = service_->options().max_request_bytes;
  for (;;) {
    if (conn.stopping() && conn.buffered().empty()) break;
    if (!co_await conn.read_at_least(4)) break;
    const int32_t size = load_be<int32_t>(conn.buffered().data());
    if (size < 0 || static_cast<size_t>(size) > max) {
      spdlog::info("{}: a request of {} bytes is over the limit of {}; closing", conn.name(), size,
                   max);
      break;
    }
    if (!co_await conn.read_at_least(4 + static_cast<size_t>(size))) break;
    if (session.expects_raw_sasl()) {
      const ByteSpan bare = conn.buffered().subspan(4, static_cast<size_t>(size));
      std::optional<Bytes> token = co_await session.raw_sasl(bare);
      conn.consume(4 + static_cast<size_t>(size));
      Answer answer;  // a failed bare exchange closes, as Kafka does
      if (token) {
        answer.kind = Answer::Kind::bare;
        ByteWriter(answer.response.body).write_be<int32_t>(static_cast<int32_t>(token->size()));
        answer.response.body.insert(answer.response.body.end(), token->begin(), token->end());
      }
      const bool more = answer.kind == Answer::Kind::bare;
      Pipeline::Item item{{}, std::move(answer)};
      if (!co_await pipeline->push(item) || !more) break;
      continue;
    }
    auto parsed = parse_request(conn.buffered().subspan(4, static_cast<size_t>(size)));
    if (!parsed) {
      spdlog::info("{}: malformed request header; closing", conn.name());
      break;
    }
    Answer answer = co_await session.answer(*parsed);
    const RequestHeader header = parsed->header;
    conn.consume(4 + static_cast<size_t>(size));
    const bool more =
        answer.kind != Answer::Kind::close && answer.kind != Answer::Kind::reply_then_close;
    Pipeline::Item item{header, std::move(answer)};
    if (!co_await pipeline->push(item) || !more) break;
  }
  co_await pipeline->finish();
}

}  // namespace depot::kafka
