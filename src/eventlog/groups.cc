#include "eventlog/groups.h"

#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

namespace depot::eventlog {

using namespace group_error;

struct GroupCoordinator::Member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<ProtocolMetadata> protocols;
  Bytes assignment;
  JoinCallback awaiting_join;  // set while its JoinGroup waits for the rebalance
  SyncCallback awaiting_sync;  // set while its SyncGroup waits for the leader's
  int64_t session_deadline_ms = 0;
  // Joined but not yet through a rebalance: it has nothing to heartbeat with, so it is held to
  // the new-member join timeout instead of its session timeout.
  bool is_new = false;
  uint64_t join_order = 0;

  const Bytes* metadata_for(const std::string& protocol) const {
    for (const auto& p : protocols) {
      if (p.name == protocol) return &p.metadata;
    }
    return nullptr;
  }
  bool supports(const std::string& protocol) const { return metadata_for(protocol) != nullptr; }
};

struct GroupCoordinator::Group {
  std::string group_id;
  GroupState state = GroupState::empty;
  int32_t generation_id = 0;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::optional<std::string> leader_id;
  std::map<std::string, Member, std::less<>> members;
  std::map<std::string, std::string, std::less<>> static_members;  // instance id -> member id
  // Member ids handed out with MEMBER_ID_REQUIRED, each until its session timeout: a rebalance
  // waits for them too, since they are about to join.
  std::map<std::string, int64_t, std::less<>> pending_members;
  // Members that got the new generation and have not synced yet, until sync_deadline_ms.
  std::set<std::string, std::less<>> pending_sync_members;
  int64_t sync_deadline_ms = -1;

  // The rebalance under way (PreparingRebalance) ends by join_deadline_ms at the latest.
  int64_t join_deadline_ms = -1;
  // A rebalance of an Empty group runs Kafka's InitialDelayedJoin: it never ends early, and while
  // new members keep arriving it extends by the delay until the rebalance timeout is used up.
  bool initial_delay = false;
  int64_t initial_delay_ms = 0;            // the delay now running
  int64_t initial_delay_remaining_ms = 0;  // what is left of the rebalance timeout after it
  bool new_member_added = false;

  Member* member(std::string_view member_id) {
    auto it = members.find(member_id);
    return it == members.end() ? nullptr : &it->second;
  }
  std::vector<Member*> members_in_join_order() {
    std::vector<Member*> out;
    out.reserve(members.size());
    for (auto& [id, m] : members)
      out.push_back(&m);
    std::sort(out.begin(), out.end(),
              [](const Member* a, const Member* b) { return a->join_order < b->join_order; });
    return out;
  }
  std::vector<const Member*> members_in_join_order() const {
    std::vector<const Member*> out;
    out.reserve(members.size());
    for (const auto& [id, m] : members)
      out.push_back(&m);
    std::sort(out.begin(), out.end(),
              [](const Member* a, const Member* b) { return a->join_order < b->join_order; });
    return out;
  }
  bool is_leader(std::string_view member_id) const { return leader_id && *leader_id == member_id; }
  int32_t rebalance_timeout_ms() const {
    int32_t timeout = 0;
    for (const auto& [id, m] : members)
      timeout = std::max(timeout, m.rebalance_timeout_ms);
    return timeout;
  }
  bool all_members_joined() const {
    return pending_members.empty() &&
           std::all_of(members.begin(), members.end(),
                       [](const auto& entry) { return entry.second.awaiting_join != nullptr; });
  }
  // Kafka's supportsProtocols, counting only the other members: a member may change its own
  // protocols when it rejoins.
  bool supports_protocols(std::string_view member_id, const std::string& type,
                          const std::vector<ProtocolMetadata>& protocols) const {
    if (type.empty() || protocols.empty()) return false;
    const bool alone = std::all_of(members.begin(), members.end(),
                                   [&](const auto& entry) { return entry.first == member_id; });
    if (alone) return true;
    if (protocol_type != type) return false;
    return std::any_of(protocols.begin(), protocols.end(), [&](const ProtocolMetadata& p) {
      return std::all_of(members.begin(), members.end(), [&](const auto& entry) {
        return entry.first == member_id || entry.second.supports(p.name);
      });
    });
  }
  // Kafka's selectProtocol: among the protocols every member supports, each member votes for its
  // most preferred, and the most votes win. Ties go to the earliest member's preference.
  std::string select_protocol() const {
    const auto ordered = members_in_join_order();
    if (ordered.empty()) return {};
    std::vector<std::string> candidates;
    for (const auto& p : ordered.front()->protocols) {
      if (std::all_of(ordered.begin(), ordered.end(),
                      [&](const Member* m) { return m->supports(p.name); })) {
        candidates.push_back(p.name);
      }
    }
    // Unreachable while joins check supports_protocols; keep the first member's choice anyway.
    if (candidates.empty()) return ordered.front()->protocols.front().name;
    std::map<std::string, size_t> votes;
    for (const Member* m : ordered) {
      for (const auto& p : m->protocols) {
        if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) {
          ++votes[p.name];
          break;
        }
      }
    }
    std::string chosen = candidates.front();
    for (const auto& c : candidates) {
      if (votes[c] > votes[chosen]) chosen = c;
    }
    return chosen;
  }
};

namespace {

JoinResult join_error(ErrorCode error, std::string member_id) {
  JoinResult result;
  result.error = error;
  result.member_id = std::move(member_id);
  return result;
}

SyncResult sync_error(ErrorCode error) {
  SyncResult result;
  result.error = error;
  return result;
}

// Kafka's rule for the group APIs that coordinate members: a non-empty group id. (Offset commits
// and fetches, DescribeGroups and DeleteGroups accept the empty one, for old clients' sake.)
bool valid_group_id(std::string_view group_id) {
  return !group_id.empty();
}

// A member's own answer to a join or sync it has outstanding, which something else overtook.
// Kafka drops these; depot answers every callback it takes.
constexpr ErrorCode kSuperseded = kRebalanceInProgress;

// Whether the member may commit or heartbeat as `member_id` (Kafka's validateCurrentMember): an
// instance id that now belongs to another member id is fenced.
template <class GroupT>
ErrorCode validate_current_member(const GroupT& group, std::string_view member_id,
                                  const std::optional<std::string>& group_instance_id) {
  if (group_instance_id) {
    auto it = group.static_members.find(*group_instance_id);
    if (it != group.static_members.end() && it->second != member_id) return kFencedInstanceId;
  }
  if (!group.members.contains(member_id)) return kUnknownMemberId;
  return kNone;
}

}  // namespace

std::string_view group_state_name(GroupState state) {
  switch (state) {
    case GroupState::empty:
      return "Empty";
    case GroupState::preparing_rebalance:
      return "PreparingRebalance";
    case GroupState::completing_rebalance:
      return "CompletingRebalance";
    case GroupState::stable:
      return "Stable";
    case GroupState::dead:
      return "Dead";
  }
  return "Dead";
}

GroupCoordinator::GroupCoordinator(GroupCoordinatorOptions options)
    : options_(options), random_(std::random_device{}()) {}

GroupCoordinator::~GroupCoordinator() = default;

GroupCoordinator::Group* GroupCoordinator::find(std::string_view group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : it->second.get();
}

GroupCoordinator::Group& GroupCoordinator::create(std::string_view group_id) {
  auto group = std::make_unique<Group>();
  group->group_id = std::string(group_id);
  return *groups_.emplace(group->group_id, std::move(group)).first->second;
}

// Kafka's "<client id>-<UUID>" (or "<instance id>-<UUID>" for a static member).
std::string GroupCoordinator::generate_member_id(std::string_view prefix) {
  const uint64_t high = (random_() & 0xffffffffffff0fffULL) | 0x4000ULL;  // version 4
  const uint64_t low = (random_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return fmt::format("{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", prefix, high >> 32,
                     (high >> 16) & 0xffff, high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

void GroupCoordinator::answer(JoinCallback callback, JoinResult result) {
  if (!callback) return;
  answers_.push_back([callback = std::move(callback), result = std::move(result)]() mutable {
    callback(std::move(result));
  });
}

void GroupCoordinator::answer(SyncCallback callback, SyncResult result) {
  if (!callback) return;
  answers_.push_back([callback = std::move(callback), result = std::move(result)]() mutable {
    callback(std::move(result));
  });
}

void GroupCoordinator::run_answers() {
  // A callback that calls back into the coordinator queues its own answers behind these; the
  // outermost call runs them all.
  if (running_answers_) return;
  running_answers_ = true;
  while (!answers_.empty()) {
    auto next = std::move(answers_.front());
    answers_.pop_front();
    next();
  }
  running_answers_ = false;
}

// ---- JoinGroup

void GroupCoordinator::join(JoinRequest request, int64_t now_ms, JoinCallback done) {
  if (!valid_group_id(request.group_id)) {
    answer(std::move(done), join_error(kInvalidGroupId, request.member_id));
  } else if (request.session_timeout_ms < options_.min_session_timeout_ms ||
             request.session_timeout_ms > options_.max_session_timeout_ms) {
    answer(std::move(done), join_error(kInvalidSessionTimeout, request.member_id));
  } else {
    Group* group = find(request.group_id);
    if (group == nullptr && !request.member_id.empty()) {
      // A member id names a member of an existing group; this one has gone (or never was).
      answer(std::move(done), join_error(kUnknownMemberId, request.member_id));
    } else if (!supports_protocols(group, request)) {
      answer(std::move(done), join_error(kInconsistentGroupProtocol, request.member_id));
    } else {
      if (group == nullptr) group = &create(request.group_id);
      if (request.member_id.empty()) {
        join_new_member(*group, request, now_ms, done);
      } else {
        join_known_member(*group, request, now_ms, done);
      }
      maybe_complete_join(*group, now_ms);
    }
  }
  run_answers();
}

bool GroupCoordinator::supports_protocols(const Group* group, const JoinRequest& request) {
  if (group == nullptr) return !request.protocol_type.empty() && !request.protocols.empty();
  // A static member back without its member id is checked against the others, like any member.
  std::string_view self = request.member_id;
  if (self.empty() && request.group_instance_id) {
    auto mapped = group->static_members.find(*request.group_instance_id);
    if (mapped != group->static_members.end()) self = mapped->second;
  }
  return group->supports_protocols(self, request.protocol_type, request.protocols);
}

void GroupCoordinator::join_new_member(Group& group, JoinRequest& request, int64_t now_ms,
                                       JoinCallback& done) {
  if (request.group_instance_id) {
    const std::string member_id = generate_member_id(*request.group_instance_id);
    auto known = group.static_members.find(*request.group_instance_id);
    if (known != group.static_members.end()) {
      const std::string old_member_id = known->second;
      update_static_member_and_rebalance(group, old_member_id, member_id, request, now_ms, done);
    } else {
      add_member_and_rebalance(group, member_id, request, now_ms, done);
    }
  } else if (request.require_known_member_id) {
    // The client must come back with this id (JoinGroup v4+), so that a join whose answer was
    // lost does not leave a member behind that nobody will ever heartbeat for.
    const std::string member_id = generate_member_id(request.client_id);
    group.pending_members[member_id] = now_ms + request.session_timeout_ms;
    answer(std::move(done), join_error(kMemberIdRequired, member_id));
  } else {
    add_member_and_rebalance(group, generate_member_id(request.client_id), request, now_ms, done);
  }
}

void GroupCoordinator::join_known_member(Group& group, JoinRequest& request, int64_t now_ms,
                                         JoinCallback& done) {
  const std::string& member_id = request.member_id;
  if (auto pending = group.pending_members.find(member_id);
      pending != group.pending_members.end()) {
    // Back with the id MEMBER_ID_REQUIRED gave it. Such ids are only ever dynamic.
    if (request.group_instance_id) {
      answer(std::move(done), join_error(kUnknownMemberId, member_id));
      return;
    }
    group.pending_members.erase(pending);
    add_member_and_rebalance(group, member_id, request, now_ms, done);
    return;
  }
  const ErrorCode invalid = validate_current_member(group, member_id, request.group_instance_id);
  const bool unknown_instance =
      request.group_instance_id && !group.static_members.contains(*request.group_instance_id);
  if (invalid != kNone || unknown_instance) {
    answer(std::move(done), join_error(invalid != kNone ? invalid : kUnknownMemberId, member_id));
    return;
  }
  Member& member = *group.member(member_id);
  member.session_deadline_ms = now_ms + member.session_timeout_ms;
  switch (group.state) {
    case GroupState::preparing_rebalance:
      update_member_and_rebalance(group, member, request, now_ms, done);
      break;
    case GroupState::completing_rebalance:
      // The same metadata again: most likely the join's answer was lost, so repeat it.
      if (member.protocols == request.protocols) {
        answer(std::move(done), current_generation(group, member, group.is_leader(member_id)));
      } else {
        update_member_and_rebalance(group, member, request, now_ms, done);
      }
      break;
    case GroupState::stable:
      // A rejoining leader forces a rebalance: that is how it reacts to changes the metadata does
      // not show (new partitions of a subscribed topic). A follower with unchanged metadata just
      // gets the current generation back.
      if (group.is_leader(member_id) || member.protocols != request.protocols) {
        update_member_and_rebalance(group, member, request, now_ms, done);
      } else {
        answer(std::move(done), current_generation(group, member, false));
      }
      break;
    case GroupState::empty:
    case GroupState::dead:
      answer(std::move(done), join_error(kUnknownMemberId, member_id));
      break;
  }
}

void GroupCoordinator::add_member_and_rebalance(Group& group, const std::string& member_id,
                                                JoinRequest& request, int64_t now_ms,
                                                JoinCallback& done) {
  if (group.state == GroupState::preparing_rebalance && group.generation_id == 0) {
    group.new_member_added = true;
  }
  if (group.members.empty()) group.protocol_type = request.protocol_type;
  Member member;
  member.member_id = member_id;
  member.group_instance_id = request.group_instance_id;
  member.client_id = std::move(request.client_id);
  member.client_host = std::move(request.client_host);
  member.session_timeout_ms = request.session_timeout_ms;
  member.rebalance_timeout_ms = request.rebalance_timeout_ms;
  member.protocol_type = std::move(request.protocol_type);
  member.protocols = std::move(request.protocols);
  member.awaiting_join = std::move(done);
  member.session_deadline_ms = now_ms + options_.new_member_join_timeout_ms;
  member.is_new = true;
  member.join_order = next_join_order_++;
  group.members.emplace(member_id, std::move(member));
  if (request.group_instance_id) group.static_members[*request.group_instance_id] = member_id;
  if (!group.leader_id) group.leader_id = member_id;
  maybe_prepare_rebalance(group, now_ms);
}

void GroupCoordinator::update_member(Group& group, Member& member, JoinRequest& request,
                                     JoinCallback& done) {
  if (group.members.size() == 1) group.protocol_type = request.protocol_type;
  member.protocol_type = std::move(request.protocol_type);
  member.protocols = std::move(request.protocols);
  member.session_timeout_ms = request.session_timeout_ms;
  member.rebalance_timeout_ms = request.rebalance_timeout_ms;
  answer(std::exchange(member.awaiting_join, nullptr), join_error(kSuperseded, member.member_id));
  member.awaiting_join = std::move(done);
}

void GroupCoordinator::update_member_and_rebalance(Group& group, Member& member,
                                                   JoinRequest& request, int64_t now_ms,
                                                   JoinCallback& done) {
  update_member(group, member, request, done);
  maybe_prepare_rebalance(group, now_ms);
}

// A static member back under a new member id (it restarted): the new id takes over the member,
// fencing the old one, whose outstanding join or sync is answered FENCED_INSTANCE_ID.
void GroupCoordinator::update_static_member_and_rebalance(Group& group,
                                                          const std::string& old_member_id,
                                                          const std::string& new_member_id,
                                                          JoinRequest& request, int64_t now_ms,
                                                          JoinCallback& done) {
  const std::string previous_leader = group.leader_id.value_or("");
  auto node = group.members.extract(old_member_id);
  Member& moved = node.mapped();
  answer(std::exchange(moved.awaiting_join, nullptr), join_error(kFencedInstanceId, old_member_id));
  answer(std::exchange(moved.awaiting_sync, nullptr), sync_error(kFencedInstanceId));
  moved.member_id = new_member_id;
  node.key() = new_member_id;
  Member& member = group.members.insert(std::move(node)).position->second;
  group.static_members[*request.group_instance_id] = new_member_id;
  if (group.is_leader(old_member_id)) group.leader_id = new_member_id;
  if (group.pending_sync_members.erase(old_member_id) > 0) {
    group.pending_sync_members.insert(new_member_id);
  }
  member.client_id = request.client_id;
  member.client_host = request.client_host;
  member.session_deadline_ms = now_ms + request.session_timeout_ms;

  const bool metadata_unchanged = member.protocols == request.protocols;
  update_member(group, member, request, done);
  switch (group.state) {
    case GroupState::stable:
      if (metadata_unchanged && group.protocol_name == group.select_protocol()) {
        // No rebalance: the member gets the current generation and syncs for its assignment.
        // The leader named is the previous leader's id, so that a static leader coming back does
        // not compute an assignment a Stable group would never hand out (Kafka does the same).
        JoinResult result = current_generation(group, member, false);
        result.leader_id = previous_leader;
        answer(std::exchange(member.awaiting_join, nullptr), std::move(result));
        persist(group);
      } else {
        maybe_prepare_rebalance(group, now_ms);
      }
      break;
    case GroupState::completing_rebalance:
      // The leader may be assigning to the old member id: that assignment would reach no one.
      prepare_rebalance(group, now_ms);
      break;
    case GroupState::preparing_rebalance:
    case GroupState::empty:
    case GroupState::dead:
      break;
  }
}

JoinResult GroupCoordinator::current_generation(const Group& group, const Member& member,
                                                bool with_members) const {
  JoinResult result;
  result.generation_id = group.generation_id;
  result.protocol_type = group.protocol_type;
  result.protocol_name = group.protocol_name;
  result.leader_id = group.leader_id.value_or("");
  result.member_id = member.member_id;
  if (with_members && group.protocol_name) {
    for (const Member* m : group.members_in_join_order()) {
      const Bytes* metadata = m->metadata_for(*group.protocol_name);
      result.members.push_back(
          {m->member_id, m->group_instance_id, metadata ? *metadata : Bytes{}});
    }
  }
  return result;
}

// ---- Rebalancing

void GroupCoordinator::maybe_prepare_rebalance(Group& group, int64_t now_ms) {
  if (group.state == GroupState::stable || group.state == GroupState::completing_rebalance ||
      group.state == GroupState::empty) {
    prepare_rebalance(group, now_ms);
  }
}

void GroupCoordinator::prepare_rebalance(Group& group, int64_t now_ms) {
  if (group.state == GroupState::completing_rebalance)
    reset_assignments(group, kRebalanceInProgress);
  group.pending_sync_members.clear();
  group.sync_deadline_ms = -1;
  const int64_t rebalance_timeout = group.rebalance_timeout_ms();
  if (group.state == GroupState::empty) {
    group.initial_delay = true;
    group.initial_delay_ms = options_.initial_rebalance_delay_ms;
    group.initial_delay_remaining_ms =
        std::max<int64_t>(rebalance_timeout - group.initial_delay_ms, 0);
    group.join_deadline_ms = now_ms + group.initial_delay_ms;
  } else {
    group.initial_delay = false;
    group.join_deadline_ms = now_ms + rebalance_timeout;
  }
  group.new_member_added = false;
  group.state = GroupState::preparing_rebalance;
  maybe_complete_join(group, now_ms);
}

void GroupCoordinator::maybe_complete_join(Group& group, int64_t now_ms) {
  if (group.state != GroupState::preparing_rebalance) return;
  if (now_ms >= group.join_deadline_ms) {
    if (group.initial_delay && group.new_member_added && group.initial_delay_remaining_ms > 0) {
      // Members are still arriving: wait a little longer for the rest of them.
      group.new_member_added = false;
      const int64_t delay =
          std::min<int64_t>(options_.initial_rebalance_delay_ms, group.initial_delay_remaining_ms);
      group.initial_delay_remaining_ms =
          std::max<int64_t>(group.initial_delay_remaining_ms - group.initial_delay_ms, 0);
      group.initial_delay_ms = delay;
      group.join_deadline_ms = now_ms + delay;
      return;
    }
    complete_join(group, now_ms);
  } else if (!group.initial_delay && group.all_members_joined()) {
    complete_join(group, now_ms);
  }
}

void GroupCoordinator::complete_join(Group& group, int64_t now_ms) {
  // Dynamic members that did not rejoin in time are gone; static ones stay, held to their
  // session timeout, since they are expected back under the same instance id.
  std::vector<std::string> missing;
  for (const auto& [id, m] : group.members) {
    if (!m.awaiting_join && !m.group_instance_id) missing.push_back(id);
  }
  for (const auto& id : missing)
    remove_member(group, id);

  // The leader must be among those that rejoined, since it is the one to assign.
  if (!group.members.empty()) {
    const Member* leader = group.leader_id ? group.member(*group.leader_id) : nullptr;
    if (leader == nullptr || !leader->awaiting_join) {
      group.leader_id.reset();
      for (const Member* m : group.members_in_join_order()) {
        if (m->awaiting_join) {
          group.leader_id = m->member_id;
          break;
        }
      }
    }
    if (!group.leader_id) {
      // Only static members that have not rejoined: wait another rebalance timeout for them to
      // come back or for their sessions to expire.
      group.initial_delay = false;
      group.join_deadline_ms = now_ms + group.rebalance_timeout_ms();
      return;
    }
  }

  group.generation_id++;
  group.pending_sync_members.clear();
  group.join_deadline_ms = -1;
  group.initial_delay = false;
  if (group.members.empty()) {
    group.protocol_name.reset();
    group.state = GroupState::empty;
    persist(group);
    return;
  }
  group.protocol_name = group.select_protocol();
  group.state = GroupState::completing_rebalance;
  for (Member* m : group.members_in_join_order()) {
    // Only joins that are waiting get an answer: a static member that has not rejoined gets the
    // generation when it does.
    if (m->awaiting_join) {
      answer(std::exchange(m->awaiting_join, nullptr),
             current_generation(group, *m, group.is_leader(m->member_id)));
    }
    m->session_deadline_ms = now_ms + m->session_timeout_ms;
    m->is_new = false;
    group.pending_sync_members.insert(m->member_id);
  }
  group.sync_deadline_ms = now_ms + group.rebalance_timeout_ms();
}

// Members lose their assignments and their waiting syncs are answered with `error`.
void GroupCoordinator::reset_assignments(Group& group, ErrorCode error) {
  for (Member* m : group.members_in_join_order()) {
    m->assignment.clear();
    answer(std::exchange(m->awaiting_sync, nullptr), sync_error(error));
  }
}

// Takes the member out of the group, answering whatever it has outstanding, with no change of
// state.
void GroupCoordinator::remove_member(Group& group, const std::string& member_id) {
  auto it = group.members.find(member_id);
  if (it == group.members.end()) return;
  Member& member = it->second;
  // An empty member id tells the client to join afresh, if it is still there.
  answer(std::exchange(member.awaiting_join, nullptr), join_error(kUnknownMemberId, ""));
  answer(std::exchange(member.awaiting_sync, nullptr), sync_error(kUnknownMemberId));
  if (member.group_instance_id) {
    auto mapped = group.static_members.find(*member.group_instance_id);
    if (mapped != group.static_members.end() && mapped->second == member_id) {
      group.static_members.erase(mapped);
    }
  }
  group.pending_sync_members.erase(member_id);
  group.members.erase(it);
  if (group.is_leader(member_id)) {
    group.leader_id.reset();
    const auto remaining = group.members_in_join_order();
    if (!remaining.empty()) group.leader_id = remaining.front()->member_id;
  }
}

void GroupCoordinator::remove_member_and_update_group(Group& group, const std::string& member_id,
                                                      int64_t now_ms) {
  remove_member(group, member_id);
  switch (group.state) {
    case GroupState::stable:
    case GroupState::completing_rebalance:
      maybe_prepare_rebalance(group, now_ms);
      break;
    case GroupState::preparing_rebalance:
      maybe_complete_join(group, now_ms);
      break;
    case GroupState::empty:
    case GroupState::dead:
      break;
  }
}

// ---- SyncGroup, Heartbeat, LeaveGroup

void GroupCoordinator::sync(SyncRequest request, int64_t now_ms, SyncCallback done) {
  Group* group = find(request.group_id);
  const auto invalid = [&]() -> ErrorCode {
    if (!valid_group_id(request.group_id)) return kInvalidGroupId;
    if (group == nullptr) return kUnknownMemberId;
    if (ErrorCode error =
            validate_current_member(*group, request.member_id, request.group_instance_id);
        error != kNone) {
      return error;
    }
    if (request.generation_id != group->generation_id) return kIllegalGeneration;
    if ((request.protocol_type && request.protocol_type != group->protocol_type) ||
        (request.protocol_name && request.protocol_name != group->protocol_name)) {
      return kInconsistentGroupProtocol;
    }
    if (group->state == GroupState::empty) return kUnknownMemberId;
    if (group->state == GroupState::preparing_rebalance) return kRebalanceInProgress;
    return kNone;
  }();
  if (invalid != kNone) {
    answer(std::move(done), sync_error(invalid));
    run_answers();
    return;
  }

  Member& member = *group->member(request.member_id);
  member.session_deadline_ms = now_ms + member.session_timeout_ms;
  group->pending_sync_members.erase(request.member_id);
  if (group->pending_sync_members.empty()) group->sync_deadline_ms = -1;
  if (group->state == GroupState::stable) {
    answer(std::move(done),
           SyncResult{kNone, group->protocol_type, group->protocol_name, member.assignment});
    run_answers();
    return;
  }

  // CompletingRebalance: everyone waits for the leader's assignments.
  answer(std::exchange(member.awaiting_sync, nullptr), sync_error(kSuperseded));
  member.awaiting_sync = std::move(done);
  if (group->is_leader(request.member_id)) {
    std::map<std::string, Bytes, std::less<>> assignments;
    for (auto& a : request.assignments)
      assignments[a.member_id] = std::move(a.assignment);
    for (Member* m : group->members_in_join_order()) {
      auto it = assignments.find(m->member_id);
      m->assignment = it == assignments.end() ? Bytes{} : std::move(it->second);
      if (m->awaiting_sync) {
        answer(std::exchange(m->awaiting_sync, nullptr),
               SyncResult{kNone, group->protocol_type, group->protocol_name, m->assignment});
        // Its session may have run out while it waited; it starts afresh now.
        m->session_deadline_ms = now_ms + m->session_timeout_ms;
      }
    }
    group->state = GroupState::stable;
    persist(*group);
  }
  run_answers();
}

ErrorCode GroupCoordinator::heartbeat(std::string_view group_id, int32_t generation_id,
                                      std::string_view member_id,
                                      const std::optional<std::string>& group_instance_id,
                                      int64_t now_ms) {
  if (!valid_group_id(group_id)) return kInvalidGroupId;
  Group* group = find(group_id);
  if (group == nullptr) return kUnknownMemberId;
  if (ErrorCode invalid = validate_current_member(*group, member_id, group_instance_id);
      invalid != kNone) {
    return invalid;
  }
  if (generation_id != group->generation_id) return kIllegalGeneration;
  if (group->state == GroupState::empty) return kUnknownMemberId;
  Member& member = *group->member(member_id);
  member.session_deadline_ms = now_ms + member.session_timeout_ms;
  // Members heartbeat while they wait for the leader's sync: that is no reason to rejoin.
  return group->state == GroupState::preparing_rebalance ? kRebalanceInProgress : kNone;
}

LeaveResult GroupCoordinator::leave(std::string_view group_id,
                                    const std::vector<MemberIdentity>& members, int64_t now_ms) {
  LeaveResult result;
  if (!valid_group_id(group_id)) {
    result.error = kInvalidGroupId;
    return result;
  }
  Group* group = find(group_id);
  for (const MemberIdentity& leaving : members) {
    ErrorCode error = kNone;
    if (group == nullptr) {
      error = kUnknownMemberId;
    } else if (leaving.member_id.empty()) {
      // An administrator removing a static member by its instance id alone.
      auto mapped = leaving.group_instance_id
                        ? group->static_members.find(*leaving.group_instance_id)
                        : group->static_members.end();
      if (mapped == group->static_members.end()) {
        error = kUnknownMemberId;
      } else {
        const std::string member_id = mapped->second;
        remove_member_and_update_group(*group, member_id, now_ms);
      }
    } else if (group->pending_members.erase(leaving.member_id) > 0) {
      maybe_complete_join(*group, now_ms);
    } else {
      error = validate_current_member(*group, leaving.member_id, leaving.group_instance_id);
      if (error == kNone) remove_member_and_update_group(*group, leaving.member_id, now_ms);
    }
    result.members.push_back(error);
  }
  run_answers();
  return result;
}

// ---- Time

void GroupCoordinator::tick(int64_t now_ms) {
  for (auto& [id, group] : groups_)
    expire(*group, now_ms);
  run_answers();
}

void GroupCoordinator::expire(Group& group, int64_t now_ms) {
  const size_t pending_before = group.pending_members.size();
  std::erase_if(group.pending_members, [&](const auto& entry) { return now_ms >= entry.second; });
  if (group.pending_members.size() != pending_before) maybe_complete_join(group, now_ms);

  // A member waiting for a rebalance to finish cannot heartbeat and is not expired for it, unless
  // it is a new member past the new-member join timeout.
  std::vector<std::string> expired;
  for (const auto& [member_id, m] : group.members) {
    const bool waiting = !m.is_new && (m.awaiting_join || m.awaiting_sync);
    if (now_ms >= m.session_deadline_ms && !waiting) expired.push_back(member_id);
  }
  for (const auto& member_id : expired)
    remove_member_and_update_group(group, member_id, now_ms);

  maybe_complete_join(group, now_ms);

  // Members that got the new generation but never synced hold the whole group up: drop them.
  if ((group.state == GroupState::completing_rebalance || group.state == GroupState::stable) &&
      group.sync_deadline_ms >= 0 && now_ms >= group.sync_deadline_ms) {
    const std::vector<std::string> unsynced(group.pending_sync_members.begin(),
                                            group.pending_sync_members.end());
    group.sync_deadline_ms = -1;
    if (!unsynced.empty()) {
      for (const auto& member_id : unsynced)
        remove_member(group, member_id);
      prepare_rebalance(group, now_ms);
    }
  }
}

// ---- Offset commits

ErrorCode GroupCoordinator::validate_commit(std::string_view group_id, int32_t generation_id,
                                            std::string_view member_id,
                                            const std::optional<std::string>& group_instance_id,
                                            int64_t now_ms) {
  Group* group = find(group_id);
  const bool simple = generation_id < 0 && member_id.empty() && !group_instance_id;
  if (group == nullptr) {
    // No group at all: only a commit outside group management can be right.
    if (generation_id >= 0) return kIllegalGeneration;
    if (!simple) return kUnknownMemberId;
    ensure_group(group_id);
    return kNone;
  }
  if (simple) return group->state == GroupState::empty ? kNone : kUnknownMemberId;
  if (ErrorCode invalid = validate_current_member(*group, member_id, group_instance_id);
      invalid != kNone) {
    return invalid;
  }
  if (generation_id != group->generation_id) return kIllegalGeneration;
  // A member that has its generation but not yet its assignment has nothing to commit. During
  // PreparingRebalance commits still go through: the heartbeat tells the member to rejoin.
  if (group->state == GroupState::completing_rebalance) return kRebalanceInProgress;
  Member& member = *group->member(member_id);
  member.session_deadline_ms = now_ms + member.session_timeout_ms;
  return kNone;
}

// ---- Introspection

GroupDescription GroupCoordinator::describe(std::string_view group_id) const {
  GroupDescription description;
  const Group* group = find(group_id);
  if (group == nullptr) {
    description.state = std::string(group_state_name(GroupState::dead));
    return description;
  }
  const bool stable = group->state == GroupState::stable;
  description.state = std::string(group_state_name(group->state));
  description.protocol_type = group->protocol_type.value_or("");
  description.protocol = stable ? group->protocol_name.value_or("") : "";
  description.generation_id = group->generation_id;
  for (const Member* m : group->members_in_join_order()) {
    MemberDescription member{
        m->member_id, m->group_instance_id, m->client_id, m->client_host, {}, {}};
    if (stable) {
      if (const Bytes* metadata = m->metadata_for(*group->protocol_name))
        member.metadata = *metadata;
      member.assignment = m->assignment;
    }
    description.members.push_back(std::move(member));
  }
  return description;
}

std::vector<GroupListing> GroupCoordinator::list() const {
  std::vector<GroupListing> out;
  out.reserve(groups_.size());
  for (const auto& [id, group] : groups_) {
    out.push_back(
        {id, group->protocol_type.value_or(""), std::string(group_state_name(group->state))});
  }
  return out;
}

ErrorCode GroupCoordinator::remove_group(std::string_view group_id) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return kGroupIdNotFound;
  if (it->second->state != GroupState::empty) return kNonEmptyGroup;
  groups_.erase(it);
  return kNone;
}

// ---- Across restarts

void GroupCoordinator::persist(const Group& group) {
  if (!writer_) return;
  GroupMetadata metadata;
  metadata.protocol_type = group.protocol_type.value_or("");
  metadata.generation_id = group.generation_id;
  metadata.protocol_name = group.protocol_name;
  metadata.leader_id = group.leader_id;
  for (const Member* m : group.members_in_join_order()) {
    const Bytes* subscription =
        group.protocol_name ? m->metadata_for(*group.protocol_name) : nullptr;
    metadata.members.push_back({m->member_id, m->group_instance_id, m->client_id, m->client_host,
                                m->rebalance_timeout_ms, m->session_timeout_ms,
                                subscription ? *subscription : Bytes{}, m->assignment});
  }
  writer_(group.group_id, metadata);
}

void GroupCoordinator::restore(std::string_view group_id, const GroupMetadata& metadata,
                               int64_t now_ms) {
  groups_.erase(std::string(group_id));
  Group& group = create(group_id);
  group.generation_id = metadata.generation_id;
  if (!metadata.protocol_type.empty()) group.protocol_type = metadata.protocol_type;
  if (metadata.members.empty() || !metadata.protocol_name) return;  // Empty
  group.protocol_name = metadata.protocol_name;
  for (const GroupMemberMetadata& m : metadata.members) {
    Member member;
    member.member_id = m.member_id;
    member.group_instance_id = m.group_instance_id;
    member.client_id = m.client_id;
    member.client_host = m.client_host;
    member.session_timeout_ms = m.session_timeout_ms;
    member.rebalance_timeout_ms = m.rebalance_timeout_ms;
    member.protocol_type = metadata.protocol_type;
    member.protocols = {{*metadata.protocol_name, m.subscription}};
    member.assignment = m.assignment;
    member.session_deadline_ms = now_ms + m.session_timeout_ms;
    member.join_order = next_join_order_++;
    if (m.group_instance_id) group.static_members[*m.group_instance_id] = m.member_id;
    group.members.emplace(m.member_id, std::move(member));
  }
  group.leader_id = metadata.leader_id;
  if (!group.leader_id || !group.members.contains(*group.leader_id))
    group.leader_id = metadata.members.front().member_id;
  group.state = GroupState::stable;
}

void GroupCoordinator::ensure_group(std::string_view group_id) {
  if (find(group_id) == nullptr) create(group_id);
}

}  // namespace depot::eventlog
