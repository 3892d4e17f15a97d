import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { TEST_APP } from "./harness.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface TidingsProcess extends AsyncDisposable {
  proc: ChildProcess;
  /** Listening port (gateways only). */
  port: number;
  url: (path: string) => string;
  http: (path: string) => string;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A real Tidings process (`services/main.ts`, as `npm start` runs it) with
 * the given role and env, for tests that kill processes. Gateways resolve
 * once they print where they listen; presence once it says it runs.
 */
export async function spawnTidings(
  role: "gateway" | "presence" | "all",
  env: Record<string, string>,
): Promise<TidingsProcess> {
  // `node --import tsx` rather than the tsx CLI: one process, so SIGKILL really kills it.
  const proc = spawn(process.execPath, ["--import", "tsx", "services/main.ts"], {
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
  let out = "";
  const ready = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Tidings listening on [^:\s]+:([0-9]+)/.exec(out);
      if (m) return resolve(Number(m[1]));
      if (role === "presence" && /presence service running/.test(out)) resolve(0);
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
