/**
 * A replay through the JetStream engine alone (no gateway), the way the hub
 * reads one: pages of 500 after the last seq until `hasMore` is false, on a
 * single-node nats-server. Prints events/s and CPU per event of this process
 * and of the nats-server, for this tree and, with BENCH_BASE_DIR, a baseline
 * tree (alternating reps). `--other N` puts one event of another channel
 * before every N-th of the replayed one (a channel among others; 0: alone).
 *
 *   npx tsx loadtest/engine-replay.ts [--events 20000] [--other 10] [--reps 4]
 *   BENCH_BASE_DIR=/tmp/tidings-base NATS_SERVER_BIN=<path> npx tsx loadtest/engine-replay.ts
 */
import { startNats } from "../shared/test/nats-harness.js";
import { benchOptions, median } from "./bench-kit.js";
import { findNatsServer, procCpuSeconds } from "./gateway-servers.js";

const opts = benchOptions({ events: "20000", other: "0", reps: "4" });
const EVENTS = Number(opts.events);
const OTHER = Number(opts.other);
const REPS = Number(opts.reps);
const ROOT = new URL("../", import.meta.url).pathname;

interface Engine {
  ensureApp(app: string, l: object): Promise<void>;
  publish(app: string, ch: string, e: object, o?: object): Promise<{ seq: number }>;
  history(
    app: string,
    ch: string,
    q: object,
  ): Promise<{ events: { seq: number }[]; hasMore: boolean }>;
  close(): Promise<void>;
}

const trees: [string, string][] = [["this tree", ROOT]];
if (process.env.BENCH_BASE_DIR) trees.push(["baseline", process.env.BENCH_BASE_DIR]);

await using nats = await startNats();
const natsPid = findNatsServer(nats.url(0)).pid;
const engines = new Map<string, Engine>();
for (const [name, dir] of trees) {
  const { JetStreamEngine } = await import(`${dir}/shared/src/engine/jetstream.ts`);
  engines.set(name, await JetStreamEngine.connect({ servers: nats.url(0), name }));
}
const writer = engines.get("this tree");
if (!writer) throw new Error("no engine");
const limits = { historyPerChannel: 1_000_000, historyMaxAgeSec: 0, dedupeWindowSec: 120 };
await writer.ensureApp("bench", limits);
const body = { name: "bench", data: { text: "x".repeat(80) }, userId: "p0", via: "herald" };
let expected = 0;
for (let done = 0; done < EVENTS; done += 500) {
  await Promise.all(
    Array.from({ length: 500 }, (_, i) => {
      const other = OTHER > 0 && (done + i) % OTHER === 0;
      if (!other) expected++;
      return writer.publish("bench", other ? "other" : "room", body, {
        idempotencyKey: `k${done + i}`,
      });
    }),
  );
}

const rows = new Map<string, { rate: number[]; cpu: number[]; nats: number[] }>();
for (let rep = 0; rep < REPS; rep++) {
  const order = rep % 2 === 0 ? trees : [...trees].reverse();
  for (const [name] of order) {
    const engine = engines.get(name);
    if (!engine) continue;
    const c0 = process.cpuUsage();
    const n0 = procCpuSeconds(natsPid);
    const t0 = performance.now();
    let got = 0;
    for (let after = 0, more = true; more; ) {
      const page = await engine.history("bench", "room", { afterSeq: after, limit: 500 });
      got += page.events.length;
      after = page.events.at(-1)?.seq ?? after;
      more = page.hasMore;
    }
    if (got !== expected) throw new Error(`${name}: replayed ${got} of ${expected}`);
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const row = rows.get(name) ?? { rate: [], cpu: [], nats: [] };
    row.rate.push((got / ms) * 1000);
    row.cpu.push((c.user + c.system) / got);
    row.nats.push(((procCpuSeconds(natsPid) - n0) * 1e6) / got);
    rows.set(name, row);
  }
}
for (const e of engines.values()) await e.close();

console.log(
  `replay of ${expected} events in pages of 500${OTHER ? `, one other event per ${OTHER}` : ""}; medians of ${REPS}`,
);
console.log("| tree | events/s | client µs/event | nats-server µs/event |");
for (const [name, r] of rows)
  console.log(
    `| ${name} | ${median(r.rate).toFixed(0)} | ${median(r.cpu).toFixed(1)} | ${median(r.nats).toFixed(1)} |`,
  );
