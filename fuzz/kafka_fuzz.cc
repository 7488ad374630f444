// libFuzzer target for the Kafka face's request decoding: headers (classic and flexible) and the
// bodies of every API served, at whatever version the request names (whatever decodes must
// encode and decode again to the same bytes), and SASL tokens fed to both mechanisms.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "protocol/kafka/admin_messages.h"
#include "protocol/kafka/group_messages.h"
#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"
#include "protocol/kafka/sasl.h"

namespace {

using namespace depot::kafka;

void check(bool ok) {
  if (!ok) std::abort();
}

// Whatever decodes must encode, decode again, and encode to the same bytes.
template <class M>
void round_trip(depot::ByteSpan body, int16_t version, bool flexible) {
  auto decoded = decode<M>(body, version, flexible);
  if (!decoded) return;
  depot::Bytes once;
  encode(*decoded, version, flexible, once);
  auto back = decode<M>(once, version, flexible);
  check(back.has_value());
  depot::Bytes twice;
  encode(*back, version, flexible, twice);
  check(once == twice);
}

}  // namespace

// Any bytes as PLAIN's token and as both of SCRAM's client messages: refused or accepted, never
// a crash. The user exists, so a well-formed first message reaches the second step.
void sasl(depot::ByteSpan input) {
  static const std::map<std::string, std::string> users{{"u", "p"}};
  SaslExchange plain("PLAIN", users);
  (void)plain.step(input);
  SaslExchange scram("SCRAM-SHA-256", users);
  if (scram.step(input).outcome == SaslExchange::Step::Outcome::challenge) (void)scram.step(input);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  depot::ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  sasl(input);
  auto parsed = parse_request(input);
  if (!parsed) return 0;
  const int16_t version = parsed->header.api_version;
  const bool flexible = is_flexible(parsed->header.api_key, version);
  if (version < 0 || version > 17) return 0;
  switch (static_cast<ApiKey>(parsed->header.api_key)) {
    case ApiKey::api_versions:
      round_trip<ApiVersionsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::metadata:
      round_trip<MetadataRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::produce:
      round_trip<ProduceRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::fetch:
      round_trip<FetchRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::list_offsets:
      round_trip<ListOffsetsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::init_producer_id:
      round_trip<InitProducerIdRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::find_coordinator:
      round_trip<FindCoordinatorRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::join_group:
      round_trip<JoinGroupRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::sync_group:
      round_trip<SyncGroupRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::heartbeat:
      round_trip<HeartbeatRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::leave_group:
      round_trip<LeaveGroupRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::offset_commit:
      round_trip<OffsetCommitRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::offset_fetch:
      round_trip<OffsetFetchRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::describe_groups:
      round_trip<DescribeGroupsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::list_groups:
      round_trip<ListGroupsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::delete_groups:
      round_trip<DeleteGroupsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::create_topics:
      round_trip<CreateTopicsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::delete_topics:
      round_trip<DeleteTopicsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::create_partitions:
      round_trip<CreatePartitionsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::describe_configs:
      round_trip<DescribeConfigsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::alter_configs:
      round_trip<AlterConfigsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::incremental_alter_configs:
      round_trip<IncrementalAlterConfigsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::sasl_handshake:
      round_trip<SaslHandshakeRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::sasl_authenticate:
      round_trip<SaslAuthenticateRequest>(parsed->body, version, flexible);
      break;
    default:
      break;
  }
  return 0;
}
