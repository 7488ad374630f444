#pragma once
// The JSON admin API (DESIGN.md: operations on port 7420). Routes a parsed request to the domain
// modules and answers with JSON; no sockets. Today it serves the job face's workers:
//   GET  /api/health                                 {"status":"ok"}
//   GET  /api/jobs/workers                           the workers that said HELLO, with their state
//   POST /api/jobs/workers/quiet|terminate           signal every worker
//   POST /api/jobs/workers/{wid}/quiet|terminate     signal one worker
//   GET  /api/jobs/working                           reserved jobs, oldest first, with the
//                                                    progress their CHECKPOINTs reported
// A signalled worker learns it from its next BEAT, as Faktory's web UI does it. With a password
// set (--password, the Faktory one), every request needs HTTP Basic auth with it (any user name),
// as Faktory's web UI asks. A POST whose Origin is not the Host it was sent to is refused, so a
// web page in a browser on this host cannot signal workers.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "jobs/store.h"
#include "jobs/workers.h"
#include "protocol/http/request.h"

namespace depot::http {

// One consumer group's position in one partition, for GET /api/eventlog/lag.
struct ConsumerLag {
  std::string group;
  std::string topic;
  int32_t partition = 0;
  int64_t committed = -1;
  int64_t end = -1;  // -1: the partition is gone
  int64_t lag = -1;
};
using ConsumerLagSource = std::function<std::vector<ConsumerLag>()>;

class AdminApi {
 public:
  // `workers` and `store` are null when the jobs face is off, `lag` when the Kafka face is: their
  // routes then answer 503.
  explicit AdminApi(std::shared_ptr<jobs::WorkerRegistry> workers,
                    std::optional<std::string> password = std::nullopt,
                    std::shared_ptr<const jobs::JobStore> store = nullptr,
                    ConsumerLagSource lag = nullptr)
      : workers_(std::move(workers)),
        store_(std::move(store)),
        lag_(std::move(lag)),
        password_(std::move(password)) {}

  // /api/jobs/working lists at most this many reservations.
  static constexpr size_t kMaxWorkingListed = 1000;

  Response handle(const Request& request) const;

 private:
  Response list_workers() const;
  Response signal_workers(const std::string& wid, jobs::WorkerState state) const;
  Response list_working() const;
  Response consumer_lag() const;

  bool authorized(const Request& request) const;

  std::shared_ptr<jobs::WorkerRegistry> workers_;
  std::shared_ptr<const jobs::JobStore> store_;
  ConsumerLagSource lag_;
  std::optional<std::string> password_;
};

// {"error":"..."} with `status`.
Response error_response(int status, std::string_view message);

}  // namespace depot::http
