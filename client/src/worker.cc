#include "depot/worker.h"

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cxxabi.h>
#include <execinfo.h>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <typeinfo>

namespace depot {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The signal run() saw last (0 = none). A handler may only touch a lock-free atomic.
std::atomic<int> pending_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void remember_signal(int signal_number) {
  pending_signal.store(signal_number);
}

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> readable(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && readable ? std::string(readable.get()) : std::string(name);
}

// "binary(mangled+0x1f) [0x...]" with the symbol demangled.
std::string readable_frame(const char* frame) {
  std::string text = frame;
  auto open = text.find('(');
  auto plus = text.find('+', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || plus == std::string::npos || plus == open + 1) return text;
  std::string mangled = text.substr(open + 1, plus - open - 1);
  return text.substr(0, open + 1) + demangle(mangled.c_str()) + text.substr(plus);
}

// The current stack, from the caller of the frame whose symbol contains `below` (the function
// that asked for it), or from `skip` frames down when symbols are not available.
[[gnu::noinline]] std::vector<std::string> capture_backtrace(std::string_view below, int skip) {
  void* frames[64];
  int count = ::backtrace(frames, 64);
  std::unique_ptr<char*, decltype(&std::free)> symbols(::backtrace_symbols(frames, count),
                                                       &std::free);
  std::vector<std::string> lines;
  if (!symbols) return lines;
  for (int i = 0; i < count; ++i)
    lines.push_back(readable_frame(symbols.get()[i]));
  // Sanitizers and inlining add or remove frames above ours: find ours by name.
  size_t first = std::min<size_t>(static_cast<size_t>(skip), lines.size());
  for (size_t i = 0; i < std::min<size_t>(lines.size(), 6); ++i) {
    if (lines[i].find(below) != std::string::npos) first = i + 1;
  }
  lines.erase(lines.begin(), lines.begin() + static_cast<ptrdiff_t>(first));
  return lines;
}

std::string make_wid() {
  std::string jid = random_jid();
  return jid.substr(0, 12);
}

int64_t rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      int64_t kb = 0;
      status >> kb;
      return kb;
    }
    status.ignore(1 << 10, '\n');
  }
  return 0;
}

}  // namespace

// Not inlined: its frame is where the backtrace starts below.
[[gnu::noinline]] TracedError::TracedError(const std::string& message)
    : Error(message), backtrace_(capture_backtrace("TracedError::TracedError", 2)) {}

FailureDescription describe_current_exception() {
  FailureDescription d;
  try {
    throw;
  } catch (const TracedError& e) {
    d = {demangle(typeid(e).name()), e.what(), e.backtrace()};
  } catch (const std::exception& e) {
    d = {demangle(typeid(e).name()), e.what(), capture_backtrace("describe_current_exception", 1)};
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    d = {type != nullptr ? demangle(type->name()) : "unknown", "a non-standard exception",
         capture_backtrace("describe_current_exception", 1)};
  }
  if (d.message.empty()) d.message = d.errtype;
  return d;
}

// Sends checkpoints on a connection of its own, so that a job does not wait a round trip (or an
// fsync on the server) for each: only the latest checkpoint of each job waits to be sent.
class Checkpointer {
 public:
  Checkpointer(const ClientOptions& options, const Logger& logger)
      : options_(options), logger_(logger) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void post(const std::string& jid, const json& custom, const Progress& progress) {
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { send_loop(); });
      pending_[jid] = Pending{custom, progress};
    }
    changed_.notify_all();
  }

  void flush(const std::string& jid) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stop_ || (!pending_.contains(jid) && sending_ != jid); });
  }

 private:
  struct Pending {
    json custom;
    Progress progress;
  };

  void send_loop() {
    std::optional<Client> client;
    bool told_unsupported = false;
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) break;
      auto next = pending_.begin();
      sending_ = next->first;
      Pending checkpoint = std::move(next->second);
      pending_.erase(next);
      lock.unlock();
      try {
        if (!client) client.emplace(options_);
        if (!client->checkpoint(sending_, checkpoint.custom, checkpoint.progress) &&
            !told_unsupported) {
          told_unsupported = true;
          logger_(LogLevel::info,
                  "the server has no CHECKPOINT command (a Faktory server): iteration jobs record "
                  "their cursor only when interrupted",
                  {});
        }
      } catch (const ServerError& e) {
        // The job is no longer this worker's (its reservation expired, or it ended meanwhile).
        logger_(LogLevel::warn, "checkpoint refused", {{"jid", sending_}, {"error", e.what()}});
      } catch (const Error& e) {
        logger_(LogLevel::warn, "checkpoint not sent", {{"jid", sending_}, {"error", e.what()}});
        client.reset();
      }
      lock.lock();
      sending_.clear();
      changed_.notify_all();
    }
    lock.unlock();
    if (client) client->close();
  }

  ClientOptions options_;
  const Logger& logger_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Pending> pending_;
  std::string sending_;
  bool stop_ = false;
  std::thread thread_;
};

void JobContext::checkpoint(const json& custom, const Progress& progress) {
  checkpointer_.post(job_.jid, custom, progress);
}

void JobContext::flush_checkpoints() {
  checkpointer_.flush(job_.jid);
}

bool JobContext::stop_requested() const {
  return stopping_.load(std::memory_order_relaxed);
}

void JobContext::log(LogLevel level, std::string_view message, LogFields fields) const {
  fields.insert(fields.begin(), {{"jid", job_.jid}, {"jobtype", job_.jobtype}});
  logger_(level, message, fields);
}

void JobContext::requeue(const json& custom_updates, std::chrono::milliseconds delay) {
  requeue_ = Requeue{custom_updates, delay};
}

namespace middleware {

Middleware logging() {
  return [](JobContext& ctx, const std::function<void()>& next) {
    const auto start = SteadyClock::now();
    auto elapsed_ms = [&] {
      return std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start)
              .count());
    };
    ctx.log(LogLevel::debug, "job start", {{"queue", ctx.job().queue}});
    try {
      next();
    } catch (...) {
      ctx.log(LogLevel::warn, "job failed", {{"elapsed_ms", elapsed_ms()}});
      throw;
    }
    ctx.log(LogLevel::info, ctx.requeued() ? "job interrupted" : "job done",
            {{"elapsed_ms", elapsed_ms()}});
  };
}

Middleware timing(
    std::function<void(const Job&, std::chrono::nanoseconds elapsed, bool succeeded)> record) {
  return [record = std::move(record)](JobContext& ctx, const std::function<void()>& next) {
    const auto start = SteadyClock::now();
    try {
      next();
    } catch (...) {
      record(ctx.job(), SteadyClock::now() - start, false);
      throw;
    }
    record(ctx.job(), SteadyClock::now() - start, true);
  };
}

Middleware error_reporter(std::function<void(const Job&, std::exception_ptr)> report) {
  return [report = std::move(report)](JobContext& ctx, const std::function<void()>& next) {
    try {
      next();
    } catch (...) {
      report(ctx.job(), std::current_exception());
      throw;
    }
  };
}

}  // namespace middleware

struct Worker::State {
  WorkerOptions options;
  std::map<std::string, Perform> jobs;
  std::vector<Middleware> chain;

  std::atomic<bool> quiet{false};
  std::atomic<bool> stopping{false};  // what JobContext::stop_requested() reads
  std::atomic<bool> terminating{false};

  std::mutex mutex;
  std::condition_variable changed;  // quiet or terminate: what the worker's own threads wait for
  // A job ended or a processor stopped: what shutdown waits for. Apart from `changed`, so that
  // finishing a job wakes no thread while nobody is shutting down.
  std::condition_variable drained;
  // Jobs being run, by jid; `abandoned` once shutdown failed them back to the server.
  std::map<std::string, bool> in_flight;
  int processors_running = 0;

  std::atomic<int64_t> processed{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> requeued{0};
  std::atomic<int64_t> abandoned{0};
  std::unique_ptr<Checkpointer> checkpointer;

  void log(LogLevel level, std::string_view message, LogFields fields = {}) const {
    fields.insert(fields.begin(), {"wid", options.client.wid});
    options.logger(level, message, fields);
  }

  void become_quiet(const char* why) {
    if (!quiet.exchange(true)) log(LogLevel::info, "quiet: no more fetching", {{"by", why}});
    stopping = true;
    changed.notify_all();
  }

  void begin_terminate(const char* why) {
    if (terminating.exchange(true)) return;
    log(LogLevel::info, "terminating", {{"by", why}});
    become_quiet(why);
  }

  // The queues for one FETCH, in the order the worker's mode gives.
  std::vector<std::string> queue_order(std::mt19937& random) const {
    std::vector<std::string> names;
    if (options.order == QueueOrder::strict) {
      for (const auto& q : options.queues)
        names.push_back(q.name);
      return names;
    }
    // Sidekiq's weighted mode: each queue appears `weight` times, shuffled, then deduplicated
    // keeping first appearances: a queue comes first with probability proportional to weight.
    std::vector<std::string> draws;
    for (const auto& q : options.queues) {
      for (int i = 0; i < std::max(1, q.weight); ++i)
        draws.push_back(q.name);
    }
    std::shuffle(draws.begin(), draws.end(), random);
    std::set<std::string> seen;
    for (auto& name : draws) {
      if (seen.insert(name).second) names.push_back(std::move(name));
    }
    return names;
  }

  void run_job(Client& client, Job job);
  // Each runs on a thread whose lambda holds the state alive.
  void process();
  void heartbeat();
  void fail_back_running();
};

void Worker::State::run_job(Client& client, Job job) {
  const std::string jid = job.jid;
  {
    std::lock_guard lock(mutex);
    in_flight[jid] = false;
  }
  JobContext ctx(std::move(job), client, *checkpointer, stopping, options.iteration,
                 options.logger);
  std::optional<FailureDescription> failure;
  try {
    auto it = jobs.find(ctx.job().jobtype);
    if (it == jobs.end()) {
      throw Error("no job type '" + ctx.job().jobtype + "' is registered with this worker");
    }
    std::function<void(size_t)> step = [&](size_t i) {
      if (i == chain.size()) {
        it->second(ctx);
      } else {
        chain[i](ctx, [&] { step(i + 1); });
      }
    };
    step(0);
  } catch (...) {
    failure = describe_current_exception();
  }
  bool was_abandoned = false;
  {
    std::lock_guard lock(mutex);
    was_abandoned = in_flight[jid];
    in_flight.erase(jid);
  }
  drained.notify_all();
  if (was_abandoned) return;  // shutdown already failed it back
  try {
    if (failure) {
      client.fail(jid, failure->errtype, failure->message, failure->backtrace);
      ++failed;
      ctx.log(LogLevel::warn, "job failed, the server will retry it",
              {{"errtype", failure->errtype}, {"error", failure->message}});
    } else if (ctx.requeue_) {
      Job again = ctx.job();
      for (const auto& [key, value] : ctx.requeue_->custom_updates.items())
        again.custom[key] = value;
      if (ctx.requeue_->delay.count() > 0) {
        again.at = std::chrono::system_clock::now() + ctx.requeue_->delay;
      }
      client.push(again);  // same jid: on depot this ends the reservation
      client.ack(jid);     // on depot a no-op; on Faktory it ends the reservation
      ++requeued;
    } else {
      client.ack(jid);
      ++processed;
    }
  } catch (const Error& e) {
    // The reservation expires on the server and the job is delivered again.
    ctx.log(LogLevel::error, "could not report the job's result", {{"error", e.what()}});
  }
}

void Worker::State::process() {
  std::mt19937 random{std::random_device{}()};
  std::optional<Client> client;
  bool reported_down = false;
  while (!quiet) {
    try {
      if (!client) client.emplace(options.client);
      auto job = client->fetch(queue_order(random));
      reported_down = false;
      if (job && quiet) {
        // Fetched while the worker was told to stop: hand it back untouched (the same jid pushed
        // again ends this reservation) rather than start it only to interrupt it.
        client->push(*job);
        client->ack(job->jid);
        log(LogLevel::debug, "fetched after quiet: handed back", {{"jid", job->jid}});
      } else if (job) {
        run_job(*client, std::move(*job));
      }
    } catch (const Error& e) {
      if (!reported_down) log(LogLevel::error, "cannot fetch jobs", {{"error", e.what()}});
      reported_down = true;
      client.reset();
      std::unique_lock lock(mutex);
      changed.wait_for(lock, std::chrono::seconds(1), [&] { return quiet.load(); });
    }
  }
  if (client) client->close();
  {
    std::lock_guard lock(mutex);
    --processors_running;
  }
  drained.notify_all();
}

void Worker::State::heartbeat() {
  std::optional<Client> client;
  std::unique_lock lock(mutex);
  while (!terminating) {
    lock.unlock();
    try {
      if (!client) client.emplace(options.client);
      ServerState told = client->beat(quiet ? ServerState::quiet : ServerState::running, rss_kb());
      if (told == ServerState::quiet) become_quiet("server");
      if (told == ServerState::terminate) begin_terminate("server");
    } catch (const Error& e) {
      log(LogLevel::warn, "heartbeat failed", {{"error", e.what()}});
      client.reset();
    }
    lock.lock();
    changed.wait_for(lock, options.heartbeat, [&] { return terminating.load(); });
  }
  lock.unlock();
  if (client) client->close();
}

// Jobs still running at the shutdown timeout are failed back, so the server retries them now
// rather than when their reservations expire.
void Worker::State::fail_back_running() {
  std::vector<std::string> jids;
  {
    std::lock_guard lock(mutex);
    for (auto& [jid, abandoned_flag] : in_flight) {
      if (!abandoned_flag) {
        abandoned_flag = true;
        jids.push_back(jid);
      }
    }
  }
  if (jids.empty()) return;
  try {
    Client client(options.client);
    for (const auto& jid : jids) {
      client.fail(jid, "depot::ShutdownTimeout",
                  "the worker shut down before the job finished; it will be retried");
      ++abandoned;
      log(LogLevel::warn, "job still running at the shutdown timeout: failed back", {{"jid", jid}});
    }
  } catch (const Error& e) {
    log(LogLevel::error, "could not fail back running jobs; their reservations will expire",
        {{"error", e.what()}});
  }
}

Worker::Worker(WorkerOptions options) : state_(std::make_shared<State>()) {
  if (options.client.wid.empty()) options.client.wid = make_wid();
  if (options.client.url.empty()) options.client.url = default_server_url();
  if (options.concurrency < 1) throw Error("concurrency must be at least 1");
  if (options.queues.empty()) throw Error("a worker needs at least one queue");
  if (!options.logger) options.logger = stderr_logger();
  state_->options = std::move(options);
  state_->checkpointer =
      std::make_unique<Checkpointer>(state_->options.client, state_->options.logger);
}

Worker::~Worker() = default;

const std::string& Worker::wid() const {
  return state_->options.client.wid;
}

void Worker::register_perform(const std::string& jobtype, Perform perform) {
  state_->jobs[jobtype] = std::move(perform);
}

void Worker::use(Middleware middleware) {
  state_->chain.push_back(std::move(middleware));
}

void Worker::quiet() {
  state_->become_quiet("api");
}

void Worker::terminate() {
  state_->begin_terminate("api");
}

WorkerReport Worker::run() {
  auto s = state_;
  const auto& options = s->options;
  struct sigaction previous[3] = {};
  const int signals[3] = {SIGTERM, SIGINT, SIGTSTP};
  if (options.handle_signals) {
    pending_signal = 0;
    struct sigaction action {};
    action.sa_handler = remember_signal;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < 3; ++i)
      ::sigaction(signals[i], &action, &previous[i]);
  }
  std::string queue_names;
  for (const auto& q : options.queues)
    queue_names += (queue_names.empty() ? "" : ",") + q.name;
  s->log(LogLevel::info, "worker started",
         {{"concurrency", std::to_string(options.concurrency)},
          {"queues", queue_names},
          {"server", options.client.url.substr(options.client.url.find('@') + 1)}});

  s->processors_running = options.concurrency;
  std::vector<std::thread> processors;
  processors.reserve(static_cast<size_t>(options.concurrency));
  for (int i = 0; i < options.concurrency; ++i)
    processors.emplace_back([s] { s->process(); });
  std::thread heartbeat([s] { s->heartbeat(); });

  {
    std::unique_lock lock(s->mutex);
    while (!s->terminating) {
      s->changed.wait_for(lock, std::chrono::milliseconds(50));
      int signal_number = pending_signal.exchange(0);
      lock.unlock();
      if (signal_number == SIGTSTP) s->become_quiet("SIGTSTP");
      if (signal_number == SIGTERM) s->begin_terminate("SIGTERM");
      if (signal_number == SIGINT) s->begin_terminate("SIGINT");
      lock.lock();
    }
    const auto deadline = SteadyClock::now() + options.shutdown_timeout;
    if (!s->in_flight.empty()) {
      s->log(LogLevel::info, "waiting for running jobs",
             {{"running", std::to_string(s->in_flight.size())},
              {"timeout_ms", std::to_string(options.shutdown_timeout.count())}});
    }
    s->drained.wait_until(lock, deadline,
                          [&] { return s->in_flight.empty() && s->processors_running == 0; });
  }
  s->fail_back_running();
  heartbeat.join();
  bool all_stopped = false;
  {
    std::lock_guard lock(s->mutex);
    all_stopped = s->processors_running == 0;
  }
  for (auto& t : processors) {
    // A processor still inside a job after the timeout is left to finish on its own (the process
    // is about to exit): it holds the state it uses, and its job's result is not reported.
    if (all_stopped) {
      t.join();
    } else {
      t.detach();
    }
  }
  if (options.handle_signals) {
    for (int i = 0; i < 3; ++i)
      ::sigaction(signals[i], &previous[i], nullptr);
  }
  WorkerReport report{s->processed, s->failed, s->requeued, s->abandoned};
  s->log(LogLevel::info, "worker stopped",
         {{"processed", std::to_string(report.processed)},
          {"failed", std::to_string(report.failed)},
          {"requeued", std::to_string(report.requeued)},
          {"abandoned", std::to_string(report.abandoned)}});
  return report;
}

}  // namespace depot
