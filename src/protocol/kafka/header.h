#pragma once
// Request and response headers; which versions of each API depot serves, and which of those are
// flexible (their request header is v2 and their response header v1; ApiVersions' response header
// stays v0 so that a client can read it before it knows what the broker speaks).
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "protocol/kafka/codec.h"
#include "protocol/kafka/messages.h"

namespace depot::kafka {

enum class ApiKey : int16_t {
  produce = 0,
  fetch = 1,
  list_offsets = 2,
  metadata = 3,
  offset_commit = 8,
  offset_fetch = 9,
  find_coordinator = 10,
  join_group = 11,
  heartbeat = 12,
  leave_group = 13,
  sync_group = 14,
  describe_groups = 15,
  list_groups = 16,
  sasl_handshake = 17,
  api_versions = 18,
  create_topics = 19,
  delete_topics = 20,
  init_producer_id = 22,
  describe_configs = 32,
  alter_configs = 33,
  sasl_authenticate = 36,
  create_partitions = 37,
  delete_groups = 42,
  incremental_alter_configs = 44,
};

// An API's key as it is on the wire.
constexpr int16_t key(ApiKey api) {
  return static_cast<int16_t>(api);
}

// The first flexible version of an API (from Kafka's message schemas), or nullopt when the API
// is unknown here or never flexible.
std::optional<int16_t> first_flexible_version(int16_t api_key);
bool is_flexible(int16_t api_key, int16_t api_version);

// The versions of each API that depot's Kafka face serves: what its ApiVersions advertises, and
// nothing else is answered. advertised_versions is nullptr for an API not served.
std::span<const ApiVersionRange> advertised_api_versions();
const ApiVersionRange* advertised_versions(int16_t api_key);

struct RequestHeader {
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

struct ParsedRequest {
  RequestHeader header;
  ByteSpan body;  // the rest of the request, after the header
};

// Splits a request (the bytes after its int32 size) into header and body. The header's own
// version follows from the API and its version; an API this table does not know is read with
// header v1, which is enough to answer or refuse it. nullopt when the header is cut short.
std::optional<ParsedRequest> parse_request(ByteSpan request);

// Appends a response's size, header (v0 or, for flexible versions other than ApiVersions, v1)
// and body. `body` is what the API's encoder wrote.
// `spliced_bytes` counts record sets sent after `out` in their own buffers (encode_spliced).
void append_response(Bytes& out, const RequestHeader& request, ByteSpan body,
                     size_t spliced_bytes = 0);

}  // namespace depot::kafka
