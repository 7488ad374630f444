#pragma once
// Storage errors as values (see STYLE.md): one enum, one category, each with a message that says
// what went wrong in terms an operator can act on.
#include <system_error>

namespace depot::storage {

enum class errc {
  ok = 0,
  truncated_batch = 1,    // fewer bytes than the batch header claims
  bad_magic,              // not a RecordBatch v2
  crc_mismatch,           // CRC32C over the batch does not match its header
  bad_batch_length,       // length field out of range
  bad_record,             // a record inside the batch does not parse
  record_count_mismatch,  // records decoded differ from the header's count or offset span
  compressed_batch,       // records of a compressed batch cannot be decoded here
  batch_too_large,        // batch exceeds the log's max batch size
  offset_out_of_range,    // offset below the log start or above the log end
  log_failed,             // an earlier fsync or write failed; the log refuses writes
  log_closed,             // operation on a closed log
};

const std::error_category& storage_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace depot::storage

template <>
struct std::is_error_code_enum<depot::storage::errc> : std::true_type {};
