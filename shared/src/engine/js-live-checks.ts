/**
 * The live channels' position checks (js-live.ts), scheduled per stream and
 * under a read budget, so that their cost follows the streams and the
 * budget, not the channel count.
 *
 * A lost *last* event on a channel has no later live message to reveal it;
 * only a read of the stream can. Reading every channel's last seq every
 * `checkMs` cost one leader request per channel per interval: at 10,000
 * channels on 6 gateways, ~6,000 JetStream reads/s that starved the cluster
 * (loadtest/results.md, scale run). Instead:
 *
 * - Each stream's last seq (STREAM.INFO, answered by its leader) is read
 *   once per `checkMs`. Each channel knows a stream seq `V` up to which
 *   everything stored on it has been delivered (its last delivered seq, or
 *   the stream's last seq read before its last passing check). Nothing can
 *   have been lost on it while the stream's last seq is still <= V: a quiet
 *   stream costs one read per interval, however many channels it has.
 * - The channels of a stream that moved are due for a read of their own,
 *   queued oldest-due first and started at most `checkRate` a second (the
 *   stream reads take from the same budget). So a lost last event is found
 *   within about `checkMs` + (due channels) / `checkRate`, plus the
 *   in-flight grace of a check that finds the stream ahead.
 * - Evidence of loss moves a stream to the front: a gap seen on one of its
 *   channels or a reconnect (the NATS client dropped what it could not
 *   deliver) reads the stream at once and puts its due channels ahead of
 *   the queue; a new stream leader (its predecessor's in-flight RePublishes
 *   may be lost, and a 2.9 replica may have diverged) makes every channel
 *   of the stream due, whatever its seq.
 * - A stream whose last seq cannot be read for `gapMs` ends its started
 *   channels: their position is unknown, so their subscribers replay.
 */
import { EngineUnavailableError } from "./engine.js";

/** A stream's last seq and leader (StreamReader.streamPosition). */
export type ReadPosition = (
  stream: string,
) => Promise<{ lastSeq: number; leader: string | undefined }>;

/** What the scheduler needs of a live channel. */
export interface Positioned {
  /** Everything stored on the channel up to this stream seq has been delivered. */
  readonly verifiedSeq: number;
  /** Started, not ended, and no check of its own under way. */
  readonly checkable: boolean;
  readonly started: boolean;
  /**
   * Reads the channel's last seq and delivers what it lacks; `through` is the
   * stream's last seq read before the check, up to which the channel counts
   * as verified once the check passes.
   */
  check(through: number): void;
  /** The stream's position could not be read in time: the channel ends. */
  endUnverified(cause: unknown): void;
}

export interface CheckOptions {
  checkMs: number;
  gapMs: number;
  /** Position reads (stream and channel) started per second at most. */
  checkRate: number;
}

/** A channel's place in the check queues. */
export interface CheckSlot {
  /** The stream's last seq as last read (0 before its first read). */
  streamLast(): number;
  /** A gap was seen on this channel: read its stream at once. */
  lossSeen(): void;
  remove(): void;
}

type Where = "none" | "normal" | "urgent" | "gone";

interface Slot {
  channel: Positioned;
  stream: StreamState;
  where: Where;
  /** Due whatever its seq (a new stream leader). */
  force: boolean;
}

interface StreamState {
  name: string;
  slots: Set<Slot>;
  last: number;
  leader: string | undefined;
  nextReadAt: number;
  reading: boolean;
  /** Read at the next sweep, and its due channels go to the front. */
  urgent: boolean;
  /** When its reads began failing: after `gapMs` its channels end. */
  failingSince: number | undefined;
}

/** A queue that pops from the front in O(1). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

const RETRY_MS = 250;
const CATCH_UP_SWEEPS = 4;

export class PositionChecks {
  private readonly streams = new Map<string, StreamState>();
  private readonly urgent = new Fifo<Slot>();
  private readonly normal = new Fifo<Slot>();
  private tokens: number;
  private readonly maxTokens: number;
  /** The clock is the sweeps' `now`; the first sweep spends the initial share. */
  private lastSweep = Number.NEGATIVE_INFINITY;
  /** Reads started, for tests and metrics: stream reads and channel checks. */
  readonly started = { streamReads: 0, channelChecks: 0 };

  constructor(
    private readonly readPosition: ReadPosition,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
    private readonly options: CheckOptions,
    /** How often `sweep` runs, ms. */
    private readonly sweepMs: number,
  ) {
    // A sweep grants the budget for the time since the last one, so a late
    // timer (a busy event loop) does not shrink the rate; up to 4 sweeps'
    // worth, so a long stall does not turn into a burst.
    this.maxTokens = Math.max(1, (options.checkRate * CATCH_UP_SWEEPS * sweepMs) / 1000);
    this.tokens = Math.max(1, (options.checkRate * sweepMs) / 1000);
  }

  add(streamName: string, channel: Positioned): CheckSlot {
    let stream = this.streams.get(streamName);
    if (!stream) {
      stream = {
        name: streamName,
        slots: new Set(),
        last: 0,
        leader: undefined,
        nextReadAt: 0,
        reading: false,
        urgent: false,
        failingSince: undefined,
      };
      this.streams.set(streamName, stream);
    }
    const owner = stream;
    const slot: Slot = { channel, stream: owner, where: "none", force: false };
    owner.slots.add(slot);
    return {
      streamLast: () => owner.last,
      lossSeen: () => {
        owner.urgent = true;
      },
      remove: () => {
        slot.where = "gone";
        owner.slots.delete(slot);
        if (owner.slots.size === 0 && this.streams.get(owner.name) === owner) {
          this.streams.delete(owner.name);
        }
      },
    };
  }

  /** After a reconnect or a slow-consumer drop: read every stream now. */
  resume(): void {
    for (const s of this.streams.values()) s.urgent = true;
  }

  /** Grants this sweep's share of the budget: stream reads first, then channel checks. */
  sweep(now: number): void {
    const elapsed = Math.max(0, Math.min(now - this.lastSweep, CATCH_UP_SWEEPS * this.sweepMs));
    this.lastSweep = now;
    this.tokens = Math.min(this.maxTokens, this.tokens + (elapsed * this.options.checkRate) / 1000);
    for (const s of [...this.streams.values()]) {
      if (this.tokens < 1) break;
      if (s.reading || (!s.urgent && now < s.nextReadAt)) continue;
      this.tokens -= 1;
      // To the back of the map: with more streams than budget, none starves.
      this.streams.delete(s.name);
      this.streams.set(s.name, s);
      this.readStream(s, now);
    }
    while (this.tokens >= 1) {
      const slot = this.next();
      if (!slot) break;
      const { channel, stream } = slot;
      if (!channel.checkable) continue;
      // Live events may have verified it since it was queued: then it costs nothing.
      if (!slot.force && stream.last <= channel.verifiedSeq) continue;
      slot.force = false;
      this.tokens -= 1;
      this.started.channelChecks++;
      channel.check(stream.last);
    }
  }

  private next(): Slot | undefined {
    for (;;) {
      const fromUrgent = this.urgent.shift();
      const slot = fromUrgent ?? this.normal.shift();
      if (!slot) return undefined;
      // A slot moved to the urgent queue leaves a stale entry in the normal one.
      if (slot.where !== (fromUrgent ? "urgent" : "normal")) continue;
      slot.where = "none";
      return slot;
    }
  }

  private readStream(s: StreamState, now: number): void {
    s.reading = true;
    const urgent = s.urgent;
    s.urgent = false;
    this.started.streamReads++;
    const read = this.isReady()
      ? this.readPosition(s.name)
      : Promise.reject(new EngineUnavailableError("NATS not connected"));
    read.then(
      (pos) => {
        s.reading = false;
        s.failingSince = undefined;
        // From when it was sent, jittered below the interval: the streams' reads spread out.
        s.nextReadAt = now + this.options.checkMs * (0.8 + 0.2 * Math.random());
        const newLeader = s.leader !== undefined && pos.leader !== s.leader;
        s.leader = pos.leader;
        s.last = pos.lastSeq;
        this.queueDue(s, urgent || newLeader, newLeader);
      },
      (err: unknown) => {
        s.reading = false;
        s.urgent ||= urgent;
        s.failingSince ??= now;
        if (!(err instanceof EngineUnavailableError)) this.onError(err);
        if (this.lastSweep - s.failingSince >= this.options.gapMs) {
          s.failingSince = undefined;
          for (const slot of [...s.slots]) {
            if (slot.channel.started) slot.channel.endUnverified(err);
          }
          return;
        }
        s.nextReadAt = this.lastSweep + RETRY_MS;
      },
    );
  }

  private queueDue(s: StreamState, urgent: boolean, force: boolean): void {
    for (const slot of s.slots) {
      // Even a channel busy with a check of its own: its next one is forced.
      if (force) slot.force = true;
      if (!slot.channel.checkable) continue;
      if (!slot.force && s.last <= slot.channel.verifiedSeq) continue;
      if (urgent && slot.where !== "urgent") {
        slot.where = "urgent";
        this.urgent.push(slot);
      } else if (slot.where === "none") {
        slot.where = "normal";
        this.normal.push(slot);
      }
    }
  }
}
