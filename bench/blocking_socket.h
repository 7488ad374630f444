#pragma once
// A blocking loopback TCP client that reads CRLF-terminated lines and counted payloads: enough
// to speak Faktory's RESP, beanstalkd's text protocol and Redis's RESP from one thread per
// connection, as their own clients do. Used by the load generators and by the tests that drive
// a spawned depot.
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace depot::bench {

// A loopback port that was free a moment ago (for servers the caller is about to start).
inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Sends all `size` bytes on a blocking socket; false on any error or a closed peer.
inline bool send_all(int fd, const void* data, size_t size) {
  const auto* at = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, at, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A listening socket on a loopback port (by default an ephemeral one), for the references a load
// generator measures next to the server (a peer it plays itself).
class LoopbackListener {
 public:
  explicit LoopbackListener(uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 64) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~LoopbackListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  // Makes a waiting accept() return -1, and every later one.
  void shut() { ::shutdown(fd_, SHUT_RDWR); }
  // The next connection, with Nagle off as on the clients' side; -1 on error. The caller closes it.
  int accept() {
    const int peer = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    int one = 1;
    if (peer >= 0) ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return peer;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A peer the load generator plays itself (a null broker): on a loopback port, each connection
// served by `serve(fd)` on a thread of its own with blocking I/O; `serve` returns when its
// connection ends. The destructor ends the connections still open and joins their threads.
class ThreadPerConnectionServer {
 public:
  ThreadPerConnectionServer(uint16_t port, std::function<void(int)> serve)
      : listener_(port), serve_(std::move(serve)) {
    if (!listener_.ok()) return;
    acceptor_ = std::thread([this] {
      for (int fd; (fd = listener_.accept()) >= 0;) {
        std::lock_guard lock(mutex_);
        connections_.push_back(fd);
        threads_.emplace_back([this, fd] { serve_(fd); });
      }
    });
  }
  ~ThreadPerConnectionServer() {
    if (!acceptor_.joinable()) return;
    listener_.shut();
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : connections_)
        ::shutdown(fd, SHUT_RDWR);  // ends any connection a client left open
    }
    for (std::thread& t : threads_)
      t.join();
    for (int fd : connections_)
      ::close(fd);
  }
  ThreadPerConnectionServer(const ThreadPerConnectionServer&) = delete;
  ThreadPerConnectionServer& operator=(const ThreadPerConnectionServer&) = delete;

  bool ok() const { return listener_.ok(); }
  uint16_t port() const { return listener_.port(); }

 private:
  LoopbackListener listener_;
  std::function<void(int)> serve_;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> connections_;
  std::vector<std::thread> threads_;
};

// Any I/O error, EOF or receive timeout makes ok() false for good.
class BlockingSocket {
 public:
  BlockingSocket(uint16_t port, std::chrono::milliseconds receive_timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(receive_timeout).count();
    timeval timeout{static_cast<time_t>(micros / 1'000'000),
                    static_cast<suseconds_t>(micros % 1'000'000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~BlockingSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  BlockingSocket(BlockingSocket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        ok_(std::exchange(other.ok_, false)),
        buffer_(std::move(other.buffer_)) {}
  BlockingSocket& operator=(BlockingSocket&&) = delete;
  BlockingSocket(const BlockingSocket&) = delete;
  BlockingSocket& operator=(const BlockingSocket&) = delete;

  bool ok() const { return ok_; }

  bool send(std::string_view bytes) {
    if (ok_ && !send_all(fd_, bytes.data(), bytes.size())) ok_ = false;
    return ok_;
  }

  // The next line without its CRLF; "" (and ok() false) on error.
  std::string read_line() {
    for (size_t searched = 0;;) {
      auto end = buffer_.find("\r\n", searched);
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
      }
      searched = buffer_.empty() ? 0 : buffer_.size() - 1;
      if (!receive()) return {};
    }
  }

  // The next `length` bytes followed by CRLF, which is consumed; "" (and ok() false) on error.
  std::string read_payload(size_t length) {
    while (ok_ && buffer_.size() < length + 2) {
      receive();
    }
    if (!ok_) return {};
    std::string payload = buffer_.substr(0, length);
    buffer_.erase(0, length + 2);
    return payload;
  }

  // Exactly `n` bytes into `out` (what is buffered first, then straight from the socket);
  // false (and ok() false) on error.
  bool read_exactly(char* out, size_t n) {
    const size_t buffered = std::min(n, buffer_.size());
    std::memcpy(out, buffer_.data(), buffered);
    buffer_.erase(0, buffered);
    for (size_t at = buffered; ok_ && at < n;) {
      ssize_t got = ::recv(fd_, out + at, n - at, 0);
      if (got <= 0) ok_ = false;
      if (ok_) at += static_cast<size_t>(got);
    }
    return ok_;
  }

  // True when the peer has closed the connection (EOF within the receive timeout).
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

  // Wakes a thread blocked on this socket (from another thread); the socket is unusable after.
  void shutdown() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  bool receive() {
    char chunk[16 * 1024];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) ok_ = false;
    if (ok_) buffer_.append(chunk, static_cast<size_t>(n));
    return ok_;
  }

  int fd_ = -1;
  bool ok_ = false;
  std::string buffer_;
};

}  // namespace depot::bench
