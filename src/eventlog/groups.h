#pragma once
// The consumer-group coordinator of Kafka's classic protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), with the rules of Kafka's own GroupCoordinator: rebalances that wait for every
// member to rejoin or for the rebalance timeout, the initial rebalance delay of a new group,
// MEMBER_ID_REQUIRED, static membership, session timeouts, and the checks an offset commit
// must pass. Member metadata and assignments are opaque bytes here, as they are to Kafka.
//
// Single-threaded: the caller serialises every call. Time is the caller's: each entry point takes
// `now_ms`, and tick() expires sessions and rebalances. Joins and syncs that must wait are
// answered through their callbacks, synchronously from within the call that completes them, once
// the coordinator's state is consistent again (a callback may call back into the coordinator).
// No sockets, no wire formats.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"

namespace depot::eventlog {

// Outcomes of group operations are Kafka's error codes: they map one-to-one to the wire.
using ErrorCode = int16_t;
namespace group_error {
inline constexpr ErrorCode kNone = 0;
inline constexpr ErrorCode kCoordinatorNotAvailable = 15;
inline constexpr ErrorCode kIllegalGeneration = 22;
inline constexpr ErrorCode kInconsistentGroupProtocol = 23;
inline constexpr ErrorCode kInvalidGroupId = 24;
inline constexpr ErrorCode kUnknownMemberId = 25;
inline constexpr ErrorCode kInvalidSessionTimeout = 26;
inline constexpr ErrorCode kRebalanceInProgress = 27;
inline constexpr ErrorCode kNonEmptyGroup = 68;
inline constexpr ErrorCode kGroupIdNotFound = 69;
inline constexpr ErrorCode kMemberIdRequired = 79;
inline constexpr ErrorCode kFencedInstanceId = 82;
}  // namespace group_error

// Kafka's group states; Dead is only ever reported, for a group the coordinator does not know.
enum class GroupState { empty, preparing_rebalance, completing_rebalance, stable, dead };
// As Kafka names them in DescribeGroups and ListGroups: "Empty", "PreparingRebalance", ...
std::string_view group_state_name(GroupState state);

struct GroupCoordinatorOptions {
  int32_t min_session_timeout_ms = 6'000;      // group.min.session.timeout.ms
  int32_t max_session_timeout_ms = 1'800'000;  // group.max.session.timeout.ms
  int32_t initial_rebalance_delay_ms = 3'000;  // group.initial.rebalance.delay.ms
  // How long a new member's first JoinGroup may wait (Kafka's NewMemberJoinTimeoutMs): it has
  // no member id yet to heartbeat with, so its session timeout cannot apply.
  int32_t new_member_join_timeout_ms = 300'000;
};

struct ProtocolMetadata {
  std::string name;  // the assignor: "range", "roundrobin", "cooperative-sticky", ...
  Bytes metadata;    // the member's subscription, opaque here

  bool operator==(const ProtocolMetadata&) const = default;
};

struct JoinRequest {
  std::string group_id;
  std::string member_id;  // empty on a member's first join
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;  // JoinGroup v0 has none: pass the session timeout, as Kafka
  std::string protocol_type;         // "consumer" for consumers
  std::vector<ProtocolMetadata> protocols;  // in the member's order of preference
  bool require_known_member_id = false;     // JoinGroup v4+
};

// One member as the leader sees it, to compute the assignment.
struct JoinedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  Bytes metadata;  // for the chosen protocol
};

struct JoinResult {
  ErrorCode error = group_error::kNone;
  int32_t generation_id = -1;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::string leader_id;
  std::string member_id;              // the member's id (the generated one with kMemberIdRequired)
  std::vector<JoinedMember> members;  // the leader's answer only
};
using JoinCallback = std::function<void(JoinResult)>;

struct MemberAssignment {
  std::string member_id;
  Bytes assignment;
};

struct SyncRequest {
  std::string group_id;
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> protocol_type;   // SyncGroup v5+
  std::optional<std::string> protocol_name;   // SyncGroup v5+
  std::vector<MemberAssignment> assignments;  // the leader's; followers send none
};

struct SyncResult {
  ErrorCode error = group_error::kNone;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  Bytes assignment;
};
using SyncCallback = std::function<void(SyncResult)>;

// A member to remove with LeaveGroup: by member id, or (v3+, an administrator) by instance id
// alone with an empty member id.
struct MemberIdentity {
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct LeaveResult {
  ErrorCode error = group_error::kNone;  // for the request as a whole
  std::vector<ErrorCode> members;        // one per MemberIdentity, in order
};

struct MemberDescription {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  Bytes metadata;    // for the group's protocol; empty unless the group is Stable (as Kafka)
  Bytes assignment;  // likewise
};

struct GroupDescription {
  ErrorCode error = group_error::kNone;
  std::string state;  // group_state_name(); "Dead" for an unknown group
  std::string protocol_type;
  std::string protocol;  // the chosen protocol, empty unless the group is Stable (as Kafka)
  int32_t generation_id = 0;
  std::vector<MemberDescription> members;  // in the order they joined
};

struct GroupListing {
  std::string group_id;
  std::string protocol_type;
  std::string state;
};

// What is kept of a group across a restart (Kafka's GroupMetadataValue in __consumer_offsets):
// its generation with the members and assignments of that generation, so that members carry on
// heartbeating after a restart instead of rejoining.
struct GroupMemberMetadata {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t rebalance_timeout_ms = 0;
  int32_t session_timeout_ms = 0;
  Bytes subscription;  // the member's metadata for the group's protocol
  Bytes assignment;

  bool operator==(const GroupMemberMetadata&) const = default;
};

struct GroupMetadata {
  std::string protocol_type;
  int32_t generation_id = 0;
  std::optional<std::string> protocol_name;  // set when there are members
  std::optional<std::string> leader_id;
  std::vector<GroupMemberMetadata> members;  // in the order they joined; none for an Empty group

  bool operator==(const GroupMetadata&) const = default;
};

// Writes a group's metadata where it will be found after a restart. Called under the
// coordinator's serialisation, so it must not call back into the coordinator.
using GroupMetadataWriter = std::function<void(std::string_view group_id, const GroupMetadata&)>;

class GroupCoordinator {
 public:
  explicit GroupCoordinator(GroupCoordinatorOptions options = {});
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  // JoinGroup. `done` is called once, now or when the rebalance completes.
  void join(JoinRequest request, int64_t now_ms, JoinCallback done);
  // SyncGroup. A follower's `done` waits for the leader's assignments.
  void sync(SyncRequest request, int64_t now_ms, SyncCallback done);
  ErrorCode heartbeat(std::string_view group_id, int32_t generation_id, std::string_view member_id,
                      const std::optional<std::string>& group_instance_id, int64_t now_ms);
  LeaveResult leave(std::string_view group_id, const std::vector<MemberIdentity>& members,
                    int64_t now_ms);
  // Removes members whose session expired, completes rebalances whose time is up, and removes
  // members that never synced after a rebalance. Call it often (every 100 ms or so).
  void tick(int64_t now_ms);

  // Whether an OffsetCommit from this member may be written. Generation -1 with no member id is
  // a "simple" commit, accepted (creating the group) while the group has no members.
  ErrorCode validate_commit(std::string_view group_id, int32_t generation_id,
                            std::string_view member_id,
                            const std::optional<std::string>& group_instance_id, int64_t now_ms);

  GroupDescription describe(std::string_view group_id) const;
  std::vector<GroupListing> list() const;  // by group id
  // DeleteGroups: only an Empty group can go. The caller deletes its committed offsets.
  ErrorCode remove_group(std::string_view group_id);
  // Groups are written through `writer` at the points Kafka writes them: when a generation
  // becomes Stable with the leader's assignments, when a static member's new id takes over
  // without a rebalance, and when the last member has gone (Empty, with its generation).
  void persist_with(GroupMetadataWriter writer) { writer_ = std::move(writer); }
  // A group as last written, before a restart: Stable with its members, each with a session
  // that starts at `now_ms`, or Empty when it has none.
  void restore(std::string_view group_id, const GroupMetadata& metadata, int64_t now_ms);
  // Registers a group known only from committed offsets (found in the offset store at start), so
  // that it is listed and described, as Empty, like any other.
  void ensure_group(std::string_view group_id);

 private:
  struct Member;
  struct Group;

  Group* find(std::string_view group_id) const;
  Group& create(std::string_view group_id);
  std::string generate_member_id(std::string_view prefix);
  static bool supports_protocols(const Group* group, const JoinRequest& request);

  void join_new_member(Group& group, JoinRequest& request, int64_t now_ms, JoinCallback& done);
  void join_known_member(Group& group, JoinRequest& request, int64_t now_ms, JoinCallback& done);
  void add_member_and_rebalance(Group& group, const std::string& member_id, JoinRequest& request,
                                int64_t now_ms, JoinCallback& done);
  void update_member_and_rebalance(Group& group, Member& member, JoinRequest& request,
                                   int64_t now_ms, JoinCallback& done);
  void update_static_member_and_rebalance(Group& group, const std::string& old_member_id,
                                          const std::string& new_member_id, JoinRequest& request,
                                          int64_t now_ms, JoinCallback& done);
  void update_member(Group& group, Member& member, JoinRequest& request, JoinCallback& done);
  void maybe_prepare_rebalance(Group& group, int64_t now_ms);
  void prepare_rebalance(Group& group, int64_t now_ms);
  void maybe_complete_join(Group& group, int64_t now_ms);
  void complete_join(Group& group, int64_t now_ms);
  void remove_member_and_update_group(Group& group, const std::string& member_id, int64_t now_ms);
  void remove_member(Group& group, const std::string& member_id);
  void reset_assignments(Group& group, ErrorCode error);
  void expire(Group& group, int64_t now_ms);
  void persist(const Group& group);
  JoinResult current_generation(const Group& group, const Member& member, bool with_members) const;

  // Callbacks wait here until the call that completed them has finished changing state.
  void answer(JoinCallback callback, JoinResult result);
  void answer(SyncCallback callback, SyncResult result);
  void run_answers();

  GroupCoordinatorOptions options_;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups_;
  std::mt19937_64 random_;
  uint64_t next_join_order_ = 0;
  std::deque<std::function<void()>> answers_;
  bool running_answers_ = false;
  GroupMetadataWriter writer_;
};

}  // namespace depot::eventlog
