#pragma once
// One blocking TCP connection to a Faktory-protocol server: the handshake, then commands written
// as lines and RESP replies read back. Not thread-safe; Client serializes access.
#include <chrono>
#include <optional>
#include <string>

#include "depot/client.h"

namespace depot {

// A reply: a simple string (+OK), an error (-ERR ...), or a bulk string ($n, or null).
struct Reply {
  enum class Kind { simple, error, bulk, null } kind = Kind::null;
  std::string text;
};

class Connection {
 public:
  // Connects and completes HI/HELLO; throws ConnectionError, or ServerError when the server
  // refuses the HELLO (a wrong password).
  Connection(const ServerAddress& address, const ClientOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends "command payload\r\n" and reads the reply; throws ConnectionError on I/O failure.
  Reply call(const std::string& command, const std::string& payload);
  // Says END without waiting for anything.
  void end() noexcept;

 private:
  void send_all(const std::string& bytes);
  std::string read_line();
  std::string read_exact(size_t n);
  void fill();
  Reply read_reply();

  int fd_ = -1;
  std::chrono::milliseconds io_timeout_;
  std::string buffer_;
  size_t begin_ = 0;
};

// Faktory's password hash: SHA-256 of password + salt, rehashed to `iterations` rounds, as hex.
std::string password_hash(const std::string& password, const std::string& salt, int iterations);

}  // namespace depot
