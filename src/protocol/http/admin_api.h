#pragma once
// The JSON admin API (DESIGN.md: operations on port 7420). Routes a parsed request to the domain
// modules and answers with JSON; no sockets. Today it serves the job face's workers:
//   GET  /api/health                                 {"status":"ok"}
//   GET  /api/jobs/workers                           the workers that said HELLO, with their state
//   POST /api/jobs/workers/quiet|terminate           signal every worker
//   POST /api/jobs/workers/{wid}/quiet|terminate     signal one worker
// A signalled worker learns it from its next BEAT, as Faktory's web UI does it. With a password
// set (--password, the Faktory one), every request needs HTTP Basic auth with it (any user name),
// as Faktory's web UI asks. A POST whose Origin is not the Host it was sent to is refused, so a
// web page in a browser on this host cannot signal workers.
#include <memory>
#include <optional>
#include <string>

#include "jobs/workers.h"
#include "protocol/http/request.h"

namespace depot::http {

class AdminApi {
 public:
  // `workers` is null when the jobs face is off: its routes then answer 503.
  explicit AdminApi(std::shared_ptr<jobs::WorkerRegistry> workers,
                    std::optional<std::string> password = std::nullopt)
      : workers_(std::move(workers)), password_(std::move(password)) {}

  Response handle(const Request& request) const;

 private:
  Response list_workers() const;
  Response signal_workers(const std::string& wid, jobs::WorkerState state) const;

  bool authorized(const Request& request) const;

  std::shared_ptr<jobs::WorkerRegistry> workers_;
  std::optional<std::string> password_;
};

// {"error":"..."} with `status`.
Response error_response(int status, std::string_view message);

}  // namespace depot::http
