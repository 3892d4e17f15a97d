import type { TokenBucket } from "../../core/rate.js";
import type { Session } from "../../core/session.js";
import type { DeltaBases } from "./delta.js";
import type { TagFilter } from "./filter.js";

/**
 * A Pusher connection: bound to its app at open (the URL names the key), so
 * its core session is there from the first frame. Its collections and the
 * client-event bucket are made on first use: most connections subscribe to a
 * channel or two and never send a client event, and empty Maps and Sets per
 * socket are a measurable share of a connection's memory.
 */
export interface PusherConnection {
  session: Session;
  /**
   * Channels whose subscribe is in flight (auth, presence, replay) until
   * `pusher_internal:subscription_succeeded`: a repeated subscribe is
   * ignored and client events are refused meanwhile, as Pusher does.
   */
  pending: Set<string> | undefined;
  /** The `user_id` from each presence channel's channel_data. */
  presenceIds: Map<string, string> | undefined;
  /** Rate of client-* events (app.limits.clientEventRate per second). */
  clientEvents: TokenBucket | undefined;
  /** Set once `pusher:signin` succeeded. */
  user: { id: string; userData: string } | undefined;
  signingIn: boolean;
  /** Sockudo tag filters of subscribed channels that have one. */
  filters: Map<string, TagFilter> | undefined;
  /** Set once the client sent `pusher:enable_delta_compression`. */
  deltas: DeltaBases | undefined;
}

/** Ends a channel's pending state; false when it was not pending. The Set goes with its last entry. */
export function settlePending(s: PusherConnection, channel: string): boolean {
  if (!s.pending?.delete(channel)) return false;
  if (s.pending.size === 0) s.pending = undefined;
  return true;
}
