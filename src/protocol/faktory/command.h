#pragma once
// Faktory commands as typed values: parse_command() turns one request line into a Command or the
// exact error Faktory 1.10.0 replies with (shared/reference/faktory.md §3). No I/O and no store:
// the connection handler dispatches on the variant.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "jobs/job.h"
#include "jobs/store.h"
#include "jobs/workers.h"
#include "protocol/faktory/errors.h"
#include "protocol/faktory/framing.h"
#include "protocol/faktory/job_json.h"

namespace depot::faktory {

// HELLO {json}: the handshake reply. Only valid as the first line (the handler enforces that; a
// HELLO later is "unknown command HELLO" in Faktory).
struct Hello {
  int64_t version = 0;  // "v"; below 2 a password hash uses one iteration
  std::string hostname;
  std::string wid;  // non-empty for a worker (consumer) connection
  int64_t pid = 0;
  std::vector<std::string> labels;
  std::string pwdhash;
  std::string username;

  bool operator==(const Hello&) const = default;
};

struct Push {
  jobs::Job job;
  bool operator==(const Push&) const = default;
};

struct PushBulk {
  std::vector<BulkItem> items;  // in the order sent
  bool operator==(const PushBulk&) const = default;
};

struct Fetch {
  std::vector<std::string> queues;  // in priority order; ["default"] when none were named
  bool operator==(const Fetch&) const = default;
};

struct Ack {
  std::string jid;
  bool operator==(const Ack&) const = default;
};

// Already cleansed as Faktory does: trimmed, errtype <= 100 and message <= 1000 bytes (cut on a
// UTF-8 character boundary), empty ones "unknown", at most 50 backtrace lines.
struct Fail {
  std::string jid;
  std::string errtype;
  std::string message;
  std::vector<std::string> backtrace;
  bool operator==(const Fail&) const = default;
};

// The store's own enums: the wire names map one to one onto them.
using WorkerState = jobs::WorkerState;

struct Beat {
  std::string wid;
  std::optional<WorkerState> current_state;  // nullopt when not sent (no change)
  int64_t rss_kb = 0;
  bool operator==(const Beat&) const = default;
};

struct Info {
  bool operator==(const Info&) const = default;
};
struct Flush {
  bool operator==(const Flush&) const = default;
};
// END: close without a reply.
struct End {
  bool operator==(const End&) const = default;
};

enum class QueueOp { pause, resume, remove, latency };

struct QueueCommand {
  QueueOp op = QueueOp::pause;
  std::vector<std::string> names;
  bool all = false;  // "*" (every existing queue); never set for latency
  bool operator==(const QueueCommand&) const = default;
};

using MutateOp = jobs::MutateOp;
using MutateTarget = jobs::JobSet;

struct MutateFilter {
  std::vector<std::string> jids;  // when non-empty, the only criterion
  std::string regexp;             // Redis SCAN-style glob over the job's JSON
  std::string jobtype;
  bool operator==(const MutateFilter&) const = default;
};

struct Mutate {
  MutateOp op = MutateOp::clear;
  MutateTarget target = MutateTarget::retries;
  std::optional<MutateFilter> filter;  // discard without a filter clears the whole set
  bool operator==(const Mutate&) const = default;
};

// CHECKPOINT {json}: depot's extension for long-running (iteration) jobs; Faktory has no such
// command. The worker that holds a job's reservation reports where the job has got to:
//
//   CHECKPOINT {"jid":"<jid>","custom":{...},"progress":{"done":<int>,"total":<int>}}
//
//   jid       required, a string: a job reserved by this connection's worker (its HELLO wid).
//   custom    optional object (null = absent): merged shallowly into the job's custom, each
//             top-level key replacing the job's key of that name, other keys kept; unique_for and
//             expires_at are re-read from the result. The merged job is journaled as the
//             reservation's job: a restart, an expired reservation (back to the queue) or a FAIL
//             (retry) carries it on.
//   progress  optional object (null = absent): "done" (required, integer >= 0) and "total"
//             (optional, integer >= 0 or null). Kept in memory only, shown in INFO's "depot" key.
//
// Every CHECKPOINT renews the reservation for the job's reserve_for seconds from now.
// Replies: +OK once the new record is durable under the fsync policy; else (the connection
// carries on)
//   -ERR invalid CHECKPOINT: <reason>      malformed JSON, no jid, a field of the wrong type
//   -ERR CHECKPOINT needs a worker connection: send a wid in HELLO
//   -ERR job not reserved (unknown jid, already finished, or its reservation expired): <jid>
//   -ERR job reserved by another worker: <jid>
//   -ERR invalid JSON: <reason>            the job's stored custom cannot be merged (not expected)
struct Checkpoint {
  std::string jid;
  std::optional<std::vector<JsonMember>> custom;  // the members to merge, in the order sent
  std::optional<jobs::Progress> progress;
  bool operator==(const Checkpoint&) const = default;
};

using Command = std::variant<Hello, Push, PushBulk, Fetch, Ack, Fail, Beat, Info, Flush, End,
                             QueueCommand, Mutate, Checkpoint>;

ParseResult<Command> parse_command(std::string_view verb, std::string_view payload);
inline ParseResult<Command> parse_command(const Line& line) {
  return parse_command(line.verb, line.payload);
}

// Faktory's FAIL cleansing, exposed for the reservation reaper's synthetic failures and tests.
std::string trim_space(std::string_view text);                            // Go's strings.TrimSpace
std::string truncate_utf8(std::string_view text, std::size_t max_bytes);  // whole characters only

}  // namespace depot::faktory
