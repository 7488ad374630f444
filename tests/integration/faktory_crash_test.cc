// SIGKILL depot while producers PUSH and a worker FETCHes and ACKs, restart it on the same data
// directory, and check that every job whose PUSH was acknowledged is either ACKed or still there.
#include <arpa/inet.h>
#include <atomic>
#include <mutex>
#include <netinet/in.h>
#include <random>
#include <set>
#include <sys/socket.h>
#include <thread>

#include <gtest/gtest.h>

#include "support/depot_process.h"
#include "support/temp_dir.h"

namespace {

using depot::testing::Depot;
using depot::testing::TempDir;
using namespace std::chrono_literals;

uint16_t free_port() {
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
  explicit FaktoryClient(uint16_t port, const std::string& wid = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (ok_ && read_reply().rfind("+HI", 0) != 0) ok_ = false;
    std::string hello = wid.empty() ? R"({"v":2,"hostname":"t"})"
                                    : R"({"v":2,"hostname":"t","pid":1,"wid":")" + wid + "\"}";
    if (ok_ && command("HELLO " + hello) != "+OK") ok_ = false;
  }
  ~FaktoryClient() { ::close(fd_); }
  FaktoryClient(const FaktoryClient&) = delete;
  FaktoryClient& operator=(const FaktoryClient&) = delete;

  bool ok() const { return ok_; }

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
  std::string read_line() {
    for (;;) {
      auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        ok_ = false;
        return {};
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::string read_reply() {
    std::string line = read_line();
    if (!ok_ || line.empty() || line[0] != '$') return line;
    long length = std::stol(line.substr(1));
    if (length < 0) return "";
    while (ok_ && buffer_.size() < static_cast<size_t>(length) + 2) {
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        ok_ = false;
        return {};
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    std::string payload = buffer_.substr(0, static_cast<size_t>(length));
    buffer_.erase(0, static_cast<size_t>(length) + 2);
    return payload;
  }

  int fd_ = -1;
  bool ok_ = false;
  std::string buffer_;
};

std::string jid_of(const std::string& job_json) {
  auto at = job_json.find("\"jid\":\"");
  if (at == std::string::npos) return {};
  at += 7;
  return job_json.substr(at, job_json.find('"', at) - at);
}

TEST(FaktoryCrash, EveryAcknowledgedPushIsAckedOrStillThereAfterSigkill) {
  TempDir dir;
  std::mt19937 rng(2026);
  std::set<std::string> pushed, acked, fetched_unacked;
  for (int round = 0; round < 3; ++round) {
    const uint16_t port = free_port();
    const std::vector<std::string> args = {"serve",
                                           "--data-dir",
                                           dir.path().string(),
                                           "--jobs-listen",
                                           "127.0.0.1:" + std::to_string(port),
                                           "--amqp-listen",
                                           "off",
                                           "--kafka-listen",
                                           "off",
                                           "--http-listen",
                                           "off"};
    {
      Depot depot(args);
      ASSERT_TRUE(depot.wait_for_log("ready", 10s)) << depot.err();
      std::mutex mutex;
      std::atomic<bool> stop{false};
      std::vector<std::thread> threads;
      for (int p = 0; p < 4; ++p) {
        threads.emplace_back([&, p] {
          FaktoryClient client(port);
          for (int i = 0; client.ok() && !stop; ++i) {
            std::string jid =
                "r" + std::to_string(round) + "-p" + std::to_string(p) + "-" + std::to_string(i);
            std::string reply =
                client.command(R"(PUSH {"jid":")" + jid + R"(","jobtype":"Crash","args":[)" +
                               std::to_string(i) + "]}");
            if (reply == "+OK") {
              std::lock_guard lock(mutex);
              pushed.insert(jid);
            }
          }
        });
      }
      threads.emplace_back([&] {
        FaktoryClient worker(port, "crash-worker");
        while (worker.ok() && !stop) {
          std::string job = worker.command("FETCH default");
          std::string jid = jid_of(job);
          if (jid.empty()) continue;
          {
            std::lock_guard lock(mutex);
            fetched_unacked.insert(jid);
          }
          if (worker.command(R"(ACK {"jid":")" + jid + "\"}") == "+OK") {
            std::lock_guard lock(mutex);
            fetched_unacked.erase(jid);
            acked.insert(jid);
          }
        }
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 500));
      depot.signal(SIGKILL);
      ASSERT_TRUE(depot.wait_exit(5s));
      stop = true;
      for (auto& t : threads)
        t.join();
    }

    // Restart and take stock: drain the queue; what was fetched but not ACKed before the crash may
    // still be reserved (it comes back when its reservation expires).
    Depot depot(args);
    ASSERT_TRUE(depot.wait_for_log("ready", 10s)) << depot.err();
    FaktoryClient client(port, "checker");
    ASSERT_TRUE(client.ok());
    std::set<std::string> present;
    for (;;) {
      std::string job = client.command("FETCH default");
      std::string jid = jid_of(job);
      if (jid.empty()) break;
      present.insert(jid);
      ASSERT_EQ(client.command(R"(ACK {"jid":")" + jid + "\"}"), "+OK");
      acked.insert(jid);
    }
    std::string info = client.command("INFO");
    auto at = info.find("\"working\":");
    ASSERT_NE(at, std::string::npos) << info;
    const long working = std::stol(info.substr(at + 10));
    size_t reserved = 0;
    for (const auto& jid : pushed) {
      if (acked.count(jid)) continue;
      ASSERT_TRUE(fetched_unacked.count(jid))
          << "round " << round << ": job " << jid << " was acknowledged to its producer and lost";
      ++reserved;
    }
    // Each such job is still reserved, or its ACK landed and only the reply was cut off by the
    // kill: at most one per round, as the worker has one request in flight.
    EXPECT_LE(reserved, static_cast<size_t>(working) + static_cast<size_t>(round) + 1) << info;
    depot.signal(SIGTERM);
    ASSERT_EQ(depot.wait_exit(10s), 0) << depot.err();
  }
  EXPECT_GT(pushed.size(), 100u) << "too few pushes to test anything";
}

}  // namespace
