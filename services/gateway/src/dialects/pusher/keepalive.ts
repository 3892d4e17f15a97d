import type { Connection } from "../../core/connection.js";

/**
 * Pusher's server-side keep-alive: after `activityMs` without a frame from
 * the client, send `pusher:ping`; if nothing arrives within `pongMs`, give
 * up (the caller closes with 4201). One timer per connection, re-armed from
 * `conn.lastSeenAt` instead of being reset on every frame.
 */
export function startKeepalive(
  conn: Connection,
  activityMs: number,
  pongMs: number,
  ping: () => void,
  timedOut: () => void,
): void {
  let timer: NodeJS.Timeout | undefined;
  let pingSentAt: number | undefined;
  const arm = (ms: number) => {
    timer = setTimeout(check, Math.max(0, ms));
  };
  const check = () => {
    if (conn.closed) return;
    const now = Date.now();
    if (pingSentAt !== undefined) {
      // Any frame counts as the answer; we only ping after activityMs of silence,
      // so a frame seen at or after the ping cannot predate it.
      if (conn.lastSeenAt >= pingSentAt) pingSentAt = undefined;
      else if (now - pingSentAt >= pongMs) return timedOut();
      else return arm(pingSentAt + pongMs - now);
    }
    const idle = now - conn.lastSeenAt;
    if (idle < activityMs) return arm(activityMs - idle);
    pingSentAt = now;
    ping();
    arm(pongMs);
  };
  arm(activityMs);
  conn.onClose(() => clearTimeout(timer));
}
