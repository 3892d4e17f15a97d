import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startHealthServer } from "../../../shared/src/http/health.js";
import { createLogger } from "../../../shared/src/log.js";
import { startTestGateway, TEST_APP, unusedPort } from "./harness.js";
import { spawnTidings } from "./processes.js";
import { TestClient } from "./ws-client.js";

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

  // The stopped gateway closed its clients' sockets itself, so they sit in
  // TIME-WAIT on its port: a restart on a fixed port must still bind at once.
  it("takes its port back at once after a stop that closed connected clients", async () => {
    // A fixed port, as in production: uWS sets its socket options only then.
    const port = await unusedPort();
    const first = await startTestGateway({ env: { PORT: String(port) } });
    const clients = await Promise.all(
      [1, 2, 3].map(() => TestClient.connect(first.url(`/app/${TEST_APP.key}?protocol=7`))),
    );
    await Promise.all(clients.map((c) => c.next()));
    await first.stop();
    await Promise.all(clients.map((c) => c.waitClosed()));
    await using again = await startTestGateway({ env: { PORT: String(port) } });
    expect(again.port).toBe(port);
    expect((await fetch(again.http("/healthz"))).status).toBe(200);
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
