// Iteration jobs: the enumerators' cursors, and interruption and resumption against a spawned
// depot (SIGTERM at random points, depot restarts, max_job_runtime, throttling, exceptions).
#include <atomic>
#include <depot/enumerators.h>
#include <depot/iteration.h>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "support/depot_server.h"
#include "support/faktory_client.h"

namespace {

using depot::json;
using depot::testing::DepotServer;
using depot::testing::TempDir;
using namespace std::chrono_literals;

// Every item of an enumerator, with the cursor after each.
template <class Item>
std::vector<std::pair<Item, json>> drain(depot::Enumerator<Item> e) {
  std::vector<std::pair<Item, json>> all;
  while (auto step = e.next())
    all.emplace_back(std::move(step->item), std::move(step->cursor));
  return all;
}

// Resuming from the cursor after any item yields exactly the items after it.
template <class Item, class Build>
void expect_resumes_everywhere(Build build) {
  auto all = drain<Item>(build(json()));
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    auto rest = drain<Item>(build(all[i].second));
    ASSERT_EQ(rest.size(), all.size() - i - 1) << "after item " << i;
    for (size_t j = 0; j < rest.size(); ++j)
      EXPECT_EQ(rest[j].first, all[i + 1 + j].first);
  }
}

TEST(Enumerators, RangeAndContainersResumeAfterTheirCursor) {
  auto all = drain(depot::enumerate::range(5, 9, json()));
  ASSERT_EQ(all.size(), 4U);
  EXPECT_EQ(all[0].first, 5);
  EXPECT_EQ(depot::enumerate::range(5, 9, json()).total(), 4);
  expect_resumes_everywhere<int64_t>(
      [](const json& c) { return depot::enumerate::range(0, 7, c); });
  std::vector<std::string> words{"a", "b", "c"};
  expect_resumes_everywhere<std::string>(
      [&](const json& c) { return depot::enumerate::each(words, c); });
}

TEST(Enumerators, LinesUseByteOffsetsAndHandleCrlfAndNoFinalNewline) {
  TempDir dir;
  auto path = dir.write("lines.txt", "one\r\ntwo\n\nfour");
  auto all = drain(depot::enumerate::lines(path, json()));
  ASSERT_EQ(all.size(), 4U);
  EXPECT_EQ(all[0].first, "one");
  EXPECT_EQ(all[0].second, 5);
  EXPECT_EQ(all[2].first, "");
  EXPECT_EQ(all[3].first, "four");
  expect_resumes_everywhere<std::string>(
      [&](const json& c) { return depot::enumerate::lines(path, c); });
  EXPECT_THROW(depot::enumerate::lines(dir.path() / "missing", json()), depot::Error);
}

TEST(Enumerators, CsvRowsFollowRfc4180) {
  TempDir dir;
  auto path = dir.write("rows.csv",
                        "id,text\r\n1,plain\r\n2,\"with, comma\"\n3,\"say \"\"hi\"\"\"\n"
                        "4,\"two\nlines\"\n5,\n");
  auto all = drain(depot::enumerate::csv_rows(path, json()));
  ASSERT_EQ(all.size(), 5U);
  EXPECT_EQ(all[0].first, (depot::enumerate::CsvRow{"1", "plain"}));
  EXPECT_EQ(all[1].first, (depot::enumerate::CsvRow{"2", "with, comma"}));
  EXPECT_EQ(all[2].first, (depot::enumerate::CsvRow{"3", "say \"hi\""}));
  EXPECT_EQ(all[3].first, (depot::enumerate::CsvRow{"4", "two\nlines"}));
  EXPECT_EQ(all[4].first, (depot::enumerate::CsvRow{"5", ""}));
  expect_resumes_everywhere<depot::enumerate::CsvRow>(
      [&](const json& c) { return depot::enumerate::csv_rows(path, c); });
  auto bad = dir.write("bad.csv", "a\n\"never closed\n");
  auto rows = depot::enumerate::csv_rows(bad, json(), {.header = false});
  rows.next();
  EXPECT_THROW(rows.next(), depot::Error);
}

TEST(Enumerators, BatchesNestedAndByKeyResumeWhereTheyStopped) {
  auto batches = [](const json& c) {
    return depot::enumerate::batches(depot::enumerate::range(0, 10, c), 4);
  };
  auto all = drain(batches(json()));
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[2].first, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(batches(json()).total(), 3);
  expect_resumes_everywhere<std::vector<int64_t>>(batches);

  using Pair = depot::enumerate::Nested<int64_t, int64_t>;
  auto nested = [](const json& c) {
    return depot::enumerate::nested<int64_t, int64_t>(
        [](const json& oc) { return depot::enumerate::range(1, 4, oc); },
        [](const int64_t& outer, const json& ic) { return depot::enumerate::range(0, outer, ic); },
        c);
  };
  auto pairs = drain(nested(json()));
  ASSERT_EQ(pairs.size(), 6U);  // 1 + 2 + 3
  EXPECT_EQ(pairs[3].first.outer, 3);
  EXPECT_EQ(pairs[3].first.inner, 0);
  auto rest = drain(nested(pairs[1].second));
  ASSERT_EQ(rest.size(), 4U);
  EXPECT_EQ(rest[0].first.outer, 2);
  EXPECT_EQ(rest[0].first.inner, 1);
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto tail = drain(nested(pairs[i].second));
    ASSERT_EQ(tail.size(), pairs.size() - i - 1);
    for (size_t j = 0; j < tail.size(); ++j) {
      EXPECT_EQ(tail[j].first.outer, pairs[i + 1 + j].first.outer);
      EXPECT_EQ(tail[j].first.inner, pairs[i + 1 + j].first.inner);
    }
  }
  (void)sizeof(Pair);

  // A "store" of keys 10, 20, ..., 100, read three at a time after a key.
  int pages = 0;
  auto by_key = [&](const json& c) {
    return depot::enumerate::by_key<int>(
        [&](const json& after) {
          ++pages;
          std::vector<int> page;
          for (int k = after.is_null() ? 10 : after.get<int>() + 10; k <= 100 && page.size() < 3;
               k += 10) {
            page.push_back(k);
          }
          return page;
        },
        [](const int& k) { return json(k); }, c);
  };
  auto keys = drain(by_key(json()));
  ASSERT_EQ(keys.size(), 10U);
  EXPECT_EQ(pages, 5);  // four pages and the empty one that ends it
  expect_resumes_everywhere<int>(by_key);
}

depot::WorkerOptions worker_options(const DepotServer& server) {
  depot::WorkerOptions options;
  options.client.url = server.url();
  options.concurrency = 2;
  options.handle_signals = false;
  options.logger = depot::stderr_logger(depot::LogLevel::warn);
  return options;
}

// What the in-process iteration jobs saw, shared by every instance (the worker makes one per run).
struct Seen {
  std::mutex mutex;
  std::multiset<int64_t> items;
  int starts = 0;
  int resumes = 0;
  int completes = 0;
  int shutdowns = 0;
  int64_t times_interrupted = -1;
  json first_cursor_on_resume;
  std::vector<std::chrono::steady_clock::time_point> runs;
  bool throw_at_500 = false;
  int throttles_left = 0;
  std::optional<int> retry_count_at_completion;
  void reset() {
    std::lock_guard lock(mutex);
    items.clear();
    starts = resumes = completes = shutdowns = 0;
    times_interrupted = -1;
    first_cursor_on_resume = json();
    runs.clear();
    throw_at_500 = false;
    throttles_left = 0;
    retry_count_at_completion.reset();
  }
};
Seen seen;

class CountTo : public depot::IterationJob<int64_t> {
 public:
  depot::Enumerator<int64_t> build_enumerator(const json& args, const json& cursor) override {
    return depot::enumerate::range(0, args[0].get<int64_t>(), cursor);
  }
  void each_iteration(int64_t& item, const json& args) override {
    if (args.size() > 1) std::this_thread::sleep_for(std::chrono::microseconds(args[1].get<int>()));
    std::lock_guard lock(seen.mutex);
    if (seen.throw_at_500 && item == 500) {
      seen.throw_at_500 = false;
      throw std::runtime_error("item 500 failed");
    }
    seen.items.insert(item);
  }
  std::optional<std::chrono::milliseconds> throttle() override {
    std::lock_guard lock(seen.mutex);
    if (seen.throttles_left == 0) return std::nullopt;
    --seen.throttles_left;
    return 1500ms;
  }
  void on_start() override {
    std::lock_guard lock(seen.mutex);
    ++seen.starts;
    seen.runs.push_back(std::chrono::steady_clock::now());
  }
  void on_resume() override {
    std::lock_guard lock(seen.mutex);
    if (seen.resumes++ == 0) seen.first_cursor_on_resume = state().cursor;
    seen.runs.push_back(std::chrono::steady_clock::now());
  }
  void on_shutdown() override {
    std::lock_guard lock(seen.mutex);
    ++seen.shutdowns;
  }
  void on_complete() override {
    std::lock_guard lock(seen.mutex);
    ++seen.completes;
    seen.times_interrupted = state().times_interrupted;
    seen.retry_count_at_completion = context().job().retry_count();
  }
};

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool completed() {
  std::lock_guard lock(seen.mutex);
  return seen.completes > 0;
}

TEST(Iteration, MaxJobRuntimeInterruptsAndTheJobResumesFromItsCursor) {
  seen.reset();
  DepotServer server;
  auto options = worker_options(server);
  options.iteration.max_job_runtime = 100ms;
  depot::Worker worker(options);
  worker.register_job<CountTo>("CountTo");
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "CountTo", .args = {2000, 300}};  // ~0.7 s of items
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  ASSERT_TRUE(wait_until(completed, 20s));
  worker.terminate();
  auto report = run.get();
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(std::set<int64_t>(seen.items.begin(), seen.items.end()).size(), 2000U);
  EXPECT_EQ(seen.items.size(), 2000U);  // interruptions fall between items: none done twice
  EXPECT_EQ(seen.starts, 1);
  EXPECT_GE(seen.times_interrupted, 3);
  EXPECT_EQ(seen.resumes, seen.times_interrupted);
  EXPECT_EQ(seen.shutdowns, seen.times_interrupted + 1);
  EXPECT_EQ(report.requeued, seen.times_interrupted);
  EXPECT_EQ(report.processed, 1);
}

TEST(Iteration, ThrottlingPushesTheJobBackWithADelay) {
  seen.reset();
  {
    std::lock_guard lock(seen.mutex);
    seen.throttles_left = 1;
  }
  DepotServer server;
  depot::Worker worker(worker_options(server));
  worker.register_job<CountTo>("CountTo");
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "CountTo", .args = {10}};
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  ASSERT_TRUE(wait_until(
      [] {
        std::lock_guard lock(seen.mutex);
        return !seen.runs.empty();
      },
      5s));
  // Throttled before its first item: it waits in the scheduled set.
  ASSERT_TRUE(wait_until([&] { return client.info()["faktory"]["sets"]["scheduled"] == 1; }, 5s));
  ASSERT_TRUE(wait_until(completed, 10s));
  worker.terminate();
  run.get();
  std::lock_guard lock(seen.mutex);
  ASSERT_EQ(seen.runs.size(), 2U);
  EXPECT_GE(seen.runs[1] - seen.runs[0], 1400ms);
  EXPECT_EQ(seen.items.size(), 10U);
  EXPECT_EQ(seen.times_interrupted, 1);
}

TEST(Iteration, AnExceptionRetriesFromTheLastItemThatSucceeded) {
  seen.reset();
  {
    std::lock_guard lock(seen.mutex);
    seen.throw_at_500 = true;
  }
  DepotServer server;
  auto options = worker_options(server);
  options.iteration.checkpoint_every_items = 100;
  depot::Worker worker(options);
  worker.register_job<CountTo>("CountTo");
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "CountTo", .args = {1000}};
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  ASSERT_TRUE(wait_until([&] { return client.info()["faktory"]["sets"]["retries"] == 1; }, 10s));
  // Skip the retry's backoff (15 s or more).
  depot::testing::FaktoryClient raw(server.port());
  ASSERT_EQ(raw.command(R"(MUTATE {"cmd":"requeue","target":"retries","filter":{"jids":[")" +
                        job.jid + "\"]}}"),
            "+OK");
  ASSERT_TRUE(wait_until(completed, 10s));
  worker.terminate();
  run.get();
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(seen.first_cursor_on_resume, 499);  // not 399, the last periodic checkpoint
  EXPECT_EQ(seen.items.size(), 1000U);          // item 500 failed, then succeeded once
  EXPECT_EQ(std::set<int64_t>(seen.items.begin(), seen.items.end()).size(), 1000U);
  EXPECT_EQ(seen.starts, 1);
  EXPECT_EQ(seen.resumes, 1);
}

// The CSV import example under SIGTERM at random points, with depot itself restarted (cleanly or
// by SIGKILL) along the way: every row is done, none skipped, and the output is byte for byte the
// output of one uninterrupted run.
class IterationCsvImport : public ::testing::Test {
 protected:
  std::vector<std::string> tool(const std::string& server_url, std::vector<std::string> args) {
    args.insert(args.begin(), {"--url", server_url});
    return args;
  }

  // Runs the example with the arguments; returns its exit code (and its stderr in `err`).
  int run_tool(const std::vector<std::string>& args, std::string* err = nullptr) {
    std::string command = CSV_IMPORT_BINARY;
    for (const auto& a : args)
      command += " '" + a + "'";
    command += " 2>" + (dir_.path() / "tool.err").string() + " >/dev/null";
    int status = std::system(command.c_str());
    if (err) {
      std::ifstream in(dir_.path() / "tool.err");
      err->assign(std::istreambuf_iterator<char>(in), {});
    }
    return WEXITSTATUS(status);
  }

  static std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  TempDir dir_;
};

// A worker process of the example (not through a shell, so SIGTERM reaches it).
class ExampleWorker {
 public:
  explicit ExampleWorker(const std::vector<std::string>& args) {
    std::vector<std::string> argv_strings{CSV_IMPORT_BINARY};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    err_ = std::tmpfile();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(::fileno(err_), STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~ExampleWorker() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::fclose(err_);
  }
  // Waits until the worker has installed its signal handlers (it says "worker started" after), so
  // that a SIGTERM tests the worker's shutdown and not how fast a sanitized binary loads.
  bool wait_until_started() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (err().find("worker started") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  // SIGTERM, then the exit code.
  int terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string err() const {
    // pread: the child writes through the same open file, so moving its offset would overwrite.
    std::string text;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::pread(::fileno(err_), buffer, sizeof buffer, static_cast<off_t>(text.size()))) >
           0)
      text.append(buffer, static_cast<size_t>(n));
    return text;
  }

 private:
  pid_t pid_ = -1;
  std::FILE* err_ = nullptr;
};

TEST_F(IterationCsvImport, SigtermAtRandomPointsNeitherLosesNorSkipsARow) {
  constexpr int kRows = 20000;
  auto csv = (dir_.path() / "rows.csv").string();
  ASSERT_EQ(run_tool({"generate", "--rows", std::to_string(kRows), "--csv", csv}), 0);

  // The reference: one uninterrupted run.
  std::string reference;
  {
    DepotServer server;
    auto out = (dir_.path() / "reference.bin").string();
    ASSERT_EQ(run_tool(tool(server.url(), {"enqueue", "--csv", csv, "--out", out})), 0);
    std::string err;
    ASSERT_EQ(run_tool(tool(server.url(), {"work", "--exit-when-done"}), &err), 0) << err;
    reference = slurp(out);
  }
  ASSERT_EQ(reference.size(), kRows * 8U);

  DepotServer server;
  auto out = (dir_.path() / "interrupted.bin").string();
  ASSERT_EQ(run_tool(tool(server.url(), {"enqueue", "--csv", csv, "--out", out})), 0);
  std::mt19937 random(std::random_device{}());
  int rounds = 0;
  bool done = false;
  std::string log;
  while (!done) {
    ASSERT_LT(rounds, 200) << "the import never finished:\n" << log;
    ExampleWorker worker(tool(server.url(), {"work", "--item-delay-us", "20", "--checkpoint-items",
                                             "250", "--exit-when-done"}));
    ASSERT_TRUE(worker.wait_until_started()) << worker.err();
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + random() % 120));
    EXPECT_EQ(worker.terminate(), 0) << worker.err();
    std::string err = worker.err();
    log += err;
    done = err.find("import complete") != std::string::npos;
    ++rounds;
    if (!done && rounds % 4 == 0) {
      // The cursor survives depot going away too: cleanly, or killed mid-write.
      if (rounds % 8 == 0) {
        server.kill();
      } else {
        server.stop();
      }
      server.start();
    }
  }
  EXPECT_GE(rounds, 3) << "the import finished before it could be interrupted";
  EXPECT_NE(log.find("iteration interrupted"), std::string::npos);
  std::string result = slurp(out);
  ASSERT_EQ(result.size(), reference.size());
  size_t zero_slots = 0;
  for (size_t i = 0; i < result.size(); i += 8) {
    zero_slots += result.compare(i, 8, std::string(8, '\0')) == 0;
  }
  EXPECT_EQ(zero_slots, 0U) << "rows were skipped";
  EXPECT_TRUE(result == reference) << "the output differs from the uninterrupted run's";
  RecordProperty("rounds", rounds);
}

TEST(Iteration, InterruptionsLeaveTheRetryCountAsItWas) {
  seen.reset();
  DepotServer server;
  auto options = worker_options(server);
  options.iteration.max_job_runtime = 50ms;
  depot::Worker worker(options);
  worker.register_job<CountTo>("CountTo");
  depot::Client client({.url = server.url()});
  // A job on its fourth retry (as a FAIL-ed job comes back), run in several interrupted parts.
  depot::Job job{.jobtype = "CountTo", .args = {600, 300}};
  job.extra["failure"] = {{"retry_count", 3}, {"message", "earlier"}, {"errtype", "E"}};
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  ASSERT_TRUE(wait_until(completed, 20s));
  worker.terminate();
  run.get();
  std::lock_guard lock(seen.mutex);
  EXPECT_GE(seen.times_interrupted, 2);
  EXPECT_EQ(seen.retry_count_at_completion, 3);
  EXPECT_EQ(seen.starts, 0);  // a retried job resumes: it is not a first run
  EXPECT_EQ(seen.items.size(), 600U);
}

TEST(Iteration, ProgressAndTheCursorAreOnTheServerWhileTheJobRuns) {
  seen.reset();
  DepotServer server;
  auto options = worker_options(server);
  options.iteration.checkpoint_every_items = 100;
  depot::Worker worker(options);
  worker.register_job<CountTo>("CountTo");
  depot::Client client({.url = server.url()});
  depot::Job job{.jobtype = "CountTo", .args = {100000, 200}};  // 20 s: stopped long before
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  json progress;
  ASSERT_TRUE(wait_until(
      [&] {
        auto info = client.info();
        auto list = info["depot"]["progress"];
        if (!list.is_array() || list.empty()) return false;
        progress = list[0];
        return progress["done"].get<int64_t>() >= 300;
      },
      10s))
      << client.info().dump();
  EXPECT_EQ(progress["jid"], job.jid);
  EXPECT_EQ(progress["jobtype"], "CountTo");
  EXPECT_EQ(progress["total"], 100000);
  worker.terminate();  // the job stops after its current item and goes back to its queue
  auto report = run.get();
  EXPECT_EQ(report.requeued, 1);
  depot::Client other({.url = server.url(), .wid = "w-other"});
  auto again = other.fetch({"default"});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->jid, job.jid);
  auto state = depot::IterationState::from_json(again->custom["iteration"]);
  EXPECT_EQ(state.times_interrupted, 1);
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(static_cast<size_t>(state.done), seen.items.size());
  EXPECT_EQ(state.cursor, static_cast<int64_t>(seen.items.size()) - 1);
  EXPECT_EQ(state.total, 100000);
}

}  // namespace
