/**
 * Request/reply for the engine's hot reads (STREAM.MSG.GET: position checks,
 * start seqs, gap fills), without nats.js's per-request machinery.
 *
 * `nc.request` builds a deferred, a timeout timer and a `Promise.race` for
 * every request, and on success its `cancel()` rejects the settled deferred
 * with a fresh `RequestError` (an `Error`, stack captured) — even with
 * `noAsyncTraces`. At one position check per channel every few seconds that
 * is a steady share of an idle gateway's CPU (loadtest/results.md). Here one
 * inbox subscription per connection takes every reply, a map holds the
 * pending requests and one timer sweeps their deadlines.
 *
 * Failures are the ones `nc.request` gives, so callers classify them alike
 * (`js-codec.ts` `isUnavailable`): a `TimeoutError` after `timeoutMs`, a
 * `RequestError` caused by `NoRespondersError` for the server's 503, a
 * `RequestError("connection closed")` when the connection closes. Across a
 * reconnect the client re-subscribes the inbox itself; requests sent while
 * disconnected wait in its buffer and time out like nats.js's.
 */
import {
  createInbox,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Subscription,
  TimeoutError,
} from "@nats-io/nats-core";

interface Pending {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  subject: string;
  deadline: number;
}

export class Requests {
  private readonly inbox = createInbox();
  private sub: Subscription | null = null;
  /**
   * By id. Every request has the same timeout, so insertion order is
   * deadline order: the sweep stops at the first one still in time.
   */
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    void nc.closed().then(() => this.close());
  }

  request(subject: string, payload: string | Uint8Array): Promise<Msg> {
    if (this.closed || this.nc.isClosed()) {
      return Promise.reject(new RequestError("connection closed"));
    }
    this.sub ??= this.nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.onReply(msg);
      },
    });
    const id = ++this.nextId;
    return new Promise<Msg>((resolve, reject) => {
      try {
        this.nc.publish(subject, payload, { reply: `${this.inbox}.${id}` });
      } catch (err) {
        reject(err);
        return;
      }
      this.pending.set(id, { resolve, reject, subject, deadline: Date.now() + this.timeoutMs });
      this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, this.timeoutMs / 20));
      this.sweeper.unref();
    });
  }

  /** Rejects what is pending; later requests fail at once. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopSweeper();
    this.sub?.unsubscribe();
    const err = new RequestError("connection closed");
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const p = this.pending.get(id);
    if (!p) return; // timed out already
    this.pending.delete(id);
    if (this.pending.size === 0) this.stopSweeper();
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      const cause = new NoRespondersError(p.subject);
      p.reject(new RequestError(cause.message, { cause }));
    } else {
      p.resolve(msg);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(id);
      p.reject(new TimeoutError());
    }
    if (this.pending.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
