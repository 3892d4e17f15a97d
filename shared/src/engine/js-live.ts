/**
 * Live fan-out for the JetStream engine, multiplexed to local handlers. A
 * channel's RePublished events and its signals share one subject
 * (`subjects.ts`); a process receives them through one core subscription per
 * app (`subscriptions: "app"`, the app's live wildcard, dispatched by
 * subject) or one per channel (`"channel"`). Per app costs nothing per
 * channel on nats-server or here, and receives the app's messages for
 * channels this process does not hold, which it drops; per channel is for
 * many gateways that each hold a small share of an app's channels.
 *
 * The stream RePublishes every stored event to the channel's live subject
 * with `Nats-Sequence` and `Nats-Last-Sequence` (the previous seq on the same
 * channel). Core NATS may drop messages (disconnect, slow consumer, a route
 * or node lost in the cluster), so each channel tracks the last seq it
 * delivered; when a message's previous seq is not that, the missing events
 * are read from the stream first. A lost *last* event has no later message to
 * reveal it, so channels also compare their position with the stream
 * (Centrifugo's "positioning"): per stream every `checkMs`, and per channel
 * only where the stream moved, under a read budget (js-live-checks.ts).
 *
 * Invariant: per channel, events reach handlers in strictly increasing seq
 * order, each at most once, with no stored event skipped. When the engine
 * cannot keep it within `gapMs` (a gap or a position check it cannot read:
 * NATS link down, stream without a leader), the channel ends and every
 * handler's `onGap` is called once: the subscriber replays from history.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Signal, StoredEvent } from "../model.js";
import { SmallSet } from "../small-set.js";
import {
  type DeliveryGap,
  type DeliveryHandler,
  EngineUnavailableError,
  type LiveSubscription,
  type PositionReads,
} from "./engine.js";
import { decodeEvent, decodeSignal } from "./js-codec.js";
import { FeedCursor } from "./js-feed-cursor.js";
import { type CheckSlot, PositionChecks, type Positioned } from "./js-live-checks.js";
import type { StreamReader } from "./js-reader.js";
import { RepeatFilter } from "./js-repeats.js";

type Sub<T> = LiveSubscription & { ready: Promise<T> };

/** How a process receives live messages: `TIDINGS_LIVE_SUBSCRIPTIONS`. */
export type LiveSubscriptions = "app" | "channel";

export interface LiveOptions {
  /** One subscription per app (its live wildcard) or one per channel held. */
  subscriptions: LiveSubscriptions;
  /** How often each stream's position is read, ms (js-live-checks.ts). */
  checkMs: number;
  /** How long a gap or a position check may stay unresolved before the channel ends, ms. */
  gapMs: number;
  /** Position reads (stream and channel) one engine starts per second at most. */
  checkRate: number;
}

export const DEFAULT_LIVE_OPTIONS: LiveOptions = {
  subscriptions: "app",
  checkMs: 5000,
  gapMs: 10_000,
  checkRate: 100,
};

/** What a channel receives its live messages through; `unsubscribe` once, at its close. */
interface Feed {
  unsubscribe(): void;
}

/**
 * One app's live wildcard subscription, shared by the channels of the app
 * held here: each holds it once and lets go at its close; the last one's
 * release unsubscribes. It follows each stream its channels are on with a
 * cursor (js-feed-cursor.ts) before routing a message to its channel.
 */
class AppFeed implements Feed {
  private holders = 0;
  private readonly sub: Subscription;
  private readonly cursors = new Map<string, FeedCursor>();

  constructor(
    nc: NatsConnection,
    wildcard: string,
    private readonly route: (msg: Msg) => void,
    private readonly newCursor: (stream: string) => FeedCursor,
    onError: (err: unknown) => void,
    private readonly onIdle: () => void,
  ) {
    this.sub = nc.subscribe(wildcard, {
      callback: (err, msg) => (err ? onError(err) : this.receive(msg)),
    });
  }

  private receive(msg: Msg): void {
    // A RePublished event names its stream; a signal has no headers.
    const headers = msg.headers;
    if (headers) {
      const cursor = this.cursors.get(headers.get("Nats-Stream"));
      if (cursor) cursor.observe(Number(headers.get("Nats-Sequence")));
    }
    this.route(msg);
  }

  /** The cursor of one of the app's streams, anchored (a read) when first asked for. */
  cursor(stream: string): FeedCursor {
    let cursor = this.cursors.get(stream);
    if (!cursor) {
      cursor = this.newCursor(stream);
      this.cursors.set(stream, cursor);
    }
    return cursor;
  }

  /** After a reconnect (every stream) or a stream's new leader: what was lost may show in no later seq. */
  broken(stream?: string): void {
    if (stream !== undefined) this.cursors.get(stream)?.broken();
    else for (const c of this.cursors.values()) c.broken();
  }

  anchoringReads(): number {
    let n = 0;
    for (const c of this.cursors.values()) n += c.reads;
    return n;
  }

  hold(): this {
    this.holders++;
    return this;
  }

  unsubscribe(): void {
    if (--this.holders > 0) return;
    this.close();
    this.onIdle();
  }

  /** At the hub's close, whoever still holds it. */
  close(): void {
    this.sub.unsubscribe();
    for (const c of this.cursors.values()) c.close();
  }
}

interface Entry {
  handler: DeliveryHandler;
  onGap: ((gap: DeliveryGap) => void) | undefined;
  /** Deliver events with seq above this; null while the entry's start seq is being fetched. */
  afterSeq: number | null;
  buffer: StoredEvent[];
}

/**
 * A live message to process, or a position check: read the channel's last
 * seq (`upTo` unset), or fill everything up to `upTo` (a check found it and
 * no live message brought it meanwhile). A check that passes verifies the
 * channel through `through`, the stream's last seq read before it. `at` is
 * when the item started waiting: the bound runs from there.
 */
type Work = (
  | { kind: "msg"; seq: number; prev: number; data: Uint8Array; msgId: string | undefined }
  | { kind: "check"; through: number; upTo?: number }
) & { at: number; reported?: boolean };

const RETRY_MS = 250;
/** A gap is usually one or two events: read that many with single leader requests. */
const FILL_SERIAL_STEPS = 4;
/** A check that finds the stream ahead waits this long for the live message already on its way. */
const IN_FLIGHT_GRACE_MS = 500;

class ChannelLive implements Positioned {
  /** Its handlers: usually one (the gateway's hub subscribes once per channel). */
  readonly entries = new SmallSet<Entry>();
  private lastDelivered = 0;
  /**
   * A seq the channel itself holds an event at, or 0: its last read or
   * delivered one. Not `lastDelivered`, which a start from the feed cursor
   * sets to a position of the stream, usually past the channel's own last
   * event: the channel's last seq found below this one means the stream lost it.
   */
  private ownLast = 0;
  started = false;
  private starting: Promise<number> | null = null;
  private readonly work: Work[] = [];
  private busy = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** A check of this channel is queued, reading, or waiting out its grace. */
  private checkPending = false;
  /** The stream seq the channel's last passing check (or its start) verified it through. */
  private verified = 0;
  private readonly feed: Feed;
  private closed = false;
  /** Made at the first live event: a channel that only waits holds none. */
  private repeats: RepeatFilter | undefined;
  private readonly slot: CheckSlot;
  /** The feed cursor's run this channel has received everything of (0: none). */
  private epoch = 0;

  constructor(
    /** Subscribes this channel (called once, here): what it returns is let go at close. */
    feed: (channel: ChannelLive) => Feed,
    /** The app feed's cursor of the channel's stream (per app only). */
    private readonly cursor: FeedCursor | undefined,
    /** Reads of a channel's last seq at its start or a join, for the position reads metric. */
    private readonly counts: { startReads: number },
    checks: PositionChecks,
    private readonly reader: StreamReader,
    private readonly stream: string,
    private readonly eventSubject: string,
    readonly channel: string,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
    private readonly options: LiveOptions,
    /** LiveHub: told when the channel gives up (it tells every handler) and when it is left alone. */
    private readonly owner: ChannelOwner,
    /** The owner's key for it: its live subject. */
    readonly key: string,
  ) {
    this.slot = checks.add(stream, this);
    this.feed = feed(this);
    // Registered during a run: everything the feed receives from now on is routed here.
    if (cursor?.valid) this.epoch = cursor.epoch;
  }

  /** A message on the channel's live subject. */
  receive(msg: Msg): void {
    // A RePublished event carries the stream's headers; a signal has none.
    if (msg.headers?.has("Nats-Sequence")) this.onLive(msg);
    else this.onSignal(msg);
  }

  /**
   * Resolves with the channel's last seq, read after the subscription was
   * sent (or, per app, after the channel was registered for the app's
   * subscription, which was sent earlier): every event stored after it
   * arrives live or is found by gap filling.
   *
   * No flush between the SUB and the read. The connected server processes a
   * connection's protocol in order, so the subscription exists there before
   * the read request is even routed on; with a single server (the stream
   * leader itself) every RePublish after the read finds it. On a cluster the
   * RePublish comes from the leader's server, which learns of the interest
   * over the route; a flush would not prove that either (its PONG is the
   * connected server's), and a RePublish dropped for want of it is a lost
   * live message like any other: the channel's next live event carries
   * Nats-Last-Sequence and the gap is read from the stream, and the position
   * check (`checkMs`) finds a lost last event. The flush only cost a round trip.
   */
  start(): Promise<number> {
    // Cleared in a chained finally, not inside the async body: that body may
    // throw before its first await, and a finally in there would run before
    // `??=` stores the promise, leaving a settled attempt cached forever.
    this.starting ??= (async () => {
      try {
        // A request while disconnected waits for the reconnect; fail fast instead
        // and let resume() start the channel once the link is back.
        if (!this.isReady()) throw new EngineUnavailableError("NATS not connected");
        const cursor = this.cursor;
        if (cursor) {
          await cursor.settled();
          if (this.closed) return 0;
          // Every event of the channel after it has yet to arrive here.
          if (cursor.valid) {
            this.epoch = cursor.epoch;
            return this.begin(cursor.through, cursor.through, 0);
          }
        }
        // Read before ours was sent: nothing on the channel up to it comes after `last`.
        const streamLast = this.slot.streamLast();
        this.counts.startReads++;
        const last = await this.reader.lastSeq(this.stream, this.eventSubject);
        if (this.closed) return last;
        return this.begin(last, streamLast, last);
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

  private begin(last: number, verified: number, ownLast: number): number {
    this.lastDelivered = last;
    this.ownLast = ownLast;
    this.slot.delivered(last);
    this.verified = verified;
    this.started = true;
    void this.pump();
    return last;
  }

  /** Adds a handler; its `ready` covers events stored from the moment it resolves. */
  add(handler: DeliveryHandler, onGap: Entry["onGap"]): { entry: Entry; ready: Promise<number> } {
    if (!this.started) {
      // Everything the channel will deliver is stored after its own start seq.
      const entry: Entry = { handler, onGap, afterSeq: 0, buffer: [] };
      this.entries.add(entry);
      return { entry, ready: this.start() };
    }
    const cursor = this.cursor;
    if (cursor?.valid) {
      // Nothing above the cursor has arrived, nor been delivered above the
      // last delivered seq (a fill may have read ahead of the feed).
      const after = Math.max(cursor.through, this.lastDelivered);
      const entry: Entry = { handler, onGap, afterSeq: after, buffer: [] };
      this.entries.add(entry);
      return { entry, ready: Promise.resolve(after) };
    }
    // The channel has delivered up to some seq D; this handler must get every
    // event after L = last seq now (L >= D), so it buffers deliveries until L is known.
    const entry: Entry = { handler, onGap, afterSeq: null, buffer: [] };
    this.entries.add(entry);
    this.counts.startReads++;
    const last = this.isReady()
      ? this.reader.lastSeq(this.stream, this.eventSubject)
      : Promise.reject(new EngineUnavailableError("NATS not connected"));
    const ready = last.then(
      (seq) => {
        this.activate(entry, seq);
        return seq;
      },
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

  /** Drops a handler; the last one's leaving closes the channel. */
  remove(entry: Entry): void {
    if (!this.entries.delete(entry) || this.entries.size > 0) return;
    this.close();
    this.owner.idle(this);
  }

  /**
   * After a reconnect: re-register if never started. Events missed meanwhile
   * are the position checks' (PositionChecks.resume reads every stream).
   */
  resume(): void {
    if (!this.closed && !this.started) this.start().catch(this.onError);
  }

  get verifiedSeq(): number {
    // Every event up to the last delivered one was delivered (or predates the
    // start), and up to the cursor's while it is this channel's run.
    const cursor = this.cursor;
    const received = cursor && cursor.epoch === this.epoch ? cursor.through : 0;
    return Math.max(this.verified, this.lastDelivered, received);
  }

  get checkable(): boolean {
    return this.started && !this.closed && !this.checkPending;
  }

  /** PositionChecks grants a check: the stream moved past what the channel verified. */
  check(through: number): void {
    if (!this.checkable) return;
    this.checkPending = true;
    this.work.push({ kind: "check", through, at: Date.now() });
    void this.pump();
  }

  endUnverified(cause: unknown, reason?: string): void {
    if (this.closed) return;
    if (reason === undefined) this.giveUp({ kind: "check", through: 0, at: 0 }, cause);
    else this.wentBack(reason);
  }

  /**
   * The stream no longer holds events this channel delivered (a new leader
   * without them: a diverged 2.9 replica, or a recreated stream). It numbers
   * new events with seqs the channel counts as delivered and would skip,
   * so the channel ends and its subscribers replay.
   */
  private wentBack(reason: string): void {
    this.close();
    this.owner.ended(this, { afterSeq: this.lastDelivered, beforeSeq: null, reason });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.feed.unsubscribe();
    this.work.length = 0;
    this.slot.remove();
  }

  private passed(through: number): void {
    this.verified = Math.max(this.verified, through);
    // Verified up to the run's anchor: the run's messages since were routed here.
    const cursor = this.cursor;
    if (cursor?.valid && through >= cursor.anchor) this.epoch = cursor.epoch;
    this.checkPending = false;
    this.slot.checkDone();
  }

  private onLive(msg: Msg): void {
    const seq = Number(msg.headers?.get("Nats-Sequence"));
    const prev = Number(msg.headers?.get("Nats-Last-Sequence"));
    if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(prev)) {
      this.onError(new Error(`live message without sequence headers on ${msg.subject}`));
      return;
    }
    // RePublish keeps the stored message's headers.
    const msgId = msg.headers?.get("Nats-Msg-Id") || undefined;
    this.work.push({ kind: "msg", seq, prev, data: msg.data, msgId, at: Date.now() });
    if (this.started) void this.pump();
  }

  private onSignal(msg: Msg): void {
    const signal: Signal | null = decodeSignal(msg.data);
    if (!signal) return;
    for (const e of this.entries.values())
      safeCall(e.handler, { type: "signal", signal }, this.onError);
  }

  /**
   * Drains the work queue in order. Runs synchronously while there is no gap
   * (the hot path); awaits only to read from the stream, during which new
   * live messages queue up behind it. An item that keeps failing for `gapMs`
   * ends the channel.
   */
  private async pump(): Promise<void> {
    if (this.busy || this.closed || !this.started) return;
    this.busy = true;
    try {
      while (this.work.length > 0 && !this.closed) {
        const item = this.work[0];
        if (!item) break;
        try {
          const reading = this.process(item);
          if (reading) await reading;
        } catch (err) {
          if (this.closed) return;
          if (Date.now() - item.at >= this.options.gapMs) return this.giveUp(item, err);
          // Unavailability is expected here (an election, a reconnect) and retried;
          // anything else is worth a line, but only once per item.
          if (!(err instanceof EngineUnavailableError) && !item.reported) {
            item.reported = true;
            this.onError(err);
          }
          this.scheduleRetry();
          return;
        }
        this.work.shift();
      }
    } finally {
      this.busy = false;
    }
  }

  /** Returns a promise only when the item needs a read: the hot path stays synchronous. */
  private process(item: Work): Promise<void> | undefined {
    if (item.kind === "msg") {
      if (item.seq <= this.lastDelivered) return;
      if (item.prev <= this.lastDelivered) {
        this.deliverRaw(item.seq, item.data, item.msgId);
        return;
      }
      // A lost live message: its neighbours on other channels may be lost too.
      this.slot.lossSeen();
      return this.fill(item.seq, item.prev).then(() => {
        // fill() may have delivered this very seq when it was stored before the read.
        if (item.seq > this.lastDelivered) this.deliverRaw(item.seq, item.data, item.msgId);
      });
    }
    const { upTo, through } = item;
    if (upTo !== undefined) {
      if (upTo > this.lastDelivered)
        return this.fill(upTo + 1, upTo).then(() => this.passed(through));
      this.passed(through);
      return;
    }
    return this.readPosition(item.at, through);
  }

  /** A failure is retried as this same item (pump), keeping `at`. */
  private async readPosition(at: number, through: number): Promise<void> {
    // Known before the read was sent: the channel's last seq is at least it.
    const known = this.ownLast;
    const last = await this.read(() => this.reader.lastSeq(this.stream, this.eventSubject));
    if (this.closed) return;
    // None left (0) may be expiry or a purge; a last seq below a known one
    // means the stream lost the channel's tail.
    if (last > 0 && last < known) {
      this.wentBack(
        `the channel's last seq went back to ${last} from ${known} (its leader lacks delivered events)`,
      );
      return;
    }
    if (last > this.ownLast) this.ownLast = last;
    if (last <= this.lastDelivered) {
      this.passed(through);
      return;
    }
    // The stream is ahead: usually the live message is on its way. Fill only
    // what has still not arrived after a moment, keeping the check's deadline.
    // (checkPending keeps a second check, and so a second timer, away.)
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      if (this.closed) return;
      if (last <= this.lastDelivered) {
        this.passed(through);
        return;
      }
      this.work.push({ kind: "check", through, upTo: last, at });
      void this.pump();
    }, IN_FLIGHT_GRACE_MS);
    this.graceTimer.unref();
  }

  private read<T>(op: () => Promise<T>): Promise<T> {
    // While disconnected a request would wait for the reconnect: fail fast and retry.
    if (!this.isReady()) return Promise.reject(new EngineUnavailableError("NATS not connected"));
    return op();
  }

  /**
   * Delivers stored events after lastDelivered and before `untilSeq`, which
   * must reach `mustReach` (the live message's previous seq, or the last seq
   * a check found) unless that event is gone from the stream (trimmed).
   */
  private async fill(untilSeq: number, mustReach: number): Promise<void> {
    const from = this.lastDelivered + 1;
    const { msgs } = await this.read(() =>
      this.reader.readRange(this.stream, this.eventSubject, from, Number.MAX_SAFE_INTEGER, {
        stopBeforeSeq: untilSeq,
        serialSteps: FILL_SERIAL_STEPS,
      }),
    );
    for (const m of msgs) {
      if (this.closed) return;
      if (m.seq > this.lastDelivered && m.seq < untilSeq) this.deliverRaw(m.seq, m.data, m.msgId);
    }
    if (this.lastDelivered < mustReach && !this.closed) {
      // A short read would skip events silently: the item is retried instead.
      const missed = await this.read(() => this.reader.getMsg(this.stream, { seq: mustReach }));
      if (missed?.subject === this.eventSubject) {
        throw new Error(
          `gap fill on ${this.channel} stopped at ${this.lastDelivered}, before ${mustReach}`,
        );
      }
    }
  }

  private giveUp(item: Work, err: unknown): void {
    const beforeSeq =
      item.kind === "msg" ? item.seq : item.upTo === undefined ? null : item.upTo + 1;
    const reason =
      item.kind === "msg"
        ? "a gap before a live event could not be read in time"
        : "the channel's position could not be checked in time";
    const cause = err instanceof Error ? err.message : String(err);
    this.close();
    this.owner.ended(this, {
      afterSeq: this.lastDelivered,
      beforeSeq,
      reason: `${reason} (${cause})`,
    });
  }

  private deliverRaw(seq: number, data: Uint8Array, msgId: string | undefined): void {
    // Advance first: a malformed message is skipped, never retried forever.
    this.lastDelivered = seq;
    this.ownLast = seq;
    this.slot.delivered(seq);
    let event: StoredEvent;
    try {
      event = decodeEvent(this.channel, seq, data);
    } catch (err) {
      this.onError(err);
      return;
    }
    this.repeats ??= new RepeatFilter(() => this.reader.dedupeWindowMs(this.stream));
    if (this.repeats.isRepeat(msgId, event)) return;
    for (const e of this.entries.values()) {
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
  /** The app's live wildcard: its one subscription with `subscriptions: "app"`. */
  liveWildcard: string;
  stream: string;
  eventSubject: string;
  /** Where the channel's events are RePublished and its signals sent. */
  liveSubject: string;
}

/** What a channel tells the hub that made it (LiveHub). */
interface ChannelOwner {
  ended(live: ChannelLive, gap: DeliveryGap): void;
  idle(live: ChannelLive): void;
}

/** One handler's subscription of a channel: an object, where a `close` closure would be three. */
class ChannelSub implements Sub<number> {
  private open = true;

  constructor(
    private readonly live: ChannelLive,
    private readonly entry: Entry,
    readonly ready: Promise<number>,
  ) {}

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.live.remove(this.entry);
  }
}

/** All live channel and user subscriptions of one engine instance. */
export class LiveHub {
  /** By live subject: what a per-app subscription's messages are routed by. */
  private readonly channels = new Map<string, ChannelLive>();
  /** By live wildcard, with `subscriptions: "app"`. */
  private readonly apps = new Map<string, AppFeed>();
  private readonly route = (msg: Msg) => this.channels.get(msg.subject)?.receive(msg);
  private readonly users = new Map<
    string,
    { sub: Subscription; handlers: Set<(s: Signal) => void> }
  >();
  private readonly sweep: NodeJS.Timeout;
  private readonly options: LiveOptions;
  /** Position checks of every channel here; `checks.started` counts their reads. */
  readonly checks: PositionChecks;
  private readonly counts = { startReads: 0, closedAnchoringReads: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly reader: StreamReader,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
    options: Partial<LiveOptions> = {},
  ) {
    this.options = Object.assign({}, DEFAULT_LIVE_OPTIONS, options);
    // One timer for every stream and channel; a sweep grants a share of the
    // read budget, so frequent sweeps spread the reads evenly.
    const every = Math.max(50, Math.min(250, Math.floor(this.options.checkMs / 4)));
    this.checks = new PositionChecks(
      (stream) => reader.streamPosition(stream),
      isReady,
      onError,
      this.options,
      every,
      (stream) => {
        for (const a of this.apps.values()) a.broken(stream);
      },
    );
    this.sweep = setInterval(() => this.checks.sweep(Date.now()), every);
    this.sweep.unref();
  }

  subscribe(
    channel: string,
    names: ChannelNames,
    handler: DeliveryHandler,
    onGap?: (gap: DeliveryGap) => void,
  ): Sub<number> {
    let live = this.channels.get(names.liveSubject);
    if (!live) {
      const app = this.options.subscriptions === "app" ? this.appFeed(names.liveWildcard) : null;
      const created: ChannelLive = new ChannelLive(
        (live) => app?.hold() ?? this.channelFeed(live, names),
        app?.cursor(names.stream),
        this.counts,
        this.checks,
        this.reader,
        names.stream,
        names.eventSubject,
        channel,
        this.isReady,
        this.onError,
        this.options,
        this,
        names.liveSubject,
      );
      live = created;
      this.channels.set(names.liveSubject, live);
    }
    const { entry, ready } = live.add(handler, onGap);
    // Callers that never await `ready` must not crash the process on a rejection.
    ready.catch(() => {});
    return new ChannelSub(live, entry, ready);
  }

  private channelFeed(live: ChannelLive, names: ChannelNames): Feed {
    return this.nc.subscribe(names.liveSubject, {
      callback: (err, msg) => (err ? this.onError(err) : live.receive(msg)),
    });
  }

  private appFeed(wildcard: string): AppFeed {
    let app = this.apps.get(wildcard);
    if (!app) {
      const created = new AppFeed(
        this.nc,
        wildcard,
        this.route,
        (stream) =>
          new FeedCursor(
            stream,
            (name) => this.reader.streamPosition(name),
            this.isReady,
            this.onError,
          ),
        this.onError,
        () => {
          this.counts.closedAnchoringReads += created.anchoringReads();
          if (this.apps.get(wildcard) === created) this.apps.delete(wildcard);
        },
      );
      app = created;
      this.apps.set(wildcard, app);
    }
    return app;
  }

  /**
   * Position reads started so far: streams' last seqs (the checks' and the
   * feed cursors' anchors), channels' own checks, and channels' last seqs
   * read at a start or a join (none while a feed cursor serves them).
   */
  positionReads(): PositionReads {
    let anchor = this.counts.closedAnchoringReads;
    for (const a of this.apps.values()) anchor += a.anchoringReads();
    return {
      stream: this.checks.started.streamReads,
      anchor,
      check: this.checks.started.channelChecks,
      start: this.counts.startReads,
    };
  }

  /** A channel gave up: later subscribes start afresh, current handlers are told. */
  ended(live: ChannelLive, gap: DeliveryGap): void {
    this.idle(live);
    for (const e of live.entries.values()) {
      if (e.onGap) safeCall(e.onGap, gap, this.onError);
      else
        this.onError(
          new EngineUnavailableError(
            `live delivery on ${live.channel} ended after seq ${gap.afterSeq}: ${gap.reason}`,
          ),
        );
    }
  }

  /** A channel closed as its last handler left: a later subscribe starts a new one. */
  idle(live: ChannelLive): void {
    if (this.channels.get(live.key) === live) this.channels.delete(live.key);
  }

  subscribeUser(subject: string, handler: (signal: Signal) => void): Sub<void> {
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
    for (const a of this.apps.values()) a.broken();
    for (const c of this.channels.values()) c.resume();
    this.checks.resume();
  }

  close(): void {
    clearInterval(this.sweep);
    for (const c of this.channels.values()) c.close();
    for (const a of this.apps.values()) a.close();
    for (const u of this.users.values()) u.sub.unsubscribe();
    this.channels.clear();
    this.apps.clear();
    this.users.clear();
  }
}
