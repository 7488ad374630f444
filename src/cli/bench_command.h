#pragma once
// `depot bench storage` (the storage engine against its disk) and `depot bench jobs` (the job
// face against beanstalkd and Redis).
#include <CLI/App.hpp>

#include "bench/jobs_bench.h"
#include "bench/storage_bench.h"

namespace depot::cli {

class BenchCommand {
 public:
  explicit BenchCommand(CLI::App& parent);
  // CLI11 keeps pointers into options_.
  BenchCommand(const BenchCommand&) = delete;
  BenchCommand& operator=(const BenchCommand&) = delete;

  bool parsed() const { return storage_->parsed() || jobs_->parsed(); }
  int run() const;

 private:
  CLI::App* storage_;
  CLI::App* jobs_;
  bench::StorageBenchOptions storage_options_;
  bench::JobsBenchOptions jobs_options_;
};

}  // namespace depot::cli
