#pragma once
// The JSON admin API (DESIGN.md: operations on port 7420). Routes a parsed request to the domain
// modules and answers with JSON; no sockets. Today it serves the job face's workers:
//   GET  /api/health                                 {"status":"ok"}
//   GET  /api/jobs/workers                           the workers that said HELLO, with their state
//   POST /api/jobs/workers/quiet|terminate           signal every worker
//   POST /api/jobs/workers/{wid}/quiet|terminate     signal one worker
// A signalled worker learns it from its next BEAT, as Faktory's web UI does it.
#include <memory>

#include "jobs/workers.h"
#include "protocol/http/request.h"

namespace depot::http {

class AdminApi {
 public:
  // `workers` is null when the jobs face is off: its routes then answer 503.
  explicit AdminApi(std::shared_ptr<jobs::WorkerRegistry> workers) : workers_(std::move(workers)) {}

  Response handle(const Request& request) const;

 private:
  Response list_workers() const;
  Response signal_workers(const std::string& wid, jobs::WorkerState state) const;

  std::shared_ptr<jobs::WorkerRegistry> workers_;
};

// {"error":"..."} with `status`.
Response error_response(int status, std::string_view message);

}  // namespace depot::http
