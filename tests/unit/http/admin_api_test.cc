#include "protocol/http/admin_api.h"

#include <future>

#include <gtest/gtest.h>

#include "storage/sync_service.h"
#include "support/temp_dir.h"

namespace depot::http {
namespace {

Request make(std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.segments = path_segments(path).value();
  request.path = std::move(path);
  request.host = "127.0.0.1:7420";
  return request;
}

jobs::WorkerInfo worker(const std::string& wid) {
  return {wid, "host-" + wid, 42, {"ruby", "a\"b"}, jobs::WorkerState::running, 0, 0, 0};
}

TEST(AdminApi, HealthAnswersOk) {
  AdminApi api(nullptr);
  Response response = api.handle(make("GET", "/api/health"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"status":"ok"})");
  EXPECT_EQ(api.handle(make("POST", "/api/health")).status, 405);
}

TEST(AdminApi, ReportsConsumerLagPerGroupAndPartition) {
  EXPECT_EQ(AdminApi(nullptr).handle(make("GET", "/api/eventlog/lag")).status, 503);
  AdminApi api(nullptr, std::nullopt, nullptr, [] {
    return std::vector<ConsumerLag>{{"billing", "orders", 0, 30, 40, 10},
                                    {"billing", "orders", 1, 5, 5, 0},
                                    {"audit", "gone", 0, 7, -1, -1}};
  });
  Response response = api.handle(make("GET", "/api/eventlog/lag"));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"groups":[{"group":"billing","lag":10,"partitions":[)"
                           R"({"topic":"orders","partition":0,"committed":30,"end":40,"lag":10},)"
                           R"({"topic":"orders","partition":1,"committed":5,"end":5,"lag":0}]},)"
                           R"({"group":"audit","lag":0,"partitions":[)"
                           R"({"topic":"gone","partition":0,"committed":7,"end":-1,"lag":-1}]}]})");
  EXPECT_EQ(api.handle(make("POST", "/api/eventlog/lag")).status, 405);
}

TEST(AdminApi, ListsWorkersWithTheirState) {
  auto workers_owner = std::make_shared<jobs::WorkerRegistry>();
  jobs::WorkerRegistry& workers = *workers_owner;
  workers.connect(worker("w1"), 1'700'000'000'000'000'000);
  AdminApi api(workers_owner);
  Response response = api.handle(make("GET", "/api/jobs/workers"));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.body,
            R"({"workers":[{"wid":"w1","hostname":"host-w1","pid":42,"labels":["ruby","a\"b"],)"
            R"("state":"running","started_at":"2023-11-14T22:13:20Z",)"
            R"("last_beat":"2023-11-14T22:13:20Z","connections":1}]})");
}

TEST(AdminApi, QuietsAndTerminatesOneWorker) {
  auto workers_owner = std::make_shared<jobs::WorkerRegistry>();
  jobs::WorkerRegistry& workers = *workers_owner;
  workers.connect(worker("w1"), 0);
  workers.connect(worker("w2"), 0);
  AdminApi api(workers_owner);
  Response quiet = api.handle(make("POST", "/api/jobs/workers/w1/quiet"));
  EXPECT_EQ(quiet.status, 200);
  EXPECT_EQ(quiet.body, R"({"state":"quiet","signalled":1})");
  EXPECT_EQ(workers.state("w1"), jobs::WorkerState::quiet);
  EXPECT_EQ(workers.state("w2"), jobs::WorkerState::running);
  // BEAT reports the signal to the worker.
  EXPECT_EQ(workers.beat("w1", std::nullopt, 0), jobs::WorkerState::quiet);

  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workers/w1/terminate")).status, 200);
  EXPECT_EQ(workers.state("w1"), jobs::WorkerState::terminate);
  // States only move forward: quiet after terminate changes nothing.
  Response after = api.handle(make("POST", "/api/jobs/workers/w1/quiet"));
  EXPECT_EQ(after.body, R"({"state":"terminate","signalled":1})");
  EXPECT_EQ(workers.state("w1"), jobs::WorkerState::terminate);
}

TEST(AdminApi, ListsReservedJobsWithTheirProgress) {
  EXPECT_EQ(AdminApi(nullptr).handle(make("GET", "/api/jobs/working")).status, 503);
  testing::TempDir dir;
  storage::SyncService sync{storage::FsyncPolicy{}};
  jobs::UnixNanos now = 1'700'000'000'000'000'000;
  auto opened = jobs::JobStore::open({dir.path() / "jobs", &sync, [&now] { return now; }, nullptr});
  ASSERT_TRUE(opened);
  std::shared_ptr<jobs::JobStore> store = std::move(opened).value();
  for (const char* jid : {"job-0001", "job-0002"}) {
    jobs::Job job;
    job.jid = jid;
    job.jobtype = "Iterate";
    std::promise<std::error_code> durable;
    ASSERT_TRUE(store->push(job, [&](std::error_code ec) { durable.set_value(ec); }));
    ASSERT_FALSE(durable.get_future().get());
    const std::vector<std::string> queues{"default"};
    ASSERT_TRUE(store->fetch(queues, "w\"1").value());
    now += 1'000'000'000;
  }
  ASSERT_TRUE(store->update_reserved("job-0002", "w\"1", nullptr, jobs::Progress{5, 10}, nullptr));
  AdminApi api(nullptr, std::nullopt, store);
  Response response = api.handle(make("GET", "/api/jobs/working"));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.body,
            R"({"working":2,"jobs":[)"
            R"({"jid":"job-0001","jobtype":"Iterate","queue":"default","wid":"w\"1",)"
            R"("reserved_at":"2023-11-14T22:13:20Z","expires_at":"2023-11-14T22:43:20Z",)"
            R"("progress":null},)"
            R"({"jid":"job-0002","jobtype":"Iterate","queue":"default","wid":"w\"1",)"
            R"("reserved_at":"2023-11-14T22:13:21Z","expires_at":"2023-11-14T22:43:22Z",)"
            R"("progress":{"done":5,"total":10,"updated_at":"2023-11-14T22:13:22Z"}}]})");
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/working")).status, 405);
  ASSERT_TRUE(store->close());
}

TEST(AdminApi, RoutesOnWholeSegments) {
  auto workers_owner = std::make_shared<jobs::WorkerRegistry>();
  workers_owner->connect(worker("w1"), 0);
  workers_owner->connect(worker("a/b"), 0);
  AdminApi api(workers_owner);
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workersXw1/quiet")).status, 404);
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workers/w1/x/quiet")).status, 404);
  EXPECT_EQ(workers_owner->state("w1"), jobs::WorkerState::running);
  // An escaped slash belongs to its segment: this is the worker "a/b".
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workers/a%2Fb/quiet")).status, 200);
  EXPECT_EQ(workers_owner->state("a/b"), jobs::WorkerState::quiet);
  EXPECT_EQ(api.handle(make("GET", "/api/jobs/workers/")).status, 200);
  EXPECT_FALSE(path_segments("/api/a%00b"));
}

TEST(AdminApi, APasswordRequiresBasicAuth) {
  AdminApi api(std::make_shared<jobs::WorkerRegistry>(), "s3cret");
  Request request = make("GET", "/api/health");
  Response refused = api.handle(request);
  EXPECT_EQ(refused.status, 401);
  ASSERT_EQ(refused.headers.size(), 1u);
  EXPECT_EQ(refused.headers[0].first, "WWW-Authenticate");
  request.authorization = "Basic YWRtaW46d3Jvbmc=";  // admin:wrong
  EXPECT_EQ(api.handle(request).status, 401);
  request.authorization = "Basic YWRtaW46czNjcmV0";  // admin:s3cret
  EXPECT_EQ(api.handle(request).status, 200);
  request.authorization = "Basic OnMzY3JldA==";  // :s3cret (Faktory's UI ignores the user)
  EXPECT_EQ(api.handle(request).status, 200);
  request.authorization = "Basic !!!!";
  EXPECT_EQ(api.handle(request).status, 401);
}

TEST(AdminApi, RefusesCrossOriginChanges) {
  auto workers_owner = std::make_shared<jobs::WorkerRegistry>();
  workers_owner->connect(worker("w1"), 0);
  AdminApi api(workers_owner);
  Request post = make("POST", "/api/jobs/workers/quiet");
  post.origin = "http://evil.example";
  EXPECT_EQ(api.handle(post).status, 403);
  EXPECT_EQ(workers_owner->state("w1"), jobs::WorkerState::running);
  Request read = make("GET", "/api/jobs/workers");
  read.origin = "http://evil.example";
  EXPECT_EQ(api.handle(read).status, 200);  // the browser's same-origin policy hides the answer
  post.origin = "http://127.0.0.1:7420";
  EXPECT_EQ(api.handle(post).status, 200);
  EXPECT_EQ(workers_owner->state("w1"), jobs::WorkerState::quiet);
}

TEST(AdminApi, SignalsEveryWorker) {
  auto workers_owner = std::make_shared<jobs::WorkerRegistry>();
  jobs::WorkerRegistry& workers = *workers_owner;
  workers.connect(worker("w1"), 0);
  workers.connect(worker("w2"), 0);
  AdminApi api(workers_owner);
  Response response = api.handle(make("POST", "/api/jobs/workers/terminate"));
  EXPECT_EQ(response.body, R"({"state":"terminate","signalled":2})");
  EXPECT_EQ(workers.state("w1"), jobs::WorkerState::terminate);
  EXPECT_EQ(workers.state("w2"), jobs::WorkerState::terminate);
}

TEST(AdminApi, ErrorsSayWhatIsWrong) {
  AdminApi api(std::make_shared<jobs::WorkerRegistry>());
  Response unknown_worker = api.handle(make("POST", "/api/jobs/workers/nobody/quiet"));
  EXPECT_EQ(unknown_worker.status, 404);
  EXPECT_EQ(unknown_worker.body, R"({"error":"no worker with wid nobody is connected"})");
  Response wrong_method = api.handle(make("GET", "/api/jobs/workers/w1/quiet"));
  EXPECT_EQ(wrong_method.status, 405);
  ASSERT_EQ(wrong_method.headers.size(), 1u);
  EXPECT_EQ(wrong_method.headers[0], std::make_pair(std::string("Allow"), std::string("POST")));
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workers")).status, 405);
  EXPECT_EQ(api.handle(make("POST", "/api/jobs/workers/w1/pause")).status, 404);
  EXPECT_EQ(api.handle(make("GET", "/nope")).body, R"({"error":"no such resource: GET /nope"})");
  AdminApi without_jobs(nullptr);
  EXPECT_EQ(without_jobs.handle(make("GET", "/api/jobs/workers")).status, 503);
}

TEST(RequestParser, ParsesPipelinedRequestsInPieces) {
  RequestParser parser;
  std::string wire =
      "POST /api/jobs/workers/a%2Fb/quiet?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
      "GET /api/health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  std::string buffered;
  std::vector<Request> requests;
  for (char c : wire) {  // a byte at a time: the worst a socket can do
    buffered += c;
    auto fed = parser.feed(as_bytes(buffered));
    ASSERT_TRUE(std::holds_alternative<size_t>(fed));
    buffered.erase(0, std::get<size_t>(fed));
    if (parser.done()) requests.push_back(std::get<Request>(parser.take()));
  }
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/api/jobs/workers/a%2Fb/quiet");
  EXPECT_EQ(requests[0].segments,
            (std::vector<std::string>{"api", "jobs", "workers", "a/b", "quiet"}));
  EXPECT_EQ(requests[0].host, "h");
  EXPECT_EQ(requests[0].query, "x=1");
  EXPECT_EQ(requests[0].body, "{}");
  EXPECT_TRUE(requests[0].keep_alive);
  EXPECT_EQ(requests[1].path, "/api/health");
  EXPECT_FALSE(requests[1].keep_alive);
  EXPECT_TRUE(buffered.empty());
}

TEST(RequestParser, RejectsMalformedAndOversizedRequests) {
  {
    RequestParser parser;
    auto fed = parser.feed(as_bytes("NOT HTTP AT ALL\r\n\r\n"));
    ASSERT_TRUE(std::holds_alternative<ParseError>(fed));
    EXPECT_EQ(std::get<ParseError>(fed).status, 400);
  }
  {
    RequestParser parser(Limits{64, 16});
    auto fed =
        parser.feed(as_bytes("GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'x') + "\r\n\r\n"));
    ASSERT_TRUE(std::holds_alternative<ParseError>(fed));
    EXPECT_EQ(std::get<ParseError>(fed).status, 431);
  }
  {
    RequestParser parser(Limits{1024, 16});
    auto fed = parser.feed(as_bytes("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n"));
    ASSERT_TRUE(std::holds_alternative<ParseError>(fed));
    EXPECT_EQ(std::get<ParseError>(fed).status, 413);
  }
}

TEST(Serialize, WritesStatusHeadersAndBody) {
  EXPECT_EQ(serialize({404, R"({"error":"x"})"}, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
            "Connection: close\r\n\r\n{\"error\":\"x\"}");
  Response with_header(405, "{}");
  with_header.headers.emplace_back("Allow", "GET, HEAD");
  EXPECT_EQ(serialize(with_header, true, /*head=*/true),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nAllow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n");
}

}  // namespace
}  // namespace depot::http
