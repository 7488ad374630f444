// The consumer-group coordinator: Kafka's classic rebalance protocol driven by a clock the test
// holds (every call takes the time), with joins and syncs answered through callbacks.
#include "eventlog/groups.h"

#include <gtest/gtest.h>

namespace depot::eventlog {
namespace {

using namespace group_error;

Bytes bytes(std::string_view text) {
  auto span = as_bytes(text);
  return Bytes(span.begin(), span.end());
}

// What a callback was given, and how many times it was called (exactly once is the contract).
template <class Result>
struct Answer {
  std::optional<Result> result;
  int calls = 0;

  bool ready() const { return calls > 0; }
  const Result* operator->() const { return &*result; }
};

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  static GroupCoordinatorOptions options(int32_t initial_rebalance_delay_ms = 0) {
    GroupCoordinatorOptions o;
    o.min_session_timeout_ms = 100;
    o.max_session_timeout_ms = 1'000'000;
    o.initial_rebalance_delay_ms = initial_rebalance_delay_ms;
    return o;
  }

  static JoinRequest request(const std::string& client_id, std::string member_id = "",
                             std::vector<ProtocolMetadata> protocols = {}) {
    JoinRequest r;
    r.group_id = "orders";
    r.member_id = std::move(member_id);
    r.client_id = client_id;
    r.client_host = "/127.0.0.1";
    r.session_timeout_ms = 10'000;
    r.rebalance_timeout_ms = 5'000;
    r.protocol_type = "consumer";
    r.protocols = protocols.empty()
                      ? std::vector<ProtocolMetadata>{{"range", bytes("subscription:" + client_id)}}
                      : std::move(protocols);
    return r;
  }

  std::shared_ptr<Answer<JoinResult>> join(JoinRequest r, int64_t now_ms) {
    auto answer = std::make_shared<Answer<JoinResult>>();
    coordinator_->join(std::move(r), now_ms, [answer](JoinResult result) {
      answer->result = std::move(result);
      answer->calls++;
    });
    return answer;
  }

  std::shared_ptr<Answer<SyncResult>> sync(std::string member_id, int32_t generation,
                                           int64_t now_ms,
                                           std::vector<MemberAssignment> assignments = {},
                                           std::optional<std::string> instance = {}) {
    SyncRequest r;
    r.group_id = "orders";
    r.generation_id = generation;
    r.member_id = std::move(member_id);
    r.group_instance_id = std::move(instance);
    r.assignments = std::move(assignments);
    auto answer = std::make_shared<Answer<SyncResult>>();
    coordinator_->sync(std::move(r), now_ms, [answer](SyncResult result) {
      answer->result = std::move(result);
      answer->calls++;
    });
    return answer;
  }

  ErrorCode heartbeat(const std::string& member_id, int32_t generation, int64_t now_ms,
                      const std::optional<std::string>& instance = {}) {
    return coordinator_->heartbeat("orders", generation, member_id, instance, now_ms);
  }

  std::string state() const { return coordinator_->describe("orders").state; }

  // Two dynamic members "a" and "b" through a first rebalance and sync, at time 0: generation 1,
  // "a" the leader with assignment "a-parts", "b" with "b-parts".
  std::pair<std::string, std::string> stable_pair(JoinRequest a = request("a"),
                                                  JoinRequest b = request("b")) {
    coordinator_ = std::make_unique<GroupCoordinator>(options(100));
    record_writes();
    auto joined_a = join(std::move(a), 0);
    auto joined_b = join(std::move(b), 0);
    coordinator_->tick(100);  // b joined during the initial delay, which starts over
    coordinator_->tick(1'000);
    EXPECT_TRUE(joined_a->ready() && joined_b->ready());
    const std::string a_id = joined_a->result->member_id;
    const std::string b_id = joined_b->result->member_id;
    auto synced_b = sync(b_id, 1, 1'000);
    auto synced_a = sync(a_id, 1, 1'000, {{a_id, bytes("a-parts")}, {b_id, bytes("b-parts")}});
    EXPECT_TRUE(synced_a->ready() && synced_b->ready());
    EXPECT_EQ(state(), "Stable");
    return {a_id, b_id};
  }

  // Keeps what the coordinator writes for a restart in written_.
  void record_writes() {
    coordinator_->persist_with([this](std::string_view group, const GroupMetadata& metadata) {
      written_.emplace_back(std::string(group), metadata);
    });
  }

  std::unique_ptr<GroupCoordinator> coordinator_ = std::make_unique<GroupCoordinator>(options());
  std::vector<std::pair<std::string, GroupMetadata>> written_;
};

TEST_F(GroupCoordinatorTest, TwoMembersJoinOneGenerationAndGetTheLeadersAssignments) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  auto a = join(request("a"), 0);
  auto b = join(request("b"), 10);
  EXPECT_FALSE(a->ready());
  EXPECT_FALSE(b->ready());
  EXPECT_EQ(state(), "PreparingRebalance");
  coordinator_->tick(100);  // b joined during the initial delay: it starts over
  EXPECT_FALSE(a->ready());
  coordinator_->tick(200);
  ASSERT_EQ(a->calls, 1);
  ASSERT_EQ(b->calls, 1);

  EXPECT_EQ(a->result->error, kNone);
  EXPECT_EQ(b->result->error, kNone);
  EXPECT_EQ(a->result->generation_id, 1);
  EXPECT_EQ(b->result->generation_id, 1);
  EXPECT_EQ(a->result->protocol_type, "consumer");
  EXPECT_EQ(a->result->protocol_name, "range");
  const std::string a_id = a->result->member_id;
  const std::string b_id = b->result->member_id;
  EXPECT_TRUE(a_id.starts_with("a-")) << a_id;
  EXPECT_TRUE(b_id.starts_with("b-")) << b_id;
  EXPECT_NE(a_id, b_id);
  // The first to join leads, and only the leader is told the members.
  EXPECT_EQ(a->result->leader_id, a_id);
  EXPECT_EQ(b->result->leader_id, a_id);
  ASSERT_EQ(a->result->members.size(), 2u);
  EXPECT_EQ(a->result->members[0].member_id, a_id);
  EXPECT_EQ(a->result->members[0].metadata, bytes("subscription:a"));
  EXPECT_EQ(a->result->members[1].member_id, b_id);
  EXPECT_EQ(a->result->members[1].metadata, bytes("subscription:b"));
  EXPECT_TRUE(b->result->members.empty());
  EXPECT_EQ(state(), "CompletingRebalance");

  // The follower's sync waits for the leader's; heartbeats meanwhile are fine.
  auto synced_b = sync(b_id, 1, 1'100);
  EXPECT_FALSE(synced_b->ready());
  EXPECT_EQ(heartbeat(b_id, 1, 1'200), kNone);
  auto synced_a = sync(a_id, 1, 1'300, {{a_id, bytes("a-parts")}, {b_id, bytes("b-parts")}});
  ASSERT_EQ(synced_a->calls, 1);
  ASSERT_EQ(synced_b->calls, 1);
  EXPECT_EQ(synced_a->result->error, kNone);
  EXPECT_EQ(synced_a->result->assignment, bytes("a-parts"));
  EXPECT_EQ(synced_a->result->protocol_name, "range");
  EXPECT_EQ(synced_b->result->error, kNone);
  EXPECT_EQ(synced_b->result->assignment, bytes("b-parts"));
  EXPECT_EQ(state(), "Stable");

  // In a Stable group a sync is answered at once with the member's assignment.
  auto again = sync(b_id, 1, 1'400);
  ASSERT_TRUE(again->ready());
  EXPECT_EQ(again->result->assignment, bytes("b-parts"));
  EXPECT_EQ(heartbeat(a_id, 1, 1'500), kNone);

  const GroupDescription d = coordinator_->describe("orders");
  EXPECT_EQ(d.state, "Stable");
  EXPECT_EQ(d.protocol_type, "consumer");
  EXPECT_EQ(d.protocol, "range");
  ASSERT_EQ(d.members.size(), 2u);
  EXPECT_EQ(d.members[0].member_id, a_id);
  EXPECT_EQ(d.members[0].client_id, "a");
  EXPECT_EQ(d.members[0].client_host, "/127.0.0.1");
  EXPECT_EQ(d.members[0].metadata, bytes("subscription:a"));
  EXPECT_EQ(d.members[0].assignment, bytes("a-parts"));
  EXPECT_EQ(d.members[1].assignment, bytes("b-parts"));
}

TEST_F(GroupCoordinatorTest, HeartbeatErrorsTellTheMemberWhatToDo) {
  auto [a_id, b_id] = stable_pair();
  EXPECT_EQ(heartbeat(a_id, 1, 2'000), kNone);
  EXPECT_EQ(heartbeat("nobody", 1, 2'000), kUnknownMemberId);
  EXPECT_EQ(coordinator_->heartbeat("no-such-group", 1, a_id, {}, 2'000), kUnknownMemberId);
  EXPECT_EQ(coordinator_->heartbeat("", 1, a_id, {}, 2'000), kInvalidGroupId);
  EXPECT_EQ(heartbeat(a_id, 0, 2'000), kIllegalGeneration);
  EXPECT_EQ(heartbeat(a_id, 2, 2'000), kIllegalGeneration);

  // A newcomer starts a rebalance: the members' heartbeats tell them to rejoin.
  auto c = join(request("c"), 2'000);
  EXPECT_FALSE(c->ready());
  EXPECT_EQ(state(), "PreparingRebalance");
  EXPECT_EQ(heartbeat(a_id, 1, 2'100), kRebalanceInProgress);
  EXPECT_EQ(heartbeat(b_id, 1, 2'100), kRebalanceInProgress);
  auto a = join(request("a", a_id), 2'200);
  EXPECT_FALSE(a->ready());  // b has not rejoined yet
  auto b = join(request("b", b_id), 2'300);
  ASSERT_TRUE(a->ready() && b->ready() && c->ready());
  EXPECT_EQ(a->result->generation_id, 2);
  EXPECT_EQ(a->result->leader_id, a_id);  // the previous leader stays leader
  EXPECT_EQ(a->result->members.size(), 3u);
  EXPECT_EQ(heartbeat(a_id, 1, 2'400), kIllegalGeneration);
  EXPECT_EQ(heartbeat(a_id, 2, 2'400), kNone);
}

TEST_F(GroupCoordinatorTest, MemberIdRequiredMakesTheFirstJoinTwoSteps) {
  JoinRequest first = request("client-a");
  first.require_known_member_id = true;
  auto step1 = join(first, 0);
  ASSERT_TRUE(step1->ready());
  EXPECT_EQ(step1->result->error, kMemberIdRequired);
  const std::string member_id = step1->result->member_id;
  EXPECT_TRUE(member_id.starts_with("client-a-")) << member_id;
  EXPECT_EQ(member_id.size(), std::string("client-a-").size() + 36) << member_id;  // a UUID
  EXPECT_TRUE(coordinator_->describe("orders").members.empty());

  // An id the coordinator did not hand out is refused.
  JoinRequest made_up = request("client-a", "client-a-made-up");
  made_up.require_known_member_id = true;
  auto refused = join(made_up, 10);
  ASSERT_TRUE(refused->ready());
  EXPECT_EQ(refused->result->error, kUnknownMemberId);

  JoinRequest second = request("client-a", member_id);
  second.require_known_member_id = true;
  auto step2 = join(second, 20);
  ASSERT_TRUE(step2->ready());
  EXPECT_EQ(step2->result->error, kNone);
  EXPECT_EQ(step2->result->member_id, member_id);
  EXPECT_EQ(step2->result->leader_id, member_id);
  EXPECT_EQ(step2->result->generation_id, 1);
}

TEST_F(GroupCoordinatorTest, ARebalanceWaitsForMembersThatWereGivenAnId) {
  auto [a_id, b_id] = stable_pair();
  JoinRequest newcomer = request("c");
  newcomer.require_known_member_id = true;
  newcomer.session_timeout_ms = 3'000;
  auto c1 = join(newcomer, 2'000);
  ASSERT_EQ(c1->result->error, kMemberIdRequired);
  EXPECT_EQ(state(), "Stable");  // an id handed out is no member yet

  // The leader rejoins, then b: everyone known has rejoined, but c is on its way.
  auto a = join(request("a", a_id), 2'100);
  auto b = join(request("b", b_id), 2'100);
  EXPECT_FALSE(a->ready());
  EXPECT_FALSE(b->ready());
  // c never comes back: once its session timeout has passed, the rebalance goes on without it.
  coordinator_->tick(4'999);
  EXPECT_FALSE(a->ready());
  coordinator_->tick(5'000);
  ASSERT_TRUE(a->ready() && b->ready());
  EXPECT_EQ(a->result->generation_id, 2);
  EXPECT_EQ(a->result->members.size(), 2u);
}

TEST_F(GroupCoordinatorTest, AMemberLeavingStartsARebalanceTheOtherRejoins) {
  auto [a_id, b_id] = stable_pair();
  const LeaveResult left = coordinator_->leave("orders", {{b_id, {}}, {"nobody", {}}}, 2'000);
  EXPECT_EQ(left.error, kNone);
  ASSERT_EQ(left.members.size(), 2u);
  EXPECT_EQ(left.members[0], kNone);
  EXPECT_EQ(left.members[1], kUnknownMemberId);
  EXPECT_EQ(state(), "PreparingRebalance");
  EXPECT_EQ(heartbeat(a_id, 1, 2'100), kRebalanceInProgress);
  EXPECT_EQ(heartbeat(b_id, 1, 2'100), kUnknownMemberId);

  auto a = join(request("a", a_id), 2'200);
  ASSERT_TRUE(a->ready());  // the only member has rejoined
  EXPECT_EQ(a->result->generation_id, 2);
  ASSERT_EQ(a->result->members.size(), 1u);
  EXPECT_EQ(a->result->members[0].member_id, a_id);

  // The last one leaving empties the group; the generation moves on all the same, as in Kafka.
  EXPECT_EQ(coordinator_->leave("orders", {{a_id, {}}}, 2'300).members[0], kNone);
  const GroupDescription d = coordinator_->describe("orders");
  EXPECT_EQ(d.state, "Empty");
  EXPECT_EQ(d.generation_id, 3);
  EXPECT_TRUE(d.members.empty());
  EXPECT_EQ(d.protocol_type, "consumer");
  EXPECT_EQ(coordinator_->leave("", {{a_id, {}}}, 2'400).error, kInvalidGroupId);
}

TEST_F(GroupCoordinatorTest, ASilentMemberIsRemovedWhenItsSessionTimesOut) {
  JoinRequest a = request("a");
  JoinRequest b = request("b");
  a.session_timeout_ms = b.session_timeout_ms = 1'000;
  auto [a_id, b_id] = stable_pair(a, b);  // synced at 1'000: sessions run to 2'000
  EXPECT_EQ(heartbeat(a_id, 1, 1'900), kNone);
  coordinator_->tick(1'999);
  EXPECT_EQ(state(), "Stable");
  coordinator_->tick(2'000);
  EXPECT_EQ(state(), "PreparingRebalance");
  const auto members = coordinator_->describe("orders").members;
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].member_id, a_id);
  EXPECT_EQ(heartbeat(b_id, 1, 2'000), kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, AMemberWaitingInARebalanceOutlivesItsSessionTimeout) {
  JoinRequest a = request("a");
  JoinRequest b = request("b");
  a.session_timeout_ms = b.session_timeout_ms = 1'000;
  a.rebalance_timeout_ms = b.rebalance_timeout_ms = 60'000;
  auto [a_id, b_id] = stable_pair(a, b);
  a.member_id = a_id;
  auto rejoined = join(a, 1'100);  // the leader starts a rebalance, and waits for b
  EXPECT_EQ(heartbeat(b_id, 1, 1'500), kRebalanceInProgress);
  coordinator_->tick(2'400);  // past a's session, but a is waiting for the rebalance
  EXPECT_FALSE(rejoined->ready());
  EXPECT_EQ(coordinator_->describe("orders").members.size(), 2u);
  coordinator_->tick(2'500);  // b's session has run out: it goes, and the rebalance completes
  ASSERT_TRUE(rejoined->ready());
  EXPECT_EQ(rejoined->result->error, kNone);
  EXPECT_EQ(rejoined->result->generation_id, 2);
  ASSERT_EQ(rejoined->result->members.size(), 1u);
  EXPECT_EQ(rejoined->result->members[0].member_id, a_id);
}

TEST_F(GroupCoordinatorTest, TheRebalanceTimeoutDropsAMemberThatDoesNotRejoin) {
  JoinRequest a = request("a");
  JoinRequest b = request("b");
  a.rebalance_timeout_ms = b.rebalance_timeout_ms = 2'000;
  auto [a_id, b_id] = stable_pair(a, b);
  a.member_id = a_id;
  auto rejoined = join(a, 1'100);                              // deadline 3'100
  EXPECT_EQ(heartbeat(b_id, 1, 2'000), kRebalanceInProgress);  // b keeps its session, no rejoin
  coordinator_->tick(3'000);
  EXPECT_FALSE(rejoined->ready());
  EXPECT_EQ(heartbeat(b_id, 1, 3'050), kRebalanceInProgress);
  coordinator_->tick(3'100);
  ASSERT_TRUE(rejoined->ready());
  EXPECT_EQ(rejoined->result->generation_id, 2);
  ASSERT_EQ(rejoined->result->members.size(), 1u);
  EXPECT_EQ(heartbeat(b_id, 1, 3'200), kUnknownMemberId);
  EXPECT_EQ(state(), "CompletingRebalance");
}

TEST_F(GroupCoordinatorTest, ARebalanceStartingWhileSyncsWaitAnswersThem) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  auto a = join(request("a"), 0);
  auto b = join(request("b"), 0);
  coordinator_->tick(100);
  coordinator_->tick(200);
  const std::string b_id = b->result->member_id;
  auto synced_b = sync(b_id, 1, 300);
  EXPECT_FALSE(synced_b->ready());
  auto c = join(request("c"), 400);
  ASSERT_TRUE(synced_b->ready());
  EXPECT_EQ(synced_b->result->error, kRebalanceInProgress);
  // And a sync during the rebalance is refused at once.
  auto late = sync(a->result->member_id, 1, 500);
  ASSERT_TRUE(late->ready());
  EXPECT_EQ(late->result->error, kRebalanceInProgress);
  EXPECT_EQ(sync("nobody", 1, 500)->result->error, kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, AMemberThatNeverSyncsIsDroppedAfterTheRebalanceTimeout) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  JoinRequest a = request("a");
  JoinRequest b = request("b");
  a.rebalance_timeout_ms = b.rebalance_timeout_ms = 2'000;
  auto joined_a = join(a, 0);
  auto joined_b = join(b, 0);
  coordinator_->tick(100);
  coordinator_->tick(200);  // generation 1 at 200; syncs due by 2'200
  const std::string a_id = joined_a->result->member_id;
  const std::string b_id = joined_b->result->member_id;
  auto synced_b = sync(b_id, 1, 300);
  coordinator_->tick(2'199);
  EXPECT_FALSE(synced_b->ready());
  coordinator_->tick(2'200);  // the leader never sent its assignments
  ASSERT_TRUE(synced_b->ready());
  EXPECT_EQ(synced_b->result->error, kRebalanceInProgress);
  EXPECT_EQ(heartbeat(a_id, 1, 2'200), kUnknownMemberId);
  b.member_id = b_id;
  auto rejoined = join(b, 2'300);
  ASSERT_TRUE(rejoined->ready());
  EXPECT_EQ(rejoined->result->generation_id, 2);
  EXPECT_EQ(rejoined->result->leader_id, b_id);
}

TEST_F(GroupCoordinatorTest, AStaticMemberBackWithANewIdFencesTheOldOneWithoutARebalance) {
  JoinRequest a = request("a");
  a.group_instance_id = "instance-a";
  auto [old_a_id, b_id] = stable_pair(a, request("b"));
  EXPECT_TRUE(old_a_id.starts_with("instance-a-")) << old_a_id;

  // "a" restarts: same instance id, no member id, the same subscription.
  auto back = join(a, 2'000);
  ASSERT_TRUE(back->ready());
  EXPECT_EQ(back->result->error, kNone);
  const std::string new_a_id = back->result->member_id;
  EXPECT_NE(new_a_id, old_a_id);
  EXPECT_EQ(back->result->generation_id, 1);
  // It was the leader; it is told the old id leads, so it does not try to assign again.
  EXPECT_EQ(back->result->leader_id, old_a_id);
  EXPECT_TRUE(back->result->members.empty());
  EXPECT_EQ(state(), "Stable");
  EXPECT_EQ(heartbeat(b_id, 1, 2'100), kNone);

  // The old incarnation is fenced; the new one carries on with the assignment.
  EXPECT_EQ(heartbeat(old_a_id, 1, 2'100, "instance-a"), kFencedInstanceId);
  auto old_sync = sync(old_a_id, 1, 2'100, {}, "instance-a");
  ASSERT_TRUE(old_sync->ready());
  EXPECT_EQ(old_sync->result->error, kFencedInstanceId);
  EXPECT_EQ(coordinator_->validate_commit("orders", 1, old_a_id, "instance-a", 2'100),
            kFencedInstanceId);
  auto new_sync = sync(new_a_id, 1, 2'200, {}, "instance-a");
  ASSERT_TRUE(new_sync->ready());
  EXPECT_EQ(new_sync->result->error, kNone);
  EXPECT_EQ(new_sync->result->assignment, bytes("a-parts"));
  EXPECT_EQ(heartbeat(new_a_id, 1, 2'200, "instance-a"), kNone);
  const auto members = coordinator_->describe("orders").members;
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].member_id, new_a_id);
  EXPECT_EQ(members[0].group_instance_id, "instance-a");
}

TEST_F(GroupCoordinatorTest, AStaticMemberBackWithANewSubscriptionStartsARebalance) {
  JoinRequest a = request("a");
  a.group_instance_id = "instance-a";
  auto [old_a_id, b_id] = stable_pair(a, request("b"));
  a.protocols = {{"range", bytes("a new subscription")}};
  auto back = join(a, 2'000);
  EXPECT_FALSE(back->ready());
  EXPECT_EQ(state(), "PreparingRebalance");
  EXPECT_EQ(heartbeat(b_id, 1, 2'100), kRebalanceInProgress);
  auto b = join(request("b", b_id), 2'200);
  ASSERT_TRUE(back->ready() && b->ready());
  EXPECT_EQ(back->result->generation_id, 2);
  EXPECT_NE(back->result->member_id, old_a_id);
  EXPECT_EQ(back->result->leader_id, back->result->member_id);
  ASSERT_EQ(back->result->members.size(), 2u);
  EXPECT_EQ(back->result->members[0].metadata, bytes("a new subscription"));
  EXPECT_EQ(back->result->members[0].group_instance_id, "instance-a");
}

TEST_F(GroupCoordinatorTest, MembersMustShareAProtocolAndTheMostVotedOneIsChosen) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  const Bytes m = bytes("m");
  // The leader prefers range; the two others prefer roundrobin, which all of them support.
  auto a = join(request("a", "", {{"range", m}, {"roundrobin", m}}), 0);
  auto b = join(request("b", "", {{"roundrobin", m}, {"range", m}}), 0);
  auto c = join(request("c", "", {{"roundrobin", m}, {"range", m}, {"sticky", m}}), 0);

  auto odd = join(request("d", "", {{"sticky", m}}), 0);  // not everyone supports it
  ASSERT_TRUE(odd->ready());
  EXPECT_EQ(odd->result->error, kInconsistentGroupProtocol);
  JoinRequest other_type = request("e");
  other_type.protocol_type = "connect";
  auto wrong_type = join(other_type, 0);
  ASSERT_TRUE(wrong_type->ready());
  EXPECT_EQ(wrong_type->result->error, kInconsistentGroupProtocol);
  JoinRequest none = request("f");
  none.protocols.clear();
  none.group_id = "elsewhere";
  EXPECT_EQ(join(none, 0)->result->error, kInconsistentGroupProtocol);

  coordinator_->tick(100);
  coordinator_->tick(200);
  ASSERT_TRUE(a->ready() && b->ready() && c->ready());
  EXPECT_EQ(a->result->protocol_name, "roundrobin");
  EXPECT_EQ(a->result->members.size(), 3u);
  EXPECT_EQ(a->result->members[0].metadata, m);
}

TEST_F(GroupCoordinatorTest, OnlyProtocolsEveryMemberSupportsCanBeChosen) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  const Bytes m = bytes("m");
  auto a = join(request("a", "", {{"sticky", m}, {"range", m}}), 0);
  auto b = join(request("b", "", {{"sticky", m}, {"range", m}}), 0);
  auto c = join(request("c", "", {{"range", m}}), 0);
  coordinator_->tick(100);
  coordinator_->tick(200);
  ASSERT_TRUE(a->ready() && b->ready() && c->ready());
  EXPECT_EQ(a->result->protocol_name, "range");  // sticky has two votes, but c lacks it
}

TEST_F(GroupCoordinatorTest, TheFirstRebalanceOfANewGroupWaitsForMoreMembersToArrive) {
  coordinator_ = std::make_unique<GroupCoordinator>(options(100));
  JoinRequest a = request("a");
  a.rebalance_timeout_ms = 250;
  auto joined_a = join(a, 0);
  coordinator_->tick(50);
  EXPECT_FALSE(joined_a->ready());  // alone, and everyone has joined, yet it waits the delay
  auto joined_b = join(request("b"), 60);
  coordinator_->tick(100);  // b arrived during the delay: another delay, to 200
  EXPECT_FALSE(joined_a->ready());
  auto joined_c = join(request("c"), 150);
  coordinator_->tick(200);  // c arrived: what is left of the rebalance timeout, to 250
  EXPECT_FALSE(joined_a->ready());
  auto joined_d = join(request("d"), 220);
  coordinator_->tick(249);
  EXPECT_FALSE(joined_a->ready());
  coordinator_->tick(250);  // the rebalance timeout is used up
  ASSERT_TRUE(joined_a->ready() && joined_b->ready() && joined_c->ready() && joined_d->ready());
  EXPECT_EQ(joined_a->result->generation_id, 1);
  EXPECT_EQ(joined_d->result->generation_id, 1);
  EXPECT_EQ(joined_a->result->members.size(), 4u);
}

TEST_F(GroupCoordinatorTest, WithoutAnInitialDelayTheFirstMemberIsAnsweredAtOnce) {
  auto a = join(request("a"), 0);
  ASSERT_TRUE(a->ready());
  EXPECT_EQ(a->result->generation_id, 1);
  auto b = join(request("b"), 10);  // a must rejoin for generation 2
  EXPECT_FALSE(b->ready());
  auto again = join(request("a", a->result->member_id), 20);
  ASSERT_TRUE(b->ready() && again->ready());
  EXPECT_EQ(again->result->generation_id, 2);
}

TEST_F(GroupCoordinatorTest, AFollowerRejoiningAStableGroupUnchangedGetsTheCurrentGeneration) {
  auto [a_id, b_id] = stable_pair();
  auto b = join(request("b", b_id), 2'000);
  ASSERT_TRUE(b->ready());
  EXPECT_EQ(b->result->generation_id, 1);
  EXPECT_EQ(b->result->leader_id, a_id);
  EXPECT_EQ(state(), "Stable");
  // The leader rejoining forces a rebalance (it may have seen the topics change).
  auto a = join(request("a", a_id), 2'100);
  EXPECT_FALSE(a->ready());
  EXPECT_EQ(state(), "PreparingRebalance");
}

TEST_F(GroupCoordinatorTest, CommitsAreValidatedAgainstTheGroup) {
  // Outside group management: generation -1 and no member id, into a group with no members.
  EXPECT_EQ(coordinator_->validate_commit("manual", -1, "", {}, 0), kNone);
  EXPECT_EQ(coordinator_->describe("manual").state, "Empty");
  EXPECT_EQ(coordinator_->validate_commit("manual", -1, "", {}, 0), kNone);
  EXPECT_EQ(coordinator_->validate_commit("unheard-of", 3, "m", {}, 0), kIllegalGeneration);
  EXPECT_EQ(coordinator_->validate_commit("unheard-of", -1, "m", {}, 0), kUnknownMemberId);

  auto [a_id, b_id] = stable_pair();
  EXPECT_EQ(coordinator_->validate_commit("orders", -1, "", {}, 2'000), kUnknownMemberId);
  EXPECT_EQ(coordinator_->validate_commit("orders", 1, a_id, {}, 2'000), kNone);
  EXPECT_EQ(coordinator_->validate_commit("orders", 2, a_id, {}, 2'000), kIllegalGeneration);
  EXPECT_EQ(coordinator_->validate_commit("orders", 1, "nobody", {}, 2'000), kUnknownMemberId);

  // While the group prepares a rebalance, commits of the current generation go through (Kafka);
  // once the new generation is handed out, not until the member has synced.
  auto c = join(request("c"), 2'000);
  EXPECT_EQ(coordinator_->validate_commit("orders", 1, a_id, {}, 2'100), kNone);
  auto a = join(request("a", a_id), 2'200);
  auto b = join(request("b", b_id), 2'200);
  ASSERT_TRUE(a->ready());
  EXPECT_EQ(coordinator_->validate_commit("orders", 2, a_id, {}, 2'300), kRebalanceInProgress);
}

TEST_F(GroupCoordinatorTest, GroupsAreDescribedListedAndRemoved) {
  const GroupDescription unknown = coordinator_->describe("nothing");
  EXPECT_EQ(unknown.error, kNone);
  EXPECT_EQ(unknown.state, "Dead");
  EXPECT_TRUE(unknown.members.empty());

  auto [a_id, b_id] = stable_pair();
  coordinator_->ensure_group("from-offsets");
  coordinator_->ensure_group("orders");  // already there: unchanged
  const auto groups = coordinator_->list();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].group_id, "from-offsets");
  EXPECT_EQ(groups[0].state, "Empty");
  EXPECT_EQ(groups[0].protocol_type, "");
  EXPECT_EQ(groups[1].group_id, "orders");
  EXPECT_EQ(groups[1].state, "Stable");
  EXPECT_EQ(groups[1].protocol_type, "consumer");

  // Metadata and assignments show only in a Stable group, as in Kafka.
  join(request("c"), 2'000);
  const GroupDescription preparing = coordinator_->describe("orders");
  EXPECT_EQ(preparing.state, "PreparingRebalance");
  EXPECT_EQ(preparing.protocol, "");
  ASSERT_EQ(preparing.members.size(), 3u);
  EXPECT_TRUE(preparing.members[0].assignment.empty());
  EXPECT_TRUE(preparing.members[0].metadata.empty());

  EXPECT_EQ(coordinator_->remove_group("orders"), kNonEmptyGroup);
  EXPECT_EQ(coordinator_->remove_group("nothing"), kGroupIdNotFound);
  EXPECT_EQ(coordinator_->remove_group("from-offsets"), kNone);
  EXPECT_EQ(coordinator_->remove_group("from-offsets"), kGroupIdNotFound);
  ASSERT_EQ(coordinator_->list().size(), 1u);
  EXPECT_EQ(coordinator_->describe("from-offsets").state, "Dead");
}

TEST_F(GroupCoordinatorTest, JoinsAreCheckedBeforeAnythingChanges) {
  JoinRequest r = request("a");
  r.session_timeout_ms = 99;  // under the minimum
  EXPECT_EQ(join(r, 0)->result->error, kInvalidSessionTimeout);
  r.session_timeout_ms = 1'000'001;
  EXPECT_EQ(join(r, 0)->result->error, kInvalidSessionTimeout);
  r = request("a");
  r.group_id = "";
  EXPECT_EQ(join(r, 0)->result->error, kInvalidGroupId);
  EXPECT_EQ(join(request("a", "a-from-before"), 0)->result->error, kUnknownMemberId);
  EXPECT_TRUE(coordinator_->list().empty());
}

TEST_F(GroupCoordinatorTest, ACallbackMayCallBackIntoTheCoordinator) {
  std::optional<SyncResult> synced;
  coordinator_->join(request("a"), 0, [&](JoinResult joined) {
    SyncRequest r;
    r.group_id = "orders";
    r.generation_id = joined.generation_id;
    r.member_id = joined.member_id;
    r.assignments = {{joined.member_id, bytes("everything")}};
    coordinator_->sync(std::move(r), 0, [&](SyncResult result) { synced = std::move(result); });
  });
  ASSERT_TRUE(synced);
  EXPECT_EQ(synced->error, kNone);
  EXPECT_EQ(synced->assignment, bytes("everything"));
  EXPECT_EQ(state(), "Stable");
}

TEST_F(GroupCoordinatorTest, AGenerationIsWrittenWhenStableAndTheGroupWhenEmpty) {
  auto [a_id, b_id] = stable_pair();
  // Once, when the leader's assignments made the generation Stable: not on joins or syncs before.
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].first, "orders");
  const GroupMetadata& stable = written_[0].second;
  EXPECT_EQ(stable.protocol_type, "consumer");
  EXPECT_EQ(stable.generation_id, 1);
  EXPECT_EQ(stable.protocol_name, "range");
  EXPECT_EQ(stable.leader_id, a_id);
  ASSERT_EQ(stable.members.size(), 2u);
  EXPECT_EQ(stable.members[0],
            (GroupMemberMetadata{a_id, std::nullopt, "a", "/127.0.0.1", 5'000, 10'000,
                                 bytes("subscription:a"), bytes("a-parts")}));
  EXPECT_EQ(stable.members[1].member_id, b_id);
  EXPECT_EQ(stable.members[1].assignment, bytes("b-parts"));

  // Heartbeats and a follower's sync change nothing worth writing.
  EXPECT_EQ(heartbeat(a_id, 1, 2'000), kNone);
  EXPECT_TRUE(sync(b_id, 1, 2'000)->ready());
  EXPECT_EQ(written_.size(), 1u);

  // The last member gone, the group is Empty with its next generation, and written as such.
  coordinator_->leave("orders", {{a_id, std::nullopt}}, 3'000);
  EXPECT_EQ(written_.size(), 1u);  // b is still there, to rejoin
  coordinator_->leave("orders", {{b_id, std::nullopt}}, 3'100);
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_EQ(state(), "Empty");
  EXPECT_EQ(written_[1].second, (GroupMetadata{"consumer", 2, std::nullopt, std::nullopt, {}}));
}

TEST_F(GroupCoordinatorTest, ARestoredGroupCarriesOnWithoutARebalance) {
  auto [a_id, b_id] = stable_pair();
  ASSERT_EQ(written_.size(), 1u);
  const GroupMetadata before = written_[0].second;

  // A coordinator started afresh (a restart) from what was written, at time 50'000: the old
  // sessions have long run out, the restored ones start now.
  coordinator_ = std::make_unique<GroupCoordinator>(options());
  record_writes();
  coordinator_->restore("orders", before, 50'000);
  written_.clear();
  EXPECT_EQ(state(), "Stable");
  EXPECT_EQ(heartbeat(a_id, 1, 55'000), kNone);
  EXPECT_EQ(heartbeat(b_id, 1, 55'000), kNone);
  EXPECT_EQ(heartbeat(b_id, 0, 55'000), kIllegalGeneration);
  EXPECT_EQ(heartbeat("nobody", 1, 55'000), kUnknownMemberId);
  auto synced = sync(b_id, 1, 55'000);
  ASSERT_TRUE(synced->ready());
  EXPECT_EQ(synced->result->error, kNone);
  EXPECT_EQ(synced->result->assignment, bytes("b-parts"));
  const GroupDescription d = coordinator_->describe("orders");
  EXPECT_EQ(d.generation_id, 1);
  EXPECT_EQ(d.protocol, "range");
  ASSERT_EQ(d.members.size(), 2u);
  EXPECT_EQ(d.members[0].member_id, a_id);
  EXPECT_EQ(d.members[0].metadata, bytes("subscription:a"));
  EXPECT_EQ(d.members[1].assignment, bytes("b-parts"));
  EXPECT_TRUE(written_.empty());  // restoring writes nothing

  // A follower rejoining unchanged gets generation 1 back, as in any Stable group.
  auto b = join(request("b", b_id), 56'000);
  ASSERT_TRUE(b->ready());
  EXPECT_EQ(b->result->generation_id, 1);
  EXPECT_EQ(b->result->leader_id, a_id);

  // A member that stops heartbeating after the restart is expired on its session timeout from
  // its last heartbeat, as before; the rebalance completes with the one that rejoins.
  EXPECT_EQ(heartbeat(a_id, 1, 60'000), kNone);
  coordinator_->tick(66'000);  // b's session ran out: its join at 56'000 was its last word
  EXPECT_EQ(state(), "PreparingRebalance");
  auto a = join(request("a", a_id), 66'100);
  ASSERT_TRUE(a->ready());
  EXPECT_EQ(a->result->generation_id, 2);
  ASSERT_EQ(a->result->members.size(), 1u);
}

TEST_F(GroupCoordinatorTest, RestoredStaticMembersComeBackUnderTheirInstanceIds) {
  JoinRequest a = request("a");
  a.group_instance_id = "host-1";
  JoinRequest b = request("b");
  b.group_instance_id = "host-2";
  auto [a_id, b_id] = stable_pair(std::move(a), std::move(b));
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].second.members[1].group_instance_id, "host-2");

  coordinator_ = std::make_unique<GroupCoordinator>(options());
  record_writes();
  coordinator_->restore("orders", written_[0].second, 50'000);
  written_.clear();
  // The old id of host-2 is fenced once host-2 is back under a new one, with no rebalance; the
  // new id is written, since it is the one to find after another restart.
  JoinRequest again = request("b");
  again.group_instance_id = "host-2";
  auto b_back = join(std::move(again), 51'000);
  ASSERT_TRUE(b_back->ready());
  EXPECT_EQ(b_back->result->error, kNone);
  EXPECT_EQ(b_back->result->generation_id, 1);
  EXPECT_EQ(state(), "Stable");
  const std::string new_b = b_back->result->member_id;
  EXPECT_NE(new_b, b_id);
  EXPECT_EQ(heartbeat(b_id, 1, 51'100, "host-2"), kFencedInstanceId);
  EXPECT_EQ(heartbeat(new_b, 1, 51'100, "host-2"), kNone);
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].second.members[1].member_id, new_b);
  EXPECT_EQ(written_[0].second.members[1].assignment, bytes("b-parts"));
}

TEST_F(GroupCoordinatorTest, ARestoredEmptyGroupKeepsItsGeneration) {
  coordinator_->restore("orders", GroupMetadata{"consumer", 7, std::nullopt, std::nullopt, {}}, 0);
  const GroupDescription d = coordinator_->describe("orders");
  EXPECT_EQ(d.state, "Empty");
  EXPECT_EQ(d.generation_id, 7);
  EXPECT_EQ(d.protocol_type, "consumer");
  // The next generation follows on from the restored one.
  coordinator_->join(request("a"), 0, [](JoinResult) {});
  coordinator_->tick(10);
  EXPECT_EQ(coordinator_->describe("orders").generation_id, 8);
}

}  // namespace
}  // namespace depot::eventlog
