#pragma once
// `depot bench kafka`: depot's Kafka face driven by librdkafka producers and consumers, next to
// the disk's own fsynced write rate and the storage engine's append rate, measured in the same
// run (BENCHMARKS.md).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace depot::bench {

struct KafkaBenchOptions {
  std::filesystem::path dir = "build/bench-data/kafka";  // depot's data; emptied first
  std::filesystem::path depot_binary;                    // the `depot` to spawn (default: this one)
  std::vector<size_t> sizes = {100, 1024};               // message value bytes
  uint64_t produce_bytes = 512ull << 20;                 // value bytes produced per size
  unsigned producers = 4;  // producer instances (connections), acks=all, in parallel
  // Their enable.idempotence: Kafka's producers default to it since 3.0, librdkafka's do not. An
  // idempotent producer keeps at most 5 requests in flight per partition.
  bool idempotence = true;
  unsigned partitions = 4;     // of each measured topic
  double paced_rate = 1000;    // messages/s of the unsaturated end-to-end latency run
  double latency_seconds = 5;  // its length
};

int run_kafka_bench(const KafkaBenchOptions& options);

}  // namespace depot::bench
