#include "connection.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace depot {
namespace {

constexpr size_t kMaxLine = 1 << 20;
constexpr size_t kMaxBulk = 64 << 20;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// Waits for `events` on fd; false at the timeout.
bool wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

int connect_to(const ServerAddress& address, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = ::getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw ConnectionError("cannot resolve " + address.host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last_error = errno_text("socket");
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int error = ETIMEDOUT;
      if (wait_for(fd, POLLOUT, timeout)) {
        socklen_t len = sizeof error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      }
      rc = error == 0 ? 0 : -1;
      errno = error;
    }
    if (rc == 0) {
      // Blocking from here on, with the I/O timeout as the socket's: a reply then costs one
      // recv, not a recv that would block, a poll and a second recv.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    last_error = errno_text("connect");
    ::close(fd);
  }
  throw ConnectionError("cannot connect to " + address.host + ":" + port + ": " + last_error);
}

std::string hostname() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

}  // namespace

std::string password_hash(const std::string& password, const std::string& salt, int iterations) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  auto check = [](int ok) {
    if (ok != 1) throw Error("OpenSSL SHA-256 failed");
  };
  check(EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr));
  check(EVP_DigestUpdate(ctx.get(), password.data(), password.size()));
  check(EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()));
  check(EVP_DigestFinal_ex(ctx.get(), digest.data(), &size));
  for (int i = 1; i < iterations; ++i) {
    check(EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr));
    check(EVP_DigestUpdate(ctx.get(), digest.data(), size));
    check(EVP_DigestFinal_ex(ctx.get(), digest.data(), &size));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

Connection::Connection(const ServerAddress& address, const ClientOptions& options)
    : fd_(connect_to(address, options.connect_timeout)), io_timeout_(options.io_timeout) {
  timeval timeout{};
  timeout.tv_sec = static_cast<time_t>(io_timeout_.count() / 1000);
  timeout.tv_usec = static_cast<suseconds_t>(io_timeout_.count() % 1000 * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  try {
    Reply hi = read_reply();
    if (hi.kind != Reply::Kind::simple || !hi.text.starts_with("HI ")) {
      throw ConnectionError("not a Faktory-protocol server (greeting: " + hi.text + ")");
    }
    json greeting = json::parse(hi.text.substr(3), nullptr, /*allow_exceptions=*/false);
    if (!greeting.is_object()) throw ConnectionError("bad greeting: " + hi.text);
    json hello = {{"v", 2}, {"hostname", hostname()}, {"pid", ::getpid()}};
    if (!options.wid.empty()) {
      hello["wid"] = options.wid;
      hello["labels"] = options.labels;
    }
    if (greeting.contains("s")) {
      if (address.password.empty()) {
        throw ServerError("ERR",
                          "the server needs a password: put it in the URL "
                          "(tcp://:password@host:port)");
      }
      int iterations = greeting.value("i", 1);
      hello["pwdhash"] =
          password_hash(address.password, greeting["s"].get<std::string>(), iterations);
    }
    Reply ok = call("HELLO", hello.dump());
    if (ok.kind == Reply::Kind::error) {
      auto space = ok.text.find(' ');
      throw ServerError(ok.text.substr(0, space),
                        space == std::string::npos ? "" : ok.text.substr(space + 1));
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Connection::~Connection() {
  ::close(fd_);
}

void Connection::end() noexcept {
  static constexpr char kEnd[] = "END\r\n";
  (void)::send(fd_, kEnd, sizeof kEnd - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

Reply Connection::call(const std::string& command, const std::string& payload) {
  std::string line = command;
  if (!payload.empty()) {
    line += ' ';
    line += payload;
  }
  line += "\r\n";
  send_all(line);
  return read_reply();
}

void Connection::send_all(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      throw ConnectionError("send timed out: the server reads nothing");
    } else {
      throw ConnectionError(errno_text("send"));
    }
  }
}

void Connection::fill() {
  if (begin_ > 0 && begin_ == buffer_.size()) {
    buffer_.clear();
    begin_ = 0;
  }
  std::array<char, 16384> chunk;
  for (;;) {
    ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
    if (n > 0) {
      buffer_.append(chunk.data(), static_cast<size_t>(n));
      return;
    }
    if (n == 0) throw ConnectionError("the server closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) throw ConnectionError("no reply from the server");
    throw ConnectionError(errno_text("recv"));
  }
}

std::string Connection::read_line() {
  for (;;) {
    auto end = buffer_.find("\r\n", begin_);
    if (end != std::string::npos) {
      std::string line = buffer_.substr(begin_, end - begin_);
      begin_ = end + 2;
      return line;
    }
    if (buffer_.size() - begin_ > kMaxLine) throw ConnectionError("reply line too long");
    fill();
  }
}

std::string Connection::read_exact(size_t n) {
  while (buffer_.size() - begin_ < n)
    fill();
  std::string bytes = buffer_.substr(begin_, n);
  begin_ += n;
  return bytes;
}

Reply Connection::read_reply() {
  std::string line = read_line();
  if (line.empty()) throw ConnectionError("empty reply line");
  switch (line[0]) {
    case '+':
      return {Reply::Kind::simple, line.substr(1)};
    case '-':
      return {Reply::Kind::error, line.substr(1)};
    case '$': {
      long long length = 0;
      try {
        length = std::stoll(line.substr(1));
      } catch (const std::exception&) {
        throw ConnectionError("bad bulk length: " + line);
      }
      if (length < 0) return {Reply::Kind::null, {}};
      if (static_cast<size_t>(length) > kMaxBulk) throw ConnectionError("reply too large");
      std::string payload = read_exact(static_cast<size_t>(length) + 2);
      payload.resize(static_cast<size_t>(length));
      return {Reply::Kind::bulk, std::move(payload)};
    }
    default:
      throw ConnectionError("unexpected reply: " + line);
  }
}

}  // namespace depot
