// Two npm Kafka clients (unmodified) against a spawned depot's Kafka face: kafkajs 2.2 (classic
// request versions: Produce 7, Fetch 11, Metadata 6, JoinGroup 5) and @platformatic/kafka (the
// newest flexible versions, the ones Kafka 4 keeps).
//
// depot logs at info level to depot.log in its data directory; a failing test's message ends with
// the log's lines about requests depot does not serve ("API N version V is not served"). A client
// that finds an API missing from ApiVersions fails before sending anything: kafkajs with "The
// broker does not support the requested API version", @platformatic/kafka with "Unsupported API".
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Admin,
  Consumer,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { Kafka, logLevel, Partitioners } from "kafkajs";

import { startDepot } from "./depot.mjs";

// @platformatic/kafka is written for Node >= 22 and calls Promise.withResolvers (new in Node 22)
// when an operation is awaited; Debian's machines may run Node 20.
Promise.withResolvers ??= function withResolvers() {
  let resolve;
  let reject;
  const promise = new this((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

// Polls `probe` until it returns a truthy value; throws `what` (and the last value) at the deadline.
async function waitFor(what, probe, deadlineMs = 20000) {
  const start = Date.now();
  let last;
  while (Date.now() - start < deadlineMs) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within ${deadlineMs} ms (last: ${JSON.stringify(last)})`);
}

let depot;

// A test whose failure message ends with what depot logged about unserved requests and errors.
function kafkaTest(name, body) {
  test(name, async () => {
    try {
      await body();
    } catch (error) {
      // @platformatic/kafka wraps the cause in an AggregateError.
      for (const inner of error.errors ?? []) error.message += `\n  caused by: ${inner.message}`;
      const lines = depot
        .log()
        .split("\n")
        .filter((line) => /not served|error|warn/.test(line));
      error.message += `\n--- depot.log (${depot.dir}):\n${lines.join("\n") || "(nothing relevant)"}`;
      throw error;
    }
  });
}

before(async () => {
  depot = await startDepot({ kafka: true, logFile: true });
});

after(async () => {
  await depot?.stop();
});

describe("kafkajs against depot", () => {
  const client = () =>
    new Kafka({
      clientId: "depot-interop",
      brokers: [depot.kafkaBroker],
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 100 },
    });
  const groupSettings = { sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500,
                          maxWaitTimeInMs: 500 };

  kafkaTest("acks -1 produce with keys and headers; a group reads them back and commits", async () => {
    const kafka = client();
    const topic = "kjs-orders";
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const messages = Array.from({ length: 10 }, (_, i) => ({
      key: `order-${i}`,
      value: JSON.stringify({ n: i }),
      headers: { "trace-id": `t-${i}`, source: "kafkajs" },
    }));
    // Topics are created on first use, with one partition.
    const sent = await producer.send({ topic, acks: -1, messages: messages.slice(0, 4) });
    const summary = ({ topicName, partition, errorCode, baseOffset }) =>
      ({ topicName, partition, errorCode, baseOffset });
    assert.deepEqual(sent.map(summary),
                     [{ topicName: topic, partition: 0, errorCode: 0, baseOffset: "0" }]);
    const rest = await producer.send({ topic, acks: -1, messages: messages.slice(4) });
    assert.equal(rest[0].baseOffset, "4");
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: "kjs-readers", ...groupSettings });
    const admin = kafka.admin();
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const got = [];
      await consumer.run({
        autoCommitThreshold: 5,
        eachMessage: async ({ topic: t, partition, message }) => got.push({ t, partition, message }),
      });
      await waitFor("all 10 messages", () => got.length >= 10);
      assert.equal(got.length, 10);
      got.forEach(({ t, partition, message }, i) => {
        assert.equal(t, topic);
        assert.equal(partition, 0);
        assert.equal(message.offset, String(i));
        assert.equal(message.key.toString(), `order-${i}`);
        assert.equal(message.value.toString(), JSON.stringify({ n: i }));
        assert.deepEqual(Object.keys(message.headers).sort(), ["source", "trace-id"]);
        assert.equal(message.headers["trace-id"].toString(), `t-${i}`);
        assert.equal(message.headers.source.toString(), "kafkajs");
      });

      // Committed by the running member (threshold 5): the next offset to read, for the group.
      await admin.connect();
      const offsets = await waitFor("the group's commit of offset 10", async () => {
        const fetched = await admin.fetchOffsets({ groupId: "kjs-readers", topics: [topic] });
        return fetched[0]?.partitions[0]?.offset === "10" && fetched;
      });
      assert.deepEqual(offsets, [
        { topic, partitions: [{ partition: 0, offset: "10", metadata: null }] },
      ]);
      // A group that never committed has no offset (-1).
      const none = await admin.fetchOffsets({ groupId: "kjs-nobody", topics: [topic] });
      assert.equal(none[0].partitions[0].offset, "-1");
    } finally {
      await consumer.disconnect();
      await admin.disconnect();
    }
  });

  kafkaTest("admin createTopics, listTopics, fetchTopicOffsets, deleteTopics", async () => {
    const kafka = client();
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner,
                                      allowAutoTopicCreation: false });
    const topic = "kjs-admin";
    try {
      await admin.connect();
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }), true);
      // Already there: kafkajs answers false rather than throwing.
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }), false);
      assert.ok((await admin.listTopics()).includes(topic));
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.deepEqual(topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);

      await producer.connect();
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { partition: 0, value: "a" },
          { partition: 0, value: "b" },
          { partition: 2, value: "c" },
        ],
      });
      const offsets = (await admin.fetchTopicOffsets(topic)).sort((x, y) => x.partition - y.partition);
      assert.deepEqual(offsets, [
        { partition: 0, offset: "2", high: "2", low: "0" },
        { partition: 1, offset: "0", high: "0", low: "0" },
        { partition: 2, offset: "1", high: "1", low: "0" },
      ]);

      await admin.deleteTopics({ topics: [topic] });
      assert.ok(!(await admin.listTopics()).includes(topic));
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  kafkaTest("two consumers in one group split a 2-partition topic", async () => {
    const kafka = client();
    const topic = "kjs-split";
    const groupId = "kjs-split-group";
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] }), true);
    } finally {
      await admin.disconnect();
    }

    const members = ["a", "b"].map((name) => {
      const consumer = kafka.consumer({ groupId, ...groupSettings });
      const member = { name, consumer, assignment: null, got: [] };
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        member.assignment = payload.memberAssignment[topic] ?? [];
      });
      return member;
    });
    const start = async ({ consumer, got }) => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) =>
          got.push({ partition, value: message.value.toString() }),
      });
    };
    const [a, b] = members;
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await start(a);
      await waitFor("a alone gets both partitions", () => a.assignment?.length === 2);
      assert.deepEqual([...a.assignment].sort(), [0, 1]);

      await start(b);
      await waitFor("a and b one partition each",
                    () => a.assignment?.length === 1 && b.assignment?.length === 1);
      assert.deepEqual([...a.assignment, ...b.assignment].sort(), [0, 1]);

      await producer.connect();
      const messages = [];
      for (let i = 0; i < 10; i++) messages.push({ partition: i % 2, value: `m-${i}` });
      await producer.send({ topic, acks: -1, messages });
      await waitFor("5 messages each", () => a.got.length === 5 && b.got.length === 5);
      for (const member of members) {
        const [partition] = member.assignment;
        assert.ok(member.got.every((m) => m.partition === partition),
                  `${member.name}: ${JSON.stringify(member.got)}`);
        assert.deepEqual(member.got.map((m) => m.value),
                         messages.filter((m) => m.partition === partition).map((m) => m.value));
      }
    } finally {
      await producer.disconnect();
      for (const { consumer } of members) await consumer.disconnect();
    }
  });
});

describe("@platformatic/kafka against depot", () => {
  const base = () => ({ clientId: "depot-interop-plt", bootstrapBrokers: [depot.kafkaBroker],
                        retries: 2, retryDelay: 100 });
  const groupSettings = { sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500,
                          maxWaitTime: 500 };

  // The next `count` messages of a stream (each committed with `commit`), then the stream is
  // closed; the stream fails if they do not come within the deadline.
  async function take(stream, count, { commit = false, deadlineMs = 20000 } = {}) {
    const got = [];
    const timer = setTimeout(() => stream.destroy(
      new Error(`only ${got.length} of ${count} messages within ${deadlineMs} ms`)), deadlineMs);
    try {
      for await (const message of stream) {
        got.push(message);
        if (commit) await message.commit();
        if (got.length === count) break;
      }
    } finally {
      clearTimeout(timer);
    }
    await stream.close();
    return got;
  }

  kafkaTest("idempotent acks=all produce; a group commits; a new member resumes from there", async () => {
    const topic = "plt-events";
    const groupId = "plt-readers";
    const producer = new Producer({ ...base(), serializers: stringSerializers, autocreateTopics: true,
                                    idempotent: true, acks: ProduceAcks.ALL });
    const consumers = [];
    const newConsumer = () => {
      const consumer = new Consumer({ ...base(), groupId, deserializers: stringDeserializers,
                                      ...groupSettings });
      consumers.push(consumer);
      return consumer;
    };
    try {
      const first = await producer.send({
        messages: Array.from({ length: 5 }, (_, i) => ({
          topic, key: `k-${i}`, value: `v-${i}`, headers: { source: "platformatic", seq: String(i) },
        })),
      });
      assert.deepEqual(first.offsets, [{ topic, partition: 0, offset: 0n }]);

      const reader = newConsumer();
      const stream = await reader.consume({
        topics: [topic], mode: MessagesStreamModes.COMMITTED, fallbackMode: "earliest",
        autocommit: false,
      });
      const got = await take(stream, 5, { commit: true });
      assert.deepEqual(
        got.map((m) => [m.offset, m.key, m.value, m.headers.get("source"), m.headers.get("seq")]),
        Array.from({ length: 5 }, (_, i) => [BigInt(i), `k-${i}`, `v-${i}`, "platformatic", String(i)]),
      );
      const committed = await reader.listCommittedOffsets({ topics: [{ topic, partitions: [0] }] });
      assert.deepEqual(committed.get(topic), [5n]);
      await reader.close();

      const second = await producer.send({
        messages: [6, 7, 8].map((i) => ({ topic, key: `k-${i}`, value: `v-${i}` })),
      });
      assert.deepEqual(second.offsets, [{ topic, partition: 0, offset: 5n }]);

      // A new member of the group starts from the committed offset: only what came after.
      const resumed = newConsumer();
      const rest = await take(
        await resumed.consume({ topics: [topic], mode: MessagesStreamModes.COMMITTED, autocommit: false }),
        3,
      );
      assert.deepEqual(rest.map((m) => [m.offset, m.value]), [[5n, "v-6"], [6n, "v-7"], [7n, "v-8"]]);
    } finally {
      await producer.close();
      for (const consumer of consumers) await consumer.close(true);
    }
  });

  kafkaTest("admin createTopics, metadata, listTopics, deleteTopics", async () => {
    const topic = "plt-admin";
    const admin = new Admin(base());
    try {
      const created = await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
      assert.deepEqual(created.map(({ name, partitions, replicas }) => ({ name, partitions, replicas })),
                       [{ name: topic, partitions: 3, replicas: 1 }]);
      await assert.rejects(admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 }),
                           (error) => Boolean(error.findBy?.("apiId", "TOPIC_ALREADY_EXISTS")));
      const metadata = await admin.metadata({ topics: [topic] });
      assert.equal(metadata.topics.get(topic).partitionsCount, 3);
      assert.ok((await admin.listTopics()).includes(topic));

      await admin.deleteTopics({ topics: [topic] });
      assert.ok(!(await admin.listTopics()).includes(topic));
    } finally {
      await admin.close();
    }
  });
});
