#pragma once
// The data directory: created if missing, checked for writability and free space, and locked for
// this process with flock on DIR/depot.lock, which holds our pid so a second depot can name the
// holder. The kernel drops a flock when its holder dies, so a crash never leaves a stale lock.
#include <cstdint>
#include <filesystem>

#include "server/errc.h"

namespace depot::server {

class DataDir {
 public:
  // Fails with data_dir_unusable, data_dir_locked or low_disk_space and a message saying what to
  // do.
  static StartupResult<DataDir> open(const std::filesystem::path& path, uint64_t min_free_space);

  DataDir(DataDir&& other) noexcept;
  DataDir& operator=(DataDir&& other) noexcept;
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;
  ~DataDir();

  // Absolute and normalised.
  const std::filesystem::path& path() const { return path_; }
  // Bytes available to depot when the directory was opened.
  uint64_t free_space() const { return free_space_; }

  // Unlocks (the lock file stays; its pid is only a hint for the next holder's error message).
  void release();

  static constexpr const char* kLockFileName = "depot.lock";

 private:
  explicit DataDir(std::filesystem::path path) : path_(std::move(path)) {}

  std::filesystem::path path_;
  int lock_fd_ = -1;
  uint64_t free_space_ = 0;
};

}  // namespace depot::server
