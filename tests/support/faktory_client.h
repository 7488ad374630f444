#pragma once
// A blocking Faktory client for tests that speak the work protocol to a spawned depot, and a free
// loopback port to run it on.
#include <arpa/inet.h>
#include <cstdint>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace depot::testing {

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A blocking Faktory client: one command, one reply. Any I/O error makes ok() false for good.
class FaktoryClient {
 public:
  // Connects and, unless `hello` is false, completes the handshake.
  explicit FaktoryClient(uint16_t port, const std::string& wid = "", bool hello = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (ok_) greeting_ = read_reply();
    if (ok_ && greeting_.rfind("+HI", 0) != 0) ok_ = false;
    if (!hello) return;
    std::string hello_json = wid.empty() ? R"({"v":2,"hostname":"t"})"
                                         : R"({"v":2,"hostname":"t","pid":1,"wid":")" + wid + "\"}";
    if (ok_ && command("HELLO " + hello_json) != "+OK") ok_ = false;
  }
  ~FaktoryClient() { ::close(fd_); }
  FaktoryClient(const FaktoryClient&) = delete;
  FaktoryClient& operator=(const FaktoryClient&) = delete;

  bool ok() const { return ok_; }
  const std::string& greeting() const { return greeting_; }
  // Sends raw bytes (no CRLF added).
  bool send_raw(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // True when the server has closed the connection (reads EOF within the socket timeout).
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

  // Sends a command; returns the reply line, or the bulk payload ("" for null), or "" on error.
  std::string command(const std::string& line) {
    std::string out = line + "\r\n";
    if (!ok_ ||
        ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      ok_ = false;
      return {};
    }
    return read_reply();
  }

 private:
  // Appends what the socket has to the buffer; false (for good) on EOF, error or timeout.
  bool receive() {
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) ok_ = false;
    if (ok_) buffer_.append(chunk, static_cast<size_t>(n));
    return ok_;
  }
  std::string read_line() {
    for (;;) {
      auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
      }
      if (!receive()) return {};
    }
  }
  std::string read_reply() {
    std::string line = read_line();
    if (!ok_ || line.empty() || line[0] != '$') return line;
    long length = std::stol(line.substr(1));
    if (length < 0) return "";
    while (buffer_.size() < static_cast<size_t>(length) + 2) {
      if (!receive()) return {};
    }
    std::string payload = buffer_.substr(0, static_cast<size_t>(length));
    buffer_.erase(0, static_cast<size_t>(length) + 2);
    return payload;
  }

  int fd_ = -1;
  bool ok_ = false;
  std::string buffer_;
  std::string greeting_;
};

inline std::string jid_of(const std::string& job_json) {
  auto at = job_json.find("\"jid\":\"");
  if (at == std::string::npos) return {};
  at += 7;
  return job_json.substr(at, job_json.find('"', at) - at);
}

}  // namespace depot::testing
