import type { Connection } from "./connection.js";

/**
 * How a dialect watches its connections' silence: one object per dialect,
 * shared by all its connections, checked by the server's sweep once a
 * second (`checkSilence`). A timer and its closures per socket cost more
 * than a connection's own state; a second of slack on a keep-alive measured
 * in tens of seconds costs nothing.
 */
export interface KeepalivePolicy {
  /** Silence (no frame from the client) after which `idle` runs. */
  idleMs: number;
  /**
   * With `timedOut`: `idle` sent a probe (a ping), and a connection with no
   * frame within `pongMs` of it times out. Without: `idle` is final (it closes).
   */
  probe?: { pongMs: number; timedOut: (conn: Connection) => void };
  idle(conn: Connection): void;
}

/** How often the server runs `checkSilence` over its connections. */
export const SILENCE_SWEEP_MS = 1000;

/** One connection's turn in the sweep at time `now`. */
export function checkSilence(conn: Connection, now: number): void {
  const policy = conn.keepalive;
  if (!policy || conn.closed || conn.ending) return;
  const { probe } = policy;
  if (conn.probedAt !== undefined) {
    // Any frame counts as the answer; a probe only goes out after idleMs of
    // silence, so a frame seen at or after it cannot predate it.
    if (conn.lastSeenAt >= conn.probedAt) conn.probedAt = undefined;
    else {
      if (probe && now - conn.probedAt >= probe.pongMs) probe.timedOut(conn);
      return;
    }
  }
  if (now - conn.lastSeenAt < policy.idleMs) return;
  if (probe) conn.probedAt = now;
  policy.idle(conn);
}
