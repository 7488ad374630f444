#include "cli/serve_command.h"

#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "jobs/store.h"
#include "protocol/amqp/handler.h"
#include "protocol/faktory/handler.h"
#include "protocol/faktory/job_json.h"
#include "protocol/http/handler.h"
#include "protocol/kafka/handler.h"
#include "server/config.h"
#include "server/serve.h"

namespace depot::cli {

namespace {

// The config file's [[cron]] entries as the job store takes them. load_config checked them; the
// Faktory codec has the last word on the job.
server::StartupResult<std::vector<jobs::PeriodicJob>> periodic_jobs(
    const server::ServerConfig& config) {
  std::vector<jobs::PeriodicJob> periodic;
  for (size_t i = 0; i < config.periodic_jobs.size(); ++i) {
    const server::PeriodicJob& entry = config.periodic_jobs[i];
    auto schedule = jobs::CronSchedule::parse(entry.schedule);
    auto job = faktory::parse_job_template(entry.job);
    if (!schedule || !job) {
      return server::StartupError{make_error_code(server::errc::invalid_setting),
                                  fmt::format("invalid [[cron]] entry {} in {}: {}", i + 1,
                                              config.config_file.value_or("").string(),
                                              schedule ? job.error().message : schedule.error())};
    }
    periodic.push_back({std::move(schedule).value(), std::move(job).value()});
  }
  return periodic;
}

// Every protocol face this build serves registers here.
server::StartupResult<void> install_faces(server::Server& server, server::ServeContext& context) {
  const server::ServerConfig& config = context.config;
  if (!config.jobs_listen && !config.periodic_jobs.empty()) {
    spdlog::warn("jobs: the jobs face is off, so the {} [[cron]] entries enqueue nothing",
                 config.periodic_jobs.size());
  }
  // For the admin API, while the jobs face runs.
  std::shared_ptr<jobs::WorkerRegistry> workers;
  std::shared_ptr<const jobs::JobStore> job_store;
  http::ConsumerLagSource consumer_lag;
  if (config.jobs_listen) {
    jobs::StoreOptions store_options{context.data_dir.path() / "jobs", &context.sync, {}, {}};
    DEPOT_TRY(store_options.periodic, periodic_jobs(config));
    auto store = jobs::JobStore::open(std::move(store_options));
    if (!store) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot open the job journal in " +
                                      (context.data_dir.path() / "jobs").string() + ": " +
                                      store.error().message()};
    }
    faktory::FaktoryOptions options;
    options.password = config.password;
    options.max_job_bytes = config.max_job_size;
    auto service = std::make_shared<faktory::FaktoryService>(
        std::move(store).value(), server.io_context().get_executor(), options);
    service->start();
    context.at_shutdown.push_back([service] { service->stop(); });
    server::ConnectionOptions connection;
    connection.max_read_buffer = config.max_job_size + 64 * 1024;
    DEPOT_TRY(server.register_face("jobs", std::make_shared<faktory::FaktoryHandler>(service),
                                   connection));
    workers = std::shared_ptr<jobs::WorkerRegistry>(service, &service->workers());
    job_store = std::shared_ptr<const jobs::JobStore>(service, &service->store());
  }
  if (config.amqp_listen) {
    amqp::AmqpOptions options;
    options.vhosts = config.amqp_vhosts;
    options.users = config.amqp_users;
    (void)messaging::parse_permissions(config.amqp_permissions, options.permissions);
    options.memory_limit = config.amqp_memory_limit;
    if (options.memory_limit == 0) {
      // RabbitMQ's default watermark: 40% of physical memory.
      options.memory_limit = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                             static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) * 2 / 5;
    }
    options.disk_free_limit = config.amqp_disk_free_limit;
    options.delivery_coalescing = config.amqp_delivery_coalescing;
    options.data_dir = context.data_dir.path();
    const auto definitions_dir = context.data_dir.path() / "messaging" / "definitions";
    auto definitions = messaging::Definitions::open(definitions_dir, &context.sync);
    if (!definitions) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot open the messaging definitions in " +
                                      definitions_dir.string() + ": " +
                                      definitions.error().message()};
    }
    const auto store_dir = context.data_dir.path() / "messaging" / "messages";
    auto store = messaging::MessageStore::open(store_dir, &context.sync);
    if (!store) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot open the message store in " + store_dir.string() + ": " +
                                      store.error().message()};
    }
    auto service = std::make_shared<amqp::AmqpService>(
        std::move(options), std::move(definitions).value(), std::move(store).value());
    auto restored = service->restore();
    if (!restored) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot restore messaging from " +
                                      (context.data_dir.path() / "messaging").string() + ": " +
                                      restored.error().message()};
    }
    spdlog::info("amqp: {} durable definition(s) and {} message(s) restored",
                 restored.value().definitions, restored.value().messages);
    service->start(server.io_context().get_executor());
    context.at_shutdown.push_back([service] {
      if (auto closed = service->close(); !closed) {
        spdlog::error("amqp: closing the messaging journals failed: {}", closed.error().message());
      }
    });
    DEPOT_TRY(server.register_face("amqp", std::make_shared<amqp::AmqpHandler>(service)));
  }
  if (config.kafka_listen) {
    eventlog::TopicStoreOptions topics_options;
    topics_options.dir = context.data_dir.path() / "eventlog";
    topics_options.sync = &context.sync;
    topics_options.default_partitions = config.kafka_partitions;
    topics_options.auto_create = config.kafka_auto_create_topics;
    auto topics = eventlog::TopicStore::open(std::move(topics_options));
    if (!topics) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot open the event log in " +
                                      (context.data_dir.path() / "eventlog").string() + ": " +
                                      topics.error().message()};
    }
    const auto offsets_dir = context.data_dir.path() / "eventlog" / "__consumer_offsets";
    auto offsets = eventlog::OffsetStore::open(offsets_dir, &context.sync);
    if (!offsets) {
      return server::StartupError{make_error_code(server::errc::storage_failed),
                                  "cannot open the committed offsets in " + offsets_dir.string() +
                                      ": " + offsets.error().message()};
    }
    spdlog::info("kafka: {} topic(s), {} consumer group(s) with committed offsets",
                 topics.value()->list().size(), offsets.value()->groups().size());
    kafka::KafkaOptions kafka_options;
    kafka_options.users = config.kafka_users;
    kafka_options.groups.initial_rebalance_delay_ms =
        static_cast<int32_t>(config.kafka_initial_rebalance_delay.count());
    auto service = std::make_shared<kafka::KafkaService>(
        std::move(topics).value(), std::move(offsets).value(), std::move(kafka_options));
    consumer_lag = [service] {
      std::vector<http::ConsumerLag> lags;
      for (auto& l : eventlog::consumer_lag(service->topics(), service->offsets()))
        lags.push_back({l.group, l.topic, l.partition, l.committed, l.end, l.lag});
      return lags;
    };
    service->start(server.io_context().get_executor());
    context.at_shutdown.push_back([service] {
      if (auto closed = service->close(); !closed) {
        spdlog::error("kafka: closing the event log failed: {}", closed.error().message());
      }
    });
    server::ConnectionOptions connection;
    connection.max_read_buffer = service->options().max_request_bytes + 4;
    DEPOT_TRY(
        server.register_face("kafka", std::make_shared<kafka::KafkaHandler>(service), connection));
  }
  if (config.http_listen) {
    DEPOT_TRY(server.register_face("http", std::make_shared<http::HttpHandler>(http::AdminApi(
                                               std::move(workers), config.password,
                                               std::move(job_store), std::move(consumer_lag)))));
  }
  return success();
}

std::string precedence_note() {
  std::string keys;
  for (const server::Setting& setting : server::settings()) {
    if (setting.toml_key.empty()) continue;
    keys += keys.empty() ? "" : ", ";
    keys += setting.toml_key;
  }
  return "\nEach setting comes from the first of: its flag, its DEPOT_* environment variable, the "
         "--config file, the default.\nConfig file keys: " +
         keys +
         ".\nPeriodic jobs: [[cron]] tables in the config file, as Faktory Enterprise's cron.toml "
         "(schedule = \"*/5 * * * *\", UTC, and a [cron.job] table with type, queue, args, retry, "
         "reserve_for, backtrace, custom).\nExit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 "
         "when start-up fails, 2 for an invalid setting.";
}

}  // namespace

ServeCommand::ServeCommand(CLI::App& parent)
    : command_(parent.add_subcommand(
          "serve",
          "Run the broker: Faktory jobs, AMQP 0-9-1 and Kafka faces on one storage engine")) {
  for (const server::Setting& setting : server::settings()) {
    std::string key(setting.key);
    // The last occurrence wins, so wrappers can append overrides to a base command line.
    options_[key] =
        command_->add_option(std::string(setting.flag), values_[key], server::help_text(setting))
            ->type_name(std::string(setting.value_name))
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  command_->footer(precedence_note());
}

int ServeCommand::run() const {
  server::ConfigSources sources;
  for (const auto& [key, option] : options_) {
    if (option->count() > 0) sources.flags[key] = values_.at(key);
  }
  auto config = server::load_config(sources);
  if (!config) {
    std::cerr << "depot serve: " << config.error().message << "\n";
    return server::exit_code_for(config.error());
  }
  return server::run_serve(config.value(), install_faces);
}

}  // namespace depot::cli
