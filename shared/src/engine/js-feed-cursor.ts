/**
 * What an app's live feed (one wildcard subscription, js-live.ts) has
 * received of one stream, so that its channels need not read the stream.
 *
 * The stream RePublishes every message it stores (its RePublish source is
 * its whole subject space) with `Nats-Sequence`, and one leader sends them
 * in stream order, so the feed sees the stream's seqs one after the other.
 * Once a read of the stream's last seq `B` has anchored it, the cursor holds
 * `through`: every seq in (B, through] arrived here and none above it did.
 * While that holds (`valid`):
 *
 * - a channel that starts now goes live after `through` with no read of its
 *   own: every event of the channel stored after it has yet to arrive on
 *   the feed, which routes it to the channel registered before this moment;
 *   a lost one is found as before (the next event's previous seq, or the
 *   position checks). Reading the channel's last seq instead cost a leader
 *   request per new channel: a third of a JetStream connect storm's work.
 * - a channel registered during the cursor's current run (`epoch`) has
 *   received everything stored on it up to `through`, so its position
 *   checks have nothing to find below it: a busy stream no longer makes
 *   every quiet channel due for a read of its own.
 *
 * Any seq that breaks the run (a gap: a message lost on the way; a repeat
 * or one out of order) or a reconnect ends it, and a new read anchors a new
 * run (a new epoch). Channels of the old run are back to their own checks
 * until one of them verifies the channel past the new anchor.
 * Messages at or below the anchor are ones stored before the read that were
 * still on their way: they neither advance nor break the run.
 */
import { EngineUnavailableError } from "./engine.js";

/** A stream's last seq (StreamReader.streamPosition). */
export type ReadLast = (stream: string) => Promise<{ lastSeq: number }>;

/** Seqs kept while an anchoring read is out; more means a busy stream: try again later. */
const MAX_SEEN = 4096;
/** Anchoring reads of one stream start at least this far apart (a lossy link breaks runs often). */
const MIN_GAP_MS = 250;

export class FeedCursor {
  /** Every seq in (`anchor`, `through`] arrived and none above (while `valid`). */
  valid = false;
  through = 0;
  /** The stream's last seq the current run's read found. */
  anchor = 0;
  /** Bumped when a run is anchored anew: a channel's claim on `through` is per run. */
  epoch = 0;
  /** Anchoring reads sent, for the position reads metric. */
  reads = 0;
  private anchoring: Promise<void> | null = null;
  /** Seqs seen while the anchoring read is out; null when none is. */
  private seen: number[] | null = null;
  /** Broken while the read was out (a reconnect, too many seqs): its answer anchors nothing. */
  private spoiled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private lastReadAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly stream: string,
    private readonly readLast: ReadLast,
    private readonly isReady: () => boolean,
    private readonly onError: (err: unknown) => void,
  ) {
    this.schedule();
  }

  /** A RePublished message of the stream arrived with this seq. */
  observe(seq: number): void {
    if (this.valid) {
      if (seq === this.through + 1) this.through = seq;
      else if (seq > this.anchor) this.broken();
      return;
    }
    const seen = this.seen;
    if (!seen) return;
    if (seen.length < MAX_SEEN) seen.push(seq);
    else this.spoiled = true;
  }

  /**
   * Messages may have been lost without a later one showing it (a
   * reconnect), or the stream's numbering may have changed (a new leader,
   * a stream that went back). Until the next anchor, `through` stays what
   * the run proved: its channels keep their claim up to it.
   */
  broken(): void {
    if (this.closed) return;
    this.valid = false;
    if (this.anchoring) this.spoiled = true;
    else this.schedule();
  }

  /** Settles when no anchoring read is out: then `valid` says whether the cursor may be used. */
  settled(): Promise<void> {
    return this.anchoring ?? Promise.resolve();
  }

  close(): void {
    this.closed = true;
    this.valid = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** Anchors now, or once the gap since the last read is over. */
  private schedule(): void {
    if (this.closed || this.anchoring || this.retryTimer) return;
    const wait = this.lastReadAt + MIN_GAP_MS - Date.now();
    if (wait <= 0) {
      this.reanchor();
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.reanchor();
    }, wait);
    this.retryTimer.unref();
  }

  private reanchor(): void {
    if (this.closed || this.anchoring) return;
    this.lastReadAt = Date.now();
    this.epoch++;
    this.valid = false;
    this.through = 0;
    this.seen = [];
    this.spoiled = false;
    this.anchoring = this.read().finally(() => {
      this.anchoring = null;
      this.seen = null;
      if (!this.valid) this.schedule();
    });
  }

  private async read(): Promise<void> {
    try {
      if (!this.isReady()) throw new EngineUnavailableError("NATS not connected");
      this.reads++;
      const { lastSeq } = await this.readLast(this.stream);
      const seen = this.seen;
      if (this.closed || this.spoiled || !seen) return;
      // What arrived while the read was out must continue the stream from its answer.
      const above = seen.filter((s) => s > lastSeq).sort((a, b) => a - b);
      for (let i = 0; i < above.length; i++) if (above[i] !== lastSeq + 1 + i) return;
      this.anchor = lastSeq;
      this.through = lastSeq + above.length;
      this.valid = true;
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) this.onError(err);
    }
  }
}
