// Spawns a real depot for interop tests: a fresh data directory, free ports for the jobs face and
// the HTTP admin API (and the AMQP and Kafka faces when asked), the other faces off, and a stop()
// that sends SIGTERM and checks the exit status.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const depotBinary =
  process.env.DEPOT_BINARY ?? path.resolve(import.meta.dirname, "../../build/release/depot");

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function waitForPort(port, child, deadlineMs = 10000) {
  const start = Date.now();
  while (Date.now() - start < deadlineMs) {
    if (child.exitCode !== null) throw new Error(`depot exited early with ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`depot did not listen on ${port} within ${deadlineMs} ms`);
}

// With `amqp`, the AMQP face listens too (amqpPort, amqpUrl); with `kafka`, the Kafka face
// (kafkaPort, kafkaBroker). With `logFile`, depot logs at info level to depot.log in the data
// directory (read it with log()) instead of warnings to the test's own output.
export async function startDepot({ extraArgs = [], dataDir, amqp = false, kafka = false,
                                   logFile = false } = {}) {
  const dir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), "depot-interop-"));
  const jobsPort = await freePort();
  const httpPort = await freePort();
  const amqpPort = amqp ? await freePort() : null;
  const kafkaPort = kafka ? await freePort() : null;
  const logPath = path.join(dir, "depot.log");
  const args = [
    "serve", "--data-dir", dir, "--jobs-listen", `127.0.0.1:${jobsPort}`,
    "--amqp-listen", amqp ? `127.0.0.1:${amqpPort}` : "off",
    "--kafka-listen", kafka ? `127.0.0.1:${kafkaPort}` : "off",
    "--http-listen", `127.0.0.1:${httpPort}`, "--log-level", logFile ? "info" : "warn",
    ...extraArgs,
  ];
  const logFd = logFile ? openSync(logPath, "a") : null;
  const output = logFile ? logFd : "inherit";
  const child = spawn(depotBinary, args, { stdio: ["ignore", output, output] });
  if (logFile) closeSync(logFd);
  await waitForPort(jobsPort, child);
  await waitForPort(httpPort, child);
  if (amqp) await waitForPort(amqpPort, child);
  if (kafka) await waitForPort(kafkaPort, child);
  return {
    dir,
    jobsPort,
    httpPort,
    amqpPort,
    amqpUrl: amqp ? `amqp://guest:guest@127.0.0.1:${amqpPort}` : null,
    kafkaPort,
    kafkaBroker: kafka ? `127.0.0.1:${kafkaPort}` : null,
    // What depot logged so far (with `logFile`).
    log: () => (logFile ? readFileSync(logPath, "utf8") : ""),
    // The admin API: fetch(path, init) against http://127.0.0.1:httpPort; returns status and JSON.
    async admin(pathname, init = {}) {
      const response = await fetch(`http://127.0.0.1:${httpPort}${pathname}`, init);
      return { status: response.status, body: await response.json() };
    },
    url: `tcp://127.0.0.1:${jobsPort}`,
    child,
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
        child.kill("SIGTERM");
        const code = await exited;
        if (code !== 0) throw new Error(`depot exited with ${code} after SIGTERM`);
      }
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}
