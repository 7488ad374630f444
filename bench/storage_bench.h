#pragma once
// `depot bench storage`: the storage engine against the disk it runs on (BENCHMARKS.md).
#include <cstdint>
#include <filesystem>
#include <vector>

namespace depot::bench {

struct StorageBenchOptions {
  std::filesystem::path dir = "build/bench-data";  // on the disk to measure; emptied first
  uint64_t total_bytes = 256ull << 20;             // bytes written per throughput measurement
  uint32_t record_bytes = 1024;
  uint32_t batch_bytes = 64 * 1024;
  std::vector<unsigned> appenders = {1, 8, 64};
  double seconds_per_rate_test = 3.0;  // duration of the appends/s comparisons
};

// Runs every measurement, prints a progress line per step and a summary table; returns an exit
// code.
int run_storage_bench(const StorageBenchOptions& options);

}  // namespace depot::bench
