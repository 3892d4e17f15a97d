/**
 * The in-process webhook queue: filters events per receiver, batches them
 * per (app, url), and hands each batch to a `DeliverBatch` — an HTTP POST in
 * the single-process mode, a JetStream publish in the clustered one — retrying
 * with backoff until it succeeds.
 *
 * Invariants:
 * - `enqueue` never blocks and never throws: it runs on the hot path (client
 *   events, presence effects).
 * - One batch in flight per (app, url): a receiver sees its batches in order,
 *   and a failing receiver is not hammered while others are unaffected.
 * - Memory is bounded per app (`limits.webhookQueueLimit` events, plus the
 *   batches in flight): past it the oldest waiting event of the app's most
 *   backed-up receiver is dropped, counted and logged. Dropping the oldest
 *   keeps what a receiver gets closest to the current state (a stale
 *   channel_occupied is worth less than the vacated that follows it).
 */
import { randomUUID } from "node:crypto";
import { type AppConfig, takesEvent } from "../config/apps.js";
import type { Logger } from "../log.js";
import { type WebhookEvent, webhookBody } from "./events.js";

/** Where deciding code reports webhook events. */
export interface WebhookSink {
  enqueue(appId: string, event: WebhookEvent): void;
}

/** For processes and tests with no webhooks configured. */
export const noWebhooks: WebhookSink = { enqueue() {} };

/** One POST: what the clustered mode stores in JetStream. */
export interface WebhookBatch {
  /** Stable across retries: JetStream deduplicates a re-published batch by it. */
  id: string;
  appId: string;
  url: string;
  /** The exact body to POST (and sign): `{time_ms, events}`. */
  body: string;
  events: number;
}

/** Resolves once the batch is delivered (2xx, or stored in JetStream); throws otherwise. */
export type DeliverBatch = (batch: WebhookBatch) => Promise<void>;

export interface WebhookCounters {
  dropped(appId: string, events: number): void;
  delivered(appId: string, events: number): void;
  failed(appId: string): void;
}

const noCounters: WebhookCounters = { dropped() {}, delivered() {}, failed() {} };

export interface WebhookQueueOptions {
  apps: (appId: string) => AppConfig | undefined;
  deliver: DeliverBatch;
  log: Logger;
  /** A batch is sent at most this long after its first event (default 250). */
  windowMs?: number | undefined;
  /** ... or as soon as it holds this many events (default 100). */
  maxBatch?: number | undefined;
  /** First retry delay; doubles per failure up to `retryMaxMs` (defaults 500 / 30000). */
  retryBaseMs?: number | undefined;
  retryMaxMs?: number | undefined;
}

interface Pending {
  id: string;
  timeMs: number;
  events: WebhookEvent[];
}

interface Target {
  appId: string;
  url: string;
  open: WebhookEvent[];
  timer: NodeJS.Timeout | undefined;
  /** Closed batches waiting for delivery, oldest first. */
  ready: Pending[];
  sending: Pending | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
}

interface AppQueue {
  /** Events held for this app: open, ready and in flight. */
  size: number;
  targets: Map<string, Target>;
  droppedSinceLog: number;
  lastDropLog: number;
}

const DROP_LOG_EVERY_MS = 5000;

export class WebhookQueue implements WebhookSink {
  private readonly queues = new Map<string, AppQueue>();
  private counters: WebhookCounters = noCounters;
  private closed = false;
  private readonly windowMs: number;
  private readonly maxBatch: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly o: WebhookQueueOptions) {
    this.windowMs = o.windowMs ?? 250;
    this.maxBatch = o.maxBatch ?? 100;
    this.retryBaseMs = o.retryBaseMs ?? 500;
    this.retryMaxMs = o.retryMaxMs ?? 30_000;
  }

  /** Metrics are bound by the composition root once their registry exists. */
  useCounters(counters: WebhookCounters): void {
    this.counters = counters;
  }

  enqueue(appId: string, event: WebhookEvent): void {
    if (this.closed) return;
    const app = this.o.apps(appId);
    if (!app || app.webhooks.length === 0) return;
    for (const hook of app.webhooks) {
      if (!takesEvent(hook, event.name)) continue;
      const q = this.queue(appId);
      if (q.size >= app.limits.webhookQueueLimit) this.dropOldest(appId, q);
      const t = this.target(q, appId, hook.url);
      t.open.push(event);
      q.size++;
      if (t.open.length >= this.maxBatch) this.closeBatch(t);
      else if (!t.timer) {
        t.timer = setTimeout(() => this.closeBatch(t), this.windowMs);
        t.timer.unref();
      }
    }
  }

  /** Events held for an app (waiting or in flight). */
  size(appId: string): number {
    return this.queues.get(appId)?.size ?? 0;
  }

  /**
   * Sends what is batched and waits up to `graceMs` for the queue to empty,
   * then stops; anything left is logged as lost.
   */
  async close(graceMs = 1000): Promise<void> {
    for (const q of this.queues.values()) for (const t of q.targets.values()) this.closeBatch(t);
    const deadline = Date.now() + graceMs;
    while (this.total() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.closed = true;
    const left = this.total();
    if (left > 0) this.o.log.warn({ events: left }, "webhook events undelivered at shutdown");
    for (const q of this.queues.values()) {
      for (const t of q.targets.values()) {
        clearTimeout(t.timer);
        clearTimeout(t.retryTimer);
      }
    }
  }

  private total(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.size;
    return n;
  }

  private closeBatch(t: Target): void {
    clearTimeout(t.timer);
    t.timer = undefined;
    if (t.open.length === 0) return;
    t.ready.push({ id: randomUUID(), timeMs: Date.now(), events: t.open });
    t.open = [];
    this.pump(t);
  }

  private pump(t: Target): void {
    if (this.closed || t.sending || t.retryTimer) return;
    const batch = t.ready.shift();
    if (!batch) return;
    t.sending = batch;
    const n = batch.events.length;
    const body = webhookBody(batch.timeMs, batch.events);
    let delivery: Promise<void>;
    try {
      delivery = this.o.deliver({ id: batch.id, appId: t.appId, url: t.url, body, events: n });
    } catch (err) {
      delivery = Promise.reject(err);
    }
    delivery.then(
      () => {
        t.sending = undefined;
        t.failures = 0;
        this.queue(t.appId).size -= n;
        this.counters.delivered(t.appId, n);
        this.pump(t);
      },
      (err: unknown) => {
        t.sending = undefined;
        t.failures++;
        this.counters.failed(t.appId);
        // Back at the front, where it stays droppable while we wait.
        t.ready.unshift(batch);
        const delay = this.backoff(t.failures);
        if (t.failures === 1 || t.failures % 10 === 0) {
          this.o.log.warn(
            { err, app: t.appId, receiver: originOf(t.url), failures: t.failures, retryMs: delay },
            "webhook delivery failed; retrying",
          );
        }
        t.retryTimer = setTimeout(() => {
          t.retryTimer = undefined;
          this.pump(t);
        }, delay);
        t.retryTimer.unref();
      },
    );
  }

  private backoff(failures: number): number {
    const base = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(failures - 1, 20));
    // ±20% so receivers that fail together do not get retried in lockstep.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private dropOldest(appId: string, q: AppQueue): void {
    let victim: Target | undefined;
    let most = 0;
    for (const t of q.targets.values()) {
      const droppable = t.open.length + t.ready.reduce((n, b) => n + b.events.length, 0);
      if (droppable > most) [victim, most] = [t, droppable];
    }
    // Everything held is in flight: tolerate one batch per receiver over the limit.
    if (!victim) return;
    const first = victim.ready[0];
    if (first) {
      first.events.shift();
      if (first.events.length === 0) victim.ready.shift();
    } else victim.open.shift();
    q.size--;
    this.counters.dropped(appId, 1);
    q.droppedSinceLog++;
    const now = Date.now();
    if (now - q.lastDropLog >= DROP_LOG_EVERY_MS) {
      this.o.log.warn(
        { app: appId, dropped: q.droppedSinceLog, receiver: originOf(victim.url) },
        "webhook queue full; dropped the oldest events",
      );
      q.lastDropLog = now;
      q.droppedSinceLog = 0;
    }
  }

  private queue(appId: string): AppQueue {
    let q = this.queues.get(appId);
    if (!q) {
      q = { size: 0, targets: new Map(), droppedSinceLog: 0, lastDropLog: 0 };
      this.queues.set(appId, q);
    }
    return q;
  }

  private target(q: AppQueue, appId: string, url: string): Target {
    let t = q.targets.get(url);
    if (!t) {
      t = {
        appId,
        url,
        open: [],
        timer: undefined,
        ready: [],
        sending: undefined,
        retryTimer: undefined,
        failures: 0,
      };
      q.targets.set(url, t);
    }
    return t;
  }
}

/** Receiver URLs may carry credentials in their path or query: logs get the origin only. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}
