#include "storage/errc.h"

#include <string>

namespace depot::storage {
namespace {

class StorageCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "depot.storage"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::ok:
        return "ok";
      case errc::truncated_batch:
        return "record batch is truncated";
      case errc::bad_magic:
        return "record batch magic is not 2 (RecordBatch v2)";
      case errc::crc_mismatch:
        return "record batch CRC32C does not match its contents";
      case errc::bad_batch_length:
        return "record batch length is out of range";
      case errc::bad_record:
        return "record inside the batch is malformed";
      case errc::record_count_mismatch:
        return "records in the batch do not match its header (count or offset deltas)";
      case errc::compressed_batch:
        return "batch is compressed; its records cannot be read here";
      case errc::batch_too_large:
        return "record batch is larger than the configured maximum";
      case errc::offset_out_of_range:
        return "offset is outside the log";
      case errc::log_failed:
        return "log is failed after an I/O error and refuses writes; restart to recover";
      case errc::log_closed:
        return "log is closed";
        return "index file is damaged";
        return "data directory is locked by another process";
    }
    return "unknown storage error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& storage_category() {
  static const StorageCategory category;
  return category;
}

}  // namespace depot::storage
