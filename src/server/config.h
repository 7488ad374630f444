#pragma once
// `depot serve` settings. Each setting can come from four places; the first that sets it wins:
// a command-line flag, a DEPOT_* environment variable, the TOML file named by --config (or
// DEPOT_CONFIG), the built-in default. One table (settings()) describes every setting for all
// four, so --help, the environment and the file cannot drift apart.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/common.h>

#include "server/endpoint.h"
#include "server/errc.h"
#include "storage/fsync_policy.h"

namespace depot::server {

// A [[cron]] entry of the config file (Faktory Enterprise's cron.toml format): a job enqueued on
// every tick of its schedule. Checked when the file is read.
struct PeriodicJob {
  std::string schedule;  // cron syntax (jobs/cron.h)
  std::string job;       // the Faktory job as JSON, without a jid: {"jobtype":"...",...}

  bool operator==(const PeriodicJob&) const = default;
};

// A protocol face and the address it listens on; nullopt when configured "off".
struct FaceAddress {
  std::string name;
  std::optional<Endpoint> listen;
};

struct ServerConfig {
  std::filesystem::path data_dir = "./depot-data";
  std::optional<Endpoint> jobs_listen = Endpoint{"127.0.0.1", 7419};
  std::optional<Endpoint> amqp_listen = Endpoint{"127.0.0.1", 5672};
  std::optional<Endpoint> kafka_listen = Endpoint{"127.0.0.1", 9092};
  std::optional<Endpoint> http_listen = Endpoint{"127.0.0.1", 7420};
  storage::FsyncPolicy fsync{};  // always: nothing is acknowledged before it is on disk
  spdlog::level::level_enum log_level = spdlog::level::info;
  std::chrono::milliseconds shutdown_grace{10'000};
  std::chrono::milliseconds idle_timeout{5 * 60'000};  // 0 disables
  uint64_t min_free_space = 64ull << 20;
  std::optional<std::string> password;  // Faktory clients must present it (HELLO pwdhash)
  uint64_t max_job_size = 1ull << 20;   // larger Faktory jobs are refused
  // AMQP users (name -> password); guest may only connect from a loopback address, as in RabbitMQ.
  std::map<std::string, std::string> amqp_users = {{"guest", "guest"}};
  std::vector<std::string> amqp_vhosts = {"/"};
  // Per-user permissions ("USER VHOST CONFIGURE WRITE READ;..."); a user without entries may use
  // every vhost.
  std::string amqp_permissions;
  // AMQP resource alarms, as RabbitMQ's vm_memory_high_watermark and disk_free_limit: past either,
  // publishing connections are blocked (connection.blocked) until it clears. 0: 40% of RAM.
  uint64_t amqp_memory_limit = 0;
  uint64_t amqp_disk_free_limit = 50ull << 20;
  std::chrono::milliseconds amqp_delivery_coalescing{1};
  // Kafka SASL users (PLAIN and SCRAM-SHA-256); none: clients connect without authenticating.
  std::map<std::string, std::string> kafka_users;
  int32_t kafka_partitions = 1;          // Kafka's num.partitions, for topics made on first use
  bool kafka_auto_create_topics = true;  // Kafka's auto.create.topics.enable
  // Kafka's group.initial.rebalance.delay.ms: a new group waits this long for more members.
  std::chrono::milliseconds kafka_initial_rebalance_delay{3000};
  std::optional<std::filesystem::path> config_file;  // the file the third layer came from
  std::vector<PeriodicJob> periodic_jobs;  // only from the file: there is no flag or env form

  // "jobs", "amqp", "kafka", "http" with their addresses, in that order.
  std::vector<FaceAddress> face_addresses() const;
};

// How a setting is spelled in a TOML file.
enum class TomlKind {
  text,          // a string
  milliseconds,  // an integer number of milliseconds (keys ending in _ms)
  size,          // an integer number of bytes, or a string such as "64MiB"
};

// One setting, as each source names it.
struct Setting {
  std::string_view key;       // name in messages ("jobs_listen")
  std::string_view flag;      // "--jobs-listen"
  std::string_view env;       // "DEPOT_JOBS_LISTEN"
  std::string_view toml_key;  // "jobs_listen"; empty when the file cannot set it
  TomlKind toml_kind;
  std::string_view value_name;  // "HOST:PORT", for --help
  std::string_view help;        // what the setting does
  std::string_view accepted;    // what values are accepted, for --help and error messages
  ParseResult<void> (*apply)(ServerConfig& config, std::string_view text);
  std::string (*show)(const ServerConfig& config);  // the value as text (defaults in --help)
};

std::span<const Setting> settings();

// The help line for a setting: what it does, what it accepts, its default and its env variable.
std::string help_text(const Setting& setting);

struct ConfigSources {
  // Setting key -> text, for the flags present on the command line.
  std::map<std::string, std::string, std::less<>> flags;
  // Reads an environment variable; tests substitute a map for the process environment.
  std::function<std::optional<std::string>(const std::string& name)> env = process_env;

  static std::optional<std::string> process_env(const std::string& name);
};

// Resolves every setting from the sources (flag > env > file > default). A bad value fails with a
// message naming the setting, where the value came from and what is accepted
// (errc::invalid_setting).
StartupResult<ServerConfig> load_config(const ConfigSources& sources);

}  // namespace depot::server
