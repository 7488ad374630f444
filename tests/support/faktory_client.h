#pragma once
// A blocking Faktory client for tests that speak the work protocol to a spawned depot, and a free
// loopback port to run it on.
#include <chrono>
#include <cstdint>
#include <string>

#include "bench/blocking_socket.h"

namespace depot::testing {

inline uint16_t free_port() {
  return bench::free_loopback_port();
}

// A blocking Faktory client: one command, one reply. Any I/O error makes ok() false for good.
class FaktoryClient {
 public:
  // Connects and, unless `hello` is false, completes the handshake.
  explicit FaktoryClient(uint16_t port, const std::string& wid = "", bool hello = true)
      : socket_(port, std::chrono::seconds(5)) {
    if (socket_.ok()) greeting_ = read_reply();
    ok_ = socket_.ok() && greeting_.rfind("+HI", 0) == 0;
    if (!hello) return;
    std::string hello_json = wid.empty() ? R"({"v":2,"hostname":"t"})"
                                         : R"({"v":2,"hostname":"t","pid":1,"wid":")" + wid + "\"}";
    if (ok_ && command("HELLO " + hello_json) != "+OK") ok_ = false;
  }

  bool ok() const { return ok_ && socket_.ok(); }
  const std::string& greeting() const { return greeting_; }
  // Sends raw bytes (no CRLF added).
  bool send_raw(const std::string& bytes) { return socket_.send(bytes); }
  // True when the server has closed the connection (reads EOF within the socket timeout).
  bool closed_by_peer() { return socket_.closed_by_peer(); }

  // Sends a command; returns the reply line, or the bulk payload ("" for null), or "" on error.
  std::string command(const std::string& line) {
    if (!ok() || !socket_.send(line + "\r\n")) {
      ok_ = false;
      return {};
    }
    return read_reply();
  }

 private:
  std::string read_reply() {
    std::string line = socket_.read_line();
    if (!socket_.ok() || line.empty() || line[0] != '$') return line;
    long length = std::stol(line.substr(1));
    if (length < 0) return "";
    return socket_.read_payload(static_cast<size_t>(length));
  }

  bench::BlockingSocket socket_;
  bool ok_ = false;
  std::string greeting_;
};

inline std::string jid_of(const std::string& job_json) {
  auto at = job_json.find("\"jid\":\"");
  if (at == std::string::npos) return {};
  at += 7;
  return job_json.substr(at, job_json.find('"', at) - at);
}

}  // namespace depot::testing
