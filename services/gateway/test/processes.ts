import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { type NatsHandle, startNats } from "../../../shared/test/nats-harness.js";
import { TEST_APP } from "./harness.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface TidingsProcess extends AsyncDisposable {
  proc: ChildProcess;
  /** Listening port: WebSockets and HTTP for gateways, probes and metrics for presence. */
  port: number;
  url: (path: string) => string;
  http: (path: string) => string;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The V8 flags `npm start` and the image's CMD run Tidings with (the Dockerfile says why). */
export const TIDINGS_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2"];

/**
 * Starts `services/main.ts` (as `npm start` runs it) with the test app, any
 * free port and no drain, and returns at once: for tests that watch a start
 * which may never become ready. `spawnTidings` waits for ready.
 */
export function launchTidings(
  role: "gateway" | "presence" | "all",
  env: Record<string, string>,
  /** The Node to run it on (the Node 24 smoke test's); this test's Node by default. */
  node = process.execPath,
): ChildProcess & { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream } {
  // `node --import tsx` rather than the tsx CLI: one process, so SIGKILL really kills it.
  return spawn(node, [...TIDINGS_NODE_FLAGS, "--import", "tsx", "services/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      TIDINGS_ROLE: role,
      TIDINGS_DRAIN_SECONDS: "0",
      TIDINGS_APPS: JSON.stringify([TEST_APP]),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/**
 * A real Tidings process (`services/main.ts`, as `npm start` runs it) with
 * the given role and env, for tests that kill processes. Gateways resolve
 * once they print where they listen; presence once it says it runs.
 */
export async function spawnTidings(
  role: "gateway" | "presence" | "all",
  env: Record<string, string>,
  node = process.execPath,
): Promise<TidingsProcess> {
  const proc = launchTidings(role, env, node);
  let out = "";
  const ready = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Tidings listening on [^:\s]+:([0-9]+)/.exec(out);
      if (m) return resolve(Number(m[1]));
      const health = /"port":([0-9]+),"msg":"presence health and metrics listening"/.exec(out);
      if (role === "presence" && health && /presence service running/.test(out))
        resolve(Number(health[1]));
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", (code) =>
      reject(new Error(`tidings ${role} exited (${code}) before it was ready:\n${out}`)),
    );
  });
  const timeout = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  let port: number;
  try {
    port = await ready;
  } finally {
    clearTimeout(timeout);
  }
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill(signal);
    await exited;
  };
  return {
    proc,
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    http: (path) => `http://127.0.0.1:${port}${path}`,
    output: () => out,
    kill,
    [Symbol.asyncDispose]: () => kill(),
  };
}

/** Short presence timings so tests notice dead gateways in seconds, not on defaults. */
export const FAST_PRESENCE = { TIDINGS_HEARTBEAT_MS: "200", TIDINGS_GATEWAY_TIMEOUT_MS: "2000" };

export interface TwoGateways {
  nats: NatsHandle;
  presence: TidingsProcess;
  g1: TidingsProcess;
  g2: TidingsProcess;
  stop(): Promise<void>;
}

/**
 * The smallest real cluster: one nats-server, a presence replica (started
 * first, so its partitions are owned before clients subscribe) and two
 * gateway processes sharing them.
 */
export async function startTwoGateways(env: Record<string, string> = {}): Promise<TwoGateways> {
  const nats = await startNats();
  const procs: TidingsProcess[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await nats.stop();
  };
  try {
    const full = { NATS_URL: nats.url(0), ...FAST_PRESENCE, ...env };
    const presence = await spawnTidings("presence", full);
    procs.push(presence);
    const [g1, g2] = await Promise.all([
      spawnTidings("gateway", full),
      spawnTidings("gateway", full),
    ]);
    procs.push(g1, g2);
    return { nats, presence, g1, g2, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
