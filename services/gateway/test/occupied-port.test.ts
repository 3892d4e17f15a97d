import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startHealthServer } from "../../../shared/src/http/health.js";
import { createLogger } from "../../../shared/src/log.js";
import { startTestGateway } from "./harness.js";
import { spawnTidings } from "./processes.js";

describe("a port already in use", () => {
  it("stops a second gateway from starting, with a message naming the port, and the first keeps serving", async () => {
    await using first = await startTestGateway();
    const second = spawnTidings("all", { PORT: String(first.port) });
    await expect(second).rejects.toThrow(
      new RegExp(
        `exited \\(1\\)[\\s\\S]*tidings failed to start: cannot listen on 127\\.0\\.0\\.1:${first.port}: the port is already in use`,
      ),
    );
    // An expected condition: one line, no stack trace.
    await expect(second).rejects.not.toThrow(/\n\s+at /);
    expect((await fetch(first.http("/healthz"))).status).toBe(200);
  });

  it("stops a second health server (presence replicas) from sharing the port", async () => {
    const sources = {
      readiness: () => ({}),
      registry: new Registry(),
      log: createLogger("silent", "test"),
    };
    const first = await startHealthServer("127.0.0.1", 0, sources);
    try {
      await expect(startHealthServer("127.0.0.1", first.port, sources)).rejects.toThrow(
        `cannot listen on 127.0.0.1:${first.port}: the port is already in use`,
      );
    } finally {
      first.close();
    }
  });
});
