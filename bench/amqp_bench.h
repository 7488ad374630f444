#pragma once
// `depot bench amqp`: depot's AMQP face against rabbitmq-server, both driven by one load
// generator written against librabbitmq (rabbitmq-c), on this machine, in one run
// (BENCHMARKS.md).
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace depot::bench {

struct AmqpBenchOptions {
  std::filesystem::path dir = "build/bench-data/amqp";  // servers' data; emptied first
  std::filesystem::path depot_binary;                   // the `depot` to spawn (default: this one)
  // null: no broker, the publishers alone (their rate when the peer does no work)
  std::vector<std::string> targets = {"depot", "rabbitmq", "null"};
  std::vector<size_t> sizes = {100, 4096};  // message body bytes
  // transient (no confirms), confirms (transient, confirmed in batches), persistent (durable
  // queue, delivery_mode 2, confirmed in batches)
  std::vector<std::string> modes = {"transient", "confirms", "persistent"};
  std::vector<unsigned> queue_counts = {1, 8};  // one publisher and one consumer per queue
  double seconds = 4.0;                         // measured, after the warm-up
  double warmup_seconds = 1.0;
  unsigned confirm_batch = 100;  // publishes between waits for their confirms
  unsigned prefetch = 1000;      // consumers' basic.qos
  // Publishers wait while this many of their messages are published and not yet delivered, so
  // that latency measures the broker rather than an ever-growing queue.
  size_t max_in_flight = 20000;
  // Every target measures every case once per round; rounds alternate the targets, so that a
  // slow spell of this machine falls on both rather than on whichever ran then.
  unsigned rounds = 1;
};

int run_amqp_bench(const AmqpBenchOptions& options);

}  // namespace depot::bench
