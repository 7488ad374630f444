// libdepot's Client against a spawned depot, and its pure parts (URLs, job JSON, log lines).
#include <depot/client.h>
#include <depot/log.h>
#include <thread>

#include <gtest/gtest.h>

#include "support/depot_server.h"

namespace {

using depot::testing::DepotServer;
using namespace std::chrono_literals;

TEST(ClientUrl, ParsesFaktoryStyleUrls) {
  auto a = depot::parse_server_url("tcp://:s3cret@jobs.example.com:7500");
  EXPECT_EQ(a.host, "jobs.example.com");
  EXPECT_EQ(a.port, 7500);
  EXPECT_EQ(a.password, "s3cret");
  auto b = depot::parse_server_url("tcp://localhost");
  EXPECT_EQ(b.host, "localhost");
  EXPECT_EQ(b.port, 7419);
  EXPECT_EQ(b.password, "");
  auto c = depot::parse_server_url("tcp://[::1]:7420/");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 7420);
  EXPECT_THROW(depot::parse_server_url("tcp+tls://host:7419"), depot::Error);
  EXPECT_THROW(depot::parse_server_url("tcp://host:99999"), depot::Error);
  EXPECT_THROW(depot::parse_server_url("tcp://host:x"), depot::Error);
}

TEST(ClientJob, KeepsWhatItDoesNotModelAcrossAFetchAndAPush) {
  depot::json payload = depot::json::parse(R"({
    "jid":"abcdef0123456789","jobtype":"Resize","args":[1,{"a":[2,3]}],"queue":"images",
    "retry":5,"reserve_for":120,"custom":{"deep":{"er":[1,{"x":null}]}},
    "enqueued_at":"2026-11-25T10:00:00Z","created_at":"2026-11-25T09:00:00Z",
    "failure":{"retry_count":2,"message":"boom","errtype":"E"}})");
  auto job = depot::Job::from_json(payload);
  EXPECT_EQ(job.queue, "images");
  EXPECT_EQ(job.retry, 5);
  EXPECT_EQ(job.retry_count(), 2);
  auto again = job.to_json();
  EXPECT_EQ(again["failure"], payload["failure"]);
  EXPECT_EQ(again["created_at"], payload["created_at"]);
  EXPECT_EQ(again["custom"], payload["custom"]);
  EXPECT_EQ(again["args"], payload["args"]);
  EXPECT_FALSE(again.contains("enqueued_at"));  // the server sets it when it enqueues
  EXPECT_THROW(depot::Job::from_json(depot::json::parse(R"({"jobtype":"x"})")), depot::Error);
}

TEST(ClientLog, WritesLogfmtWithQuotedValues) {
  auto line = depot::format_logfmt(depot::LogLevel::warn, "job failed",
                                   {{"jid", "j1"}, {"error", "said \"no\" = bad"}});
  EXPECT_NE(line.find(" level=warn msg=\"job failed\" jid=j1 error=\"said \\\"no\\\" = bad\""),
            std::string::npos)
      << line;
  EXPECT_TRUE(line.starts_with("time=")) << line;
}

TEST(ClientServer, PushFetchAckRoundTripsTheJob) {
  DepotServer server;
  depot::Client producer({.url = server.url()});
  depot::Job job{.jobtype = "Resize",
                 .args = {"a.png", 640},
                 .queue = "images",
                 .custom = {{"trace", {{"id", "t-1"}, {"hops", {1, 2, {{"x", nullptr}}}}}}}};
  producer.push(job);
  EXPECT_EQ(job.jid.size(), 24U);

  depot::Client worker({.url = server.url(), .wid = "w-client-test"});
  auto fetched = worker.fetch({"images"});
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->jid, job.jid);
  EXPECT_EQ(fetched->args, job.args);
  EXPECT_EQ(fetched->custom, job.custom);
  worker.ack(fetched->jid);
  auto info = producer.info();
  EXPECT_EQ(info["faktory"]["total_processed"], 1) << info.dump();
  EXPECT_EQ(worker.beat(), depot::ServerState::running);
}

TEST(ClientServer, PushBulkReportsTheJobsTheServerRefused) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  std::vector<depot::Job> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back({.jobtype = "Report", .args = {"daily"}, .custom = {{"unique_for", 60}}});
  }
  jobs.push_back({.jobtype = "Report", .args = {"weekly"}});
  auto refused = client.push_bulk(jobs);
  EXPECT_EQ(refused.size(), 2U);
  EXPECT_FALSE(refused.contains(jobs[0].jid));
  EXPECT_TRUE(refused.contains(jobs[1].jid));
  EXPECT_NE(refused[jobs[1].jid].find("not unique"), std::string::npos) << refused[jobs[1].jid];
  depot::Job one_more{.jobtype = "Report", .args = {"daily"}, .custom = {{"unique_for", 60}}};
  try {
    client.push(one_more);
    FAIL() << "a duplicate unique job was accepted";
  } catch (const depot::ServerError& e) {
    EXPECT_EQ(e.code(), "NOTUNIQUE");
  }
}

TEST(ClientServer, ScheduledPushWaitsInTheScheduledSet) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job later{.jobtype = "Remind"};
  client.push_at(later, std::chrono::system_clock::now() + 1h);
  depot::Job soon{.jobtype = "Remind"};
  client.push_at(soon, std::chrono::system_clock::now() + 1200ms);
  EXPECT_EQ(client.info()["faktory"]["sets"]["scheduled"], 2) << client.info().dump();
  depot::Client worker({.url = server.url(), .wid = "w-sched"});
  std::optional<depot::Job> fetched;
  for (int i = 0; i < 3 && !fetched; ++i)
    fetched = worker.fetch({"default"});
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->jid, soon.jid);
}

TEST(ClientServer, PausedQueuesAreNotFetchedFromUntilResumed) {
  DepotServer server;
  depot::Client client({.url = server.url(), .wid = "w-pause"});
  client.pause_queues({"mail"});  // before the queue has any job
  depot::Job job{.jobtype = "Send", .queue = "mail"};
  client.push(job);
  EXPECT_FALSE(client.fetch({"mail"}));  // after the server's ~2 s wait
  client.resume_queues({"mail"});
  auto fetched = client.fetch({"mail"});
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->jid, job.jid);
}

TEST(ClientServer, AuthenticatesWithThePasswordInTheUrl) {
  DepotServer server({"--password", "open sesame"});
  depot::Client good({.url = "tcp://:open sesame@127.0.0.1:" + std::to_string(server.port())});
  EXPECT_NO_THROW(good.info());
  depot::Client wrong({.url = server.url("nope")});
  EXPECT_THROW(wrong.info(), depot::ServerError);
  depot::Client none({.url = server.url()});
  EXPECT_THROW(none.info(), depot::ServerError);
}

TEST(ClientServer, ReconnectsWhenTheServerComesBack) {
  DepotServer server;
  depot::Client client({.url = server.url(), .reconnect_for = 10s});
  depot::Job first{.jobtype = "A"};
  client.push(first);
  server.stop();
  std::thread restart([&] {
    std::this_thread::sleep_for(300ms);
    server.start();
  });
  depot::Job second{.jobtype = "A"};
  EXPECT_NO_THROW(client.push(second));  // reconnects, with backoff, once depot is back
  restart.join();
  EXPECT_EQ(client.info()["faktory"]["queues"]["default"], 2) << client.info().dump();
}

TEST(ClientServer, GivesUpWithAConnectionErrorThatSaysWhere) {
  const uint16_t port = depot::bench::free_loopback_port();
  depot::Client client({.url = "tcp://127.0.0.1:" + std::to_string(port), .reconnect_for = 300ms});
  try {
    client.info();
    FAIL() << "connected to nothing";
  } catch (const depot::ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
}

}  // namespace
