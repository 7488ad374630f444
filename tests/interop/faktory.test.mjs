// The npm `faktory-worker` client (4.x, unmodified) against a spawned depot.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import faktory from "faktory-worker";

import net from "node:net";

import { startDepot } from "./depot.mjs";

// Connects, reads the greeting, answers HELLO with `pwdhash`, and returns what the server said.
const helloWith = (port, pwdhash) =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    let greeting = null;
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      data += chunk;
      if (greeting === null && data.includes("\r\n")) {
        greeting = data.slice(0, data.indexOf("\r\n") + 2);
        data = data.slice(greeting.length);
        socket.write(`HELLO {"v":2,"hostname":"h","pwdhash":"${pwdhash}"}\r\n`);
      }
    });
    socket.on("end", () => resolve({ greeting, answer: data, closed: true }));
    socket.on("error", reject);
    setTimeout(() => {
      socket.destroy();
      resolve({ greeting, answer: data, closed: false });
    }, 3000);
  });

const waitFor = async (predicate, what, timeoutMs = 10000) => {
  const start = Date.now();
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("faktory-worker against depot", () => {
  let depot;
  let client;
  before(async () => {
    depot = await startDepot();
    client = new faktory.Client({ url: depot.url });
  });
  after(async () => {
    await client?.close();
    await depot?.stop();
  });

  test("pushes jobs and processes them with concurrency", async () => {
    const control = faktory.create();
    const seen = new Map();
    let running = 0;
    let maxRunning = 0;
    control.register("Add", async (a, b) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 20));
      seen.set(`${a}+${b}`, a + b);
      running--;
    });
    for (let i = 0; i < 40; i++) {
      await client.job("Add", i, i * 10).push();
    }
    const worker = await control.work({ url: depot.url, concurrency: 5, queues: ["default"] });
    await waitFor(() => seen.size === 40, "40 jobs to run");
    await worker.stop();
    assert.equal(seen.get("7+70"), 77);
    assert.ok(maxRunning > 1 && maxRunning <= 5, `ran ${maxRunning} at once`);
    const info = await client.info();
    assert.equal(info.faktory.total_processed, 40);
    assert.equal(info.faktory.queues.default, 0);
  });

  test("custom data round-trips unchanged, however deeply nested", async () => {
    const custom = { trace: { id: "abc", spans: [1, { deep: [true, null, 2.5] }] }, "ü": "ñ" };
    const job = client.job("Inspect", "x");
    job.queue = "inspect";
    job.custom = custom;
    await job.push();
    const fetched = await client.fetch("inspect");
    assert.deepEqual(fetched.custom, custom);
    assert.deepEqual(fetched.args, ["x"]);
    await client.ack(fetched.jid);
  });

  test("a job that throws is failed and its retry scheduled with Faktory's backoff", async () => {
    const control = faktory.create();
    control.register("Explode", async () => {
      throw new Error("kaboom");
    });
    const job = client.job("Explode");
    job.queue = "explode";
    const jid = await job.push();
    const worker = await control.work({ url: depot.url, concurrency: 1, queues: ["explode"] });
    await waitFor(async () => (await client.info()).faktory.sets.retries === 1, "a retry");
    await worker.stop();
    // Bring the retry back now and look at what the failure recorded.
    await client.retries.withJids(jid).requeue();
    const retried = await client.fetch("explode");
    assert.equal(retried.jid, jid);
    assert.equal(retried.failure.message, "kaboom");
    assert.equal(retried.failure.retry_count, 0);
    assert.equal(retried.failure.remaining, 25);
    const delay = (Date.parse(retried.failure.next_at) - Date.parse(retried.failure.failed_at)) / 1000;
    assert.ok(delay >= 15 && delay < 45, `first retry after ${delay} s, Faktory's 15..44 s`);
    assert.ok(retried.failure.backtrace.length > 0);
    await client.ack(jid);
  });

  test("errors come back as Faktory's texts", async () => {
    await assert.rejects(client.push({ jid: "short", jobtype: "X", args: [] }), /reasonable jid/);
    await assert.rejects(client.push({ jid: "long-enough-jid", args: [] }), /jobtype/);
    await assert.rejects(client.fail("not-reserved-123", new Error("m")), /Job not found/);
  });

  test("PUSHB reports the jobs it refused", async () => {
    const rejected = await client.pushBulk([
      { jid: "bulk-job-0001", jobtype: "B", args: [], queue: "bulk" },
      { jid: "bad", jobtype: "B", args: [], queue: "bulk" },
    ]);
    assert.deepEqual(Object.keys(rejected), ["bad"]);
    assert.equal((await client.info()).faktory.queues.bulk, 1);
  });
});

describe("password", () => {
  test("a client with the password is admitted and one without is refused", async () => {
    const depot = await startDepot({ extraArgs: ["--password", "s3cret"] });
    try {
      const good = new faktory.Client({ url: `tcp://:s3cret@127.0.0.1:${depot.jobsPort}` });
      await good.job("Secure").push();
      assert.equal((await good.info()).faktory.queues.default, 1);
      await good.close();
      // The client library retries a refused handshake forever, so check the refusal on the wire.
      const reply = await helloWith(depot.jobsPort, "0".repeat(64));
      assert.match(reply.greeting, /^\+HI \{"v":2,"i":\d+,"s":"[0-9a-f]+"\}\r\n$/);
      assert.equal(reply.answer, "-ERR Invalid password\r\n");
      assert.ok(reply.closed, "the connection is closed after a wrong password");
    } finally {
      await depot.stop();
    }
  });
});

describe("durability", () => {
  test("waiting jobs survive a restart", async () => {
    const first = await startDepot();
    const c1 = new faktory.Client({ url: first.url });
    for (let i = 0; i < 10; i++) await c1.job("Keep", i).push();
    await c1.close();
    await first.stop({ keepData: true });
    const second = await startDepot({ dataDir: first.dir });
    try {
      const c2 = new faktory.Client({ url: second.url });
      assert.equal((await c2.info()).faktory.queues.default, 10);
      const job = await c2.fetch("default");
      assert.deepEqual(job.args, [0]);
      await c2.close();
    } finally {
      await second.stop();
    }
  });
});

describe("worker control from the server", () => {
  test("quiet and terminate from the admin API reach the worker through BEAT", async () => {
    const depot = await startDepot();
    const worker = new faktory.Worker({
      url: depot.url,
      concurrency: 1,
      beatInterval: 0.2,
      queues: ["control"],
      registry: { Control: async () => {} },
    });
    // Worker.beat() calls stop() when the server says terminate; keep its promise to await it.
    let stopping = null;
    const stop = worker.stop.bind(worker);
    worker.stop = () => (stopping ??= stop());
    try {
      await worker.work();
      const listed = await waitFor(async () => {
        const { body } = await depot.admin("/api/jobs/workers");
        return body.workers.length === 1 ? body.workers[0] : null;
      }, "the worker to register");
      assert.equal(listed.state, "running");

      const quiet = await depot.admin(`/api/jobs/workers/${listed.wid}/quiet`, { method: "POST" });
      assert.deepEqual(quiet, { status: 200, body: { state: "quiet", signalled: 1 } });
      await waitFor(() => worker.quieted, "BEAT to quiet the worker");
      assert.equal(stopping, null, "quiet is not terminate");
      // A quiet worker fetches nothing more: the job stays in its queue.
      const client = new faktory.Client({ url: depot.url });
      const job = client.job("Control");
      job.queue = "control";
      await job.push();
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await client.info()).faktory.queues.control, 1);
      await client.close();

      const terminate = await depot.admin(`/api/jobs/workers/${listed.wid}/terminate`, {
        method: "POST",
      });
      assert.equal(terminate.status, 200);
      await waitFor(() => stopping !== null, "BEAT to terminate the worker");
      await stopping;
      const unknown = await depot.admin("/api/jobs/workers/nobody/quiet", { method: "POST" });
      assert.equal(unknown.status, 404);
    } finally {
      await worker.stop();
      await depot.stop();
    }
  });
});
