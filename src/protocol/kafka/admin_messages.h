#pragma once
// The administration and authentication APIs' bodies (CreateTopics, DeleteTopics,
// CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, SaslHandshake,
// SaslAuthenticate), one field list per message for every version the schemas define.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/kafka/codec.h"

namespace depot::kafka {

// --- CreateTopics (19): versions 0-7, flexible from 5.

struct ConfigEntry {
  std::string name;
  std::optional<std::string> value;
};

struct CreatableTopic {
  std::string name;
  int32_t num_partitions = -1;
  int16_t replication_factor = -1;
  struct Assignment {
    int32_t partition_index = 0;
    std::vector<int32_t> broker_ids;
  };
  std::vector<Assignment> assignments;
  std::vector<ConfigEntry> configs;
};

struct CreateTopicsRequest {
  std::vector<CreatableTopic> topics;
  int32_t timeout_ms = 60000;
  bool validate_only = false;  // v1+
};

template <class IO>
void io(IO& io, CreateTopicsRequest& m, int16_t version) {
  io.array(m.topics, [&io](CreatableTopic& t) {
    io.string(t.name);
    io.int32(t.num_partitions);
    io.int16(t.replication_factor);
    io.array(t.assignments, [&io](CreatableTopic::Assignment& a) {
      io.int32(a.partition_index);
      io.int32_array(a.broker_ids);
      io.tagged_fields();
    });
    io.array(t.configs, [&io](ConfigEntry& c) {
      io.string(c.name);
      io.nullable_string(c.value);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.int32(m.timeout_ms);
  if (version >= 1) io.boolean(m.validate_only);
  io.tagged_fields();
}

// Where a setting's value comes from (DescribeConfigs v1+, CreateTopics v5+).
enum class ConfigSource : int8_t { dynamic_topic = 1, static_broker = 4, default_config = 5 };

struct CreatedTopicConfig {
  std::string name;
  std::optional<std::string> value;
  bool read_only = false;
  int8_t config_source = -1;
  bool is_sensitive = false;
};

struct CreatableTopicResult {
  std::string name;
  Uuid topic_id{};  // v7+
  int16_t error_code = 0;
  std::optional<std::string> error_message;                // v1+
  int32_t num_partitions = -1;                             // v5+
  int16_t replication_factor = -1;                         // v5+
  std::optional<std::vector<CreatedTopicConfig>> configs;  // v5+
};

struct CreateTopicsResponse {
  int32_t throttle_time_ms = 0;  // v2+
  std::vector<CreatableTopicResult> topics;
};

template <class IO>
void io(IO& io, CreateTopicsResponse& m, int16_t version) {
  if (version >= 2) io.int32(m.throttle_time_ms);
  io.array(m.topics, [&io, version](CreatableTopicResult& t) {
    io.string(t.name);
    if (version >= 7) io.uuid(t.topic_id);
    io.int16(t.error_code);
    if (version >= 1) io.nullable_string(t.error_message);
    if (version >= 5) {
      io.int32(t.num_partitions);
      io.int16(t.replication_factor);
      io.nullable_array(t.configs, [&io](CreatedTopicConfig& c) {
        io.string(c.name);
        io.nullable_string(c.value);
        io.boolean(c.read_only);
        io.int8(c.config_source);
        io.boolean(c.is_sensitive);
        io.tagged_fields();
      });
    }
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- DeleteTopics (20): versions 0-6, flexible from 4, topics by name or id from 6.

struct DeleteTopicState {
  std::optional<std::string> name;
  Uuid topic_id{};
};

struct DeleteTopicsRequest {
  std::vector<DeleteTopicState> topics;  // v0-5 read their names into these
  int32_t timeout_ms = 0;
};

template <class IO>
void io(IO& io, DeleteTopicsRequest& m, int16_t version) {
  if (version >= 6) {
    io.array(m.topics, [&io](DeleteTopicState& t) {
      io.nullable_string(t.name);
      io.uuid(t.topic_id);
      io.tagged_fields();
    });
  } else {
    io.array(m.topics, [&io](DeleteTopicState& t) { io.string(t.name, false); });
  }
  io.int32(m.timeout_ms);
  io.tagged_fields();
}

struct DeletableTopicResult {
  std::optional<std::string> name;  // nullable from v6
  Uuid topic_id{};                  // v6+
  int16_t error_code = 0;
  std::optional<std::string> error_message;  // v5+
};

struct DeleteTopicsResponse {
  int32_t throttle_time_ms = 0;  // v1+
  std::vector<DeletableTopicResult> responses;
};

template <class IO>
void io(IO& io, DeleteTopicsResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.array(m.responses, [&io, version](DeletableTopicResult& r) {
    if constexpr (!IO::kDecoding) {
      if (version < 6 && !r.name) r.name.emplace();
    }
    io.string(r.name, version >= 6);
    if (version >= 6) io.uuid(r.topic_id);
    io.int16(r.error_code);
    if (version >= 5) io.nullable_string(r.error_message);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- CreatePartitions (37): versions 0-3, flexible from 2.

struct CreatePartitionsTopic {
  std::string name;
  int32_t count = 0;
  std::optional<std::vector<std::vector<int32_t>>> assignments;
};

struct CreatePartitionsRequest {
  std::vector<CreatePartitionsTopic> topics;
  int32_t timeout_ms = 0;
  bool validate_only = false;
};

template <class IO>
void io(IO& io, CreatePartitionsRequest& m, int16_t /*version*/) {
  io.array(m.topics, [&io](CreatePartitionsTopic& t) {
    io.string(t.name);
    io.int32(t.count);
    io.nullable_array(t.assignments, [&io](std::vector<int32_t>& brokers) {
      io.int32_array(brokers);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.int32(m.timeout_ms);
  io.boolean(m.validate_only);
  io.tagged_fields();
}

// One resource's outcome: CreatePartitions' per-topic results, and AlterConfigs'.
struct ResourceResult {
  int16_t error_code = 0;
  std::optional<std::string> error_message;
  int8_t resource_type = 0;  // AlterConfigs only
  std::string resource_name;
};

struct CreatePartitionsResponse {
  int32_t throttle_time_ms = 0;
  std::vector<ResourceResult> results;
};

template <class IO>
void io(IO& io, CreatePartitionsResponse& m, int16_t /*version*/) {
  io.int32(m.throttle_time_ms);
  io.array(m.results, [&io](ResourceResult& r) {
    io.string(r.resource_name);
    io.int16(r.error_code);
    io.nullable_string(r.error_message);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- DescribeConfigs (32): versions 0-4, flexible from 4.

// Config resource types.
inline constexpr int8_t kResourceTopic = 2;
inline constexpr int8_t kResourceBroker = 4;

struct DescribeConfigsResource {
  int8_t resource_type = 0;
  std::string resource_name;
  std::optional<std::vector<std::string>> configuration_keys;  // null: every setting
};

struct DescribeConfigsRequest {
  std::vector<DescribeConfigsResource> resources;
  bool include_synonyms = false;       // v1+
  bool include_documentation = false;  // v3+
};

template <class IO>
void io(IO& io, DescribeConfigsRequest& m, int16_t version) {
  io.array(m.resources, [&io](DescribeConfigsResource& r) {
    io.int8(r.resource_type);
    io.string(r.resource_name);
    io.nullable_array(r.configuration_keys, [&io](std::string& k) { io.string(k); });
    io.tagged_fields();
  });
  if (version >= 1) io.boolean(m.include_synonyms);
  if (version >= 3) io.boolean(m.include_documentation);
  io.tagged_fields();
}

struct ConfigSynonym {
  std::string name;
  std::optional<std::string> value;
  int8_t source = 0;
};

struct DescribedConfig {
  std::string name;
  std::optional<std::string> value;
  bool read_only = false;
  bool is_default = false;    // v0
  int8_t config_source = -1;  // v1+
  bool is_sensitive = false;
  std::vector<ConfigSynonym> synonyms;       // v1+
  int8_t config_type = 0;                    // v3+
  std::optional<std::string> documentation;  // v3+
};

struct DescribeConfigsResult {
  int16_t error_code = 0;
  std::optional<std::string> error_message;
  int8_t resource_type = 0;
  std::string resource_name;
  std::vector<DescribedConfig> configs;
};

struct DescribeConfigsResponse {
  int32_t throttle_time_ms = 0;
  std::vector<DescribeConfigsResult> results;
};

template <class IO>
void io(IO& io, DescribeConfigsResponse& m, int16_t version) {
  io.int32(m.throttle_time_ms);
  io.array(m.results, [&io, version](DescribeConfigsResult& r) {
    io.int16(r.error_code);
    io.nullable_string(r.error_message);
    io.int8(r.resource_type);
    io.string(r.resource_name);
    io.array(r.configs, [&io, version](DescribedConfig& c) {
      io.string(c.name);
      io.nullable_string(c.value);
      io.boolean(c.read_only);
      if (version == 0) io.boolean(c.is_default);
      if (version >= 1) io.int8(c.config_source);
      io.boolean(c.is_sensitive);
      if (version >= 1) {
        io.array(c.synonyms, [&io](ConfigSynonym& s) {
          io.string(s.name);
          io.nullable_string(s.value);
          io.int8(s.source);
          io.tagged_fields();
        });
      }
      if (version >= 3) {
        io.int8(c.config_type);
        io.nullable_string(c.documentation);
      }
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- AlterConfigs (33): versions 0-2, flexible from 2; IncrementalAlterConfigs (44): 0-1,
// flexible from 1. One request shape serves both: the incremental one adds an operation.

// IncrementalAlterConfigs operations.
inline constexpr int8_t kConfigSet = 0;
inline constexpr int8_t kConfigDelete = 1;
inline constexpr int8_t kConfigAppend = 2;
inline constexpr int8_t kConfigSubtract = 3;

struct AlterableConfig {
  std::string name;
  int8_t operation = kConfigSet;  // incremental only
  std::optional<std::string> value;
};

struct AlterConfigsResource {
  int8_t resource_type = 0;
  std::string resource_name;
  std::vector<AlterableConfig> configs;
};

template <bool Incremental>
struct AlterConfigsRequestOf {
  std::vector<AlterConfigsResource> resources;
  bool validate_only = false;
};

using AlterConfigsRequest = AlterConfigsRequestOf<false>;
using IncrementalAlterConfigsRequest = AlterConfigsRequestOf<true>;

template <class IO, bool Incremental>
void io(IO& io, AlterConfigsRequestOf<Incremental>& m, int16_t /*version*/) {
  io.array(m.resources, [&io](AlterConfigsResource& r) {
    io.int8(r.resource_type);
    io.string(r.resource_name);
    io.array(r.configs, [&io](AlterableConfig& c) {
      io.string(c.name);
      if constexpr (Incremental) io.int8(c.operation);
      io.nullable_string(c.value);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.boolean(m.validate_only);
  io.tagged_fields();
}

struct AlterConfigsResponse {
  int32_t throttle_time_ms = 0;
  std::vector<ResourceResult> responses;
};

template <class IO>
void io(IO& io, AlterConfigsResponse& m, int16_t /*version*/) {
  io.int32(m.throttle_time_ms);
  io.array(m.responses, [&io](ResourceResult& r) {
    io.int16(r.error_code);
    io.nullable_string(r.error_message);
    io.int8(r.resource_type);
    io.string(r.resource_name);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- SaslHandshake (17): versions 0-1, never flexible.

struct SaslHandshakeRequest {
  std::string mechanism;
};

template <class IO>
void io(IO& io, SaslHandshakeRequest& m, int16_t /*version*/) {
  io.string(m.mechanism);
}

struct SaslHandshakeResponse {
  int16_t error_code = 0;
  std::vector<std::string> mechanisms;
};

template <class IO>
void io(IO& io, SaslHandshakeResponse& m, int16_t /*version*/) {
  io.int16(m.error_code);
  io.array(m.mechanisms, [&io](std::string& s) { io.string(s); });
}

// --- SaslAuthenticate (36): versions 0-2, flexible from 2.

struct SaslAuthenticateRequest {
  Bytes auth_bytes;
};

template <class IO>
void io(IO& io, SaslAuthenticateRequest& m, int16_t /*version*/) {
  io.bytes(m.auth_bytes);
  io.tagged_fields();
}

struct SaslAuthenticateResponse {
  int16_t error_code = 0;
  std::optional<std::string> error_message;
  Bytes auth_bytes;
  int64_t session_lifetime_ms = 0;  // v1+
};

template <class IO>
void io(IO& io, SaslAuthenticateResponse& m, int16_t version) {
  io.int16(m.error_code);
  io.nullable_string(m.error_message);
  io.bytes(m.auth_bytes);
  if (version >= 1) io.int64(m.session_lifetime_ms);
  io.tagged_fields();
}

}  // namespace depot::kafka
