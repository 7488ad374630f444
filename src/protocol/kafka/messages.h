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

// --- Produce (0): versions 3-11 (RecordBatch v2 only), flexible from 9.

struct ProducePartition {
  int32_t index = 0;
  // The record set as it came, a view of the request's own bytes (decoding copies none of it):
  // valid while they are. To encode, a view of the caller's.
  std::optional<ByteSpan> records;
};

struct ProduceTopic {
  std::string name;
  std::vector<ProducePartition> partitions;
};

struct ProduceRequest {
  std::optional<std::string> transactional_id;  // v3+
  int16_t acks = -1;
  int32_t timeout_ms = 0;
  std::vector<ProduceTopic> topics;
};

template <class IO>
void io(IO& io, ProduceRequest& m, int16_t version) {
  if (version >= 3) io.nullable_string(m.transactional_id);
  io.int16(m.acks);
  io.int32(m.timeout_ms);
  io.array(m.topics, [&io](ProduceTopic& t) {
    io.string(t.name);
    io.array(t.partitions, [&io](ProducePartition& p) {
      io.int32(p.index);
      io.nullable_bytes(p.records);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

struct ProduceRecordError {
  int32_t batch_index = 0;
  std::optional<std::string> message;
};

struct ProducePartitionResponse {
  int32_t index = 0;
  int16_t error_code = 0;
  int64_t base_offset = -1;
  int64_t log_append_time_ms = -1;                // v2+
  int64_t log_start_offset = -1;                  // v5+
  std::vector<ProduceRecordError> record_errors;  // v8+
  std::optional<std::string> error_message;       // v8+
};

struct ProduceTopicResponse {
  std::string name;
  std::vector<ProducePartitionResponse> partitions;
};

struct ProduceResponse {
  std::vector<ProduceTopicResponse> topics;
  int32_t throttle_time_ms = 0;  // v1+
};

template <class IO>
void io(IO& io, ProduceResponse& m, int16_t version) {
  io.array(m.topics, [&io, version](ProduceTopicResponse& t) {
    io.string(t.name);
    io.array(t.partitions, [&io, version](ProducePartitionResponse& p) {
      io.int32(p.index);
      io.int16(p.error_code);
      io.int64(p.base_offset);
      if (version >= 2) io.int64(p.log_append_time_ms);
      if (version >= 5) io.int64(p.log_start_offset);
      if (version >= 8) {
        io.array(p.record_errors, [&io](ProduceRecordError& e) {
          io.int32(e.batch_index);
          io.nullable_string(e.message);
          io.tagged_fields();
        });
        io.nullable_string(p.error_message);
      }
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.tagged_fields();
}

// --- Fetch (1): versions 4-17, flexible from 12, topics by id from 13.

struct FetchPartition {
  int32_t partition = 0;
  int32_t current_leader_epoch = -1;  // v9+
  int64_t fetch_offset = 0;
  int32_t last_fetched_epoch = -1;  // v12+
  int64_t log_start_offset = -1;    // v5+
  int32_t partition_max_bytes = 0;
};

struct FetchTopic {
  std::string topic;  // v0-12
  Uuid topic_id{};    // v13+
  std::vector<FetchPartition> partitions;
};

struct ForgottenTopic {
  std::string topic;  // v7-12
  Uuid topic_id{};    // v13+
  std::vector<int32_t> partitions;
};

struct FetchRequest {
  int32_t replica_id = -1;  // v0-14
  int32_t max_wait_ms = 0;
  int32_t min_bytes = 0;
  int32_t max_bytes = 0x7fffffff;  // v3+
  int8_t isolation_level = 0;      // v4+
  int32_t session_id = 0;          // v7+
  int32_t session_epoch = -1;      // v7+
  std::vector<FetchTopic> topics;
  std::vector<ForgottenTopic> forgotten_topics;  // v7+
  std::string rack_id;                           // v11+
};

template <class IO>
void io(IO& io, FetchRequest& m, int16_t version) {
  if (version <= 14) io.int32(m.replica_id);
  io.int32(m.max_wait_ms);
  io.int32(m.min_bytes);
  if (version >= 3) io.int32(m.max_bytes);
  if (version >= 4) io.int8(m.isolation_level);
  if (version >= 7) {
    io.int32(m.session_id);
    io.int32(m.session_epoch);
  }
  io.array(m.topics, [&io, version](FetchTopic& t) {
    if (version >= 13) {
      io.uuid(t.topic_id);
    } else {
      io.string(t.topic);
    }
    io.array(t.partitions, [&io, version](FetchPartition& p) {
      io.int32(p.partition);
      if (version >= 9) io.int32(p.current_leader_epoch);
      io.int64(p.fetch_offset);
      if (version >= 12) io.int32(p.last_fetched_epoch);
      if (version >= 5) io.int64(p.log_start_offset);
      io.int32(p.partition_max_bytes);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  if (version >= 7) {
    io.array(m.forgotten_topics, [&io, version](ForgottenTopic& t) {
      if (version >= 13) {
        io.uuid(t.topic_id);
      } else {
        io.string(t.topic);
      }
      io.int32_array(t.partitions);
      io.tagged_fields();
    });
  }
  if (version >= 11) io.string(m.rack_id);
  io.tagged_fields();
}

struct AbortedTransaction {
  int64_t producer_id = 0;
  int64_t first_offset = 0;
};

struct FetchPartitionResponse {
  int32_t partition_index = 0;
  int16_t error_code = 0;
  int64_t high_watermark = -1;
  int64_t last_stable_offset = -1;                                      // v4+
  int64_t log_start_offset = -1;                                        // v5+
  std::optional<std::vector<AbortedTransaction>> aborted_transactions;  // v4+
  int32_t preferred_read_replica = -1;                                  // v11+
  std::optional<Bytes> records;
  FileRange records_file;  // the record set as a range of a segment file (encoding only)
};

struct FetchTopicResponse {
  std::string topic;  // v0-12
  Uuid topic_id{};    // v13+
  std::vector<FetchPartitionResponse> partitions;
};

struct FetchResponse {
  int32_t throttle_time_ms = 0;  // v1+
  int16_t error_code = 0;        // v7+
  int32_t session_id = 0;        // v7+
  std::vector<FetchTopicResponse> responses;
};

template <class IO>
void io(IO& io, FetchResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  if (version >= 7) {
    io.int16(m.error_code);
    io.int32(m.session_id);
  }
  io.array(m.responses, [&io, version](FetchTopicResponse& t) {
    if (version >= 13) {
      io.uuid(t.topic_id);
    } else {
      io.string(t.topic);
    }
    io.array(t.partitions, [&io, version](FetchPartitionResponse& p) {
      io.int32(p.partition_index);
      io.int16(p.error_code);
      io.int64(p.high_watermark);
      if (version >= 4) {
        io.int64(p.last_stable_offset);
        if (version >= 5) io.int64(p.log_start_offset);
        io.nullable_array(p.aborted_transactions, [&io](AbortedTransaction& a) {
          io.int64(a.producer_id);
          io.int64(a.first_offset);
          io.tagged_fields();
        });
      }
      if (version >= 11) io.int32(p.preferred_read_replica);
      io.records(p.records, p.records_file);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- ListOffsets (2): versions 1-10, flexible from 6.

// Special timestamps a ListOffsets request may ask for.
inline constexpr int64_t kLatestTimestamp = -1;
inline constexpr int64_t kEarliestTimestamp = -2;
inline constexpr int64_t kMaxTimestamp = -3;            // v7+
inline constexpr int64_t kEarliestLocalTimestamp = -4;  // v8+
inline constexpr int64_t kLatestTieredTimestamp = -5;   // v9+

struct ListOffsetsPartition {
  int32_t partition_index = 0;
  int32_t current_leader_epoch = -1;  // v4+
  int64_t timestamp = 0;
};

struct ListOffsetsTopic {
  std::string name;
  std::vector<ListOffsetsPartition> partitions;
};

struct ListOffsetsRequest {
  int32_t replica_id = -1;
  int8_t isolation_level = 0;  // v2+
  std::vector<ListOffsetsTopic> topics;
  int32_t timeout_ms = 0;  // v10+
};

template <class IO>
void io(IO& io, ListOffsetsRequest& m, int16_t version) {
  io.int32(m.replica_id);
  if (version >= 2) io.int8(m.isolation_level);
  io.array(m.topics, [&io, version](ListOffsetsTopic& t) {
    io.string(t.name);
    io.array(t.partitions, [&io, version](ListOffsetsPartition& p) {
      io.int32(p.partition_index);
      if (version >= 4) io.int32(p.current_leader_epoch);
      io.int64(p.timestamp);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  if (version >= 10) io.int32(m.timeout_ms);
  io.tagged_fields();
}

struct ListOffsetsPartitionResponse {
  int32_t partition_index = 0;
  int16_t error_code = 0;
  int64_t timestamp = -1;
  int64_t offset = -1;
  int32_t leader_epoch = -1;  // v4+
};

struct ListOffsetsTopicResponse {
  std::string name;
  std::vector<ListOffsetsPartitionResponse> partitions;
};

struct ListOffsetsResponse {
  int32_t throttle_time_ms = 0;  // v2+
  std::vector<ListOffsetsTopicResponse> topics;
};

template <class IO>
void io(IO& io, ListOffsetsResponse& m, int16_t version) {
  if (version >= 2) io.int32(m.throttle_time_ms);
  io.array(m.topics, [&io, version](ListOffsetsTopicResponse& t) {
    io.string(t.name);
    io.array(t.partitions, [&io, version](ListOffsetsPartitionResponse& p) {
      io.int32(p.partition_index);
      io.int16(p.error_code);
      io.int64(p.timestamp);
      io.int64(p.offset);
      if (version >= 4) io.int32(p.leader_epoch);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- InitProducerId (22): versions 0-5, flexible from 2.

struct InitProducerIdRequest {
  std::optional<std::string> transactional_id;
  int32_t transaction_timeout_ms = 0;
  int64_t producer_id = -1;     // v3+
  int16_t producer_epoch = -1;  // v3+
};

template <class IO>
void io(IO& io, InitProducerIdRequest& m, int16_t version) {
  io.nullable_string(m.transactional_id);
  io.int32(m.transaction_timeout_ms);
  if (version >= 3) {
    io.int64(m.producer_id);
    io.int16(m.producer_epoch);
  }
  io.tagged_fields();
}

struct InitProducerIdResponse {
  int32_t throttle_time_ms = 0;
  int16_t error_code = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

template <class IO>
void io(IO& io, InitProducerIdResponse& m, int16_t /*version*/) {
  io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  io.int64(m.producer_id);
  io.int16(m.producer_epoch);
  io.tagged_fields();
}

}  // namespace depot::kafka
