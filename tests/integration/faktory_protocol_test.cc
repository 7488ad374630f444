// The Faktory face over TCP against a spawned depot: bad input gets Faktory's error and the
// connection (and every other one) carries on; what cannot go on is closed cleanly.
#include <thread>

#include <gtest/gtest.h>

#include "support/depot_process.h"
#include "support/faktory_client.h"
#include "support/temp_dir.h"

namespace {

using depot::testing::Depot;
using depot::testing::FaktoryClient;
using depot::testing::free_port;
using depot::testing::TempDir;
using namespace std::chrono_literals;

class FaktoryProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    depot_ = std::make_unique<Depot>(std::vector<std::string>{
        "serve", "--data-dir", dir_.path().string(), "--jobs-listen",
        "127.0.0.1:" + std::to_string(port_), "--amqp-listen", "off", "--kafka-listen", "off",
        "--http-listen", "off", "--max-job-size", "4KiB"});
    ASSERT_TRUE(depot_->wait_for_log("ready", 10s)) << depot_->err();
  }
  void TearDown() override {
    depot_->signal(SIGTERM);
    EXPECT_EQ(depot_->wait_exit(10s), 0) << depot_->err();
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Depot> depot_;
};

TEST_F(FaktoryProtocolTest, BadCommandsGetErrorsAndTheConnectionCarriesOn) {
  FaktoryClient client(port_);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.greeting(), "+HI {\"v\":2}");
  EXPECT_EQ(client.command("NOPE"), "-ERR unknown command NOPE");
  EXPECT_EQ(client.command("PUSH {not json"), client.command("PUSH {not json"));
  EXPECT_EQ(client.command("PUSH {not json").rfind("-ERR invalid JSON", 0), 0u);
  EXPECT_EQ(client.command(R"(PUSH {"jid":12345678,"jobtype":"x","args":[]})").rfind("-ERR", 0),
            0u);
  EXPECT_EQ(client.command(R"(PUSH {"jid":"abcdefgh","jobtype":"x","args":{}})").rfind("-ERR", 0),
            0u);
  EXPECT_EQ(client.command(R"(PUSH {"jid":"abcdefgh","jobtype":"x"})"),
            "-ERR jobs must have an args parameter");
  EXPECT_EQ(client.command(R"(ACK {"jid":"unknown-jid"})"), "+OK");  // as Faktory
  EXPECT_EQ(client.command(R"(FAIL {"jid":"unknown-jid","message":"m"})"),
            "-ERR Job not found unknown-jid");
  EXPECT_EQ(client.command(R"(BEAT {"wid":"nobody"})"), "-ERR unknown worker nobody");
  EXPECT_EQ(client.command(R"(MUTATE {"cmd":"explode","target":"dead"})"),
            "-ERR unknown mutate operation");
  EXPECT_EQ(client.command("QUEUE FROB x"), "-ERR no such QUEUE subcommand: FROB");
  // And it still works.
  EXPECT_EQ(client.command(R"(PUSH {"jid":"abcdefgh","jobtype":"x","args":[1]})"), "+OK");
  EXPECT_NE(client.command("FETCH default").find("\"jid\":\"abcdefgh\""), std::string::npos);
}

TEST_F(FaktoryProtocolTest, AJobOverTheSizeLimitIsRefusedAndTheServerCarriesOn) {
  FaktoryClient big(port_);
  std::string payload(8192, 'x');
  std::string reply =
      big.command(R"(PUSH {"jid":"bigbigbig","jobtype":"x","args":[")" + payload + "\"]}");
  EXPECT_EQ(reply.rfind("-ERR", 0), 0u) << reply;
  FaktoryClient other(port_);
  EXPECT_EQ(other.command(R"(PUSH {"jid":"another1","jobtype":"x","args":[]})"), "+OK");
}

TEST_F(FaktoryProtocolTest, CommandsBeforeHelloCloseTheConnection) {
  FaktoryClient client(port_, "", /*hello=*/false);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send_raw("PUSH {}\r\n"));
  EXPECT_TRUE(client.closed_by_peer());
}

TEST_F(FaktoryProtocolTest, ASilentClientIsClosedAfterTheHandshakeTimeout) {
  FaktoryClient client(port_, "", /*hello=*/false);
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST_F(FaktoryProtocolTest, AClientVanishingMidCommandHarmsNobody) {
  {
    FaktoryClient client(port_);
    ASSERT_TRUE(client.send_raw(R"(PUSH {"jid":"half-sent","jobtype":)"));
  }  // closed with half a line sent
  FaktoryClient client(port_);
  EXPECT_EQ(client.command(R"(PUSH {"jid":"whole-one","jobtype":"x","args":[]})"), "+OK");
  std::string info = client.command("INFO");
  EXPECT_NE(info.find("\"default\":1"), std::string::npos) << info;
}

}  // namespace
