import type { TemplatedApp } from "uWebSockets.js";
import type { GatewayContext } from "../core/dialect.js";

/** Liveness, readiness ("can serve": engine reachable and not draining) and metrics. */
export function registerHealth(app: TemplatedApp, ctx: GatewayContext, draining: () => boolean) {
  app.get("/healthz", (res) => {
    res.writeHeader("content-type", "application/json").end('{"status":"ok"}');
  });
  app.get("/readyz", (res) => {
    const ready = ctx.engine.isReady() && !draining();
    res
      .writeStatus(ready ? "200 OK" : "503 Service Unavailable")
      .writeHeader("content-type", "application/json")
      .end(JSON.stringify({ ready, engine: ctx.engine.isReady(), draining: draining() }));
  });
  app.get("/metrics", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    ctx.metrics.registry.metrics().then(
      (text) => {
        if (aborted) return;
        res.cork(() => {
          res.writeHeader("content-type", ctx.metrics.registry.contentType).end(text);
        });
      },
      (err: unknown) => {
        ctx.log.error({ err }, "metrics collection failed");
        if (!aborted) res.cork(() => res.writeStatus("500 Internal Server Error").end());
      },
    );
  });
}
