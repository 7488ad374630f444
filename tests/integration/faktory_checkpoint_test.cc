// depot's extensions for iteration jobs over TCP against a spawned depot: CHECKPOINT (merge into
// custom, progress in INFO, reservation kept across a SIGKILL) and the re-enqueue of a reserved
// job by a PUSH of its jid followed by the old run's ACK.
#include <gtest/gtest.h>

#include "support/depot_process.h"
#include "support/faktory_client.h"
#include "support/temp_dir.h"

namespace {

using depot::testing::Depot;
using depot::testing::FaktoryClient;
using depot::testing::free_port;
using depot::testing::jid_of;
using depot::testing::TempDir;
using namespace std::chrono_literals;

class FaktoryIterationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    start();
  }
  void TearDown() override {
    if (!depot_) return;
    depot_->signal(SIGTERM);
    EXPECT_EQ(depot_->wait_exit(10s), 0) << depot_->err();
  }
  void start() {
    depot_ = std::make_unique<Depot>(
        std::vector<std::string>{"serve", "--data-dir", dir_.path().string(), "--jobs-listen",
                                 "127.0.0.1:" + std::to_string(port_), "--amqp-listen", "off",
                                 "--kafka-listen", "off", "--http-listen", "off"});
    ASSERT_TRUE(depot_->wait_for_log("ready", 10s)) << depot_->err();
  }
  void crash_and_restart() {
    depot_->signal(SIGKILL);
    ASSERT_TRUE(depot_->wait_exit(5s));
    depot_.reset();
    start();
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Depot> depot_;
};

TEST_F(FaktoryIterationTest, CheckpointMergesCustomShowsProgressAndOutlivesACrash) {
  FaktoryClient producer(port_);
  FaktoryClient worker(port_, "w1");
  FaktoryClient other(port_, "w2");
  ASSERT_TRUE(producer.ok() && worker.ok() && other.ok());
  ASSERT_EQ(producer.command(R"(PUSH {"jid":"iter-0001","jobtype":"Iterate","args":[],)"
                             R"("retry":3,"custom":{"cursor":0,"owner":"ops"}})"),
            "+OK");
  ASSERT_EQ(jid_of(worker.command("FETCH default")), "iter-0001");

  // Refusals; every connection carries on.
  const std::string good = R"(CHECKPOINT {"jid":"iter-0001","custom":{"cursor":500},)"
                           R"("progress":{"done":500,"total":1000}})";
  EXPECT_EQ(producer.command(good),
            "-ERR CHECKPOINT needs a worker connection: send a wid in HELLO");
  EXPECT_EQ(other.command(good), "-ERR job reserved by another worker: iter-0001");
  EXPECT_EQ(worker.command(R"(CHECKPOINT {"jid":"nope-0001"})"),
            "-ERR job not reserved (unknown jid, already finished, or its reservation expired): "
            "nope-0001");
  EXPECT_EQ(worker.command("CHECKPOINT {bad").rfind("-ERR invalid CHECKPOINT: ", 0), 0u);
  EXPECT_EQ(worker.command(R"(CHECKPOINT {"jid":"iter-0001","custom":[]})"),
            "-ERR invalid CHECKPOINT: custom must be an object");
  EXPECT_EQ(worker.command(R"(CHECKPOINT {"jid":"iter-0001","progress":{"done":-1}})"),
            "-ERR invalid CHECKPOINT: progress.done must be between 0 and 9223372036854775807");

  EXPECT_EQ(worker.command(good), "+OK");
  const std::string info = producer.command("INFO");
  EXPECT_NE(info.find(R"("depot":{"working":1,"progress":[{"jid":"iter-0001","jobtype":"Iterate",)"
                      R"("queue":"default","wid":"w1","done":500,"total":1000,"updated_at":")"),
            std::string::npos)
      << info;

  // After a SIGKILL the reservation holds the checkpointed job; its progress is unknown.
  crash_and_restart();
  FaktoryClient admin(port_);
  FaktoryClient again(port_, "w1");
  ASSERT_TRUE(admin.ok() && again.ok());
  const std::string restarted = admin.command("INFO");
  EXPECT_NE(restarted.find(R"("depot":{"working":1,"progress":[]})"), std::string::npos)
      << restarted;
  EXPECT_EQ(again.command(R"(CHECKPOINT {"jid":"iter-0001","custom":{"step":"b"}})"), "+OK");
  // FAIL retries the checkpointed job; requeued now, it is fetched with the merged custom.
  EXPECT_EQ(again.command(R"(FAIL {"jid":"iter-0001","message":"interrupted"})"), "+OK");
  EXPECT_EQ(admin.command(R"(MUTATE {"cmd":"requeue","target":"retries"})"), "+OK");
  const std::string job = again.command("FETCH default");
  EXPECT_EQ(jid_of(job), "iter-0001");
  EXPECT_NE(job.find(R"("custom":{"cursor":500,"owner":"ops","step":"b"})"), std::string::npos)
      << job;
  EXPECT_EQ(again.command(R"(ACK {"jid":"iter-0001"})"), "+OK");
  EXPECT_EQ(again.command(R"(CHECKPOINT {"jid":"iter-0001"})").rfind("-ERR job not reserved", 0),
            0u);
}

TEST_F(FaktoryIterationTest, APushOfAReservedJidRequeuesItAndTheOldAckKeepsIt) {
  FaktoryClient worker(port_, "w1");
  ASSERT_TRUE(worker.ok());
  ASSERT_EQ(worker.command(R"(PUSH {"jid":"iter-0002","jobtype":"Iterate","args":[],)"
                           R"("custom":{"cursor":0,"unique_for":3600}})"),
            "+OK");
  ASSERT_EQ(jid_of(worker.command("FETCH default")), "iter-0002");
  // Interrupted: pushed again with its cursor (its own unique lock does not refuse it), then the
  // old run is ACKed.
  ASSERT_EQ(worker.command(R"(PUSH {"jid":"iter-0002","jobtype":"Iterate","args":[],)"
                           R"("custom":{"cursor":900,"unique_for":3600}})"),
            "+OK");
  ASSERT_EQ(worker.command(R"(ACK {"jid":"iter-0002"})"), "+OK");
  // Another job with the same jobtype and args is still refused: the lock went with the job.
  EXPECT_EQ(worker.command(R"(PUSH {"jid":"iter-0003","jobtype":"Iterate","args":[],)"
                           R"("custom":{"unique_for":3600}})"),
            "-NOTUNIQUE Job not unique");

  crash_and_restart();
  FaktoryClient again(port_, "w1");
  ASSERT_TRUE(again.ok());
  const std::string job = again.command("FETCH default");
  EXPECT_EQ(jid_of(job), "iter-0002");
  EXPECT_NE(job.find(R"("custom":{"cursor":900,"unique_for":3600})"), std::string::npos) << job;
  EXPECT_EQ(again.command(R"(ACK {"jid":"iter-0002"})"), "+OK");
  EXPECT_EQ(again.command("FETCH default"), "");
}

}  // namespace
