/**
 * Everything a presence replica runs, on the process's NATS connection and
 * engine (the NATS composition root, services/roots/nats.ts, owns both):
 * `npm run start:presence`, or `npm start` with NATS_URL (gateway and
 * presence in one process, on one connection).
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { takesEvent } from "../../../shared/src/config/apps.js";
import type { Config } from "../../../shared/src/config/load.js";
import type { JetStreamEngine } from "../../../shared/src/engine/jetstream.js";
import type { Logger } from "../../../shared/src/log.js";
import type { WebhookQueue } from "../../../shared/src/webhooks/queue.js";
import { clusterWebhooks } from "../../../shared/src/webhooks/setup.js";
import { type PresenceService, startPresenceService } from "./service.js";

export interface RunningPresence {
  service: PresenceService;
  ready(): boolean;
  /** The replica's webhook queue, for metrics (absent when no app has webhooks). */
  webhooks: WebhookQueue | undefined;
  /** Releases leases and stops the webhook queue; the connection and engine stay open. */
  stop(): Promise<void>;
}

/** Apps whose webhooks take channel_occupied or channel_vacated; unknown apps count as such. */
function occupancyWebhooks(config: Config): (appId: string) => boolean {
  const without = new Set(
    config.apps
      .filter(
        (a) =>
          !a.webhooks.some(
            (h) => takesEvent(h, "channel_occupied") || takesEvent(h, "channel_vacated"),
          ),
      )
      .map((a) => a.id),
  );
  return (appId) => !without.has(appId);
}

/**
 * A presence replica: reports, leases and KV on `nc`, the signals it emits
 * through `engine`.
 */
export async function runPresence(
  config: Config,
  log: Logger,
  { nc, engine }: { nc: NatsConnection; engine: JetStreamEngine },
): Promise<RunningPresence> {
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
    occupancyWebhooks: occupancyWebhooks(config),
    heartbeatMs: config.heartbeatMs,
    gatewayTimeoutMs: config.gatewayTimeoutMs,
    // Half the gateway timeout: a replica and a gateway dying together are
    // both cleaned up within lease TTL + gateway timeout (15 s by default).
    leaseTtlMs: Math.max(300, Math.floor(config.gatewayTimeoutMs / 2)),
    replicas: config.natsReplicas,
  });
  return {
    service,
    ready: () => engine.isReady() && !nc.isClosed(),
    webhooks: webhooks.queue,
    stop: async () => {
      await service.close();
      await webhooks.close();
    },
  };
}
