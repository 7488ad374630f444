#include "depot/iteration.h"

namespace depot {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t elapsed_ms(SteadyClock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since).count();
}

const char* reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::completed:
      return "completed";
    case StopReason::worker_stopping:
      return "worker stopping";
    case StopReason::max_job_runtime:
      return "max_job_runtime";
    case StopReason::throttled:
      return "throttled";
  }
  return "unknown";
}

}  // namespace

json IterationState::to_json() const {
  json value = {{"cursor", cursor},
                {"times_interrupted", times_interrupted},
                {"done", done},
                {"runtime_ms", runtime_ms}};
  if (total) value["total"] = *total;
  return value;
}

IterationState IterationState::from_json(const json& value) {
  IterationState state;
  if (!value.is_object()) return state;
  state.cursor = value.value("cursor", json());
  state.times_interrupted = value.value("times_interrupted", int64_t{0});
  state.done = value.value("done", int64_t{0});
  state.runtime_ms = value.value("runtime_ms", int64_t{0});
  if (auto it = value.find("total"); it != value.end() && it->is_number_integer()) {
    state.total = it->get<int64_t>();
  }
  return state;
}

void IterationJobBase::checkpoint(JobContext& ctx) {
  ctx.checkpoint({{"iteration", state_.to_json()}}, Progress{state_.done, state_.total});
}

void IterationJobBase::perform(JobContext& ctx) {
  ctx_ = &ctx;
  const Job& job = ctx.job();
  auto saved = job.custom.find("iteration");
  state_ = IterationState::from_json(saved == job.custom.end() ? json() : *saved);
  const bool first_run = saved == job.custom.end() && !job.retry_count();
  const IterationOptions options = iteration_options(ctx.iteration_options());

  const auto started = SteadyClock::now();
  auto last_checkpoint = started;
  int64_t since_checkpoint = 0;
  bool changed_since_checkpoint = false;
  auto keep_runtime = [&] { return state_.runtime_ms + elapsed_ms(started); };

  if (first_run) {
    on_start();
  } else {
    on_resume();
  }
  std::optional<std::chrono::milliseconds> throttle_delay;
  try {
    begin(ctx.args(), state_.cursor);
    if (auto known = total()) state_.total = known;
    for (;;) {
      if (ctx.stop_requested()) {
        stop_reason_ = StopReason::worker_stopping;
        break;
      }
      if (elapsed_ms(started) >= options.max_job_runtime.count()) {
        stop_reason_ = StopReason::max_job_runtime;
        break;
      }
      if ((throttle_delay = throttle())) {
        stop_reason_ = StopReason::throttled;
        break;
      }
      auto cursor = process_next(ctx.args());
      if (!cursor) {
        stop_reason_ = StopReason::completed;
        break;
      }
      state_.cursor = std::move(*cursor);
      ++state_.done;
      ++since_checkpoint;
      changed_since_checkpoint = true;
      if (since_checkpoint >= options.checkpoint_every_items ||
          SteadyClock::now() - last_checkpoint >= options.checkpoint_every) {
        IterationState saved_state = state_;
        state_.runtime_ms = keep_runtime();
        checkpoint(ctx);
        state_ = std::move(saved_state);
        last_checkpoint = SteadyClock::now();
        since_checkpoint = 0;
        changed_since_checkpoint = false;
      }
    }
  } catch (...) {
    // The retry starts from the last item that succeeded, not from the last periodic checkpoint.
    state_.runtime_ms = keep_runtime();
    if (changed_since_checkpoint) checkpoint(ctx);
    ctx.flush_checkpoints();  // on the server before the FAIL that retries from it
    on_shutdown();
    throw;
  }
  state_.runtime_ms = keep_runtime();
  // A checkpoint still on its way must not land after the job is pushed again or ACKed.
  ctx.flush_checkpoints();
  on_shutdown();
  if (stop_reason_ == StopReason::completed) {
    on_complete();
    ctx_ = nullptr;
    return;
  }
  ++state_.times_interrupted;
  ctx.log(LogLevel::info, "iteration interrupted",
          {{"reason", reason_name(stop_reason_)},
           {"done", std::to_string(state_.done)},
           {"cursor", state_.cursor.dump()}});
  ctx.requeue({{"iteration", state_.to_json()}},
              throttle_delay.value_or(std::chrono::milliseconds{0}));
  ctx_ = nullptr;
}

}  // namespace depot
