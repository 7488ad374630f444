#pragma once
// The storage engine reaches the file system only through these two interfaces, so tests can
// replace them to inject short writes, EIO, ENOSPC and torn tails (beanstalkd's seam, STYLE.md).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace depot::storage {

class File {
 public:
  virtual ~File() = default;
  // Writes all of `data` at `offset`, or fails; a failed write may have written a prefix.
  virtual Result<void> write_at(uint64_t offset, ByteSpan data) = 0;
  // Reads up to out.size() bytes; fewer only at end of file.
  virtual Result<size_t> read_at(uint64_t offset, std::span<std::byte> out) = 0;
  virtual Result<uint64_t> size() = 0;
  virtual Result<void> truncate(uint64_t size) = 0;
  // Grows the file to `size` bytes of allocated zeros (posix_fallocate); a smaller or equal size
  // changes nothing. Writes inside allocated space then need no block allocation or size change,
  // which makes their fdatasync cheaper.
  virtual Result<void> allocate(uint64_t size) = 0;
  // fdatasync: the file's data (and the size needed to read it) are on stable storage.
  virtual Result<void> datasync() = 0;
  // The descriptor a socket writer can send ranges of this file from (sendfile), or -1 when the
  // file has none (test doubles): readers then read the bytes instead.
  virtual int native_handle() const { return -1; }
};

enum class OpenMode { read_write_create, read_only };

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::shared_ptr<File>> open(const std::filesystem::path& path, OpenMode mode) = 0;
  virtual Result<void> remove(const std::filesystem::path& path) = 0;
  virtual Result<void> rename(const std::filesystem::path& from,
                              const std::filesystem::path& to) = 0;
  virtual Result<void> create_directories(const std::filesystem::path& path) = 0;
  virtual Result<void> remove_all(const std::filesystem::path& path) = 0;
  virtual Result<bool> exists(const std::filesystem::path& path) = 0;
  // Names (not paths) of the entries in a directory.
  virtual Result<std::vector<std::string>> list(const std::filesystem::path& dir) = 0;
  // fsync on the directory, so that created, renamed and removed entries are durable.
  virtual Result<void> sync_directory(const std::filesystem::path& dir) = 0;
};

// The real file system (POSIX calls, EINTR retried).
FileSystem& posix_file_system();

// A small file's whole content.
Result<Bytes> read_whole_file(FileSystem& fs, const std::filesystem::path& path);
// Replaces a small file atomically and durably: a temporary beside it is written, synced and
// renamed over it, and the directory synced, so a crash leaves the old content or the new.
Result<void> replace_file(FileSystem& fs, const std::filesystem::path& path, ByteSpan content);

}  // namespace depot::storage
