/**
 * Pull requests on the reader's own consumers, without nats.js's consumer
 * machinery: replay pages are the engine's bulk reads, and per message
 * nats.js builds a JsMsg, parses its reply subject into an info object,
 * queues it in an async iterator and resumes the reader from a microtask
 * (about half of a replayed event's cost in the engine; loadtest/results.md).
 * Here one inbox subscription per connection takes every pull's messages,
 * read straight from the callback into the page. A delivery keeps its
 * stream subject, so messages are matched to their pull by the consumer
 * named in their reply subject, statuses by the pull's reply subject (which
 * ends in the same name): one pull per consumer at a time.
 *
 * A pull asks for at most what the consumer holds (`no_wait`): the server
 * sends what it has, up to the batch, and ends a short batch with a status
 * (404 or, on 2.9, 408), so a read never waits for events not yet stored.
 *
 * Deliveries are core messages: one can be lost on the way (a slow
 * consumer, a reconnect) while the status still arrives, and a short batch
 * would then read as the end of the channel. So each delivery's consumer
 * seq must follow the one before it (across the pulls on one consumer),
 * and a status must not follow a delivery that said more were pending;
 * otherwise the pull fails with LostDeliveryError and the reader reads
 * again on a fresh consumer.
 */
import {
  createInbox,
  type Msg,
  type NatsConnection,
  RequestError,
  type Subscription,
} from "@nats-io/nats-core";
import { Awaiting } from "../nats/awaiting.js";
import { EngineUnavailableError } from "./engine.js";
import { JetStreamEngineError } from "./js-codec.js";

export interface RawMsg {
  subject: string;
  seq: number;
  data: Uint8Array;
  /** The publish's Nats-Msg-Id (see js-repeats.ts). */
  msgId?: string | undefined;
}

export interface PullResult {
  /** Oldest first, all below the pull's `stopBeforeSeq`. */
  msgs: RawMsg[];
  /** What the consumer held after the last message read; 0 when it ran out. */
  pending: number;
  /** Consumer seq of the last delivery: where the consumer's next pull continues. */
  cseq: number;
  /** A message at or after `stopBeforeSeq` arrived (and was left out). */
  reachedStop: boolean;
}

/** A pull whose consumer no server answered for: just created, or gone. */
export class ConsumerGoneError extends EngineUnavailableError {
  override name = "ConsumerGoneError";
}

/** A delivery of the pull did not arrive: the pull cannot tell where its consumer is. */
export class LostDeliveryError extends EngineUnavailableError {
  override name = "LostDeliveryError";
}

const MSG_ID = "Nats-Msg-Id";

interface Pull {
  batch: number;
  stop: number;
  msgs: RawMsg[];
  /** Consumer seq of the last delivery seen (the previous pull's last before the first). */
  cseq: number;
  /** Pending count of the last delivery's reply; 0 before the first. */
  pending: number;
  deadline: number;
  resolve(r: PullResult): void;
  reject(err: Error): void;
}

/**
 * Stream seq, consumer seq and pending count from a JetStream delivery's reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
 * or with `<domain>.<account hash>` after `ACK` and a random token at the
 * end (servers that send the newer form). Null for anything else.
 */
export function ackSeqs(
  reply: string,
): { consumer: string; seq: number; cseq: number; pending: number } | null {
  const t = reply.split(".");
  const base = t.length === 9 ? 0 : t.length >= 11 ? 2 : -1;
  if (base < 0 || t[0] !== "$JS" || t[1] !== "ACK") return null;
  const consumer = t[base + 3] ?? "";
  const seq = Number(t[base + 5]);
  const cseq = Number(t[base + 6]);
  const pending = Number(t[base + 8]);
  return Number.isSafeInteger(seq) && Number.isSafeInteger(cseq) && Number.isSafeInteger(pending)
    ? { consumer, seq, cseq, pending }
    : null;
}

export class ConsumerPulls {
  private readonly inbox = createInbox();
  private sub: Subscription | null = null;
  /** By consumer name. */
  private readonly pulls: Awaiting<string, Pull>;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    timeoutMs: number,
  ) {
    this.pulls = new Awaiting(timeoutMs);
    void nc.closed().then(() => this.close());
  }

  /**
   * The consumer's next messages, up to `batch`, stopping at the first one
   * at or after `stopBeforeSeq`; `afterCseq` is the consumer seq the last
   * pull on this consumer ended at (its `cseq`; 0 for a new consumer).
   * Fails with ConsumerGoneError when nobody serves the consumer,
   * LostDeliveryError when a delivery went missing, a TimeoutError (as a
   * request would) when the pull is not answered within the timeout.
   */
  pull(
    stream: string,
    consumer: string,
    batch: number,
    stopBeforeSeq = Number.POSITIVE_INFINITY,
    afterCseq = 0,
  ): Promise<PullResult> {
    if (this.closed || this.nc.isClosed()) {
      return Promise.reject(new RequestError("connection closed"));
    }
    if (this.pulls.has(consumer)) {
      return Promise.reject(new Error(`a pull on consumer ${consumer} is already in flight`));
    }
    this.sub ??= this.nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.onMsg(msg);
      },
    });
    return new Promise<PullResult>((resolve, reject) => {
      try {
        this.nc.publish(
          `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
          JSON.stringify({ batch, no_wait: true }),
          { reply: `${this.inbox}.${consumer}` },
        );
      } catch (err) {
        reject(err);
        return;
      }
      this.pulls.add(consumer, {
        batch,
        stop: stopBeforeSeq,
        msgs: [],
        cseq: afterCseq,
        pending: 0,
        deadline: 0,
        resolve,
        reject,
      });
    });
  }

  /** Rejects every pull in flight; later ones fail at once. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub?.unsubscribe();
    this.pulls.rejectAll(new RequestError("connection closed"));
  }

  private onMsg(msg: Msg): void {
    const at = msg.reply ? ackSeqs(msg.reply) : null;
    if (!at) {
      // Statuses come on the pull's own reply subject.
      const consumer = msg.subject.slice(this.inbox.length + 1);
      const p = this.pulls.get(consumer);
      if (p) this.onStatus(consumer, p, msg);
      return;
    }
    const p = this.pulls.get(at.consumer);
    if (!p) return; // the rest of a batch read past its stop, or timed out
    if (at.cseq !== p.cseq + 1) {
      const lost = `history read: consumer seq ${at.cseq} after ${p.cseq}`;
      this.fail(at.consumer, p, new LostDeliveryError(lost));
      return;
    }
    p.cseq = at.cseq;
    p.pending = at.pending;
    if (at.seq >= p.stop) {
      this.finish(at.consumer, p, {
        msgs: p.msgs,
        pending: at.pending + 1,
        cseq: at.cseq,
        reachedStop: true,
      });
      return;
    }
    p.msgs.push({
      subject: msg.subject,
      seq: at.seq,
      data: msg.data,
      msgId: msg.headers?.get(MSG_ID) || undefined,
    });
    // A batch the consumer could not fill ends with its status, not here:
    // that status must not reach the consumer's next pull.
    if (p.msgs.length >= p.batch) {
      this.finish(at.consumer, p, {
        msgs: p.msgs,
        pending: at.pending,
        cseq: at.cseq,
        reachedStop: false,
      });
    }
  }

  /** A message without a delivery reply: the server's status for this pull. */
  private onStatus(consumer: string, p: Pull, msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    // No messages (404), or 2.9's answer to a no_wait pull it could not fill (408).
    // The last delivery saying more were pending means the rest went missing.
    if ((code === 404 || code === 408) && p.pending > 0) {
      const lost = `history read: ${code} after a delivery with ${p.pending} pending`;
      this.fail(consumer, p, new LostDeliveryError(lost));
    } else if (code === 404 || code === 408) {
      this.finish(consumer, p, { msgs: p.msgs, pending: 0, cseq: p.cseq, reachedStop: false });
    } else if (code === 503) {
      this.fail(consumer, p, new ConsumerGoneError("history read: no consumer answered"));
    } else if (code === 100) {
      // Heartbeat: not asked for, harmless.
    } else {
      // 409 and the like: consumer deleted, leadership changed, limits exceeded.
      const description = msg.headers?.description ?? "";
      const err = new JetStreamEngineError(`history read: ${code} ${description}`.trim());
      this.fail(
        consumer,
        p,
        code === 409 ? new EngineUnavailableError(err.message, { cause: err }) : err,
      );
    }
  }

  private finish(consumer: string, p: Pull, r: PullResult): void {
    this.pulls.take(consumer);
    p.resolve(r);
  }

  private fail(consumer: string, p: Pull, err: Error): void {
    this.pulls.take(consumer);
    p.reject(err);
  }
}
