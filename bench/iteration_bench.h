#pragma once
// `depot bench iteration`: what libdepot's iteration framework costs per item (the enumerator,
// the cursor kept after each item, a checkpoint to depot every N items) against a plain loop
// doing the same work over the same items, in one run (BENCHMARKS.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace depot::bench {

struct IterationBenchOptions {
  std::filesystem::path dir = "build/bench-data/iteration";  // depot's data; emptied first
  std::filesystem::path depot_binary;                        // default: this `depot`
  int64_t items = 100000;
  std::vector<double> item_work_us = {1, 10, 100};  // CPU work per item in each measurement
  int64_t checkpoint_items = 100;
  std::vector<std::string> fsync = {"always", "never"};  // depot's fsync policy per measurement
};

int run_iteration_bench(const IterationBenchOptions& options);

}  // namespace depot::bench
