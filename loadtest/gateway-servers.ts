/**
 * Starts the servers the benchmarks measure, each as a child process on a
 * free port on 127.0.0.1, and stops them by their own pid.
 *
 * - `tidings`: this tree, memory engine.
 * - `tidings-nats`: this tree, JetStream engine on its own single-node
 *   nats-server (shared/test/nats-harness.ts), started and stopped with it.
 *   Its CPU and RSS are the gateway's and the nats-server's added together
 *   (the cost of the clustered shape is both processes); `natsMonitor` is
 *   the nats-server's monitoring URL (/connz, /subsz).
 * - `base`: another copy of Tidings (an earlier commit), memory engine, from
 *   `BENCH_BASE_DIR`: the baseline when measuring an optimisation in one run.
 * - `base-nats`: that copy on the JetStream engine, on its own nats-server,
 *   counted like `tidings-nats`.
 * - `soketi`: Soketi 1.6.1 from `SOKETI_DIR`.
 *
 * `BENCH_CPU_PROF=<dir>` runs the Tidings variants under `node --cpu-prof`,
 * writing .cpuprofile files into <dir> when it stops (one per thread; the
 * server's own is the main thread's, the largest). `BENCH_NODE_ARGS` adds
 * node flags to the Tidings variants and Soketi (e.g. `--heapsnapshot-signal=SIGUSR2`).
 * `BENCH_DIST=1` runs the Tidings variants as the image does, the compiled
 * `dist/services/main.js` of their tree (`npm run build` in each tree first),
 * instead of the sources under tsx, whose keep-names wrapper (`__name`) gives
 * every closure a property array (~0.5 KB per connection) and costs CPU.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TIDINGS_NODE_FLAGS } from "../services/gateway/test/processes.js";
import { startNats } from "../shared/test/nats-harness.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const APP = { id: "app-id", key: "app-key", secret: "app-secret" };

export type ServerName = "tidings" | "tidings-nats" | "base" | "base-nats" | "soketi";
export const serverNames: readonly ServerName[] = [
  "tidings",
  "tidings-nats",
  "base",
  "base-nats",
  "soketi",
];

export interface RunningServer {
  name: ServerName;
  port: number;
  /** The gateway's (or Soketi's) pid. */
  pid: number;
  /** Every process counted in cpuSeconds and rssMiB (gateway, plus nats-server for tidings-nats). */
  pids: number[];
  /** nats-server monitoring base URL, for tidings-nats only. */
  natsMonitor?: string;
  /** User + system CPU seconds the server's processes have used so far. */
  cpuSeconds(): number;
  rssMiB(): number;
  /** Set once the process has exited on its own: its exit status and last stderr. */
  crash(): string | undefined;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const addr = srv.address();
  srv.close();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return addr.port;
}

export async function startServer(name: ServerName): Promise<RunningServer> {
  const port = await freePort();
  switch (name) {
    case "tidings":
      return startTidings(name, port, ROOT);
    case "base":
      return startTidings(name, port, baseDir());
    case "tidings-nats":
    case "base-nats": {
      const root = name === "base-nats" ? baseDir() : ROOT;
      const nats = await startNats();
      try {
        const natsProc = findNatsServer(nats.url(0));
        const server = await startTidings(name, port, root, nats.url(0), () => nats.stop());
        return withNats(server, natsProc);
      } catch (err) {
        await nats.stop();
        throw err;
      }
    }
    case "soketi":
      return startSoketi(port);
  }
}

function baseDir(): string {
  const dir = process.env.BENCH_BASE_DIR;
  if (!dir) throw new Error("BENCH_BASE_DIR is not set (see loadtest/README.md)");
  return dir;
}

/**
 * What node runs for a Tidings tree: the sources under tsx, or with
 * `BENCH_DIST=1` its build, as the image's CMD does. A missing build is an
 * error rather than a silent fall-back to tsx, and so is a build older than
 * a source file (it would measure other code). gateway-publish.ts uses it too.
 */
export function tidingsEntry(root: string): string[] {
  const dist = process.env.BENCH_DIST;
  if (!dist || dist === "0") return [...TIDINGS_V8_FLAGS, "--import", "tsx", "services/main.ts"];
  const main = join(root, "dist/services/main.js");
  if (!existsSync(main))
    throw new Error(`BENCH_DIST: ${main} is missing: run \`npm run build\` in ${root}`);
  const built = statSync(main).mtimeMs;
  const stale =
    newestSource(join(root, "services"), built) ?? newestSource(join(root, "shared/src"), built);
  if (stale)
    throw new Error(`BENCH_DIST: ${stale} is newer than ${main}: run \`npm run build\` in ${root}`);
  return [...TIDINGS_V8_FLAGS, "--enable-source-maps", "dist/services/main.js"];
}

/**
 * As `npm start` and the image's CMD run Tidings (`TIDINGS_NODE_FLAGS`);
 * `BENCH_V8_FLAGS` replaces them, to measure another setting.
 */
const TIDINGS_V8_FLAGS =
  process.env.BENCH_V8_FLAGS === undefined
    ? TIDINGS_NODE_FLAGS
    : process.env.BENCH_V8_FLAGS.split(" ").filter(Boolean);

/** A compiled .ts file under dir (tests are not built) modified after `than` (ms), if any. */
function newestSource(dir: string, than: number): string | undefined {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".test.ts")) continue;
    const path = join(entry.parentPath, entry.name);
    if (path.includes("/test/")) continue;
    if (statSync(path).mtimeMs > than) return path;
  }
  return undefined;
}

async function startTidings(
  name: ServerName,
  port: number,
  root: string,
  natsUrl?: string,
  cleanup: () => Promise<void> | void = () => undefined,
): Promise<RunningServer> {
  const { NATS_URL: _nats, TIDINGS_APPS: _apps, ...env } = process.env;
  const prof = process.env.BENCH_CPU_PROF;
  // One file per thread (node's default name): the server's is the main thread's, the largest.
  const profArgs = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  // `node --import tsx` rather than the tsx CLI so the pid we watch is the server.
  const child = spawn(process.execPath, [...profArgs, ...nodeArgs, ...tidingsEntry(root)], {
    cwd: root,
    env: {
      ...env,
      ...(natsUrl ? { NATS_URL: natsUrl } : {}),
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "error",
      TIDINGS_DRAIN_SECONDS: "0",
      // The Herald publisher is one connection sending every event.
      TIDINGS_MAX_MESSAGE_RATE: "1000000",
      TIDINGS_MAX_CONNECTIONS: "1000000",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return watch(name, child, port, "/readyz", cleanup);
}

async function startSoketi(port: number): Promise<RunningServer> {
  const dir = process.env.SOKETI_DIR;
  if (!dir) throw new Error("SOKETI_DIR is not set (see loadtest/README.md)");
  const conf = mkdtempSync(join(tmpdir(), "soketi-conf-"));
  const config = {
    ...JSON.parse(readFileSync(join(dir, "soketi.config.json"), "utf8")),
    host: "127.0.0.1",
    port,
    "metrics.port": await freePort(),
    "cluster.port": await freePort(),
  };
  writeFileSync(join(conf, "soketi.config.json"), JSON.stringify(config));
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      join(dir, "node_modules/@soketi/soketi/bin/server.js"),
      "start",
      `--config=${join(conf, "soketi.config.json")}`,
    ],
    {
      cwd: dir,
      env: {
        ...process.env,
        SOKETI_DEFAULT_APP_ID: APP.id,
        SOKETI_DEFAULT_APP_KEY: APP.key,
        SOKETI_DEFAULT_APP_SECRET: APP.secret,
        SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: "true",
        // Soketi's default per-app connection cap is unlimited, its HTTP body
        // and rate limits are off by default; nothing else to lift.
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  return watch("soketi", child, port, "/", () => rmSync(conf, { recursive: true, force: true }));
}

async function watch(
  name: ServerName,
  child: ChildProcess,
  port: number,
  readyPath: string,
  cleanup: () => Promise<void> | void,
): Promise<RunningServer> {
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  let exited = false;
  let stopping = false;
  let crash: string | undefined;
  child.once("exit", (code, signal) => {
    exited = true;
    if (!stopping) crash = `${name} exited (${signal ?? code}) during the run:\n${stderr}`;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}${readyPath}`);
      if (res.ok) break;
    } catch {
      // Not listening yet: poll again below.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} not ready after 30 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    port,
    pid,
    pids: [pid],
    cpuSeconds: () => procCpuSeconds(pid),
    rssMiB: () => procRssMiB(pid),
    crash: () => crash,
    async stop() {
      stopping = true;
      if (!exited) {
        const gone = once(child, "exit");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await gone;
        clearTimeout(timer);
      }
      await cleanup();
    },
  };
}

/**
 * The nats-server this process started for `url` (our child, found in /proc
 * by its client port's ports file), with its monitoring URL.
 */
export function findNatsServer(url: string): { pid: number; monitor: string } {
  const port = new URL(url).port;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid || !stat.includes("(nats-server)")) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const conf = argv[argv.indexOf("-c") + 1];
      if (!conf) continue;
      const ports = JSON.parse(
        readFileSync(join(dirname(conf), `nats-server_${pid}.ports`), "utf8"),
      ) as { nats?: string[]; monitoring?: string[] };
      if (!ports.nats?.some((u) => new URL(u).port === port)) continue;
      const monitor = ports.monitoring?.[0];
      if (monitor) return { pid, monitor: monitor.replace(/\/$/, "") };
    } catch {
      // Gone, not ours, or not a nats-server: look further.
    }
  }
  throw new Error(`no nats-server child serving ${url}`);
}

/** Counts the nats-server's CPU and RSS with the gateway's. */
function withNats(server: RunningServer, nats: { pid: number; monitor: string }): RunningServer {
  return {
    ...server,
    pids: [server.pid, nats.pid],
    natsMonitor: nats.monitor,
    cpuSeconds: () => server.cpuSeconds() + procCpuSeconds(nats.pid),
    rssMiB: () => server.rssMiB() + procRssMiB(nats.pid),
  };
}

/** utime + stime from /proc (Linux only; NaN elsewhere). */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

export function procRssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
