/**
 * What reads cost on a 3-node cluster with R3 streams (not a test): a replay
 * page of 1,000, an `afterSeq` page of 50, the newest 50, and a gap fill of
 * 2 events, each the median of `--reps` reads, for this tree and, with
 * BENCH_BASE_DIR, a baseline tree in the same run (alternating rounds).
 *
 *   npx tsx loadtest/engine-reads.ts [--reps 40] [--rounds 3]
 *   BENCH_BASE_DIR=/tmp/tidings-base npx tsx loadtest/engine-reads.ts
 *
 * BENCH_NATS_BIN picks the nats-server binary (default: the harness's).
 */
import { existsSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { eventSubject, streamName } from "../shared/src/subjects.js";
import { startCluster } from "../shared/test/nats-harness.js";
import { benchOptions, fmt, median } from "./bench-kit.js";

const opts = benchOptions({ reps: "40", rounds: "3" });
const REPS = Number(opts.reps);
const ROUNDS = Number(opts.rounds);
const ROOT = new URL("../", import.meta.url).pathname;
const limits = { historyPerChannel: 100_000, historyMaxAgeSec: 0, dedupeWindowSec: 120 };

interface Engine {
  ensureApp(app: string, l: typeof limits): Promise<void>;
  publish(app: string, ch: string, e: { name: string; data: unknown }): Promise<{ seq: number }>;
  history(app: string, ch: string, q: object): Promise<{ events: unknown[] }>;
  close(): Promise<void>;
}
interface Reader {
  readRange(s: string, subj: string, from: number, max: number, stop: unknown): Promise<unknown>;
}

async function load(dir: string) {
  const { JetStreamEngine } = await import(`${dir}/shared/src/engine/jetstream.ts`);
  const { StreamReader } = await import(`${dir}/shared/src/engine/js-reader.ts`);
  // Trees before leader reads took the fill's upper bound as a plain number.
  const optionsArg = existsSync(`${dir}/shared/src/engine/js-repeats.ts`);
  return { JetStreamEngine, StreamReader, optionsArg };
}

const trees: [string, string][] = [["this tree", ROOT]];
if (process.env.BENCH_BASE_DIR) trees.push(["baseline", process.env.BENCH_BASE_DIR]);

await using cluster = await startCluster(3, { bin: process.env.BENCH_NATS_BIN });
const nc = await connect({ servers: cluster.urls, noAsyncTraces: true });
const setup = (await load(ROOT)).JetStreamEngine;
const writer: Engine = await setup.connect({ servers: cluster.urls, name: "w", replicas: 3 });
const app = "reads";
await writer.ensureApp(app, limits);
const seqs: number[] = [];
for (let i = 0; i < 2_000; i += 200) {
  await Promise.all(
    Array.from({ length: 200 }, async (_, j) => {
      // One channel among many, as in production: its seqs are sparse.
      await writer.publish(app, `other${j % 20}`, { name: "o", data: i + j });
      seqs.push((await writer.publish(app, "room", { name: "n", data: i + j })).seq);
    }),
  );
}
seqs.sort((a, b) => a - b);

const results = new Map<string, Map<string, number[]>>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, dir] of trees) {
    const { JetStreamEngine, StreamReader, optionsArg } = await load(dir);
    const engine: Engine = await JetStreamEngine.connect({
      servers: cluster.urls,
      name,
      replicas: 3,
    });
    await engine.ensureApp(app, limits);
    // Trees before raw pulls also took a JetStream client (a fourth argument).
    const jsm = await jetstreamManager(nc);
    const reader: Reader =
      StreamReader.length === 4
        ? new StreamReader(nc, jetstream(nc), jsm, 5000)
        : new StreamReader(nc, jsm, 5000);
    const by = results.get(name) ?? new Map<string, number[]>();
    results.set(name, by);
    const time = async (what: string, fn: () => Promise<unknown>) => {
      const all = by.get(what) ?? [];
      for (let i = 0; i < REPS; i++) {
        const t0 = performance.now();
        await fn();
        all.push(performance.now() - t0);
      }
      by.set(what, all);
    };
    const mid = seqs[500] ?? 0;
    await time("replay page of 1,000", () =>
      engine.history(app, "room", { afterSeq: mid, limit: 1_000 }),
    );
    await time("afterSeq page of 50", () =>
      engine.history(app, "room", { afterSeq: mid, limit: 50 }),
    );
    await time("newest 50", () => engine.history(app, "room", { limit: 50 }));
    // What a gap fill reads: the 2 events between the last delivered and the live one.
    const [from, until] = [(seqs[999] ?? 0) + 1, seqs[1002] ?? 0];
    const stop = optionsArg ? { stopBeforeSeq: until, serialSteps: 4 } : until;
    await time("gap fill of 2", () =>
      reader.readRange(streamName(app), eventSubject(app, "room"), from, 1e9, stop),
    );
    await engine.close();
  }
}
await writer.close();
await nc.close();

console.log(`3-node cluster, R3 stream, ${ROUNDS} rounds x ${REPS} reads, median ms`);
const names = [...results.keys()];
console.log(`| read | ${names.join(" | ")} |${names.length > 1 ? " ratio |" : ""}`);
for (const what of results.get(names[0] ?? "")?.keys() ?? []) {
  const meds = names.map((n) => median(results.get(n)?.get(what) ?? []));
  const ratio = meds.length > 1 ? ` ${fmt((meds[0] ?? 0) / (meds[1] ?? 1), 2)}x |` : "";
  console.log(`| ${what} | ${meds.map((m) => fmt(m, 2)).join(" | ")} |${ratio}`);
}
