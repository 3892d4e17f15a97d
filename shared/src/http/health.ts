import type { TemplatedApp } from "uWebSockets.js";
import type { Registry } from "prom-client";
import type { Logger } from "../log.js";
import { listenExclusive } from "./listen.js";
import uWS from "./uws.js";

export interface HealthSources {
  /** Named readiness checks; the process is ready when all are true. */
  readiness: () => Record<string, boolean>;
  registry: Registry;
  log: Logger;
}

/** The probes alone: a public port keeps them (load balancers check it) when metrics move off it. */
export function registerProbes(app: TemplatedApp, sources: Pick<HealthSources, "readiness">): void {
  app.get("/healthz", (res) => {
    res.writeHeader("content-type", "application/json").end('{"status":"ok"}');
  });
  app.get("/readyz", (res) => {
    const checks = sources.readiness();
    const ready = Object.values(checks).every(Boolean);
    res
      .writeStatus(ready ? "200 OK" : "503 Service Unavailable")
      .writeHeader("content-type", "application/json")
      .end(JSON.stringify({ ready, ...checks }));
  });
}

/** `/metrics` (Prometheus text). */
export function registerMetrics(
  app: TemplatedApp,
  sources: Pick<HealthSources, "registry" | "log">,
): void {
  app.get("/metrics", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    sources.registry.metrics().then(
      (text) => {
        if (aborted) return;
        res.cork(() => {
          res.writeHeader("content-type", sources.registry.contentType).end(text);
        });
      },
      (err: unknown) => {
        sources.log.error({ err }, "metrics collection failed");
        if (!aborted) res.cork(() => res.writeStatus("500 Internal Server Error").end());
      },
    );
  });
}

/** A process with no WebSocket traffic (a presence replica) still answers probes and scrapes. */
export async function startHealthServer(
  host: string,
  port: number,
  /** Without a registry: the probes alone (the metrics have a port of their own). */
  sources: Omit<HealthSources, "registry"> & { registry?: Registry | undefined },
  /** More routes on this port (the console on a gateway's internal port). */
  registerHttp?: (app: TemplatedApp) => void,
): Promise<{ port: number; close(): void }> {
  const app = uWS.App();
  registerProbes(app, sources);
  if (sources.registry) registerMetrics(app, { registry: sources.registry, log: sources.log });
  registerHttp?.(app);
  app.any("/*", (res) => {
    res.writeStatus("404 Not Found").end("not found");
  });
  const socket = await listenExclusive(app, host, port);
  let open = true;
  return {
    port: uWS.us_socket_local_port(socket),
    close() {
      // A second close of a listen socket crashes uWS.
      if (open) uWS.us_listen_socket_close(socket);
      open = false;
    },
  };
}
