#include "protocol/kafka/header.h"

namespace depot::kafka {
namespace {

// What depot's Kafka face serves, exactly what its ApiVersions advertises. The lowest versions are
// Kafka 4's (RecordBatch v2 only); they cover librdkafka, kafkajs and kafka-python as well.
constexpr ApiVersionRange kSupported[] = {
    {key(ApiKey::produce), 3, 11},
    {key(ApiKey::fetch), 4, 17},
    {key(ApiKey::list_offsets), 1, 10},
    {key(ApiKey::metadata), 0, 12},
    // The group APIs from version 0: librdkafka 2.0 turns consumer groups on only when every
    // one of them reaches down to 0 (or 1-2 for the offset APIs).
    {key(ApiKey::offset_commit), 0, 9},
    {key(ApiKey::offset_fetch), 0, 9},
    {key(ApiKey::find_coordinator), 0, 6},
    {key(ApiKey::join_group), 0, 9},
    {key(ApiKey::heartbeat), 0, 4},
    {key(ApiKey::leave_group), 0, 5},
    {key(ApiKey::sync_group), 0, 5},
    {key(ApiKey::describe_groups), 0, 5},
    {key(ApiKey::list_groups), 0, 5},
    {key(ApiKey::sasl_handshake), 0, 1},
    {key(ApiKey::api_versions), 0, 4},
    {key(ApiKey::create_topics), 0, 7},
    {key(ApiKey::delete_topics), 0, 6},
    {key(ApiKey::init_producer_id), 0, 5},
    {key(ApiKey::describe_configs), 0, 4},
    {key(ApiKey::alter_configs), 0, 2},
    {key(ApiKey::sasl_authenticate), 0, 2},
    {key(ApiKey::create_partitions), 0, 3},
    {key(ApiKey::delete_groups), 0, 2},
    {key(ApiKey::incremental_alter_configs), 0, 1},
};

}  // namespace

std::span<const ApiVersionRange> advertised_api_versions() {
  return kSupported;
}

const ApiVersionRange* advertised_versions(int16_t api_key) {
  for (const ApiVersionRange& range : kSupported) {
    if (range.api_key == api_key) return &range;
  }
  return nullptr;
}

std::optional<int16_t> first_flexible_version(int16_t api_key) {
  // From each API's "flexibleVersions" in Kafka's message schemas.
  struct Entry {
    ApiKey key;
    int16_t first_flexible;
  };
  static constexpr Entry kFlexible[] = {
      {ApiKey::produce, 9},
      {ApiKey::fetch, 12},
      {ApiKey::list_offsets, 6},
      {ApiKey::metadata, 9},
      {ApiKey::offset_commit, 8},
      {ApiKey::offset_fetch, 6},
      {ApiKey::find_coordinator, 3},
      {ApiKey::join_group, 6},
      {ApiKey::heartbeat, 4},
      {ApiKey::leave_group, 4},
      {ApiKey::sync_group, 4},
      {ApiKey::describe_groups, 5},
      {ApiKey::list_groups, 3},
      {ApiKey::api_versions, 3},
      {ApiKey::create_topics, 5},
      {ApiKey::delete_topics, 4},
      {ApiKey::init_producer_id, 2},
      {ApiKey::describe_configs, 4},
      {ApiKey::alter_configs, 2},
      {ApiKey::sasl_authenticate, 2},
      {ApiKey::create_partitions, 2},
      {ApiKey::delete_groups, 2},
      {ApiKey::incremental_alter_configs, 1},
      // SaslHandshake has no flexible version.
  };
  for (const Entry& e : kFlexible) {
    if (static_cast<int16_t>(e.key) == api_key) return e.first_flexible;
  }
  return std::nullopt;
}

bool is_flexible(int16_t api_key, int16_t api_version) {
  auto first = first_flexible_version(api_key);
  return first && api_version >= *first;
}

std::optional<ParsedRequest> parse_request(ByteSpan request) {
  Reader r(request, false);
  ParsedRequest parsed;
  RequestHeader& h = parsed.header;
  r.int16(h.api_key);
  r.int16(h.api_version);
  r.int32(h.correlation_id);
  r.classic_nullable_string(h.client_id);
  if (is_flexible(h.api_key, h.api_version)) {
    Reader tags(request.subspan(std::min(r.position(), request.size())), true);
    tags.tagged_fields();
    if (!r.ok() || !tags.ok()) return std::nullopt;
    parsed.body = request.subspan(r.position() + tags.position());
    return parsed;
  }
  if (!r.ok()) return std::nullopt;
  parsed.body = request.subspan(r.position());
  return parsed;
}

void append_response(Bytes& out, const RequestHeader& request, ByteSpan body,
                     size_t spliced_bytes) {
  const bool header_v1 = request.api_key != static_cast<int16_t>(ApiKey::api_versions) &&
                         is_flexible(request.api_key, request.api_version);
  ByteWriter w(out);
  const size_t header_size = 4 + (header_v1 ? 1 : 0);
  w.write_be<int32_t>(static_cast<int32_t>(header_size + body.size() + spliced_bytes));
  w.write_be<int32_t>(request.correlation_id);
  if (header_v1) w.write_uvarint(0);  // no tagged fields
  w.write_bytes(body);
}

}  // namespace depot::kafka
