#pragma once
// `depot bench storage`: the storage engine against the disk it runs on (BENCHMARKS.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bytes.h"

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

// The measurements the Kafka bench repeats next to its own (same run, same disk).
void progress(const std::string& line);
// One uncompressed RecordBatch of `record_bytes` records, about `batch_bytes` long.
Bytes make_batch(uint32_t record_bytes, uint32_t batch_bytes);
// Bytes/s of pwrite+fdatasync of `total` bytes in `chunk`-sized pieces (the file is removed).
double raw_write_fsync(const std::filesystem::path& file, size_t chunk, uint64_t total);
double raw_appends_per_second(const std::filesystem::path& file, size_t size, double seconds);
// Latency of `size`-byte pwrite+fdatasync appends paced at `rate` a second for `seconds`, into
// space allocated ahead (as the log's active segment): nanoseconds from when each was due.
std::vector<int64_t> raw_append_latencies(const std::filesystem::path& file, size_t size,
                                          double rate, double seconds);
struct AppendRun {
  double bytes_per_second = 0;
  double appends_per_second = 0;
};
// `appenders` appends of `batch` kept in flight through a storage Log at fsync=always, until
// `total` bytes or, with total 0, for `seconds`.
AppendRun log_appends(const std::filesystem::path& dir, const Bytes& batch, unsigned appenders,
                      uint64_t total, double seconds);
// Bytes/s of reading a whole log sequentially, 1 MiB per read (second pass: page cache).
double log_reads(const std::filesystem::path& dir);
// sync() and a pause, so that a measurement starts from a quiet disk.
void settle();
std::string gbps(double bytes_per_second);

}  // namespace depot::bench
