/**
 * Connect-storm benchmark: N Pusher clients connect and subscribe, with a
 * bounded number of handshakes in flight, either all into one channel or
 * each into its own. Measures subscribed connections per second, server CPU
 * per connection and RSS per connection (RSS once all are subscribed minus
 * RSS of the idle server, ÷ N; with `--settle S` also S seconds later, once
 * the server had time to collect the storm's garbage), and the load client's
 * own CPU per connection (it is one Node process: at ~1 core it sets the
 * rate). Servers alternate run by run; ratios of the first server's medians
 * to each other's are printed. A script, not a test.
 *
 *   npm run bench:connect -- --conns 10000 --channels one --runs 3
 *   npm run bench:connect -- --conns 10000 --channels each --servers tidings,soketi
 *   npm run bench:connect -- --conns 10000 --channels each --settle 10
 *
 * Every option also reads BENCH_<NAME> from the environment.
 */

import type WebSocket from "ws";
import { benchOptions, fmt, median, ratioPairs } from "./bench-kit.js";
import { CHANNEL, pusher } from "./gateway-clients.js";
import { type ServerName, serverNames, startServer } from "./gateway-servers.js";

const defaults = {
  conns: "10000",
  channels: "one",
  inflight: "200",
  runs: "2",
  settle: "0",
  servers: process.env.SOKETI_DIR ? "tidings,soketi" : "tidings",
};
const args = benchOptions(defaults);
const opt = {
  conns: Number(args.conns),
  channels: String(args.channels),
  inflight: Number(args.inflight),
  runs: Number(args.runs),
  settle: Number(args.settle),
  servers: String(args.servers).split(",") as ServerName[],
};
if (opt.channels !== "one" && opt.channels !== "each" && opt.channels !== "none")
  throw new Error("--channels must be one, each or none");
for (const s of opt.servers)
  if (!serverNames.includes(s)) throw new Error(`--servers: one of ${serverNames.join(", ")}`);

interface Result {
  server: ServerName;
  run: number;
  connected: number;
  failed: number;
  connsPerSec: number;
  /** Handshake start to subscription_succeeded (or connection_established), ms. */
  subP99: number;
  cpuUsPerConn: number;
  /** This load client's own CPU per connection: the other half of the box's two cores. */
  clientUsPerConn: number;
  idleRssMiB: number;
  rssMiB: number;
  kibPerConn: number;
  /** RSS per connection after `--settle` more seconds idle (V8 collects the storm's garbage when idle). */
  settledKibPerConn: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runOnce(serverName: ServerName, run: number): Promise<Result> {
  const server = await startServer(serverName);
  const sockets: WebSocket[] = [];
  let failed = 0;
  let firstError: unknown;
  try {
    // Let startup garbage settle so the idle figure is the server at rest.
    await sleep(1000);
    const idleRssMiB = server.rssMiB();
    const cpuBefore = server.cpuSeconds();
    const clientBefore = process.cpuUsage();
    const start = performance.now();
    let next = 0;
    const took: number[] = [];
    await Promise.all(
      Array.from({ length: opt.inflight }, async () => {
        while (next < opt.conns) {
          const n = next++;
          const channel = opt.channels === "one" ? CHANNEL : `${CHANNEL}-${n}`;
          const t = performance.now();
          try {
            sockets.push(
              opt.channels === "none"
                ? await pusher.connect(server.port)
                : await pusher.subscribe(server.port, n, () => {}, channel),
            );
            took.push(performance.now() - t);
          } catch (err) {
            failed++;
            firstError ??= err;
          }
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const cpu = server.cpuSeconds() - cpuBefore;
    const client = process.cpuUsage(clientBefore);
    if (firstError) console.error(`${serverName}: connect error:`, firstError);
    await sleep(1000);
    const rssMiB = server.rssMiB();
    if (opt.settle > 0) await sleep(opt.settle * 1000);
    const settledMiB = server.rssMiB();
    const crash = server.crash();
    if (crash) console.error(crash);
    return {
      server: serverName,
      run,
      connected: sockets.length,
      failed,
      connsPerSec: sockets.length / seconds,
      subP99: took.sort((a, b) => a - b)[Math.floor(took.length * 0.99)] ?? Number.NaN,
      cpuUsPerConn: (cpu * 1e6) / Math.max(1, sockets.length),
      clientUsPerConn: (client.user + client.system) / Math.max(1, sockets.length),
      idleRssMiB,
      rssMiB,
      kibPerConn: ((rssMiB - idleRssMiB) * 1024) / Math.max(1, sockets.length),
      settledKibPerConn: ((settledMiB - idleRssMiB) * 1024) / Math.max(1, sockets.length),
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}

async function main() {
  console.log(
    `connect storm: ${opt.conns} Pusher conns, ${{ one: "one channel", each: "a channel each", none: "no channel" }[opt.channels]}, ` +
      `${opt.inflight} handshakes in flight, servers ${opt.servers.join(",")}, ${opt.runs} run(s)`,
  );
  console.log(
    `server       run  connected  failed  conns/s  sub p99 ms  cpu µs/conn  client µs  idle MB  RSS MB  KiB/conn${opt.settle > 0 ? `  KiB @+${opt.settle}s` : ""}`,
  );
  const results: Result[] = [];
  for (let run = 1; run <= opt.runs; run++) {
    // Alternate the order so drift on a noisy machine hits every server alike.
    const order = run % 2 === 1 ? opt.servers : [...opt.servers].reverse();
    for (const s of order) {
      const r = await runOnce(s, run);
      results.push(r);
      console.log(
        [
          r.server.padEnd(12),
          String(r.run).padStart(3),
          String(r.connected).padStart(10),
          String(r.failed).padStart(7),
          fmt(r.connsPerSec, 0).padStart(8),
          fmt(r.subP99, 1).padStart(11),
          fmt(r.cpuUsPerConn, 0).padStart(12),
          fmt(r.clientUsPerConn, 0).padStart(10),
          fmt(r.idleRssMiB, 0).padStart(8),
          fmt(r.rssMiB, 0).padStart(7),
          fmt(r.kibPerConn, 2).padStart(9),
          ...(opt.settle > 0 ? [fmt(r.settledKibPerConn, 2).padStart(9)] : []),
        ].join(" "),
      );
    }
  }
  const summary = (s: ServerName) => {
    const rs = results.filter((r) => r.server === s);
    return {
      rate: median(rs.map((r) => r.connsPerSec)),
      p99: median(rs.map((r) => r.subP99)),
      cpu: median(rs.map((r) => r.cpuUsPerConn)),
      client: median(rs.map((r) => r.clientUsPerConn)),
      kib: median(rs.map((r) => r.kibPerConn)),
      settled: median(rs.map((r) => r.settledKibPerConn)),
      idle: median(rs.map((r) => r.idleRssMiB)),
      ok: rs.every((r) => r.failed === 0),
    };
  };
  console.log("\nmedians:");
  for (const s of opt.servers) {
    const m = summary(s);
    console.log(
      `  ${s.padEnd(12)} ${fmt(m.rate, 0)} conns/s, subscribe p99 ${fmt(m.p99, 1)} ms, ${fmt(m.cpu, 0)} µs CPU/conn (client ${fmt(m.client, 0)}), ` +
        `${fmt(m.kib, 2)} KiB RSS/conn${opt.settle > 0 ? ` (${fmt(m.settled, 2)} ${opt.settle} s later)` : ""}, idle ${fmt(m.idle, 0)} MB, ${m.ok ? "no failures" : "FAILURES"}`,
    );
  }
  for (const [first, other] of ratioPairs(opt.servers)) {
    const a = summary(first);
    const b = summary(other);
    console.log(
      `\n${first}/${other}: conns/s ${fmt(a.rate / b.rate, 2)}x, subscribe p99 ${fmt(a.p99 / b.p99, 2)}x, CPU/conn ${fmt(a.cpu / b.cpu, 2)}x, ` +
        `RSS/conn ${fmt(a.kib / b.kib, 2)}x${opt.settle > 0 ? ` (${fmt(a.settled / b.settled, 2)}x settled)` : ""} (CPU and RSS: lower is better)`,
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
