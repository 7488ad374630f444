#pragma once
// The job store's journal records: every state change of a job is one record in a storage-engine
// log, keyed by jid, whose value says where the job now is and carries the whole job. The newest
// record of a jid is its state; an ACK or a discard is a tombstone (null value). A few records with
// an empty key change many jobs at once (FLUSH, QUEUE REMOVE) or a queue's pause flag. A
// periodic_fired record is keyed by a periodic job's identity instead of a jid.
#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "jobs/job.h"

namespace depot::jobs {

enum class RecordKind : uint8_t {
  enqueued = 1,         // waiting in job.queue
  scheduled = 2,        // waiting for job.at
  retry = 3,            // waiting for job.failure->next_at
  dead = 4,             // in the dead set since `since`
  working = 5,          // reserved by `wid` until `until`
  flushed = 16,         // everything before this record is gone
  queue_removed = 17,   // the queue `name` and its waiting jobs are gone
  queue_paused = 18,    // `name` is paused
  queue_resumed = 19,   // `name` is no longer paused
  periodic_fired = 20,  // the periodic job of this key last fired for its tick at `since`
  // A new kind goes last in its group; decode_record checks kinds against the groups' ends.
};

struct JournalRecord {
  RecordKind kind = RecordKind::enqueued;
  Job job;              // job kinds
  std::string name;     // queue kinds: the queue; working: the worker id
  UnixNanos since = 0;  // dead: when it died; working: when it was reserved; periodic_fired: tick
  UnixNanos until = 0;  // working: when the reservation expires
};

bool is_job_kind(RecordKind kind);

Bytes encode_record(const JournalRecord& record);
Result<JournalRecord> decode_record(ByteSpan bytes);

}  // namespace depot::jobs
