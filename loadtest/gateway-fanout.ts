/**
 * Fan-out benchmark: N WebSocket subscribers spread over C channels (one by
 * default), M events published at a fixed rate round-robin over the
 * channels, measuring delivery rate, publish→receive latency and server CPU
 * per delivery. Runs the servers named in --servers alternating (Tidings
 * and, when SOKETI_DIR is set, Soketi) and prints the ratios of the first
 * server's medians to each other's. A script, not a test.
 *
 *   npm run bench:fanout -- --conns 500 --events 2000 --rate 100 --runs 3
 *   npm run bench:fanout -- --conns 2000 --channels 2000 --rate 200
 *   npm run bench:fanout -- --servers tidings-nats,tidings   # JetStream vs memory
 *   npm run bench:fanout -- --dialect herald        # Tidings only
 *   npm run bench:fanout -- --idle 10   # also the CPU each process spends idle with everyone connected
 *
 * Every option also reads BENCH_<NAME> from the environment (BENCH_CONNS=...).
 */

import type WebSocket from "ws";
import { benchOptions, fmt, median, ratioPairs } from "./bench-kit.js";
import { CHANNEL, type DialectName, dialects } from "./gateway-clients.js";
import { procCpuSeconds, type ServerName, serverNames, startServer } from "./gateway-servers.js";

const defaults = {
  conns: "500",
  channels: "1",
  events: "2000",
  rate: "100",
  size: "100",
  runs: "2",
  idle: "0",
  dialect: "pusher",
  servers: process.env.SOKETI_DIR ? "tidings,soketi" : "tidings",
};
const args = benchOptions(defaults);
const opt = {
  conns: Number(args.conns),
  channels: Number(args.channels),
  events: Number(args.events),
  rate: Number(args.rate),
  size: Number(args.size),
  runs: Number(args.runs),
  idle: Number(args.idle),
  dialect: args.dialect as DialectName,
  servers: String(args.servers).split(",") as ServerName[],
};
if (!(opt.dialect in dialects)) throw new Error(`--dialect must be pusher or herald`);
for (const s of opt.servers)
  if (!serverNames.includes(s)) throw new Error(`--servers: one of ${serverNames.join(", ")}`);
if (opt.dialect === "herald" && opt.servers.includes("soketi"))
  throw new Error("Soketi speaks only Pusher: use --dialect pusher, or --servers tidings");
if (!(opt.channels >= 1 && opt.channels <= opt.conns))
  throw new Error("--channels must be between 1 and --conns");
if (opt.dialect === "herald" && opt.channels > 1)
  throw new Error("the Herald bench client uses one channel: --channels 1");

/** Subscriber n and event n go to channel n mod C; one channel keeps the plain name. */
const channelOf = (n: number) => (opt.channels === 1 ? CHANNEL : `${CHANNEL}-${n % opt.channels}`);
/** Subscribers per channel index, so the expected delivery count is exact. */
const subscribersOf = (c: number) =>
  Math.floor(opt.conns / opt.channels) + (c < opt.conns % opt.channels ? 1 : 0);

interface Result {
  server: ServerName;
  run: number;
  expected: number;
  received: number;
  publishErrors: number;
  closedEarly: number;
  deliveriesPerSec: number;
  p50: number;
  p99: number;
  max: number;
  publishP50: number;
  serverCpuUsPerDelivery: number;
  /** The same CPU split per process (gateway first, then nats-server for tidings-nats). */
  cpuUsPerDeliveryByPid: number[];
  /** CPU ms per second each process spent with every subscriber connected and nothing published (--idle S). */
  idleMsPerSecByPid: number[];
  rssMiB: number;
  /** (RSS with every subscriber connected − RSS of the idle server) ÷ conns. */
  kibPerConn: number;
  connectSec: number;
}

// `"i":123,"t":456.7` inside the event data, JSON-escaped once by both dialects.
const STAMP = /\\"i\\":(\d+),\\"t\\":([\d.]+)/;

async function runOnce(serverName: ServerName, run: number): Promise<Result> {
  const server = await startServer(serverName);
  const dialect = dialects[opt.dialect];
  const latencies = new Float64Array(opt.conns * opt.events);
  let received = 0;
  let lastReceiveAt = 0;
  const onFrame = (text: string) => {
    const m = STAMP.exec(text);
    if (!m) return;
    const now = performance.now();
    latencies[received++] = now - Number(m[2]);
    lastReceiveAt = now;
  };
  const sockets: WebSocket[] = [];
  let closedEarly = 0;
  let publisher: Awaited<ReturnType<typeof dialect.publisher>> | undefined;
  try {
    // Let startup garbage settle so the idle figure is the server at rest.
    await new Promise((r) => setTimeout(r, 1000));
    const idleRssMiB = server.rssMiB();
    const connectStart = performance.now();
    // A bounded number of handshakes in flight: this measures fan-out, not a connect storm.
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < opt.conns) {
          const n = next++;
          const ws = await dialect.subscribe(server.port, n, onFrame, channelOf(n));
          ws.on("close", () => closedEarly++);
          sockets.push(ws);
        }
      }),
    );
    const connectSec = (performance.now() - connectStart) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const kibPerConn = ((server.rssMiB() - idleRssMiB) * 1024) / opt.conns;
    publisher = await dialect.publisher(server.port);
    // What the server spends doing nothing (timers, heartbeats, pings): at a
    // low publish rate this is part of every event's measured cost.
    let idleMsPerSecByPid: number[] = [];
    if (opt.idle > 0) {
      const before = cpuByPid(server.pids);
      await new Promise((r) => setTimeout(r, opt.idle * 1000));
      idleMsPerSecByPid = cpuByPid(server.pids, before).map((c) => (c * 1000) / opt.idle);
    }

    const pad = "x".repeat(Math.max(0, opt.size - 40));
    const publishLatencies: number[] = [];
    let publishErrors = 0;
    let expected = 0;
    let firstError: unknown;
    const inFlight = new Set<Promise<void>>();
    const cpuBefore = cpuByPid(server.pids);
    const start = performance.now();
    for (let i = 0; i < opt.events; i++) {
      // Open loop at a fixed rate: wait for the slot, not for the previous answer.
      const due = start + (i * 1000) / opt.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      while (inFlight.size >= 256) await Promise.race(inFlight);
      const t = performance.now();
      const p: Promise<void> = publisher
        .publish(`{"i":${i},"t":${t.toFixed(3)},"p":"${pad}"}`, channelOf(i))
        .then(
          () => {
            publishLatencies.push(performance.now() - t);
            expected += subscribersOf(i % opt.channels);
          },
          (err: unknown) => {
            publishErrors++;
            firstError ??= err;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    if (firstError) console.error(`${serverName}: publish error:`, firstError);
    // Wait for stragglers: until all arrived or nothing arrived for 3 s.
    for (;;) {
      if (received >= expected) break;
      const before = received;
      await new Promise((r) => setTimeout(r, 3000));
      if (received === before) break;
    }
    const cpuUsed = cpuByPid(server.pids, cpuBefore);
    const cpu = cpuUsed.reduce((a, c) => a + c, 0);
    const crash = server.crash();
    if (crash) console.error(crash);
    const sorted = latencies.subarray(0, received).sort();
    const pick = (q: number) => sorted[Math.min(received - 1, Math.floor(q * received))] ?? NaN;
    publishLatencies.sort((a, b) => a - b);
    return {
      server: serverName,
      run,
      expected,
      received,
      publishErrors,
      closedEarly,
      deliveriesPerSec: received / ((lastReceiveAt - start) / 1000),
      p50: pick(0.5),
      p99: pick(0.99),
      max: sorted[received - 1] ?? NaN,
      publishP50: publishLatencies[Math.floor(publishLatencies.length / 2)] ?? NaN,
      serverCpuUsPerDelivery: (cpu * 1e6) / Math.max(1, received),
      cpuUsPerDeliveryByPid: cpuUsed.map((c) => (c * 1e6) / Math.max(1, received)),
      idleMsPerSecByPid,
      rssMiB: server.rssMiB(),
      kibPerConn,
      connectSec,
    };
  } finally {
    publisher?.close();
    for (const ws of sockets) {
      ws.removeAllListeners("close");
      ws.terminate();
    }
    await server.stop();
  }
}

/** CPU seconds of each process (`server.pids`, which `cpuSeconds` sums), or their growth since `since`. */
function cpuByPid(pids: number[], since?: number[]): number[] {
  return pids.map((pid, i) => procCpuSeconds(pid) - (since?.[i] ?? 0));
}

function printRow(r: Result) {
  console.log(
    [
      r.server.padEnd(12),
      String(r.run).padStart(3),
      `${r.received}/${r.expected}`.padStart(17),
      fmt(r.deliveriesPerSec, 0).padStart(10),
      fmt(r.p50, 2).padStart(8),
      fmt(r.p99, 2).padStart(8),
      fmt(r.max, 1).padStart(8),
      fmt(r.publishP50, 2).padStart(8),
      fmt(r.serverCpuUsPerDelivery, 2).padStart(8),
      fmt(r.rssMiB, 0).padStart(6),
      fmt(r.kibPerConn, 2).padStart(8),
      String(r.publishErrors + r.closedEarly).padStart(6),
      // Per process when more than one is counted, and the idle cost when measured.
      r.cpuUsPerDeliveryByPid.length > 1
        ? `  cpu/d ${r.cpuUsPerDeliveryByPid.map((c) => fmt(c, 0)).join("+")}`
        : "",
      r.idleMsPerSecByPid.length
        ? `  idle ms/s ${r.idleMsPerSecByPid.map((c) => fmt(c, 1)).join("+")}`
        : "",
    ].join(" "),
  );
}

async function main() {
  console.log(
    `fan-out: ${opt.conns} conns on ${opt.channels} channel(s), ${opt.events} events at ${opt.rate}/s, ` +
      `~${opt.size} B, dialect ${opt.dialect}, servers ${opt.servers.join(",")}, ${opt.runs} run(s)`,
  );
  console.log(
    "server       run  received/expected  deliv/s  p50 ms  p99 ms  max ms  pub p50  cpu µs/d  RSS MB  KiB/conn  errors",
  );
  const results: Result[] = [];
  for (let run = 1; run <= opt.runs; run++) {
    // Alternate the order so drift on a noisy machine hits both servers alike.
    const order = run % 2 === 1 ? opt.servers : [...opt.servers].reverse();
    for (const s of order) {
      const r = await runOnce(s, run);
      results.push(r);
      printRow(r);
    }
  }
  const summary = (s: ServerName) => {
    const rs = results.filter((r) => r.server === s);
    return {
      rate: median(rs.map((r) => r.deliveriesPerSec)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      cpu: median(rs.map((r) => r.serverCpuUsPerDelivery)),
      kib: median(rs.map((r) => r.kibPerConn)),
      lossFree: rs.every((r) => r.received === r.expected && r.publishErrors === 0),
    };
  };
  console.log("\nmedians:");
  for (const s of opt.servers) {
    const m = summary(s);
    console.log(
      `  ${s.padEnd(12)} ${fmt(m.rate, 0)} deliveries/s, p50 ${fmt(m.p50, 2)} ms, p99 ${fmt(m.p99, 2)} ms, ` +
        `${fmt(m.cpu, 2)} µs server CPU/delivery, ${fmt(m.kib, 2)} KiB RSS/conn, ${m.lossFree ? "no loss" : "LOSS OR ERRORS"}`,
    );
  }
  for (const [first, other] of ratioPairs(opt.servers)) {
    const t = summary(first);
    const k = summary(other);
    console.log(
      `\n${first}/${other}: delivery rate ${fmt(t.rate / k.rate, 2)}x, p50 ${fmt(t.p50 / k.p50, 2)}x, ` +
        `p99 ${fmt(t.p99 / k.p99, 2)}x, CPU/delivery ${fmt(t.cpu / k.cpu, 2)}x, RSS/conn ${fmt(t.kib / k.kib, 2)}x ` +
        "(latency, CPU and RSS: lower is better)",
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
