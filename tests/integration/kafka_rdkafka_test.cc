// librdkafka's C++ API (and its C Admin API, which the C++ one lacks) against a spawned depot's
// Kafka face: an idempotent acks=all producer, and a consumer group of two members that splits a
// topic's partitions, rebalances when one leaves, and resumes from committed offsets after a
// restart of depot.
//
// Every test first makes its topic with 4 partitions through Admin CreateTopics (Kafka API 19): a
// test that fails in SetUp fails there and nowhere else. On failure the test prints depot's log
// (lines "API N version V is not served" name requests depot closed the connection on) and what
// librdkafka logged.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/blocking_socket.h"
#include "support/depot_server.h"

namespace {

using depot::testing::DepotServer;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kPartitions = 4;
constexpr const char* kTopic = "rd-orders";
constexpr const char* kGroup = "rd-group";

// What librdkafka logs and reports (from its own threads), kept for failure messages instead of
// being printed as it comes.
class ClientLog : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    std::lock_guard lock(mutex_);
    if (event.type() == RdKafka::Event::EVENT_LOG) {
      text_ += "log " + event.fac() + ": " + event.str() + "\n";
    } else if (event.type() == RdKafka::Event::EVENT_ERROR) {
      text_ += "error " + RdKafka::err2str(event.err()) + ": " + event.str() + "\n";
    }
  }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

// A message as produced (index i: key "key-i", value "value-i") or consumed.
struct Record {
  int index = -1;
  int32_t partition = -1;
  int64_t offset = -1;

  bool operator==(const Record&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Record& r) {
  return out << "{#" << r.index << " p" << r.partition << "@" << r.offset << "}";
}

std::unique_ptr<RdKafka::Conf> make_config(const std::map<std::string, std::string>& settings,
                                           ClientLog& log) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  for (const auto& [name, value] : settings) {
    EXPECT_EQ(conf->set(name, value, error), RdKafka::Conf::CONF_OK) << name << ": " << error;
  }
  EXPECT_EQ(conf->set("event_cb", static_cast<RdKafka::EventCb*>(&log), error),
            RdKafka::Conf::CONF_OK)
      << error;
  return conf;
}

// Per partition, the offsets the next appends get.
using NextOffsets = std::map<int32_t, int64_t>;

class DeliveryReports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    errors.push_back(message.err());
    records.push_back({static_cast<int>(reinterpret_cast<intptr_t>(message.msg_opaque())),
                       message.partition(), message.offset()});
  }
  std::vector<RdKafka::ErrorCode> errors;
  std::vector<Record> records;  // in the order the reports came
};

// Produces messages [first, first + count) with an idempotent acks=all producer and checks that
// each was delivered and that each partition's offsets continue `next` without a gap, in the order
// the messages were produced. `produced` gets them in index order.
void produce(const std::string& bootstrap, int first, int count, NextOffsets& next, ClientLog& log,
             std::vector<Record>& produced) {
  DeliveryReports reports;
  auto conf = make_config({{"bootstrap.servers", bootstrap},
                           {"enable.idempotence", "true"},
                           {"acks", "all"},
                           {"linger.ms", "5"},
                           {"message.timeout.ms", "15000"}},
                          log);
  std::string error;
  ASSERT_EQ(conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&reports), error),
            RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  ASSERT_TRUE(producer) << error;
  for (int i = first; i < first + count; ++i) {
    std::string key = "key-" + std::to_string(i);
    std::string value = "value-" + std::to_string(i);
    ASSERT_EQ(
        producer->produce(kTopic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                          value.data(), value.size(), key.data(), key.size(), 0,
                          reinterpret_cast<void*>(static_cast<intptr_t>(i))),
        RdKafka::ERR_NO_ERROR);
    producer->poll(0);
  }
  ASSERT_EQ(producer->flush(15000), RdKafka::ERR_NO_ERROR) << "not every message was delivered";
  ASSERT_EQ(reports.records.size(), static_cast<size_t>(count));
  std::string fatal;
  EXPECT_EQ(producer->fatal_error(fatal), RdKafka::ERR_NO_ERROR) << fatal;
  for (size_t i = 0; i < reports.errors.size(); ++i) {
    EXPECT_EQ(reports.errors[i], RdKafka::ERR_NO_ERROR)
        << reports.records[i] << ": " << RdKafka::err2str(reports.errors[i]);
  }
  for (const Record& r : reports.records) {
    ASSERT_GE(r.partition, 0);
    ASSERT_LT(r.partition, kPartitions);
    EXPECT_EQ(r.offset, next[r.partition]) << "offsets of partition " << r.partition
                                           << " are not contiguous in production order at " << r;
    next[r.partition] = r.offset + 1;
  }
  std::vector<Record> sorted = reports.records;
  std::sort(sorted.begin(), sorted.end(),
            [](const Record& x, const Record& y) { return x.index < y.index; });
  for (int i = 0; i < count; ++i)
    ASSERT_EQ(sorted[static_cast<size_t>(i)].index, first + i);
  produced.insert(produced.end(), sorted.begin(), sorted.end());
}

// Makes `topic` with `partitions` partitions with librdkafka's Admin API (CreateTopics) and waits
// until Metadata shows them; returns what went wrong, or "".
std::string create_topic(const std::string& bootstrap, const std::string& topic, int partitions,
                         ClientLog& log) {
  auto conf = make_config({{"bootstrap.servers", bootstrap}}, log);
  std::string error;
  std::unique_ptr<RdKafka::Producer> handle(RdKafka::Producer::create(conf.get(), error));
  if (!handle) return "no client: " + error;
  rd_kafka_t* rk = handle->c_ptr();

  char errstr[512];
  rd_kafka_NewTopic_t* new_topic =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, errstr, sizeof errstr);
  if (new_topic == nullptr) return std::string("NewTopic: ") + errstr;
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 5000, errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 15000);
  std::string result;
  if (event == nullptr) {
    result = "no CreateTopics result within 15 s";
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = std::string("CreateTopics request failed: ") +
             rd_kafka_err2name(rd_kafka_event_error(event)) + ": " +
             rd_kafka_event_error_string(event);
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** topics =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    if (count != 1) {
      result = "CreateTopics answered for " + std::to_string(count) + " topics";
    } else if (rd_kafka_topic_result_error(topics[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* message = rd_kafka_topic_result_error_string(topics[0]);
      result = std::string("CreateTopics refused the topic: ") +
               rd_kafka_err2name(rd_kafka_topic_result_error(topics[0])) + ": " +
               (message != nullptr ? message : "");
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(new_topic);
  if (!result.empty()) return result;

  std::unique_ptr<RdKafka::Topic> handle_topic(
      RdKafka::Topic::create(handle.get(), topic, nullptr, error));
  const auto deadline = Clock::now() + 10s;
  size_t seen = 0;
  while (Clock::now() < deadline) {
    RdKafka::Metadata* raw = nullptr;
    if (handle->metadata(false, handle_topic.get(), &raw, 2000) == RdKafka::ERR_NO_ERROR) {
      std::unique_ptr<RdKafka::Metadata> metadata(raw);
      const auto* topics = metadata->topics();
      seen = topics->empty() ? 0 : topics->front()->partitions()->size();
      if (seen == static_cast<size_t>(partitions)) return "";
    }
  }
  return "Metadata shows " + std::to_string(seen) + " partitions after CreateTopics";
}

// One member of the consumer group: it assigns what the group gives it (eager rebalancing, the
// range assignor) and keeps what it consumes. Everything runs on the test's thread, in poll().
class Member : public RdKafka::RebalanceCb {
 public:
  Member(const std::string& name, const std::string& bootstrap, ClientLog& log) : name_(name) {
    auto conf = make_config({{"bootstrap.servers", bootstrap},
                             {"client.id", name},
                             {"group.id", kGroup},
                             {"session.timeout.ms", "6000"},  // depot's minimum
                             {"heartbeat.interval.ms", "500"},
                             {"max.poll.interval.ms", "10000"},  // the rebalance timeout
                             {"partition.assignment.strategy", "range"},
                             {"enable.auto.commit", "false"},
                             {"auto.offset.reset", "earliest"},
                             {"fetch.wait.max.ms", "100"}},
                            log);
    std::string error;
    EXPECT_EQ(conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), error),
              RdKafka::Conf::CONF_OK);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer_) {
      ADD_FAILURE() << name << ": " << error;
      return;
    }
    EXPECT_EQ(consumer_->subscribe({kTopic}), RdKafka::ERR_NO_ERROR);
  }
  ~Member() override { close(); }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      consumer->assign(partitions);
      assigned_.clear();
      for (const auto* tp : partitions)
        assigned_.insert(tp->partition());
    } else {
      consumer->unassign();
      assigned_.clear();
    }
  }

  // Waits up to `timeout` for one message or event (a rebalance runs in here).
  void poll(std::chrono::milliseconds timeout) {
    if (!consumer_) return;
    std::unique_ptr<RdKafka::Message> message(
        consumer_->consume(static_cast<int>(timeout.count())));
    if (message->err() == RdKafka::ERR_NO_ERROR) {
      const std::string key(static_cast<const char*>(message->key_pointer()), message->key_len());
      const std::string value(static_cast<const char*>(message->payload()), message->len());
      const int index = std::stoi(key.substr(4));
      EXPECT_EQ(value, "value-" + std::to_string(index)) << name_;
      EXPECT_TRUE(assigned_.count(message->partition()))
          << name_ << " got a message of partition " << message->partition()
          << ", which is not assigned to it";
      got_.push_back({index, message->partition(), message->offset()});
    } else if (message->err() != RdKafka::ERR__TIMED_OUT &&
               message->err() != RdKafka::ERR__PARTITION_EOF) {
      ADD_FAILURE() << name_ << ": " << message->errstr();
    }
  }

  // Commits the positions of what it consumed, and checks that the group then has them as its
  // committed offsets.
  void commit(const NextOffsets& next) {
    ASSERT_EQ(consumer_->commitSync(), RdKafka::ERR_NO_ERROR) << name_;
    std::vector<RdKafka::TopicPartition*> partitions;
    for (int32_t p : assigned_)
      partitions.push_back(RdKafka::TopicPartition::create(kTopic, p));
    EXPECT_EQ(consumer_->committed(partitions, 5000), RdKafka::ERR_NO_ERROR) << name_;
    for (const auto* tp : partitions) {
      EXPECT_EQ(tp->err(), RdKafka::ERR_NO_ERROR) << name_;
      EXPECT_EQ(tp->offset(), next.at(tp->partition()))
          << name_ << ": committed offset of partition " << tp->partition();
    }
    RdKafka::TopicPartition::destroy(partitions);
  }

  // Leaves the group (LeaveGroup) and closes.
  void close() {
    if (!consumer_) return;
    EXPECT_EQ(consumer_->close(), RdKafka::ERR_NO_ERROR) << name_;
    consumer_.reset();
  }

  const std::set<int32_t>& assigned() const { return assigned_; }
  std::vector<Record>& got() { return got_; }

 private:
  std::string name_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::set<int32_t> assigned_;
  std::vector<Record> got_;
};

// Polls the members in turn until `done` holds; false at the deadline.
bool poll_until(const std::vector<Member*>& members, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    for (Member* m : members)
      m->poll(50ms);
  }
  return true;
}

// The records of `all` in the given partitions, per partition in offset order.
std::map<int32_t, std::vector<Record>> by_partition(const std::vector<Record>& all,
                                                    const std::set<int32_t>& partitions) {
  std::map<int32_t, std::vector<Record>> result;
  for (const Record& r : all) {
    if (partitions.count(r.partition)) result[r.partition].push_back(r);
  }
  for (auto& [partition, records] : result) {
    std::sort(records.begin(), records.end(),
              [](const Record& x, const Record& y) { return x.offset < y.offset; });
  }
  return result;
}

std::string describe(const std::set<int32_t>& partitions) {
  std::string text = "{";
  for (int32_t p : partitions)
    text += (text.size() > 1 ? "," : "") + std::to_string(p);
  return text + "}";
}

class KafkaRdkafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The jobs face and the admin API listen too (DepotServer's defaults); the Kafka face on a
    // port of its own, the same across restarts.
    depot_ = std::make_unique<DepotServer>(
        std::vector<std::string>{"--kafka-listen", "127.0.0.1:" + std::to_string(kafka_port_)});
    ASSERT_FALSE(HasFatalFailure());
    const std::string error = create_topic(bootstrap_, kTopic, kPartitions, log_);
    ASSERT_EQ(error, "") << "librdkafka's Admin CreateTopics (Kafka API 19) did not make '"
                         << kTopic << "' with " << kPartitions
                         << " partitions; the test needs that topic";
  }

  void TearDown() override {
    if (!HasFailure()) return;
    if (depot_) depot_->stop();
    std::string client = log_.text();
    if (client.size() > 8000) client = "...\n" + client.substr(client.size() - 8000);
    std::cerr << "--- depot's log:\n"
              << (depot_ ? depot_->log() : "") << "--- librdkafka's log:\n"
              << client;
  }

  uint16_t kafka_port_ = depot::bench::free_loopback_port();
  std::string bootstrap_ = "127.0.0.1:" + std::to_string(kafka_port_);
  ClientLog log_;
  std::unique_ptr<DepotServer> depot_;
  NextOffsets next_;
};

TEST_F(KafkaRdkafkaTest, IdempotentAcksAllProducerGetsContiguousOffsetsPerPartition) {
  std::vector<Record> produced;
  ASSERT_NO_FATAL_FAILURE(produce(bootstrap_, 0, 400, next_, log_, produced));
  ASSERT_EQ(next_.size(), static_cast<size_t>(kPartitions)) << "400 keys land on every partition";
  // ListOffsets agrees: each partition ends where the delivery reports say.
  auto conf = make_config({{"bootstrap.servers", bootstrap_}}, log_);
  std::string error;
  std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  ASSERT_TRUE(client) << error;
  for (const auto& [partition, end] : next_) {
    int64_t low = -1;
    int64_t high = -1;
    ASSERT_EQ(client->query_watermark_offsets(kTopic, partition, &low, &high, 5000),
              RdKafka::ERR_NO_ERROR);
    EXPECT_EQ(low, 0);
    EXPECT_EQ(high, end) << "partition " << partition;
  }
}

TEST_F(KafkaRdkafkaTest, GroupOfTwoSplitsPartitionsRebalancesAndResumesAfterRestart) {
  // A alone gets every partition (after the group's initial rebalance delay, 3 s).
  Member a("member-a", bootstrap_, log_);
  ASSERT_TRUE(poll_until(
      {&a}, [&] { return a.assigned().size() == kPartitions; }, 15s))
      << "a has " << describe(a.assigned());

  // B joins: A rejoins when its heartbeat hears of the rebalance, and they get two each.
  Member b("member-b", bootstrap_, log_);
  ASSERT_TRUE(poll_until(
      {&a, &b}, [&] { return a.assigned().size() == 2 && b.assigned().size() == 2; }, 20s))
      << "a has " << describe(a.assigned()) << ", b has " << describe(b.assigned());
  std::set<int32_t> both = a.assigned();
  both.insert(b.assigned().begin(), b.assigned().end());
  EXPECT_EQ(both, (std::set<int32_t>{0, 1, 2, 3}));

  // Produced after the split: each member gets exactly its partitions' messages, in order.
  std::vector<Record> first;
  ASSERT_NO_FATAL_FAILURE(produce(bootstrap_, 0, 400, next_, log_, first));
  ASSERT_TRUE(poll_until(
      {&a, &b}, [&] { return a.got().size() + b.got().size() >= 400; }, 20s))
      << "a got " << a.got().size() << ", b got " << b.got().size();
  for (Member* m : {&a, &b}) {
    EXPECT_EQ(by_partition(m->got(), m->assigned()), by_partition(first, m->assigned()));
    EXPECT_EQ(by_partition(m->got(), m->assigned()).size(), 2u);
  }
  ASSERT_NO_FATAL_FAILURE(a.commit(next_));
  ASSERT_NO_FATAL_FAILURE(b.commit(next_));

  // B leaves: A gets all four again and goes on from B's commits, not from the beginning.
  b.close();
  ASSERT_TRUE(poll_until(
      {&a}, [&] { return a.assigned().size() == kPartitions; }, 20s))
      << "a has " << describe(a.assigned());
  a.got().clear();
  std::vector<Record> second;
  ASSERT_NO_FATAL_FAILURE(produce(bootstrap_, 400, 40, next_, log_, second));
  ASSERT_TRUE(poll_until(
      {&a}, [&] { return a.got().size() >= second.size(); }, 20s))
      << "a got " << a.got().size() << " of " << second.size();
  const std::set<int32_t> all{0, 1, 2, 3};
  EXPECT_EQ(by_partition(a.got(), all), by_partition(second, all));
  ASSERT_NO_FATAL_FAILURE(a.commit(next_));
  a.close();

  // What comes after the last commit, then a restart of depot (SIGTERM) on the same data.
  std::vector<Record> third;
  ASSERT_NO_FATAL_FAILURE(produce(bootstrap_, 440, 40, next_, log_, third));
  depot_->stop();
  depot_->start();
  ASSERT_FALSE(HasFatalFailure());

  // A new member resumes from the committed offsets: exactly the messages after the commit.
  Member c("member-c", bootstrap_, log_);
  ASSERT_TRUE(poll_until(
      {&c}, [&] { return c.got().size() >= third.size(); }, 20s))
      << "c has " << describe(c.assigned()) << " and got " << c.got().size() << " of "
      << third.size();
  EXPECT_EQ(c.assigned().size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(by_partition(c.got(), all), by_partition(third, all));
  EXPECT_EQ(c.got().size(), third.size());
}

}  // namespace
