import { describe, expect, it } from "vitest";
import { startTestGateway, TEST_APP } from "./harness.js";
import { TestClient } from "./ws-client.js";

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

  it("counts subscriptions, opens and closes by reason, HTTP API requests by route, and the build", async () => {
    await using gw = await startTestGateway();
    const scrape = async () => (await fetch(gw.http("/metrics"))).text();
    const c = await TestClient.connect(gw.url(`/app/${TEST_APP.key}?protocol=7`));
    await c.next();
    c.send({ event: "pusher:subscribe", data: { channel: "news" } });
    await c.next();
    let text = await scrape();
    expect(text).toContain('tidings_subscriptions{app="app-id",dialect="pusher"} 1');
    expect(text).toContain('tidings_connections_opened_total{app="app-id",dialect="pusher"} 1');
    expect(text).toContain('tidings_messages_in_total{app="app-id",dialect="pusher"} 1');
    expect(text).toContain('tidings_messages_out_total{app="app-id",dialect="pusher"}');
    expect(text).toContain("tidings_nats_connected 1");
    expect(text).toContain('tidings_webhook_queue_depth{app="app-id"} 0');
    expect(text).toMatch(/tidings_build_info\{version="\d+\.\d+\.\d+",node="[\d.]+"\} 1/);
    c.close();
    await c.waitClosed();
    await fetch(gw.http("/apps/app-id/events"), { method: "POST", body: "{}" });
    await expect
      .poll(scrape)
      .toContain(
        'tidings_connections_closed_total{app="app-id",dialect="pusher",reason="normal"} 1',
      );
    text = await scrape();
    expect(text).not.toMatch(/tidings_subscriptions\{[^}]*\} [1-9]/);
    expect(text).toMatch(
      /tidings_http_requests_total\{dialect="pusher",route="\/apps\/:app_id\/events",status="4\d\d"\} 1/,
    );
  });

  it("unset, keeps everything on the public port (npm start needs one port)", async () => {
    await using gw = await startTestGateway({ env: { TIDINGS_CONSOLE_SECRET: CONSOLE_SECRET } });
    expect(gw.gateway.metricsPort).toBe(gw.port);
    expect((await fetch(gw.http("/metrics"))).status).toBe(200);
    expect((await fetch(gw.http("/console"))).status).toBe(200);
  });
});
