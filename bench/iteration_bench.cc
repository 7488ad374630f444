#include "bench/iteration_bench.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <depot/enumerators.h>
#include <depot/iteration.h>
#include <future>
#include <unistd.h>

#include <fmt/format.h>

#include "bench/server_process.h"

namespace depot::bench {
namespace {

using Clock = std::chrono::steady_clock;

// CPU work that the optimizer cannot drop: `rounds` steps of xorshift.
uint64_t work(uint64_t seed, int64_t rounds) {
  uint64_t x = seed | 1;
  for (int64_t i = 0; i < rounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

// xorshift rounds per microsecond on this machine.
double rounds_per_us() {
  constexpr int64_t kRounds = 50'000'000;
  auto start = Clock::now();
  volatile uint64_t sink = work(42, kRounds);
  (void)sink;
  return kRounds / std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

double plain_loop_seconds(int64_t items, int64_t rounds) {
  uint64_t sum = 0;
  auto start = Clock::now();
  for (int64_t i = 0; i < items; ++i)
    sum += work(static_cast<uint64_t>(i), rounds);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  volatile uint64_t sink = sum;
  (void)sink;
  return seconds;
}

// What the measured job reports: its iterating time (on_start to on_complete) and checkpoints.
struct JobTiming {
  std::atomic<int64_t> start_ns{0};
  std::atomic<int64_t> end_ns{0};
  std::atomic<uint64_t> sum{0};
};
JobTiming timing;

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

class WorkItems : public IterationJob<int64_t> {
 public:
  Enumerator<int64_t> build_enumerator(const json& args, const json& cursor) override {
    rounds_ = args.at(1).get<int64_t>();
    return enumerate::range(0, args.at(0).get<int64_t>(), cursor);
  }
  void each_iteration(int64_t& item, const json&) override {
    sum_ += work(static_cast<uint64_t>(item), rounds_);
  }
  void on_start() override { timing.start_ns = steady_ns(); }
  void on_complete() override {
    timing.end_ns = steady_ns();
    timing.sum = sum_;
  }

 private:
  int64_t rounds_ = 0;
  uint64_t sum_ = 0;
};

double iteration_job_seconds(const IterationBenchOptions& options, const std::string& fsync,
                             int64_t rounds) {
  auto data = options.dir / fmt::format("depot-{}", fsync);
  std::filesystem::remove_all(data);
  std::filesystem::create_directories(data);
  std::filesystem::path binary = options.depot_binary;
  if (binary.empty()) binary = std::filesystem::read_symlink("/proc/self/exe");
  uint16_t port = free_loopback_port();
  ServerProcess server(
      {binary.string(), "serve", "--data-dir", (data / "data").string(), "--fsync", fsync,
       "--jobs-listen", fmt::format("127.0.0.1:{}", port), "--amqp-listen", "off", "--kafka-listen",
       "off", "--http-listen", "off", "--log-level", "warn"},
      data / "server.log");
  server.wait_listening(port);

  WorkerOptions worker_options;
  worker_options.client.url = fmt::format("tcp://127.0.0.1:{}", port);
  worker_options.concurrency = 1;
  worker_options.queues = {{"bench", 1}};
  worker_options.handle_signals = false;
  worker_options.logger = stderr_logger(LogLevel::warn);
  worker_options.iteration.checkpoint_every_items = options.checkpoint_items;
  worker_options.iteration.checkpoint_every = std::chrono::hours(1);
  worker_options.iteration.max_job_runtime = std::chrono::hours(1);
  Worker worker(worker_options);
  worker.register_job<WorkItems>("WorkItems");
  timing.start_ns = timing.end_ns = 0;

  Client client({.url = worker_options.client.url});
  Job job{.jobtype = "WorkItems", .args = {options.items, rounds}, .queue = "bench"};
  client.push(job);
  auto run = std::async(std::launch::async, [&] { return worker.run(); });
  while (timing.end_ns == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  worker.terminate();
  run.get();
  std::filesystem::remove_all(data);
  return static_cast<double>(timing.end_ns - timing.start_ns) / 1e9;
}

}  // namespace

int run_iteration_bench(const IterationBenchOptions& options) {
  if (options.items <= 0 || options.checkpoint_items <= 0) {
    std::fprintf(stderr,
                 "depot bench iteration: --items and --checkpoint-items must be positive\n");
    return 2;
  }
  try {
    std::fprintf(stderr, "bench: calibrating the per-item work\n");
    const double per_us = rounds_per_us();
    std::printf("%-8s %9s %12s %12s %14s %10s\n", "fsync", "work us", "plain s", "iteration s",
                "overhead/item", "overhead");
    for (const std::string& fsync : options.fsync) {
      for (double work_us : options.item_work_us) {
        const auto rounds = static_cast<int64_t>(work_us * per_us);
        std::fprintf(stderr, "bench: %lld items of %.0f us, fsync=%s, checkpoint every %lld\n",
                     static_cast<long long>(options.items), work_us, fsync.c_str(),
                     static_cast<long long>(options.checkpoint_items));
        const double plain = plain_loop_seconds(options.items, rounds);
        const double iterated = iteration_job_seconds(options, fsync, rounds);
        const double per_item_us = (iterated - plain) * 1e6 / static_cast<double>(options.items);
        std::printf("%-8s %9.1f %12.3f %12.3f %11.3f us %9.1f%%\n", fsync.c_str(), work_us, plain,
                    iterated, per_item_us, 100.0 * (iterated - plain) / plain);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "depot bench iteration: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace depot::bench
