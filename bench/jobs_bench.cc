// `depot bench jobs`: background-job throughput and latency, depot against its peers, in one run.
// Each measurement starts a fresh server, then P producer and W worker connections work it with
// one request in flight per connection, as Faktory's, beanstalkd's and Resque's clients do:
//   producers push ~200-byte jobs (Faktory JSON, carried as the body by the peers), waiting while
//     `backlog` jobs are pushed but not yet taken, so the queue stays short and the rate measured
//     is the end-to-end one;
//   workers take a job (FETCH / reserve / BRPOP), note the push-to-take latency from the
//     timestamp in its args, and finish it (ACK / delete; a Redis pop is final).
// A paced run (one producer at a fixed rate, one worker) gives the latency when not saturated.
#include "bench/jobs_bench.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <depot/worker.h>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "bench/blocking_socket.h"
#include "bench/measure.h"
#include "bench/server_process.h"

namespace depot::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view kQueue = "bench";
// Longer than any server's blocking take (Faktory's FETCH blocks for 2 s).
constexpr auto kReceiveTimeout = 10s;

// One connection to a job server, used by one thread.
class JobConnection {
 public:
  explicit JobConnection(uint16_t port) : socket_(port, kReceiveTimeout) {
    if (!socket_.ok()) fail(fmt::format("cannot connect to port {}", port));
  }
  virtual ~JobConnection() = default;
  JobConnection(const JobConnection&) = delete;
  JobConnection& operator=(const JobConnection&) = delete;

  virtual void push(std::string_view job) = 0;
  // The next job's body, or nullopt when none came within the server's blocking timeout.
  virtual std::optional<std::string> take() = 0;
  // Finishes the job take() returned last.
  virtual void finish() = 0;

  // Unblocks the thread using this connection (called from another thread at the end).
  void interrupt() { socket_.shutdown(); }

 protected:
  std::string reply_line(std::string_view command) {
    std::string line = socket_.read_line();
    if (!socket_.ok()) fail(fmt::format("{}: connection lost", command));
    return line;
  }
  std::string payload(std::string_view command, size_t length) {
    std::string body = socket_.read_payload(length);
    if (!socket_.ok()) fail(fmt::format("{}: connection lost", command));
    return body;
  }
  static void expect(std::string_view command, const std::string& reply, std::string_view want) {
    if (!reply.starts_with(want)) fail(fmt::format("{}: unexpected reply \"{}\"", command, reply));
  }
  static size_t length_after(std::string_view command, const std::string& reply, size_t from) {
    char* end = nullptr;
    long long length = std::strtoll(reply.c_str() + from, &end, 10);
    if (end == reply.c_str() + from) fail(fmt::format("{}: bad reply \"{}\"", command, reply));
    return static_cast<size_t>(length);
  }

  BlockingSocket socket_;
};

// Faktory's work protocol: HELLO, then PUSH / FETCH / ACK.
class FaktoryConnection final : public JobConnection {
 public:
  FaktoryConnection(uint16_t port, const std::string& wid) : JobConnection(port) {
    expect("HI", reply_line("HI"), "+HI");
    std::string hello = wid.empty() ? R"(HELLO {"v":2,"hostname":"bench"})"
                                    : fmt::format(R"(HELLO {{"v":2,"hostname":"bench","wid":"{}",)"
                                                  R"("pid":{},"labels":[]}})",
                                                  wid, ::getpid());
    socket_.send(hello + "\r\n");
    expect("HELLO", reply_line("HELLO"), "+OK");
  }
  void push(std::string_view job) override {
    socket_.send(fmt::format("PUSH {}\r\n", job));
    expect("PUSH", reply_line("PUSH"), "+OK");
  }
  // PUSHB with a JSON array of jobs; every job must be accepted.
  void push_bulk(std::string_view jobs_array) {
    socket_.send(fmt::format("PUSHB {}\r\n", jobs_array));
    std::string reply = reply_line("PUSHB");
    expect("PUSHB", reply, "$");
    std::string rejected = payload("PUSHB", length_after("PUSHB", reply, 1));
    if (rejected != "{}") fail("PUSHB: jobs were refused: " + rejected);
  }
  // INFO's waiting count for `queue`.
  size_t queue_size(std::string_view queue) {
    socket_.send("INFO\r\n");
    std::string reply = reply_line("INFO");
    expect("INFO", reply, "$");
    std::string info = payload("INFO", length_after("INFO", reply, 1));
    auto at = info.find(fmt::format(R"("{}":)", queue));
    if (at == std::string::npos) return 0;
    return std::strtoull(info.c_str() + at + queue.size() + 3, nullptr, 10);
  }
  std::optional<std::string> take() override {
    socket_.send(fmt::format("FETCH {}\r\n", kQueue));
    std::string reply = reply_line("FETCH");
    expect("FETCH", reply, "$");
    if (reply == "$-1") return std::nullopt;
    std::string job = payload("FETCH", length_after("FETCH", reply, 1));
    auto at = job.find(R"("jid":")");
    if (at == std::string::npos) fail("FETCH: job without a jid: " + job);
    at += 7;
    jid_ = job.substr(at, job.find('"', at) - at);
    return job;
  }
  void finish() override {
    socket_.send(fmt::format(R"(ACK {{"jid":"{}"}})"
                             "\r\n",
                             jid_));
    expect("ACK", reply_line("ACK"), "+OK");
  }

 private:
  std::string jid_;
};

// beanstalkd: put / reserve-with-timeout / delete on the default tube.
class BeanstalkConnection final : public JobConnection {
 public:
  using JobConnection::JobConnection;
  void push(std::string_view job) override {
    socket_.send(fmt::format("put 1024 0 120 {}\r\n{}\r\n", job.size(), job));
    expect("put", reply_line("put"), "INSERTED");
  }
  std::optional<std::string> take() override {
    socket_.send("reserve-with-timeout 1\r\n");
    std::string reply = reply_line("reserve");
    if (reply == "TIMED_OUT") return std::nullopt;
    expect("reserve", reply, "RESERVED ");
    auto space = reply.find(' ', 9);
    if (space == std::string::npos) fail("reserve: bad reply " + reply);
    id_ = reply.substr(9, space - 9);
    return payload("reserve", length_after("reserve", reply, space + 1));
  }
  void finish() override {
    socket_.send(fmt::format("delete {}\r\n", id_));
    expect("delete", reply_line("delete"), "DELETED");
  }

 private:
  std::string id_;
};

// A Redis list as a queue, Resque's model: LPUSH and BRPOP; the pop is final.
class RedisConnection final : public JobConnection {
 public:
  using JobConnection::JobConnection;
  void push(std::string_view job) override {
    socket_.send(fmt::format("*3\r\n$5\r\nLPUSH\r\n${}\r\n{}\r\n${}\r\n{}\r\n", kQueue.size(),
                             kQueue, job.size(), job));
    expect("LPUSH", reply_line("LPUSH"), ":");
  }
  std::optional<std::string> take() override {
    socket_.send(
        fmt::format("*3\r\n$5\r\nBRPOP\r\n${}\r\n{}\r\n$1\r\n1\r\n", kQueue.size(), kQueue));
    std::string reply = reply_line("BRPOP");
    if (reply == "*-1") return std::nullopt;
    expect("BRPOP", reply, "*2");
    std::string key_header = reply_line("BRPOP");
    payload("BRPOP", length_after("BRPOP", key_header, 1));
    std::string value_header = reply_line("BRPOP");
    return payload("BRPOP", length_after("BRPOP", value_header, 1));
  }
  void finish() override {}
};

// How to start one system and talk to it.
struct Target {
  std::string name;
  std::string description;
  std::function<std::vector<std::string>(uint16_t port, const std::filesystem::path& data)> argv;
  std::function<std::unique_ptr<JobConnection>(uint16_t port, const std::string& wid)> connect;
  // Jobs are run by libdepot's depot::Worker (concurrency = the shape's workers) rather than by
  // raw protocol connections: the library's cost against the protocol's.
  bool library_workers = false;
};

std::vector<Target> known_targets(const std::filesystem::path& depot_binary) {
  auto depot = [depot_binary](const std::string& fsync) {
    return [depot_binary, fsync](uint16_t port, const std::filesystem::path& data) {
      return std::vector<std::string>{depot_binary.string(),
                                      "serve",
                                      "--data-dir",
                                      data.string(),
                                      "--fsync",
                                      fsync,
                                      "--jobs-listen",
                                      fmt::format("127.0.0.1:{}", port),
                                      "--amqp-listen",
                                      "off",
                                      "--kafka-listen",
                                      "off",
                                      "--http-listen",
                                      "off",
                                      "--log-level",
                                      "warn"};
    };
  };
  auto faktory = [](uint16_t port, const std::string& wid) -> std::unique_ptr<JobConnection> {
    return std::make_unique<FaktoryConnection>(port, wid);
  };
  auto beanstalk = [](uint16_t port, const std::string&) -> std::unique_ptr<JobConnection> {
    return std::make_unique<BeanstalkConnection>(port);
  };
  auto redis = [](uint16_t port, const std::string&) -> std::unique_ptr<JobConnection> {
    return std::make_unique<RedisConnection>(port);
  };
  return {
      {"depot-always", "depot, fsync=always (a PUSH/ACK is answered once on disk)", depot("always"),
       faktory},
      {"depot-never", "depot, fsync=never (the OS writes back)", depot("never"), faktory},
      {"libdepot-always", "depot-always, jobs run by libdepot's Worker", depot("always"), faktory,
       true},
      {"libdepot-never", "depot-never, jobs run by libdepot's Worker", depot("never"), faktory,
       true},
      {"beanstalkd", "beanstalkd, in memory",
       [](uint16_t port, const std::filesystem::path&) {
         return std::vector<std::string>{"beanstalkd", "-l", "127.0.0.1", "-p",
                                         std::to_string(port)};
       },
       beanstalk},
      {"beanstalkd-binlog", "beanstalkd -b DIR -f0 (fsync on every write)",
       [](uint16_t port, const std::filesystem::path& data) {
         std::filesystem::create_directories(data);
         return std::vector<std::string>{"beanstalkd",         "-l", "127.0.0.1",   "-p",
                                         std::to_string(port), "-b", data.string(), "-f0"};
       },
       beanstalk},
      {"redis", "Redis list, LPUSH/BRPOP, in memory",
       [](uint16_t port, const std::filesystem::path&) {
         return std::vector<std::string>{
             "redis-server", "--bind", "127.0.0.1",   "--port", std::to_string(port), "--save", "",
             "--appendonly", "no",     "--daemonize", "no"};
       },
       redis},
  };
}

struct LoadShape {
  unsigned producers = 1;
  unsigned workers = 1;
  unsigned rate = 0;  // jobs/s over all producers; 0 = as fast as the system goes

  std::string label() const {
    return rate == 0 ? fmt::format("{}+{}", producers, workers)
                     : fmt::format("{}+{} @{}/s", producers, workers, rate);
  }
};

struct Measurement {
  std::string target;
  LoadShape shape;
  double jobs_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double server_cpu_us_per_job = 0;  // the server process's CPU time per job completed
};

// Throws unless INFO on `port` counts `want` jobs waiting in the bench queue.
void expect_waiting(uint16_t port, size_t want, std::string_view when) {
  size_t waiting = FaktoryConnection(port, "").queue_size(kQueue);
  if (waiting != want) fail(fmt::format("{} INFO says {} jobs wait, not {}", when, waiting, want));
}

// A ~`bytes`-long Faktory job whose first argument is the push time in steady-clock nanoseconds.
std::string make_job(unsigned producer, uint64_t sequence, size_t bytes) {
  std::string job = fmt::format(R"({{"jid":"{:08x}{:08x}","jobtype":"bench","queue":"{}",)"
                                R"("args":[{},""]}})",
                                producer, sequence, kQueue, now_nanos());
  if (job.size() < bytes) job.insert(job.size() - 3, bytes - job.size(), 'x');
  return job;
}

int64_t pushed_at(const std::string& job) {
  auto at = job.find(R"("args":[)");
  if (at == std::string::npos) fail("a job came back without its args: " + job);
  return std::strtoll(job.c_str() + at + 8, nullptr, 10);
}

// Only a subdirectory of its own is emptied and removed: --dir may hold other things.
std::filesystem::path work_dir(const JobsBenchOptions& options) {
  return options.dir / "depot-bench-jobs";
}

Measurement measure(const Target& target, const LoadShape& shape, const JobsBenchOptions& options) {
  std::filesystem::path data =
      work_dir(options) / fmt::format("{}-{}-{}", target.name, shape.producers, shape.workers);
  std::filesystem::remove_all(data);
  std::filesystem::create_directories(data);
  uint16_t port = free_loopback_port();
  ServerProcess server(target.argv(port, data / "data"), data / "server.log");
  server.wait_listening(port);

  std::vector<std::unique_ptr<JobConnection>> producers;
  std::vector<std::unique_ptr<JobConnection>> workers;
  for (unsigned i = 0; i < shape.producers; ++i)
    producers.push_back(target.connect(port, ""));
  for (unsigned i = 0; i < shape.workers && !target.library_workers; ++i)
    workers.push_back(target.connect(port, fmt::format("bench-{}-{}", ::getpid(), i)));
  std::optional<depot::Worker> library_worker;
  if (target.library_workers) {
    depot::WorkerOptions worker_options;
    worker_options.client.url = fmt::format("tcp://127.0.0.1:{}", port);
    worker_options.concurrency = static_cast<int>(shape.workers);
    worker_options.queues = {{std::string(kQueue), 1}};
    worker_options.handle_signals = false;
    worker_options.logger = depot::stderr_logger(depot::LogLevel::warn);
    library_worker.emplace(worker_options);
  }

  // A slot per job pushed and not yet taken: producers wait on it rather than poll.
  std::counting_semaphore<> backlog_slots(static_cast<ptrdiff_t>(options.backlog));
  std::atomic<uint64_t> completed{0};
  std::atomic<bool> measuring{false};
  StopFlag stop;

  std::vector<std::vector<int64_t>> latencies(shape.workers);
  std::vector<std::thread> threads;
  // Stops and joins every thread: at the end of the run, and on the way out of an exception
  // (a joinable std::thread would terminate the process).
  auto stop_threads = [&] {
    stop.stop();
    backlog_slots.release(static_cast<ptrdiff_t>(shape.producers));
    for (auto& connection : producers)
      connection->interrupt();
    for (auto& connection : workers)
      connection->interrupt();
    if (library_worker) library_worker->terminate();
    for (std::thread& thread : threads)
      thread.join();
    threads.clear();
  };
  struct JoinOnExit {
    std::function<void()> stop;
    ~JoinOnExit() { stop(); }
  } join_on_exit{[&] {
    if (!threads.empty()) stop_threads();
  }};
  for (unsigned i = 0; i < shape.producers; ++i) {
    threads.emplace_back([&, i] {
      stop.run([&] {
        auto interval =
            shape.rate == 0
                ? Clock::duration::zero()
                : std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(shape.producers / double(shape.rate)));
        auto next = Clock::now();
        for (uint64_t sequence = 0; !stop.stopped(); ++sequence) {
          backlog_slots.acquire();
          if (shape.rate != 0) std::this_thread::sleep_until(next += interval);
          if (stop.stopped()) break;
          producers[i]->push(make_job(i, sequence, options.job_bytes));
        }
      });
    });
  }
  std::mutex library_latencies_mutex;
  if (library_worker) {
    library_worker->register_job("bench", [&](const depot::json& args) {
      backlog_slots.release();
      int64_t latency = now_nanos() - args.at(0).get<int64_t>();
      if (measuring) {
        std::lock_guard lock(library_latencies_mutex);
        latencies[0].push_back(latency);
      }
      ++completed;  // counted before its ACK, as the raw workers count theirs before finish()
    });
    threads.emplace_back([&] { stop.run([&] { library_worker->run(); }); });
  }
  for (unsigned i = 0; i < shape.workers && !library_worker; ++i) {
    latencies[i].reserve(1 << 16);
    threads.emplace_back([&, i] {
      stop.run([&] {
        while (!stop.stopped()) {
          std::optional<std::string> job = workers[i]->take();
          if (!job) continue;
          backlog_slots.release();
          int64_t latency = now_nanos() - pushed_at(*job);
          if (measuring) latencies[i].push_back(latency);
          workers[i]->finish();
          ++completed;
        }
      });
    });
  }

  bool tty = ::isatty(STDERR_FILENO) != 0;
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_seconds));
  uint64_t completed_at_start = completed;
  double cpu_at_start = server.cpu_seconds();
  auto start = Clock::now();
  measuring = true;
  while (!stop.stopped()) {
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (elapsed >= options.seconds) break;
    if (tty && elapsed > 0) {
      std::fprintf(stderr, "\rbench: %-18s %-12s %4.1f/%.0f s  %8.0f jobs/s ", target.name.c_str(),
                   shape.label().c_str(), elapsed, options.seconds,
                   double(completed - completed_at_start) / elapsed);
    }
    std::this_thread::sleep_for(std::min(1.0, options.seconds - elapsed) * 1s);
  }
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t completed_in_window = completed - completed_at_start;
  double cpu_in_window = server.cpu_seconds() - cpu_at_start;
  stop_threads();
  if (tty) std::fprintf(stderr, "\r%*s\r", 72, "");
  if (std::string error = stop.error(); !error.empty()) {
    fail(fmt::format("{} {}: {}", target.name, shape.label(), error));
  }

  std::vector<int64_t> samples;
  for (const auto& worker : latencies)
    samples.insert(samples.end(), worker.begin(), worker.end());
  Measurement result{target.name, shape, double(completed_in_window) / elapsed};
  result.p50_ms = percentile_ms(samples, 0.50);
  result.p99_ms = percentile_ms(samples, 0.99);
  if (completed_in_window > 0)
    result.server_cpu_us_per_job = cpu_in_window * 1e6 / double(completed_in_window);
  return result;
}

std::optional<LoadShape> parse_shape(const std::string& text) {
  LoadShape shape;
  if (std::sscanf(text.c_str(), "%u+%u", &shape.producers, &shape.workers) != 2 ||
      shape.producers == 0 || shape.workers == 0) {
    return std::nullopt;
  }
  return shape;
}

const Measurement* find(const std::vector<Measurement>& results, std::string_view target,
                        const std::string& shape) {
  for (const Measurement& m : results) {
    if (m.target == target && m.shape.label() == shape) return &m;
  }
  return nullptr;
}

void print_ratio(const std::vector<Measurement>& results, const std::string& shape,
                 std::string_view numerator, std::string_view denominator, double goal) {
  const Measurement* top = find(results, numerator, shape);
  const Measurement* bottom = find(results, denominator, shape);
  if (top == nullptr || bottom == nullptr || bottom->jobs_per_second == 0) return;
  double ratio = top->jobs_per_second / bottom->jobs_per_second;
  std::printf("  %-6s %-13s / %-18s %6.2fx  (goal >= %.1fx: %s)\n", shape.c_str(),
              std::string(numerator).c_str(), std::string(denominator).c_str(), ratio, goal,
              ratio >= goal ? "met" : "NOT met");
}

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1 << 20);
}

// Pushes options.memory_jobs jobs into a depot (fsync=never) in PUSHB batches of 1000, then
// reports its RSS per waiting job, before and after a restart.
int run_memory_measurement(const JobsBenchOptions& options, const std::filesystem::path& binary) {
  constexpr size_t kBatch = 1000;
  constexpr unsigned kConnections = 2;
  const std::vector<Target> targets = known_targets(binary);
  const Target& depot = *std::find_if(targets.begin(), targets.end(),
                                      [](const Target& t) { return t.name == "depot-never"; });
  std::filesystem::path data = work_dir(options) / "memory";
  std::filesystem::remove_all(data);
  std::filesystem::create_directories(data);
  uint16_t port = free_loopback_port();
  size_t baseline = 0;
  size_t filled = 0;
  size_t journal_bytes = 0;
  double push_seconds = 0;
  {
    ServerProcess server(depot.argv(port, data / "data"), data / "server.log");
    server.wait_listening(port);
    baseline = server.rss_bytes();
    std::atomic<size_t> pushed{0};
    StopFlag stop;
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < kConnections; ++c) {
      threads.emplace_back([&, c] {
        stop.run([&] {
          FaktoryConnection connection(port, "");
          uint64_t sequence = 0;
          for (size_t batch = c; batch * kBatch < options.memory_jobs && !stop.stopped();
               batch += kConnections) {
            size_t count = std::min(kBatch, options.memory_jobs - batch * kBatch);
            std::string array = "[";
            for (size_t i = 0; i < count; ++i) {
              if (i > 0) array += ',';
              array += make_job(c, sequence++, options.job_bytes);
            }
            array += ']';
            connection.push_bulk(array);
            pushed += count;
          }
        });
      });
    }
    for (size_t last = 0; pushed < options.memory_jobs && !stop.stopped();) {
      std::this_thread::sleep_for(1s);
      size_t now = pushed;
      std::fprintf(stderr, "bench: pushed %zu of %zu jobs (%.0f/s), depot RSS %.0f MiB\n", now,
                   options.memory_jobs, double(now - last), mib(server.rss_bytes()));
      last = now;
    }
    for (std::thread& thread : threads)
      thread.join();
    if (std::string error = stop.error(); !error.empty()) fail(error);
    push_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    expect_waiting(port, options.memory_jobs, "after the pushes");
    std::this_thread::sleep_for(1s);
    filled = server.rss_bytes();
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data / "data")) {
    if (entry.is_regular_file()) journal_bytes += entry.file_size();
  }
  std::fprintf(stderr, "bench: restarting depot on the same data to measure replay\n");
  size_t replayed = 0;
  double replay_seconds = 0;
  {
    auto start = Clock::now();
    ServerProcess server(depot.argv(port, data / "data"), data / "server-restart.log");
    server.wait_listening(port, std::chrono::minutes(10));
    replay_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    expect_waiting(port, options.memory_jobs, "after the restart");
    replayed = server.rss_bytes();
  }
  std::filesystem::remove_all(work_dir(options));
  auto per_job = [&](size_t rss) {
    return rss > baseline ? double(rss - baseline) / double(options.memory_jobs) : 0.0;
  };
  std::printf("\n%zu waiting jobs of %zu bytes, depot fsync=never\n", options.memory_jobs,
              options.job_bytes);
  std::printf("  pushed in %.1f s (%.0f jobs/s, PUSHB of %zu over %u connections)\n", push_seconds,
              double(options.memory_jobs) / push_seconds, kBatch, kConnections);
  std::printf("  journal on disk           %10.0f MiB\n", mib(journal_bytes));
  std::printf("  RSS at start              %10.1f MiB\n", mib(baseline));
  std::printf("  RSS with the jobs waiting %10.1f MiB  (%.1f bytes per waiting job)\n", mib(filled),
              per_job(filled));
  std::printf(
      "  RSS after a restart       %10.1f MiB  (%.1f bytes per waiting job; replay %.1f s)\n",
      mib(replayed), per_job(replayed), replay_seconds);
  return 0;
}

}  // namespace

int run_jobs_bench(const JobsBenchOptions& options) {
  std::vector<LoadShape> shapes;
  for (const std::string& text : options.clients) {
    auto shape = parse_shape(text);
    if (!shape) {
      std::fprintf(stderr,
                   "depot bench jobs: --clients wants PRODUCERS+WORKERS, e.g. 2+2; got %s\n",
                   text.c_str());
      return 2;
    }
    shapes.push_back(*shape);
  }
  if (options.paced_rate != 0) shapes.push_back({1, 1, options.paced_rate});

  std::filesystem::path binary = options.depot_binary;
  if (binary.empty()) binary = std::filesystem::read_symlink("/proc/self/exe");
  if (options.memory_jobs > 0) {
    try {
      return run_memory_measurement(options, binary);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "depot bench jobs: %s\n", e.what());
      return 1;
    }
  }
  std::vector<Target> all = known_targets(binary);
  std::vector<const Target*> targets;
  for (const std::string& name : options.targets) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Target& t) { return t.name == name; });
    if (it == all.end()) {
      std::fprintf(stderr, "depot bench jobs: unknown target %s; known: %s\n", name.c_str(),
                   "depot-always, depot-never, libdepot-always, libdepot-never, beanstalkd, "
                   "beanstalkd-binlog, redis");
      return 2;
    }
    targets.push_back(&*it);
  }

  std::fprintf(stderr, "bench: %zu system(s) x %zu load shape(s), %.0f+%.0f s each; data in %s\n",
               targets.size(), shapes.size(), options.warmup_seconds, options.seconds,
               options.dir.c_str());
  std::vector<Measurement> results;
  for (const Target* target : targets) {
    for (const LoadShape& shape : shapes) {
      try {
        results.push_back(measure(*target, shape, options));
        const Measurement& m = results.back();
        std::fprintf(stderr,
                     "bench: %-18s %-12s %8.0f jobs/s  p50 %.3f ms  p99 %.3f ms  %.0f us CPU/job\n",
                     m.target.c_str(), m.shape.label().c_str(), m.jobs_per_second, m.p50_ms,
                     m.p99_ms, m.server_cpu_us_per_job);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: %s %s skipped: %s\n", target->name.c_str(),
                     shape.label().c_str(), e.what());
      }
    }
  }
  std::filesystem::remove_all(work_dir(options));

  std::printf("\n%-18s %-12s %10s %9s %9s %13s\n", "system", "P+W", "jobs/s", "p50 ms", "p99 ms",
              "server us/job");
  for (const Measurement& m : results) {
    std::printf("%-18s %-12s %10.0f %9.3f %9.3f %13.1f\n", m.target.c_str(),
                m.shape.label().c_str(), m.jobs_per_second, m.p50_ms, m.p99_ms,
                m.server_cpu_us_per_job);
  }
  std::printf("\nRatios (same run):\n");
  print_ratio(results, "2+2", "depot-always", "beanstalkd-binlog", 2.0);
  print_ratio(results, "2+2", "depot-never", "beanstalkd", 2.0);
  print_ratio(results, "2+2", "depot-never", "redis", 1.5);
  print_ratio(results, "32+32", "depot-always", "depot-never", 0.5);
  for (const char* shape : {"1+1", "8+8", "32+32"}) {
    print_ratio(results, shape, "libdepot-always", "depot-always", 0.8);
    print_ratio(results, shape, "libdepot-never", "depot-never", 0.8);
  }
  std::printf("\nSystems:\n");
  for (const Target* target : targets)
    std::printf("  %-18s %s\n", target->name.c_str(), target->description.c_str());
  return results.size() == targets.size() * shapes.size() ? 0 : 1;
}

}  // namespace depot::bench
