import { cloneJson } from "../json-clone.js";
import {
  type Delivery,
  type EventInput,
  type Json,
  type KvBucket,
  type Signal,
  type StoredEvent,
  storedEvent,
} from "../model.js";
import type {
  AppStreamLimits,
  DeliveryHandler,
  Engine,
  HistoryPage,
  HistoryQuery,
  KvStore,
  LiveSubscription,
  PublishOptions,
  PublishResult,
} from "./engine.js";

const DEFAULT_LIMITS: AppStreamLimits = {
  historyPerChannel: 1000,
  historyMaxAgeSec: 0,
  dedupeWindowSec: 120,
};

interface ChannelState {
  /** History, oldest first, from index `head` on (see `trim`). */
  events: StoredEvent[];
  /**
   * How many events at the front of `events` are trimmed away but not yet
   * removed: a publish to a full channel only moves this, and `events` is
   * compacted once an eighth of it is dead, so trimming costs O(1) per
   * publish amortised instead of an O(history) splice each time.
   */
  head: number;
  /** Highest seq of this channel that was trimmed away; 0 if none. */
  trimmedUpTo: number;
  /**
   * Live subscribers: usually one (the gateway's hub subscribes once per
   * channel), held as is; a Set from the second on, kept until it empties
   * (see `removeHandler`). Empty: undefined.
   */
  handlers: DeliveryHandler | Set<DeliveryHandler> | undefined;
}

/** Delivers to a channel's handlers, in subscription order, without a list for the usual single one. */
function dispatch(ch: ChannelState, d: Delivery): void {
  const h = ch.handlers;
  if (typeof h === "function") h(d);
  else if (h) for (const handler of h) handler(d);
}

/** The channel's newest event still in its history. */
function newest(ch: ChannelState): StoredEvent | undefined {
  return ch.events.length > ch.head ? ch.events.at(-1) : undefined;
}

function addHandler(ch: ChannelState, handler: DeliveryHandler): void {
  const h = ch.handlers;
  if (h === undefined) ch.handlers = handler;
  else if (typeof h === "function") ch.handlers = new Set([h, handler]);
  else h.add(handler);
}

function removeHandler(ch: ChannelState, handler: DeliveryHandler): void {
  const h = ch.handlers;
  if (h === handler) ch.handlers = undefined;
  // An emptied Set goes (`close` drops a channel left alone). One left with a
  // single handler stays a Set: a dispatch in progress iterates it, and must
  // not call a handler closed after the swap.
  else if (typeof h === "object" && h.delete(handler) && h.size === 0) ch.handlers = undefined;
}

interface AppState {
  limits: AppStreamLimits;
  nextSeq: number;
  channels: Map<string, ChannelState>;
  dedupe: Map<string, { result: PublishResult; expires: number }>;
  users: Map<string, Set<(s: Signal) => void>>;
  kv: Map<KvBucket, MemoryKv>;
}

/**
 * Single-process engine. Seqs are per app (like one JetStream stream per
 * app), so they are strictly increasing per channel but not contiguous.
 * Deliveries are dispatched synchronously, which keeps the per-channel order
 * trivially equal to the seq order.
 */
export class MemoryEngine implements Engine {
  private readonly apps = new Map<string, AppState>();
  private closed = false;
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  async ensureApp(appId: string, limits: AppStreamLimits): Promise<void> {
    this.app(appId).limits = { ...limits };
  }

  async publish(
    appId: string,
    channel: string,
    input: EventInput,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const app = this.app(appId);
    const now = this.now();
    const key =
      options.idempotencyKey === undefined
        ? undefined
        : JSON.stringify([channel, options.idempotencyKey]);
    if (key !== undefined) {
      const hit = app.dedupe.get(key);
      if (hit && hit.expires > now)
        return { seq: hit.result.seq, id: hit.result.id, time: hit.result.time, duplicate: true };
    }
    const seq = app.nextSeq++;
    const event = storedEvent(cloneJson(input), channel, seq, now);
    const ch = this.channel(app, channel);
    ch.events.push(event);
    this.trim(app, ch, now);
    const result: PublishResult = { seq, id: event.id, time: now, duplicate: false };
    if (key !== undefined) {
      app.dedupe.set(key, { result, expires: now + app.limits.dedupeWindowSec * 1000 });
      if (app.dedupe.size % 1024 === 0) this.sweepDedupe(app, now);
    }
    dispatch(ch, { type: "event", event });
    return result;
  }

  subscribe(
    appId: string,
    channel: string,
    handler: DeliveryHandler,
  ): LiveSubscription & { ready: Promise<number> } {
    const app = this.app(appId);
    const ch = this.channel(app, channel);
    addHandler(ch, handler);
    // Publishing is synchronous here: every event after the current last one reaches the handler.
    return new MemorySubscription(app, channel, ch, handler, Promise.resolve(newest(ch)?.seq ?? 0));
  }

  signal(appId: string, channel: string, signal: Signal): void {
    const ch = this.app(appId).channels.get(channel);
    if (!ch) return;
    dispatch(ch, { type: "signal", signal: cloneJson(signal) });
  }

  subscribeUser(appId: string, userId: string, handler: (s: Signal) => void) {
    const users = this.app(appId).users;
    const subs = users.get(userId) ?? new Set();
    users.set(userId, subs);
    subs.add(handler);
    return {
      ready: Promise.resolve(),
      close: () => {
        subs.delete(handler);
        if (subs.size === 0 && users.get(userId) === subs) users.delete(userId);
      },
    } satisfies LiveSubscription & { ready: Promise<void> };
  }

  signalUser(appId: string, userId: string, signal: Signal): void {
    for (const h of this.app(appId).users.get(userId) ?? []) h(cloneJson(signal));
  }

  async history(appId: string, channel: string, q: HistoryQuery): Promise<HistoryPage> {
    const app = this.app(appId);
    // A read of a channel that holds nothing leaves nothing behind.
    const ch = app.channels.get(channel) ?? emptyChannel();
    this.trim(app, ch, this.now());
    const all = live(ch);
    if (q.afterSeq !== undefined) {
      const after = q.afterSeq;
      const start = all.findIndex((e) => e.seq > after);
      const rest = start < 0 ? [] : all.slice(start);
      return {
        events: rest.slice(0, q.limit).map(clone),
        hasMore: rest.length > q.limit,
        truncated: ch.trimmedUpTo > after,
      };
    }
    const before = q.beforeSeq ?? Number.POSITIVE_INFINITY;
    const older = all.filter((e) => e.seq < before);
    const page = older.slice(Math.max(0, older.length - q.limit));
    return { events: page.map(clone), hasMore: older.length > page.length, truncated: false };
  }

  async getEvent(appId: string, channel: string, seq: number): Promise<StoredEvent | null> {
    const ch = this.app(appId).channels.get(channel);
    const e = ch && live(ch).find((x) => x.seq === seq);
    return e ? clone(e) : null;
  }

  async lastSeq(appId: string, channel: string): Promise<number> {
    const ch = this.app(appId).channels.get(channel);
    return (ch && newest(ch)?.seq) ?? 0;
  }

  kv(appId: string, bucket: KvBucket): KvStore {
    const app = this.app(appId);
    const store = app.kv.get(bucket) ?? new MemoryKv();
    app.kv.set(bucket, store);
    return store;
  }

  /** Channels the engine holds state for (history, a trim mark or a subscriber): what it keeps in memory. */
  channelsHeld(appId: string): number {
    return this.apps.get(appId)?.channels.size ?? 0;
  }

  isReady(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private app(appId: string): AppState {
    let app = this.apps.get(appId);
    if (!app) {
      app = {
        limits: { ...DEFAULT_LIMITS },
        nextSeq: 1,
        channels: new Map(),
        dedupe: new Map(),
        users: new Map(),
        kv: new Map(),
      };
      this.apps.set(appId, app);
    }
    return app;
  }

  private channel(app: AppState, name: string): ChannelState {
    let ch = app.channels.get(name);
    if (!ch) {
      ch = emptyChannel();
      app.channels.set(name, ch);
    }
    return ch;
  }

  private trim(app: AppState, ch: ChannelState, now: number): void {
    const { historyPerChannel, historyMaxAgeSec } = app.limits;
    const { events } = ch;
    let drop = ch.head + Math.max(0, events.length - ch.head - historyPerChannel);
    if (historyMaxAgeSec > 0) {
      const cutoff = now - historyMaxAgeSec * 1000;
      // Oldest first; past the end there is nothing left to expire.
      while ((events[drop]?.time ?? Number.POSITIVE_INFINITY) < cutoff) drop++;
    }
    if (drop === ch.head) return;
    const lastDropped = events[drop - 1];
    if (lastDropped) ch.trimmedUpTo = lastDropped.seq;
    ch.head = drop;
    if (drop * 8 >= events.length) {
      events.splice(0, drop);
      ch.head = 0;
    }
  }

  private sweepDedupe(app: AppState, now: number): void {
    for (const [k, v] of app.dedupe) if (v.expires <= now) app.dedupe.delete(k);
  }
}

function emptyChannel(): ChannelState {
  return { events: [], head: 0, trimmedUpTo: 0, handlers: undefined };
}

/**
 * A channel's live subscription: one object, where `{ ready, close: () => … }`
 * would be three (the object, a closure and its context), per channel held.
 */
class MemorySubscription implements LiveSubscription {
  constructor(
    private readonly app: AppState,
    private readonly name: string,
    private readonly ch: ChannelState,
    private readonly handler: DeliveryHandler,
    readonly ready: Promise<number>,
  ) {}

  close(): void {
    const { app, name, ch } = this;
    removeHandler(ch, this.handler);
    // Nothing stored, nothing trimmed (which `truncated` reports), no one
    // listening: the state is what a new channel starts with, so keeping it
    // would only grow the map by every channel ever subscribed to.
    if (
      ch.handlers === undefined &&
      ch.events.length === 0 &&
      ch.trimmedUpTo === 0 &&
      app.channels.get(name) === ch
    )
      app.channels.delete(name);
  }
}

/** The events still in a channel's history, oldest first. */
function live(ch: ChannelState): StoredEvent[] {
  if (ch.head > 0) {
    ch.events.splice(0, ch.head);
    ch.head = 0;
  }
  return ch.events;
}

function clone(e: StoredEvent): StoredEvent {
  return cloneJson(e);
}

class MemoryKv implements KvStore {
  private readonly entries = new Map<string, { value: Json; revision: number }>();
  private revision = 0;

  async get(key: string) {
    const e = this.entries.get(key);
    return e ? { value: cloneJson(e.value), revision: e.revision } : null;
  }

  async put(key: string, value: Json): Promise<number> {
    const revision = ++this.revision;
    this.entries.set(key, { value: cloneJson(value), revision });
    return revision;
  }

  async create(key: string, value: Json): Promise<number | null> {
    if (this.entries.has(key)) return null;
    return this.put(key, value);
  }

  async update(key: string, value: Json, revision: number): Promise<number | null> {
    if (this.entries.get(key)?.revision !== revision) return null;
    return this.put(key, value);
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async keys(prefix: string): Promise<string[]> {
    return [...this.entries.keys()].filter((k) => k.startsWith(prefix));
  }
}
