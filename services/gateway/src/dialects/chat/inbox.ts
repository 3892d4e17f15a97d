/**
 * A user's durable inbox and what the user has acknowledged of it.
 *
 * The inbox is a stored channel named `#chat.<userId>`: client channel names
 * never start with `#`, so no other dialect can subscribe to it or publish
 * into it, and chat stays out of the cross-dialect interop. Event ids are the
 * inbox seqs (app-wide engine seqs: increasing per user, not contiguous).
 *
 * Ack state, per user, in the KV bucket "chat" under `acks/<userId>`:
 * `floor` — every inbox event with seq <= floor is acknowledged (or given up,
 * see MAX_ACKED) — and `acked`, the sorted seqs above the floor that are.
 * A connecting device replays the inbox after `floor`, skipping `acked`.
 */

import type { KvStore } from "../../../../../shared/src/engine/engine.js";
import type { Logger } from "../../../../../shared/src/log.js";
import type { Json } from "../../../../../shared/src/model.js";

export interface AckState {
  floor: number;
  /** Ascending, distinct, all > floor. */
  acked: number[];
}

/**
 * Acked seqs kept above the floor. The floor only moves past an event once
 * a replay has seen that it and everything before it is acked, so one old
 * event the client never acks holds every later ack in this list. Past the
 * bound the oldest acks are forgotten, never folded into the floor: those
 * events come again (duplicates the client drops by id) rather than an
 * unacked event below them being given up.
 */
export const MAX_ACKED = 5000;

export function inboxOf(userId: string): string {
  return `#chat.${userId}`;
}

export function ackKey(userId: string): string {
  return `acks/${userId}`;
}

export const EMPTY: AckState = { floor: 0, acked: [] };

/** The state with `seqs` acknowledged. */
export function addAcks(state: AckState, seqs: readonly number[], max = MAX_ACKED): AckState {
  const merged = [...new Set([...state.acked, ...seqs.filter((s) => s > state.floor)])].sort(
    (a, b) => a - b,
  );
  return { floor: state.floor, acked: merged.slice(Math.max(0, merged.length - max)) };
}

/**
 * What a replay after the floor showed: the first event it had to send
 * (unacked) and the highest seq it looked at. Every inbox event between the
 * floor and `firstUnacked` (or `maxSeen`, if all were acked) is acked, so
 * the floor moves up to it and the list above shrinks.
 */
export function compact(
  state: AckState,
  seen: { firstUnacked: number | undefined; maxSeen: number },
): AckState {
  const upTo = seen.firstUnacked === undefined ? seen.maxSeen : seen.firstUnacked - 1;
  if (upTo <= state.floor) return state;
  return { floor: upTo, acked: state.acked.filter((s) => s > upTo) };
}

/** The stored value, checked: KV may hold anything an older version wrote. */
export function parseAckState(v: Json): AckState {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return EMPTY;
  const floor = Number.isSafeInteger(v.floor) ? (v.floor as number) : 0;
  const acked = Array.isArray(v.acked)
    ? v.acked.filter((s): s is number => Number.isSafeInteger(s) && (s as number) > floor)
    : [];
  return { floor, acked: [...new Set(acked)].sort((a, b) => a - b) };
}

/**
 * One user's ack state as seen from one connection. Acks are coalesced: at
 * most one compare-and-set is in flight, and the acks that arrive meanwhile
 * go in the next one, so a client acking a burst costs a few KV writes.
 */
export class AckLog {
  private pending: number[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly kv: KvStore,
    private readonly userId: string,
    private readonly log: Logger,
  ) {}

  async load(): Promise<AckState> {
    const entry = await this.kv.get(ackKey(this.userId));
    return entry ? parseAckState(entry.value) : EMPTY;
  }

  ack(seq: number): void {
    this.pending.push(seq);
    this.running ??= this.flush();
  }

  /** Resolves once every ack handed in so far is written (or failed and logged). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  async compact(seen: { firstUnacked: number | undefined; maxSeen: number }): Promise<void> {
    await this.update((s) => compact(s, seen));
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          await this.update((s) => addAcks(s, batch));
        } catch (err) {
          // Not recorded means delivered again on the next connect: a duplicate, never a loss.
          this.log.warn({ err, count: batch.length }, "chat acks not stored");
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Compare-and-set loop, so devices of the same user on other gateways lose no acks. */
  private async update(change: (s: AckState) => AckState): Promise<void> {
    const key = ackKey(this.userId);
    for (;;) {
      const entry = await this.kv.get(key);
      const before = entry ? parseAckState(entry.value) : EMPTY;
      const after = change(before);
      if (after === before) return;
      const value = { floor: after.floor, acked: after.acked };
      const written = entry
        ? await this.kv.update(key, value, entry.revision)
        : await this.kv.create(key, value);
      if (written !== null) return;
    }
  }
}
