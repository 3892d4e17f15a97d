/**
 * Scale run (issue 14, "Scale"): N concurrent Pusher connections on this
 * machine against the clustered shape — a 3-node nats-server cluster with R3
 * streams, 2 presence replicas and enough gateway processes that none holds
 * more than PER_PROCESS sockets — with a steady publish rate over the Pusher
 * HTTP API, round-robin over the gateways, to random channels. A script,
 * not a test.
 *
 *   npm run bench:scale                                   # 100,000 conns, 10,000 channels
 *   npm run bench:scale -- --conns 5000 --channels 500 --seconds 20
 *
 * Clients run in several child processes (scale-clients.ts), each with its
 * own fd budget and its own loopback source address. Prints connect
 * progress, then RSS per connection (gateways + nats-servers + presence ÷ N),
 * server CPU per delivery, publish→receive p50/p99 and missing/duplicated
 * deliveries, counted per connection against what was published to its
 * channel; JetStream API requests/s and server CPU both over `--idle`
 * seconds with every connection up and nothing published (the live
 * position checks of a quiet stream) and over the publish window. Every
 * child is killed by its pid on exit or SIGINT.
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { spawnTidings, type TidingsProcess } from "../services/gateway/test/processes.js";
import { type NatsHandle, startCluster } from "../shared/test/nats-harness.js";
import { benchOptions, fmt } from "./bench-kit.js";
import { pusher } from "./gateway-clients.js";
import { findNatsServer, procCpuSeconds, procRssMiB } from "./gateway-servers.js";
import { type ScaleJob, scaleChannel, type ToParent, type ToWorker } from "./scale-clients.js";

/** Sockets one process may hold: under the 20,000-fd hard limit with room for the rest. */
const PER_PROCESS = 18_000;

const args = benchOptions({
  conns: "100000",
  channels: "10000",
  gateways: "auto",
  workers: "auto",
  rate: "200",
  seconds: "60",
  inflight: "400",
  idle: "10",
});
const opt = {
  conns: Number(args.conns),
  channels: Number(args.channels),
  rate: Number(args.rate),
  seconds: Number(args.seconds),
  inflight: Number(args.inflight),
  idle: Number(args.idle),
};
const auto = (v: string) => (v === "auto" ? Math.ceil(opt.conns / PER_PROCESS) : Number(v));
const gateways = auto(args.gateways);
const workers = Math.max(2, auto(args.workers));
if (!(opt.channels >= 1 && opt.channels <= opt.conns))
  throw new Error("--channels must be between 1 and --conns");
if (Math.ceil(opt.conns / gateways) > PER_PROCESS || Math.ceil(opt.conns / workers) > PER_PROCESS)
  throw new Error(`at most ${PER_PROCESS} sockets per process: more --gateways/--workers`);

/**
 * Children inherit our fd limit: lift the soft limit to the hard one once,
 * by running this script again under `ulimit -n`.
 */
function fdLimits(): { soft: number; hard: number } {
  const out = execFileSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" });
  const [soft, hard] = out.trim().split("\n").map(Number);
  return { soft: soft ?? 0, hard: hard ?? 0 };
}
const limits = fdLimits();
if (limits.soft < limits.hard && !process.env.BENCH_SCALE_RELAUNCHED) {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(
    "sh",
    [
      "-c",
      'ulimit -n "$1" && shift && exec "$@"',
      "sh",
      String(limits.hard),
      process.execPath,
      "--import",
      "tsx",
      script,
      ...process.argv.slice(2),
    ],
    { stdio: "inherit", env: { ...process.env, BENCH_SCALE_RELAUNCHED: "1" } },
  );
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
  const [code] = await once(child, "exit");
  process.exit(code ?? 1);
}

const children: ChildProcess[] = [];
let stopping = false;
let nats: NatsHandle | undefined;
const servers: { role: string; pid: number }[] = [];
const killAll = () => {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
};
process.once("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping every process`);
    killAll();
    void (nats?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n0 = (x: number) => Math.round(x).toLocaleString("en-US");
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const cpuOf = (role?: string) =>
  servers.filter((s) => !role || s.role === role).reduce((a, s) => a + procCpuSeconds(s.pid), 0);
const rssOf = (role?: string) =>
  servers.filter((s) => !role || s.role === role).reduce((a, s) => a + procRssMiB(s.pid), 0);
/** JetStream API requests handled, summed over the nodes (each node counts the requests it handled). */
const jsApi = async () => {
  const n = nats;
  if (!n) return 0;
  const counts = await Promise.all(n.urls.map((_, i) => n.jsApiRequests(i)));
  return counts.reduce((a, c) => a + c, 0);
};
const clientProcs: ChildProcess[] = [];
const clientCpu = () => clientProcs.reduce((a, c) => a + procCpuSeconds(c.pid ?? 0), 0);
const clientRss = () => clientProcs.reduce((a, c) => a + procRssMiB(c.pid ?? 0), 0);

async function startProcesses(): Promise<TidingsProcess[]> {
  const bin = process.env.BENCH_NATS_BIN;
  nats = await startCluster(3, bin ? { bin } : {});
  for (const url of nats.urls) servers.push({ role: "nats", pid: findNatsServer(url).pid });
  const env = {
    NATS_URL: nats.urls.join(","),
    NATS_REPLICAS: "3",
    TIDINGS_MAX_CONNECTIONS: "1000000",
  };
  const track = (role: string, p: TidingsProcess) => {
    children.push(p.proc);
    p.proc.once("exit", (code, signal) => {
      if (!stopping)
        console.error(
          `${role} ${p.proc.pid} exited (${signal ?? code}):\n${p.output().slice(-2000)}`,
        );
    });
    servers.push({ role, pid: p.proc.pid ?? 0 });
    return p;
  };
  // Presence first, so its partitions are owned before clients subscribe.
  await Promise.all([0, 1].map(async () => track("presence", await spawnTidings("presence", env))));
  return Promise.all(
    Array.from({ length: gateways }, async () =>
      track("gateway", await spawnTidings("gateway", { ...env, LOG_LEVEL: "warn" })),
    ),
  );
}

interface Worker {
  proc: ChildProcess;
  progress?: Extract<ToParent, { type: "progress" }>;
  result?: Extract<ToParent, { type: "result" }>;
}

function startWorkers(ports: number[]): Worker[] {
  // Source addresses of our own: 127.<a>.<b>.<w+2>, a fresh /24 per run so a
  // previous run's TIME_WAIT ports never collide with this one's.
  const a = 1 + (process.pid % 250);
  const b = 1 + (Math.floor(process.pid / 250) % 250);
  return Array.from({ length: workers }, (_, w) => {
    const job: ScaleJob = {
      worker: w,
      workers,
      conns: opt.conns,
      channels: opt.channels,
      ports,
      localAddress: `127.${a}.${b}.${w + 2}`,
      inflight: Math.max(1, Math.ceil(opt.inflight / workers)),
    };
    const proc = fork(fileURLToPath(new URL("scale-clients.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, SCALE_CLIENT_JOB: JSON.stringify(job) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(proc);
    clientProcs.push(proc);
    const worker: Worker = { proc };
    proc.on("message", (m: ToParent) => {
      if (m.type === "progress") worker.progress = m;
      else worker.result = m;
    });
    proc.once("exit", (code, signal) => {
      if (!worker.result) console.error(`client worker ${w} exited (${signal ?? code})`);
    });
    return worker;
  });
}

const sum = (ws: Worker[], f: (p: NonNullable<Worker["progress"]>) => number) =>
  ws.reduce((a, w) => a + (w.progress ? f(w.progress) : 0), 0);

async function connect(ws: Worker[]): Promise<number> {
  // Every client process loaded first, so conns/s is the servers' pace, not tsx's start-up.
  while (ws.some((w) => !w.progress)) {
    if (ws.some((w) => w.proc.exitCode !== null)) throw new Error("a client worker exited");
    await sleep(50);
  }
  for (const w of ws) w.proc.send({ type: "connect" } satisfies ToWorker);
  const start = performance.now();
  const startEpoch = performance.timeOrigin + start;
  let last = { t: start, n: 0 };
  for (;;) {
    await sleep(2000);
    const done = sum(ws, (p) => p.connected + p.failed);
    const connected = sum(ws, (p) => p.connected);
    const t = performance.now();
    const perGateway = Array.from({ length: gateways }, (_, g) =>
      ws.reduce((a, w) => a + (w.progress?.perGateway[g] ?? 0), 0),
    );
    console.log(
      `  ${n0(connected)}/${n0(opt.conns)} connected, ${n0(((connected - last.n) * 1000) / (t - last.t))} conns/s ` +
        `(avg ${n0((connected * 1000) / (t - start))}), failed ${sum(ws, (p) => p.failed)}, ` +
        `per gateway [${perGateway.join(" ")}], server RSS ${n0(rssOf())} MiB, load ${load()}`,
    );
    last = { t, n: connected };
    if (done >= opt.conns) {
      const err = ws.find((w) => w.progress?.firstError)?.progress?.firstError;
      if (err) console.log(`  first connect error: ${err}`);
      const doneAt = Math.max(...ws.map((w) => w.progress?.doneAt ?? performance.timeOrigin + t));
      return (doneAt - startEpoch) / 1000;
    }
    if (ws.some((w) => w.proc.exitCode !== null)) throw new Error("a client worker exited");
  }
}

/** Subscribers of channel c when conn i is on channel i mod C. */
const subscribersOf = (c: number) =>
  Math.floor(opt.conns / opt.channels) + (c < opt.conns % opt.channels ? 1 : 0);

async function publish(ports: number[], ws: Worker[]) {
  const pubs = await Promise.all(ports.map((p) => pusher.publisher(p)));
  const byChannel: Record<string, number[]> = {};
  const publishMs: number[] = [];
  let errors = 0;
  let firstError: unknown;
  let expected = 0;
  const total = Math.round(opt.rate * opt.seconds);
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  let report = start + 5000;
  for (let k = 0; k < total; k++) {
    // Open loop at a fixed rate: wait for the slot, not for the previous answer.
    const wait = start + (k * 1000) / opt.rate - performance.now();
    if (wait > 1) await sleep(wait);
    while (inFlight.size >= 256) await Promise.race(inFlight);
    const c = Math.floor(Math.random() * opt.channels);
    const t0 = performance.now();
    const stamp = (performance.timeOrigin + t0).toFixed(3);
    const pub = pubs[k % pubs.length] as (typeof pubs)[number];
    const p: Promise<void> = pub
      .publish(`{"i":${k},"t":${stamp}}`, scaleChannel(c))
      .then(
        () => {
          publishMs.push(performance.now() - t0);
          const ids = byChannel[scaleChannel(c)] ?? [];
          ids.push(k);
          byChannel[scaleChannel(c)] = ids;
          expected += subscribersOf(c);
        },
        (err: unknown) => {
          errors++;
          firstError ??= err;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (performance.now() > report) {
      report += 5000;
      console.log(
        `  ${n0(k)}/${n0(total)} published, ${n0(sum(ws, (p) => p.deliveries))} deliveries, ` +
          `${errors} publish errors, ${sum(ws, (p) => p.closed)} closed, load ${load()}`,
      );
    }
  }
  await Promise.all(inFlight);
  for (const p of pubs) p.close();
  if (firstError) console.error("first publish error:", firstError);
  // Stragglers: until every expected delivery arrived or none came for 5 s.
  for (let before = -1; ; ) {
    const got = sum(ws, (p) => p.deliveries);
    if (got >= expected || got === before) break;
    before = got;
    await sleep(5000);
  }
  return { byChannel, publishMs, errors, expected, seconds: (performance.now() - start) / 1000 };
}

const pct = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

async function main() {
  console.log(
    `scale: ${n0(opt.conns)} conns on ${n0(opt.channels)} channels, ${gateways} gateways, 2 presence, ` +
      `3-node R3 nats, ${workers} client processes, ${opt.rate} events/s for ${opt.seconds} s; ` +
      `fd limit ${limits.hard}, load ${load()}`,
  );
  const gws = await startProcesses();
  const ports = gws.map((g) => g.port);
  await sleep(1000);
  const idleRss = rssOf();
  console.log(`started: idle server RSS ${n0(idleRss)} MiB; connecting`);
  const ws = startWorkers(ports);
  const cpu0 = cpuOf();
  const connectSec = await connect(ws);
  const connectCpu = cpuOf() - cpu0;
  const connected = sum(ws, (p) => p.connected);
  await sleep(3000);
  const rss = {
    all: rssOf(),
    gateway: rssOf("gateway"),
    nats: rssOf("nats"),
    p: rssOf("presence"),
    clients: clientRss(),
  };
  console.log(
    `connected ${n0(connected)} in ${fmt(connectSec)} s (${n0(connected / connectSec)} conns/s), ` +
      `server CPU ${fmt((connectCpu * 1e6) / connected, 0)} µs/conn; idle for ${opt.idle} s`,
  );

  const idle0 = {
    api: await jsApi(),
    gateway: cpuOf("gateway"),
    nats: cpuOf("nats"),
    t: performance.now(),
  };
  await sleep(opt.idle * 1000);
  const idleSec = (performance.now() - idle0.t) / 1000;
  const idle = {
    api: (await jsApi()) - idle0.api,
    gateway: cpuOf("gateway") - idle0.gateway,
    nats: cpuOf("nats") - idle0.nats,
  };
  console.log(
    `idle ${fmt(idleSec)} s: JetStream API ${n0(idle.api / idleSec)} requests/s (summed over nodes), ` +
      `CPU gateways ${fmt((idle.gateway * 100) / idleSec)}%, nats ${fmt((idle.nats * 100) / idleSec)}% of a core; publishing`,
  );
  const api1 = await jsApi();
  const cpu1 = {
    all: cpuOf(),
    gateway: cpuOf("gateway"),
    nats: cpuOf("nats"),
    client: clientCpu(),
  };
  const pub = await publish(ports, ws);
  const pubApi = (await jsApi()) - api1;
  const cpu = {
    all: cpuOf() - cpu1.all,
    gateway: cpuOf("gateway") - cpu1.gateway,
    nats: cpuOf("nats") - cpu1.nats,
    client: clientCpu() - cpu1.client,
  };
  const closedBefore = sum(ws, (p) => p.closed);
  for (const w of ws)
    w.proc.send({ type: "published", byChannel: pub.byChannel } satisfies ToWorker);
  while (ws.some((w) => !w.result && w.proc.exitCode === null)) await sleep(200);
  const results = ws.flatMap((w) => (w.result ? [w.result] : []));
  const total = (f: (r: (typeof results)[number]) => number) =>
    results.reduce((a, r) => a + f(r), 0);
  const deliveries = total((r) => r.deliveries);
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  pub.publishMs.sort((a, b) => a - b);
  const perConn = (mib: number) => fmt((mib * 1024) / connected, 2);
  const accepted = Object.values(pub.byChannel).reduce((a, ids) => a + ids.length, 0);

  console.log(`\nresult (${n0(connected)} connections, load ${load()}):`);
  console.log(
    `  processes: 3 nats-server, 2 presence, ${gateways} gateways ` +
      `(≤ ${n0(Math.ceil(opt.conns / gateways))} sockets each), ${workers} client processes`,
  );
  console.log(
    `  RSS/conn: ${perConn(rss.all)} KiB (all server processes ${n0(rss.all)} MiB ÷ N; ` +
      `gateways ${perConn(rss.gateway)}, nats ${perConn(rss.nats)}, presence ${perConn(rss.p)}); ` +
      `above idle ${perConn(rss.all - idleRss)} KiB; clients ${perConn(rss.clients)} KiB`,
  );
  console.log(
    `  CPU/delivery: ${fmt((cpu.all * 1e6) / deliveries, 1)} µs server (gateways ` +
      `${fmt((cpu.gateway * 1e6) / deliveries, 1)}, nats ${fmt((cpu.nats * 1e6) / deliveries, 1)}), ` +
      `clients ${fmt((cpu.client * 1e6) / deliveries, 1)} µs; server CPU ${fmt(cpu.all)} s over ${fmt(pub.seconds)} s`,
  );
  console.log(
    `  JetStream API while publishing: ${n0(pubApi / pub.seconds)} requests/s (summed over nodes); ` +
      `idle: ${n0(idle.api / idleSec)}/s, CPU gateways ${fmt((idle.gateway * 100) / idleSec)}%, nats ${fmt((idle.nats * 100) / idleSec)}%`,
  );
  console.log(
    `  publish→receive: p50 ${fmt(pct(latencies, 0.5), 2)} ms, p99 ${fmt(pct(latencies, 0.99), 2)} ms, ` +
      `max ${fmt(latencies.at(-1) ?? Number.NaN, 1)} ms; HTTP publish p50 ${fmt(pct(pub.publishMs, 0.5), 2)} ms`,
  );
  console.log(
    `  events: ${n0(accepted)} accepted, ${pub.errors} refused; deliveries ${n0(deliveries)}/${n0(pub.expected)} expected`,
  );
  const lost = total((r) => r.missing);
  const dup = total((r) => r.duplicated);
  const unexpected = total((r) => r.unexpected);
  const failed = opt.conns - connected;
  const closes: Record<string, number> = {};
  for (const r of results)
    for (const [why, n] of Object.entries(r.closes)) closes[why] = (closes[why] ?? 0) + n;
  if (Object.keys(closes).length) console.log(`  closed by: ${JSON.stringify(closes)}`);
  console.log(
    `  lost ${lost}, duplicated ${dup}, unexpected ${unexpected}, connect failures ${failed}, ` +
      `closed during run ${closedBefore}` +
      (lost + dup + unexpected + failed + closedBefore + pub.errors > 0 ? "  LOSS OR ERRORS" : ""),
  );
  killAll();
  await nats?.stop();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
