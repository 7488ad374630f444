// A child process appends with fsync=always from several threads and reports each append once it
// has completed; the parent SIGKILLs it at a random moment, reopens the log and checks that every
// reported record is there, intact. Many rounds (DEPOT_CRASH_ROUNDS, default 25).
#include <csignal>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "test_support.h"

namespace depot::storage {
namespace {
using namespace testing;

[[noreturn]] void run_appender_child(const std::filesystem::path& dir, int report_fd,
                                     unsigned seed) {
  SyncService sync(FsyncPolicy{});
  auto opened = Log::open({dir, LogConfig{.segment_bytes = 256 * 1024}, &sync, nullptr, {}});
  if (!opened) _exit(3);
  std::shared_ptr<Log> log = opened.value();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed * 31 + static_cast<unsigned>(t));
      for (int i = 0;; ++i) {
        std::string value = "t" + std::to_string(t) + "-" + std::to_string(i) + "-" +
                            std::string(rng() % 3000, static_cast<char>('a' + t));
        RecordBatchBuilder builder;
        int records = 1 + static_cast<int>(rng() % 3);
        for (int r = 0; r < records; ++r)
          builder.add(std::nullopt, as_bytes(value), i);
        Bytes batch = builder.build();
        auto appended = log->append_and_wait(batch);
        if (!appended) _exit(4);
        // One line per acknowledged record: "<offset> <value length> <first 12 chars>".
        for (int64_t o = appended.value().base_offset; o <= appended.value().last_offset; ++o) {
          std::string line = std::to_string(o) + " " + std::to_string(value.size()) + " " +
                             value.substr(0, 12) + "\n";
          if (::write(report_fd, line.data(), line.size()) < 0) _exit(5);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  _exit(0);
}

TEST(CrashRecovery, EveryAcknowledgedAppendSurvivesSigkill) {
  const char* env = std::getenv("DEPOT_CRASH_ROUNDS");
  const int rounds = env ? std::atoi(env) : 25;
  TempDir dir;
  auto path = dir.path() / "log";
  std::mt19937 rng(12345);
  std::map<int64_t, std::string> acknowledged;  // offset -> "<length> <prefix>"
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      run_appender_child(path, fds[1], static_cast<unsigned>(round));
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 120));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
    // Every complete line the child wrote before it died is an acknowledged append.
    std::string reports;
    char buf[65536];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
      reports.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    std::istringstream lines(reports.substr(0, reports.rfind('\n') + 1));
    int64_t offset;
    size_t length;
    std::string prefix;
    while (lines >> offset >> length >> prefix) {
      acknowledged[offset] = std::to_string(length) + " " + prefix;
    }

    SyncService sync(FsyncPolicy{});
    auto log = Log::open({path, LogConfig{.segment_bytes = 256 * 1024}, &sync, nullptr, {}});
    ASSERT_TRUE(log) << log.error().message();
    std::map<int64_t, std::string> present;
    for (const auto& row : read_all(*log.value())) {
      present[row.offset] = std::to_string(row.value.size()) + " " + row.value.substr(0, 12);
    }
    for (const auto& [o, summary] : acknowledged) {
      auto it = present.find(o);
      ASSERT_NE(it, present.end()) << "round " << round << ": acknowledged offset " << o << " lost";
      ASSERT_EQ(it->second, summary) << "round " << round << ": offset " << o << " changed";
    }
    // Offsets are dense: recovery never leaves a hole.
    if (!present.empty()) {
      EXPECT_EQ(present.rbegin()->first + 1, static_cast<int64_t>(present.size()));
    }
    log.value()->close().value();
  }
  EXPECT_GT(acknowledged.size(), 100u) << "the child appended too little to test anything";
}

}  // namespace
}  // namespace depot::storage
