import { describe, expect, it } from "vitest";
import { startTestGateway } from "./harness.js";

const CONSOLE_SECRET = "console-secret-0123456789";

describe("TIDINGS_METRICS_PORT", () => {
  it("moves /metrics and the console to the internal port; the probes answer on both", async () => {
    await using gw = await startTestGateway({
      env: { TIDINGS_METRICS_PORT: "0", TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET },
    });
    const ops = gw.gateway.metricsPort;
    expect(ops).not.toBe(gw.port);
    const internal = (path: string) => `http://127.0.0.1:${ops}${path}`;

    expect((await fetch(gw.http("/metrics"))).status).toBe(404);
    expect((await fetch(gw.http("/console"))).status).toBe(404);
    const metrics = await fetch(internal("/metrics"));
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/tidings_connections/);
    expect((await fetch(internal("/console"))).status).toBe(200);

    for (const path of ["/healthz", "/readyz"]) {
      expect((await fetch(gw.http(path))).status).toBe(200);
      expect((await fetch(internal(path))).status).toBe(200);
    }
  });

  it("exports Node's default metrics under their standard names, Tidings' own as tidings_*", async () => {
    await using gw = await startTestGateway();
    const text = await (await fetch(gw.http("/metrics"))).text();
    const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? ""));
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
    ])
      expect(names).toContain(name);
    for (const name of names) expect(name).toMatch(/^(process_|nodejs_|tidings_)/);
    expect(
      [...names].filter((n) => n.startsWith("tidings_process") || n.startsWith("tidings_nodejs")),
    ).toEqual([]);
  });

  it("unset, keeps everything on the public port (npm start needs one port)", async () => {
    await using gw = await startTestGateway({ env: { TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET } });
    expect(gw.gateway.metricsPort).toBe(gw.port);
    expect((await fetch(gw.http("/metrics"))).status).toBe(200);
    expect((await fetch(gw.http("/console"))).status).toBe(200);
  });
});
