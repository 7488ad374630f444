#pragma once
// Interruptible, resumable jobs (Shopify's job-iteration model). An iteration job says how to
// enumerate its items from a cursor and what to do with one item; the framework runs the loop,
// records the cursor after each item, sends checkpoints to the server, and stops between items
// when the worker quiets or terminates, when the run has lasted max_job_runtime, or when the
// throttle hook says so. A stopped job is pushed again with its cursor and resumes on any worker
// from there; an exception retries from the last checkpoint.
//
//   class ImportRows : public depot::IterationJob<depot::CsvRow> {
//     depot::Enumerator<depot::CsvRow> build_enumerator(const depot::json& args,
//                                                       const depot::json& cursor) override {
//       return depot::enumerate::csv_rows(args[0].get<std::string>(), cursor);
//     }
//     void each_iteration(depot::CsvRow& row, const depot::json& args) override { ... }
//   };
//
// The job's state travels in custom.iteration: {"cursor", "times_interrupted", "done", "total",
// "runtime_ms"}. A cursor is any JSON value; null means "from the start".
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "depot/client.h"
#include "depot/worker.h"

namespace depot {

// One item and the cursor that resumes after it.
template <class Item>
struct Step {
  Item item;
  json cursor;
};

// Items in order, pulled one at a time. `total` is the number of items from the start, when
// known (shown as progress).
template <class Item>
class Enumerator {
 public:
  using Next = std::function<std::optional<Step<Item>>()>;
  using value_type = Item;

  explicit Enumerator(Next next, std::optional<int64_t> total = std::nullopt)
      : next_(std::move(next)), total_(total) {}

  std::optional<Step<Item>> next() { return next_(); }
  std::optional<int64_t> total() const { return total_; }

 private:
  Next next_;
  std::optional<int64_t> total_;
};

// The state an iteration job carries in custom.iteration.
struct IterationState {
  json cursor;  // null before the first item
  int64_t times_interrupted = 0;
  int64_t done = 0;  // items processed over every run
  std::optional<int64_t> total;
  int64_t runtime_ms = 0;  // time spent iterating over every run

  json to_json() const;
  static IterationState from_json(const json& value);  // missing fields take their defaults
};

// Why a run of an iteration job stopped.
enum class StopReason { completed, worker_stopping, max_job_runtime, throttled };

class IterationJobBase {
 public:
  virtual ~IterationJobBase() = default;

  // The run loop; the worker calls this.
  void perform(JobContext& ctx);

  // Callbacks. on_start: the first run of the job; on_resume: every later run (after an
  // interruption or a retry); on_shutdown: after every run, however it ended; on_complete: once,
  // when the last item is done.
  virtual void on_start() {}
  virtual void on_resume() {}
  virtual void on_shutdown() {}
  virtual void on_complete() {}

  // Asked before each item: a delay means "not now": the run stops and the job is pushed again
  // to run after the delay (throttling while a predicate holds, e.g. a database under load).
  virtual std::optional<std::chrono::milliseconds> throttle() { return std::nullopt; }

  // Per-class settings; the worker's by default.
  virtual IterationOptions iteration_options(const IterationOptions& worker_defaults) const {
    return worker_defaults;
  }

 protected:
  // Valid inside perform (and so inside the callbacks and the enumerator's steps).
  JobContext& context() { return *ctx_; }
  const IterationState& state() const { return state_; }
  StopReason stop_reason() const { return stop_reason_; }

  // Implemented by IterationJob<Item>: (re)builds the enumerator from the saved cursor.
  virtual void begin(const json& args, const json& cursor) = 0;
  // Processes the next item; returns its cursor, or nullopt when there are no more.
  virtual std::optional<json> process_next(const json& args) = 0;
  virtual std::optional<int64_t> total() const = 0;

 private:
  void checkpoint(JobContext& ctx);

  JobContext* ctx_ = nullptr;
  IterationState state_;
  StopReason stop_reason_ = StopReason::completed;
};

template <class Item>
class IterationJob : public IterationJobBase {
 public:
  // Items after `cursor` (null: from the first).
  virtual Enumerator<Item> build_enumerator(const json& args, const json& cursor) = 0;
  // One item. Should be idempotent: after a crash the item in progress is done again.
  virtual void each_iteration(Item& item, const json& args) = 0;

 protected:
  void begin(const json& args, const json& cursor) final {
    enumerator_.emplace(build_enumerator(args, cursor));
  }
  std::optional<json> process_next(const json& args) final {
    auto step = enumerator_->next();
    if (!step) return std::nullopt;
    each_iteration(step->item, args);
    return std::move(step->cursor);
  }
  std::optional<int64_t> total() const final { return enumerator_->total(); }

 private:
  std::optional<Enumerator<Item>> enumerator_;
};

}  // namespace depot
