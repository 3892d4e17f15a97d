/**
 * Seqs of an app spread over several streams (`streamPartitions`).
 *
 * Each partition stream numbers its own messages 1, 2, 3, … A channel lives
 * in one partition, so its events keep the order of their stream seqs, but
 * two partitions hand out the same numbers: as they are, seqs (and the event
 * ids derived from them) would no longer be unique within the app, as
 * `StoredEvent.seq` promises. So the engine shows stream seq `s` of
 * partition `p` (of `n`) as
 *
 *   (s - 1) * n + p + 1
 *
 * which interleaves the partitions: unique within the app, strictly
 * increasing within a channel, and equal to the stream seq when n is 1,
 * so an app on one stream sees exactly the seqs it always did. 0 (no
 * event) stays 0.
 */

import type { Delivery, StoredEvent } from "../model.js";
import { storedEvent } from "../model.js";
import type { DeliveryGap, HistoryPage } from "./engine.js";

export class PartitionSeqs {
  constructor(
    readonly partition: number,
    readonly partitions: number,
  ) {}

  /** True when app seqs are stream seqs (one partition): nothing to convert. */
  get identity(): boolean {
    return this.partitions <= 1;
  }

  /** The app seq of this partition's stream seq. */
  toApp(streamSeq: number): number {
    return streamSeq <= 0 ? 0 : (streamSeq - 1) * this.partitions + this.partition + 1;
  }

  /** The highest stream seq whose app seq is at most `appSeq` (0: none). */
  atOrBelow(appSeq: number): number {
    const above = appSeq - this.partition - 1;
    return above < 0 ? 0 : Math.floor(above / this.partitions) + 1;
  }

  /** The stream seq showing as `appSeq`, or null when that seq belongs to another partition. */
  exact(appSeq: number): number | null {
    const s = this.atOrBelow(appSeq);
    return s > 0 && this.toApp(s) === appSeq ? s : null;
  }

  event(e: StoredEvent): StoredEvent {
    return storedEvent(e, e.channel, this.toApp(e.seq), e.time);
  }

  page(p: HistoryPage): HistoryPage {
    return {
      events: p.events.map((e) => this.event(e)),
      hasMore: p.hasMore,
      truncated: p.truncated,
    };
  }

  delivery(d: Delivery): Delivery {
    return d.type === "event" ? { type: "event", event: this.event(d.event) } : d;
  }

  gap(g: DeliveryGap): DeliveryGap {
    return {
      afterSeq: this.toApp(g.afterSeq),
      beforeSeq: g.beforeSeq === null ? null : this.toApp(g.beforeSeq),
      reason: g.reason,
    };
  }
}

/** The error `ensureApp` refuses an app with when its streams were made for another partition count. */
export class StreamPartitionsError extends Error {
  override name = "StreamPartitionsError";
}
