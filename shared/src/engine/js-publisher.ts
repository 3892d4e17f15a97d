/**
 * Pipelined JetStream publisher for the hot path.
 *
 * `js.publish` awaits one request per message and is CPU-bound in the client
 * (~12-22k msg/s). Here every publish is a core publish whose reply subject
 * sits under one wildcard inbox; acks are matched by the reply token, so many
 * publishes are in flight at once (bounded by `maxInFlight`).
 *
 * Sends are batched per event-loop turn: publishes accepted while handling
 * one round of socket reads go out together from a setImmediate, so the
 * NATS client writes them to its socket once instead of once per message
 * (measured: one write syscall per publish was the largest cost of a
 * JetStream publish; loadtest/results.md).
 *
 * Invariant: a message keeps its Nats-Msg-Id and its reply token across
 * retries, so a resend after a lost ack or a 503 (no stream leader during an
 * election) is deduplicated by the stream, and a late ack of an earlier
 * attempt still settles the request.
 */
import {
  createInbox,
  headers,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/nats-core";
import { EngineUnavailableError } from "./engine.js";
import { decodeJson, JetStreamEngineError } from "./js-codec.js";

export interface PublisherOptions {
  /** Publishes awaiting an ack at once; more wait in a queue. */
  maxInFlight: number;
  /** Resend when no ack arrived within this many ms of the last attempt. */
  ackTimeoutMs: number;
  /** Give up (EngineUnavailableError) this many ms after `publish` was called. */
  deadlineMs: number;
  /** Wait this long before resending after a retryable (503) reply. */
  retryDelayMs: number;
}

export const defaultPublisherOptions: PublisherOptions = {
  maxInFlight: 2048,
  ackTimeoutMs: 2000,
  // A stream leader election on an R3 stream takes ~5-6 s; outlast it.
  deadlineMs: 15_000,
  retryDelayMs: 100,
};

export interface PubAckResult {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Pending {
  token: string;
  subject: string;
  payload: Uint8Array;
  headers: MsgHdrs;
  deadline: number;
  /** When to (re)send next: an ack timeout or a retry after a 503. */
  nextAttemptAt: number;
  sent: boolean;
  resolve: (ack: PubAckResult) => void;
  reject: (err: Error) => void;
}

export class PipelinedPublisher {
  private readonly opts: PublisherOptions;
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly inFlight = new Map<string, Pending>();
  private readonly queue: Pending[] = [];
  /** Counted in the window, waiting for this turn's batch to be written. */
  private outbox: Pending[] = [];
  private outboxScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private counter = 0;
  /** Publishes sent again after an ack timeout or a 503 (the retries metric). */
  resends = 0;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    options: Partial<PublisherOptions> = {},
  ) {
    this.opts = Object.assign({}, defaultPublisherOptions, options);
    this.prefix = createInbox();
    this.sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err) {
          this.failAll(
            new EngineUnavailableError("publish ack subscription failed", { cause: err }),
          );
          return;
        }
        this.onReply(msg);
      },
    });
  }

  /** Stores `payload` on `subject` with the given Nats-Msg-Id; resolves with the stream's ack. */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<PubAckResult> {
    if (this.closed) return Promise.reject(new EngineUnavailableError("publisher closed"));
    return new Promise<PubAckResult>((resolve, reject) => {
      const h = headers();
      h.set("Nats-Msg-Id", msgId);
      const now = Date.now();
      const p: Pending = {
        token: (this.counter++).toString(36),
        subject,
        payload,
        headers: h,
        deadline: now + this.opts.deadlineMs,
        nextAttemptAt: 0,
        sent: false,
        resolve,
        reject,
      };
      if (this.inFlight.size < this.opts.maxInFlight) this.send(p);
      else this.queue.push(p);
      this.ensureTimer();
    });
  }

  /** Rejects every queued and in-flight publish (e.g. on disconnect: fail fast, never hang). */
  failAll(err: Error): void {
    const all = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.queue.length = 0;
    this.outbox = [];
    for (const p of all) p.reject(err);
    this.stopTimerIfIdle();
  }

  get pendingCount(): number {
    return this.inFlight.size + this.queue.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new EngineUnavailableError("publisher closed"));
    this.sub.unsubscribe();
  }

  /** Takes a window slot now; the message is written with this turn's batch. */
  private send(p: Pending): void {
    this.inFlight.set(p.token, p);
    p.sent = true;
    p.nextAttemptAt = Date.now() + this.opts.ackTimeoutMs;
    this.outbox.push(p);
    if (!this.outboxScheduled) {
      this.outboxScheduled = true;
      setImmediate(() => this.flushOutbox());
    }
  }

  private flushOutbox(): void {
    this.outboxScheduled = false;
    const batch = this.outbox;
    this.outbox = [];
    for (const p of batch) {
      // Settled meanwhile (failAll, deadline): nothing to send.
      if (this.inFlight.get(p.token) !== p) continue;
      try {
        this.nc.publish(p.subject, p.payload, {
          reply: `${this.prefix}.${p.token}`,
          headers: p.headers,
        });
      } catch (cause) {
        // Closed or draining connection: nothing will ever ack this.
        this.settle(p);
        p.reject(new EngineUnavailableError("publish failed", { cause }));
      }
    }
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length + 1);
    const p = this.inFlight.get(token);
    if (!p) return; // ack of an attempt that was already settled
    // A 503 status means no responders: the stream has no leader right now.
    if (msg.headers?.code === 503) {
      this.retryLater(p);
      return;
    }
    let reply: unknown;
    try {
      reply = decodeJson(msg.data);
    } catch (cause) {
      this.settle(p);
      p.reject(new JetStreamEngineError("unparsable publish ack", { cause }));
      return;
    }
    const ack = reply as {
      stream?: unknown;
      seq?: unknown;
      duplicate?: unknown;
      error?: { code?: unknown; err_code?: unknown; description?: unknown };
    };
    if (ack.error) {
      if (ack.error.code === 503) {
        this.retryLater(p);
        return;
      }
      this.settle(p);
      p.reject(
        new JetStreamEngineError(
          `publish rejected: ${String(ack.error.description)} (${String(ack.error.err_code)})`,
        ),
      );
      return;
    }
    if (typeof ack.seq !== "number" || typeof ack.stream !== "string") {
      this.settle(p);
      p.reject(new JetStreamEngineError(`malformed publish ack: ${JSON.stringify(reply)}`));
      return;
    }
    this.settle(p);
    p.resolve({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true });
  }

  private retryLater(p: Pending): void {
    p.nextAttemptAt = Date.now() + this.opts.retryDelayMs;
  }

  /** Removes `p` from the window and lets a queued publish take its slot. */
  private settle(p: Pending): void {
    this.inFlight.delete(p.token);
    while (this.queue.length > 0 && this.inFlight.size < this.opts.maxInFlight) {
      const next = this.queue.shift();
      if (next) this.send(next);
    }
    this.stopTimerIfIdle();
  }

  private sweep(): void {
    const now = Date.now();
    const expired = new EngineUnavailableError("publish not acknowledged before the deadline");
    for (const p of [...this.inFlight.values()]) {
      if (now >= p.deadline) {
        this.settle(p);
        p.reject(expired);
      } else if (now >= p.nextAttemptAt) {
        this.resends++;
        this.inFlight.delete(p.token);
        this.send(p);
      }
    }
    // Queued publishes can expire too when the window never drains.
    while (this.queue.length > 0 && (this.queue[0]?.deadline ?? Infinity) <= now) {
      this.queue.shift()?.reject(expired);
    }
    this.stopTimerIfIdle();
  }

  private ensureTimer(): void {
    if (this.timer) return;
    const interval = Math.max(10, Math.min(this.opts.retryDelayMs, this.opts.ackTimeoutMs / 4));
    this.timer = setInterval(() => this.sweep(), interval);
    this.timer.unref();
  }

  private stopTimerIfIdle(): void {
    if (this.timer && this.inFlight.size === 0 && this.queue.length === 0) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
