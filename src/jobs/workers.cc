#include "jobs/workers.h"

#include <algorithm>

namespace depot::jobs {

void WorkerRegistry::connect(const WorkerInfo& hello, UnixNanos now) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = workers_.try_emplace(hello.wid, hello);
  WorkerInfo& w = it->second;
  if (inserted) {
    w.state = WorkerState::running;
    w.started_at = now;
    w.connections = 0;
  }
  w.last_beat = now;
  ++w.connections;
}

void WorkerRegistry::disconnect(const std::string& wid) {
  std::lock_guard lock(mutex_);
  auto it = workers_.find(wid);
  if (it != workers_.end() && --it->second.connections == 0) workers_.erase(it);
}

std::optional<WorkerState> WorkerRegistry::beat(const std::string& wid,
                                                std::optional<WorkerState> reported,
                                                UnixNanos now) {
  std::lock_guard lock(mutex_);
  auto it = workers_.find(wid);
  if (it == workers_.end()) return std::nullopt;
  WorkerInfo& w = it->second;
  w.last_beat = now;
  if (reported) w.state = std::max(w.state, *reported);  // never backwards
  return w.state;
}

bool WorkerRegistry::signal(const std::string& wid, WorkerState state) {
  std::lock_guard lock(mutex_);
  auto it = workers_.find(wid);
  if (it == workers_.end()) return false;
  it->second.state = std::max(it->second.state, state);
  return true;
}

std::optional<WorkerState> WorkerRegistry::state(const std::string& wid) const {
  std::lock_guard lock(mutex_);
  auto it = workers_.find(wid);
  if (it == workers_.end()) return std::nullopt;
  return it->second.state;
}

std::vector<std::string> WorkerRegistry::reap(UnixNanos now) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> gone;
  const UnixNanos horizon = now - kHeartbeatTimeoutSeconds * 1'000'000'000LL;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.last_beat < horizon) {
      gone.push_back(it->first);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<WorkerInfo> WorkerRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<WorkerInfo> out;
  out.reserve(workers_.size());
  for (const auto& [wid, info] : workers_)
    out.push_back(info);
  return out;
}

}  // namespace depot::jobs
