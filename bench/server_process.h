#pragma once
// A server (depot or a peer) started for one measurement, with its CPU time and RSS from /proc.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "bench/blocking_socket.h"

namespace depot::bench {

// A server process for one measurement; its output goes to a log file next to its data. The
// destructor stops it with SIGTERM (SIGKILL after 60 s).
class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> argv, const std::filesystem::path& log)
      : name_(argv.at(0)), log_(log) {
    std::vector<char*> pointers;
    pointers.reserve(argv.size() + 1);
    for (std::string& arg : argv)
      pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    int out = ::open(log.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("cannot create " + log.string());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execvp(pointers[0], pointers.data());
      std::fprintf(stderr, "cannot run %s: %s\n", pointers[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(out);
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~ServerProcess() {
    using namespace std::chrono_literals;
    if (exited_) return;
    ::kill(pid_, SIGTERM);
    for (auto deadline = std::chrono::steady_clock::now() + 60s;
         std::chrono::steady_clock::now() < deadline;) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // CPU time (user + system, all threads) the server has used so far.
  double cpu_seconds() const {
    std::FILE* file = std::fopen(fmt::format("/proc/{}/stat", pid_).c_str(), "r");
    if (file == nullptr) return 0;
    char line[1024] = {};
    size_t n = std::fread(line, 1, sizeof line - 1, file);
    std::fclose(file);
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const char* at = std::strrchr(line, ')');
    if (n == 0 || at == nullptr) return 0;
    unsigned long utime = 0;
    unsigned long stime = 0;
    if (std::sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                    &stime) != 2) {
      return 0;
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

  // Resident set size, from /proc/PID/status.
  size_t rss_bytes() const {
    std::FILE* file = std::fopen(fmt::format("/proc/{}/status", pid_).c_str(), "r");
    if (file == nullptr) return 0;
    char line[256];
    size_t kib = 0;
    while (std::fgets(line, sizeof line, file) != nullptr) {
      if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
    }
    std::fclose(file);
    return kib * 1024;
  }

  // Returns once `port` accepts connections; throws with the server's log when it exits or
  // does not listen within `timeout`.
  void wait_listening(uint16_t port,
                      std::chrono::steady_clock::duration timeout = std::chrono::seconds(10)) {
    using namespace std::chrono_literals;
    for (auto deadline = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < deadline;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        throw std::runtime_error(fmt::format("{} exited before listening; its output ({}):\n{}",
                                             name_, log_.string(), log_tail()));
      }
      if (BlockingSocket(port, 1s).ok()) return;
      std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error(fmt::format("{} did not listen on port {} in time; its output:\n{}",
                                         name_, port, log_tail()));
  }

 private:
  std::string log_tail() const {
    std::FILE* file = std::fopen(log_.c_str(), "r");
    if (file == nullptr) return {};
    std::string text(4096, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), file));
    std::fclose(file);
    return text;
  }

  std::string name_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

}  // namespace depot::bench
