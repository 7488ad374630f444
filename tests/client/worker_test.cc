// libdepot's Worker against a spawned depot: concurrency, ACK and FAIL, middleware, queue order,
// shutdown, and the server's quiet/terminate.
#include <atomic>
#include <csignal>
#include <depot/worker.h>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "support/depot_server.h"
#include "support/faktory_client.h"

// Outside the anonymous namespace and not inlined, so that the backtrace names it.
[[gnu::noinline]] void throw_traced_error_from_a_named_function() {
  throw depot::TracedError("no such file");
}

namespace {

using depot::testing::DepotServer;
using namespace std::chrono_literals;

depot::WorkerOptions options_for(const DepotServer& server, int concurrency,
                                 std::vector<depot::QueueWeight> queues = {{"default", 1}}) {
  depot::WorkerOptions options;
  options.client.url = server.url();
  options.concurrency = concurrency;
  options.queues = std::move(queues);
  options.handle_signals = false;  // the test process's signals stay the test runner's
  options.logger = depot::stderr_logger(depot::LogLevel::warn);
  options.heartbeat = 200ms;
  return options;
}

// Runs the worker on a thread; returns its report once it has stopped.
class RunningWorker {
 public:
  explicit RunningWorker(depot::Worker& worker)
      : worker_(worker), report_(std::async(std::launch::async, [&] { return worker.run(); })) {}
  ~RunningWorker() {
    if (report_.valid()) stop();
  }
  depot::WorkerReport stop() {
    worker_.terminate();
    return report_.get();
  }
  // The report once the worker stops by itself (the server's terminate), or nullopt at timeout.
  std::optional<depot::WorkerReport> wait(std::chrono::milliseconds timeout) {
    if (report_.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return report_.get();
  }

 private:
  depot::Worker& worker_;
  std::future<depot::WorkerReport> report_;
};

// Polls INFO until `done` holds or 10 s pass.
bool eventually(depot::Client& client, const std::function<bool(const depot::json&)>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done(client.info())) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(Worker, RunsJobsConcurrentlyAndAcksEachOnce) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  std::vector<depot::Job> jobs;
  for (int i = 0; i < 60; ++i)
    jobs.push_back({.jobtype = "Sleep", .args = {i}});
  ASSERT_TRUE(client.push_bulk(jobs).empty());

  std::mutex mutex;
  std::multiset<int> seen;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  depot::Worker worker(options_for(server, 8));
  worker.register_job("Sleep", [&](const depot::json& args) {
    int now = ++running;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(20ms);
    --running;
    std::lock_guard lock(mutex);
    seen.insert(args[0].get<int>());
  });
  RunningWorker run(worker);
  ASSERT_TRUE(eventually(
      client, [](const depot::json& info) { return info["faktory"]["total_processed"] == 60; }));
  auto report = run.stop();
  EXPECT_EQ(report.processed, 60);
  EXPECT_EQ(report.failed, 0);
  EXPECT_EQ(seen.size(), 60U);
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 60U);
  EXPECT_GT(most.load(), 1);
  EXPECT_LE(most.load(), 8);
  EXPECT_EQ(client.info()["faktory"]["sets"]["working"], 0);
}

// The failure the server recorded for a job in the retry set (requeued and fetched again).
depot::json retried_failure(const DepotServer& server, const std::string& jid) {
  depot::testing::FaktoryClient raw(server.port());
  EXPECT_EQ(raw.command(R"(MUTATE {"cmd":"requeue","target":"retries","filter":{"jids":[")" + jid +
                        "\"]}}"),
            "+OK");
  depot::Client client({.url = server.url(), .wid = "w-inspect"});
  auto job = client.fetch({"default"});
  if (!job || job->jid != jid) return nullptr;
  return job->extra["failure"];
}

TEST(Worker, AnExceptionFailsTheJobWithItsTypeMessageAndBacktrace) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "Divide", .args = {1, 0}};
  client.push(job);
  depot::Worker worker(options_for(server, 2));
  worker.register_job("Divide", [](const depot::json& args) {
    if (args[1] == 0) throw std::invalid_argument("division by zero");
  });
  {
    RunningWorker run(worker);
    ASSERT_TRUE(eventually(
        client, [](const depot::json& info) { return info["faktory"]["sets"]["retries"] == 1; }));
    EXPECT_EQ(run.stop().failed, 1);
  }
  auto failure = retried_failure(server, job.jid);
  ASSERT_TRUE(failure.is_object()) << failure.dump();
  EXPECT_EQ(failure["errtype"], "std::invalid_argument");
  EXPECT_EQ(failure["message"], "division by zero");
  EXPECT_EQ(failure["retry_count"], 0);
  ASSERT_TRUE(failure["backtrace"].is_array());
  EXPECT_GT(failure["backtrace"].size(), 2U) << failure.dump();
}

TEST(Worker, TracedErrorsCarryTheBacktraceOfTheirThrow) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "Traced", .backtrace = 30};
  client.push(job);
  depot::Worker worker(options_for(server, 1));
  worker.register_job("Traced",
                      [](depot::JobContext&) { throw_traced_error_from_a_named_function(); });
  {
    RunningWorker run(worker);
    ASSERT_TRUE(eventually(
        client, [](const depot::json& info) { return info["faktory"]["sets"]["retries"] == 1; }));
  }
  auto failure = retried_failure(server, job.jid);
  EXPECT_EQ(failure["errtype"], "depot::TracedError");
  std::string trace = failure["backtrace"].dump();
  // The first frame is the function that threw, not the worker's catch.
  ASSERT_FALSE(failure["backtrace"].empty());
  EXPECT_NE(
      failure["backtrace"][0].get<std::string>().find("throw_traced_error_from_a_named_function"),
      std::string::npos)
      << trace;
}

TEST(Worker, AnUnknownJobTypeIsFailedNotLost) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "NobodyKnowsMe"};
  client.push(job);
  depot::Worker worker(options_for(server, 1));
  worker.register_job("Other", [](const depot::json&) {});
  RunningWorker run(worker);
  ASSERT_TRUE(eventually(
      client, [](const depot::json& info) { return info["faktory"]["sets"]["retries"] == 1; }));
  EXPECT_EQ(run.stop().failed, 1);
}

TEST(Worker, MiddlewareWrapsPerformInTheOrderAdded) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "Note"};
  client.push(job);
  std::mutex mutex;
  std::vector<std::string> events;
  auto record = [&](std::string e) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(e));
  };
  std::atomic<int64_t> timed_ns{-1};
  depot::Worker worker(options_for(server, 1));
  worker.use([&](depot::JobContext& ctx, const std::function<void()>& next) {
    record("outer>" + ctx.job().jobtype);
    next();
    record("<outer");
  });
  worker.use([&](depot::JobContext&, const std::function<void()>& next) {
    record("inner>");
    next();
    record("<inner");
  });
  worker.use(
      depot::middleware::timing([&](const depot::Job&, std::chrono::nanoseconds elapsed, bool ok) {
        if (ok) timed_ns = elapsed.count();
      }));
  worker.register_job("Note", [&](const depot::json&) {
    std::this_thread::sleep_for(5ms);
    record("perform");
  });
  RunningWorker run(worker);
  ASSERT_TRUE(eventually(
      client, [](const depot::json& info) { return info["faktory"]["total_processed"] == 1; }));
  run.stop();
  EXPECT_EQ(events,
            (std::vector<std::string>{"outer>Note", "inner>", "perform", "<inner", "<outer"}));
  EXPECT_GE(timed_ns.load(), 5'000'000);
}

// Which queue the first `samples` jobs a single-threaded worker runs came from.
double share_from_first_queue(const DepotServer& server, depot::QueueOrder order, int samples) {
  depot::Client client({.url = server.url()});
  for (const char* queue : {"high", "low"}) {
    std::vector<depot::Job> jobs;
    for (int i = 0; i < samples; ++i)
      jobs.push_back({.jobtype = "Q", .args = {queue}, .queue = queue});
    EXPECT_TRUE(client.push_bulk(jobs).empty());
  }
  std::mutex mutex;
  std::vector<std::string> order_seen;
  auto options = options_for(server, 1, {{"high", 3}, {"low", 1}});
  options.order = order;
  depot::Worker worker(options);
  worker.register_job("Q", [&](const depot::json& args) {
    std::lock_guard lock(mutex);
    order_seen.push_back(args[0].get<std::string>());
    if (static_cast<int>(order_seen.size()) == samples) worker.quiet();
  });
  RunningWorker run(worker);
  while (true) {
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mutex);
    if (static_cast<int>(order_seen.size()) >= samples) break;
  }
  run.stop();
  std::lock_guard lock(mutex);
  int high = 0;
  for (int i = 0; i < samples; ++i)
    high += order_seen[static_cast<size_t>(i)] == "high";
  return static_cast<double>(high) / samples;
}

TEST(Worker, StrictOrderDrainsTheFirstQueueFirst) {
  DepotServer server;
  EXPECT_EQ(share_from_first_queue(server, depot::QueueOrder::strict, 100), 1.0);
}

TEST(Worker, WeightedOrderPicksQueuesInProportionToTheirWeights) {
  DepotServer server;
  // Weights 3:1: "high" comes first in 3/4 of fetches (binomial, n = 200: sd 0.031).
  double share = share_from_first_queue(server, depot::QueueOrder::weighted, 200);
  EXPECT_GT(share, 0.62);
  EXPECT_LT(share, 0.88);
}

TEST(Worker, JobsStillRunningAtTheShutdownTimeoutAreFailedBack) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "Stubborn"};
  client.push(job);
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  auto options = options_for(server, 1);
  options.shutdown_timeout = 300ms;
  depot::Worker worker(options);
  worker.register_job("Stubborn", [&](const depot::json&) {
    started = true;
    while (!release)
      std::this_thread::sleep_for(5ms);  // ignores stop_requested()
  });
  RunningWorker run(worker);
  while (!started)
    std::this_thread::sleep_for(5ms);
  auto report = run.stop();
  EXPECT_EQ(report.abandoned, 1);
  EXPECT_EQ(client.info()["faktory"]["sets"]["retries"], 1);  // retried, not lost
  release = true;
  std::this_thread::sleep_for(50ms);  // the abandoned thread finishes without reporting
  EXPECT_EQ(client.info()["faktory"]["total_processed"], 0);
}

TEST(Worker, QuietsAndTerminatesOnTheServersWord) {
  DepotServer server;
  depot::Worker worker(options_for(server, 2));
  std::atomic<bool> stop_seen{false};
  std::atomic<bool> started{false};
  worker.register_job("Long", [&](depot::JobContext& ctx) {
    started = true;
    while (!ctx.stop_requested())
      std::this_thread::sleep_for(5ms);
    stop_seen = true;
  });
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "Long"};
  client.push(job);
  RunningWorker run(worker);
  while (!started)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(server.http("POST", "/api/jobs/workers/" + worker.wid() + "/quiet"), 200);
  for (int i = 0; i < 200 && !stop_seen; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(stop_seen);  // the heartbeat brought "quiet": the running job was asked to stop
  EXPECT_EQ(server.http("POST", "/api/jobs/workers/" + worker.wid() + "/terminate"), 200);
  auto report = run.wait(10s);
  ASSERT_TRUE(report) << "the worker did not stop on the server's terminate";
  EXPECT_EQ(report->processed, 1);
}

// A logger that keeps every line, for tests that read the worker's logs.
struct CapturedLog {
  std::mutex mutex;
  std::vector<std::string> lines;
  depot::Logger logger() {
    return [this](depot::LogLevel level, std::string_view message, const depot::LogFields& f) {
      std::lock_guard lock(mutex);
      lines.push_back(depot::format_logfmt(level, message, f));
    };
  }
  bool contains(const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& line : lines) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

TEST(Worker, LoggingAndErrorReporterMiddlewareSeeEveryJob) {
  DepotServer server;
  depot::Client client({.url = server.url()});
  depot::Job good{.jobtype = "Good"};
  depot::Job bad{.jobtype = "Bad"};
  client.push(good);
  client.push(bad);
  CapturedLog log;
  auto options = options_for(server, 1);
  options.logger = log.logger();
  std::mutex mutex;
  std::vector<std::string> reported;
  depot::Worker worker(options);
  worker.use(depot::middleware::logging());
  worker.use(depot::middleware::error_reporter([&](const depot::Job& job, std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& error) {
      std::lock_guard lock(mutex);
      reported.push_back(job.jid + ": " + error.what());
    }
  }));
  worker.register_job("Good", [](const depot::json&) {});
  worker.register_job("Bad", [](const depot::json&) { throw std::runtime_error("bad input"); });
  RunningWorker run(worker);
  ASSERT_TRUE(eventually(client, [](const depot::json& info) {
    return info["faktory"]["total_processed"] == 1 && info["faktory"]["sets"]["retries"] == 1;
  }));
  run.stop();
  EXPECT_TRUE(log.contains("msg=\"job done\" jid=" + good.jid + " jobtype=Good elapsed_ms="));
  EXPECT_TRUE(log.contains("msg=\"job failed\" jid=" + bad.jid + " jobtype=Bad"));
  std::lock_guard lock(mutex);
  EXPECT_EQ(reported, std::vector<std::string>{bad.jid + ": bad input"});
}

TEST(Worker, SigtstpQuietsAndSigtermTerminates) {
  DepotServer server;
  CapturedLog log;
  auto options = options_for(server, 1);
  options.handle_signals = true;
  options.logger = log.logger();
  depot::Worker worker(options);
  worker.register_job("Nothing", [](const depot::json&) {});
  auto report = std::async(std::launch::async, [&] { return worker.run(); });
  // The handlers are in place once the worker says it started.
  for (int i = 0; i < 500 && !log.contains("worker started"); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(log.contains("worker started"));
  ASSERT_EQ(::raise(SIGTSTP), 0);
  for (int i = 0; i < 500 && !log.contains("by=SIGTSTP"); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(log.contains("msg=\"quiet: no more fetching\""));
  EXPECT_EQ(report.wait_for(200ms), std::future_status::timeout);  // quiet is not the end
  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_EQ(report.wait_for(10s), std::future_status::ready);
  report.get();
  EXPECT_TRUE(log.contains("msg=terminating wid=" + worker.wid() + " by=SIGTERM"));
}

}  // namespace
