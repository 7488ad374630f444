#include "server/data_dir.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <utility>

#include <fmt/format.h>

#include "server/units.h"

namespace depot::server {
namespace {

constexpr std::string_view kChooseAnother =
    "choose another directory with --data-dir or DEPOT_DATA_DIR";

// `what` went wrong, and errno `err` said why (0: `what` says it all).
StartupError unusable(const std::filesystem::path& path, std::string_view what, int err) {
  return StartupError{
      make_error_code(errc::data_dir_unusable),
      fmt::format("cannot use data directory {}: {}{}{}; make it a writable directory or {}",
                  path.string(), what, err != 0 ? ": " : "", err != 0 ? std::strerror(err) : "",
                  kChooseAnother)};
}

// The pid the current holder wrote into the lock file, or "unknown" while it is being written.
std::string read_holder_pid(int fd) {
  char buffer[32] = {};
  ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string pid(buffer, n > 0 ? static_cast<size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

// Creating a file proves the directory takes writes, which access(2) cannot tell for root.
int probe_write(const std::filesystem::path& dir) {
  auto probe = dir / fmt::format(".write-probe-{}", ::getpid());
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = ::write(fd, "x", 1) == 1 ? 0 : errno;
  ::close(fd);
  ::unlink(probe.c_str());
  return err;
}

}  // namespace

StartupResult<DataDir> DataDir::open(const std::filesystem::path& path, uint64_t min_free_space) {
  std::filesystem::path absolute = std::filesystem::absolute(path).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();  // "dir/" -> "dir"
  DataDir dir(absolute);

  std::error_code ec;
  if (std::filesystem::exists(absolute, ec) && !std::filesystem::is_directory(absolute, ec)) {
    return unusable(absolute, "it exists and is not a directory", 0);
  }
  std::filesystem::create_directories(absolute, ec);
  if (ec) return unusable(absolute, "cannot create it", ec.value());

  auto lock_path = absolute / kLockFileName;
  dir.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (dir.lock_fd_ < 0) return unusable(absolute, "cannot open its lock file", errno);
  if (::flock(dir.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return unusable(absolute, "cannot lock it", errno);
    return StartupError{
        make_error_code(errc::data_dir_locked),
        fmt::format("data directory {} is in use by another depot process (pid {}); stop that "
                    "process or {}",
                    absolute.string(), read_holder_pid(dir.lock_fd_), kChooseAnother)};
  }
  auto pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(dir.lock_fd_, 0) != 0 ||
      ::pwrite(dir.lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return unusable(absolute, "cannot write its lock file", errno);
  }
  if (int err = probe_write(absolute); err != 0) {
    return unusable(absolute, "cannot create files in it", err);
  }

  struct statvfs fs {};
  if (::statvfs(absolute.c_str(), &fs) != 0) {
    return unusable(absolute, "cannot read its file system's free space", errno);
  }
  dir.free_space_ = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (dir.free_space_ < min_free_space) {
    return StartupError{
        make_error_code(errc::low_disk_space),
        fmt::format("only {} free on the file system of data directory {} (at least {} required); "
                    "free some space, {}, or lower --min-free-space",
                    describe_size(dir.free_space_), absolute.string(),
                    describe_size(min_free_space), kChooseAnother)};
  }
  return dir;
}

DataDir::DataDir(DataDir&& other) noexcept
    : path_(std::move(other.path_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      free_space_(other.free_space_) {}

DataDir& DataDir::operator=(DataDir&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    free_space_ = other.free_space_;
  }
  return *this;
}

DataDir::~DataDir() {
  release();
}

void DataDir::release() {
  if (lock_fd_ >= 0) ::close(std::exchange(lock_fd_, -1));  // closing the fd drops the flock
}

}  // namespace depot::server
