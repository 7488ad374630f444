#include "server/config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "common/json_write.h"
#include "common/numbers.h"
#include "jobs/cron.h"
#include "messaging/permissions.h"
#include "server/units.h"

namespace depot::server {
namespace {

template <std::optional<Endpoint> ServerConfig::*member>
ParseResult<void> apply_listen(ServerConfig& config, std::string_view text) {
  if (text == "off") {
    config.*member = std::nullopt;
    return success();
  }
  DEPOT_TRY(config.*member, parse_endpoint(text));
  return success();
}

template <std::optional<Endpoint> ServerConfig::*member>
std::string show_listen(const ServerConfig& config) {
  return config.*member ? (config.*member)->to_string() : "off";
}

template <std::chrono::milliseconds ServerConfig::*member>
ParseResult<void> apply_duration(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.*member, parse_duration(text));
  return success();
}

template <std::chrono::milliseconds ServerConfig::*member>
std::string show_duration(const ServerConfig& config) {
  return format_duration(config.*member);
}

ParseResult<void> apply_data_dir(ServerConfig& config, std::string_view text) {
  if (text.empty()) return std::string("the path is empty");
  config.data_dir = std::filesystem::path(text);
  return success();
}

ParseResult<void> apply_fsync(ServerConfig& config, std::string_view text) {
  auto policy = storage::FsyncPolicy::parse(text);
  if (!policy) return std::string("unknown fsync policy");
  config.fsync = policy.value();
  return success();
}

ParseResult<void> apply_log_level(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.log_level, parse_log_level(text));
  return success();
}

ParseResult<void> apply_min_free_space(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.min_free_space, parse_size(text));
  return success();
}

ParseResult<void> apply_password(ServerConfig& config, std::string_view text) {
  if (text.empty()) {
    config.password.reset();
  } else {
    config.password = std::string(text);
  }
  return success();
}

// "name:password,name:password" (neither may hold a comma; a name no colon).
ParseResult<std::map<std::string, std::string>> parse_users(std::string_view text) {
  std::map<std::string, std::string> users;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto colon = entry.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return ParseResult<std::map<std::string, std::string>>(
          fmt::format("'{}' is not NAME:PASSWORD (entries are separated by commas)", entry));
    }
    users[std::string(entry.substr(0, colon))] = std::string(entry.substr(colon + 1));
  }
  return users;
}

ParseResult<void> apply_amqp_users(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(auto users, parse_users(text));
  if (users.empty()) return ParseResult<void>(std::string("at least one user is needed"));
  config.amqp_users = std::move(users);
  return success();
}

ParseResult<void> apply_kafka_users(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.kafka_users, parse_users(text));
  return success();
}

std::string show_users(const std::map<std::string, std::string>& users) {
  std::string names;
  for (const auto& [name, password] : users)
    names += (names.empty() ? "" : ",") + name;
  return names.empty() ? std::string("none") : names;
}

ParseResult<void> apply_kafka_partitions(ServerConfig& config, std::string_view text) {
  const auto n = parse_integer<int32_t>(text);
  if (!n || *n < 1 || *n > 10000) {
    return ParseResult<void>(std::string("not a partition count from 1 to 10000"));
  }
  config.kafka_partitions = *n;
  return success();
}

ParseResult<void> apply_kafka_auto_create_topics(ServerConfig& config, std::string_view text) {
  if (text != "true" && text != "false") return ParseResult<void>(std::string("not true or false"));
  config.kafka_auto_create_topics = text == "true";
  return success();
}

ParseResult<void> apply_amqp_vhosts(ServerConfig& config, std::string_view text) {
  std::vector<std::string> vhosts{"/"};
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string name(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (name.empty()) return ParseResult<void>(std::string("a virtual host name is empty"));
    if (name.size() > 255) {
      return ParseResult<void>(
          fmt::format("virtual host '{}...' is over 255 bytes", name.substr(0, 20)));
    }
    if (std::find(vhosts.begin(), vhosts.end(), name) == vhosts.end()) {
      vhosts.push_back(std::move(name));
    }
  }
  config.amqp_vhosts = std::move(vhosts);
  return success();
}

ParseResult<void> apply_amqp_permissions(ServerConfig& config, std::string_view text) {
  std::vector<messaging::PermissionEntry> entries;
  if (auto wrong = messaging::parse_permissions(text, entries)) return ParseResult<void>(*wrong);
  config.amqp_permissions = std::string(text);
  return success();
}

ParseResult<void> apply_amqp_memory_limit(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.amqp_memory_limit, parse_size(text));
  return success();
}

ParseResult<void> apply_amqp_disk_free_limit(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.amqp_disk_free_limit, parse_size(text));
  return success();
}

ParseResult<void> apply_max_job_size(ServerConfig& config, std::string_view text) {
  DEPOT_TRY(config.max_job_size, parse_size(text));
  if (config.max_job_size == 0) return std::string("must be more than 0 bytes");
  return success();
}

ParseResult<void> apply_config_file(ServerConfig& config, std::string_view text) {
  config.config_file = std::filesystem::path(text);
  return success();
}

constexpr std::string_view kListenAccepted =
    "HOST:PORT such as 127.0.0.1:7419, 0.0.0.0:7419 or [::1]:7419, or \"off\"";
constexpr std::string_view kDurationAccepted = "a duration with a unit: ms, s, m or h (e.g. 10s)";

// "config" comes first: load_config reads it before the others.
const std::array<Setting, 23> all_settings = {{
    {"config", "--config", "DEPOT_CONFIG", "", TomlKind::text, "FILE",
     "TOML file with settings (keys listed below; durations as *_ms integers)",
     "a path to a readable TOML file", apply_config_file,
     [](const ServerConfig& c) { return c.config_file ? c.config_file->string() : "none"; }},
    {"data_dir", "--data-dir", "DEPOT_DATA_DIR", "data_dir", TomlKind::text, "DIR",
     "Directory for all durable data; created if missing and locked while depot runs",
     "a directory path", apply_data_dir, [](const ServerConfig& c) { return c.data_dir.string(); }},
    {"jobs_listen", "--jobs-listen", "DEPOT_JOBS_LISTEN", "jobs_listen", TomlKind::text,
     "HOST:PORT", "Faktory work protocol (background jobs) address", kListenAccepted,
     apply_listen<&ServerConfig::jobs_listen>, show_listen<&ServerConfig::jobs_listen>},
    {"amqp_listen", "--amqp-listen", "DEPOT_AMQP_LISTEN", "amqp_listen", TomlKind::text,
     "HOST:PORT", "AMQP 0-9-1 (message queues) address", kListenAccepted,
     apply_listen<&ServerConfig::amqp_listen>, show_listen<&ServerConfig::amqp_listen>},
    {"kafka_listen", "--kafka-listen", "DEPOT_KAFKA_LISTEN", "kafka_listen", TomlKind::text,
     "HOST:PORT", "Kafka protocol (event log) address", kListenAccepted,
     apply_listen<&ServerConfig::kafka_listen>, show_listen<&ServerConfig::kafka_listen>},
    {"http_listen", "--http-listen", "DEPOT_HTTP_LISTEN", "http_listen", TomlKind::text,
     "HOST:PORT", "HTTP admin API, metrics and dashboard address", kListenAccepted,
     apply_listen<&ServerConfig::http_listen>, show_listen<&ServerConfig::http_listen>},
    {"fsync", "--fsync", "DEPOT_FSYNC", "fsync", TomlKind::text, "POLICY",
     "When writes reach the disk: always (nothing acknowledged before fdatasync), "
     "interval:MS (sync every MS, may lose the last interval on power loss) or never (the OS "
     "decides)",
     "always, never or interval:MS with MS > 0", apply_fsync,
     [](const ServerConfig& c) { return c.fsync.to_string(); }},
    {"log_level", "--log-level", "DEPOT_LOG_LEVEL", "log_level", TomlKind::text, "LEVEL",
     "Log verbosity", "trace, debug, info, warn, error, critical or off", apply_log_level,
     [](const ServerConfig& c) { return std::string(log_level_name(c.log_level)); }},
    {"shutdown_grace", "--shutdown-grace", "DEPOT_SHUTDOWN_GRACE", "shutdown_grace_ms",
     TomlKind::milliseconds, "DURATION",
     "On SIGTERM/SIGINT, how long connections may take to finish their current request before "
     "they are closed",
     kDurationAccepted, apply_duration<&ServerConfig::shutdown_grace>,
     show_duration<&ServerConfig::shutdown_grace>},
    {"idle_timeout", "--idle-timeout", "DEPOT_IDLE_TIMEOUT", "idle_timeout_ms",
     TomlKind::milliseconds, "DURATION",
     "Close a connection whose peer sends nothing (or reads nothing) for this long; 0 disables",
     kDurationAccepted, apply_duration<&ServerConfig::idle_timeout>,
     show_duration<&ServerConfig::idle_timeout>},
    {"min_free_space", "--min-free-space", "DEPOT_MIN_FREE_SPACE", "min_free_space", TomlKind::size,
     "SIZE", "Refuse to start when the data directory's file system has less free space than this",
     "a byte count, optionally with K/KiB, M/MiB, G/GiB or T/TiB (e.g. 64MiB)",
     apply_min_free_space, [](const ServerConfig& c) { return format_size(c.min_free_space); }},
    {"password", "--password", "DEPOT_PASSWORD", "password", TomlKind::text, "PASSWORD",
     "Password Faktory clients must present (as in FAKTORY_URL=tcp://:PASSWORD@host:7419); "
     "empty: none",
     "any text", apply_password,
     [](const ServerConfig& c) { return std::string(c.password ? "(set)" : "none"); }},
    {"max_job_size", "--max-job-size", "DEPOT_MAX_JOB_SIZE", "max_job_size", TomlKind::size, "SIZE",
     "Largest Faktory job (its JSON) that PUSH accepts",
     "a byte count, optionally with K/KiB, M/MiB, G/GiB or T/TiB (e.g. 1MiB)", apply_max_job_size,
     [](const ServerConfig& c) { return format_size(c.max_job_size); }},
    {"amqp_users", "--amqp-users", "DEPOT_AMQP_USERS", "amqp_users", TomlKind::text,
     "NAME:PASSWORD,...",
     "AMQP users and their passwords, each with access to every virtual host (guest connects "
     "from localhost only)",
     "NAME:PASSWORD entries separated by commas", apply_amqp_users,
     [](const ServerConfig& c) { return show_users(c.amqp_users); }},
    {"amqp_vhosts", "--amqp-vhosts", "DEPOT_AMQP_VHOSTS", "amqp_vhosts", TomlKind::text, "NAME,...",
     "AMQP virtual hosts besides \"/\"", "names separated by commas", apply_amqp_vhosts,
     [](const ServerConfig& c) {
       std::string names;
       for (const auto& name : c.amqp_vhosts)
         names += (names.empty() ? "" : ",") + name;
       return names;
     }},
    {"amqp_permissions", "--amqp-permissions", "DEPOT_AMQP_PERMISSIONS", "amqp_permissions",
     TomlKind::text, "\"USER VHOST CONF WRITE READ;...\"",
     "AMQP permissions as rabbitmqctl set_permissions gives them: regular expressions over the "
     "exchange and queue names a user may configure, write and read in a vhost. A user with "
     "entries may open only those vhosts; a user without may use all",
     "entries of five fields separated by ';'", apply_amqp_permissions,
     [](const ServerConfig& c) {
       return c.amqp_permissions.empty() ? std::string("none") : c.amqp_permissions;
     }},
    {"amqp_memory_limit", "--amqp-memory-limit", "DEPOT_AMQP_MEMORY_LIMIT", "amqp_memory_limit",
     TomlKind::size, "SIZE",
     "Memory alarm (RabbitMQ's vm_memory_high_watermark): while depot's resident memory is over "
     "this, AMQP connections that publish are blocked (connection.blocked); 0 is 40% of RAM",
     "a byte count, optionally with K/KiB, M/MiB, G/GiB or T/TiB (e.g. 2GiB)",
     apply_amqp_memory_limit,
     [](const ServerConfig& c) {
       return c.amqp_memory_limit == 0 ? std::string("40% of RAM")
                                       : format_size(c.amqp_memory_limit);
     }},
    {"amqp_disk_free_limit", "--amqp-disk-free-limit", "DEPOT_AMQP_DISK_FREE_LIMIT",
     "amqp_disk_free_limit", TomlKind::size, "SIZE",
     "Disk alarm (RabbitMQ's disk_free_limit): while the data directory's disk has less free "
     "space than this, AMQP connections that publish are blocked",
     "a byte count, optionally with K/KiB, M/MiB, G/GiB or T/TiB (e.g. 1GiB)",
     apply_amqp_disk_free_limit,
     [](const ServerConfig& c) { return format_size(c.amqp_disk_free_limit); }},
    {"amqp_delivery_coalescing", "--amqp-delivery-coalescing", "DEPOT_AMQP_DELIVERY_COALESCING",
     "amqp_delivery_coalescing_ms", TomlKind::milliseconds, "DURATION",
     "A consumer that is receiving a stream of messages gets them in one write per this long "
     "(fewer, larger writes: each costs the consumer a wake-up); an idle consumer's first "
     "delivery and publisher confirms are never held back; 0 writes every delivery at once",
     kDurationAccepted, apply_duration<&ServerConfig::amqp_delivery_coalescing>,
     show_duration<&ServerConfig::amqp_delivery_coalescing>},
    {"kafka_users", "--kafka-users", "DEPOT_KAFKA_USERS", "kafka_users", TomlKind::text,
     "NAME:PASSWORD,...",
     "Kafka users and their passwords: when set, clients must authenticate with SASL PLAIN or "
     "SCRAM-SHA-256 before anything else; empty: no authentication",
     "NAME:PASSWORD entries separated by commas", apply_kafka_users,
     [](const ServerConfig& c) { return show_users(c.kafka_users); }},
    {"kafka_partitions", "--kafka-partitions", "DEPOT_KAFKA_PARTITIONS", "kafka_partitions",
     TomlKind::text, "N",
     "Partitions of a Kafka topic created on first use or without a count (Kafka's "
     "num.partitions)",
     "an integer from 1 to 10000", apply_kafka_partitions,
     [](const ServerConfig& c) { return std::to_string(c.kafka_partitions); }},
    {"kafka_auto_create_topics", "--kafka-auto-create-topics", "DEPOT_KAFKA_AUTO_CREATE_TOPICS",
     "kafka_auto_create_topics", TomlKind::text, "BOOL",
     "Create a Kafka topic when a client first asks for it (Kafka's auto.create.topics.enable)",
     "true or false", apply_kafka_auto_create_topics,
     [](const ServerConfig& c) {
       return std::string(c.kafka_auto_create_topics ? "true" : "false");
     }},
    {"kafka_initial_rebalance_delay", "--kafka-initial-rebalance-delay",
     "DEPOT_KAFKA_INITIAL_REBALANCE_DELAY", "kafka_initial_rebalance_delay_ms",
     TomlKind::milliseconds, "DURATION",
     "How long a new consumer group waits for more members before its first assignment (Kafka's "
     "group.initial.rebalance.delay.ms)",
     kDurationAccepted, apply_duration<&ServerConfig::kafka_initial_rebalance_delay>,
     show_duration<&ServerConfig::kafka_initial_rebalance_delay>},
}};

// A setting's text and a description of where it came from, for error messages.
struct SourcedValue {
  std::string text;
  std::string source;
};

StartupError invalid(std::string message) {
  return StartupError{make_error_code(errc::invalid_setting), std::move(message)};
}

std::string known_toml_keys() {
  std::string keys;
  for (const Setting& s : all_settings) {
    if (s.toml_key.empty()) continue;
    if (!keys.empty()) keys += ", ";
    keys += s.toml_key;
  }
  return keys + ", [[cron]]";
}

// Faktory Enterprise's cron.toml keys: [[cron]] schedule = "..." with a [cron.job] table.
constexpr std::string_view kCronKeys = "schedule, job";
constexpr std::string_view kCronJobKeys =
    "type, queue, args, retry, reserve_for, backtrace, custom";

// TOML as JSON. Strings (and keys) go through the project's JSON string writer; toml++'s JSON
// formatter writes the other scalars (numbers, booleans, quoted dates). Tables and arrays are
// walked here so the text is compact, as a client would send it.
void append_json(std::string& out, const toml::node& node) {
  if (const toml::table* table = node.as_table()) {
    out += '{';
    for (auto&& [key, value] : *table) {
      if (out.back() != '{') out += ',';
      append_json_string(out, key.str());
      out += ':';
      append_json(out, value);
    }
    out += '}';
  } else if (const toml::array* array = node.as_array()) {
    out += '[';
    for (const toml::node& element : *array) {
      if (out.back() != '[') out += ',';
      append_json(out, element);
    }
    out += ']';
  } else if (const toml::value<std::string>* string = node.as_string()) {
    append_json_string(out, string->get());
  } else {
    std::ostringstream text;
    text << toml::json_formatter(node);
    out += text.str();
  }
}

bool is_integer_in(const toml::node& node, int64_t min, int64_t max) {
  return node.is_integer() && *node.value<int64_t>() >= min && *node.value<int64_t>() <= max;
}

// A [cron.job] table as Faktory job JSON: `type` is the jobtype, the other keys keep Faktory's
// names. The types are checked here so that a mistake is reported with the file's name.
ParseResult<void> cron_job_json(const toml::table& job, std::string& out) {
  out = "{";
  bool has_type = false;
  bool has_args = false;
  for (auto&& [key, value] : job) {
    const std::string_view name = key.str();
    std::string_view expected;
    if (name == "type") {
      has_type = value.is_string() && !value.as_string()->get().empty();
      if (!has_type) expected = "a non-empty string";
    } else if (name == "queue") {
      if (!value.is_string()) expected = "a string";
    } else if (name == "args") {
      has_args = value.is_array();
      if (!has_args) expected = "an array";
    } else if (name == "retry" || name == "backtrace") {
      if (!is_integer_in(value, std::numeric_limits<int32_t>::min(),
                         std::numeric_limits<int32_t>::max())) {
        expected = "a whole number";
      }
    } else if (name == "reserve_for") {
      if (!is_integer_in(value, 0, jobs::kMaxReserveForSeconds)) {
        expected = "a whole number of seconds up to 86400 (a day, as Faktory allows)";
      }
    } else if (name == "custom") {
      if (!value.is_table()) expected = "a table";
    } else {
      return fmt::format("unknown key job.{}; known keys: {}", name, kCronJobKeys);
    }
    if (!expected.empty()) return fmt::format("job.{} must be {}", name, expected);
    if (out.size() > 1) out += ',';
    append_json_string(out, name == "type" ? "jobtype" : name);
    out += ':';
    append_json(out, value);
  }
  if (!has_type) return std::string("job.type is missing (the job's type, e.g. type = \"Report\")");
  out += has_args ? "}" : R"(,"args":[]})";  // Faktory requires args; cron.toml need not say
  return success();
}

// The [[cron]] entries, checked: a bad one fails with its number and line.
StartupResult<std::vector<PeriodicJob>> read_cron(const toml::node& node,
                                                  const std::filesystem::path& path) {
  const toml::array* entries = node.as_array();
  if (entries == nullptr || !entries->is_array_of_tables()) {
    return invalid(fmt::format(
        "invalid cron at {}:{}: expected [[cron]] tables, each with a schedule and a [cron.job] "
        "table",
        path.string(), node.source().begin.line));
  }
  std::vector<PeriodicJob> periodic;
  for (size_t i = 0; i < entries->size(); ++i) {
    const toml::table& entry = *entries->get(i)->as_table();
    auto problem = [&](std::string_view what) {
      return invalid(fmt::format("invalid [[cron]] entry {} at {}:{}: {}", i + 1, path.string(),
                                 entry.source().begin.line, what));
    };
    for (auto&& [key, value] : entry) {
      if (key != "schedule" && key != "job") {
        return problem(fmt::format("unknown key {}; known keys: {}", key.str(), kCronKeys));
      }
    }
    const auto schedule = entry["schedule"].value<std::string>();
    if (!schedule) return problem("schedule is missing or not a string");
    if (auto parsed = jobs::CronSchedule::parse(*schedule); !parsed) return problem(parsed.error());
    const toml::table* job = entry["job"].as_table();
    if (job == nullptr) return problem("the [cron.job] table is missing");
    PeriodicJob added{*schedule, {}};
    if (auto json = cron_job_json(*job, added.job); !json) return problem(json.error());
    if (auto same = std::ranges::find(periodic, added); same != periodic.end()) {
      return problem(fmt::format("it repeats entry {}", same - periodic.begin() + 1));
    }
    periodic.push_back(std::move(added));
  }
  return periodic;
}

struct FileContents {
  std::map<std::string, SourcedValue, std::less<>> values;  // setting key -> value
  std::vector<PeriodicJob> periodic_jobs;
};

// Reads the file's settings and [[cron]] entries, checking every key and type so a typo is not
// ignored.
StartupResult<FileContents> read_config_file(const std::filesystem::path& path,
                                             std::string_view source) {
  std::ifstream in(path);
  if (!in) {
    return invalid(fmt::format("cannot read config file {} (set by {}): {}", path.string(), source,
                               std::strerror(errno)));
  }
  std::stringstream raw;
  raw << in.rdbuf();
  toml::table table;
  try {
    table = toml::parse(raw.str(), path.string());
  } catch (const toml::parse_error& e) {
    return invalid(fmt::format("config file {} is not valid TOML: {} (line {}, column {})",
                               path.string(), e.description(), e.source().begin.line,
                               e.source().begin.column));
  }

  FileContents contents;
  for (auto&& [key, node] : table) {
    if (key == "cron") {
      DEPOT_TRY(contents.periodic_jobs, read_cron(node, path));
      continue;
    }
    auto where = fmt::format("{} at {}:{}", key.str(), path.string(), key.source().begin.line);
    const Setting* setting = nullptr;
    for (const Setting& s : all_settings) {
      if (!s.toml_key.empty() && s.toml_key == key.str()) setting = &s;
    }
    if (setting == nullptr) {
      return invalid(
          fmt::format("unknown setting {}; known settings: {}", where, known_toml_keys()));
    }
    std::optional<std::string> text;
    std::string_view expected;
    switch (setting->toml_kind) {
      case TomlKind::text:
        expected = "a string";
        if (node.is_string()) text = *node.value<std::string>();
        break;
      case TomlKind::milliseconds:
        expected = "a whole number of milliseconds >= 0";
        if (node.is_integer() && *node.value<int64_t>() >= 0) {
          text = std::to_string(*node.value<int64_t>()) + "ms";
        }
        break;
      case TomlKind::size:
        expected = "a whole number of bytes or a string such as \"64MiB\"";
        if (node.is_string()) text = *node.value<std::string>();
        if (node.is_integer() && *node.value<int64_t>() >= 0) {
          text = std::to_string(*node.value<int64_t>());
        }
        break;
    }
    if (!text) return invalid(fmt::format("invalid {}: expected {}", where, expected));
    contents.values[std::string(setting->key)] = SourcedValue{std::move(*text), where};
  }
  return contents;
}

// The first source that sets the setting, if any. Empty environment variables count as unset.
std::optional<SourcedValue> find_value(
    const Setting& setting, const ConfigSources& sources,
    const std::map<std::string, SourcedValue, std::less<>>& file_values) {
  if (auto it = sources.flags.find(setting.key); it != sources.flags.end()) {
    return SourcedValue{it->second, std::string(setting.flag)};
  }
  if (auto value = sources.env(std::string(setting.env)); value && !value->empty()) {
    return SourcedValue{*value, fmt::format("environment variable {}", setting.env)};
  }
  if (auto it = file_values.find(setting.key); it != file_values.end()) return it->second;
  return std::nullopt;
}

}  // namespace

std::vector<FaceAddress> ServerConfig::face_addresses() const {
  return {
      {"jobs", jobs_listen}, {"amqp", amqp_listen}, {"kafka", kafka_listen}, {"http", http_listen}};
}

std::span<const Setting> settings() {
  return all_settings;
}

std::string help_text(const Setting& setting) {
  static const ServerConfig defaults;
  return fmt::format("{}. Accepts {}. Default: {}. Env: {}.", setting.help, setting.accepted,
                     setting.show(defaults), setting.env);
}

std::optional<std::string> ConfigSources::process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? std::optional<std::string>(value) : std::nullopt;
}

StartupResult<ServerConfig> load_config(const ConfigSources& sources) {
  ServerConfig config;
  std::map<std::string, SourcedValue, std::less<>> file_values;
  // The file is itself a setting (flag or env only); read it first so it can fill the gaps.
  if (auto file = find_value(all_settings[0], sources, file_values)) {
    config.config_file = std::filesystem::path(file->text);
    DEPOT_TRY(FileContents contents, read_config_file(*config.config_file, file->source));
    file_values = std::move(contents.values);
    config.periodic_jobs = std::move(contents.periodic_jobs);
  }
  for (const Setting& setting : settings().subspan(1)) {
    auto value = find_value(setting, sources, file_values);
    if (!value) continue;
    auto applied = setting.apply(config, value->text);
    if (!applied) {
      return invalid(fmt::format("invalid {} \"{}\" (set by {}): {}; expected {}", setting.key,
                                 value->text, value->source, applied.error(), setting.accepted));
    }
  }
  return config;
}

}  // namespace depot::server
