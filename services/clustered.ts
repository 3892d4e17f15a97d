import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { natsBus } from "../shared/src/cluster/bus.js";
import { startStatsPublisher } from "../shared/src/cluster/stats.js";
import type { Config } from "../shared/src/config/load.js";
import { natsAuthOptions } from "../shared/src/config/nats.js";
import { JetStreamEngine } from "../shared/src/engine/jetstream.js";
import { startHealthServer } from "../shared/src/http/health.js";
import type { Logger } from "../shared/src/log.js";
import { logLinkEvent, waitForNats } from "../shared/src/nats/link.js";
import { webhookCounters } from "../shared/src/webhooks/metrics.js";
import { clusterWebhooks } from "../shared/src/webhooks/setup.js";
import { startGateway } from "./gateway/src/gateway.js";
import { NatsPresenceClient } from "./presence/src/client.js";
import { connectNats, runPresence } from "./presence/src/run.js";
import { announce, onShutdown } from "./runtime.js";

/**
 * NATS composition: the gateway on JetStream with the presence client, the
 * presence service, or both in one process (TIDINGS_ROLE).
 */
export async function startClustered(config: Config, log: Logger): Promise<void> {
  const stops: (() => Promise<void>)[] = [];
  await waitForNats(config, log);
  if (config.role !== "gateway") {
    const presence = await runPresence(config, log.child({ service: "presence" }));
    const stats = startStatsPublisher(natsBus(presence.nc), {
      kind: "presence",
      id: presence.service.replicaId,
      draining: () => false,
      natsConnected: presence.ready,
      extra: async () => ({ partitions: presence.service.owned().length }),
    });
    stops.push(async () => stats.close(), presence.stop);
    if (config.role === "presence") {
      // Alone, a replica serves its own probes and metrics on PORT.
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
      stops.unshift(async () => health.close());
      log.info({ port: health.port }, "presence health and metrics listening");
    }
    log.info({ replica: presence.service.replicaId }, "presence service running");
  }
  if (config.role !== "presence") {
    const engine = await JetStreamEngine.connect({
      ...natsAuthOptions(config),
      replicas: config.natsReplicas >= 3 ? 3 : 1,
      name: "tidings-gateway",
      live: { checkMs: config.liveCheckMs, gapMs: config.liveGapMs },
      onError: (err) => log.warn({ err }, "engine background error"),
      onLink: (event, server) => logLinkEvent(log, "tidings-gateway", event, server),
    });
    const nc = await connectNats(config, "tidings-gateway-presence", log);
    const presence = new NatsPresenceClient({ nc, heartbeatMs: config.heartbeatMs, log });
    const webhooks = await clusterWebhooks(nc, config, log.child({ component: "webhooks" }), {
      drain: false,
    });
    const gateway = await startGateway({
      config,
      engine,
      presence,
      log,
      webhooks: webhooks.sink,
      cluster: { bus: natsBus(nc), gatewayId: presence.gatewayId },
    });
    webhooks.queue?.useCounters(webhookCounters(gateway.metrics.registry));
    announce(log, config, gateway, "jetstream");
    // Gateway first: it drains clients while presence and NATS are still up.
    stops.unshift(async () => {
      await gateway.stop();
      await webhooks.close();
      await presence.close();
      await nc.drain();
      await engine.close();
    });
  }
  onShutdown(log, async () => {
    for (const stop of stops) await stop();
  });
}
