/**
 * The gateway side of the ordered report channel to one partition owner.
 * Reports are sent in batches, one batch in flight at a time, so the owner
 * applies them in exactly the order the gateway made them; a batch is
 * retried (same content, same order) through failovers until `retryForMs`
 * runs out. If it does, the batch is dropped and a full sync is queued in
 * its place: the sync carries the gateway's current truth, so nothing lost
 * in the dropped batch stays wrong at the service.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { PresenceUnavailableError } from "../../../shared/src/presence/api.js";
import {
  type ConnectionSnapshot,
  decodeReply,
  encodeMessage,
  type PresenceMessage,
  type PresenceReply,
  type PresenceReport,
  type ReportResult,
} from "../../../shared/src/presence/messages.js";
import { presenceRequestSubject } from "../../../shared/src/presence/subjects.js";

/** The service rejected a request as malformed (a bug, not a transient failure). */
export class PresenceRequestError extends Error {
  override name = "PresenceRequestError";
}

export interface RequestPolicy {
  requestTimeoutMs: number;
  retryForMs: number;
}

/**
 * Fired when a partition has a new owner (its resync request): a request
 * waiting on the dead owner, or sleeping between retries, goes again at once
 * instead of waiting out its timeout or back-off, so changes made during a
 * takeover are announced as soon as the new owner can take them.
 */
export class OwnerNudge {
  private waiters = new Set<() => void>();

  fire(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w();
  }

  /** Resolves with `p`, or with "nudged" if `fire` comes first. */
  race<T>(p: Promise<T>): Promise<T | "nudged"> {
    let wake: () => void = () => {};
    const nudged = new Promise<"nudged">((r) => {
      wake = () => r("nudged");
    });
    this.waiters.add(wake);
    return Promise.race([p, nudged]).finally(() => this.waiters.delete(wake));
  }
}

interface Item {
  /** A report, or a full sync whose content is taken when it is sent. */
  report: PresenceReport | "sync";
  /** Applied synchronously on success, before the next batch is built. */
  onResult?: ((r: ReportResult) => void) | undefined;
  resolve(r: ReportResult): void;
  reject(err: unknown): void;
  /** When it was queued (Date.now()), for the lag metric. */
  at: number;
}

const MAX_BATCH = 256;
const SYNC_PART = 500;

/** Sends one request to a partition owner, retrying transient failures until the window closes. */
export async function requestWithRetry(
  nc: NatsConnection,
  partition: number,
  message: PresenceMessage,
  policy: RequestPolicy,
  nudge?: OwnerNudge,
): Promise<PresenceReply> {
  const deadline = Date.now() + policy.retryForMs;
  const data = encodeMessage(message);
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const sent = nc.request(presenceRequestSubject(partition), data, {
        timeout: policy.requestTimeoutMs,
      });
      // Given up on below, it still settles later; nothing must be left unhandled.
      sent.catch(() => {});
      const msg = nudge ? await nudge.race(sent) : await sent;
      if (msg === "nudged") {
        // Reports are idempotent at the owner, so sending one again is safe.
        attempt = -1;
        continue;
      }
      const reply = decodeReply(msg.data);
      if (reply.type !== "error") return reply;
      if (reply.code === "invalid") throw new PresenceRequestError(reply.message);
      last = new Error(`${reply.code}: ${reply.message}`);
    } catch (err) {
      if (err instanceof PresenceRequestError || nc.isClosed()) throw err;
      // No responders (no owner yet, failover in progress) or a timeout.
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new PresenceUnavailableError(`no presence owner for partition ${partition}`, {
        cause: last,
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const backoff = new Promise<void>((r) => {
      timer = setTimeout(r, Math.min(1000, 50 * 2 ** attempt));
    });
    if ((await (nudge ? nudge.race(backoff) : backoff)) === "nudged") attempt = -1;
    clearTimeout(timer);
  }
}

export class ReportQueue {
  private readonly items: Item[] = [];
  private busy = false;
  /** When the oldest item of the batch in flight was queued. */
  private sending: number | undefined;
  private closing = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  constructor(
    private readonly nc: NatsConnection,
    private readonly partition: number,
    private readonly gatewayId: string,
    private readonly policy: RequestPolicy,
    /** The gateway's connections in this partition, read when a sync is sent. */
    private readonly snapshot: () => ConnectionSnapshot[],
    readonly nudge = new OwnerNudge(),
  ) {}

  send(report: PresenceReport, onResult?: (r: ReportResult) => void): Promise<ReportResult> {
    return new Promise((resolve, reject) => {
      this.items.push({ report, onResult, resolve, reject, at: Date.now() });
      this.pump();
    });
  }

  /** Queues a full sync unless one is already waiting (it would carry the same state). */
  sync(): void {
    if (this.closing || this.items.some((i) => i.report === "sync")) return;
    this.items.push({ report: "sync", resolve: () => {}, reject: () => {}, at: Date.now() });
    this.pump();
  }

  /** How long the oldest report not yet acknowledged by the owner has waited, in ms (0: none). */
  lagMs(now = Date.now()): number {
    const oldest = this.sending ?? this.items[0]?.at;
    return oldest === undefined ? 0 : now - oldest;
  }

  /** Resolves when everything queued so far has been sent (or given up); queues no new syncs. */
  drained(): Promise<void> {
    this.closing = true;
    return this.idle;
  }

  private pump(): void {
    if (this.busy || this.items.length === 0) return;
    this.busy = true;
    this.idle = new Promise((r) => {
      this.markIdle = r;
    });
    void this.run();
  }

  private async run(): Promise<void> {
    while (this.items.length > 0 && !this.nc.isClosed()) {
      const head = this.items[0];
      const batch: Item[] = head?.report === "sync" ? this.items.splice(0, 1) : this.takeReports();
      this.sending = head?.at;
      try {
        const results =
          head?.report === "sync" ? await this.sendSync() : await this.sendBatch(batch);
        batch.forEach((item, i) => {
          const r = results[i] ?? { ok: true };
          item.onResult?.(r);
          item.resolve(r);
        });
      } catch (err) {
        for (const item of batch) item.reject(err);
        if (err instanceof PresenceUnavailableError) this.sync();
      }
      this.sending = undefined;
    }
    for (const item of this.items.splice(0))
      item.reject(new PresenceUnavailableError("NATS connection closed"));
    this.busy = false;
    this.markIdle();
  }

  private takeReports(): Item[] {
    const end = this.items.findIndex((i, n) => i.report === "sync" || n >= MAX_BATCH);
    return this.items.splice(0, end < 0 ? this.items.length : end);
  }

  private async sendBatch(batch: Item[]): Promise<ReportResult[]> {
    const reports = batch.map((i) => i.report as PresenceReport);
    const reply = await requestWithRetry(
      this.nc,
      this.partition,
      { type: "batch", gatewayId: this.gatewayId, reports },
      this.policy,
      this.nudge,
    );
    if (reply.type !== "batch_result")
      throw new PresenceRequestError(`unexpected reply ${reply.type}`);
    return reply.results;
  }

  /** Sends the snapshot in parts; the owner applies it when the last part arrives. */
  private async sendSync(): Promise<ReportResult[]> {
    const conns = this.snapshot();
    const syncId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const parts = Math.max(1, Math.ceil(conns.length / SYNC_PART));
    for (let i = 0; i < parts; i++) {
      const connections = conns.slice(i * SYNC_PART, (i + 1) * SYNC_PART);
      const report: PresenceReport = {
        type: "sync",
        syncId,
        part: i,
        connections,
        done: i === parts - 1,
      };
      await requestWithRetry(
        this.nc,
        this.partition,
        { type: "batch", gatewayId: this.gatewayId, reports: [report] },
        this.policy,
      );
    }
    return [{ ok: true }];
  }
}
