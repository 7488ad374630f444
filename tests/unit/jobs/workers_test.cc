// Worker records: shared by a wid's connections, states only move forward, silent ones reaped.
#include "jobs/workers.h"

#include <gtest/gtest.h>

namespace depot::jobs {
namespace {

constexpr UnixNanos kSecond = 1'000'000'000;

TEST(WorkerRegistry, TracksConnectionsBeatsAndStates) {
  WorkerRegistry workers;
  WorkerInfo hello{"w1", "host", 42, {"node"}, WorkerState::running, 0, 0, 0};
  workers.connect(hello, 0);
  workers.connect(hello, 0);  // a pooled worker opens several connections with one wid
  EXPECT_EQ(workers.list().size(), 1u);
  EXPECT_EQ(workers.list()[0].connections, 2u);
  EXPECT_EQ(workers.beat("w1", std::nullopt, kSecond), WorkerState::running);
  EXPECT_FALSE(workers.beat("nobody", std::nullopt, kSecond));
  EXPECT_TRUE(workers.signal("w1", WorkerState::quiet));
  EXPECT_EQ(workers.beat("w1", std::nullopt, 2 * kSecond), WorkerState::quiet);
  EXPECT_EQ(workers.beat("w1", WorkerState::running, 3 * kSecond),
            WorkerState::quiet);  // no going back
  EXPECT_EQ(workers.beat("w1", WorkerState::terminate, 4 * kSecond), WorkerState::terminate);
  workers.disconnect("w1");
  EXPECT_EQ(workers.list().size(), 1u);
  workers.disconnect("w1");
  EXPECT_TRUE(workers.list().empty());
}

TEST(WorkerRegistry, ForgetsWorkersSilentForSixtySeconds) {
  WorkerRegistry workers;
  workers.connect({"quiet-one", "h", 1, {}, WorkerState::running, 0, 0, 0}, 0);
  workers.connect({"beating", "h", 2, {}, WorkerState::running, 0, 0, 0}, 0);
  workers.beat("beating", std::nullopt, 50 * kSecond);
  EXPECT_TRUE(workers.reap(60 * kSecond).empty());
  auto gone = workers.reap(61 * kSecond);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], "quiet-one");
  EXPECT_EQ(workers.list().size(), 1u);
}

}  // namespace
}  // namespace depot::jobs
