// The npm `amqplib` client (unmodified) against a spawned depot's AMQP face.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import amqp from "amqplib";

import { startDepot } from "./depot.mjs";

// `promise`, or a rejection naming `what` after `ms`: amqplib waits for some replies without a
// timeout of its own.
async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The next `count` messages a consumer on `queue` gets, acked unless `noAck`; then it cancels.
async function take(channel, queue, count, { noAck = false } = {}) {
  const got = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const { consumerTag } = await channel.consume(
    queue,
    (message) => {
      got.push(message);
      if (!noAck) channel.ack(message);
      if (got.length === count) done();
    },
    { noAck },
  );
  await within(all, 5000, `only ${got.length} of ${count} arrived`);
  await channel.cancel(consumerTag);
  return got;
}

describe("amqplib against depot", () => {
  let depot;
  let connection;

  before(async () => {
    depot = await startDepot({ amqp: true });
    connection = await amqp.connect(depot.amqpUrl);
  });

  after(async () => {
    await connection?.close();
    await depot?.stop();
  });

  test("topic routing, consume and ack", async () => {
    const ch = await connection.createChannel();
    await ch.assertExchange("js-events", "topic", { durable: false });
    const { queue } = await ch.assertQueue("", { exclusive: true });
    assert.match(queue, /^amq\.gen-/);
    await ch.bindQueue(queue, "js-events", "order.*.created");
    for (const key of ["order.eu.created", "order.eu.paid", "order.us.created"]) {
      ch.publish("js-events", key, Buffer.from(key), { contentType: "text/plain", headers: { k: key } });
    }
    const got = await take(ch, queue, 2);
    assert.deepEqual(got.map((m) => m.content.toString()), ["order.eu.created", "order.us.created"]);
    assert.equal(got[0].properties.contentType, "text/plain");
    assert.equal(got[0].properties.headers.k, "order.eu.created");
    assert.equal(got[0].fields.exchange, "js-events");
    assert.equal(got[0].fields.routingKey, "order.eu.created");
    assert.equal((await ch.checkQueue(queue)).messageCount, 0);
    await ch.close();
  });

  test("prefetch, redelivery after a channel closes, get", async () => {
    const producer = await connection.createChannel();
    await producer.assertQueue("js-work");
    for (let i = 0; i < 6; i++) producer.sendToQueue("js-work", Buffer.from(`job-${i}`));
    const worker = await connection.createChannel();
    await worker.prefetch(3);
    const held = [];
    await new Promise((resolve) => {
      worker.consume("js-work", (m) => {
        held.push(m.content.toString());
        if (held.length === 3) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(held, ["job-0", "job-1", "job-2"]); // prefetch 3, nothing acked
    await worker.close(); // unacked messages go back, first, in order
    const again = await take(producer, "js-work", 6);
    assert.deepEqual(
      again.map((m) => [m.content.toString(), m.fields.redelivered]),
      [["job-0", true], ["job-1", true], ["job-2", true], ["job-3", false], ["job-4", false], ["job-5", false]],
    );
    producer.sendToQueue("js-work", Buffer.from("one"));
    const one = await producer.get("js-work", { noAck: true });
    assert.equal(one.content.toString(), "one");
    assert.equal(await producer.get("js-work"), false);
    await producer.close();
  });

  test("confirm channel: persistent messages are confirmed; reject-publish is nacked", async () => {
    const ch = await connection.createConfirmChannel();
    await ch.assertQueue("js-durable", { durable: true });
    await ch.assertQueue("js-full", { arguments: { "x-max-length": 1, "x-overflow": "reject-publish" } });
    const confirmed = [];
    for (let i = 0; i < 20; i++) {
      confirmed.push(
        new Promise((resolve, reject) =>
          ch.sendToQueue("js-durable", Buffer.from(`${i}`), { persistent: true }, (err) =>
            err ? reject(err) : resolve(i),
          ),
        ),
      );
    }
    assert.equal((await Promise.all(confirmed)).length, 20);
    await new Promise((resolve, reject) =>
      ch.sendToQueue("js-full", Buffer.from("fits"), {}, (err) => (err ? reject(err) : resolve())),
    );
    const refused = await new Promise((resolve) =>
      ch.sendToQueue("js-full", Buffer.from("no room"), {}, (err) => resolve(err)),
    );
    assert.ok(refused, "the second message is nacked");
    assert.equal((await ch.checkQueue("js-durable")).messageCount, 20);
    await ch.close();
  });

  test("nack without requeue dead-letters with x-death", async () => {
    const ch = await connection.createChannel();
    await ch.assertExchange("js-dlx", "fanout");
    await ch.assertQueue("js-dead");
    await ch.bindQueue("js-dead", "js-dlx", "");
    await ch.assertQueue("js-jobs", { deadLetterExchange: "js-dlx" });
    ch.sendToQueue("js-jobs", Buffer.from("poison"));
    const [message] = await take(ch, "js-jobs", 1, { noAck: true });
    assert.equal(message.content.toString(), "poison");
    // With noAck it was settled as it went out; the next one is nacked.
    ch.sendToQueue("js-jobs", Buffer.from("poison-2"));
    const got = await ch.get("js-jobs");
    ch.nack(got, false, false);
    const dead = await take(ch, "js-dead", 1);
    assert.equal(dead[0].content.toString(), "poison-2");
    const death = dead[0].properties.headers["x-death"][0];
    assert.equal(death.reason, "rejected");
    assert.equal(death.queue, "js-jobs");
    assert.equal(death.count, 1);
    await ch.close();
  });

  test("a missing queue closes the channel with 404, and the connection stays", async () => {
    const ch = await connection.createChannel();
    const closed = new Promise((resolve) => ch.on("error", resolve));
    await assert.rejects(ch.checkQueue("js-none"), /404 \(NOT-FOUND\)/);
    const error = await closed;
    assert.equal(error.code, 404);
    const other = await connection.createChannel();
    await other.assertQueue("js-still-works");
    await other.close();
  });

  test("connection.update-secret is answered and the connection goes on", async () => {
    // RabbitMQ's extension for refreshing expiring credentials (amqplib's own suite uses it).
    await within(
      connection.updateSecret(Buffer.from("a refreshed secret"), "token refresh"),
      5000,
      "no connection.update-secret-ok",
    );
    const ch = await connection.createChannel();
    await ch.assertQueue("js-after-update-secret");
    ch.sendToQueue("js-after-update-secret", Buffer.from("still here"));
    const got = await take(ch, "js-after-update-secret", 1);
    assert.equal(got[0].content.toString(), "still here");
    await ch.close();
  });

  test("queue.delete-ok comes before the consumer's cancellation", async () => {
    // As RabbitMQ orders them. A client that closes the channel on the cancel (amqplib's own
    // suite does) loses a reply that comes after it: deleteQueue would reject with "Channel
    // ended". The queue is durable, so the reply waits for the deletion to be on disk first.
    const ch = await connection.createChannel();
    await ch.assertQueue("js-deleted-under-consumer", { durable: true });
    let onCancel;
    const closed = new Promise((resolve) => {
      onCancel = resolve;
    });
    await ch.consume("js-deleted-under-consumer", (message) => {
      if (message === null) onCancel(ch.close());
    });
    await within(ch.deleteQueue("js-deleted-under-consumer"), 5000, "no queue.delete-ok");
    await within(closed, 5000, "no cancellation");
  });

  test("closing with publishes still queued gets close-ok, not a reset", async () => {
    // amqplib writes frames it had queued after its connection.close; depot waits for the
    // client to close the socket (as close-ok asks) instead of resetting it under them.
    const own = await amqp.connect(depot.amqpUrl);
    const errors = [];
    own.on("error", (error) => errors.push(error.message));
    const ch = await own.createChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true });
    while (ch.sendToQueue(queue, Buffer.from("until the channel pushes back"))) {}
    await within(own.close(), 5000, "no connection.close-ok");
    assert.deepEqual(errors, []);
  });
});

describe("amqplib: persistence across a depot restart", () => {
  test("persistent messages in a durable queue survive; transient ones do not", async () => {
    let depot = await startDepot({ amqp: true });
    const dir = depot.dir;
    let connection = await amqp.connect(depot.amqpUrl);
    let ch = await connection.createConfirmChannel();
    await ch.assertQueue("js-keep", { durable: true });
    ch.sendToQueue("js-keep", Buffer.from("kept"), { persistent: true });
    ch.sendToQueue("js-keep", Buffer.from("lost"), { persistent: false });
    await ch.waitForConfirms();
    await connection.close();
    await depot.stop({ keepData: true });

    depot = await startDepot({ amqp: true, dataDir: dir });
    connection = await amqp.connect(depot.amqpUrl);
    ch = await connection.createChannel();
    const first = await ch.get("js-keep", { noAck: true });
    assert.equal(first.content.toString(), "kept");
    assert.equal(first.properties.deliveryMode, 2);
    assert.equal(await ch.get("js-keep"), false);
    await connection.close();
    await depot.stop();
  });
});
