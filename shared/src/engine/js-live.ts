/**
 * Live fan-out for the JetStream engine: one core subscription per (app,
 * channel) per process, multiplexed to local handlers.
 *
 * The stream RePublishes every stored event to the channel's live subject
 * with `Nats-Sequence` and `Nats-Last-Sequence` (the previous seq on the same
 * channel). Core NATS may drop messages (disconnect, slow consumer), so each
 * channel tracks the last seq it delivered; when a message's previous seq is
 * not that, the missing events are read from the stream first. Invariant:
 * per channel, events reach handlers in strictly increasing seq order, each
 * at most once, with no stored event skipped.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  type DeliveryHandler,
  EngineUnavailableError,
  type LiveSubscription,
  type Signal,
  type StoredEvent,
} from "./engine.js";
import { decodeEvent, decodeSignal } from "./js-codec.js";
import type { StreamReader } from "./js-reader.js";

type Sub = LiveSubscription & { ready: Promise<void> };

interface Entry {
  handler: DeliveryHandler;
  /** Deliver events with seq above this; null while the entry's start seq is being fetched. */
  afterSeq: number | null;
  buffer: StoredEvent[];
}

/** A live message to process, or a request to compare with the stream (after reconnect). */
type Work = { kind: "msg"; seq: number; prev: number; data: Uint8Array } | { kind: "check" };

const RETRY_MS = 250;

class ChannelLive {
  readonly entries = new Set<Entry>();
  private lastDelivered = 0;
  private started = false;
  private starting: Promise<void> | null = null;
  private readonly work: Work[] = [];
  private busy = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly subs: Subscription[];
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly reader: StreamReader,
    private readonly stream: string,
    private readonly eventSubject: string,
    readonly channel: string,
    liveSubject: string,
    signalSubject: string,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
  ) {
    this.subs = [
      nc.subscribe(liveSubject, {
        callback: (err, msg) => (err ? onError(err) : this.onLive(msg)),
      }),
      nc.subscribe(signalSubject, {
        callback: (err, msg) => (err ? onError(err) : this.onSignal(msg)),
      }),
    ];
  }

  /**
   * Resolves once the subscriptions are registered with the server and the
   * channel's last seq is known: every event stored after that arrives live
   * or is found by gap filling.
   */
  start(): Promise<void> {
    if (this.started) return Promise.resolve();
    // Cleared in a chained finally, not inside the async body: that body may
    // throw before its first await, and a finally in there would run before
    // `??=` stores the promise, leaving a settled attempt cached forever.
    this.starting ??= (async () => {
      try {
        // A flush while disconnected waits for the reconnect; fail fast instead
        // and let resume() start the channel once the link is back.
        if (!this.isReady()) throw new EngineUnavailableError("NATS not connected");
        await this.nc.flush();
        const last = await this.reader.lastSeq(this.stream, this.eventSubject);
        if (this.closed) return;
        this.lastDelivered = last;
        this.started = true;
        void this.pump();
      } catch (err) {
        // Connected but the read failed (e.g. a stream leader election): keep
        // trying, since no reconnect event will come to restart us.
        if (this.isReady() && !this.closed) {
          setTimeout(() => this.resume(), RETRY_MS).unref();
        }
        throw err;
      }
    })().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** Adds a handler; its `ready` covers events stored from the moment it resolves. */
  add(handler: DeliveryHandler): { entry: Entry; ready: Promise<void> } {
    if (!this.started) {
      // Everything the channel will deliver is stored after its own start seq.
      const entry: Entry = { handler, afterSeq: 0, buffer: [] };
      this.entries.add(entry);
      return { entry, ready: this.start() };
    }
    // The channel has delivered up to some seq D; this handler must get every
    // event after L = last seq now (L >= D), so it buffers deliveries until L is known.
    const entry: Entry = { handler, afterSeq: null, buffer: [] };
    this.entries.add(entry);
    const last = this.isReady()
      ? this.reader.lastSeq(this.stream, this.eventSubject)
      : Promise.reject(new EngineUnavailableError("NATS not connected"));
    const ready = last.then(
      (seq) => this.activate(entry, seq),
      (err: unknown) => {
        // Still deliver whatever the channel delivers from here on (it may
        // include events stored just before this subscribe); the caller
        // learns that `ready` could not be established.
        this.activate(entry, this.lastDelivered);
        throw err;
      },
    );
    return { entry, ready };
  }

  private activate(entry: Entry, afterSeq: number): void {
    entry.afterSeq = afterSeq;
    const buffered = entry.buffer;
    entry.buffer = [];
    for (const event of buffered) {
      if (event.seq > afterSeq) safeCall(entry.handler, { type: "event", event }, this.onError);
    }
  }

  remove(entry: Entry): boolean {
    this.entries.delete(entry);
    return this.entries.size === 0;
  }

  /** After a reconnect: re-register if never started, else look for events missed meanwhile. */
  resume(): void {
    if (this.closed) return;
    if (!this.started) {
      this.start().catch(this.onError);
      return;
    }
    if (this.work.at(-1)?.kind !== "check") this.work.push({ kind: "check" });
    void this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const s of this.subs) s.unsubscribe();
    this.work.length = 0;
  }

  private onLive(msg: Msg): void {
    const seq = Number(msg.headers?.get("Nats-Sequence"));
    const prev = Number(msg.headers?.get("Nats-Last-Sequence"));
    if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(prev)) {
      this.onError(new Error(`live message without sequence headers on ${msg.subject}`));
      return;
    }
    this.work.push({ kind: "msg", seq, prev, data: msg.data });
    if (this.started) void this.pump();
  }

  private onSignal(msg: Msg): void {
    const signal: Signal | null = decodeSignal(msg.data);
    if (!signal) return;
    for (const e of this.entries) safeCall(e.handler, { type: "signal", signal }, this.onError);
  }

  /**
   * Drains the work queue in order. Runs synchronously while there is no gap
   * (the hot path); awaits only to read a gap from the stream, during which
   * new live messages queue up behind it.
   */
  private async pump(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      while (this.work.length > 0 && !this.closed) {
        const item = this.work[0];
        if (!item) break;
        if (item.kind === "check") {
          const last = await this.reader.lastSeq(this.stream, this.eventSubject);
          if (last > this.lastDelivered) await this.fill(last + 1);
        } else if (item.seq > this.lastDelivered) {
          if (item.prev > this.lastDelivered) await this.fill(item.seq);
          // fill() may have delivered this very seq when it was stored before the read.
          if (item.seq > this.lastDelivered) {
            this.deliverRaw(item.seq, item.data);
          }
        }
        this.work.shift();
      }
    } catch (err) {
      // Most likely NATS went away mid-fill: keep the queue and try again.
      this.onError(err);
      this.scheduleRetry();
    } finally {
      this.busy = false;
    }
  }

  /** Delivers stored events after lastDelivered and before `untilSeq`. */
  private async fill(untilSeq: number): Promise<void> {
    const from = this.lastDelivered + 1;
    const { msgs } = await this.reader.readRange(
      this.stream,
      this.eventSubject,
      from,
      Number.MAX_SAFE_INTEGER,
      untilSeq,
    );
    for (const m of msgs) {
      if (this.closed) return;
      if (m.seq > this.lastDelivered && m.seq < untilSeq) this.deliverRaw(m.seq, m.data);
    }
  }

  private deliverRaw(seq: number, data: Uint8Array): void {
    // Advance first: a malformed message is skipped, never retried forever.
    this.lastDelivered = seq;
    let event: StoredEvent;
    try {
      event = decodeEvent(this.channel, seq, data);
    } catch (err) {
      this.onError(err);
      return;
    }
    for (const e of this.entries) {
      if (e.afterSeq === null) e.buffer.push(event);
      else if (seq > e.afterSeq) safeCall(e.handler, { type: "event", event }, this.onError);
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.pump();
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}

function safeCall<T>(handler: (v: T) => void, value: T, onError: (err: unknown) => void): void {
  try {
    handler(value);
  } catch (err) {
    // Handlers must not throw; one that does must not starve the others.
    onError(err);
  }
}

export interface ChannelNames {
  stream: string;
  eventSubject: string;
  liveSubject: string;
  signalSubject: string;
}

/** All live channel and user subscriptions of one engine instance. */
export class LiveHub {
  private readonly channels = new Map<string, ChannelLive>();
  private readonly users = new Map<
    string,
    { sub: Subscription; handlers: Set<(s: Signal) => void> }
  >();

  constructor(
    private readonly nc: NatsConnection,
    private readonly reader: StreamReader,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
  ) {}

  subscribe(channel: string, names: ChannelNames, handler: DeliveryHandler): Sub {
    let live = this.channels.get(names.liveSubject);
    if (!live) {
      live = new ChannelLive(
        this.nc,
        this.reader,
        names.stream,
        names.eventSubject,
        channel,
        names.liveSubject,
        names.signalSubject,
        this.isReady,
        this.onError,
      );
      this.channels.set(names.liveSubject, live);
    }
    const owner = live;
    const { entry, ready } = owner.add(handler);
    // Callers that never await `ready` must not crash the process on a rejection.
    ready.catch(() => {});
    let open = true;
    return {
      ready,
      close: () => {
        if (!open) return;
        open = false;
        if (owner.remove(entry)) {
          owner.close();
          if (this.channels.get(names.liveSubject) === owner)
            this.channels.delete(names.liveSubject);
        }
      },
    };
  }

  subscribeUser(subject: string, handler: (signal: Signal) => void): Sub {
    let user = this.users.get(subject);
    if (!user) {
      const handlers = new Set<(s: Signal) => void>();
      const sub = this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return this.onError(err);
          const signal = decodeSignal(msg.data);
          if (signal) for (const h of handlers) safeCall(h, signal, this.onError);
        },
      });
      user = { sub, handlers };
      this.users.set(subject, user);
    }
    const owner = user;
    // Copy so the same function subscribed twice still counts twice.
    const mine = (s: Signal) => handler(s);
    owner.handlers.add(mine);
    let open = true;
    const ready = this.isReady()
      ? this.nc.flush()
      : Promise.reject(new EngineUnavailableError("NATS not connected"));
    ready.catch(() => {});
    return {
      ready,
      close: () => {
        if (!open) return;
        open = false;
        owner.handlers.delete(mine);
        if (owner.handlers.size === 0) {
          owner.sub.unsubscribe();
          if (this.users.get(subject) === owner) this.users.delete(subject);
        }
      },
    };
  }

  /** Called after the connection came back: the client resubscribed, now find what was missed. */
  resume(): void {
    for (const c of this.channels.values()) c.resume();
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
    for (const u of this.users.values()) u.sub.unsubscribe();
    this.channels.clear();
    this.users.clear();
  }
}
