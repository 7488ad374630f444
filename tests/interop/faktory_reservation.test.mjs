// Reservation expiry with the npm `faktory-worker` client: a job fetched and never acknowledged
// comes back once its reservation (Faktory's minimum, 60 s) runs out. Slow by nature, so it has
// a file of its own and runs beside the others.
import assert from "node:assert/strict";
import { test } from "node:test";

import faktory from "faktory-worker";

import { startDepot } from "./depot.mjs";

test("an unacknowledged job is redelivered after its reservation expires", { timeout: 120000 },
  async () => {
    const depot = await startDepot();
    const client = new faktory.Client({ url: depot.url });
    try {
      const job = client.job("Forgotten", 1);
      job.queue = "forgetful";
      job.reserveFor = 60;
      const jid = await job.push();
      const first = await client.fetch("forgetful");
      assert.equal(first.jid, jid);
      assert.equal(first.reserve_for, 60);
      // Never acknowledged. After 60 s the reservation expires and the job is failed with
      // ReservationExpired, which schedules its retry (Faktory's backoff: 15..44 s).
      const start = Date.now();
      for (;;) {
        const info = await client.info();
        if (info.faktory.sets.retries === 1) break;
        assert.ok(Date.now() - start < 70000, "the reservation did not expire within 70 s");
        await new Promise((r) => setTimeout(r, 500));
      }
      const waited = (Date.now() - start) / 1000;
      assert.ok(waited >= 55, `expired after only ${waited} s`);
      // Skip the backoff: bring the retry back now, as an operator would.
      await client.retries.withJids(jid).requeue();
      const again = await client.fetch("forgetful");
      assert.equal(again.jid, jid);
      assert.equal(again.failure.errtype, "ReservationExpired");
      assert.equal(again.failure.message, "Faktory job reservation expired");
      await client.ack(jid);
    } finally {
      await client.close();
      await depot.stop();
    }
  });
