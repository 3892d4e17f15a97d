/**
 * A presence replica running alone (TIDINGS_ROLE=presence) serves its own
 * probes on PORT and its metrics on TIDINGS_METRICS_PORT (PORT when unset);
 * beside a gateway it has the gateway's.
 */
import { Gauge } from "prom-client";
import type { Config } from "../../../shared/src/config/load.js";
import { startHealthServer } from "../../../shared/src/http/health.js";
import type { Logger } from "../../../shared/src/log.js";
import { processRegistry } from "../../../shared/src/process-metrics.js";
import { tidingsVersion } from "../../../shared/src/version.js";
import { webhookCounters } from "../../../shared/src/webhooks/metrics.js";
import type { RunningPresence } from "./run.js";

export async function servePresenceProbes(
  config: Config,
  presence: RunningPresence,
  log: Logger,
): Promise<{ port: number; metricsPort: number; close(): void }> {
  const registry = processRegistry({
    version: tidingsVersion(),
    natsHelp: "1 while this replica's NATS connection is up",
    natsConnected: () => presence.ready(),
  });
  new Gauge({
    name: "tidings_presence_partitions_owned",
    help: "Presence partitions this replica acts for",
    registers: [registry],
    collect() {
      this.set(presence.service.owned().length);
    },
  });
  presence.webhooks?.useCounters(webhookCounters(registry));
  const readiness = () => ({ nats: presence.ready() });
  if (config.metricsPort === undefined) {
    const health = await startHealthServer(config.host, config.port, { readiness, registry, log });
    log.info({ port: health.port }, "presence health and metrics listening");
    return Object.assign({}, health, { metricsPort: health.port });
  }
  // Probes stay on PORT (where the chart's kubelet probes look); metrics get their own port.
  const health = await startHealthServer(config.host, config.port, { readiness, log });
  let metrics: { port: number; close(): void };
  try {
    metrics = await startHealthServer(config.host, config.metricsPort, {
      readiness,
      registry,
      log,
    });
  } catch (err) {
    health.close();
    throw err;
  }
  log.info(
    // PORT last, beside the message, where scripts (and the test harness) read it.
    { metricsPort: metrics.port, port: health.port },
    "presence health and metrics listening",
  );
  return {
    port: health.port,
    metricsPort: metrics.port,
    close() {
      health.close();
      metrics.close();
    },
  };
}
