/**
 * The clustered webhook queue on JetStream. It lives with the queue, not in
 * `shared/src/engine/`: it needs only NATS and the queue's own types, and
 * keeping it here means webhooks never import the engine (nor it them).
 *
 * The process that decides an event (the presence owner of the app's
 * partition, or the gateway holding the connection) batches it in its
 * `WebhookQueue` and publishes each batch to the work-queue stream
 * `WEBHOOK_STREAM`. Presence replicas drain it through one shared durable
 * pull consumer: the server hands each batch to one replica at a time, which
 * POSTs it and acks only after a 2xx (nak with a growing delay otherwise).
 * A replica that dies mid-POST leaves the batch unacked; it is redelivered
 * after `ack_wait` — at-least-once, never silently lost once stored.
 */
import {
  AckPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/nats-core";
import type { Logger } from "../log.js";
import { addOrUpdateStream } from "../nats/streams.js";
import { WEBHOOK_CONSUMER, WEBHOOK_STREAM, webhookSubject, webhookWildcard } from "../subjects.js";
import { UnknownWebhookAppError } from "./http.js";
import { type DeliverBatch, originOf, type WebhookBatch } from "./queue.js";

const CONSUMER_NAME_IN_USE = 10148;

export interface WebhookStreamOptions {
  replicas: number;
  /** Batches kept per app; past it the server discards the oldest. */
  maxBatchesPerApp: number;
}

/** Creates (or converges) the stream; idempotent and safe to race from several processes. */
export async function ensureWebhookStream(
  nc: NatsConnection,
  o: WebhookStreamOptions,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config: Partial<StreamConfig> & { name: string } = {
    name: WEBHOOK_STREAM,
    subjects: [webhookWildcard()],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_msgs_per_subject: o.maxBatchesPerApp,
    // A receiver down for a day is not coming back for these.
    max_age: nanos(24 * 3600 * 1000),
    duplicate_window: nanos(120_000),
  };
  await addOrUpdateStream(jsm, config);
}

/** The producer side: a batch counts as handed on once JetStream stored it. */
export function jetstreamWebhookDelivery(nc: NatsConnection): DeliverBatch {
  const js = jetstream(nc, { timeout: 5000 });
  return async (batch) => {
    // The batch id makes a publish retried after a lost ack a no-op.
    await js.publish(webhookSubject(batch.appId), JSON.stringify(batch), { msgID: batch.id });
  };
}

export interface WebhookDrainOptions {
  nc: NatsConnection;
  /** The HTTP POST (`httpDelivery`). */
  deliver: DeliverBatch;
  log: Logger;
  /** Batches unacked at once across all replicas (default 64). */
  maxInFlight?: number | undefined;
  retryBaseMs?: number | undefined;
  retryMaxMs?: number | undefined;
}

export interface WebhookDrain {
  stop(): Promise<void>;
}

/** Starts draining the stream into receivers; call `ensureWebhookStream` first. */
export async function startWebhookDrain(o: WebhookDrainOptions): Promise<WebhookDrain> {
  const jsm = await jetstreamManager(o.nc);
  const consumerConfig = {
    durable_name: WEBHOOK_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    // Longer than the POST timeout (10 s), so a slow receiver is not sent the batch twice.
    ack_wait: nanos(30_000),
    max_deliver: -1,
    max_ack_pending: o.maxInFlight ?? 64,
  };
  try {
    await jsm.consumers.add(WEBHOOK_STREAM, consumerConfig);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_NAME_IN_USE)) throw err;
    await jsm.consumers.update(WEBHOOK_STREAM, WEBHOOK_CONSUMER, consumerConfig);
  }
  const consumer = await jetstream(o.nc).consumers.get(WEBHOOK_STREAM, WEBHOOK_CONSUMER);
  const base = o.retryBaseMs ?? 500;
  const max = o.retryMaxMs ?? 30_000;
  const inFlight = new Set<Promise<void>>();

  const handle = (m: JsMsg) => {
    let batch: WebhookBatch;
    try {
      batch = m.json<WebhookBatch>();
    } catch (err) {
      o.log.error({ err, seq: m.seq }, "malformed webhook batch discarded");
      m.term();
      return;
    }
    const job = o.deliver(batch).then(
      () => m.ack(),
      (err: unknown) => {
        if (err instanceof UnknownWebhookAppError) {
          o.log.error({ err, app: batch.appId }, "webhook batch for an unknown app discarded");
          m.term();
          return;
        }
        const n = m.info.deliveryCount;
        const delay = Math.min(max, base * 2 ** Math.min(n - 1, 20));
        if (n === 1 || n % 10 === 0) {
          o.log.warn(
            { err, app: batch.appId, receiver: originOf(batch.url), attempts: n, retryMs: delay },
            "webhook delivery failed; retrying",
          );
        }
        m.nak(delay);
      },
    );
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
  };

  const messages = await consumer.consume({ max_messages: o.maxInFlight ?? 64, callback: handle });
  return {
    stop: async () => {
      await messages.close();
      // Unfinished POSTs are left unacked: another replica redelivers them.
      await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, 1000))]);
    },
  };
}
