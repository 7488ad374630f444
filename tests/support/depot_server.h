#pragma once
// A spawned `depot serve` with its jobs face (and the HTTP admin API) on free loopback ports and
// a data directory of its own, which can be restarted (or killed) on the same ports and data.
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/blocking_socket.h"
#include "support/depot_process.h"
#include "support/temp_dir.h"

namespace depot::testing {

class DepotServer {
 public:
  explicit DepotServer(std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)),
        port_(bench::free_loopback_port()),
        http_port_(bench::free_loopback_port()) {
    start();
  }
  ~DepotServer() {
    if (process_) stop();
  }
  DepotServer(const DepotServer&) = delete;
  DepotServer& operator=(const DepotServer&) = delete;

  void start() {
    std::vector<std::string> args{"serve",
                                  "--data-dir",
                                  dir_.path().string(),
                                  "--jobs-listen",
                                  "127.0.0.1:" + std::to_string(port_),
                                  "--http-listen",
                                  "127.0.0.1:" + std::to_string(http_port_),
                                  "--amqp-listen",
                                  "off",
                                  "--kafka-listen",
                                  "off"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    process_ = std::make_unique<Depot>(args);
    ASSERT_TRUE(process_->wait_for_log("ready", std::chrono::seconds(10))) << process_->err();
  }
  // SIGTERM and a clean exit.
  void stop() {
    process_->signal(SIGTERM);
    EXPECT_EQ(process_->wait_exit(std::chrono::seconds(10)), 0) << process_->err();
    log_ += process_->err();
    process_.reset();
  }
  // SIGKILL: whatever was acknowledged must survive it.
  void kill() {
    process_->signal(SIGKILL);
    process_->wait_exit(std::chrono::seconds(10));
    log_ += process_->err();
    process_.reset();
  }

  uint16_t port() const { return port_; }
  uint16_t http_port() const { return http_port_; }
  std::string url(const std::string& password = "") const {
    return "tcp://" + (password.empty() ? "" : ":" + password + "@") +
           "127.0.0.1:" + std::to_string(port_);
  }
  Depot& process() { return *process_; }
  // What depot wrote to stderr (its log) in the runs that ended, and what the current run's
  // waits have read so far.
  std::string log() const { return log_ + (process_ ? process_->err() : std::string()); }

  // An HTTP request to the admin API; returns the status code (0 when there was no answer).
  int http(const std::string& method, const std::string& path) const {
    bench::BlockingSocket socket(http_port_, std::chrono::seconds(5));
    std::string request = method + " " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(http_port_) +
                          "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (!socket.send(request)) return 0;
    std::string status = socket.read_line();  // HTTP/1.1 200 OK
    return status.size() >= 12 ? std::stoi(status.substr(9, 3)) : 0;
  }

 private:
  TempDir dir_;
  std::vector<std::string> extra_args_;
  uint16_t port_;
  uint16_t http_port_;
  std::unique_ptr<Depot> process_;
  std::string log_;
};

}  // namespace depot::testing
