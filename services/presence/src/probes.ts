/**
 * A presence replica running alone (TIDINGS_ROLE=presence) serves its own
 * probes and metrics on PORT; beside a gateway it has the gateway's.
 */
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Config } from "../../../shared/src/config/load.js";
import { startHealthServer } from "../../../shared/src/http/health.js";
import type { Logger } from "../../../shared/src/log.js";
import { webhookCounters } from "../../../shared/src/webhooks/metrics.js";
import type { RunningPresence } from "./run.js";

export async function servePresenceProbes(
  config: Config,
  presence: RunningPresence,
  log: Logger,
): Promise<{ port: number; close(): void }> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tidings_presence_" });
  new Gauge({
    name: "tidings_presence_partitions_owned",
    help: "Presence partitions this replica acts for",
    registers: [registry],
    collect() {
      this.set(presence.service.owned().length);
    },
  });
  presence.webhooks?.useCounters(webhookCounters(registry));
  const health = await startHealthServer(config.host, config.port, {
    readiness: () => ({ nats: presence.ready() }),
    registry,
    log,
  });
  log.info({ port: health.port }, "presence health and metrics listening");
  return health;
}
