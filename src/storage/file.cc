#include "storage/file.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace depot::storage {
namespace {

class PosixFile final : public File {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<void> write_at(uint64_t offset, ByteSpan data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_code(errno);
      }
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return success();
  }

  Result<size_t> read_at(uint64_t offset, std::span<std::byte> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_code(errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Result<uint64_t> size() override {
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return errno_code(errno);
    return static_cast<uint64_t>(end);
  }

  Result<void> truncate(uint64_t size) override {
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return errno_code(errno);
    }
    return success();
  }

  Result<void> allocate(uint64_t size) override {
    // posix_fallocate returns the error instead of setting errno.
    int error = 0;
    do {
      error = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    } while (error == EINTR);
    if (error != 0) return errno_code(error);
    return success();
  }

  Result<void> datasync() override {
    // No retry on failure: after a failed fdatasync the kernel may have dropped the dirty pages,
    // so the caller must treat the data as lost rather than try again.
    if (::fdatasync(fd_) != 0) return errno_code(errno);
    return success();
  }

  int native_handle() const override { return fd_; }

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::shared_ptr<File>> open(const std::filesystem::path& path, OpenMode mode) override {
    int flags = O_CLOEXEC | (mode == OpenMode::read_only ? O_RDONLY : (O_RDWR | O_CREAT));
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno_code(errno);
    return std::shared_ptr<File>(std::make_shared<PosixFile>(fd));
  }

  Result<void> remove(const std::filesystem::path& path) override {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return ec;
    return success();
  }

  Result<void> rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (ec) return ec;
    return success();
  }

  Result<void> create_directories(const std::filesystem::path& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return ec;
    return success();
  }

  Result<void> remove_all(const std::filesystem::path& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ec;
    return success();
  }

  Result<bool> exists(const std::filesystem::path& path) override {
    std::error_code ec;
    bool found = std::filesystem::exists(path, ec);
    if (ec) return ec;
    return found;
  }

  Result<std::vector<std::string>> list(const std::filesystem::path& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return ec;
    return names;
  }

  Result<void> sync_directory(const std::filesystem::path& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_code(err);
    return success();
  }
};

}  // namespace

FileSystem& posix_file_system() {
  static PosixFileSystem fs;
  return fs;
}

Result<Bytes> read_whole_file(FileSystem& fs, const std::filesystem::path& path) {
  DEPOT_TRY(auto file, fs.open(path, OpenMode::read_only));
  DEPOT_TRY(uint64_t size, file->size());
  Bytes content(size);
  DEPOT_TRY(size_t read, file->read_at(0, content));
  content.resize(read);
  return content;
}

Result<void> replace_file(FileSystem& fs, const std::filesystem::path& path, ByteSpan content) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    DEPOT_TRY(auto file, fs.open(temporary, OpenMode::read_write_create));
    DEPOT_TRY(file->truncate(0));
    DEPOT_TRY(file->write_at(0, content));
    DEPOT_TRY(file->datasync());
  }
  DEPOT_TRY(fs.rename(temporary, path));
  return fs.sync_directory(path.parent_path());
}

}  // namespace depot::storage
