// `depot` as operators run it: the real binary, spawned with fork/exec, observed through its exit
// code, its output and its data directory. Every wait polls with a deadline.
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <poll.h>
#include <regex>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "support/depot_process.h"
#include "support/temp_dir.h"

extern char** environ;

// gmock's matchers need its library, which this binary does not link.
#define EXPECT_CONTAINS(text, part)                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "missing \"" << (part) << "\" in:\n"                \
      << (text)

namespace {

using depot::testing::Depot;
using depot::testing::TempDir;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// No face may bind a fixed port in tests (parallel runs, a real broker on the machine).
std::vector<std::string> serve_args(const std::filesystem::path& data_dir,
                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args{
      "serve",       "--data-dir",    data_dir.string(), "--jobs-listen",
      "127.0.0.1:0", "--amqp-listen", "127.0.0.1:0",     "--kafka-listen",
      "127.0.0.1:0", "--http-listen", "127.0.0.1:0",     "--shutdown-grace",
      "2s"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The lock file holds the pid once the data directory is locked, which happens after the server
// has taken over SIGTERM: a process that passed this point stops cleanly on a signal.
bool wait_for_lock(const std::filesystem::path& data_dir, pid_t pid,
                   std::chrono::milliseconds timeout = 5s) {
  auto deadline = Clock::now() + timeout;
  auto expected = std::to_string(pid) + "\n";
  while (read_file(data_dir / "depot.lock") != expected) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(ServeTest, HelpListsCommands) {
  Depot depot({"--help"});
  ASSERT_EQ(depot.wait_exit(), 0);
  EXPECT_CONTAINS(depot.out(), "serve");
  EXPECT_CONTAINS(depot.out(), "version");
  EXPECT_CONTAINS(depot.out(), "bench");
}

TEST(ServeTest, ServeHelpDocumentsEverySettingWithEnvAndDefault) {
  Depot depot({"serve", "--help"});
  ASSERT_EQ(depot.wait_exit(), 0);
  for (const char* flag : {"--config", "--data-dir", "--jobs-listen", "--amqp-listen",
                           "--kafka-listen", "--http-listen", "--fsync", "--log-level",
                           "--shutdown-grace", "--idle-timeout", "--min-free-space"}) {
    EXPECT_CONTAINS(depot.out(), flag);
  }
  EXPECT_CONTAINS(depot.out(), "Env: DEPOT_DATA_DIR");
  EXPECT_CONTAINS(depot.out(), "Default: ./depot-data");
  EXPECT_CONTAINS(depot.out(), "Default: 127.0.0.1:7419");
  EXPECT_CONTAINS(depot.out(), "Default: 10s");
}

TEST(ServeTest, VersionPrintsSemanticVersion) {
  Depot depot({"version"});
  ASSERT_EQ(depot.wait_exit(), 0);
  EXPECT_TRUE(std::regex_match(depot.out(), std::regex("depot [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << depot.out();
}

TEST(ServeTest, UnknownCommandIsAUsageError) {
  Depot depot({"frobnicate"});
  EXPECT_EQ(depot.wait_exit(), 2);
}

TEST(ServeTest, SecondServerOnSameDirectoryIsRefusedAndSigtermStopsTheFirst) {
  TempDir tmp;
  auto data_dir = tmp.path() / "data";
  Depot first(serve_args(data_dir));
  ASSERT_TRUE(first.wait_for_log("ready")) << first.err();
  EXPECT_CONTAINS(first.err(), data_dir.string());
  EXPECT_EQ(read_file(data_dir / "depot.lock"), std::to_string(first.pid()) + "\n");

  Depot second(serve_args(data_dir));
  ASSERT_EQ(second.wait_exit(), 1) << second.err();
  EXPECT_CONTAINS(second.err(), data_dir.string());
  EXPECT_CONTAINS(second.err(), "pid " + std::to_string(first.pid()));

  auto begin = Clock::now();
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait_exit(3s), 0) << first.err();
  EXPECT_LT(Clock::now() - begin, 2s);  // within --shutdown-grace
  EXPECT_CONTAINS(first.err(), "SIGTERM");

  // The lock went with the process; nothing was removed.
  EXPECT_TRUE(std::filesystem::exists(data_dir / "depot.lock"));
  Depot third(serve_args(data_dir));
  ASSERT_TRUE(third.wait_for_log("ready")) << third.err();
  third.signal(SIGINT);
  EXPECT_EQ(third.wait_exit(3s), 0) << third.err();
}

TEST(ServeTest, DataDirectoryUnderARegularFileFailsClearly) {
  // Tests run as root, where permissions do not stop writes; a file in the path does.
  TempDir tmp;
  auto file = tmp.write("not-a-dir", "x");
  Depot depot(serve_args(file / "data"));
  ASSERT_EQ(depot.wait_exit(), 1) << depot.err();
  EXPECT_CONTAINS(depot.err(), (file / "data").string());
  EXPECT_CONTAINS(depot.err(), "Not a directory");
  EXPECT_CONTAINS(depot.err(), "--data-dir");
}

TEST(ServeTest, TooLittleFreeSpaceFailsClearly) {
  TempDir tmp;
  Depot depot(serve_args(tmp.path(), {"--min-free-space", "1000000TiB"}));
  ASSERT_EQ(depot.wait_exit(), 1) << depot.err();
  EXPECT_CONTAINS(depot.err(), "--min-free-space");
}

TEST(ServeTest, InvalidSettingsExitWithCodeTwoAndSayWhy) {
  TempDir tmp;
  Depot flag(serve_args(tmp.path(), {"--jobs-listen", "7419"}));
  ASSERT_EQ(flag.wait_exit(), 2);
  EXPECT_CONTAINS(flag.err(), "invalid jobs_listen \"7419\" (set by --jobs-listen)");
  EXPECT_CONTAINS(flag.err(), "HOST:PORT");

  Depot env(serve_args(tmp.path()), {{"DEPOT_FSYNC", "sometimes"}});
  ASSERT_EQ(env.wait_exit(), 2);
  EXPECT_CONTAINS(env.err(), "environment variable DEPOT_FSYNC");
  EXPECT_CONTAINS(env.err(), "always, never or interval:MS");

  Depot unknown({"serve", "--no-such-flag"});
  EXPECT_EQ(unknown.wait_exit(), 2);
}

// [[cron]] entries reach the job store, and a bad one stops depot before it serves. (Watching one
// fire would take up to a minute; the job store's unit tests drive the clock instead.)
TEST(ServeTest, CronEntriesComeFromTheConfigFile) {
  TempDir tmp;
  auto good = tmp.write("cron.toml",
                        "[[cron]]\nschedule = \"*/5 * * * *\"\n"
                        "[cron.job]\ntype = \"FiveJob\"\nqueue = \"critical\"\n");
  Depot depot(serve_args(tmp.path() / "data", {"--config", good.string()}));
  ASSERT_TRUE(depot.wait_for_log("ready")) << depot.err();
  EXPECT_CONTAINS(depot.err(), "periodic job FiveJob on queue critical at \"*/5 * * * *\" (UTC)");
  depot.signal(SIGTERM);
  ASSERT_EQ(depot.wait_exit(3s), 0) << depot.err();

  auto bad =
      tmp.write("bad.toml", "[[cron]]\nschedule = \"61 * * * *\"\n[cron.job]\ntype = \"X\"\n");
  Depot refused(serve_args(tmp.path() / "data", {"--config", bad.string()}));
  ASSERT_EQ(refused.wait_exit(), 2) << refused.err();
  EXPECT_CONTAINS(refused.err(), "invalid [[cron]] entry 1 at " + bad.string() +
                                     ":1: cron schedule \"61 * * * *\": minute 61 is out of "
                                     "range 0-59");
}

TEST(ServeTest, EnvironmentVariablesAreHonouredAndFlagsBeatThem) {
  TempDir tmp;
  auto env_dir = tmp.path() / "from-env";
  Depot by_env({"serve", "--jobs-listen", "127.0.0.1:0", "--amqp-listen", "127.0.0.1:0",
                "--kafka-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"},
               {{"DEPOT_DATA_DIR", env_dir.string()}, {"DEPOT_LOG_LEVEL", "warn"}});
  ASSERT_TRUE(wait_for_lock(env_dir, by_env.pid())) << by_env.err();
  by_env.signal(SIGTERM);
  ASSERT_EQ(by_env.wait_exit(3s), 0) << by_env.err();
  EXPECT_EQ(by_env.err(), "") << "DEPOT_LOG_LEVEL=warn was ignored";

  auto flag_dir = tmp.path() / "from-flag";
  Depot by_flag(serve_args(flag_dir), {{"DEPOT_DATA_DIR", env_dir.string()}});
  ASSERT_TRUE(by_flag.wait_for_log("ready")) << by_flag.err();
  EXPECT_CONTAINS(by_flag.err(), flag_dir.string());
  by_flag.signal(SIGTERM);
  EXPECT_EQ(by_flag.wait_exit(3s), 0);
}

TEST(ServeTest, ConfigFileIsHonouredBelowEnvironment) {
  TempDir tmp;
  auto file_dir = tmp.path() / "from-file";
  auto config = tmp.write("depot.toml", "data_dir = \"" + file_dir.string() + "\"\n" +
                                            "log_level = \"debug\"\n"
                                            "jobs_listen = \"127.0.0.1:0\"\n"
                                            "amqp_listen = \"off\"\n"
                                            "kafka_listen = \"off\"\n"
                                            "http_listen = \"off\"\n"
                                            "shutdown_grace_ms = 1500\n");
  Depot by_file({"serve", "--config", config.string()});
  ASSERT_TRUE(by_file.wait_for_log("ready")) << by_file.err();
  EXPECT_CONTAINS(by_file.err(), file_dir.string());
  EXPECT_CONTAINS(by_file.err(), "config " + config.string());
  EXPECT_CONTAINS(by_file.err(), "kafka: off");
  by_file.signal(SIGTERM);
  ASSERT_EQ(by_file.wait_exit(3s), 0);
  EXPECT_CONTAINS(by_file.err(), "have 1500ms to finish");

  // DEPOT_CONFIG names the file; DEPOT_LOG_LEVEL beats the file's "debug".
  Depot layered({"serve"}, {{"DEPOT_CONFIG", config.string()}, {"DEPOT_LOG_LEVEL", "error"}});
  ASSERT_TRUE(wait_for_lock(file_dir, layered.pid())) << layered.err();
  layered.signal(SIGTERM);
  ASSERT_EQ(layered.wait_exit(3s), 0) << layered.err();
  EXPECT_EQ(layered.err(), "");
}

}  // namespace
