/**
 * Request/reply for the engine's hot reads (STREAM.MSG.GET: position checks,
 * start seqs, gap fills), without nats.js's per-request machinery.
 *
 * `nc.request` builds a deferred, a timeout timer and a `Promise.race` for
 * every request, and on success its `cancel()` rejects the settled deferred
 * with a fresh `RequestError` (an `Error`, stack captured) — even with
 * `noAsyncTraces`. At one position check per channel every few seconds that
 * is a steady share of an idle gateway's CPU (loadtest/results.md). Here one
 * inbox subscription per connection takes every reply and `Awaiting` holds
 * the pending requests under one timer for their deadlines.
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
} from "@nats-io/nats-core";
import { Awaiting } from "./awaiting.js";

interface Pending {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  subject: string;
  deadline: number;
}

export class Requests {
  private readonly inbox = createInbox();
  private sub: Subscription | null = null;
  private readonly pending: Awaiting<number, Pending>;
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    timeoutMs: number,
  ) {
    this.pending = new Awaiting(timeoutMs);
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
      this.pending.add(id, { resolve, reject, subject, deadline: 0 });
    });
  }

  /** Rejects what is pending; later requests fail at once. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub?.unsubscribe();
    this.pending.rejectAll(new RequestError("connection closed"));
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const p = this.pending.take(id);
    if (!p) return; // timed out already
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      const cause = new NoRespondersError(p.subject);
      p.reject(new RequestError(cause.message, { cause }));
    } else {
      p.resolve(msg);
    }
  }
}
