/**
 * Everything a presence process runs, callable from any composition root:
 * `npm run start:presence`, or `npm start` with NATS_URL (gateway and
 * presence in one process).
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type Config, ConfigError } from "../../../shared/src/config/load.js";
import { natsAuthOptions } from "../../../shared/src/config/nats.js";
import { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import type { Logger } from "../../../shared/src/log.js";
import { logLinkEvent, watchLink } from "../../../shared/src/nats/link.js";
import type { WebhookQueue } from "../../../shared/src/webhooks/queue.js";
import { clusterWebhooks } from "../../../shared/src/webhooks/setup.js";
import { type PresenceService, startPresenceService } from "./service.js";

/** Opens a NATS connection with the configured servers and credentials. */
export async function connectNats(
  config: Config,
  name: string,
  log?: Logger,
): Promise<NatsConnection> {
  if (!config.natsUrl) throw new ConfigError(["NATS_URL is required for the presence service"]);
  const nc = await connect({
    ...natsAuthOptions(config),
    name,
    // Presence must outlive NATS restarts: its leases lapse, never its process.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  if (log) watchLink(nc, log, name);
  return nc;
}

/**
 * A presence replica: its own NATS connection (reports, leases, KV) and a
 * JetStream engine for the signals it emits.
 */
export async function runPresence(
  config: Config,
  log: Logger,
): Promise<{
  service: PresenceService;
  /** The replica's connection (owned here, closed by `stop`), for what else it reports. */
  nc: NatsConnection;
  ready(): boolean;
  /** The replica's webhook queue, for metrics (absent when no app has webhooks). */
  webhooks: WebhookQueue | undefined;
  stop(): Promise<void>;
}> {
  const nc = await connectNats(config, "tidings-presence", log);
  const engine = await JetStreamEngine.connect({
    ...natsAuthOptions(config),
    replicas: config.natsReplicas >= 3 ? 3 : 1,
    name: "tidings-presence-signals",
    onError: (err) => log.warn({ err }, "signal engine error"),
    onLink: (event, server) => logLinkEvent(log, "tidings-presence-signals", event, server),
  });
  // Replicas both produce (the owner decides occupied/vacated and members)
  // and drain the queue (every replica POSTs a share of what is stored).
  const webhooks = await clusterWebhooks(nc, config, log.child({ component: "webhooks" }), {
    drain: true,
  });
  const service = await startPresenceService({
    nc,
    engine,
    log,
    webhooks: webhooks.sink,
    heartbeatMs: config.heartbeatMs,
    gatewayTimeoutMs: config.gatewayTimeoutMs,
    // Half the gateway timeout: a replica and a gateway dying together are
    // both cleaned up within lease TTL + gateway timeout (15 s by default).
    leaseTtlMs: Math.max(300, Math.floor(config.gatewayTimeoutMs / 2)),
    replicas: config.natsReplicas,
  });
  return {
    service,
    nc,
    ready: () => engine.isReady() && !nc.isClosed(),
    webhooks: webhooks.queue,
    stop: async () => {
      await service.close();
      await webhooks.close();
      await engine.close();
      await nc.drain();
    },
  };
}
