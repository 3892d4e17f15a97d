/**
 * Sockudo delta compression for one Pusher connection: the last event frame
 * sent on each channel is the base the next one is diffed against. No I/O.
 */
import { createDelta } from "fossil-delta";
import { encode } from "./codec.js";

const utf8 = new TextEncoder();

/**
 * Bases per channel. The caller drops a channel's base when it unsubscribes,
 * so memory is bounded by the subscription limit times the frame limit.
 */
export class DeltaBases {
  private readonly bases = new Map<string, { bytes: Uint8Array; seq: number }>();

  /**
   * The frame to send for an event frame `frame` with stored `seq`: a
   * `pusher:delta` against the previous frame of the channel when that is
   * smaller, otherwise the frame itself marked with `__delta_seq`. Either
   * way the client's next base is `frame` (it strips `__delta_seq` from a
   * full frame, or reconstructs `frame` from the delta).
   */
  encode(channel: string, name: string, seq: number, frame: string): string {
    const bytes = utf8.encode(frame);
    const base = this.bases.get(channel);
    this.bases.set(channel, { bytes, seq });
    const full = encode.withDeltaSeq(frame, seq);
    const fullSize = bytes.byteLength + (full.length - frame.length);
    if (base) {
      const delta = createDelta(base.bytes, bytes);
      const out = encode.delta(channel, {
        event: name,
        delta: Buffer.from(delta.buffer, delta.byteOffset, delta.byteLength).toString("base64"),
        seq,
        base_seq: base.seq,
        algorithm: "fossil",
      });
      if (Buffer.byteLength(out) < fullSize) return out;
    }
    return full;
  }

  /** The channel was left, or the client lost its base (`pusher:delta_sync_error`): next frame is full. */
  drop(channel: string): void {
    this.bases.delete(channel);
  }

  get size(): number {
    return this.bases.size;
  }
}
