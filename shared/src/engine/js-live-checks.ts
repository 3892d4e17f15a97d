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
 *   stream reads take from the same budget). When both wait, the budget
 *   alternates between them, so neither starves the other: with S streams
 *   and C due channels a stream is read at least every max(`checkMs`,
 *   2 S / `checkRate`) and a lost last event is found within about that +
 *   2 C / `checkRate` (about `checkMs` + C / `checkRate` while the stream
 *   reads take little of the rate), plus the in-flight grace of a check
 *   that finds the stream ahead.
 * - Evidence of loss moves a stream to the front: a gap seen on one of its
 *   channels or a reconnect (the NATS client dropped what it could not
 *   deliver) reads the stream at once and puts its due channels ahead of
 *   the queue; a new stream leader (its predecessor's in-flight RePublishes
 *   may be lost, and a 2.9 replica may have diverged) makes every channel
 *   of the stream due, whatever its seq.
 * - A stream whose last seq cannot be read for `gapMs` ends its started
 *   channels: their position is unknown, so their subscribers replay.
 * - A stream's last seq never goes back (expiry and purges keep it). If a
 *   read finds it below one read before, or below a seq a channel had
 *   delivered when the read was sent, the leader lacks events that were
 *   delivered (a diverged 2.9 replica, or the stream was recreated): it
 *   will number new events with seqs the channels take as delivered, so
 *   its started channels end and their subscribers replay.
 *
 * Polling sees leaders, not leader changes: a change and a change back
 * within one `checkMs` reads the same leader and forces no check. The
 * lost in-flight RePublishes are then found only if the stream moved.
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
  /**
   * The channel ends: the stream's position could not be read in time, or
   * (`reason` given) the stream went back behind what it delivered.
   */
  endUnverified(cause: unknown, reason?: string): void;
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
  /** The channel delivered (or started at) this seq: the stream holds at least it. */
  delivered(seq: number): void;
  /** The channel's own check finished: a check forced meanwhile is queued now. */
  checkDone(): void;
  remove(): void;
}

type Where = "none" | "normal" | "urgent" | "gone";

/** One object per channel (no closures: a channel's bytes are the cost per connection). */
class Slot implements CheckSlot {
  where: Where = "none";
  /** Due whatever its seq (a new stream leader). */
  force = false;
  /** Bumped at each queueing: only the entry with the current ticket is live. */
  ticket = 0;

  constructor(
    readonly channel: Positioned,
    readonly stream: StreamState,
    private readonly checks: PositionChecks,
  ) {}

  streamLast(): number {
    return this.stream.last;
  }

  lossSeen(): void {
    this.stream.urgent = true;
  }

  delivered(seq: number): void {
    if (seq > this.stream.delivered) this.stream.delivered = seq;
  }

  checkDone(): void {
    if (this.force && this.where !== "gone" && this.channel.checkable) {
      this.checks.requeueUrgent(this);
    }
  }

  remove(): void {
    if (this.where === "gone") return;
    this.where = "gone";
    this.checks.removeSlot(this);
  }
}

interface Entry {
  slot: Slot;
  ticket: number;
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
  /** The highest seq a channel of the stream delivered: the stream's last seq is at least it. */
  delivered: number;
}

/** A queue that pops from the front in O(1). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
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

  /** Drops the items `keep` rejects. */
  compact(keep: (item: T) => boolean): void {
    this.items = this.items.slice(this.head).filter(keep);
    this.head = 0;
  }
}

const RETRY_MS = 250;
const CATCH_UP_SWEEPS = 4;

export class PositionChecks {
  private readonly streams = new Map<string, StreamState>();
  private readonly urgent = new Fifo<Entry>();
  private readonly normal = new Fifo<Entry>();
  /** Live slots, so that stale queue entries can be bounded by them. */
  private slotCount = 0;
  /** When stream reads and channel checks both wait, whose token is next. */
  private streamTurn = false;
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
    /** A stream read found a new leader, or the stream behind what was delivered. */
    private readonly onRenumbered: (stream: string) => void = () => {},
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
        delivered: 0,
      };
      this.streams.set(streamName, stream);
    }
    const slot = new Slot(channel, stream, this);
    stream.slots.add(slot);
    this.slotCount++;
    return slot;
  }

  /** Slot.checkDone: a check forced meanwhile goes to the front. */
  requeueUrgent(slot: Slot): void {
    this.enqueue(slot, "urgent");
  }

  /** Slot.remove, once. */
  removeSlot(slot: Slot): void {
    const owner = slot.stream;
    this.slotCount--;
    owner.slots.delete(slot);
    if (owner.slots.size === 0 && this.streams.get(owner.name) === owner) {
      this.streams.delete(owner.name);
    }
  }

  /** Entries in the check queues, live or stale (tests: they stay bounded by the slots). */
  queued(): number {
    return this.urgent.length + this.normal.length;
  }

  /** After a reconnect or a slow-consumer drop: read every stream now. */
  resume(): void {
    for (const s of this.streams.values()) s.urgent = true;
  }

  /**
   * Grants this sweep's share of the budget. Stream reads and channel
   * checks take turns while both wait (urgent streams first, each stream
   * then to the back of the map, so none starves): stream reads alone may
   * need the whole rate (hundreds of streams, or a low rate), and a channel
   * that never gets its check never finds a lost last event.
   */
  sweep(now: number): void {
    const elapsed = Math.max(0, Math.min(now - this.lastSweep, CATCH_UP_SWEEPS * this.sweepMs));
    this.lastSweep = now;
    this.tokens = Math.min(this.maxTokens, this.tokens + (elapsed * this.options.checkRate) / 1000);
    if (this.tokens < 1) return;
    const urgentStreams: StreamState[] = [];
    const dueStreams: StreamState[] = [];
    for (const s of this.streams.values()) {
      if (s.reading) continue;
      if (s.urgent) urgentStreams.push(s);
      else if (now >= s.nextReadAt) dueStreams.push(s);
    }
    const due = urgentStreams.concat(dueStreams);
    let next = 0;
    while (this.tokens >= 1) {
      const entry = this.peek();
      const s = due[next];
      if (!s && !entry) break;
      this.tokens -= 1;
      if (s && (!entry || this.streamTurn)) {
        if (entry) this.streamTurn = false;
        next++;
        this.streams.delete(s.name);
        this.streams.set(s.name, s);
        this.readStream(s, now);
        continue;
      }
      if (!entry) break;
      if (s) this.streamTurn = true;
      entry.queue.shift();
      const slot = entry.slot;
      slot.where = "none";
      slot.force = false;
      this.started.channelChecks++;
      slot.channel.check(slot.stream.last);
    }
  }

  /** The first queued channel that still needs a check (urgent first); drops the rest. */
  private peek(): { queue: Fifo<Entry>; slot: Slot } | undefined {
    for (const [queue, where] of [
      [this.urgent, "urgent"],
      [this.normal, "normal"],
    ] as const) {
      for (let e = queue.peek(); e; e = queue.peek()) {
        const { slot } = e;
        if (slot.where === where && slot.ticket === e.ticket) {
          // Live events may have verified it since it was queued: then it costs nothing.
          if (slot.channel.checkable && (slot.force || slot.stream.last > slot.channel.verifiedSeq))
            return { queue, slot };
          slot.where = "none";
        }
        queue.shift();
      }
    }
    return undefined;
  }

  private live(e: Entry, where: Where): boolean {
    return e.slot.where === where && e.slot.ticket === e.ticket;
  }

  /** Queues a slot; an entry it had in the other queue goes stale (its ticket moved on). */
  private enqueue(slot: Slot, where: "normal" | "urgent"): void {
    slot.where = where;
    slot.ticket++;
    const queue = where === "urgent" ? this.urgent : this.normal;
    queue.push({ slot, ticket: slot.ticket });
    // Stale entries (moved, removed) leave when popped; under sustained
    // urgency the normal queue is not popped, so bound them by the slots.
    if (queue.length > 2 * this.slotCount + 64) queue.compact((e) => this.live(e, where));
  }

  private readStream(s: StreamState, now: number): void {
    s.reading = true;
    const urgent = s.urgent;
    s.urgent = false;
    this.started.streamReads++;
    // Delivered before the read was sent: the answer's last seq must be at least it.
    const delivered = s.delivered;
    const read = this.isReady()
      ? this.readPosition(s.name)
      : Promise.reject(new EngineUnavailableError("NATS not connected"));
    read.then(
      (pos) => {
        s.reading = false;
        s.failingSince = undefined;
        // From when it was sent, jittered below the interval: the streams' reads spread out.
        s.nextReadAt = now + this.options.checkMs * (0.8 + 0.2 * Math.random());
        const behind = Math.max(s.last, delivered);
        if (pos.lastSeq < behind) {
          s.last = pos.lastSeq;
          s.leader = pos.leader;
          s.delivered = pos.lastSeq;
          this.onRenumbered(s.name);
          const reason = `the stream's last seq went back to ${pos.lastSeq} from ${behind} (its leader lacks delivered events)`;
          for (const slot of [...s.slots]) {
            if (slot.channel.started) slot.channel.endUnverified(new Error(reason), reason);
          }
          return;
        }
        const newLeader = s.leader !== undefined && pos.leader !== s.leader;
        // Its predecessor's in-flight RePublishes may be lost, and a 2.9 replica may number anew.
        if (newLeader) this.onRenumbered(s.name);
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
      if (urgent && slot.where !== "urgent") this.enqueue(slot, "urgent");
      else if (slot.where === "none") this.enqueue(slot, "normal");
    }
  }
}
