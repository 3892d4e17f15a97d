/**
 * The engine: everything durable or shared between gateways and the presence
 * service goes through this one interface. Two implementations exist —
 * `MemoryEngine` (one process) and `JetStreamEngine` (NATS) — and both must
 * pass `shared/test/engine.contract.ts` unchanged.
 *
 * The interface speaks apps, channels, users, connection ids and sequence
 * numbers; it never sees a socket or a dialect. What it stores and fans out
 * (events, signals, deliveries) is the shared vocabulary in `../model.ts`.
 */

import type { Delivery, EventInput, Json, KvBucket, Signal, StoredEvent } from "../model.js";

export interface PublishOptions {
  /**
   * Idempotency key, scoped to the app and the channel. A second publish
   * with the same key to the same channel within the app's dedupe window
   * stores nothing and returns the first event's `seq`/`id` with
   * `duplicate: true`; the same key on another channel is another event
   * (a duplicate answer must name an event of the channel it was sent to).
   */
  idempotencyKey?: string | undefined;
}

export interface PublishResult {
  seq: number;
  id: string;
  time: number;
  duplicate: boolean;
}

export interface HistoryQuery {
  /** Return events with seq > afterSeq, oldest first, at most `limit`. */
  afterSeq?: number | undefined;
  /** Without `afterSeq`: the newest `limit` events with seq < beforeSeq (or overall). */
  beforeSeq?: number | undefined;
  limit: number;
}

export interface HistoryPage {
  /** Oldest first. */
  events: StoredEvent[];
  /**
   * With `afterSeq`: newer events exist beyond this page. Otherwise: older
   * events exist before this page.
   */
  hasMore: boolean;
  /**
   * With `afterSeq`: some event of this channel with seq > afterSeq is no
   * longer in history (expired or trimmed), so the page is not the full
   * story. An implementation may report true when it cannot rule it out.
   */
  truncated: boolean;
}

export interface LiveSubscription {
  /** Stops delivery. Idempotent. */
  close(): void;
}

/** Handler for live deliveries. Must not throw; must not block. */
export type DeliveryHandler = (delivery: Delivery) => void;

/**
 * A live subscription ended because the engine could not deliver some stored
 * events in time: it could not read a gap from the stream, or confirm the
 * channel's position, within its bound. Events of the channel with
 * `afterSeq < seq < beforeSeq` may be missing (`beforeSeq` null: unknown, any
 * seq above `afterSeq`); they are still in history, so the subscriber
 * subscribes again and replays from the last seq it has.
 */
export interface DeliveryGap {
  afterSeq: number;
  beforeSeq: number | null;
  reason: string;
}

export interface SubscribeOptions {
  /**
   * Called at most once, after which the subscription delivers nothing more.
   * Without it the engine reports the gap through its own error channel only.
   */
  onGap?: ((gap: DeliveryGap) => void) | undefined;
}

/** Per-app stream settings the engine applies (history size, ages, windows). */
export interface AppStreamLimits {
  /** Events kept per channel. */
  historyPerChannel: number;
  /** Maximum event age in history, seconds (0 = forever). */
  historyMaxAgeSec: number;
  /** Idempotency window, seconds. */
  dedupeWindowSec: number;
  /**
   * Streams the app's channels are spread over (JetStream; default 1). A
   * channel always lands in the same one. An engine refuses an app whose
   * storage was made for another count rather than lose sight of its history.
   */
  streamPartitions?: number | undefined;
}

/**
 * Small key-value store. Keys are arbitrary strings (the engine encodes them
 * as needed); values are JSON. `revision` increases on every write of a key
 * and is what `update` compares against.
 */
export interface KvStore {
  get(key: string): Promise<{ value: Json; revision: number } | null>;
  /** Unconditional write; returns the new revision. */
  put(key: string, value: Json): Promise<number>;
  /** Writes only if the key is absent (or deleted); returns null if it exists. */
  create(key: string, value: Json): Promise<number | null>;
  /** Compare-and-set on `revision`; returns null when the revision moved on. */
  update(key: string, value: Json, revision: number): Promise<number | null>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix` (all keys for ""). */
  keys(prefix: string): Promise<string[]>;
}

export interface Engine {
  /**
   * Prepares storage for an app (creates or updates the stream and limits).
   * Idempotent; concurrent calls from several processes must not conflict.
   * Resolves once the app's storage serves reads (a subscribe can be served).
   */
  ensureApp(appId: string, limits: AppStreamLimits): Promise<void>;

  /**
   * Stores an event durably and returns once it is acknowledged: after a
   * successful return the event is in history and will be delivered to
   * every live subscriber of the channel (exactly once per subscription, in
   * seq order). Throws `EngineUnavailableError` when storage is unreachable.
   */
  publish(
    appId: string,
    channel: string,
    event: EventInput,
    options?: PublishOptions,
  ): Promise<PublishResult>;

  /**
   * Live deliveries for one channel: stored events in strictly increasing
   * seq order with no event of the channel skipped (an implementation fills
   * its own gaps from history before delivering), plus signals. Deliveries
   * start with events stored after the subscription is active (see `ready`).
   * An event that cannot be delivered within the engine's bound ends the
   * subscription through `options.onGap` instead: never a silent skip.
   */
  subscribe(
    appId: string,
    channel: string,
    handler: DeliveryHandler,
    options?: SubscribeOptions,
  ): LiveSubscription & {
    /**
     * Resolves when events stored from now on are guaranteed to be delivered,
     * with the seq live delivery starts after: the subscription delivers
     * every event of the channel with a higher seq and none at or below it.
     * It is a position, not the channel's last seq: JetStream may answer its
     * stream's position, past the channel's own last event (above 0 on an
     * empty channel). An event stored just before the call may fall on
     * either side (JetStream: still on its way to this process, it is
     * delivered live).
     */
    ready: Promise<number>;
  };

  /** Fans a signal out to live subscribers of the channel. Fire and forget. */
  signal(appId: string, channel: string, signal: Signal): void;

  /** Live signals addressed to one user (watchlists, terminate, server-to-user). */
  subscribeUser(
    appId: string,
    userId: string,
    handler: (signal: Signal) => void,
  ): LiveSubscription & {
    ready: Promise<void>;
  };
  signalUser(appId: string, userId: string, signal: Signal): void;

  /** Reads stored events of one channel (see HistoryQuery / HistoryPage). */
  history(appId: string, channel: string, query: HistoryQuery): Promise<HistoryPage>;

  /** The event with this seq if it exists and belongs to the channel. */
  getEvent(appId: string, channel: string, seq: number): Promise<StoredEvent | null>;

  /** Highest seq stored on the channel, 0 if none. */
  lastSeq(appId: string, channel: string): Promise<number>;

  /** A KV bucket, scoped to the app. */
  kv(appId: string, bucket: KvBucket): KvStore;

  /** True while the engine can serve (NATS connected, for JetStream). */
  isReady(): boolean;
  /** Publishes resent so far (same message id), for the retries metric; absent: never resends. */
  publishRetries?(): number;
  /** Reads of stored positions live delivery made so far, for its metric; absent: makes none. */
  positionReads?(): PositionReads;

  close(): Promise<void>;
}

/** What live delivery read to know channels' positions (JetStream: js-live.ts). */
export interface PositionReads {
  /** A stream's last seq, for the position checks. */
  stream: number;
  /** A stream's last seq, anchoring an app feed's cursor. */
  anchor: number;
  /** A channel's last seq, for its position check. */
  check: number;
  /** A channel's last seq, at its start or when a subscriber joins it. */
  start: number;
}

/** Storage is unreachable or timed out; the operation may be retried. */
export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
}
