/**
 * Publish throughput and replay speed through a real gateway, JetStream
 * engine against the memory engine measured in the same run (the ratio is
 * the figure to read; the machine is shared and noisy).
 *
 *   npm run bench:publish -- [--events 20000] [--publishers 4] [--window 64] [--runs 2]
 *   BENCH_BASE_DIR=/tmp/base npm run bench:publish -- --engines jetstream,base-jetstream
 *
 * `--engines` lists what to compare (ratios: each to the first listed):
 * `memory`, `jetstream`, and `base-memory` / `base-jetstream` for the same
 * engines run from another copy of the tree (an earlier commit) in
 * BENCH_BASE_DIR, to measure an optimisation against its baseline in one run.
 *
 * Publishers are Herald connections sending `event.publish` with up to
 * `window` requests in flight each, on one channel; every ack is counted.
 * Replay is one Herald client subscribing with `last_seq: 0` and reading
 * every stored event back.
 *
 * CPU per event of each phase is read from /proc: the gateway's, and on
 * JetStream the nats-server's (shared by every run, so its figure is
 * what it spent during the phase); at 10 ms ticks, read it over ≥ 10,000
 * events. On a 2-core box these three (and the client) compete, so the CPU
 * figures say where the time goes when the rates alone cannot.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { signCompact } from "../services/gateway/src/dialects/herald/token.js";
import { startNats } from "../shared/test/nats-harness.js";
import { benchOptions, median } from "./bench-kit.js";
import { APP, findNatsServer, freePort, procCpuSeconds, tidingsEntry } from "./gateway-servers.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const opts = benchOptions({
  events: "20000",
  publishers: "4",
  window: "64",
  runs: "2",
  engines: "memory,jetstream",
});
const EVENTS = Number(opts.events);
const PUBLISHERS = Number(opts.publishers);
const WINDOW = Number(opts.window);
const RUNS = Number(opts.runs);

const ENGINE_NAMES = ["memory", "jetstream", "base-memory", "base-jetstream"] as const;
type Engine = (typeof ENGINE_NAMES)[number];
const ENGINES = String(opts.engines).split(",") as Engine[];
for (const e of ENGINES)
  if (!ENGINE_NAMES.includes(e)) throw new Error(`--engines: one of ${ENGINE_NAMES.join(", ")}`);
/** The tree base-* engines run from; checked at start so a run does not fail half way. */
function baseDir(): string {
  const dir = process.env.BENCH_BASE_DIR;
  if (!dir)
    throw new Error("base-* engines need BENCH_BASE_DIR (a copy of the tree to compare against)");
  return dir;
}
if (ENGINES.some((e) => e.startsWith("base-"))) baseDir();
interface Result {
  engine: Engine;
  run: number;
  publishPerSec: number;
  ackP50: number;
  ackP99: number;
  replayPerSec: number;
  /** CPU µs per event: gateway and nats-server, publish and replay phases. */
  pubGwUs: number;
  pubNatsUs: number;
  replayGwUs: number;
  replayNatsUs: number;
}

async function startGateway(
  natsUrl: string | undefined,
  root: string,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const { NATS_URL: _n, TIDINGS_APPS: _a, ...env } = process.env;
  // BENCH_CPU_PROF=<dir>: profile the gateway (one .cpuprofile per thread; its own is the largest).
  const prof = process.env.BENCH_CPU_PROF;
  const profArgs = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...profArgs, ...tidingsEntry(root)], {
    cwd: root,
    env: {
      ...env,
      ...(natsUrl ? { NATS_URL: natsUrl } : {}),
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "error",
      TIDINGS_DRAIN_SECONDS: "0",
      TIDINGS_MAX_MESSAGE_RATE: "1000000",
      TIDINGS_HISTORY_PER_CHANNEL: String(EVENTS * 2),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const deadline = Date.now() + 30_000;
  while (!/Tidings listening/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`gateway did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error("gateway has no pid");
  return {
    port,
    pid,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function heraldSocket(port: number, user: string, stream: string): Promise<WebSocket> {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const q = new URLSearchParams({
    key: APP.key,
    user_id: user,
    streams: stream,
    token: signCompact(APP.secret, user, stream, exp),
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?${q}`);
  await new Promise<void>((resolve, reject) => {
    ws.once("message", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

/** One publisher: keeps `WINDOW` publishes in flight until it has sent `count`. */
async function publish(
  ws: WebSocket,
  stream: string,
  count: number,
  latencies: number[],
): Promise<void> {
  const started = new Map<string, number>();
  let sent = 0;
  let acked = 0;
  const body = { text: "x".repeat(80) };
  await new Promise<void>((resolve, reject) => {
    const sendOne = () => {
      // Refs are idempotency keys per user (Herald): unique per run, or a later run's
      // publishes on the same nats-server would be deduplicated into an earlier run's.
      const ref = `${stream}-${sent++}`;
      started.set(ref, performance.now());
      ws.send(
        JSON.stringify({
          type: "event.publish",
          ref,
          payload: { stream_id: stream, type: "bench", body },
        }),
      );
    };
    // A closed socket would otherwise leave this promise pending and the script exiting silently.
    ws.on("close", (code, reason) =>
      reject(new Error(`publisher closed after ${acked} acks: ${code} ${reason.toString()}`)),
    );
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString()) as { type: string; ref?: string };
      if (f.ref === undefined) return;
      if (f.type !== "event.ack") return reject(new Error(`publish failed: ${data.toString()}`));
      const at = started.get(f.ref);
      if (at === undefined) return reject(new Error(`ack for a ref never sent: ${f.ref}`));
      latencies.push(performance.now() - at);
      started.delete(f.ref);
      if (++acked === count) return resolve();
      if (sent < count) sendOne();
    });
    for (let i = 0; i < Math.min(WINDOW, count); i++) sendOne();
  });
}

/** Replay rate, and `cpu()` as it was when the replay started. */
async function replay<C>(
  port: number,
  stream: string,
  expected: number,
  cpu: () => C,
): Promise<{ rate: number; cpu: C }> {
  const ws = await heraldSocket(port, "reader", stream);
  let got = 0;
  const atStart = cpu();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    ws.on("message", (data) => {
      if (data.toString().startsWith('{"type":"event.new"') && ++got === expected) resolve();
    });
    // Closed early (e.g. as a slow consumer): report what arrived rather than hang.
    ws.on("close", (code, reason) => {
      if (got < expected)
        console.error(`replay: closed ${code} ${reason.toString()} after ${got}/${expected}`);
      resolve();
    });
    ws.send(
      JSON.stringify({ type: "subscribe", ref: "s", payload: { stream_id: stream, last_seq: 0 } }),
    );
  });
  const seconds = (performance.now() - t0) / 1000;
  ws.close();
  return { rate: got / seconds, cpu: atStart };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

async function measure(
  engine: Engine,
  run: number,
  natsUrl: string,
  natsPid: number,
): Promise<Result> {
  const onNats = engine.endsWith("jetstream");
  const gw = await startGateway(
    onNats ? natsUrl : undefined,
    engine.startsWith("base-") ? baseDir() : ROOT,
  );
  const cpu = () => ({ gw: procCpuSeconds(gw.pid), nats: onNats ? procCpuSeconds(natsPid) : 0 });
  try {
    const stream = `bench-${engine}-${run}`;
    const pubs = await Promise.all(
      Array.from({ length: PUBLISHERS }, (_, i) => heraldSocket(gw.port, `p${i}`, stream)),
    );
    const latencies: number[] = [];
    const per = Math.floor(EVENTS / PUBLISHERS);
    const total = per * PUBLISHERS;
    const usPer = (a: number, b: number) => ((b - a) * 1e6) / total;
    const c0 = cpu();
    const t0 = performance.now();
    await Promise.all(pubs.map((ws) => publish(ws, stream, per, latencies)));
    const publishPerSec = total / ((performance.now() - t0) / 1000);
    const c1 = cpu();
    for (const ws of pubs) ws.close();
    latencies.sort((a, b) => a - b);
    const replayed = await replay(gw.port, stream, total, () => cpu());
    const c3 = cpu();
    return {
      engine,
      run,
      publishPerSec,
      ackP50: pct(latencies, 50),
      ackP99: pct(latencies, 99),
      replayPerSec: replayed.rate,
      pubGwUs: usPer(c0.gw, c1.gw),
      pubNatsUs: usPer(c0.nats, c1.nats),
      replayGwUs: usPer(replayed.cpu.gw, c3.gw),
      replayNatsUs: usPer(replayed.cpu.nats, c3.nats),
    };
  } finally {
    await gw.stop();
  }
}

async function main(): Promise<void> {
  await using nats = await startNats();
  const natsPid = findNatsServer(nats.url(0)).pid;
  console.log(
    `publish/replay: ${EVENTS} events, ${PUBLISHERS} Herald publishers × window ${WINDOW}, ${RUNS} run(s) per engine`,
  );
  console.log(
    "engine          run  publish/s  ack p50 ms  ack p99 ms  replay events/s  µs/event: pub gw  pub nats  replay gw  replay nats",
  );
  const results: Result[] = [];
  for (let run = 1; run <= RUNS; run++) {
    // Alternate the order so drift on a shared machine hits both engines alike.
    const order = run % 2 === 1 ? ENGINES : [...ENGINES].reverse();
    for (const engine of order) {
      const r = await measure(engine, run, nats.url(0), natsPid);
      results.push(r);
      const us = (n: number, w: number) => n.toFixed(1).padStart(w);
      console.log(
        `${r.engine.padEnd(14)} ${String(run).padStart(4)}  ${r.publishPerSec.toFixed(0).padStart(9)}  ${r.ackP50.toFixed(2).padStart(10)}  ${r.ackP99.toFixed(2).padStart(10)}  ${r.replayPerSec.toFixed(0).padStart(15)}  ${us(r.pubGwUs, 16)}  ${us(r.pubNatsUs, 8)}  ${us(r.replayGwUs, 9)}  ${us(r.replayNatsUs, 11)}`,
      );
    }
  }
  const m = (e: Engine, k: keyof Result) =>
    median(results.filter((r) => r.engine === e).map((r) => r[k] as number));
  const [first, ...others] = ENGINES;
  if (first === undefined) return;
  console.log(`\nmedians and ratios (${others.map((o) => `${o}/${first}`).join(", ")}):`);
  const keys = [
    "publishPerSec",
    "ackP50",
    "ackP99",
    "replayPerSec",
    "pubGwUs",
    "pubNatsUs",
    "replayGwUs",
    "replayNatsUs",
  ] as const;
  for (const k of keys) {
    const cells = ENGINES.map((e) => `${e} ${m(e, k).toFixed(2)}`).join("  ");
    // nats-server figures are 0 on the memory engine: no ratio to them.
    const ratios = others
      .map((o) => (m(first, k) > 0 ? `${(m(o, k) / m(first, k)).toFixed(2)}x` : "-"))
      .join(" ");
    console.log(`  ${k.padEnd(14)} ${cells}  ratio ${ratios}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
