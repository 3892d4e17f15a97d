import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/tidings.js` (what `npx tidings` runs) as a process and collects its output. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  entry = "bin/tidings.js",
  nodeArgs: string[] = [],
): Promise<CliResult> {
  const proc = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, TIDINGS_APPS: undefined, TIDINGS_ROLE: undefined, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  proc.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  // A CLI command that started a server instead of answering would never exit.
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
