#include "depot/client.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "connection.h"

namespace depot {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

// RFC 3339 in UTC with nanoseconds, as Faktory writes its times.
std::string format_time(SystemTime t) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(nanos / 1'000'000'000);
  long fraction = static_cast<long>(nanos % 1'000'000'000);
  if (fraction < 0) {
    fraction += 1'000'000'000;
    --seconds;
  }
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[128];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
  return text;
}

// Splits "-ERR text" style replies into the code and the message.
ServerError server_error(const std::string& text) {
  auto space = text.find(' ');
  if (space == std::string::npos) return ServerError(text, "");
  return ServerError(text.substr(0, space), text.substr(space + 1));
}

bool unknown_command(const ServerError& e) {
  std::string what = e.what();
  std::transform(what.begin(), what.end(), what.begin(), ::tolower);
  return what.find("unknown command") != std::string::npos;
}

}  // namespace

std::string random_jid() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string jid(24, '0');
  uint64_t a = random();
  uint64_t b = random();
  for (size_t i = 0; i < 16; ++i)
    jid[i] = kHex[(a >> (4 * i)) & 15];
  for (size_t i = 16; i < 24; ++i)
    jid[i] = kHex[(b >> (4 * (i - 16))) & 15];
  return jid;
}

json Job::to_json() const {
  json payload = extra.is_object() ? extra : json::object();
  payload["jid"] = jid;
  payload["jobtype"] = jobtype;
  payload["args"] = args.is_array() ? args : json::array({args});
  payload["queue"] = queue;
  if (at) payload["at"] = format_time(*at);
  if (reserve_for) payload["reserve_for"] = *reserve_for;
  if (retry) payload["retry"] = *retry;
  if (backtrace) payload["backtrace"] = *backtrace;
  if (custom.is_object() && !custom.empty()) payload["custom"] = custom;
  return payload;
}

Job Job::from_json(const json& payload) {
  if (!payload.is_object()) throw Error("a job must be a JSON object");
  auto text = [&](const char* key) {
    auto it = payload.find(key);
    if (it == payload.end() || !it->is_string()) {
      throw Error(std::string("the job has no ") + key + ": " + payload.dump());
    }
    return it->get<std::string>();
  };
  Job job;
  job.jid = text("jid");
  job.jobtype = text("jobtype");
  job.extra = json::object();
  for (const auto& [key, value] : payload.items()) {
    if (key == "jid" || key == "jobtype") continue;
    if (key == "args") {
      job.args = value;
    } else if (key == "queue" && value.is_string()) {
      job.queue = value.get<std::string>();
    } else if (key == "reserve_for" && value.is_number_integer()) {
      job.reserve_for = value.get<int>();
    } else if (key == "retry" && value.is_number_integer()) {
      job.retry = value.get<int>();
    } else if (key == "backtrace" && value.is_number_integer()) {
      job.backtrace = value.get<int>();
    } else if (key == "custom" && value.is_object()) {
      job.custom = value;
    } else if (key == "at" || key == "enqueued_at") {
      // Where and when it was enqueued describes this delivery, not the job: a push sets them.
    } else {
      job.extra[key] = value;
    }
  }
  return job;
}

std::optional<int> Job::retry_count() const {
  auto failure = extra.find("failure");
  if (failure == extra.end() || !failure->is_object()) return std::nullopt;
  return failure->value("retry_count", 0);
}

ServerAddress parse_server_url(const std::string& url) {
  std::string rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string::npos) {
    std::string name = rest.substr(0, scheme);
    if (name != "tcp") {
      throw Error("unsupported URL scheme '" + name + "' in " + url + " (use tcp://host:port)");
    }
    rest = rest.substr(scheme + 3);
  }
  while (!rest.empty() && rest.back() == '/')
    rest.pop_back();
  ServerAddress address;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    auto colon = userinfo.find(':');
    address.password = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  std::string port_text;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:7419
    auto close = rest.find(']');
    if (close == std::string::npos) throw Error("unclosed '[' in " + url);
    address.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port_text = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    address.host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  } else {
    address.host = rest;
  }
  if (address.host.empty()) address.host = "localhost";
  if (!port_text.empty()) {
    char* end = nullptr;
    long port = std::strtol(port_text.c_str(), &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
      throw Error("bad port '" + port_text + "' in " + url);
    }
    address.port = static_cast<uint16_t>(port);
  }
  return address;
}

std::string default_server_url() {
  for (const char* name : {"DEPOT_URL", "FAKTORY_URL"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  return "tcp://localhost:7419";
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.url.empty()) options_.url = default_server_url();
  address_ = parse_server_url(options_.url);
}

Client::~Client() {
  close();
}

void Client::connect() {
  std::lock_guard lock(mutex_);
  if (!connection_) connect_locked();
}

void Client::close() {
  std::lock_guard lock(mutex_);
  if (connection_) connection_->end();
  connection_.reset();
}

// Connects, retrying with exponential backoff for options_.reconnect_for. A refused HELLO (a
// wrong password) is not retried: it will not get better.
void Client::connect_locked() {
  const auto give_up = std::chrono::steady_clock::now() + options_.reconnect_for;
  auto backoff = kFirstBackoff;
  for (;;) {
    try {
      connection_ = std::make_unique<Connection>(address_, options_);
      return;
    } catch (const ConnectionError& e) {
      if (std::chrono::steady_clock::now() + backoff > give_up) throw;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

std::optional<std::string> Client::call(const std::string& command, const std::string& payload) {
  std::lock_guard lock(mutex_);
  return call_locked(command, payload);
}

std::optional<std::string> Client::call_locked(const std::string& command,
                                               const std::string& payload) {
  Reply reply;
  for (int attempt = 0;; ++attempt) {
    if (!connection_) connect_locked();
    try {
      reply = connection_->call(command, payload);
      break;
    } catch (const ConnectionError&) {
      connection_.reset();
      if (attempt > 0) throw;  // a fresh connection failed too: the server is gone
    }
  }
  switch (reply.kind) {
    case Reply::Kind::error:
      throw server_error(reply.text);
    case Reply::Kind::null:
      return std::nullopt;
    default:
      return std::move(reply.text);
  }
}

void Client::ensure_jid(Job& job) {
  if (job.jid.empty()) job.jid = random_jid();
  if (job.jobtype.empty()) throw Error("a job needs a jobtype");
}

void Client::push(Job& job) {
  ensure_jid(job);
  call("PUSH", job.to_json().dump());
}

void Client::push_at(Job& job, SystemTime at) {
  job.at = at;
  push(job);
}

std::map<std::string, std::string> Client::push_bulk(std::vector<Job>& jobs) {
  json payload = json::array();
  for (Job& job : jobs) {
    ensure_jid(job);
    payload.push_back(job.to_json());
  }
  auto reply = call("PUSHB", payload.dump());
  std::map<std::string, std::string> rejected;
  if (!reply || reply->empty() || *reply == "OK") return rejected;
  json errors = json::parse(*reply, nullptr, false);
  if (errors.is_object()) {
    for (const auto& [jid, why] : errors.items()) {
      rejected[jid] = why.is_string() ? why.get<std::string>() : why.dump();
    }
  }
  return rejected;
}

std::optional<Job> Client::fetch(const std::vector<std::string>& queues) {
  std::string names;
  for (const auto& q : queues) {
    if (!names.empty()) names += ' ';
    names += q;
  }
  auto reply = call("FETCH", names.empty() ? "default" : names);
  if (!reply || reply->empty()) return std::nullopt;
  json payload = json::parse(*reply, nullptr, false);
  if (payload.is_discarded()) throw Error("FETCH returned a job that is not JSON: " + *reply);
  return Job::from_json(payload);
}

void Client::ack(const std::string& jid) {
  call("ACK", json{{"jid", jid}}.dump());
}

void Client::fail(const std::string& jid, const std::string& errtype, const std::string& message,
                  const std::vector<std::string>& backtrace) {
  json payload = {{"jid", jid}, {"errtype", errtype}, {"message", message}};
  if (!backtrace.empty()) payload["backtrace"] = backtrace;
  call("FAIL", payload.dump());
}

ServerState Client::beat(ServerState current, int64_t rss_kb) {
  if (options_.wid.empty()) throw Error("BEAT needs a worker id (ClientOptions::wid)");
  json payload = {{"wid", options_.wid}};
  if (current == ServerState::quiet) payload["current_state"] = "quiet";
  if (current == ServerState::terminate) payload["current_state"] = "terminate";
  if (rss_kb > 0) payload["rss_kb"] = rss_kb;
  auto reply = call("BEAT", payload.dump());
  if (!reply || *reply == "OK") return ServerState::running;
  json state = json::parse(*reply, nullptr, false);
  std::string name = state.is_object() ? state.value("state", "") : "";
  if (name == "quiet") return ServerState::quiet;
  if (name == "terminate") return ServerState::terminate;
  return ServerState::running;
}

json Client::info() {
  auto reply = call("INFO");
  json parsed = json::parse(reply.value_or("{}"), nullptr, false);
  if (parsed.is_discarded()) throw Error("INFO returned text that is not JSON");
  return parsed;
}

void Client::pause_queues(const std::vector<std::string>& queues) {
  std::string line;
  for (const auto& q : queues)
    line += " " + q;
  call("QUEUE PAUSE" + line);
}

void Client::resume_queues(const std::vector<std::string>& queues) {
  std::string line;
  for (const auto& q : queues)
    line += " " + q;
  call("QUEUE RESUME" + line);
}

bool Client::checkpoint(const std::string& jid, const json& custom, const Progress& progress) {
  std::lock_guard lock(mutex_);
  if (!checkpoint_supported_) return false;
  json payload = {{"jid", jid}, {"custom", custom}, {"progress", {{"done", progress.done}}}};
  if (progress.total) payload["progress"]["total"] = *progress.total;
  try {
    call_locked("CHECKPOINT", payload.dump());
    return true;
  } catch (const ServerError& e) {
    if (!unknown_command(e)) throw;
    checkpoint_supported_ = false;
    return false;
  }
}

}  // namespace depot
