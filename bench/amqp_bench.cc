// `depot bench amqp`: one load generator on librabbitmq (rabbitmq-c, the C client RabbitMQ's own
// perf tools are measured against) drives a fresh depot and a fresh rabbitmq-server in turn:
// per queue one publisher and one consumer connection, the consumer with basic.qos prefetch and
// multiple acks, the publisher with or without confirms (waited for in batches). Each message
// carries its publish time; the consumer records publish-to-deliver latency. The same publishers
// also drive a null broker, which confirms and discards every message: what they reach there is
// what the load generator sends on this machine when its peer does no work (a reference, not a
// bound: a publisher's cost also depends on how its peer reads).
#include "bench/amqp_bench.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "bench/blocking_socket.h"
#include "bench/measure.h"
#include "bench/server_process.h"
#include "protocol/amqp/frame.h"
#include "protocol/amqp/method.h"

namespace depot::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr amqp_channel_t kChannel = 1;

std::string reply_text(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return fmt::format(
            "connection closed: {} {}", m->reply_code,
            std::string_view(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len));
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return fmt::format(
            "channel closed: {} {}", m->reply_code,
            std::string_view(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len));
      }
      return "server exception";
  }
  return "unknown reply";
}

// One AMQP connection with channel 1 open, used by one thread.
class Connection {
 public:
  explicit Connection(uint16_t port) : state_(amqp_new_connection()) {
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    if (socket == nullptr) fail("amqp_tcp_socket_new failed");
    if (int status = amqp_socket_open(socket, "127.0.0.1", port); status != AMQP_STATUS_OK) {
      fail(fmt::format("cannot connect to 127.0.0.1:{}: {}", port, amqp_error_string2(status)));
    }
    check(amqp_login(state_, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(state_, kChannel);
    check(amqp_get_rpc_reply(state_), "channel.open");
  }
  ~Connection() {
    amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  amqp_connection_state_t get() const { return state_; }

  void check(const amqp_rpc_reply_t& reply, std::string_view what) const {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
      fail(fmt::format("{}: {}", what, reply_text(reply)));
  }
  void check_rpc(std::string_view what) const { check(amqp_get_rpc_reply(state_), what); }

  void declare(const std::string& queue, bool durable) {
    amqp_queue_declare(state_, kChannel, amqp_cstring_bytes(queue.c_str()), 0, durable ? 1 : 0, 0,
                       0, amqp_empty_table);
    check_rpc("queue.declare");
  }
  void remove(const std::string& queue) {
    amqp_queue_delete(state_, kChannel, amqp_cstring_bytes(queue.c_str()), 0, 0);
    check_rpc("queue.delete");
  }

 private:
  amqp_connection_state_t state_;
};

// No broker at all: it answers the handshake and the few methods the bench sends (channel and
// queue set-up, confirm.select, closes), confirms each read's publishes at once and drops every
// message. One thread per connection, blocking I/O.
class NullBroker {
 public:
  explicit NullBroker(uint16_t port) : server_(port, &serve) {
    if (!server_.ok()) fail(fmt::format("the null broker cannot listen on port {}", port));
  }

 private:
  static void serve(int fd) {
    Bytes in(1 << 18);
    size_t have = 0;
    bool header_seen = false;
    Bytes out;
    std::map<uint16_t, std::pair<uint64_t, uint64_t>> confirming;  // channel: published, acked
    for (;;) {
      const ssize_t n = ::recv(fd, in.data() + have, in.size() - have, 0);
      if (n <= 0) return;
      have += static_cast<size_t>(n);
      size_t at = 0;
      if (!header_seen) {
        if (have < amqp::kProtocolHeader.size()) continue;
        header_seen = true;
        at = amqp::kProtocolHeader.size();
        amqp::append_method(out, 0, amqp::ConnectionStart{});
      }
      for (;;) {
        const auto scan = amqp::scan_frame(ByteSpan(in.data() + at, have - at), 0);
        if (scan.status == amqp::FrameScan::Status::error) return;
        if (scan.status == amqp::FrameScan::Status::need_more) break;
        at += scan.size;
        if (scan.frame.type != amqp::FrameType::method) continue;
        ByteReader ids(scan.frame.payload);
        const auto class_id = ids.read_be<uint16_t>();
        const auto method_id = ids.read_be<uint16_t>();
        if (ids.ok() && class_id == amqp::BasicPublish::kClassId &&
            method_id == amqp::BasicPublish::kMethodId) {
          // Publishes are only counted, not decoded: the null broker is to cost nothing.
          if (auto c = confirming.find(scan.frame.channel); c != confirming.end())
            ++c->second.first;
          continue;
        }
        auto decoded = amqp::decode_method(scan.frame.payload);
        if (!decoded) return;
        const uint16_t channel = scan.frame.channel;
        const amqp::Method& method = decoded.value();
        if (std::holds_alternative<amqp::ConnectionStartOk>(method)) {
          amqp::append_method(out, 0, amqp::ConnectionTune{{}, 2047, 131072, 0});
        } else if (std::holds_alternative<amqp::ConnectionOpen>(method)) {
          amqp::append_method(out, 0, amqp::ConnectionOpenOk{});
        } else if (std::holds_alternative<amqp::ChannelOpen>(method)) {
          amqp::append_method(out, channel, amqp::ChannelOpenOk{});
        } else if (const auto* declare = std::get_if<amqp::QueueDeclare>(&method)) {
          amqp::append_method(out, channel, amqp::QueueDeclareOk{{}, declare->queue, 0, 0});
        } else if (std::holds_alternative<amqp::QueueDelete>(method)) {
          amqp::append_method(out, channel, amqp::QueueDeleteOk{});
        } else if (std::holds_alternative<amqp::ConfirmSelect>(method)) {
          confirming[channel] = {0, 0};
          amqp::append_method(out, channel, amqp::ConfirmSelectOk{});
        } else if (std::holds_alternative<amqp::ChannelClose>(method)) {
          confirming.erase(channel);
          amqp::append_method(out, channel, amqp::ChannelCloseOk{});
        } else if (std::holds_alternative<amqp::ConnectionClose>(method)) {
          amqp::append_method(out, 0, amqp::ConnectionCloseOk{});
          (void)send_all(fd, out.data(), out.size());
          return;
        }
      }
      for (auto& [channel, tags] : confirming) {
        auto& [published, acked] = tags;
        if (published > acked)
          amqp::append_method(out, channel, amqp::BasicAck{{}, published, true});
        acked = published;
      }
      std::memmove(in.data(), in.data() + at, have - at);
      have -= at;
      if (!out.empty() && !send_all(fd, out.data(), out.size())) return;
      out.clear();
    }
  }

  ThreadPerConnectionServer server_;
};

struct Case {
  size_t size = 100;
  std::string mode = "transient";
  unsigned queues = 1;
  std::string label() const { return fmt::format("{}B {} {}q", size, mode, queues); }
};

struct Result {
  std::string target;
  Case shape;
  unsigned round = 1;
  double published_per_second = 0;
  double delivered_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

struct Target {
  std::string name;
  std::string description;
  // Starts the server on `port` with its data under `data`; it runs while the result is held.
  std::function<std::shared_ptr<void>(uint16_t port, const std::filesystem::path& data)> start;
  bool delivers = true;  // false: publishers only, no consumers (the null broker)
};

std::vector<Target> targets(const AmqpBenchOptions& options) {
  const std::string depot = options.depot_binary.empty()
                                ? std::filesystem::read_symlink("/proc/self/exe").string()
                                : options.depot_binary.string();
  return {
      {"depot", "depot, fsync=always (persistent messages confirmed once on disk)",
       [depot](uint16_t port, const std::filesystem::path& data) {
         std::filesystem::create_directories(data);
         auto server = std::make_unique<ServerProcess>(
             std::vector<std::string>{depot, "serve", "--data-dir", (data / "data").string(),
                                      "--amqp-listen", fmt::format("127.0.0.1:{}", port),
                                      "--jobs-listen", "off", "--http-listen", "off",
                                      "--kafka-listen", "off", "--log-level", "warn"},
             data / "server.log");
         server->wait_listening(port);
         return server;
       }},
      {"rabbitmq", "Debian's rabbitmq-server, its own node and data directory, default settings",
       [](uint16_t port, const std::filesystem::path& data) {
         // RabbitMQ takes its node's settings from the environment.
         std::filesystem::create_directories(data);
         const auto set = [](const char* name, const std::string& value) {
           ::setenv(name, value.c_str(), 1);
         };
         set("HOME", data.string());  // the Erlang cookie goes here
         set("RABBITMQ_NODENAME", fmt::format("depot-bench-{}@localhost", ::getpid()));
         set("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1");
         set("RABBITMQ_NODE_PORT", std::to_string(port));
         set("RABBITMQ_DIST_PORT", std::to_string(free_loopback_port()));
         set("RABBITMQ_MNESIA_BASE", (data / "mnesia").string());
         set("RABBITMQ_LOG_BASE", (data / "log").string());
         set("RABBITMQ_ENABLED_PLUGINS_FILE", (data / "enabled_plugins").string());
         set("RABBITMQ_CONFIG_FILE", (data / "rabbitmq").string());
         set("RABBITMQ_ADVANCED_CONFIG_FILE", (data / "advanced.config").string());
         set("RABBITMQ_CONF_ENV_FILE", (data / "rabbitmq-env.conf").string());
         set("RABBITMQ_PID_FILE", (data / "rabbitmq.pid").string());
         if (std::FILE* plugins = std::fopen((data / "enabled_plugins").c_str(), "w")) {
           std::fputs("[].\n", plugins);
           std::fclose(plugins);
         }
         auto server = std::make_unique<ServerProcess>(
             std::vector<std::string>{"/usr/lib/rabbitmq/bin/rabbitmq-server"},
             data / "server.log");
         server->wait_listening(port, 120s);
         return server;
       }},
      {"null",
       "no broker: the handshake answered, every publish confirmed at once and dropped (the "
       "publishers' rate when their peer does no work)",
       [](uint16_t port, const std::filesystem::path&) {
         return std::make_shared<NullBroker>(port);
       },
       false},
  };
}

Result measure(const Target& target, uint16_t port, const Case& shape,
               const AmqpBenchOptions& options) {
  const bool confirms = shape.mode != "transient";
  const bool persistent = shape.mode == "persistent";
  std::vector<std::string> queues;
  {
    Connection control(port);
    for (unsigned i = 0; i < shape.queues; ++i) {
      queues.push_back(fmt::format("bench-{}-{}-{}", shape.size, shape.mode, i));
      control.remove(queues.back());
      control.declare(queues.back(), persistent);
    }
  }
  StopFlag stop;
  std::atomic<bool> measuring{false};
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> delivered{0};
  const size_t max_in_flight = std::max<size_t>(1, options.max_in_flight / shape.queues);
  std::vector<std::unique_ptr<std::atomic<int64_t>>> in_flight;
  std::vector<std::vector<int64_t>> latencies(shape.queues);
  for (unsigned i = 0; i < shape.queues; ++i)
    in_flight.push_back(std::make_unique<std::atomic<int64_t>>(0));

  std::vector<std::thread> threads;
  for (unsigned q = 0; q < shape.queues; ++q) {
    // The consumer; the null broker has none.
    if (target.delivers) {
      threads.emplace_back([&, q] {
        stop.run([&] {
          Connection c(port);
          amqp_basic_qos(c.get(), kChannel, 0, static_cast<uint16_t>(options.prefetch), 0);
          c.check_rpc("basic.qos");
          amqp_basic_consume(c.get(), kChannel, amqp_cstring_bytes(queues[q].c_str()),
                             amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
          c.check_rpc("basic.consume");
          const unsigned ack_every = std::max(1U, options.prefetch / 4);
          unsigned unacked = 0;
          uint64_t last_tag = 0;
          while (!stop.stopped()) {
            timeval timeout{0, 100'000};
            amqp_envelope_t envelope;
            amqp_maybe_release_buffers(c.get());
            amqp_rpc_reply_t reply = amqp_consume_message(c.get(), &envelope, &timeout, 0);
            if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                reply.library_error == AMQP_STATUS_TIMEOUT) {
              if (unacked > 0) {
                amqp_basic_ack(c.get(), kChannel, last_tag, 1);
                unacked = 0;
              }
              continue;
            }
            c.check(reply, "consume");
            int64_t sent = 0;
            if (envelope.message.body.len >= sizeof sent) {
              std::memcpy(&sent, envelope.message.body.bytes, sizeof sent);
            }
            last_tag = envelope.delivery_tag;
            amqp_destroy_envelope(&envelope);
            in_flight[q]->fetch_sub(1, std::memory_order_relaxed);
            if (measuring.load(std::memory_order_relaxed)) {
              delivered.fetch_add(1, std::memory_order_relaxed);
              latencies[q].push_back(now_nanos() - sent);
            }
            if (++unacked >= ack_every) {
              if (amqp_basic_ack(c.get(), kChannel, last_tag, 1) != AMQP_STATUS_OK)
                fail("basic.ack");
              unacked = 0;
            }
          }
        });
      });
    }
    threads.emplace_back([&, q] {
      stop.run([&] {
        Connection c(port);
        if (confirms) {
          amqp_confirm_select(c.get(), kChannel);
          c.check_rpc("confirm.select");
        }
        std::string body(shape.size, 'x');
        amqp_basic_properties_t properties{};
        if (persistent) {
          properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
          properties.delivery_mode = 2;
        }
        const amqp_bytes_t key = amqp_cstring_bytes(queues[q].c_str());
        uint64_t next_tag = 1;
        std::set<uint64_t> unconfirmed;
        while (!stop.stopped()) {
          const unsigned batch = confirms ? options.confirm_batch : 64;
          for (unsigned i = 0; i < batch; ++i) {
            while (target.delivers &&
                   in_flight[q]->load(std::memory_order_relaxed) >=
                       static_cast<int64_t>(max_in_flight) &&
                   !stop.stopped()) {
              std::this_thread::sleep_for(50us);
            }
            int64_t now = now_nanos();
            std::memcpy(body.data(), &now, std::min(sizeof now, body.size()));
            amqp_bytes_t bytes{body.size(), body.data()};
            if (amqp_basic_publish(c.get(), kChannel, amqp_empty_bytes, key, 0, 0, &properties,
                                   bytes) != AMQP_STATUS_OK) {
              fail("basic.publish failed");
            }
            in_flight[q]->fetch_add(1, std::memory_order_relaxed);
            if (measuring.load(std::memory_order_relaxed)) {
              published.fetch_add(1, std::memory_order_relaxed);
            }
            if (confirms) unconfirmed.insert(next_tag++);
          }
          // Wait for this batch's confirms.
          while (confirms && !unconfirmed.empty()) {
            amqp_frame_t frame;
            timeval timeout{1, 0};
            int status = amqp_simple_wait_frame_noblock(c.get(), &frame, &timeout);
            if (status == AMQP_STATUS_TIMEOUT) {
              if (stop.stopped()) break;
              continue;
            }
            if (status != AMQP_STATUS_OK) fail("waiting for confirms failed");
            if (frame.frame_type != AMQP_FRAME_METHOD) continue;
            if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) fail("a publish was nacked");
            if (frame.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
            const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
            if (ack->multiple) {
              unconfirmed.erase(unconfirmed.begin(), unconfirmed.upper_bound(ack->delivery_tag));
            } else {
              unconfirmed.erase(ack->delivery_tag);
            }
          }
          amqp_maybe_release_buffers(c.get());
        }
      });
    });
  }
  auto join = [&] {
    stop.stop();
    for (std::thread& t : threads)
      t.join();
    threads.clear();
  };
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_seconds));
  measuring = true;
  const auto started = Clock::now();
  const auto until = started + std::chrono::duration<double>(options.seconds);
  while (Clock::now() < until && !stop.stopped()) {
    std::this_thread::sleep_for(1s);
    fmt::print(stderr, "  {} {}: {} {} so far\n", target.name, shape.label(),
               target.delivers ? delivered.load() : published.load(),
               target.delivers ? "delivered" : "published");
  }
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  join();
  if (!stop.error().empty())
    fail(fmt::format("{} {}: {}", target.name, shape.label(), stop.error()));
  {
    Connection control(port);
    for (const std::string& queue : queues)
      control.remove(queue);
  }
  std::vector<int64_t> all;
  for (auto& samples : latencies)
    all.insert(all.end(), samples.begin(), samples.end());
  Result result{target.name, shape};
  result.published_per_second = static_cast<double>(published.load()) / elapsed;
  result.delivered_per_second = static_cast<double>(delivered.load()) / elapsed;
  result.p50_ms = percentile_ms(all, 0.50);
  result.p99_ms = percentile_ms(all, 0.99);
  return result;
}

}  // namespace

int run_amqp_bench(const AmqpBenchOptions& options) {
  const std::filesystem::path work = options.dir / "depot-bench-amqp";
  std::vector<Case> cases;
  for (unsigned queues : options.queue_counts)
    for (const std::string& mode : options.modes)
      for (size_t size : options.sizes)
        cases.push_back({size, mode, queues});
  std::vector<Result> results;
  try {
    for (unsigned round = 1; round <= options.rounds; ++round) {
      // Each round starts with the target the last one ended with: depot, rabbitmq, rabbitmq,
      // depot, ... so that neither always runs first.
      std::vector<Target> order = targets(options);
      if (round % 2 == 0) std::reverse(order.begin(), order.end());
      for (const Target& target : order) {
        if (std::find(options.targets.begin(), options.targets.end(), target.name) ==
            options.targets.end()) {
          continue;
        }
        std::filesystem::remove_all(work / target.name);
        const uint16_t port = free_loopback_port();
        fmt::print(stderr, "round {} of {}: starting {} ({})\n", round, options.rounds, target.name,
                   target.description);
        auto server = target.start(port, work / target.name);
        for (const Case& shape : cases) {
          results.push_back(measure(target, port, shape, options));
          Result& r = results.back();
          r.round = round;
          fmt::print(stderr,
                     "{:9} {:24} {:>9.0f} pub/s {:>9.0f} deliv/s  p50 {:7.2f} ms  p99 {:7.2f} ms\n",
                     r.target, shape.label(), r.published_per_second, r.delivered_per_second,
                     r.p50_ms, r.p99_ms);
        }
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "depot bench amqp: {}\n", e.what());
    return 1;
  }
  fmt::print(
      "| case | target | round | published/s | delivered/s | p50 ms | p99 ms "
      "|\n|---|---|---|---|---|---|---|\n");
  for (const Result& r : results) {
    fmt::print("| {} | {} | {} | {:.0f} | {:.0f} | {:.2f} | {:.2f} |\n", r.shape.label(), r.target,
               r.round, r.published_per_second, r.delivered_per_second, r.p50_ms, r.p99_ms);
  }
  fmt::print("\nRatios, depot / rabbitmq, round by round (goal: delivery >= 2x, p99 lower):\n");
  for (const Case& shape : cases) {
    std::vector<double> ratios;
    unsigned p99_lower = 0;
    std::string each;
    for (const Result& d : results) {
      if (d.target != "depot" || d.shape.label() != shape.label()) continue;
      for (const Result& r : results) {
        if (r.target != "rabbitmq" || r.round != d.round || r.shape.label() != shape.label()) {
          continue;
        }
        const double ratio =
            r.delivered_per_second > 0 ? d.delivered_per_second / r.delivered_per_second : 0;
        ratios.push_back(ratio);
        if (d.p99_ms < r.p99_ms) ++p99_lower;
        each += fmt::format("{}{:.2f}x (p99 {:.2f} vs {:.2f} ms)", each.empty() ? "" : ", ", ratio,
                            d.p99_ms, r.p99_ms);
      }
    }
    if (!ratios.empty()) {
      std::sort(ratios.begin(), ratios.end());
      fmt::print("  {:24} delivery median {:.2f}x, {:.2f}x to {:.2f}x; p99 lower in {} of {}: {}\n",
                 shape.label(), median(ratios), ratios.front(), ratios.back(), p99_lower,
                 ratios.size(), each);
    }
  }
  fmt::print(
      "\nThe publishers' reference: their median publish rate into the null broker, and each "
      "broker's median delivery rate as a fraction of it:\n");
  for (const Case& shape : cases) {
    auto rates = [&](const std::string& target, double Result::*field) {
      std::vector<double> v;
      for (const Result& r : results) {
        if (r.target == target && r.shape.label() == shape.label()) v.push_back(r.*field);
      }
      std::sort(v.begin(), v.end());
      return v;
    };
    const std::vector<double> reference = rates("null", &Result::published_per_second);
    if (reference.empty() || median(reference) <= 0) continue;
    std::string line = fmt::format("  {:24} {:.0f} msg/s", shape.label(), median(reference));
    for (const char* broker : {"depot", "rabbitmq"}) {
      const std::vector<double> delivered = rates(broker, &Result::delivered_per_second);
      if (!delivered.empty()) {
        line += fmt::format("; {} {:.2f}", broker, median(delivered) / median(reference));
      }
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

}  // namespace depot::bench
