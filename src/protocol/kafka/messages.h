#pragma once
// Request and response bodies, one field list per message for every version the schemas define
// (apache/kafka clients/src/main/resources/common/message/*.json), read and written through
// codec.h. A field outside a version's range is left at its default.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/kafka/codec.h"

namespace depot::kafka {

// --- ApiVersions (18): versions 0-4, flexible from 3.

struct ApiVersionsRequest {
  std::string client_software_name;  // v3+
  std::string client_software_version;
};

template <class IO>
void io(IO& io, ApiVersionsRequest& m, int16_t version) {
  if (version >= 3) {
    io.string(m.client_software_name);
    io.string(m.client_software_version);
  }
  io.tagged_fields();
}

struct ApiVersionRange {
  int16_t api_key = 0;
  int16_t min_version = 0;
  int16_t max_version = 0;
};

struct ApiVersionsResponse {
  int16_t error_code = 0;
  std::vector<ApiVersionRange> api_keys;
  int32_t throttle_time_ms = 0;  // v1+
};

template <class IO>
void io(IO& io, ApiVersionsResponse& m, int16_t version) {
  io.int16(m.error_code);
  io.array(m.api_keys, [&io](ApiVersionRange& k) {
    io.int16(k.api_key);
    io.int16(k.min_version);
    io.int16(k.max_version);
    io.tagged_fields();
  });
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.tagged_fields();
}

// --- Metadata (3): versions 0-12, flexible from 9.

struct MetadataRequestTopic {
  Uuid topic_id{};                  // v10+
  std::optional<std::string> name;  // nullable from v10
};

struct MetadataRequest {
  // nullopt: every topic (v1+); in v0 an empty list means every topic.
  std::optional<std::vector<MetadataRequestTopic>> topics;
  bool allow_auto_topic_creation = true;               // v4+
  bool include_cluster_authorized_operations = false;  // v8-10
  bool include_topic_authorized_operations = false;    // v8+
};

template <class IO>
void io(IO& io, MetadataRequest& m, int16_t version) {
  auto topic = [&io, version](MetadataRequestTopic& t) {
    if (version >= 10) io.uuid(t.topic_id);
    io.string(t.name, version >= 10);
    io.tagged_fields();
  };
  if (version == 0) {
    if constexpr (IO::kDecoding) m.topics.emplace();
    io.array(*m.topics, topic);
  } else {
    io.nullable_array(m.topics, topic);
  }
  if (version >= 4) io.boolean(m.allow_auto_topic_creation);
  if (version >= 8 && version <= 10) io.boolean(m.include_cluster_authorized_operations);
  if (version >= 8) io.boolean(m.include_topic_authorized_operations);
  io.tagged_fields();
}

struct MetadataBroker {
  int32_t node_id = 0;
  std::string host;
  int32_t port = 0;
  std::optional<std::string> rack;  // v1+
};

struct MetadataPartition {
  int16_t error_code = 0;
  int32_t partition_index = 0;
  int32_t leader_id = 0;
  int32_t leader_epoch = -1;  // v7+
  std::vector<int32_t> replica_nodes;
  std::vector<int32_t> isr_nodes;
  std::vector<int32_t> offline_replicas;  // v5+
};

// Kafka's "no authorized operations were asked for".
inline constexpr int32_t kAuthorizedOperationsOmitted = INT32_MIN;

struct MetadataTopic {
  int16_t error_code = 0;
  std::optional<std::string> name;  // nullable from v12 (a topic asked for by id)
  Uuid topic_id{};                  // v10+
  bool is_internal = false;         // v1+
  std::vector<MetadataPartition> partitions;
  int32_t topic_authorized_operations = kAuthorizedOperationsOmitted;  // v8+
};

struct MetadataResponse {
  int32_t throttle_time_ms = 0;  // v3+
  std::vector<MetadataBroker> brokers;
  std::optional<std::string> cluster_id;  // v2+
  int32_t controller_id = -1;             // v1+
  std::vector<MetadataTopic> topics;
  int32_t cluster_authorized_operations = kAuthorizedOperationsOmitted;  // v8-10
};

template <class IO>
void io(IO& io, MetadataResponse& m, int16_t version) {
  if (version >= 3) io.int32(m.throttle_time_ms);
  io.array(m.brokers, [&io, version](MetadataBroker& b) {
    io.int32(b.node_id);
    io.string(b.host);
    io.int32(b.port);
    if (version >= 1) io.nullable_string(b.rack);
    io.tagged_fields();
  });
  if (version >= 2) io.nullable_string(m.cluster_id);
  if (version >= 1) io.int32(m.controller_id);
  io.array(m.topics, [&io, version](MetadataTopic& t) {
    io.int16(t.error_code);
    io.string(t.name, version >= 12);
    if (version >= 10) io.uuid(t.topic_id);
    if (version >= 1) io.boolean(t.is_internal);
    io.array(t.partitions, [&io, version](MetadataPartition& p) {
      io.int16(p.error_code);
      io.int32(p.partition_index);
      io.int32(p.leader_id);
      if (version >= 7) io.int32(p.leader_epoch);
      io.int32_array(p.replica_nodes);
      io.int32_array(p.isr_nodes);
      if (version >= 5) io.int32_array(p.offline_replicas);
      io.tagged_fields();
    });
    if (version >= 8) io.int32(t.topic_authorized_operations);
    io.tagged_fields();
  });
  if (version >= 8 && version <= 10) io.int32(m.cluster_authorized_operations);
  io.tagged_fields();
}

}  // namespace depot::kafka
