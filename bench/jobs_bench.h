#pragma once
// `depot bench jobs`: depot's Faktory face against beanstalkd and a Redis list queue, on this
// machine, in one run (BENCHMARKS.md).
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace depot::bench {

struct JobsBenchOptions {
  std::filesystem::path dir = "build/bench-data/jobs";  // servers' data; emptied first
  std::filesystem::path depot_binary;                   // the `depot` to spawn (default: this one)
  // The systems to measure, in order: depot-always, depot-never, beanstalkd, beanstalkd-binlog,
  // redis; and libdepot-always, libdepot-never (depot, with jobs run by libdepot's Worker).
  std::vector<std::string> targets = {"depot-always", "depot-never", "beanstalkd",
                                      "beanstalkd-binlog", "redis"};
  std::vector<std::string> clients = {"2+2", "32+32"};  // producers+workers per measurement
  double seconds = 5.0;                                 // measured, after the warm-up
  double warmup_seconds = 1.0;                          // run but not measured
  size_t job_bytes = 200;                               // size of each job's JSON
  size_t backlog = 1000;      // producers wait while this many jobs are pushed but not taken
  unsigned paced_rate = 500;  // jobs/s of the unsaturated latency run (1+1); 0 skips it
  // Instead of the comparison: push this many jobs into one depot, report its RSS per waiting
  // job, restart it and report the replay time and RSS again. 0 runs the comparison.
  size_t memory_jobs = 0;
};

// Runs every measurement with a progress line each second, then prints a table and the ratios the
// goals are stated in (or, with memory_jobs, the memory measurement); returns an exit code.
int run_jobs_bench(const JobsBenchOptions& options);

}  // namespace depot::bench
