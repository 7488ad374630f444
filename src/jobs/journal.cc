#include "jobs/journal.h"

#include "jobs/errc.h"

namespace depot::jobs {
namespace {

constexpr uint8_t kFormatVersion = 1;

void write_string(ByteWriter& w, const std::string& s) {
  w.write_uvarint(s.size());
  w.write_bytes(as_bytes(s));
}

std::string read_string(ByteReader& r) {
  uint64_t n = r.read_uvarint();
  if (n > r.remaining()) {
    r.fail();
    return {};
  }
  return std::string(as_chars(r.read_bytes(static_cast<size_t>(n))));
}

void write_job(ByteWriter& w, const Job& job) {
  write_string(w, job.jid);
  write_string(w, job.jobtype);
  write_string(w, job.queue);
  write_string(w, job.args);
  write_string(w, job.custom);
  w.write_varlong(job.created_at);
  w.write_varlong(job.enqueued_at);
  w.write_varlong(job.at);
  w.write_varint(job.reserve_for);
  w.write_varint(job.retry);
  w.write_be<uint8_t>(job.backtrace.has_value());
  if (job.backtrace) w.write_varint(*job.backtrace);
  w.write_be<uint8_t>(job.unique_for.has_value());
  if (job.unique_for) w.write_varlong(*job.unique_for);
  w.write_varlong(job.expires_at);
  w.write_be<uint8_t>(job.failure.has_value());
  if (job.failure) {
    const Failure& f = *job.failure;
    w.write_varint(f.retry_count);
    w.write_varint(f.remaining);
    w.write_varlong(f.failed_at);
    w.write_varlong(f.next_at);
    write_string(w, f.message);
    write_string(w, f.errtype);
    w.write_uvarint(f.backtrace.size());
    for (const auto& line : f.backtrace)
      write_string(w, line);
  }
}

Job read_job(ByteReader& r) {
  Job job;
  job.jid = read_string(r);
  job.jobtype = read_string(r);
  job.queue = read_string(r);
  job.args = read_string(r);
  job.custom = read_string(r);
  job.created_at = r.read_varlong();
  job.enqueued_at = r.read_varlong();
  job.at = r.read_varlong();
  job.reserve_for = r.read_varint();
  job.retry = r.read_varint();
  if (r.read_be<uint8_t>()) job.backtrace = r.read_varint();
  if (r.read_be<uint8_t>()) job.unique_for = r.read_varlong();
  job.expires_at = r.read_varlong();
  if (r.read_be<uint8_t>()) {
    Failure f;
    f.retry_count = r.read_varint();
    f.remaining = r.read_varint();
    f.failed_at = r.read_varlong();
    f.next_at = r.read_varlong();
    f.message = read_string(r);
    f.errtype = read_string(r);
    uint64_t lines = r.read_uvarint();
    if (lines > r.remaining()) r.fail();
    for (uint64_t i = 0; r.ok() && i < lines; ++i)
      f.backtrace.push_back(read_string(r));
    job.failure = std::move(f);
  }
  return job;
}

}  // namespace

bool is_job_kind(RecordKind kind) {
  return static_cast<uint8_t>(kind) < 16;
}

Bytes encode_record(const JournalRecord& record) {
  Bytes out;
  ByteWriter w(out);
  w.write_be<uint8_t>(kFormatVersion);
  w.write_be<uint8_t>(static_cast<uint8_t>(record.kind));
  if (is_job_kind(record.kind)) write_job(w, record.job);
  write_string(w, record.name);
  w.write_varlong(record.since);
  w.write_varlong(record.until);
  return out;
}

Result<JournalRecord> decode_record(ByteSpan bytes) {
  ByteReader r(bytes);
  JournalRecord record;
  if (r.read_be<uint8_t>() != kFormatVersion) return errc::corrupt_journal;
  auto kind = r.read_be<uint8_t>();
  record.kind = static_cast<RecordKind>(kind);
  const auto last_job_kind = static_cast<uint8_t>(RecordKind::working);
  const auto first_marker = static_cast<uint8_t>(RecordKind::flushed);
  const auto last_marker = static_cast<uint8_t>(RecordKind::periodic_fired);
  if (kind < 1 || (kind > last_job_kind && kind < first_marker) || kind > last_marker) {
    return errc::corrupt_journal;
  }
  if (is_job_kind(record.kind)) record.job = read_job(r);
  record.name = read_string(r);
  record.since = r.read_varlong();
  record.until = r.read_varlong();
  if (!r.ok() || !r.at_end()) return errc::corrupt_journal;
  return record;
}

}  // namespace depot::jobs
