#pragma once
// libdepot's worker: fetches jobs from a Faktory-protocol server and runs them on N threads.
//
//   depot::Worker worker({.concurrency = 8, .queues = {"critical", "default"}});
//   worker.register_job("SendEmail", [](const depot::json& args) { send(args[0]); });
//   worker.register_job<ImportCsv>("ImportCsv");  // a class: perform(args), or an IterationJob
//   return worker.run();  // until SIGTERM, or the server's "terminate"
//
// A job that returns is ACKed; one that throws is FAILed with the exception's type, message and
// a backtrace, and the server retries it. SIGTSTP (or the server's "quiet") stops fetching;
// SIGTERM/SIGINT (or "terminate") also asks running jobs to stop, waits up to shutdown_timeout
// for them, and fails back the ones still running so that they are retried.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "depot/client.h"
#include "depot/log.h"

namespace depot {

// How a worker orders its queues on each fetch.
enum class QueueOrder {
  strict,    // always in the order given: a later queue only when the earlier ones are empty
  weighted,  // a random order each fetch, a queue first in proportion to its weight (Sidekiq)
};

struct QueueWeight {
  std::string name;
  int weight = 1;
};

// What the iteration framework does by default (an IterationJob may override per class).
struct IterationOptions {
  // A run is interrupted and the job pushed again after this long (then it resumes anywhere).
  std::chrono::milliseconds max_job_runtime = std::chrono::minutes(5);
  // A checkpoint goes to the server after this many items or this much time since the last one,
  // whichever comes first, and at every interruption.
  int64_t checkpoint_every_items = 1000;
  std::chrono::milliseconds checkpoint_every = std::chrono::seconds(5);
};

struct WorkerOptions {
  ClientOptions client;  // url, labels; wid is made when empty
  int concurrency = 10;
  QueueOrder order = QueueOrder::strict;
  std::vector<QueueWeight> queues = {{"default", 1}};
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(25);
  std::chrono::milliseconds heartbeat = std::chrono::seconds(15);
  bool handle_signals = true;  // SIGTERM/SIGINT terminate, SIGTSTP quiets (while run() runs)
  Logger logger = stderr_logger();
  IterationOptions iteration;
};

class Worker;
class Checkpointer;

// What a running job sees: its job, the worker's connection, and whether it should stop.
class JobContext {
 public:
  const Job& job() const { return job_; }
  const json& args() const { return job_.args; }
  // True once the worker quiets or terminates: a long job should stop at a safe point (an
  // IterationJob does so after the current item).
  bool stop_requested() const;
  // The connection this job was fetched on (push follow-up jobs).
  Client& client() { return client_; }
  // Records progress on the server (depot's CHECKPOINT: the keys of `custom` replace the job's,
  // and its reservation is renewed) without waiting for it: a connection of the worker's own
  // sends the latest checkpoint of each job in the background. On a server without CHECKPOINT (a
  // Faktory server) it does nothing.
  void checkpoint(const json& custom, const Progress& progress);
  // Waits until this job's checkpoints have reached the server (or failed, which is logged).
  void flush_checkpoints();
  const IterationOptions& iteration_options() const { return iteration_; }
  // Structured log lines carrying this job's jid and jobtype.
  void log(LogLevel level, std::string_view message, LogFields fields = {}) const;

  // Ends this run by pushing the job again (same jid) with these custom keys replaced, `delay`
  // from now, instead of ACKing it. Used by iteration jobs when interrupted or throttled.
  void requeue(const json& custom_updates, std::chrono::milliseconds delay = {});
  bool requeued() const { return requeue_.has_value(); }

  // Values middleware may leave for each other (timing, for instance).
  std::map<std::string, json> values;

 private:
  friend class Worker;
  struct Requeue {
    json custom_updates;
    std::chrono::milliseconds delay;
  };
  JobContext(Job job, Client& client, Checkpointer& checkpointer, const std::atomic<bool>& stopping,
             const IterationOptions& iteration, const Logger& logger)
      : job_(std::move(job)),
        client_(client),
        checkpointer_(checkpointer),
        stopping_(stopping),
        iteration_(iteration),
        logger_(logger) {}

  Job job_;
  Client& client_;
  Checkpointer& checkpointer_;
  const std::atomic<bool>& stopping_;
  const IterationOptions& iteration_;
  const Logger& logger_;
  std::optional<Requeue> requeue_;
};

// Runs around every job: call next() to go on down the chain (and, at its end, perform).
using Middleware = std::function<void(JobContext&, const std::function<void()>& next)>;

namespace middleware {
// Logs "job start" (debug) and "job done"/"job failed" (info/warn) with the elapsed time.
Middleware logging();
// Calls `record(job, elapsed, succeeded)` after every job (metrics).
Middleware timing(
    std::function<void(const Job&, std::chrono::nanoseconds elapsed, bool succeeded)> record);
// Calls `report(job, exception)` when a job throws, then lets the exception go on (to FAIL).
Middleware error_reporter(std::function<void(const Job&, std::exception_ptr)> report);
}  // namespace middleware

// The type name, message and backtrace an exception FAILs its job with.
struct FailureDescription {
  std::string errtype;
  std::string message;
  std::vector<std::string> backtrace;
};
// Describes the exception being handled (call inside a catch block).
FailureDescription describe_current_exception();

// An exception that records where it was thrown, so its job's FAIL carries that backtrace
// rather than the worker's (other exceptions get the backtrace of where the worker caught them).
class TracedError : public Error {
 public:
  explicit TracedError(const std::string& message);
  const std::vector<std::string>& backtrace() const { return backtrace_; }

 private:
  std::vector<std::string> backtrace_;
};

// How run() ended.
struct WorkerReport {
  int64_t processed = 0;  // ACKed
  int64_t failed = 0;     // FAILed (exceptions and unknown job types)
  int64_t requeued = 0;   // pushed again (interrupted or throttled iteration jobs)
  int64_t abandoned = 0;  // still running at the shutdown timeout, failed back to the server
};

class Worker {
 public:
  using Perform = std::function<void(JobContext&)>;

  explicit Worker(WorkerOptions options = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // A callable taking (JobContext&) or (const json& args).
  template <class F>
  void register_job(const std::string& jobtype, F&& perform) {
    if constexpr (std::is_invocable_v<F&, JobContext&>) {
      register_perform(jobtype, Perform(std::forward<F>(perform)));
    } else {
      static_assert(std::is_invocable_v<F&, const json&>,
                    "a job callable takes (depot::JobContext&) or (const depot::json& args)");
      register_perform(jobtype,
                       [f = std::forward<F>(perform)](JobContext& ctx) mutable { f(ctx.args()); });
    }
  }
  // A class, default-constructed for every job, with perform(JobContext&) (as IterationJob has)
  // or perform(const json& args).
  template <class T>
  void register_job(const std::string& jobtype) {
    register_perform(jobtype, [](JobContext& ctx) {
      T job;
      if constexpr (requires { job.perform(ctx); }) {
        job.perform(ctx);
      } else {
        job.perform(ctx.args());
      }
    });
  }

  // Middleware runs in the order added, the first outermost.
  void use(Middleware middleware);

  // Fetches and runs jobs until terminated; returns what happened.
  WorkerReport run();
  // Stop fetching; running jobs go on (iteration jobs stop at their next item). Thread-safe.
  void quiet();
  // Quiet, then make run() return once running jobs end or the shutdown timeout passes.
  void terminate();

  const std::string& wid() const;

 private:
  struct State;
  void register_perform(const std::string& jobtype, Perform perform);
  std::shared_ptr<State> state_;
};

}  // namespace depot
