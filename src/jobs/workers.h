#pragma once
// Faktory's worker processes as the server tracks them: one record per wid, shared by every
// connection the process opens; a state that only moves forward (running -> quiet -> terminate);
// and the heartbeat that keeps the record alive. No sockets: the face closes the connections of
// the workers reap() returns.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job.h"

namespace depot::jobs {

enum class WorkerState { running = 0, quiet = 1, terminate = 2 };

struct WorkerInfo {
  std::string wid;
  std::string hostname;
  int64_t pid = 0;
  std::vector<std::string> labels;
  WorkerState state = WorkerState::running;
  UnixNanos started_at = 0;
  UnixNanos last_beat = 0;
  size_t connections = 0;
};

class WorkerRegistry {
 public:
  static constexpr int64_t kHeartbeatTimeoutSeconds = 60;  // Faktory forgets silent workers

  // A connection said HELLO with this wid.
  void connect(const WorkerInfo& hello, UnixNanos now);
  // A connection of this wid closed; the record goes with the last one.
  void disconnect(const std::string& wid);
  // Records a heartbeat; `reported` may move the state forward. nullopt for an unknown wid.
  std::optional<WorkerState> beat(const std::string& wid, std::optional<WorkerState> reported,
                                  UnixNanos now);
  // Tells a worker to quiet or terminate (from the admin API); false for an unknown wid.
  bool signal(const std::string& wid, WorkerState state);
  std::optional<WorkerState> state(const std::string& wid) const;
  // Forgets workers silent for longer than the heartbeat timeout and returns their wids.
  std::vector<std::string> reap(UnixNanos now);
  std::vector<WorkerInfo> list() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, WorkerInfo> workers_;
};

}  // namespace depot::jobs
