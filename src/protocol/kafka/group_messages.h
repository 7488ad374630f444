#pragma once
// The consumer-group APIs' bodies (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups), one field list per
// message for every version the schemas define, as in messages.h.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/kafka/codec.h"

namespace depot::kafka {

// --- FindCoordinator (10): versions 0-6, flexible from 3, batched keys from 4.

struct FindCoordinatorRequest {
  std::string key;                            // v0-3
  int8_t key_type = 0;                        // v1+: 0 group, 1 transaction
  std::vector<std::string> coordinator_keys;  // v4+
};

template <class IO>
void io(IO& io, FindCoordinatorRequest& m, int16_t version) {
  if (version <= 3) io.string(m.key);
  if (version >= 1) io.int8(m.key_type);
  if (version >= 4) io.array(m.coordinator_keys, [&io](std::string& k) { io.string(k); });
  io.tagged_fields();
}

struct Coordinator {
  std::string key;
  int32_t node_id = 0;
  std::string host;
  int32_t port = 0;
  int16_t error_code = 0;
  std::optional<std::string> error_message;
};

struct FindCoordinatorResponse {
  int32_t throttle_time_ms = 0;  // v1+
  // v0-3 answer for one key, in the first entry; v4+ for each.
  std::vector<Coordinator> coordinators;
};

template <class IO>
void io(IO& io, FindCoordinatorResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  if (version <= 3) {
    if constexpr (IO::kDecoding) m.coordinators.resize(1);
    Coordinator& c = m.coordinators.at(0);
    io.int16(c.error_code);
    if (version >= 1) io.nullable_string(c.error_message);
    io.int32(c.node_id);
    io.string(c.host);
    io.int32(c.port);
  } else {
    io.array(m.coordinators, [&io](Coordinator& c) {
      io.string(c.key);
      io.int32(c.node_id);
      io.string(c.host);
      io.int32(c.port);
      io.int16(c.error_code);
      io.nullable_string(c.error_message);
      io.tagged_fields();
    });
  }
  io.tagged_fields();
}

// --- JoinGroup (11): versions 0-9, flexible from 6.

struct JoinGroupProtocol {
  std::string name;
  Bytes metadata;
};

struct JoinGroupRequest {
  std::string group_id;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = -1;  // v1+
  std::string member_id;
  std::optional<std::string> group_instance_id;  // v5+
  std::string protocol_type;
  std::vector<JoinGroupProtocol> protocols;
  std::optional<std::string> reason;  // v8+
};

template <class IO>
void io(IO& io, JoinGroupRequest& m, int16_t version) {
  io.string(m.group_id);
  io.int32(m.session_timeout_ms);
  if (version >= 1) io.int32(m.rebalance_timeout_ms);
  io.string(m.member_id);
  if (version >= 5) io.nullable_string(m.group_instance_id);
  io.string(m.protocol_type);
  io.array(m.protocols, [&io](JoinGroupProtocol& p) {
    io.string(p.name);
    io.bytes(p.metadata);
    io.tagged_fields();
  });
  if (version >= 8) io.nullable_string(m.reason);
  io.tagged_fields();
}

struct JoinGroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;  // v5+
  Bytes metadata;
};

struct JoinGroupResponse {
  int32_t throttle_time_ms = 0;  // v2+
  int16_t error_code = 0;
  int32_t generation_id = -1;
  std::optional<std::string> protocol_type;  // v7+
  std::optional<std::string> protocol_name;  // nullable from v7
  std::string leader;
  bool skip_assignment = false;  // v9+
  std::string member_id;
  std::vector<JoinGroupMember> members;
};

template <class IO>
void io(IO& io, JoinGroupResponse& m, int16_t version) {
  if (version >= 2) io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  io.int32(m.generation_id);
  if (version >= 7) io.nullable_string(m.protocol_type);
  if constexpr (!IO::kDecoding) {
    // Before v7 the name is not nullable: an error answer carries an empty one.
    if (version < 7 && !m.protocol_name) m.protocol_name.emplace();
  }
  io.string(m.protocol_name, version >= 7);
  io.string(m.leader);
  if (version >= 9) io.boolean(m.skip_assignment);
  io.string(m.member_id);
  io.array(m.members, [&io, version](JoinGroupMember& member) {
    io.string(member.member_id);
    if (version >= 5) io.nullable_string(member.group_instance_id);
    io.bytes(member.metadata);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- SyncGroup (14): versions 0-5, flexible from 4.

struct SyncGroupAssignment {
  std::string member_id;
  Bytes assignment;
};

struct SyncGroupRequest {
  std::string group_id;
  int32_t generation_id = 0;
  std::string member_id;
  std::optional<std::string> group_instance_id;  // v3+
  std::optional<std::string> protocol_type;      // v5+
  std::optional<std::string> protocol_name;      // v5+
  std::vector<SyncGroupAssignment> assignments;
};

template <class IO>
void io(IO& io, SyncGroupRequest& m, int16_t version) {
  io.string(m.group_id);
  io.int32(m.generation_id);
  io.string(m.member_id);
  if (version >= 3) io.nullable_string(m.group_instance_id);
  if (version >= 5) {
    io.nullable_string(m.protocol_type);
    io.nullable_string(m.protocol_name);
  }
  io.array(m.assignments, [&io](SyncGroupAssignment& a) {
    io.string(a.member_id);
    io.bytes(a.assignment);
    io.tagged_fields();
  });
  io.tagged_fields();
}

struct SyncGroupResponse {
  int32_t throttle_time_ms = 0;  // v1+
  int16_t error_code = 0;
  std::optional<std::string> protocol_type;  // v5+
  std::optional<std::string> protocol_name;  // v5+
  Bytes assignment;
};

template <class IO>
void io(IO& io, SyncGroupResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  if (version >= 5) {
    io.nullable_string(m.protocol_type);
    io.nullable_string(m.protocol_name);
  }
  io.bytes(m.assignment);
  io.tagged_fields();
}

// --- Heartbeat (12): versions 0-4, flexible from 4.

struct HeartbeatRequest {
  std::string group_id;
  int32_t generation_id = 0;
  std::string member_id;
  std::optional<std::string> group_instance_id;  // v3+
};

template <class IO>
void io(IO& io, HeartbeatRequest& m, int16_t version) {
  io.string(m.group_id);
  io.int32(m.generation_id);
  io.string(m.member_id);
  if (version >= 3) io.nullable_string(m.group_instance_id);
  io.tagged_fields();
}

// Heartbeat's, and any answer that is only an error code (and a throttle time from v1).
struct ErrorOnlyResponse {
  int32_t throttle_time_ms = 0;
  int16_t error_code = 0;
};

template <class IO>
void io(IO& io, ErrorOnlyResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  io.tagged_fields();
}

// --- LeaveGroup (13): versions 0-5, flexible from 4, several members from 3.

struct LeaveGroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> reason;  // v5+
};

struct LeaveGroupRequest {
  std::string group_id;
  std::string member_id;                  // v0-2
  std::vector<LeaveGroupMember> members;  // v3+
};

template <class IO>
void io(IO& io, LeaveGroupRequest& m, int16_t version) {
  io.string(m.group_id);
  if (version <= 2) {
    io.string(m.member_id);
  } else {
    io.array(m.members, [&io, version](LeaveGroupMember& member) {
      io.string(member.member_id);
      io.nullable_string(member.group_instance_id);
      if (version >= 5) io.nullable_string(member.reason);
      io.tagged_fields();
    });
  }
  io.tagged_fields();
}

struct LeaveGroupMemberResponse {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  int16_t error_code = 0;
};

struct LeaveGroupResponse {
  int32_t throttle_time_ms = 0;  // v1+
  int16_t error_code = 0;
  std::vector<LeaveGroupMemberResponse> members;  // v3+
};

template <class IO>
void io(IO& io, LeaveGroupResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  if (version >= 3) {
    io.array(m.members, [&io](LeaveGroupMemberResponse& member) {
      io.string(member.member_id);
      io.nullable_string(member.group_instance_id);
      io.int16(member.error_code);
      io.tagged_fields();
    });
  }
  io.tagged_fields();
}

// --- OffsetCommit (8): versions 0-9, flexible from 8.

struct OffsetCommitPartition {
  int32_t partition_index = 0;
  int64_t committed_offset = 0;
  int32_t committed_leader_epoch = -1;  // v6+
  int64_t commit_timestamp = -1;        // v1 only
  std::optional<std::string> committed_metadata;
};

struct OffsetCommitTopic {
  std::string name;
  std::vector<OffsetCommitPartition> partitions;
};

struct OffsetCommitRequest {
  std::string group_id;
  int32_t generation_id = -1;                    // v1+ (the member epoch in the new protocol)
  std::string member_id;                         // v1+
  std::optional<std::string> group_instance_id;  // v7+
  int64_t retention_time_ms = -1;                // v2-4
  std::vector<OffsetCommitTopic> topics;
};

template <class IO>
void io(IO& io, OffsetCommitRequest& m, int16_t version) {
  io.string(m.group_id);
  if (version >= 1) {
    io.int32(m.generation_id);
    io.string(m.member_id);
  }
  if (version >= 7) io.nullable_string(m.group_instance_id);
  if (version >= 2 && version <= 4) io.int64(m.retention_time_ms);
  io.array(m.topics, [&io, version](OffsetCommitTopic& t) {
    io.string(t.name);
    io.array(t.partitions, [&io, version](OffsetCommitPartition& p) {
      io.int32(p.partition_index);
      io.int64(p.committed_offset);
      if (version >= 6) io.int32(p.committed_leader_epoch);
      if (version == 1) io.int64(p.commit_timestamp);
      io.nullable_string(p.committed_metadata);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

struct PartitionError {
  int32_t partition_index = 0;
  int16_t error_code = 0;
};

struct TopicPartitionErrors {
  std::string name;
  std::vector<PartitionError> partitions;
};

struct OffsetCommitResponse {
  int32_t throttle_time_ms = 0;  // v3+
  std::vector<TopicPartitionErrors> topics;
};

template <class IO>
void io(IO& io, OffsetCommitResponse& m, int16_t version) {
  if (version >= 3) io.int32(m.throttle_time_ms);
  io.array(m.topics, [&io](TopicPartitionErrors& t) {
    io.string(t.name);
    io.array(t.partitions, [&io](PartitionError& p) {
      io.int32(p.partition_index);
      io.int16(p.error_code);
      io.tagged_fields();
    });
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- OffsetFetch (9): versions 0-9, flexible from 6, several groups from 8.

struct OffsetFetchTopic {
  std::string name;
  std::vector<int32_t> partition_indexes;
};

struct OffsetFetchGroup {
  std::string group_id;
  std::optional<std::string> member_id;                 // v9+
  int32_t member_epoch = -1;                            // v9+
  std::optional<std::vector<OffsetFetchTopic>> topics;  // null: every committed partition (v2+)
};

struct OffsetFetchRequest {
  // v0-7 ask for one group; it is read into groups[0]. v8+ ask for several.
  std::vector<OffsetFetchGroup> groups;
  bool require_stable = false;  // v7+
};

template <class IO>
void io(IO& io, OffsetFetchRequest& m, int16_t version) {
  auto topic = [&io](OffsetFetchTopic& t) {
    io.string(t.name);
    io.int32_array(t.partition_indexes);
    io.tagged_fields();
  };
  if (version <= 7) {
    if constexpr (IO::kDecoding) m.groups.resize(1);
    OffsetFetchGroup& g = m.groups.at(0);
    io.string(g.group_id);
    if (version >= 2) {
      io.nullable_array(g.topics, topic);
    } else {
      if constexpr (IO::kDecoding) g.topics.emplace();
      io.array(*g.topics, topic);
    }
  } else {
    io.array(m.groups, [&io, version, &topic](OffsetFetchGroup& g) {
      io.string(g.group_id);
      if (version >= 9) {
        io.nullable_string(g.member_id);
        io.int32(g.member_epoch);
      }
      io.nullable_array(g.topics, topic);
      io.tagged_fields();
    });
  }
  if (version >= 7) io.boolean(m.require_stable);
  io.tagged_fields();
}

struct OffsetFetchPartition {
  int32_t partition_index = 0;
  int64_t committed_offset = -1;
  int32_t committed_leader_epoch = -1;  // v5+
  std::optional<std::string> metadata;
  int16_t error_code = 0;
};

struct OffsetFetchResponseTopic {
  std::string name;
  std::vector<OffsetFetchPartition> partitions;
};

struct OffsetFetchResponseGroup {
  std::string group_id;
  std::vector<OffsetFetchResponseTopic> topics;
  int16_t error_code = 0;  // v2+
};

struct OffsetFetchResponse {
  int32_t throttle_time_ms = 0;  // v3+
  // v0-7 answer for one group, in groups[0]; v8+ for each.
  std::vector<OffsetFetchResponseGroup> groups;
};

template <class IO>
void io(IO& io, OffsetFetchResponse& m, int16_t version) {
  auto topic = [&io, version](OffsetFetchResponseTopic& t) {
    io.string(t.name);
    io.array(t.partitions, [&io, version](OffsetFetchPartition& p) {
      io.int32(p.partition_index);
      io.int64(p.committed_offset);
      if (version >= 5) io.int32(p.committed_leader_epoch);
      io.nullable_string(p.metadata);
      io.int16(p.error_code);
      io.tagged_fields();
    });
    io.tagged_fields();
  };
  if (version >= 3) io.int32(m.throttle_time_ms);
  if (version <= 7) {
    if constexpr (IO::kDecoding) m.groups.resize(1);
    OffsetFetchResponseGroup& g = m.groups.at(0);
    io.array(g.topics, topic);
    if (version >= 2) io.int16(g.error_code);
  } else {
    io.array(m.groups, [&io, &topic](OffsetFetchResponseGroup& g) {
      io.string(g.group_id);
      io.array(g.topics, topic);
      io.int16(g.error_code);
      io.tagged_fields();
    });
  }
  io.tagged_fields();
}

// --- DescribeGroups (15): versions 0-5, flexible from 5.

struct DescribeGroupsRequest {
  std::vector<std::string> groups;
  bool include_authorized_operations = false;  // v3+
};

template <class IO>
void io(IO& io, DescribeGroupsRequest& m, int16_t version) {
  io.array(m.groups, [&io](std::string& g) { io.string(g); });
  if (version >= 3) io.boolean(m.include_authorized_operations);
  io.tagged_fields();
}

struct DescribedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;  // v4+
  std::string client_id;
  std::string client_host;
  Bytes member_metadata;
  Bytes member_assignment;
};

struct DescribedGroup {
  int16_t error_code = 0;
  std::string group_id;
  std::string group_state;
  std::string protocol_type;
  std::string protocol_data;
  std::vector<DescribedMember> members;
  int32_t authorized_operations = INT32_MIN;  // v3+
};

struct DescribeGroupsResponse {
  int32_t throttle_time_ms = 0;  // v1+
  std::vector<DescribedGroup> groups;
};

template <class IO>
void io(IO& io, DescribeGroupsResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.array(m.groups, [&io, version](DescribedGroup& g) {
    io.int16(g.error_code);
    io.string(g.group_id);
    io.string(g.group_state);
    io.string(g.protocol_type);
    io.string(g.protocol_data);
    io.array(g.members, [&io, version](DescribedMember& member) {
      io.string(member.member_id);
      if (version >= 4) io.nullable_string(member.group_instance_id);
      io.string(member.client_id);
      io.string(member.client_host);
      io.bytes(member.member_metadata);
      io.bytes(member.member_assignment);
      io.tagged_fields();
    });
    if (version >= 3) io.int32(g.authorized_operations);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- ListGroups (16): versions 0-5, flexible from 3.

struct ListGroupsRequest {
  std::vector<std::string> states_filter;  // v4+
  std::vector<std::string> types_filter;   // v5+
};

template <class IO>
void io(IO& io, ListGroupsRequest& m, int16_t version) {
  if (version >= 4) io.array(m.states_filter, [&io](std::string& s) { io.string(s); });
  if (version >= 5) io.array(m.types_filter, [&io](std::string& s) { io.string(s); });
  io.tagged_fields();
}

struct ListedGroup {
  std::string group_id;
  std::string protocol_type;
  std::string group_state;  // v4+
  std::string group_type;   // v5+
};

struct ListGroupsResponse {
  int32_t throttle_time_ms = 0;  // v1+
  int16_t error_code = 0;
  std::vector<ListedGroup> groups;
};

template <class IO>
void io(IO& io, ListGroupsResponse& m, int16_t version) {
  if (version >= 1) io.int32(m.throttle_time_ms);
  io.int16(m.error_code);
  io.array(m.groups, [&io, version](ListedGroup& g) {
    io.string(g.group_id);
    io.string(g.protocol_type);
    if (version >= 4) io.string(g.group_state);
    if (version >= 5) io.string(g.group_type);
    io.tagged_fields();
  });
  io.tagged_fields();
}

// --- DeleteGroups (42): versions 0-2, flexible from 2.

struct DeleteGroupsRequest {
  std::vector<std::string> groups_names;
};

template <class IO>
void io(IO& io, DeleteGroupsRequest& m, int16_t /*version*/) {
  io.array(m.groups_names, [&io](std::string& g) { io.string(g); });
  io.tagged_fields();
}

struct DeletableGroupResult {
  std::string group_id;
  int16_t error_code = 0;
};

struct DeleteGroupsResponse {
  int32_t throttle_time_ms = 0;
  std::vector<DeletableGroupResult> results;
};

template <class IO>
void io(IO& io, DeleteGroupsResponse& m, int16_t /*version*/) {
  io.int32(m.throttle_time_ms);
  io.array(m.results, [&io](DeletableGroupResult& r) {
    io.string(r.group_id);
    io.int16(r.error_code);
    io.tagged_fields();
  });
  io.tagged_fields();
}

}  // namespace depot::kafka
