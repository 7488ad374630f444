#pragma once
// libdepot's client: one connection to a server that speaks the Faktory work protocol (depot, or
// a Faktory server), with the commands producers and workers use.
//
//   depot::Client client;  // DEPOT_URL, then FAKTORY_URL, then tcp://localhost:7419
//   depot::Job job{.jobtype = "SendEmail", .args = {"ada@example.com"}};
//   client.push(job);
//
// A Client is safe to share between threads (one command at a time). When the connection fails
// it reconnects with exponential backoff and sends the command again, so a command may reach the
// server twice when a reply is lost: delivery is at least once, as with every Faktory client.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace depot {

using json = nlohmann::json;
using SystemTime = std::chrono::system_clock::time_point;

// Anything libdepot throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server could not be reached, or the connection broke and reconnecting gave up.
class ConnectionError : public Error {
 public:
  using Error::Error;
};

// The server refused a command: `code` is the reply's first word (ERR, NOTUNIQUE, ...).
class ServerError : public Error {
 public:
  ServerError(std::string code, const std::string& message)
      : Error(code + " " + message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// A job as the protocol carries it. Fields the library does not model (failure, created_at, ...)
// travel unchanged in `extra`, so a job fetched and pushed again keeps its retry count.
struct Job {
  std::string jid;  // a random 24-hex-digit jid is made at push when empty
  std::string jobtype;
  json args = json::array();
  std::string queue = "default";
  std::optional<SystemTime> at;    // run no earlier than this (the scheduled set until then)
  std::optional<int> reserve_for;  // seconds; the server's default (1800) when unset
  std::optional<int> retry;        // retries before the dead set; the server's default (25)
  std::optional<int> backtrace;    // lines of a failure's backtrace to keep
  json custom = json::object();
  json extra = json::object();

  json to_json() const;
  static Job from_json(const json& payload);  // throws Error when jid or jobtype is missing
  // The failure's retry_count, or nullopt when the job has not failed yet.
  std::optional<int> retry_count() const;
};

// Where and how to connect. Empty fields take the environment's or the defaults.
struct ClientOptions {
  // tcp://[:password@]host[:port] (tcp+tls is not supported). Empty: DEPOT_URL, then
  // FAKTORY_URL, then tcp://localhost:7419.
  std::string url;
  // Identifies a worker process to the server (HELLO's wid); empty for a producer.
  std::string wid;
  std::vector<std::string> labels;
  std::chrono::milliseconds connect_timeout{5000};
  // A FETCH waits up to about 2 s on the server, so this must be longer.
  std::chrono::milliseconds io_timeout{30000};
  // How long a command keeps reconnecting (100 ms, 200 ms, ... up to 5 s apart) before it
  // throws ConnectionError.
  std::chrono::milliseconds reconnect_for{30000};
};

// A URL's parts (exposed for tests and tools).
struct ServerAddress {
  std::string host = "localhost";
  uint16_t port = 7419;
  std::string password;
};
// Throws Error for a URL it cannot use, saying what is wrong.
ServerAddress parse_server_url(const std::string& url);
// The URL ClientOptions{} means: DEPOT_URL, FAKTORY_URL, or tcp://localhost:7419.
std::string default_server_url();

// What the server asks of a worker process in reply to BEAT.
enum class ServerState { running, quiet, terminate };

// Progress of a long job, sent with a checkpoint.
struct Progress {
  int64_t done = 0;
  std::optional<int64_t> total;
};

class Connection;

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects now (the commands connect on first use otherwise); throws ConnectionError.
  void connect();
  // Says END and closes; the next command reconnects.
  void close();

  // Enqueues the job (fills in jid when empty). ServerError NOTUNIQUE for a unique job that
  // holds its lock.
  void push(Job& job);
  // Enqueues many jobs in one round trip (PUSHB); returns the jids the server refused, with why.
  std::map<std::string, std::string> push_bulk(std::vector<Job>& jobs);
  // Enqueues the job to run no earlier than `at`.
  void push_at(Job& job, SystemTime at);
  // The first job waiting in the queues, checked in the order given; nullopt when they stayed
  // empty for the server's wait (about 2 s).
  std::optional<Job> fetch(const std::vector<std::string>& queues);
  void ack(const std::string& jid);
  void fail(const std::string& jid, const std::string& errtype, const std::string& message,
            const std::vector<std::string>& backtrace = {});
  // Heartbeat of a worker process (needs a wid), with its memory use when known; tells what the
  // server wants of it.
  ServerState beat(ServerState current = ServerState::running, int64_t rss_kb = 0);
  json info();
  void pause_queues(const std::vector<std::string>& queues);
  void resume_queues(const std::vector<std::string>& queues);
  // Records a running job's progress on the server (depot's CHECKPOINT): keys of `custom` replace
  // the job's, so a retry or a redelivery starts from here, and the reservation is renewed.
  // False when the server does not know the command (a Faktory server): then only re-pushing the
  // job records its state.
  bool checkpoint(const std::string& jid, const json& custom, const Progress& progress);

  const ClientOptions& options() const { return options_; }

 private:
  // One command and its reply (bulk payload, or the simple string; nullopt for a null bulk).
  std::optional<std::string> call(const std::string& command, const std::string& payload = {});
  std::optional<std::string> call_locked(const std::string& command, const std::string& payload);
  void connect_locked();
  void ensure_jid(Job& job);

  ClientOptions options_;
  ServerAddress address_;
  std::mutex mutex_;
  std::unique_ptr<Connection> connection_;
  bool checkpoint_supported_ = true;
};

// A random 24-hex-digit jid, like Faktory's clients make.
std::string random_jid();

}  // namespace depot
