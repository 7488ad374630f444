#pragma once
// Job store errors as values. The Faktory face maps them to its reply texts.
#include <system_error>

namespace depot::jobs {

enum class errc {
  ok = 0,
  job_not_found = 1,  // ACK/FAIL of a jid that is not reserved
  not_unique,         // a unique job with the same jobtype, args and queue is already present
  expired,            // the job's custom.expires_at has passed: it is discarded, not queued
  corrupt_journal,    // a journal record does not decode
  reserved_by_other,  // CHECKPOINT of a job another worker holds the reservation of
};

const std::error_category& jobs_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), jobs_category()};
}

}  // namespace depot::jobs

template <>
struct std::is_error_code_enum<depot::jobs::errc> : std::true_type {};
