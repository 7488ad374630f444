#pragma once
// `depot bench storage`: the storage engine against the disk it runs on (bench/storage_bench.h).
#include <CLI/App.hpp>

#include "bench/storage_bench.h"

namespace depot::cli {

class BenchCommand {
 public:
  explicit BenchCommand(CLI::App& parent);
  // CLI11 keeps pointers into options_.
  BenchCommand(const BenchCommand&) = delete;
  BenchCommand& operator=(const BenchCommand&) = delete;

  bool parsed() const { return storage_->parsed(); }
  int run() const;

 private:
  CLI::App* storage_;
  bench::StorageBenchOptions options_;
};

}  // namespace depot::cli
