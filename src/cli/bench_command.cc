#include "cli/bench_command.h"

#include <iostream>

#include <CLI/CLI.hpp>

namespace depot::cli {

BenchCommand::BenchCommand(CLI::App& parent) {
  CLI::App* bench = parent.add_subcommand("bench", "Measure depot on this machine");
  bench->require_subcommand(1);
  storage_ = bench->add_subcommand(
      "storage", "Storage engine throughput and group-commit latency against the disk of --dir");
  storage_->add_option("--dir", options_.dir, "Directory on the disk to measure; emptied first")
      ->capture_default_str();
  storage_->add_option("--total-bytes", options_.total_bytes, "Bytes written per throughput run")
      ->capture_default_str();
  storage_->add_option("--record-bytes", options_.record_bytes, "Bytes per record")
      ->capture_default_str();
  storage_->add_option("--batch-bytes", options_.batch_bytes, "Bytes per record batch")
      ->capture_default_str();
  storage_->add_option("--appenders", options_.appenders, "Concurrent appender counts to compare")
      ->capture_default_str()
      ->delimiter(',');
  storage_
      ->add_option("--seconds", options_.seconds_per_rate_test,
                   "Duration of each appends/s comparison")
      ->capture_default_str();
}

int BenchCommand::run() const {
  return bench::run_storage_bench(options_);
}

}  // namespace depot::cli
