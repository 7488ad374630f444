#pragma once
// The Faktory job JSON <-> jobs::Job. Parsing applies Faktory 1.10.0's PUSH validation and
// defaults (shared/reference/faktory.md §4); writing produces what its FETCH returns. `args` and
// `custom` are kept as the client's exact text, so parse_job(write_job(j)) == j for any job
// parse_job returned.
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "jobs/job.h"
#include "jobs/store.h"
#include "protocol/faktory/errors.h"

namespace depot::faktory {

// One job of a PUSHB that failed validation; the reply maps jid -> error text.
struct RejectedJob {
  std::string jid;
  std::string error;

  bool operator==(const RejectedJob&) const = default;
};

using BulkItem = std::variant<jobs::Job, RejectedJob>;

// A job as PUSH sends it. Errors carry Faktory's texts: "invalid JSON: ..." for malformed JSON or
// a field of the wrong type, else the validation message ("jobs must have a jobtype parameter").
// created_at is left 0 when absent, for the store to set.
ParseResult<jobs::Job> parse_job(std::string_view json);

// A job definition without a jid, such as a periodic job from the config file: the same fields,
// defaults and checks as parse_job, except that the jid is not required (each enqueue gets its
// own).
ParseResult<jobs::Job> parse_job_template(std::string_view json);

// The array of jobs PUSHB sends. Malformed JSON fails the whole command (as in Faktory); a job
// that fails validation becomes a RejectedJob and the others still count.
ParseResult<std::vector<BulkItem>> parse_jobs(std::string_view json);

// One member of a JSON object: its key (unescaped) and its value's exact text.
struct JsonMember {
  std::string key;
  std::string json;

  bool operator==(const JsonMember&) const = default;
};

// CHECKPOINT's shallow merge into a job's custom: each member of `patch` replaces the value of
// the member with the same key (keys match exactly, as in a Go map), or is added after the others;
// the other members stay as they were. unique_for and expires_at are then read from the result as
// PUSH reads them. An error (in Faktory's "invalid JSON: " form) changes nothing.
ParseResult<void> merge_custom(jobs::Job& job, const std::vector<JsonMember>& patch);

// The job as FETCH returns it.
std::string write_job(const jobs::Job& job);
void append_job(std::string& out, const jobs::Job& job);

// A reservation's identity as JSON members, without braces: "jid":..,"jobtype":..,"queue":..,
// "wid":.. (INFO's progress list and the admin API's working list).
void append_reservation_members(std::string& out, const jobs::ReservedJob& reserved);
// Its last progress as JSON members: "done":..[,"total":..],"updated_at":"RFC 3339". The
// reservation must have reported progress.
void append_progress_members(std::string& out, const jobs::ReservedJob& reserved);

// PUSHB's reply: {"jid":"error",...}, or {} when every job was accepted. Like Go's map, a jid
// rejected twice appears once, with its last error.
std::string write_rejections(const std::vector<RejectedJob>& rejected);

}  // namespace depot::faktory
