import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { startNats } from "../../../shared/test/nats-harness.js";
import { tcpProxy } from "../../../shared/test/tcp-proxy.js";
import { waitFor } from "../../../shared/test/wait.js";
import { unusedPort } from "./harness.js";
import { FAST_PRESENCE, launchTidings, spawnTidings } from "./processes.js";

function jsonLines(out: string): Record<string, unknown>[] {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("NATS link in the log", () => {
  it("a gateway whose NATS never comes up logs each attempt and exits with one line naming the URL", async () => {
    const url = `nats://127.0.0.1:${await unusedPort()}`;
    const proc = launchTidings("gateway", {
      NATS_URL: url,
      TIDINGS_NATS_CONNECT_TIMEOUT_MS: "1500",
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
    proc.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const [code] = await once(proc, "exit");
    expect(code).not.toBe(0);
    const attempts = jsonLines(out).filter((l) => l.msg === "NATS not reachable; retrying");
    expect(attempts.length).toBeGreaterThan(0);
    for (const a of attempts) expect(a.server).toBe(url);
    const lines = err.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`tidings failed to start: NATS at ${url} not reachable`);
  });

  it("a gateway started before NATS logs its attempts and starts once NATS comes up", async () => {
    const port = await unusedPort();
    const url = `nats://127.0.0.1:${port}`;
    await using nats = await startNats();
    const proc = launchTidings("gateway", {
      NATS_URL: url,
      TIDINGS_NATS_CONNECT_TIMEOUT_MS: "60000",
    });
    try {
      let out = "";
      proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
      proc.stderr.on("data", (c: Buffer) => (out += c.toString()));
      await waitFor(() => /NATS not reachable; retrying/.test(out), {
        timeoutMs: 20_000,
        what: "a logged attempt",
      });
      // NATS "comes up" on the URL the gateway was given.
      await using _proxy = await tcpProxy(Number(new URL(nats.urls[0] as string).port), port);
      await waitFor(() => /Tidings listening on/.test(out), {
        timeoutMs: 20_000,
        what: "the gateway listening",
      });
      const attempt = jsonLines(out).find((l) => l.msg === "NATS not reachable; retrying");
      expect(attempt?.server).toBe(url);
    } finally {
      const exited = once(proc, "exit");
      proc.kill("SIGKILL");
      await exited;
    }
  });

  it("killing and restarting the NATS node logs one lost and one back line per connection, with the URL", async () => {
    await using nats = await startNats();
    await using gw = await spawnTidings("gateway", { NATS_URL: nats.urls[0] as string });
    await nats.kill(0);
    await nats.restart(0);
    const link = () =>
      jsonLines(gw.output()).filter(
        (l) => l.msg === "NATS link lost" || l.msg === "NATS link back",
      );
    // One connection per process (services/roots/nats.ts), named for the role.
    const names = ["tidings-gateway"];
    await waitFor(
      () =>
        names.every((n) => link().some((l) => l.connection === n && l.msg === "NATS link back")),
      { timeoutMs: 20_000, what: "the connection back" },
    );
    for (const n of names) {
      const mine = link().filter((l) => l.connection === n);
      expect(mine.map((l) => l.msg)).toEqual(["NATS link lost", "NATS link back"]);
      for (const l of mine)
        expect(String(l.server)).toContain(new URL(nats.urls[0] as string).port);
    }
  });

  it("a presence replica that loses its leases logs each without a stack or duplicate keys", async () => {
    await using nats = await startNats();
    await using presence = await spawnTidings("presence", {
      NATS_URL: nats.urls[0] as string,
      ...FAST_PRESENCE,
    });
    await waitFor(() => /presence partition acquired/.test(presence.output()), {
      timeoutMs: 20_000,
      what: "a partition acquired",
    });
    await nats.kill(0);
    const lost = () =>
      presence
        .output()
        .split("\n")
        .filter((l) => l.includes("lease lost"));
    await waitFor(() => lost().length > 0, { timeoutMs: 20_000, what: "a lease lost line" });
    for (const raw of lost()) {
      const line = JSON.parse(raw) as Record<string, unknown>;
      expect(line.err).toBeUndefined();
      expect(raw).not.toContain('"stack"');
      const keys = [...raw.matchAll(/"([A-Za-z]+)":/g)].map((m) => m[1]);
      expect(new Set(keys).size).toBe(keys.length);
    }
  });
});
