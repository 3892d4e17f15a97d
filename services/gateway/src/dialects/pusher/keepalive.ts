import type { KeepalivePolicy } from "../../core/keepalive.js";
import { encode } from "./codec.js";
import { PusherClose } from "./codes.js";
import type { PusherReplies } from "./replies.js";

/**
 * Pusher's server-side keep-alive: after `activityMs` without a frame from
 * the client, send `pusher:ping`; if nothing arrives within `pongMs`, close
 * with 4201. One policy for all Pusher connections, run by the server's
 * silence sweep (core/keepalive.ts) instead of a timer per connection.
 */
export function pusherKeepalive(
  replies: PusherReplies,
  activityMs: number,
  pongMs: number,
): KeepalivePolicy {
  return {
    idleMs: activityMs,
    idle: (conn) => conn.send(encode.ping()),
    probe: { pongMs, timedOut: (conn) => replies.close(conn, PusherClose.pongTimeout) },
  };
}
