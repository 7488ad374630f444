#include "protocol/http/admin_api.h"

#include <fmt/format.h>

#include "protocol/faktory/json_write.h"
#include "protocol/faktory/rfc3339.h"

namespace depot::http {

namespace {

constexpr std::string_view kWorkersPath = "/api/jobs/workers";

std::string_view state_name(jobs::WorkerState state) {
  switch (state) {
    case jobs::WorkerState::running:
      return "running";
    case jobs::WorkerState::quiet:
      return "quiet";
    case jobs::WorkerState::terminate:
      return "terminate";
  }
  return "running";
}

std::optional<jobs::WorkerState> signal_named(std::string_view name) {
  if (name == "quiet") return jobs::WorkerState::quiet;
  if (name == "terminate") return jobs::WorkerState::terminate;
  return std::nullopt;
}

Response method_not_allowed(std::string_view allowed) {
  return error_response(405, fmt::format("use {} here", allowed));
}

}  // namespace

Response error_response(int status, std::string_view message) {
  std::string body = R"({"error":)";
  faktory::append_json_string(body, message);
  body += '}';
  return {status, std::move(body)};
}

Response AdminApi::handle(const Request& request) const {
  std::string_view path = request.path;
  if (path == "/api/health") {
    if (request.method != "GET") return method_not_allowed("GET");
    return {200, R"({"status":"ok"})"};
  }
  if (path.starts_with(kWorkersPath)) {
    if (workers_ == nullptr) return error_response(503, "the jobs face is off (--jobs-listen off)");
    std::string_view rest = path.substr(kWorkersPath.size());
    if (rest.empty() || rest == "/") {
      if (request.method != "GET") return method_not_allowed("GET");
      return list_workers();
    }
    // "/quiet", "/terminate", "/{wid}/quiet", "/{wid}/terminate"
    rest.remove_prefix(1);
    std::string wid;
    auto slash = rest.rfind('/');
    if (slash != std::string_view::npos) {
      wid = std::string(rest.substr(0, slash));
      rest.remove_prefix(slash + 1);
    }
    auto state = signal_named(rest);
    if (state && (slash == std::string_view::npos || !wid.empty())) {
      if (request.method != "POST") return method_not_allowed("POST");
      return signal_workers(wid, *state);
    }
  }
  return error_response(404, fmt::format("no such resource: {} {}", request.method, path));
}

Response AdminApi::list_workers() const {
  std::string body = R"({"workers":[)";
  bool first = true;
  for (const jobs::WorkerInfo& worker : workers_->list()) {
    body += first ? "{" : ",{";
    first = false;
    body += R"("wid":)";
    faktory::append_json_string(body, worker.wid);
    body += R"(,"hostname":)";
    faktory::append_json_string(body, worker.hostname);
    body += fmt::format(R"(,"pid":{},"labels":[)", worker.pid);
    for (size_t i = 0; i < worker.labels.size(); ++i) {
      if (i > 0) body += ',';
      faktory::append_json_string(body, worker.labels[i]);
    }
    body += fmt::format(R"(],"state":"{}","started_at":"{}","last_beat":"{}","connections":{}}})",
                        state_name(worker.state), faktory::format_rfc3339(worker.started_at),
                        faktory::format_rfc3339(worker.last_beat), worker.connections);
  }
  body += "]}";
  return {200, std::move(body)};
}

Response AdminApi::signal_workers(const std::string& wid, jobs::WorkerState state) const {
  std::vector<std::string> targets;
  if (wid.empty()) {
    for (const jobs::WorkerInfo& worker : workers_->list())
      targets.push_back(worker.wid);
  } else {
    targets.push_back(wid);
  }
  size_t signalled = 0;
  for (const std::string& target : targets) {
    if (workers_->signal(target, state)) ++signalled;
  }
  if (!wid.empty() && signalled == 0) {
    return error_response(404, fmt::format("no worker with wid {} is connected", wid));
  }
  return {200, fmt::format(R"({{"state":"{}","signalled":{}}})", state_name(state), signalled)};
}

}  // namespace depot::http
