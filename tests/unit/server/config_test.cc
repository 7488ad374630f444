#include "server/config.h"

#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "protocol/faktory/job_json.h"
#include "unit/server/test_support.h"

namespace depot::server {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// Sources with a fake environment, so tests neither read nor change the process's.
struct Sources {
  std::map<std::string, std::string> env;
  ConfigSources sources;

  Sources() {
    sources.env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      return it == env.end() ? std::nullopt : std::optional(it->second);
    };
  }
  StartupResult<ServerConfig> load() const { return load_config(sources); }
  // Loads with `file` as --config.
  StartupResult<ServerConfig> load_file(const std::filesystem::path& file) {
    sources.flags["config"] = file.string();
    return load();
  }
};

TEST(ServerConfigTest, DefaultsWhenNothingIsSet) {
  Sources s;
  auto config = s.load();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config.value().data_dir, "./depot-data");
  EXPECT_EQ(config.value().jobs_listen, (Endpoint{"127.0.0.1", 7419}));
  EXPECT_EQ(config.value().amqp_listen, (Endpoint{"127.0.0.1", 5672}));
  EXPECT_EQ(config.value().kafka_listen, (Endpoint{"127.0.0.1", 9092}));
  EXPECT_EQ(config.value().http_listen, (Endpoint{"127.0.0.1", 7420}));
  EXPECT_EQ(config.value().fsync.mode, storage::FsyncMode::always);
  EXPECT_EQ(config.value().log_level, spdlog::level::info);
  EXPECT_EQ(config.value().shutdown_grace, std::chrono::seconds(10));
  EXPECT_EQ(config.value().idle_timeout, std::chrono::minutes(5));
  EXPECT_EQ(config.value().min_free_space, 64u << 20);
  EXPECT_FALSE(config.value().config_file);
}

TEST(ServerConfigTest, AmqpUsersAndVirtualHosts) {
  Sources s;
  auto defaults = s.load();
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults.value().amqp_users, (std::map<std::string, std::string>{{"guest", "guest"}}));
  EXPECT_EQ(defaults.value().amqp_vhosts, std::vector<std::string>{"/"});

  s.sources.flags["amqp_users"] = "app:s3:cret,ops:pw";
  s.env["DEPOT_AMQP_VHOSTS"] = "staging,prod,staging";
  auto config = s.load();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config.value().amqp_users,
            (std::map<std::string, std::string>{{"app", "s3:cret"}, {"ops", "pw"}}));
  EXPECT_EQ(config.value().amqp_vhosts, (std::vector<std::string>{"/", "staging", "prod"}));

  s.sources.flags["amqp_users"] = "nopassword";
  auto bad = s.load();
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("'nopassword' is not NAME:PASSWORD"));
  s.sources.flags["amqp_users"] = "a:b";
  s.env["DEPOT_AMQP_VHOSTS"] = "x,,y";
  bad = s.load();
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("a virtual host name is empty"));
}

TEST(ServerConfigTest, FlagBeatsEnvBeatsFileBeatsDefault) {
  TempDir dir;
  auto file = dir.write("depot.toml",
                        "data_dir = \"/from/file\"\nlog_level = \"debug\"\n"
                        "shutdown_grace_ms = 2500\n");
  Sources s;
  s.sources.flags["config"] = file.string();
  s.sources.flags["data_dir"] = "/from/flag";
  s.env["DEPOT_DATA_DIR"] = "/from/env";
  s.env["DEPOT_LOG_LEVEL"] = "warn";

  auto config = s.load();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config.value().data_dir, "/from/flag");
  EXPECT_EQ(config.value().log_level, spdlog::level::warn);                   // env over file
  EXPECT_EQ(config.value().shutdown_grace, std::chrono::milliseconds(2500));  // file over default
  EXPECT_EQ(config.value().config_file, file);

  s.sources.flags.erase("data_dir");
  EXPECT_EQ(s.load().value().data_dir, "/from/env");
  s.env.erase("DEPOT_DATA_DIR");
  EXPECT_EQ(s.load().value().data_dir, "/from/file");
  s.sources.flags.erase("config");
  EXPECT_EQ(s.load().value().data_dir, "./depot-data");
}

TEST(ServerConfigTest, EmptyEnvironmentVariableCountsAsUnset) {
  Sources s;
  s.env["DEPOT_JOBS_LISTEN"] = "";
  auto config = s.load();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config.value().jobs_listen, (Endpoint{"127.0.0.1", 7419}));
}

TEST(ServerConfigTest, ConfigFileFromEnvironmentAndFlagOverridesIt) {
  TempDir dir;
  auto env_file = dir.write("env.toml", "fsync = \"never\"\n");
  auto flag_file = dir.write("flag.toml", "fsync = \"interval:250\"\n");
  Sources s;
  s.env["DEPOT_CONFIG"] = env_file.string();
  EXPECT_EQ(s.load().value().fsync.mode, storage::FsyncMode::never);

  s.sources.flags["config"] = flag_file.string();
  auto config = s.load();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config.value().fsync.mode, storage::FsyncMode::interval);
  EXPECT_EQ(config.value().fsync.interval, std::chrono::milliseconds(250));
}

TEST(ServerConfigTest, EveryFileKeyAndType) {
  TempDir dir;
  auto file = dir.write("all.toml", R"(
data_dir = "/srv/depot"
jobs_listen = "0.0.0.0:17419"
amqp_listen = "[::1]:15672"
kafka_listen = "off"
http_listen = "localhost:0"
fsync = "never"
log_level = "trace"
shutdown_grace_ms = 0
idle_timeout_ms = 1500
min_free_space = "1GiB"
)");
  Sources s;
  auto config = s.load_file(file);
  ASSERT_TRUE(config) << config.error().message;
  const ServerConfig& c = config.value();
  EXPECT_EQ(c.data_dir, "/srv/depot");
  EXPECT_EQ(c.jobs_listen, (Endpoint{"0.0.0.0", 17419}));
  EXPECT_EQ(c.amqp_listen, (Endpoint{"::1", 15672}));
  EXPECT_FALSE(c.kafka_listen);
  EXPECT_EQ(c.http_listen, (Endpoint{"localhost", 0}));
  EXPECT_EQ(c.fsync.mode, storage::FsyncMode::never);
  EXPECT_EQ(c.log_level, spdlog::level::trace);
  EXPECT_EQ(c.shutdown_grace, std::chrono::milliseconds(0));
  EXPECT_EQ(c.idle_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.min_free_space, 1ull << 30);

  auto faces = c.face_addresses();
  ASSERT_EQ(faces.size(), 4u);
  EXPECT_EQ(faces[0].name, "jobs");
  EXPECT_EQ(faces[2].name, "kafka");
  EXPECT_FALSE(faces[2].listen);
}

TEST(ServerConfigTest, SizeInFileMayBeAnInteger) {
  TempDir dir;
  auto file = dir.write("size.toml", "min_free_space = 4096\n");
  Sources s;
  s.env["DEPOT_CONFIG"] = file.string();
  EXPECT_EQ(s.load().value().min_free_space, 4096u);
}

// An invalid value fails with invalid_setting (exit code 2) and a message that names the setting,
// its value, where it came from and what is accepted.
void expect_invalid(const StartupResult<ServerConfig>& result,
                    std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, errc::invalid_setting);
  EXPECT_EQ(exit_code_for(result.error()), 2);
  for (std::string_view part : parts)
    EXPECT_THAT(result.error().message, HasSubstr(part));
}

TEST(ServerConfigTest, InvalidFlagNamesSettingFlagAndAcceptedValues) {
  Sources s;
  s.sources.flags["jobs_listen"] = "7419";
  expect_invalid(s.load(), {"jobs_listen", "\"7419\"", "--jobs-listen", "HOST:PORT", "[::1]"});
}

TEST(ServerConfigTest, InvalidEnvironmentVariableNamesIt) {
  Sources s;
  s.env["DEPOT_FSYNC"] = "sometimes";
  expect_invalid(s.load(), {"fsync", "sometimes", "environment variable DEPOT_FSYNC",
                            "always, never or interval:MS"});
  s.env.erase("DEPOT_FSYNC");
  s.env["DEPOT_SHUTDOWN_GRACE"] = "10";
  expect_invalid(s.load(), {"shutdown_grace", "DEPOT_SHUTDOWN_GRACE", "unit"});
  s.env["DEPOT_SHUTDOWN_GRACE"] = "10s";
  s.env["DEPOT_LOG_LEVEL"] = "loud";
  expect_invalid(s.load(), {"log_level", "trace, debug, info"});
}

TEST(ServerConfigTest, EmptyDataDirFlagIsInvalid) {
  Sources s;
  s.sources.flags["data_dir"] = "";
  expect_invalid(s.load(), {"data_dir", "--data-dir", "empty"});
}

TEST(ServerConfigTest, InvalidFileValueNamesFileAndLine) {
  TempDir dir;
  auto file = dir.write("bad.toml", "data_dir = \"/x\"\nkafka_listen = \"[::1:9092\"\n");
  Sources s;
  s.sources.flags["config"] = file.string();
  expect_invalid(s.load(), {"kafka_listen", file.string() + ":2", "not closed"});
}

TEST(ServerConfigTest, FileRejectsUnknownKeysWrongTypesAndBadSyntax) {
  TempDir dir;
  Sources s;
  s.sources.flags["config"] = dir.write("typo.toml", "data_dri = \"/x\"\n").string();
  expect_invalid(s.load(), {"unknown setting data_dri", "known settings: data_dir"});

  s.sources.flags["config"] = dir.write("type.toml", "shutdown_grace_ms = \"10s\"\n").string();
  expect_invalid(s.load(), {"shutdown_grace_ms", "whole number of milliseconds"});

  s.sources.flags["config"] = dir.write("neg.toml", "idle_timeout_ms = -1\n").string();
  expect_invalid(s.load(), {"idle_timeout_ms"});

  s.sources.flags["config"] = dir.write("port.toml", "jobs_listen = 7419\n").string();
  expect_invalid(s.load(), {"jobs_listen", "expected a string"});

  s.sources.flags["config"] = dir.write("syntax.toml", "data_dir = \n").string();
  expect_invalid(s.load(), {"not valid TOML", "line 1"});

  s.sources.flags["config"] = (dir.path() / "missing.toml").string();
  expect_invalid(s.load(), {"cannot read config file", "missing.toml", "--config", "No such file"});
}

TEST(ServerConfigTest, CronEntriesInFaktoryEnterpriseFormat) {
  TempDir dir;
  auto file = dir.write("cron.toml", R"(data_dir = "/srv/depot"

[[cron]]
  schedule = "*/5 * * * *"
  [cron.job]
    type = "FiveJob"
    queue = "critical"
    args = [1, "two", 2.5, true, [3], { four = 4 }, 1979-05-27T07:32:00Z]
    retry = 3
    reserve_for = 600
    backtrace = 5
    [cron.job.custom]
      foo = "bar"
      quote = "say \"hi\"\n"
      unique_for = 300
      [cron.job.custom.nested]
        list = [1, 2]

[[cron]]
  schedule = "@daily"
  [cron.job]
    type = "DailyJob"
)");
  auto config = Sources().load_file(file);
  ASSERT_TRUE(config) << config.error().message;
  const ServerConfig& c = config.value();
  EXPECT_EQ(c.data_dir, "/srv/depot");  // settings and [[cron]] entries side by side
  ASSERT_EQ(c.periodic_jobs.size(), 2u);
  EXPECT_EQ(c.periodic_jobs[0].schedule, "*/5 * * * *");
  EXPECT_EQ(c.periodic_jobs[0].job,
            R"({"args":[1,"two",2.5,true,[3],{"four":4},"1979-05-27T07:32:00Z"],"backtrace":5,)"
            R"("custom":{"foo":"bar","nested":{"list":[1,2]},"quote":"say \"hi\"\n",)"
            R"("unique_for":300},"queue":"critical","reserve_for":600,"retry":3,)"
            R"("jobtype":"FiveJob"})");
  EXPECT_EQ(c.periodic_jobs[1], (PeriodicJob{"@daily", R"({"jobtype":"DailyJob","args":[]})"}));

  // The Faktory codec reads it as it would a pushed job (serve hands it to the job store).
  auto job = faktory::parse_job_template(c.periodic_jobs[0].job);
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job.value().jobtype, "FiveJob");
  EXPECT_EQ(job.value().queue, "critical");
  EXPECT_EQ(job.value().reserve_for, 600);
  EXPECT_EQ(job.value().retry, 3);
  EXPECT_EQ(job.value().backtrace, 5);
  EXPECT_EQ(job.value().unique_for, 300);
  auto daily = faktory::parse_job_template(c.periodic_jobs[1].job);
  ASSERT_TRUE(daily) << daily.error().message;
  EXPECT_EQ(daily.value().queue, "default");
  EXPECT_EQ(daily.value().args, "[]");
}

TEST(ServerConfigTest, BadCronEntryNamesFileEntryAndProblem) {
  TempDir dir;
  Sources s;
  // A good first entry, then the one under test.
  auto load_second = [&](std::string_view entry) {
    return s.load_file(dir.write("cron.toml", std::string("[[cron]]\nschedule = \"@hourly\"\n"
                                                          "[cron.job]\ntype = \"Hourly\"\n\n") +
                                                  std::string(entry)));
  };
  const std::string at = (dir.path() / "cron.toml").string() + ":6";
  expect_invalid(load_second("[[cron]]\nschedule = \"61 * * * *\"\n[cron.job]\ntype = \"X\"\n"),
                 {"invalid [[cron]] entry 2 at " + at +
                  ": cron schedule \"61 * * * *\": minute 61 is out of range 0-59"});
  expect_invalid(load_second("[[cron]]\nschedule = \"0 0 30 2 *\"\n[cron.job]\ntype = \"X\"\n"),
                 {"entry 2", "never matches"});
  expect_invalid(load_second("[[cron]]\nschedule = \"* * * * *\"\n[cron.job]\nqueue = \"q\"\n"),
                 {"entry 2 at " + at, "job.type is missing"});
  expect_invalid(load_second("[[cron]]\nschedule = \"* * * * *\"\n"),
                 {"entry 2", "the [cron.job] table is missing"});
  expect_invalid(load_second("[[cron]]\n[cron.job]\ntype = \"X\"\n"),
                 {"entry 2", "schedule is missing or not a string"});
  expect_invalid(load_second("[[cron]]\nschedule = 5\n[cron.job]\ntype = \"X\"\n"),
                 {"entry 2", "schedule is missing or not a string"});
  expect_invalid(
      load_second(
          "[[cron]]\nschedule = \"@daily\"\ntimezone = \"UTC\"\n[cron.job]\ntype = \"X\"\n"),
      {"entry 2", "unknown key timezone; known keys: schedule, job"});
  expect_invalid(load_second("[[cron]]\nschedule = \"@daily\"\n[cron.job]\njobtype = \"X\"\n"),
                 {"entry 2", "unknown key job.jobtype; known keys: type, queue, args"});
  expect_invalid(load_second("[[cron]]\nschedule = \"@hourly\"\n[cron.job]\ntype = \"Hourly\"\n"),
                 {"entry 2", "it repeats entry 1"});
  for (auto [field, problem] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {"type = \"\"", "job.type must be a non-empty string"},
           {"type = 1", "job.type must be a non-empty string"},
           {"queue = 1", "job.queue must be a string"},
           {"args = \"x\"", "job.args must be an array"},
           {"retry = \"3\"", "job.retry must be a whole number"},
           {"retry = 3000000000", "job.retry must be a whole number"},
           {"backtrace = 1.5", "job.backtrace must be a whole number"},
           {"reserve_for = 86401", "job.reserve_for must be a whole number of seconds up to 86400"},
           {"reserve_for = -1", "job.reserve_for must be"},
           {"custom = 5", "job.custom must be a table"}}) {
    const std::string type = field.starts_with("type") ? "" : "type = \"X\"\n";
    expect_invalid(load_second("[[cron]]\nschedule = \"@daily\"\n[cron.job]\n" + type +
                               std::string(field) + "\n"),
                   {"entry 2", problem});
  }
  expect_invalid(s.load_file(dir.write("table.toml", "[cron]\nschedule = \"@daily\"\n")),
                 {"invalid cron at", "table.toml:1", "expected [[cron]] tables"});
  expect_invalid(s.load_file(dir.write("typo.toml", "[[crons]]\nschedule = \"@daily\"\n")),
                 {"unknown setting crons", "[[cron]]"});
}

TEST(ServerConfigTest, HelpTextShowsDefaultAndEnvironmentVariable) {
  for (const Setting& setting : settings()) {
    std::string help = help_text(setting);
    EXPECT_THAT(help, HasSubstr(std::string(setting.env))) << setting.key;
    EXPECT_THAT(help, HasSubstr("Default: ")) << setting.key;
  }
  EXPECT_THAT(help_text(settings()[2]), HasSubstr("Default: 127.0.0.1:7419"));
}

}  // namespace
}  // namespace depot::server
