#pragma once
// A background job as the job store keeps it. The store never looks inside `args` or `custom`:
// they are the client's JSON text, carried byte for byte (protocol/faktory parses and writes the
// Faktory JSON; the store journals this struct in its own binary form).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace depot::jobs {

// Nanoseconds since the Unix epoch (Faktory's timestamps are RFC 3339 with nanoseconds).
using UnixNanos = int64_t;

constexpr int32_t kDefaultRetry = 25;
constexpr int32_t kDefaultReserveForSeconds = 1800;
constexpr int32_t kMinReserveForSeconds = 60;
constexpr int32_t kMaxReserveForSeconds = 86400;

struct Failure {
  int32_t retry_count = 0;  // 0 after the first failure
  int32_t remaining = 0;    // retries left
  UnixNanos failed_at = 0;  // the first failure; not moved by later ones (as Faktory)
  UnixNanos next_at = 0;    // when the retry is due; 0 when none is scheduled
  std::string message;
  std::string errtype;
  std::vector<std::string> backtrace;

  bool operator==(const Failure&) const = default;
};

struct Job {
  std::string jid;
  std::string jobtype;
  std::string queue = "default";
  std::string args = "[]";  // JSON array text, as pushed
  std::string custom;       // JSON object text, as pushed; empty when the job has none
  UnixNanos created_at = 0;
  UnixNanos enqueued_at = 0;                        // set each time the job enters a queue
  UnixNanos at = 0;                                 // run no earlier than this; 0 = now
  int32_t reserve_for = kDefaultReserveForSeconds;  // seconds a FETCH reserves the job
  int32_t retry = kDefaultRetry;     // 0: discard on failure; -1: straight to the dead set
  std::optional<int32_t> backtrace;  // lines of backtrace the client wants kept
  std::optional<Failure> failure;
  // Read from `custom` by the protocol layer (depot offers these beyond open-source Faktory):
  std::optional<int64_t> unique_for;  // seconds; custom.unique_for
  UnixNanos expires_at = 0;           // custom.expires_at; 0 = never

  bool operator==(const Job&) const = default;
};

}  // namespace depot::jobs
