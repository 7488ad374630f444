#include "protocol/http/admin_api.h"

#include <algorithm>
#include <initializer_list>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fmt/format.h>

#include "common/json_write.h"
#include "common/rfc3339.h"
#include "protocol/faktory/job_json.h"

namespace depot::http {

namespace {

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
  Response response = error_response(405, fmt::format("use {} here", allowed));
  response.headers.emplace_back("Allow", allowed == "GET" ? "GET, HEAD" : allowed);
  return response;
}

}  // namespace

Response error_response(int status, std::string_view message) {
  std::string body = R"({"error":)";
  append_json_string(body, message);
  body += '}';
  return {status, std::move(body)};
}

bool AdminApi::authorized(const Request& request) const {
  if (!password_) return true;
  std::string_view credentials = request.authorization;
  if (!credentials.starts_with("Basic ")) return false;
  credentials.remove_prefix(6);
  // EVP_DecodeBlock wants whole quads and keeps the padding's zero bytes; both are checked.
  if (credentials.empty() || credentials.size() % 4 != 0 || credentials.size() > 1024) return false;
  std::string decoded(credentials.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                               reinterpret_cast<const unsigned char*>(credentials.data()),
                               static_cast<int>(credentials.size()));
  if (length < 0) return false;
  size_t padding = credentials.ends_with("==") ? 2 : credentials.ends_with('=') ? 1 : 0;
  decoded.resize(static_cast<size_t>(length) - padding);
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  std::string_view given = std::string_view(decoded).substr(colon + 1);
  return given.size() == password_->size() &&
         CRYPTO_memcmp(given.data(), password_->data(), given.size()) == 0;
}

Response AdminApi::handle(const Request& request) const {
  if (!authorized(request)) {
    Response refused =
        error_response(401, "this depot has a password: use HTTP Basic auth with it");
    refused.headers.emplace_back("WWW-Authenticate", R"(Basic realm="depot")");
    return refused;
  }
  const bool reads = request.method == "GET" || request.method == "HEAD";
  if (!reads && !request.origin.empty() && request.origin != "http://" + request.host &&
      request.origin != "https://" + request.host) {
    return error_response(403, fmt::format("cross-origin request from {} refused", request.origin));
  }
  const std::vector<std::string>& path = request.segments;
  auto is = [&path](std::initializer_list<std::string_view> prefix) {
    return path.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
  };
  if (path.size() == 2 && is({"api", "health"})) {
    if (!reads) return method_not_allowed("GET");
    return {200, R"({"status":"ok"})"};
  }
  if (path.size() == 3 && is({"api", "jobs", "working"})) {
    if (store_ == nullptr) return error_response(503, "the jobs face is off (--jobs-listen off)");
    if (!reads) return method_not_allowed("GET");
    return list_working();
  }
  if (path.size() == 3 && is({"api", "eventlog", "lag"})) {
    if (!lag_) return error_response(503, "the Kafka face is off (--kafka-listen off)");
    if (!reads) return method_not_allowed("GET");
    return consumer_lag();
  }
  if (is({"api", "jobs", "workers"}) && path.size() <= 5) {
    if (workers_ == nullptr) return error_response(503, "the jobs face is off (--jobs-listen off)");
    if (path.size() == 3) {
      if (!reads) return method_not_allowed("GET");
      return list_workers();
    }
    // .../quiet, .../terminate, .../{wid}/quiet, .../{wid}/terminate
    if (auto state = signal_named(path.back())) {
      if (request.method != "POST") return method_not_allowed("POST");
      return signal_workers(path.size() == 5 ? path[3] : std::string(), *state);
    }
  }
  return error_response(404, fmt::format("no such resource: {} {}", request.method, request.path));
}

Response AdminApi::consumer_lag() const {
  // {"groups":[{"group":"g","lag":N,"partitions":[{"topic":"t","partition":0,...}]}]}, by group.
  std::string body = R"({"groups":[)";
  const std::vector<ConsumerLag> lags = lag_();
  for (size_t i = 0; i < lags.size();) {
    const std::string& group = lags[i].group;
    int64_t total = 0;
    std::string partitions;
    for (; i < lags.size() && lags[i].group == group; ++i) {
      const ConsumerLag& p = lags[i];
      total += std::max<int64_t>(p.lag, 0);
      partitions += partitions.empty() ? R"({"topic":)" : R"(,{"topic":)";
      append_json_string(partitions, p.topic);
      partitions += fmt::format(R"(,"partition":{},"committed":{},"end":{},"lag":{}}})",
                                p.partition, p.committed, p.end, p.lag);
    }
    body += body.back() == '[' ? R"({"group":)" : R"(,{"group":)";
    append_json_string(body, group);
    body += fmt::format(R"(,"lag":{},"partitions":[{}]}})", total, partitions);
  }
  body += "]}";
  return {200, std::move(body)};
}

Response AdminApi::list_workers() const {
  std::string body = R"({"workers":[)";
  bool first = true;
  for (const jobs::WorkerInfo& worker : workers_->list()) {
    body += first ? "{" : ",{";
    first = false;
    body += R"("wid":)";
    append_json_string(body, worker.wid);
    body += R"(,"hostname":)";
    append_json_string(body, worker.hostname);
    body += fmt::format(R"(,"pid":{},"labels":[)", worker.pid);
    for (size_t i = 0; i < worker.labels.size(); ++i) {
      if (i > 0) body += ',';
      append_json_string(body, worker.labels[i]);
    }
    body += fmt::format(R"(],"state":"{}","started_at":"{}","last_beat":"{}","connections":{}}})",
                        state_name(worker.state), format_rfc3339(worker.started_at),
                        format_rfc3339(worker.last_beat), worker.connections);
  }
  body += "]}";
  return {200, std::move(body)};
}

Response AdminApi::list_working() const {
  // {"working":N,"jobs":[{"jid":..,"jobtype":..,"queue":..,"wid":..,"reserved_at":..,
  //   "expires_at":..,"progress":{"done":..,"total":..,"updated_at":..} or null}]}
  const std::vector<jobs::ReservedJob> reserved = store_->reservations(kMaxWorkingListed);
  std::string body = fmt::format(R"({{"working":{},"jobs":[)", store_->stats().working);
  for (size_t i = 0; i < reserved.size(); ++i) {
    const jobs::ReservedJob& r = reserved[i];
    body += i == 0 ? "{" : ",{";
    faktory::append_reservation_members(body, r);
    body += fmt::format(R"(,"reserved_at":"{}","expires_at":"{}","progress":)",
                        format_rfc3339(r.reserved_at), format_rfc3339(r.expires_at));
    if (r.progress) {
      body += '{';
      faktory::append_progress_members(body, r);
      body += "}}";
    } else {
      body += "null}";
    }
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
  // States only move forward: quiet after terminate leaves the worker terminating.
  if (!wid.empty()) state = workers_->state(wid).value_or(state);
  return {200, fmt::format(R"({{"state":"{}","signalled":{}}})", state_name(state), signalled)};
}

}  // namespace depot::http
