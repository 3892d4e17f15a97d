import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { expectDefined } from "../../../shared/test/defined.js";
import { waitFor } from "../../../shared/test/wait.js";
import { ROOT } from "./run-cli.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm start", () => {
  // npm start builds the client SDK first (prestart), so allow for a slow tsc.
  it("stops the server when its PID gets SIGTERM, leaving no orphan", {
    timeout: 180_000,
  }, async () => {
    const npm = spawn("npm", ["start"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: "0",
        HOST: "127.0.0.1",
        TIDINGS_DRAIN_SECONDS: "0",
        TIDINGS_APPS: undefined,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    npm.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    npm.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    let server: number | undefined;
    try {
      // The server logs its own pid; npm's pid is what a supervisor or a terminal signals.
      await waitFor(() => /"pid":([0-9]+)[^\n]*"msg":"tidings listening"/.test(out), {
        timeoutMs: 150_000,
        what: "npm start to listen",
      });
      const line = /"pid":([0-9]+)[^\n]*"msg":"tidings listening"/.exec(out);
      const pid = Number(expectDefined(line, "the server's listening line")[1]);
      server = pid;
      expect(server).not.toBe(npm.pid);
      npm.kill("SIGTERM");
      await waitFor(() => !alive(pid), { timeoutMs: 15_000, what: "the server to exit" });
      expect(out).toMatch(/"signal":"SIGTERM","msg":"draining"/);
    } finally {
      npm.kill("SIGKILL");
      if (server !== undefined && alive(server)) process.kill(server, "SIGKILL");
    }
  });
});
