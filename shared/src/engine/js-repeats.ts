/**
 * One publish must never show up under two seqs (event ids are derived from
 * seqs, so it would read as two events). A healthy stream stores a
 * Nats-Msg-Id once per duplicate window, and the publisher keeps its id
 * across retries. But a 2.9 replica that reset its cluster state can lose a
 * stored message or its dedupe entry while the old leader already
 * republished it live; the publisher's retry (same id, same bytes) is then
 * stored again under a new seq on the new leader.
 *
 * So reads and live delivery keep the first seq of an id and drop a later
 * one when it is the same publish: the same Nats-Msg-Id with publish times
 * (the event body's `time`) within the app's dedupe window (the stream's
 * duplicate window, as ensureApp sets it) — exactly
 * what the stream itself would have deduplicated. An idempotency key reused
 * after the window is a new event, as the stream treats it. While the window
 * is not known (0), only a byte-identical retry (same time) counts, which
 * never drops a real event.
 */
import type { StoredEvent } from "../model.js";
import { decodeEvent } from "./js-codec.js";

/** Ids remembered per live channel; a repeat after this many later events gets through. */
const LIVE_CAP = 10_000;
/** Beyond two windows: the publisher's 15 s retry deadline and clock skew between gateways. */
const FORGET_MARGIN_MS = 60_000;

export class RepeatFilter {
  /** Oldest first; made at the first id, so an idle channel holds none. */
  private seen: Map<string, { seq: number; time: number }> | undefined;

  constructor(
    private readonly windowMs: () => number,
    private readonly cap = LIVE_CAP,
  ) {}

  /** True when `event` is a publish already seen under an earlier seq. */
  isRepeat(msgId: string | undefined, event: StoredEvent): boolean {
    if (!msgId) return false;
    this.seen ??= new Map();
    const seen = this.seen;
    const windowMs = this.windowMs();
    const prior = seen.get(msgId);
    if (prior && prior.seq !== event.seq && Math.abs(event.time - prior.time) <= windowMs) {
      return true;
    }
    // Re-inserted so the map's order stays oldest-first for eviction.
    seen.delete(msgId);
    seen.set(msgId, { seq: event.seq, time: event.time });
    // Forget ids published long before this event, so a busy channel does
    // not hold the cap's worth for ever. "Long": two windows plus a margin
    // past the publisher's retry deadline (15 s) and the gateways' clock
    // skew, because a retry can be stored up to that deadline after its
    // first try, even when the window is shorter, and events of other
    // gateways may be stamped ahead. An unknown window (0) keeps them.
    if (windowMs > 0) {
      const before = event.time - (2 * windowMs + FORGET_MARGIN_MS);
      for (const [id, entry] of seen) {
        if (entry.time >= before) break;
        seen.delete(id);
      }
    }
    if (seen.size > this.cap) {
      const oldest = seen.keys().next().value;
      if (oldest !== undefined) seen.delete(oldest);
    }
    return false;
  }

  /** Ids remembered now (tests: the bound). */
  get size(): number {
    return this.seen?.size ?? 0;
  }
}

/** Decodes messages read from the stream, without later seqs of an earlier publish. */
export function distinctEvents(
  channel: string,
  msgs: { seq: number; data: Uint8Array; msgId?: string | undefined }[],
  windowMs: number,
): StoredEvent[] {
  const repeats = new RepeatFilter(() => windowMs, Number.POSITIVE_INFINITY);
  const events: StoredEvent[] = [];
  for (const m of msgs) {
    const event = decodeEvent(channel, m.seq, m.data);
    if (!repeats.isRepeat(m.msgId, event)) events.push(event);
  }
  return events;
}
