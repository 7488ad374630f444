// `depot bench kafka`, in four steps per message size:
//   (a) the disk: pwrite+fdatasync of the same number of bytes in 1 MiB chunks, and the storage
//       engine appending 1 MiB batches of such messages at fsync=always (8 appenders);
//   (b) produce: librdkafka producers, acks=all, into a fresh depot at --fsync always, then into
//       a null broker that answers at once and keeps nothing (what the clients reach); and bare
//       Produce requests of prebuilt 1 MiB batches, 8 in flight on one connection, for what the
//       broker itself takes when the clients' own work is not in the way;
//   (c) consume: one librdkafka consumer reading it all back from the page cache, and a bare
//       Fetch loop (no record decoding, one request at a time) for what the broker itself serves;
//   (d) end-to-end latency at a modest paced rate (not saturated): producer linger 0, a consumer
//       waiting in a long poll; each value carries its send time. Librdkafka and bare clients,
//       at --fsync always and never, next to the disk's fdatasync and a plain loopback relay at
//       the same pace (the floors the machine sets). Last, the librdkafka producers again, into
//       the depot at --fsync never: the rate the clients themselves allow on this machine.
#include "bench/kafka_bench.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <librdkafka/rdkafkacpp.h>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <sys/sendfile.h>
#include <thread>

#include <fmt/format.h>

#include "bench/blocking_socket.h"
#include "bench/measure.h"
#include "bench/server_process.h"
#include "bench/storage_bench.h"
#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"
#include "storage/record_batch.h"

namespace depot::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::unique_ptr<RdKafka::Conf> config(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  for (const auto& [key, value] : kv) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      fail(fmt::format("librdkafka setting {}={}: {}", key, value, error));
    }
  }
  return conf;
}

class DeliveryCounter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      failed.fetch_add(1);
      if (first_error.empty()) first_error = message.errstr();
    }
    delivered.fetch_add(1);
  }
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> failed{0};
  std::string first_error;
};

std::unique_ptr<RdKafka::Producer> make_producer(const std::string& brokers, DeliveryCounter& dr,
                                                 const std::string& linger_ms, bool idempotence) {
  auto conf = config({{"bootstrap.servers", brokers},
                      {"acks", "all"},
                      {"enable.idempotence", idempotence ? "true" : "false"},
                      {"linger.ms", linger_ms},
                      {"batch.size", "1000000"},
                      {"queue.buffering.max.messages", "2000000"},
                      {"queue.buffering.max.kbytes", "1048576"},
                      {"compression.codec", "none"},
                      {"socket.nagle.disable", "true"}});
  std::string error;
  if (conf->set("dr_cb", &dr, error) != RdKafka::Conf::CONF_OK) fail(error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (!producer) fail("cannot create a producer: " + error);
  return producer;
}

void produce_one(RdKafka::Producer& producer, const std::string& topic, std::string& value,
                 int32_t partition = RdKafka::Topic::PARTITION_UA) {
  for (;;) {
    const auto err = producer.produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                                      value.data(), value.size(), nullptr, 0, 0, nullptr);
    if (err == RdKafka::ERR_NO_ERROR) return;
    if (err != RdKafka::ERR__QUEUE_FULL) fail("produce failed: " + RdKafka::err2str(err));
    producer.poll(1);
  }
}

std::unique_ptr<RdKafka::KafkaConsumer> make_consumer(const std::string& brokers,
                                                      const std::string& topic, unsigned partitions,
                                                      const std::string& wait_ms) {
  auto conf = config({{"bootstrap.servers", brokers},
                      {"group.id", "depot-bench"},
                      {"enable.auto.commit", "false"},
                      {"fetch.wait.max.ms", wait_ms},
                      {"fetch.max.bytes", "52428800"},
                      {"max.partition.fetch.bytes", "8388608"},
                      {"queued.max.messages.kbytes", "1048576"},
                      {"socket.nagle.disable", "true"}});
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) fail("cannot create a consumer: " + error);
  std::vector<RdKafka::TopicPartition*> assignment;
  for (unsigned p = 0; p < partitions; ++p)
    assignment.push_back(RdKafka::TopicPartition::create(topic, static_cast<int>(p), 0));
  const auto err = consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (err != RdKafka::ERR_NO_ERROR) fail("assign failed: " + RdKafka::err2str(err));
  return consumer;
}

struct SizeResult {
  size_t size = 0;
  double raw_bytes_per_second = 0;
  double log_bytes_per_second = 0;
  double produce_bytes_per_second = 0;
  double produce_messages_per_second = 0;
  double produce_never_messages_per_second = 0;  // the same producers, --fsync never
  double produce_null_messages_per_second = 0;   // the same producers, into the null broker
  double consume_bytes_per_second = 0;
  double consume_messages_per_second = 0;
  double fetch_bytes_per_second = 0;
  double loopback_bytes_per_second = 0;  // the reference for it
  double bare_produce_bytes_per_second = 0;
  double latency_rate = 0;
  Percentiles raw_sync;     // pwrite+fdatasync of one record's batch at that rate
  Percentiles e2e_always;   // produce to consume, --fsync always
  Percentiles bare_always;  // the same with bare Produce and Fetch requests
  Percentiles e2e_never;    // the same with --fsync never (Kafka's default: the OS writes back)
  Percentiles bare_never;   // bare Produce and Fetch, --fsync never
  Percentiles relay;        // the machine's floor: a relay thread between two loopback sockets
};

// Calls each(header, batch) for every whole batch at the front of a record set (a fetched one may
// end with part of a batch, which is left out).
template <class Each>
void for_each_batch(ByteSpan records, Each&& each) {
  while (records.size() >= storage::kBatchHeaderSize) {
    auto header = storage::parse_batch_header(records);
    if (!header || header.value().size_bytes() > records.size()) return;
    each(header.value(), records.first(header.value().size_bytes()));
    records = records.subspan(header.value().size_bytes());
  }
}

// No broker at all, for the producers' reference: it answers ApiVersions, Metadata (itself the
// leader of `partitions` partitions of every topic asked for), InitProducerId and Produce, each at
// once. ApiVersions lists all that depot advertises, as clients choose their wire formats from it
// (librdkafka writes RecordBatch v2 only to a broker that also lists Fetch v4). Record sets are
// neither checked nor kept; only their record counts advance the offsets. One thread per
// connection, blocking I/O; any other request closes the connection.
class NullKafkaBroker {
 public:
  explicit NullKafkaBroker(unsigned partitions)
      : partitions_(static_cast<int32_t>(partitions)), server_(0, [this](int fd) { serve(fd); }) {
    if (!server_.ok()) fail("the null Kafka broker cannot listen");
  }
  uint16_t port() const { return server_.port(); }

 private:
  void serve(int fd) {
    Bytes in(1 << 20);
    size_t have = 0;
    Bytes out;
    for (;;) {
      const ssize_t n = ::recv(fd, in.data() + have, in.size() - have, 0);
      if (n <= 0) return;
      have += static_cast<size_t>(n);
      size_t at = 0;
      while (have - at >= 4) {
        const int32_t declared = load_be<int32_t>(in.data() + at);
        if (declared < 0 || declared > (256 << 20)) return;  // not a request of any client's
        const auto size = static_cast<size_t>(declared);
        if (have - at - 4 < size) {
          if (4 + size > in.size()) in.resize(std::max(4 + size, 2 * in.size()));
          break;
        }
        if (!answer(ByteSpan(in.data() + at + 4, size), out)) return;
        at += 4 + size;
      }
      std::memmove(in.data(), in.data() + at, have - at);
      have -= at;
      if (!out.empty() && !send_all(fd, out.data(), out.size())) return;
      out.clear();
    }
  }

  // Appends the answer to one request (none for Produce with acks=0); false closes.
  bool answer(ByteSpan frame, Bytes& out) {
    const auto parsed = kafka::parse_request(frame);
    if (!parsed) return false;
    const kafka::RequestHeader& h = parsed->header;
    const bool flexible = kafka::is_flexible(h.api_key, h.api_version);
    Bytes body;
    switch (static_cast<kafka::ApiKey>(h.api_key)) {
      case kafka::ApiKey::api_versions: {
        kafka::ApiVersionsResponse response;
        const std::span<const kafka::ApiVersionRange> served = kafka::advertised_api_versions();
        response.api_keys.assign(served.begin(), served.end());
        kafka::encode(response, h.api_version, flexible, body);
        break;
      }
      case kafka::ApiKey::metadata: {
        auto request = kafka::decode<kafka::MetadataRequest>(parsed->body, h.api_version, flexible);
        if (!request) return false;
        kafka::MetadataResponse response;
        response.brokers.push_back({0, "127.0.0.1", port(), std::nullopt});
        response.cluster_id = "null";
        response.controller_id = 0;
        // Every topic (a null list) is none here: the null broker keeps no topics.
        if (!request->topics) request->topics.emplace();
        for (const kafka::MetadataRequestTopic& asked : *request->topics) {
          kafka::MetadataTopic& topic = response.topics.emplace_back();
          topic.name = asked.name;
          for (int32_t p = 0; p < partitions_; ++p)
            topic.partitions.push_back({0, p, 0, 0, {0}, {0}, {}});
        }
        kafka::encode(response, h.api_version, flexible, body);
        break;
      }
      case kafka::ApiKey::init_producer_id: {
        kafka::InitProducerIdResponse response;
        response.producer_id = next_producer_id_.fetch_add(1);
        response.producer_epoch = 0;
        kafka::encode(response, h.api_version, flexible, body);
        break;
      }
      case kafka::ApiKey::produce: {
        auto request = kafka::decode<kafka::ProduceRequest>(parsed->body, h.api_version, flexible);
        if (!request) return false;
        if (request->acks == 0) return true;
        kafka::ProduceResponse response;
        std::lock_guard lock(offsets_mutex_);
        for (const kafka::ProduceTopic& topic : request->topics) {
          kafka::ProduceTopicResponse& t = response.topics.emplace_back();
          t.name = topic.name;
          for (const kafka::ProducePartition& partition : topic.partitions) {
            int64_t& next = next_offsets_[{topic.name, partition.index}];
            t.partitions.push_back({partition.index, 0, next, -1, 0, {}, std::nullopt});
            if (partition.records) next += record_count(*partition.records);
          }
        }
        kafka::encode(response, h.api_version, flexible, body);
        break;
      }
      default:
        return false;
    }
    kafka::append_response(out, h, body);
    return true;
  }

  static int64_t record_count(ByteSpan records) {
    int64_t count = 0;
    for_each_batch(records, [&](const storage::BatchHeader& header, ByteSpan /*batch*/) {
      count += header.record_count;
    });
    return count;
  }

  const int32_t partitions_;
  std::atomic<int64_t> next_producer_id_{1000};
  std::mutex offsets_mutex_;
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets_;
  ThreadPerConnectionServer server_;  // last: its threads use the members above
};

// (b): `producers` threads, each its own producer, share `messages` messages of `size` bytes;
// returns the messages delivered per second.
double produce(const std::string& brokers, const std::string& topic, size_t size, uint64_t messages,
               const KafkaBenchOptions& options) {
  const unsigned producers = options.producers;
  std::vector<std::unique_ptr<DeliveryCounter>> counters;
  std::vector<std::unique_ptr<RdKafka::Producer>> instances;
  for (unsigned i = 0; i < producers; ++i) {
    counters.push_back(std::make_unique<DeliveryCounter>());
    instances.push_back(make_producer(brokers, *counters.back(), "5", options.idempotence));
  }
  // One message each first (metadata, the topic's creation, producer ids), so that the clock
  // measures the data path only.
  std::string first(size, 'f');
  for (auto& producer : instances) {
    produce_one(*producer, topic, first);
    if (producer->flush(10000) != RdKafka::ERR_NO_ERROR) fail("the first message timed out");
  }
  for (auto& c : counters)
    c->delivered = 0;
  StopFlag stop;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < producers; ++i) {
    threads.emplace_back([&, i] {
      stop.run([&] {
        std::string value(size, 'v');
        const uint64_t share = messages / producers;
        for (uint64_t n = 0; n < share && !stop.stopped(); ++n) {
          produce_one(*instances[i], topic, value);
          if ((n & 1023) == 0) instances[i]->poll(0);
        }
        if (instances[i]->flush(120000) != RdKafka::ERR_NO_ERROR) fail("flush timed out");
      });
    });
  }
  for (auto& t : threads)
    t.join();
  const double secs = seconds_since(start);
  if (!stop.error().empty()) fail(stop.error());
  uint64_t delivered = 0;
  for (auto& c : counters) {
    if (c->failed > 0) fail("deliveries failed: " + c->first_error);
    delivered += c->delivered;
  }
  return static_cast<double>(delivered) / secs;
}

// (c): one consumer reads `messages` back from offset 0 of every partition.
void consume(const std::string& brokers, const std::string& topic, size_t size, uint64_t messages,
             unsigned partitions, SizeResult& result) {
  auto consumer = make_consumer(brokers, topic, partitions, "100");
  uint64_t got = 0;
  Clock::time_point start{};
  const auto deadline = Clock::now() + std::chrono::minutes(5);
  while (got < messages && Clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
    if (message->err() == RdKafka::ERR_NO_ERROR) {
      if (got == 0) start = Clock::now();
      ++got;
    } else if (message->err() != RdKafka::ERR__TIMED_OUT &&
               message->err() != RdKafka::ERR__PARTITION_EOF) {
      fail("consume failed: " + message->errstr());
    }
  }
  const double secs = seconds_since(start);
  consumer->close();
  if (got < messages) fail(fmt::format("consumed {} of {} messages", got, messages));
  result.consume_messages_per_second = static_cast<double>(got) / secs;
  result.consume_bytes_per_second = result.consume_messages_per_second * static_cast<double>(size);
}

// A request frame: size, header v1 (client id "bench"), body.
std::string request_frame(int16_t api_key, int16_t version, int32_t correlation,
                          const Bytes& body) {
  constexpr std::string_view kClient = "bench";
  Bytes frame;
  ByteWriter w(frame);
  w.write_be<int32_t>(static_cast<int32_t>(10 + kClient.size() + body.size()));
  w.write_be<int16_t>(api_key);
  w.write_be<int16_t>(version);
  w.write_be<int32_t>(correlation);
  w.write_be<int16_t>(static_cast<int16_t>(kClient.size()));
  w.write_bytes(as_bytes(kClient));
  w.write_bytes(body);
  return {reinterpret_cast<const char*>(frame.data()), frame.size()};
}

// A response's bytes after its size; fails when the connection is lost.
Bytes read_response(BlockingSocket& socket) {
  char size_bytes[4];
  if (!socket.read_exactly(size_bytes, 4)) fail("the bare client lost its connection");
  const auto size = static_cast<size_t>(load_be<int32_t>(reinterpret_cast<std::byte*>(size_bytes)));
  Bytes response(size);
  if (!socket.read_exactly(reinterpret_cast<char*>(response.data()), size)) {
    fail("the bare client lost its connection");
  }
  return response;
}

// (b): Produce v7 requests, acks=-1, each one prebuilt batch of about 1 MiB of `size`-byte
// records for the next partition in turn, `in_flight` pipelined on one connection, until
// `total` bytes of batches are durable.
void bare_produce(uint16_t port, const std::string& topic, size_t size, unsigned partitions,
                  uint64_t total, unsigned in_flight, SizeResult& result) {
  BlockingSocket socket(port, std::chrono::seconds(30));
  if (!socket.ok()) fail("cannot connect for the bare produce");
  const Bytes batch = make_batch(static_cast<uint32_t>(size), 1 << 20);
  std::vector<std::string> requests;
  for (unsigned p = 0; p < partitions; ++p) {
    kafka::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 30000;
    kafka::ProduceTopic& t = request.topics.emplace_back();
    t.name = topic;
    t.partitions.push_back({static_cast<int32_t>(p), ByteSpan(batch)});
    Bytes body;
    kafka::encode(request, 7, false, body);
    requests.push_back(request_frame(0, 7, static_cast<int32_t>(p), body));
  }
  const uint64_t count = std::max<uint64_t>(1, total / batch.size());
  uint64_t sent = 0;
  uint64_t answered = 0;
  const auto start = Clock::now();
  while (answered < count) {
    while (sent < count && sent - answered < in_flight) {
      socket.send(requests[sent % partitions]);
      ++sent;
    }
    auto response =
        kafka::decode<kafka::ProduceResponse>(ByteSpan(read_response(socket)).subspan(4), 7, false);
    if (!response || response->topics.empty() || response->topics[0].partitions.empty()) {
      fail("a produce response did not decode");
    }
    if (const int16_t error = response->topics[0].partitions[0].error_code; error != 0) {
      fail(fmt::format("bare produce error {}", error));
    }
    ++answered;
  }
  result.bare_produce_bytes_per_second =
      static_cast<double>(answered * batch.size()) / seconds_since(start);
}

constexpr size_t kFetchMaxBytes = 64 << 20;

// A partition of a Fetch v4 response: its index, error, high watermark and record set.
struct FetchedPartition {
  size_t index = 0;
  int16_t error = 0;
  int64_t high_watermark = 0;
  ByteSpan records;
};

// Sends one Fetch v4 for `offsets` (partition -> offset) of `topic` and walks the response,
// received into `response` (reused across calls, as a consumer's buffer), without copying it.
void fetch_once(BlockingSocket& socket, const std::string& topic,
                const std::vector<std::pair<int32_t, int64_t>>& offsets, int32_t max_wait_ms,
                int32_t correlation, Bytes& response,
                const std::function<void(const FetchedPartition&)>& each) {
  kafka::FetchRequest request;
  request.max_wait_ms = max_wait_ms;
  request.min_bytes = 1;
  request.max_bytes = kFetchMaxBytes;
  kafka::FetchTopic& t = request.topics.emplace_back();
  t.topic = topic;
  for (const auto& [partition, offset] : offsets)
    t.partitions.push_back({partition, -1, offset, -1, -1, 16 << 20});
  Bytes body;
  kafka::encode(request, 4, false, body);
  socket.send(request_frame(1, 4, correlation, body));
  char size_bytes[4];
  if (!socket.read_exactly(size_bytes, 4)) fail("the bare client lost its connection");
  const auto size = static_cast<size_t>(load_be<int32_t>(reinterpret_cast<std::byte*>(size_bytes)));
  if (response.size() < size) response.resize(size);
  if (!socket.read_exactly(reinterpret_cast<char*>(response.data()), size)) {
    fail("the bare client lost its connection");
  }
  // FetchResponse v4 after the correlation id: throttle, [topic [partition error high_watermark
  // last_stable aborted[] records]].
  ByteReader in(ByteSpan(response).first(size).subspan(8));
  for (auto topics = in.read_be<int32_t>(); in.ok() && topics > 0; --topics) {
    in.read_bytes(static_cast<size_t>(std::max<int16_t>(in.read_be<int16_t>(), 0)));
    for (auto count = in.read_be<int32_t>(); in.ok() && count > 0; --count) {
      FetchedPartition p;
      p.index = static_cast<size_t>(in.read_be<int32_t>());
      p.error = in.read_be<int16_t>();
      p.high_watermark = in.read_be<int64_t>();
      in.read_be<int64_t>();
      const int32_t aborted = in.read_be<int32_t>();
      in.read_bytes(static_cast<size_t>(std::max(aborted, 0)) * 16);
      p.records = in.read_bytes(static_cast<size_t>(std::max(in.read_be<int32_t>(), 0)));
      if (!in.ok()) fail("a fetch response did not decode");
      if (p.error != 0) fail(fmt::format("fetch error {}", p.error));
      each(p);
    }
  }
  if (!in.ok()) fail("a fetch response did not decode");
}

// (c): Fetch v4 requests, one at a time, for every partition from offset 0 to its end; the
// record sets are counted (batch headers walked), not decoded. Bytes/s of record sets served.
void raw_fetch(uint16_t port, const std::string& topic, unsigned partitions, SizeResult& result) {
  BlockingSocket socket(port, std::chrono::seconds(30));
  if (!socket.ok()) fail("cannot connect for the bare fetch");
  std::vector<int64_t> next(partitions, 0);
  std::vector<bool> done(partitions, false);
  uint64_t bytes = 0;
  Bytes response;
  const auto start = Clock::now();
  for (int32_t correlation = 0; std::find(done.begin(), done.end(), false) != done.end();
       ++correlation) {
    std::vector<std::pair<int32_t, int64_t>> offsets;
    for (unsigned p = 0; p < partitions; ++p) {
      if (!done[p]) offsets.emplace_back(static_cast<int32_t>(p), next[p]);
    }
    fetch_once(socket, topic, offsets, 0, correlation, response, [&](const FetchedPartition& p) {
      if (p.index >= partitions) fail("a fetch response names an unknown partition");
      bytes += p.records.size();
      for_each_batch(p.records, [&](const storage::BatchHeader& header, ByteSpan /*batch*/) {
        next[p.index] = header.last_offset() + 1;
      });
      if (next[p.index] >= p.high_watermark) done[p.index] = true;
    });
  }
  result.fetch_bytes_per_second = static_cast<double>(bytes) / seconds_since(start);
}

// (d) bare: end-to-end latency with no client library's threads and queues in the way. One
// connection sends Produce v7 requests (acks=0) of one record each, paced at `rate`, each value
// carrying its send time; another long-polls Fetch v4 (max_wait 500 ms) on the same partition.
// Latency is from the send to the arrival of the Fetch response that carries the record.
Percentiles bare_latency(uint16_t port, const std::string& topic, size_t size, double rate,
                         double seconds) {
  BlockingSocket producer(port, std::chrono::seconds(30));
  BlockingSocket consumer(port, std::chrono::seconds(30));
  if (!producer.ok() || !consumer.ok()) fail("cannot connect for the bare latency run");
  auto produce_value = [&](int64_t sent_at, int32_t correlation) {
    std::string value(std::max<size_t>(size, 8), 'b');
    std::memcpy(value.data(), &sent_at, 8);
    storage::RecordBatchBuilder builder;
    builder.add(std::nullopt, as_bytes(value), sent_at / 1'000'000);
    const Bytes batch = builder.build();
    Bytes body;
    ByteWriter w(body);
    w.write_be<int16_t>(-1);  // transactional id: null
    w.write_be<int16_t>(0);   // acks
    w.write_be<int32_t>(5000);
    w.write_be<int32_t>(1);
    w.write_be<int16_t>(static_cast<int16_t>(topic.size()));
    w.write_bytes(as_bytes(topic));
    w.write_be<int32_t>(1);
    w.write_be<int32_t>(0);
    w.write_be<int32_t>(static_cast<int32_t>(batch.size()));
    w.write_bytes(batch);
    if (!producer.send(request_frame(0, 7, correlation, body))) fail("the bare producer failed");
  };
  // Metadata for the topic creates it (as for any client); reading the first record back tells
  // the consumer where to wait.
  {
    Bytes body;
    ByteWriter w(body);
    w.write_be<int32_t>(1);
    w.write_be<int16_t>(static_cast<int16_t>(topic.size()));
    w.write_bytes(as_bytes(topic));
    consumer.send(request_frame(3, 1, 0, body));
    read_response(consumer);
  }
  produce_value(now_nanos(), 0);
  int64_t next = 0;
  Bytes response;
  int32_t correlation = 0;
  std::vector<int64_t> samples;
  auto take = [&](const FetchedPartition& p, bool sample) {
    for_each_batch(p.records, [&](const storage::BatchHeader& header, ByteSpan batch) {
      auto records = storage::decode_records(batch);
      if (!records) fail("a fetched batch did not decode");
      for (const storage::RecordView& r : records.value()) {
        if (sample && r.value && r.value->size() >= 8) {
          int64_t sent_at = 0;
          std::memcpy(&sent_at, r.value->data(), 8);
          samples.push_back(now_nanos() - sent_at);
        }
      }
      next = header.last_offset() + 1;
    });
  };
  for (auto until = Clock::now() + std::chrono::seconds(10); next == 0 && Clock::now() < until;) {
    fetch_once(consumer, topic, {{0, 0}}, 500, ++correlation, response,
               [&](const FetchedPartition& p) { take(p, false); });
  }
  if (next == 0) fail("the bare latency consumer never saw its first record");
  const auto total = static_cast<uint64_t>(rate * seconds);
  samples.reserve(total);
  std::thread sender([&] {
    const auto start = Clock::now();
    for (uint64_t n = 0; n < total; ++n) {
      std::this_thread::sleep_until(paced_due(start, n, rate));
      produce_value(now_nanos(), static_cast<int32_t>(n + 1));
    }
  });
  for (auto until = Clock::now() + std::chrono::duration<double>(seconds + 10);
       samples.size() < total && Clock::now() < until;) {
    fetch_once(consumer, topic, {{0, next}}, 500, ++correlation, response,
               [&](const FetchedPartition& p) { take(p, true); });
  }
  sender.join();
  if (samples.size() < total) fail("the bare latency consumer missed records");
  return percentiles(samples);
}

// (c) reference: what loopback TCP carries here, the ceiling of any Fetch: `bytes` of a file in
// the page cache sent with sendfile to a reader that receives them into one reused buffer of
// `chunk` bytes, as the bare Fetch client receives its responses (of up to 64 MiB).
double loopback_sendfile(const std::filesystem::path& file, uint64_t bytes, size_t chunk) {
  {
    std::ofstream out(file, std::ios::binary);
    const std::string block(1 << 20, 'f');
    for (uint64_t at = 0; at < std::max<uint64_t>(bytes, chunk); at += block.size())
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  settle();  // the file's write-back would otherwise run during the measurement
  LoopbackListener listener;
  if (!listener.ok()) fail("cannot listen for the loopback reference");
  const uint64_t total = std::max<uint64_t>(1, bytes / chunk) * chunk;
  std::thread sender([&] {
    const int peer = listener.accept();
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    off_t offset = 0;
    while (peer >= 0 && fd >= 0 && static_cast<uint64_t>(offset) < total) {
      if (::sendfile(peer, fd, &offset, total - static_cast<uint64_t>(offset)) <= 0) break;
    }
    if (fd >= 0) ::close(fd);
    if (peer >= 0) ::close(peer);
  });
  BlockingSocket socket(listener.port(), std::chrono::seconds(30));
  std::vector<char> buffer(chunk);
  const auto start = Clock::now();
  uint64_t received = 0;
  while (received < total && socket.read_exactly(buffer.data(), buffer.size()))
    received += buffer.size();
  const double seconds = seconds_since(start);
  sender.join();
  std::filesystem::remove(file);
  if (received < total) fail("the loopback reference lost its connection");
  return static_cast<double>(total) / seconds;
}

// A latency step's result on the progress output.
void report(const Percentiles& latency) {
  progress(fmt::format("    p50 {:.2f} ms, p99 {:.2f} ms", latency.p50_ms, latency.p99_ms));
}

// (d) reference: what this machine's scheduler and loopback TCP alone cost a message on the
// path the bare clients take through depot at --fsync never: a sender thread paced at `rate`
// writes `size`-byte messages carrying their send time, a relay thread (depot's place) receives
// each and writes it on to a second connection, a receiver thread reads it. Three threads, two
// TCP hops, no work: the floor of any broker's end-to-end latency here.
Percentiles loopback_relay(size_t size, double rate, double seconds) {
  LoopbackListener listener;
  if (!listener.ok()) fail("cannot listen for the relay reference");
  const size_t message = std::max<size_t>(size, 8);
  BlockingSocket producer(listener.port(), std::chrono::seconds(30));
  const int inbound = listener.accept();
  BlockingSocket consumer(listener.port(), std::chrono::seconds(30));
  const int outbound = listener.accept();
  if (inbound < 0 || outbound < 0) {
    if (inbound >= 0) ::close(inbound);
    if (outbound >= 0) ::close(outbound);
    fail("the relay reference could not accept its connections");
  }
  std::thread relay([&] {
    std::vector<char> buffer(64 * 1024);
    for (;;) {
      const ssize_t n = ::recv(inbound, buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      if (!send_all(outbound, buffer.data(), static_cast<size_t>(n))) return;
    }
  });
  const auto total = static_cast<uint64_t>(rate * seconds);
  std::thread sender([&] {
    std::string value(message, 'r');
    const auto start = Clock::now();
    for (uint64_t n = 0; n < total && producer.ok(); ++n) {
      std::this_thread::sleep_until(paced_due(start, n, rate));
      const int64_t now = now_nanos();
      std::memcpy(value.data(), &now, 8);
      producer.send(value);
    }
  });
  std::vector<int64_t> samples;
  samples.reserve(total);
  std::vector<char> value(message);
  while (samples.size() < total && consumer.read_exactly(value.data(), value.size())) {
    int64_t sent_at = 0;
    std::memcpy(&sent_at, value.data(), 8);
    samples.push_back(now_nanos() - sent_at);
  }
  sender.join();
  ::shutdown(inbound, SHUT_RDWR);
  relay.join();
  ::close(inbound);
  ::close(outbound);
  if (samples.size() < total) fail("the relay reference lost its connection");
  return percentiles(samples);
}

// (d): paced producer (linger 0) and a consumer in a long poll on a one-partition topic.
Percentiles latency(const std::string& brokers, const std::string& topic, size_t size, double rate,
                    double seconds) {
  DeliveryCounter dr;
  auto producer = make_producer(brokers, dr, "0", /*idempotence=*/true);
  auto consumer = make_consumer(brokers, topic, 1, "500");
  // Create the topic and let the consumer reach it before the clock starts.
  {
    std::string value(std::max<size_t>(size, 8), 'w');
    produce_one(*producer, topic, value, 0);
    producer->flush(10000);
    for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
      std::unique_ptr<RdKafka::Message> m(consumer->consume(100));
      if (m->err() == RdKafka::ERR_NO_ERROR) break;
    }
  }
  const auto total = static_cast<uint64_t>(rate * seconds);
  std::vector<int64_t> samples;
  samples.reserve(total);
  std::atomic<bool> done{false};
  std::thread receiver([&] {
    while (samples.size() < total && !done) {
      std::unique_ptr<RdKafka::Message> m(consumer->consume(100));
      if (m->err() != RdKafka::ERR_NO_ERROR || m->len() < 8) continue;
      int64_t sent = 0;
      std::memcpy(&sent, m->payload(), 8);
      samples.push_back(now_nanos() - sent);
    }
  });
  std::string value(std::max<size_t>(size, 8), 'l');
  const auto start = Clock::now();
  for (uint64_t n = 0; n < total; ++n) {
    std::this_thread::sleep_until(paced_due(start, n, rate));
    const int64_t now = now_nanos();
    std::memcpy(value.data(), &now, 8);
    produce_one(*producer, topic, value, 0);
    producer->poll(0);
  }
  producer->flush(30000);
  for (auto until = Clock::now() + std::chrono::seconds(10);
       samples.size() < total && Clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  done = true;
  receiver.join();
  consumer->close();
  if (samples.size() < total / 2) fail("the latency consumer missed most messages");
  return percentiles(samples);
}

}  // namespace

int run_kafka_bench(const KafkaBenchOptions& options) {
  const std::filesystem::path work = options.dir / "depot-bench-kafka";
  std::vector<SizeResult> results;
  try {
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    const std::string depot = options.depot_binary.empty()
                                  ? std::filesystem::read_symlink("/proc/self/exe").string()
                                  : options.depot_binary.string();
    for (size_t size : options.sizes) {
      SizeResult& r = results.emplace_back();
      r.size = size;
      const uint64_t messages = options.produce_bytes / size;
      settle();
      progress(fmt::format("(a) {} B: raw pwrite+fdatasync, 1 MiB chunks, {} MiB", size,
                           options.produce_bytes >> 20));
      r.raw_bytes_per_second = raw_write_fsync(work / "raw.bin", 1 << 20, options.produce_bytes);
      progress(fmt::format("    {}", gbps(r.raw_bytes_per_second)));
      settle();
      progress(fmt::format("(a) {} B: storage log appends, 1 MiB batches, 8 appenders", size));
      const Bytes batch = make_batch(static_cast<uint32_t>(size), 1 << 20);
      r.log_bytes_per_second =
          log_appends(work / "log", batch, 8, options.produce_bytes, 0).bytes_per_second;
      std::filesystem::remove_all(work / "log");
      progress(fmt::format("    {}", gbps(r.log_bytes_per_second)));

      settle();
      const uint16_t port = free_loopback_port();
      const std::string brokers = fmt::format("127.0.0.1:{}", port);
      std::filesystem::remove_all(work / "depot");
      std::filesystem::create_directories(work / "depot");
      ServerProcess server(
          {depot, "serve", "--data-dir", (work / "depot" / "data").string(), "--kafka-listen",
           brokers, "--jobs-listen", "off", "--amqp-listen", "off", "--http-listen", "off",
           "--fsync", "always", "--kafka-partitions", std::to_string(options.partitions)},
          work / "depot" / "depot.log");
      server.wait_listening(port);
      const std::string topic = fmt::format("bench-{}", size);
      progress(fmt::format("(b) {} B: produce {} messages, {} producers, acks=all{}", size,
                           messages, options.producers,
                           options.idempotence ? ", idempotent" : ", not idempotent"));
      r.produce_messages_per_second = produce(brokers, topic, size, messages, options);
      r.produce_bytes_per_second = r.produce_messages_per_second * static_cast<double>(size);
      progress(fmt::format("    {:.0f} msg/s, {} ({:.0f}% of raw)", r.produce_messages_per_second,
                           gbps(r.produce_bytes_per_second),
                           100 * r.produce_bytes_per_second / r.raw_bytes_per_second));
      progress(
          fmt::format("(b) {} B: the same producers into a null broker (answers at once, "
                      "keeps nothing)",
                      size));
      {
        NullKafkaBroker null_broker(options.partitions);
        r.produce_null_messages_per_second = produce(
            fmt::format("127.0.0.1:{}", null_broker.port()), topic, size, messages, options);
      }
      progress(fmt::format("    {:.0f} msg/s (depot at always: {:.2f} of it)",
                           r.produce_null_messages_per_second,
                           r.produce_messages_per_second / r.produce_null_messages_per_second));
      progress(fmt::format("(c) {} B: consume them from the page cache", size));
      // What the producers' shares add up to, and their first messages.
      const uint64_t produced = messages - messages % options.producers + options.producers;
      consume(brokers, topic, size, produced, options.partitions, r);
      progress(fmt::format("    {:.0f} msg/s, {}", r.consume_messages_per_second,
                           gbps(r.consume_bytes_per_second)));
      progress(fmt::format("(c) {} B: bare Fetch requests for all of it", size));
      raw_fetch(port, topic, options.partitions, r);
      progress(fmt::format("    {} of record sets", gbps(r.fetch_bytes_per_second)));
      progress(fmt::format("(c) {} B: loopback TCP itself: sendfile of {} MiB to a reader", size,
                           options.produce_bytes >> 20));
      r.loopback_bytes_per_second =
          loopback_sendfile(work / "loopback.bin", options.produce_bytes, kFetchMaxBytes);
      progress(fmt::format("    {} (bare Fetch is {:.2f} of it)", gbps(r.loopback_bytes_per_second),
                           r.fetch_bytes_per_second / r.loopback_bytes_per_second));
      progress(fmt::format("(b) {} B: bare Produce, 1 MiB batches, 8 in flight (after the reads)",
                           size));
      bare_produce(port, topic, size, options.partitions, options.produce_bytes, 8, r);
      progress(fmt::format("    {} ({:.0f}% of raw)", gbps(r.bare_produce_bytes_per_second),
                           100 * r.bare_produce_bytes_per_second / r.raw_bytes_per_second));
      settle();  // the produced data's write-back would otherwise stall the fsyncs measured next
      // The physical part of what follows: one record's batch written and fdatasynced at the same
      // pace, from the same quiet start.
      const size_t record_batch = size + storage::kBatchHeaderSize + 20;
      progress(fmt::format("(d) {} B: raw pwrite+fdatasync of {} B at {:.0f}/s for {:.0f} s", size,
                           record_batch, options.paced_rate, options.latency_seconds));
      std::vector<int64_t> syncs = raw_append_latencies(
          work / "latency.bin", record_batch, options.paced_rate, options.latency_seconds);
      r.raw_sync = percentiles(syncs);
      report(r.raw_sync);
      progress(fmt::format("(d) {} B: a relay thread between two loopback connections at {:.0f}/s",
                           size, options.paced_rate));
      r.relay = loopback_relay(size, options.paced_rate, options.latency_seconds);
      report(r.relay);
      progress(fmt::format("(d) {} B: end-to-end latency at {:.0f} msg/s for {:.0f} s", size,
                           options.paced_rate, options.latency_seconds));
      r.latency_rate = options.paced_rate;
      r.e2e_always = latency(brokers, fmt::format("latency-{}", size), size, options.paced_rate,
                             options.latency_seconds);
      report(r.e2e_always);
      progress(fmt::format("(d) {} B: the same with bare Produce and Fetch requests", size));
      r.bare_always = bare_latency(port, fmt::format("bare-latency-{}", size), size,
                                   options.paced_rate, options.latency_seconds);
      report(r.bare_always);
      // And without fsync, as Kafka runs by default (durability from replicas, not the disk).
      const uint16_t never_port = free_loopback_port();
      const std::string never_brokers = fmt::format("127.0.0.1:{}", never_port);
      ServerProcess never(
          {depot, "serve", "--data-dir", (work / "depot" / "never").string(), "--kafka-listen",
           never_brokers, "--jobs-listen", "off", "--amqp-listen", "off", "--http-listen", "off",
           "--fsync", "never", "--kafka-partitions", std::to_string(options.partitions)},
          work / "depot" / "never.log");
      never.wait_listening(never_port);
      progress(fmt::format("(d) {} B: end-to-end latency at {:.0f} msg/s, --fsync never", size,
                           options.paced_rate));
      r.e2e_never = latency(never_brokers, fmt::format("latency-{}", size), size,
                            options.paced_rate, options.latency_seconds);
      report(r.e2e_never);
      progress(fmt::format("(d) {} B: the same with bare Produce and Fetch requests", size));
      r.bare_never = bare_latency(never_port, fmt::format("bare-latency-{}", size), size,
                                  options.paced_rate, options.latency_seconds);
      report(r.bare_never);
      // Last, as its write-back would disturb the latencies: what the producers reach when depot
      // syncs nothing, the bound that the clients themselves set on this machine.
      progress(fmt::format("(b) {} B: the same producers into a depot at --fsync never", size));
      r.produce_never_messages_per_second = produce(never_brokers, topic, size, messages, options);
      progress(fmt::format("    {:.0f} msg/s (at always: {:.2f} of it)",
                           r.produce_never_messages_per_second,
                           r.produce_messages_per_second / r.produce_never_messages_per_second));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "depot bench kafka: {}\n", e.what());
    return 1;
  }
  std::filesystem::remove_all(work);
  fmt::print(
      "| size | raw write+fdatasync | storage log append | produce acks=all (librdkafka) "
      "| / raw | produce at fsync never (librdkafka) | always / never | produce into a null broker "
      "(librdkafka) | always / null | bare Produce | / raw "
      "| consume (librdkafka) | bare Fetch | / loopback | e2e p50 / p99 at paced rate | bare e2e "
      "p50 / p99 | raw fdatasync p50 / p99 "
      "| e2e p50 / p99, fsync never | bare e2e p50 / p99, fsync never "
      "| loopback relay p50 / p99 "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const SizeResult& r : results) {
    fmt::print(
        "| {} B | {} | {} | {} ({:.0f} msg/s) | {:.2f} | {} ({:.0f} msg/s) | {:.2f} "
        "| {} ({:.0f} msg/s) | {:.2f} | {} | {:.2f} "
        "| {} ({:.0f} msg/s) | {} "
        "| {:.2f} of {} | {:.2f} / {:.2f} ms at {:.0f} msg/s | {:.2f} / {:.2f} ms | {:.2f} / "
        "{:.2f} ms | {:.2f} / {:.2f} ms | {:.2f} / {:.2f} ms | {:.2f} / {:.2f} ms |\n",
        r.size, gbps(r.raw_bytes_per_second), gbps(r.log_bytes_per_second),
        gbps(r.produce_bytes_per_second), r.produce_messages_per_second,
        r.produce_bytes_per_second / r.raw_bytes_per_second,
        gbps(r.produce_never_messages_per_second * static_cast<double>(r.size)),
        r.produce_never_messages_per_second,
        r.produce_messages_per_second / r.produce_never_messages_per_second,
        gbps(r.produce_null_messages_per_second * static_cast<double>(r.size)),
        r.produce_null_messages_per_second,
        r.produce_messages_per_second / r.produce_null_messages_per_second,
        gbps(r.bare_produce_bytes_per_second),
        r.bare_produce_bytes_per_second / r.raw_bytes_per_second, gbps(r.consume_bytes_per_second),
        r.consume_messages_per_second, gbps(r.fetch_bytes_per_second),
        r.fetch_bytes_per_second / r.loopback_bytes_per_second, gbps(r.loopback_bytes_per_second),
        r.e2e_always.p50_ms, r.e2e_always.p99_ms, r.latency_rate, r.bare_always.p50_ms,
        r.bare_always.p99_ms, r.raw_sync.p50_ms, r.raw_sync.p99_ms, r.e2e_never.p50_ms,
        r.e2e_never.p99_ms, r.bare_never.p50_ms, r.bare_never.p99_ms, r.relay.p50_ms,
        r.relay.p99_ms);
  }
  return 0;
}

}  // namespace depot::bench
