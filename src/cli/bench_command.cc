#include "cli/bench_command.h"

#include <iostream>

#include <CLI/CLI.hpp>

namespace depot::cli {

BenchCommand::BenchCommand(CLI::App& parent) {
  CLI::App* bench = parent.add_subcommand("bench", "Measure depot on this machine");
  bench->require_subcommand(1);
  storage_ = bench->add_subcommand(
      "storage", "Storage engine throughput and group-commit latency against the disk of --dir");
  storage_
      ->add_option(
          "--dir", storage_options_.dir,
          "Directory on the disk to measure (the bench works in a subdirectory it removes)")
      ->capture_default_str();
  storage_
      ->add_option("--total-bytes", storage_options_.total_bytes,
                   "Bytes written per throughput run")
      ->capture_default_str();
  storage_->add_option("--record-bytes", storage_options_.record_bytes, "Bytes per record")
      ->capture_default_str();
  storage_->add_option("--batch-bytes", storage_options_.batch_bytes, "Bytes per record batch")
      ->capture_default_str();
  storage_
      ->add_option("--appenders", storage_options_.appenders,
                   "Concurrent appender counts to compare")
      ->capture_default_str()
      ->delimiter(',');
  storage_
      ->add_option("--seconds", storage_options_.seconds_per_rate_test,
                   "Duration of each appends/s comparison")
      ->capture_default_str();

  jobs_ = bench->add_subcommand(
      "jobs",
      "Job throughput and push-to-fetch latency: depot's Faktory face against beanstalkd and a "
      "Redis list queue, each a fresh server on this machine");
  jobs_
      ->add_option("--dir", jobs_options_.dir,
                   "Directory for the servers' data (in a subdirectory the bench removes)")
      ->capture_default_str();
  jobs_
      ->add_option("--targets", jobs_options_.targets,
                   "Systems to measure: depot-always, depot-never, beanstalkd, "
                   "beanstalkd-binlog, redis")
      ->capture_default_str()
      ->delimiter(',');
  jobs_
      ->add_option("--clients", jobs_options_.clients,
                   "Load shapes as PRODUCERS+WORKERS connections, one request in flight each")
      ->capture_default_str()
      ->delimiter(',');
  jobs_->add_option("--seconds", jobs_options_.seconds, "Measured seconds per system and shape")
      ->capture_default_str();
  jobs_->add_option("--warmup", jobs_options_.warmup_seconds, "Unmeasured seconds before each")
      ->capture_default_str();
  jobs_->add_option("--job-bytes", jobs_options_.job_bytes, "Size of each job's JSON")
      ->capture_default_str();
  jobs_
      ->add_option("--backlog", jobs_options_.backlog,
                   "Producers wait while this many jobs are pushed but not yet fetched")
      ->capture_default_str();
  jobs_
      ->add_option("--paced-rate", jobs_options_.paced_rate,
                   "Jobs/s of the unsaturated 1+1 latency run; 0 skips it")
      ->capture_default_str();
  jobs_
      ->add_option("--memory-jobs", jobs_options_.memory_jobs,
                   "Instead: push this many jobs into one depot and report its RSS per waiting "
                   "job, then restart it and report replay time and RSS")
      ->capture_default_str();
  jobs_->add_option("--depot", jobs_options_.depot_binary, "The depot binary to measure")
      ->default_str("this one");

  iteration_ = bench->add_subcommand(
      "iteration",
      "libdepot's iteration jobs (cursor, checkpoints to depot) against a plain loop over the "
      "same items");
  iteration_->add_option("--dir", iteration_options_.dir, "Where depot keeps its data (emptied)")
      ->capture_default_str();
  iteration_->add_option("--items", iteration_options_.items, "Items per measurement")
      ->capture_default_str();
  iteration_
      ->add_option("--work-us", iteration_options_.item_work_us,
                   "CPU work per item, one measurement each")
      ->capture_default_str();
  iteration_
      ->add_option("--checkpoint-items", iteration_options_.checkpoint_items,
                   "Items between checkpoints")
      ->capture_default_str();
  iteration_->add_option("--fsync", iteration_options_.fsync, "depot's fsync policies to measure")
      ->capture_default_str();
  iteration_->add_option("--depot", iteration_options_.depot_binary, "The depot binary to run")
      ->default_str("this one");

  amqp_ = bench->add_subcommand(
      "amqp",
      "Publish and delivery rates and publish-to-deliver latency: depot's AMQP face against "
      "rabbitmq-server, both driven by librabbitmq, each a fresh server on this machine");
  amqp_
      ->add_option("--dir", amqp_options_.dir,
                   "Directory for the servers' data (in a subdirectory the bench removes)")
      ->capture_default_str();
  amqp_
      ->add_option(
          "--targets", amqp_options_.targets,
          "Systems to measure: depot, rabbitmq, null (no broker: every publish "
          "confirmed at once and dropped, the publishers' rate when their peer does no work)")
      ->capture_default_str()
      ->delimiter(',');
  amqp_->add_option("--sizes", amqp_options_.sizes, "Message body sizes in bytes")
      ->capture_default_str()
      ->delimiter(',');
  amqp_
      ->add_option("--modes", amqp_options_.modes,
                   "transient (no confirms), confirms (transient, confirmed in batches), "
                   "persistent (durable queue, delivery_mode 2, confirmed in batches)")
      ->capture_default_str()
      ->delimiter(',');
  amqp_
      ->add_option("--queues", amqp_options_.queue_counts,
                   "Queue counts, each with one publisher and one consumer")
      ->capture_default_str()
      ->delimiter(',');
  amqp_->add_option("--seconds", amqp_options_.seconds, "Measured seconds per case")
      ->capture_default_str();
  amqp_->add_option("--warmup", amqp_options_.warmup_seconds, "Unmeasured seconds before each")
      ->capture_default_str();
  amqp_
      ->add_option("--confirm-batch", amqp_options_.confirm_batch,
                   "Publishes between waits for their confirms")
      ->capture_default_str();
  amqp_->add_option("--prefetch", amqp_options_.prefetch, "Consumers' prefetch count")
      ->capture_default_str();
  amqp_
      ->add_option("--max-in-flight", amqp_options_.max_in_flight,
                   "Publishers wait while this many messages are published and not delivered")
      ->capture_default_str();
  amqp_
      ->add_option("--rounds", amqp_options_.rounds,
                   "Rounds, each measuring every target in every case, which target goes first "
                   "alternating; the ratios are then given per round with their median")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  amqp_->add_option("--depot", amqp_options_.depot_binary, "The depot binary to measure")
      ->default_str("this one");

  kafka_ = bench->add_subcommand(
      "kafka",
      "Produce (acks=all) and consume rates and end-to-end latency of depot's Kafka face with "
      "librdkafka clients, next to the disk's fsynced write rate and the storage engine's append "
      "rate measured in the same run");
  kafka_
      ->add_option("--dir", kafka_options_.dir,
                   "Directory on the disk to measure (in a subdirectory the bench removes)")
      ->capture_default_str();
  kafka_->add_option("--sizes", kafka_options_.sizes, "Message value sizes in bytes")
      ->capture_default_str()
      ->delimiter(',');
  kafka_->add_option("--bytes", kafka_options_.produce_bytes, "Value bytes produced per size")
      ->capture_default_str();
  kafka_->add_option("--producers", kafka_options_.producers, "Producer instances in parallel")
      ->capture_default_str();
  kafka_->add_option("--partitions", kafka_options_.partitions, "Partitions of each topic")
      ->capture_default_str();
  kafka_
      ->add_option("--idempotence", kafka_options_.idempotence,
                   "The producers' enable.idempotence: true (Kafka's default since 3.0; at most 5 "
                   "requests in flight per partition) or false (librdkafka's default)")
      ->default_str("true");
  kafka_
      ->add_option("--paced-rate", kafka_options_.paced_rate,
                   "Messages/s of the unsaturated end-to-end latency run")
      ->capture_default_str();
  kafka_->add_option("--latency-seconds", kafka_options_.latency_seconds, "Its length")
      ->capture_default_str();
  kafka_->add_option("--depot", kafka_options_.depot_binary, "The depot binary to measure")
      ->default_str("this one");
}

int BenchCommand::run() const {
  if (amqp_->parsed()) return bench::run_amqp_bench(amqp_options_);
  if (kafka_->parsed()) return bench::run_kafka_bench(kafka_options_);
  if (jobs_->parsed()) return bench::run_jobs_bench(jobs_options_);
  if (iteration_->parsed()) return bench::run_iteration_bench(iteration_options_);
  return bench::run_storage_bench(storage_options_);
}

}  // namespace depot::cli
