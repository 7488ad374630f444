#pragma once
// `depot bench storage` (the storage engine against its disk), `depot bench jobs` (the job face
// against beanstalkd and Redis, and libdepot's worker against the raw protocol) and
// `depot bench iteration` (libdepot's iteration jobs against a plain loop) and `depot bench amqp`
// (the AMQP face against rabbitmq-server).
#include <CLI/App.hpp>

#include "bench/amqp_bench.h"
#include "bench/iteration_bench.h"
#include "bench/jobs_bench.h"
#include "bench/kafka_bench.h"
#include "bench/storage_bench.h"

namespace depot::cli {

class BenchCommand {
 public:
  explicit BenchCommand(CLI::App& parent);
  // CLI11 keeps pointers into options_.
  BenchCommand(const BenchCommand&) = delete;
  BenchCommand& operator=(const BenchCommand&) = delete;

  bool parsed() const {
    return storage_->parsed() || jobs_->parsed() || iteration_->parsed() || amqp_->parsed() ||
           kafka_->parsed();
  }
  int run() const;

 private:
  CLI::App* storage_;
  CLI::App* jobs_;
  CLI::App* iteration_;
  CLI::App* amqp_;
  CLI::App* kafka_;
  bench::StorageBenchOptions storage_options_;
  bench::JobsBenchOptions jobs_options_;
  bench::IterationBenchOptions iteration_options_;
  bench::AmqpBenchOptions amqp_options_;
  bench::KafkaBenchOptions kafka_options_;
};

}  // namespace depot::cli
