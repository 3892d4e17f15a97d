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
    // Forget ids published more than a window before this event: it was
    // published after their window closed, and delivery is in stored order,
    // so a retry of theirs still to come was stored after it, when the
    // stream itself would have taken it as a new event. So a busy channel
    // remembers one window's ids, not the cap's. An unknown window (0) keeps
    // them: it only matches equal times.
    if (windowMs > 0) {
      for (const [id, entry] of seen) {
        if (entry.time >= event.time - windowMs) break;
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
