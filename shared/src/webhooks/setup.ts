/**
 * Builds the webhook pipeline for each deployment shape; the composition
 * roots call these and hand the result to presence and the gateway.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { AppConfig } from "../config/apps.js";
import type { Config } from "../config/load.js";
import type { Logger } from "../log.js";
import { httpDelivery } from "./http.js";
import {
  ensureWebhookStream,
  jetstreamWebhookDelivery,
  startWebhookDrain,
  type WebhookDrain,
} from "./jetstream.js";
import { noWebhooks, WebhookQueue, type WebhookSink } from "./queue.js";

export interface Webhooks {
  sink: WebhookSink;
  /** The in-process queue, when there is one (for metrics). */
  queue: WebhookQueue | undefined;
  close(): Promise<void>;
}

const none: Webhooks = { sink: noWebhooks, queue: undefined, close: async () => {} };

function lookup(config: Config): (appId: string) => AppConfig | undefined {
  const byId = new Map(config.apps.map((a) => [a.id, a]));
  return (id) => byId.get(id);
}

const anyWebhooks = (config: Config) => config.apps.some((a) => a.webhooks.length > 0);

/** One process, memory engine: batches are POSTed from this process. */
export function localWebhooks(config: Config, log: Logger): Webhooks {
  if (!anyWebhooks(config)) return none;
  const apps = lookup(config);
  const queue = new WebhookQueue({ apps, deliver: httpDelivery(apps), log });
  return { sink: queue, queue, close: () => queue.close() };
}

/**
 * Clustered: batches go to the JetStream work queue. With `drain`, this
 * process (a presence replica) also POSTs what is queued there.
 */
export async function clusterWebhooks(
  nc: NatsConnection,
  config: Config,
  log: Logger,
  { drain }: { drain: boolean },
): Promise<Webhooks> {
  if (!anyWebhooks(config)) return none;
  const apps = lookup(config);
  await ensureWebhookStream(nc, {
    replicas: config.natsReplicas >= 3 ? 3 : 1,
    // One stream for all apps: the largest app limit bounds each app's subject.
    maxBatchesPerApp: Math.max(...config.apps.map((a) => a.limits.webhookQueueLimit)),
  });
  const queue = new WebhookQueue({ apps, deliver: jetstreamWebhookDelivery(nc), log });
  let drainer: WebhookDrain | undefined;
  if (drain) drainer = await startWebhookDrain({ nc, deliver: httpDelivery(apps), log });
  return {
    sink: queue,
    queue,
    close: async () => {
      await queue.close();
      await drainer?.stop();
    },
  };
}
