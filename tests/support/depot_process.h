#pragma once
// A `depot` child process for tests that drive the real binary (DEPOT_BINARY), with its stdout
// and stderr captured and a deadline on every wait.
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace depot::testing {

using namespace std::chrono_literals;

// A running `depot` with its stdout and stderr captured.
class Depot {
  using Clock = std::chrono::steady_clock;

 public:
  // `env` is added to the test's environment, from which every DEPOT_* variable is removed first
  // so that the developer's own settings cannot leak into a test.
  explicit Depot(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!std::string_view(*e).starts_with("DEPOT_")) env_strings.emplace_back(*e);
    }
    for (const auto& [name, value] : env)
      env_strings.push_back(name + "=" + value);
    std::vector<std::string> argv_strings{DEPOT_BINARY};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    auto pointers = [](std::vector<std::string>& strings) {
      std::vector<char*> result;
      for (auto& s : strings)
        result.push_back(s.data());
      result.push_back(nullptr);
      return result;
    };
    auto argv = pointers(argv_strings);
    auto envp = pointers(env_strings);

    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }

  ~Depot() {
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_fd_);
    ::close(err_fd_);
  }

  Depot(const Depot&) = delete;
  Depot& operator=(const Depot&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signal_number) const { ::kill(pid_, signal_number); }

  // The exit code (128 + signal if killed by one), or nullopt if still running at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    while (!exit_code_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (Clock::now() >= deadline) {
        return std::nullopt;
      } else {
        drain(5ms);
      }
    }
    while (drain(0ms)) {
    }
    return exit_code_;
  }

  // Waits until stderr contains `text`; false at the deadline or when the process exits first.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    while (err_.find(text) == std::string::npos) {
      if (Clock::now() >= deadline) return false;
      if (!drain(5ms) && !running()) return err_.find(text) != std::string::npos;
    }
    return true;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  bool running() {
    if (exit_code_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }

  // Reads whatever output arrives within the timeout; false if nothing did.
  bool drain(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(timeout.count())) <= 0) return false;
    bool got = false;
    char buffer[4096];
    for (auto& [fd, target] : {std::pair{out_fd_, &out_}, std::pair{err_fd_, &err_}}) {
      for (const pollfd& p : fds) {
        if (p.fd != fd || (p.revents & (POLLIN | POLLHUP)) == 0) continue;
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
          target->append(buffer, static_cast<size_t>(n));
          got = true;
        }
      }
    }
    return got;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> exit_code_;
};

}  // namespace depot::testing
