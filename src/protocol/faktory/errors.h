#pragma once
// Faktory's error replies as data (STYLE.md: one table per protocol). Clients and their tests match
// on these texts, so they are copied from the Faktory 1.10.0 server (shared/reference/faktory.md)
// and must not be reworded. A reply is "-<code> <message>\r\n"; code is ERR except for the few
// "known" errors Faktory gives their own code (Enterprise's NOTUNIQUE).
#include <string>
#include <string_view>
#include <utility>

#include <boost/outcome/std_result.hpp>

namespace depot::faktory {

struct Error {
  std::string code = "ERR";
  std::string message;

  bool operator==(const Error&) const = default;
};

inline Error error(std::string message) {
  return Error{"ERR", std::move(message)};
}

// A parsed value, or the Faktory error to send back for it.
template <class T>
using ParseResult = boost::outcome_v2::std_checked<T, Error>;

namespace text {
// Framing and dispatch.
inline constexpr std::string_view kUnknownCommand = "unknown command ";  // + verb
inline constexpr std::string_view kLineTooLong = "command line too long";
inline constexpr std::string_view kInternalError = "internal error";
inline constexpr std::string_view kTooManyConnections = "too many connections: ";  // + count
inline constexpr std::string_view kShutdown = "shutdown in progress";
// Handshake.
inline constexpr std::string_view kInvalidPassword = "Invalid password";
inline constexpr std::string_view kInvalidHello = "invalid HELLO: ";  // + reason; then close
// Jobs (PUSH, PUSHB).
inline constexpr std::string_view kInvalidJson = "invalid JSON: ";  // + reason
inline constexpr std::string_view kBadJid = "jobs must have a reasonable jid parameter";
inline constexpr std::string_view kNoJobtype = "jobs must have a jobtype parameter";
inline constexpr std::string_view kNoArgs = "jobs must have an args parameter";
inline constexpr std::string_view kReserveTooLong = "jobs cannot be reserved for more than one day";
inline constexpr std::string_view kInvalidAt = "invalid timestamp for 'at': ";  // + quoted value
inline constexpr std::string_view kNotUniqueCode = "NOTUNIQUE";
inline constexpr std::string_view kNotUnique = "Job not unique";
// ACK, FAIL, BEAT: the payload follows the prefix.
inline constexpr std::string_view kInvalidAck = "invalid ACK ";
inline constexpr std::string_view kInvalidFail = "invalid FAIL ";
inline constexpr std::string_view kInvalidBeat = "invalid BEAT ";
inline constexpr std::string_view kMissingJid = "missing JID";
inline constexpr std::string_view kJobNotFound = "Job not found ";     // + jid
inline constexpr std::string_view kUnknownWorker = "unknown worker ";  // + wid
// QUEUE.
inline constexpr std::string_view kNoSuchQueueSubcommand = "no such QUEUE subcommand: ";  // + SUB
inline constexpr std::string_view kLatencyWildcard = "QUEUE LATENCY does not support wildcards";
inline constexpr std::string_view kNoQueueNames = "QUEUE needs queue names or *";
// MUTATE.
inline constexpr std::string_view kInvalidFormat = "invalid format";
inline constexpr std::string_view kInvalidTarget = "invalid target for mutation command";
inline constexpr std::string_view kUnknownMutateOp = "unknown mutate operation";
// CHECKPOINT: depot's own extension, so these texts are depot's, not Faktory's.
inline constexpr std::string_view kInvalidCheckpoint = "invalid CHECKPOINT: ";  // + reason
inline constexpr std::string_view kCheckpointNeedsWorker =
    "CHECKPOINT needs a worker connection: send a wid in HELLO";
inline constexpr std::string_view kJobNotReserved =
    "job not reserved (unknown jid, already finished, or its reservation expired): ";     // + jid
inline constexpr std::string_view kReservedByOther = "job reserved by another worker: ";  // + jid
// Enterprise-only commands.
inline constexpr std::string_view kBatchEnterprise =
    "batch subsystem is only available in Faktory Enterprise";
inline constexpr std::string_view kTrackEnterprise =
    "tracking subsystem is only available in Faktory Enterprise";
}  // namespace text

}  // namespace depot::faktory
