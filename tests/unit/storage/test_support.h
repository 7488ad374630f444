#pragma once
// Helpers for storage tests: temporary directories, batch builders and a file system that
// injects faults (short writes, ENOSPC, EIO on fdatasync) and counts syncs.
#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>

#include "storage/file.h"
#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sync_service.h"
#include "support/temp_dir.h"

namespace depot::storage::testing {

using depot::testing::TempDir;

inline Bytes make_batch(int records, const std::string& key_prefix, const std::string& value,
                        int64_t timestamp = 1000) {
  RecordBatchBuilder builder;
  for (int i = 0; i < records; ++i) {
    std::string key = key_prefix + std::to_string(i);
    builder.add(as_bytes(key), as_bytes(value), timestamp + i);
  }
  return builder.build();
}

inline Bytes make_keyed(const std::string& key, std::optional<std::string> value, int64_t ts) {
  RecordBatchBuilder builder;
  std::optional<ByteSpan> v;
  if (value) v = as_bytes(*value);
  builder.add(as_bytes(key), v, ts);
  return builder.build();
}

// Append a temporary batch (the log rewrites the batch's base offset in place).
inline Result<AppendInfo> append_only(Log& log, Bytes batch) {
  return log.append(batch);
}
inline Result<AppendInfo> append_now(Log& log, Bytes batch) {
  return log.append_and_wait(batch);
}

// All records of the log from its start, as (offset, key, value) with null values as "<null>".
struct Row {
  int64_t offset;
  std::string key;
  std::string value;
  int64_t timestamp;
  bool operator==(const Row&) const = default;
};
inline std::vector<Row> read_all(const Log& log, size_t max_bytes = 1 << 20) {
  std::vector<Row> rows;
  int64_t offset = log.log_start_offset();
  while (offset < log.log_end_offset()) {
    auto r = log.read(offset, max_bytes);
    if (!r) throw std::runtime_error("read failed: " + r.error().message());
    if (r.value().data.empty()) break;
    ByteSpan data = r.value().data;
    while (!data.empty()) {
      auto h = validate_batch(data);
      if (!h) throw std::runtime_error("bad batch: " + h.error().message());
      auto records = decode_records(data.first(h.value().size_bytes()));
      if (!records) throw std::runtime_error("bad records: " + records.error().message());
      for (const auto& rec : records.value()) {
        rows.push_back({rec.offset, rec.key ? std::string(as_chars(*rec.key)) : "<null>",
                        rec.value ? std::string(as_chars(*rec.value)) : "<null>", rec.timestamp});
      }
      data = data.subspan(h.value().size_bytes());
    }
    offset = r.value().next_offset;
  }
  return rows;
}

// Wraps the POSIX file system; every knob is off by default.
class FaultyFileSystem final : public FileSystem {
 public:
  std::atomic<int> datasyncs{0};
  std::atomic<int> writes{0};
  std::atomic<int> fail_write_number{-1};  // the Nth write (1-based) fails
  std::atomic<int> short_write_bytes{0};   // ... after writing this many bytes of it
  std::atomic<int> write_errno{ENOSPC};
  std::atomic<bool> fail_datasync{false};  // every fdatasync fails with EIO
  std::atomic<bool> fail_allocate{false};  // every posix_fallocate fails with ENOSPC

  Result<std::shared_ptr<File>> open(const std::filesystem::path& path, OpenMode mode) override {
    DEPOT_TRY(auto inner, real_.open(path, mode));
    return std::shared_ptr<File>(std::make_shared<FaultyFile>(*this, std::move(inner)));
  }
  Result<void> remove(const std::filesystem::path& p) override { return real_.remove(p); }
  Result<void> rename(const std::filesystem::path& a, const std::filesystem::path& b) override {
    return real_.rename(a, b);
  }
  Result<void> create_directories(const std::filesystem::path& p) override {
    return real_.create_directories(p);
  }
  Result<void> remove_all(const std::filesystem::path& p) override { return real_.remove_all(p); }
  Result<bool> exists(const std::filesystem::path& p) override { return real_.exists(p); }
  Result<std::vector<std::string>> list(const std::filesystem::path& d) override {
    return real_.list(d);
  }
  Result<void> sync_directory(const std::filesystem::path& d) override {
    return real_.sync_directory(d);
  }

 private:
  class FaultyFile final : public File {
   public:
    FaultyFile(FaultyFileSystem& fs, std::shared_ptr<File> inner)
        : fs_(fs), inner_(std::move(inner)) {}
    Result<void> write_at(uint64_t offset, ByteSpan data) override {
      int n = ++fs_.writes;
      if (n == fs_.fail_write_number) {
        auto prefix = static_cast<size_t>(fs_.short_write_bytes.load());
        if (prefix > 0) (void)inner_->write_at(offset, data.first(std::min(prefix, data.size())));
        return errno_code(fs_.write_errno);
      }
      return inner_->write_at(offset, data);
    }
    Result<size_t> read_at(uint64_t offset, std::span<std::byte> out) override {
      return inner_->read_at(offset, out);
    }
    Result<uint64_t> size() override { return inner_->size(); }
    Result<void> truncate(uint64_t size) override { return inner_->truncate(size); }
    Result<void> allocate(uint64_t size) override {
      if (fs_.fail_allocate) return errno_code(ENOSPC);
      return inner_->allocate(size);
    }
    Result<void> datasync() override {
      ++fs_.datasyncs;
      if (fs_.fail_datasync) return errno_code(EIO);
      return inner_->datasync();
    }

   private:
    FaultyFileSystem& fs_;
    std::shared_ptr<File> inner_;
  };

  FileSystem& real_ = posix_file_system();
};

}  // namespace depot::storage::testing
